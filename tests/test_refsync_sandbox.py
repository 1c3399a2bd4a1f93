"""The sync through the real connectors against the bundled sandbox (127.0.0.1, free ports)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from reference_sync import LinkStore, run_sync
from reference_sync.testing import ORDER_PROPERTIES, checklist_spec, section
from talkqa.sandbox.server import running_sandboxes
from talkqa.systems.connect import Systems
from tests.sandbox_fixtures import sandbox_systems

SPEC = checklist_spec(
    section(0, "Order", "Invoices", ORDER_PROPERTIES),
    section(1, "Customer", "Customers person", (("billing_address.city", "city", "string"),)),
    section(2, "Item", "Items"),
)


@pytest.fixture(scope="module")
def systems() -> Iterator[Systems]:
    with running_sandboxes(seed=0) as sandbox, httpx.Client() as http:
        yield sandbox_systems(http, sandbox.chargebee_base_url, sandbox.invoiced_base_url)


def _writes(systems: Systems) -> dict[str, int]:
    return {k: n for k, n in systems.call_counts().items() if " GET " not in k}


def _person(systems: Systems, source_id: str) -> dict[str, Any]:
    found = systems.invoiced.customers.find(metadata={"chargebee_id": source_id})
    assert len(found) == 1
    return found[0]


def test_sync_through_connectors_and_sandbox(systems: Systems) -> None:
    chargebee = systems.chargebee
    chargebee.customers.create(
        {"id": "c1", "first_name": "Ada", "last_name": "L", "billing_address": {"city": "Oslo"}}
    )
    chargebee.customers.create({"id": "c2", "email": "grace@example.com"})
    order = chargebee.orders.create(
        {"customer_id": "c2", "currency_code": "USD", "amount": 1000, "description": "x"}
    )
    with LinkStore(":memory:") as store:
        first = run_sync(SPEC, systems, store)
        assert first.totals["failed"] == 0, first.to_json()
        assert first.totals["created"] == 3
        ada = _person(systems, "c1")
        assert (ada["type"], ada["name"], ada["city"]) == ("person", "Ada L", "Oslo")
        [invoice] = systems.invoiced.invoices.find(metadata={"chargebee_id": order["id"]})
        assert invoice["customer"] == _person(systems, "c2")["id"]
        assert invoice["currency"] == "usd"

        systems.calls.reset()
        assert run_sync(SPEC, systems, store).writes == 0
        assert _writes(systems) == {}

        systems.invoiced.customers.update(str(ada["id"]), {"city": "Bergen"})
        systems.calls.reset()
        third = run_sync(SPEC, systems, store)
        assert third.totals["updated_to_source"] == 1
        assert chargebee.customers.get("c1")["billing_address"]["city"] == "Bergen"
        assert any("update_billing_info" in k for k in _writes(systems))
