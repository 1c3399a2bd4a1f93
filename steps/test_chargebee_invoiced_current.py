"""Every scenario generated from dataflows/chargebee-invoiced-current.rst."""

from pytest_bdd import scenarios

scenarios("chargebee-invoiced-current")
