"""The Chargebee subscriptions and addresses connector against the emulator: an address has
no id and no list, so the connector names it by its subscription and walks subscriptions."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from talkqa.sandbox.server import create_sandbox
from talkqa.systems.base import BadRequest, NotFound
from talkqa.systems.catalog import ADDRESS_LABEL
from talkqa.systems.connect import Systems
from tests.sandbox_fixtures import both_in_process, sandbox_systems


@pytest.fixture
def systems() -> Iterator[Systems]:
    client = both_in_process(create_sandbox(seed=0))
    systems = sandbox_systems(client)
    cb = systems.chargebee
    cb.customers.create({"id": "c1", "first_name": "Ada"})
    cb.customers.create({"id": "c2", "company": "Acme AS"})
    cb.item_families.create({"id": "fam", "name": "Family"})
    cb.items.create({"id": "gold", "name": "Gold", "type": "plan", "item_family_id": "fam"})
    cb.item_prices.create({"id": "gold-usd", "name": "Gold USD", "item_id": "gold", "price": 900})
    yield systems
    client.close()


def subscribe(systems: Systems, ident: str, customer: str) -> None:
    made = systems.chargebee.subscriptions.create(
        {"id": ident, "customer_id": customer,
         "subscription_items": [{"item_price_id": "gold-usd", "quantity": 1}]},
        idempotency_key=f"sub-{ident}",
    )
    assert (made["id"], made["customer_id"]) == (ident, customer)


def test_addresses_are_named_by_subscription_and_carry_whose_they_are(systems: Systems) -> None:
    subscribe(systems, "s1", "c1")
    subscribe(systems, "s2", "c2")
    subscribe(systems, "s3", "c1")  # no address: not listed
    addresses = systems.chargebee.addresses
    made = addresses.create({"subscription_id": "s1", "addr": "Storgata 1", "city": "Oslo",
                             "country": "NO", "zip": "0150"})
    assert (made["id"], made["label"], made["customer_id"]) == ("s1", ADDRESS_LABEL, "c1")
    assert made["customer"]["first_name"] == "Ada"
    addresses.create({"subscription_id": "s2", "city": "Bergen"})
    listed = {a["id"]: (a["city"], a["customer_id"]) for a in addresses.list()}
    assert listed == {"s1": ("Oslo", "c1"), "s2": ("Bergen", "c2")}
    assert [a["id"] for a in addresses.list(filters={"customer_id[is]": "c2"})] == ["s2"]


def test_update_keeps_the_fields_it_does_not_name(systems: Systems) -> None:
    """Chargebee replaces an address whole: the connector sends the rest along."""
    subscribe(systems, "s1", "c1")
    addresses = systems.chargebee.addresses
    addresses.create({"subscription_id": "s1", "addr": "Storgata 1", "city": "Oslo"})
    changed = addresses.update("s1", {"city": "Bergen"})
    assert (changed["addr"], changed["city"]) == ("Storgata 1", "Bergen")
    assert addresses.get("s1")["city"] == "Bergen"


def test_missing_address_subscription_and_delete_fail_in_one_line(systems: Systems) -> None:
    subscribe(systems, "s1", "c1")
    addresses = systems.chargebee.addresses
    with pytest.raises(NotFound, match="no address labelled"):
        addresses.get("s1")
    with pytest.raises(NotFound, match="Subscription not found"):
        addresses.create({"subscription_id": "nope", "city": "Oslo"})
    with pytest.raises(BadRequest, match="subscription_id"):
        addresses.create({"city": "Oslo"})
    with pytest.raises(BadRequest, match="no API to delete"):
        addresses.delete("s1")
    with pytest.raises(BadRequest, match="customer_id"):
        systems.chargebee.subscriptions.create({"subscription_items": []})
    systems.chargebee.subscriptions.delete("s1")  # live teardown: its address goes with it
    assert list(systems.chargebee.subscriptions.list()) == []
    with pytest.raises(NotFound):
        addresses.create({"subscription_id": "s1", "city": "Oslo"})
