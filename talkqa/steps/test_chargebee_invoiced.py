"""Every scenario generated from dataflows/chargebee-invoiced.rst (features/chargebee-invoiced/)."""

from pytest_bdd import scenarios

scenarios("chargebee-invoiced")
