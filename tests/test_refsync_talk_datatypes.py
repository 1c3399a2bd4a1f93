"""The reference sync chooses a section's entities by Sesam Talk's datatype rule, and runs
from Invoiced to Chargebee as well as the other way."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from reference_sync import LinkStore, run_sync
from reference_sync.testing import FakeSystems, checklist_spec, section
from talkqa.systems.base import Json


@pytest.fixture
def store() -> Iterator[LinkStore]:
    with LinkStore(":memory:") as link_store:
        yield link_store


def _claims(fake: FakeSystems, system: str, resource: str, field: str) -> dict[str, Json]:
    rows = fake[system, resource].entities.values()
    return {row[field]["chargebee_id"]: row for row in rows if row.get(field)}


def test_organisations_and_persons_go_to_their_own_section(store: LinkStore) -> None:
    fake = FakeSystems()
    fake["chargebee", "customers"].seed({"id": "c1", "first_name": "Ada", "company": "Acme"})
    fake["chargebee", "customers"].seed({"id": "c2", "company": "Analytical Ltd"})
    fake["chargebee", "orders"].seed({"id": "o1", "customer_id": "c2", "currency_code": "USD"})
    spec = checklist_spec(
        section(0, "Customer", "Customers (organisation data)"),
        section(1, "Customer", "Customers (human data)"),
        section(2, "Order", "Invoices", (("customer_id", "customer", "string"),)),
    )
    summary = run_sync(spec, fake, store)
    assert [s.failed for s in summary.sections] == [[], [], []]
    customers = _claims(fake, "invoiced", "customers", "metadata")
    assert {cid: c["type"] for cid, c in customers.items()} == {"c1": "person", "c2": "company"}
    assert customers["c2"]["name"] == "Analytical Ltd"
    invoice = next(iter(fake["invoiced", "invoices"].entities.values()))
    assert invoice["customer"] == customers["c2"]["id"]  # an order of an organisation


def test_a_customer_no_section_holds_is_left_alone(store: LinkStore) -> None:
    fake = FakeSystems()
    fake["chargebee", "customers"].seed({"id": "c2", "company": "Analytical Ltd"})
    summary = run_sync(checklist_spec(section(0, "Customer", "Customers person")), fake, store)
    assert fake["invoiced", "customers"].entities == {}
    assert summary.sections[0].entities == 0


def test_invoiced_persons_items_and_invoices_reach_chargebee(store: LinkStore) -> None:
    fake = FakeSystems()
    person = fake["invoiced", "customers"].seed({"name": "Grace Brewster Hopper", "type": "person"})
    fake["invoiced", "customers"].seed({"name": "Acme AS", "type": "company"})
    fake["invoiced", "items"].seed({"id": "widget", "name": "Widget"})
    invoice = fake["invoiced", "invoices"].seed({"customer": person["id"], "currency": "usd"})
    spec = checklist_spec(
        section(
            0,
            "Invoices",
            "Order",
            (("currency", "currency_code", "string"), ("customer", "customer_id", "string")),
            source_system="Invoiced",
            target_system="Chargebee",
        ),
        section(
            1,
            "Customers (human data)",
            "Customer",
            source_system="Invoiced",
            target_system="Chargebee",
        ),
        section(2, "Items", "Item", source_system="Invoiced", target_system="Chargebee"),
    )
    summary = run_sync(spec, fake, store)
    assert [s.failed for s in summary.sections] == [[], [], []]
    customers = list(fake["chargebee", "customers"].entities.values())
    assert [(c["first_name"], c["last_name"], c["meta_data"]) for c in customers] == [
        ("Grace Brewster", "Hopper", {"invoiced_id": str(person["id"])})
    ]  # the company is not a Chargebee customer: it is the Business_entity section's
    items = list(fake["chargebee", "items"].entities.values())
    assert [(i["id"], i["name"], i["type"], i["item_family_id"]) for i in items] == [
        ("widget", "Widget", "charge", "talkqa")
    ]
    assert list(fake["chargebee", "item_families"].entities) == ["talkqa"]
    orders = list(fake["chargebee", "orders"].entities.values())
    assert [(o["customer_id"], o["currency_code"], o["reference_id"]) for o in orders] == [
        (customers[0]["id"], "USD", f"invoiced_id:{invoice['id']}")
    ]
    again = run_sync(spec, fake, store)
    assert sum(s.created + s.updated for s in again.sections) == 0
