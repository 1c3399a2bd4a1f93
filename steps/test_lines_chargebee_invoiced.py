"""Every scenario generated from tests/fixtures/dataflows/lines-chargebee-invoiced.rst: order
lines (minor units) to invoice line items (major units), paired by position."""

from pytest_bdd import scenarios

scenarios("lines-chargebee-invoiced")
