"""Every scenario generated from dataflows/chargebee-invoiced-contacts.rst."""

from pytest_bdd import scenarios

scenarios("chargebee-invoiced-contacts")
