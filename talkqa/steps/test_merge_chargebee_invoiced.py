"""Every scenario generated from tests/fixtures/dataflows/merge-chargebee-invoiced.rst: a
link-first section whose links are made by a merge rule (Customer by email), and the orders
that reference those customers."""

from pytest_bdd import scenarios

scenarios("merge-chargebee-invoiced")
