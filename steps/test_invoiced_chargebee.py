"""Every scenario generated from dataflows/invoiced-chargebee.rst."""

from pytest_bdd import scenarios

scenarios("invoiced-chargebee")
