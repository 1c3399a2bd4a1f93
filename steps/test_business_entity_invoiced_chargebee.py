"""Every scenario generated from tests/fixtures/dataflows/business-entity-invoiced-chargebee.rst:
a section no syncer can keep, as Chargebee's API cannot create, list or change a business
entity; each scenario ends as vendor-impossible, never passed and never "not covered"."""

from pytest_bdd import scenarios

scenarios("business-entity-invoiced-chargebee")
