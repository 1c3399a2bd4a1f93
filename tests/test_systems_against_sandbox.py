"""The connectors against the bundled emulators: every resource's CRUD and list, faults included.

Both emulator apps sit behind one in-process TestClient (routed by host), the way a
scenario's single httpx client reaches both vendors; no sockets, no sleeping.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from talkqa.sandbox.server import (
    CHARGEBEE_API_KEY,
    INVOICED_API_KEY,
    create_sandbox,
    running_sandboxes,
)
from talkqa.systems.base import (
    AuthenticationFailed,
    BadRequest,
    LostResponse,
    NotFound,
    ServerError,
)
from talkqa.systems.connect import Systems
from talkqa.systems.settings import Settings
from tests.sandbox_fixtures import both_in_process, sandbox_systems


class Harness:
    """A sandbox, one client for both of its apps, and Systems connected through it."""

    def __init__(self, faults: str | None = None, *, max_attempts: int = 5) -> None:
        self.sandbox = create_sandbox(seed=0, faults=faults)
        self.sleeps: list[float] = []
        self.client = both_in_process(self.sandbox)
        self.systems = self.connect(CHARGEBEE_API_KEY, INVOICED_API_KEY, max_attempts)

    def connect(self, chargebee_key: str, invoiced_key: str, max_attempts: int = 5) -> Systems:
        return sandbox_systems(
            self.client,
            chargebee_api_key=chargebee_key,
            invoiced_api_key=invoiced_key,
            sleep=self.sleeps.append,
            max_attempts=max_attempts,
        )


@pytest.fixture
def harness() -> Iterator[Harness]:
    made = Harness()
    yield made
    made.client.close()


def ids(entities: Iterator[dict[str, Any]]) -> list[Any]:
    return [entity["id"] for entity in entities]


# --- Chargebee --------------------------------------------------------------------------------


def test_chargebee_customers_crud_and_list(harness: Harness) -> None:
    customers = harness.systems.chargebee.customers
    ada = customers.create(
        {
            "id": "cust-ada",
            "first_name": "Ada",
            "email": "ada@example.com",
            "billing_address": {"line1": "Storgata 1", "city": "Oslo", "country": "NO"},
            "meta_data": {"source": "talkqa"},
        },
        idempotency_key="create-ada",
    )
    assert ada["billing_address"]["city"] == "Oslo"
    assert ada["meta_data"] == {"source": "talkqa"}
    customers.create({"id": "cust-bo", "first_name": "Bo"})
    assert customers.get("cust-ada")["email"] == "ada@example.com"

    before = harness.systems.call_counts()
    updated = customers.update(
        "cust-ada", {"email": "ada@lovelace.org", "billing_address": {"city": "Bergen"}}
    )
    assert updated["email"] == "ada@lovelace.org"
    assert updated["billing_address"]["city"] == "Bergen"
    after = harness.systems.call_counts()
    assert (
        after["chargebee POST /customers/{id}"] - before.get("chargebee POST /customers/{id}", 0)
        == 1
    )
    assert after["chargebee POST /customers/{id}/update_billing_info"] == 1

    assert sorted(ids(customers.list())) == ["cust-ada", "cust-bo"]  # vendor order: newest first
    changed_since = customers.get("cust-bo")["updated_at"]
    assert ids(customers.list(changed_since)) == ["cust-ada"]

    customers.delete("cust-bo")
    assert ids(customers.list()) == ["cust-ada"]
    every = list(customers.list(filters={"include_deleted": "true"}))
    assert {(c["id"], c["deleted"]) for c in every} == {("cust-ada", False), ("cust-bo", True)}


def test_chargebee_lists_page_through_next_offset(harness: Harness) -> None:
    seeded = harness.client.post(
        "http://chargebee.sandbox/__admin/seed",
        json={"customers": 230},
        auth=(CHARGEBEE_API_KEY, ""),
    )
    assert seeded.status_code == 200, seeded.text
    listed = ids(harness.systems.chargebee.customers.list())
    assert len(listed) == len(set(listed)) == 230
    assert harness.systems.call_counts() == {"chargebee GET /customers": 3}


def test_chargebee_items_crud_and_list(harness: Harness) -> None:
    family = harness.systems.chargebee.item_families.create({"id": "hardware", "name": "Hardware"})
    assert family["id"] == "hardware"
    items = harness.systems.chargebee.items
    created = items.create(
        {
            "id": "widget",
            "name": "Widget",
            "type": "charge",
            "item_family_id": "hardware",
            "metadata": {"sku": "W-1"},
        }
    )
    assert created["metadata"] == {"sku": "W-1"}
    assert items.update("widget", {"description": "A blue widget"})["description"] == (
        "A blue widget"
    )
    assert items.get("widget")["name"] == "Widget"
    assert ids(items.list()) == ["widget"]
    items.delete("widget")
    assert items.get("widget")["status"] == "deleted"


def test_chargebee_orders_are_created_through_an_invoice(harness: Harness) -> None:
    harness.systems.chargebee.customers.create({"id": "cust-1", "first_name": "Cy"})
    orders = harness.systems.chargebee.orders
    order = orders.create(
        {
            "customer_id": "cust-1",
            "currency_code": "EUR",
            "order_line_items": [
                {"description": "Widget", "amount": 1500},
                {"description": "Gadget", "unit_price": 250, "quantity": 2},
            ],
        }
    )
    assert (order["customer_id"], order["currency_code"], order["total"]) == (
        "cust-1",
        "EUR",
        2000,
    )
    invoice = harness.systems.chargebee.invoices.get(order["invoice_id"])
    assert invoice["customer_id"] == "cust-1"
    assert orders.update(order["id"], {"status": "processing"})["status"] == "processing"
    assert orders.get(order["id"])["status"] == "processing"
    assert ids(orders.list()) == [order["id"]]
    orders.delete(order["id"])
    assert ids(orders.list()) == []


def test_chargebee_errors_name_resource_id_and_field(harness: Harness) -> None:
    customers = harness.systems.chargebee.customers
    with pytest.raises(NotFound, match=r"^chargebee customers ghost: HTTP 404"):
        customers.get("ghost")
    with pytest.raises(
        BadRequest,
        match=r"^chargebee items x: HTTP 400 param_wrong_value: .*\(field item_family_id\)$",
    ):
        harness.systems.chargebee.items.create({"id": "x", "name": "X", "type": "charge"})
    wrong = harness.connect("not-the-key", INVOICED_API_KEY)
    with pytest.raises(AuthenticationFailed, match=r"^chargebee customers: HTTP 401"):
        list(wrong.chargebee.customers.list())


# --- Invoiced ---------------------------------------------------------------------------------


def test_invoiced_customers_crud_find_and_list(harness: Harness) -> None:
    customers = harness.systems.invoiced.customers
    person = customers.create(
        {"name": "Ada", "type": "person", "metadata": {"chargebee_id": "cust-ada"}},
        idempotency_key="inv-ada",
    )
    company = customers.create({"name": "Acme", "type": "company"})
    assert isinstance(person["id"], int)
    patched = customers.update(str(person["id"]), {"city": "Oslo"})
    assert (patched["city"], patched["name"]) == ("Oslo", "Ada")
    assert customers.get(str(person["id"]))["city"] == "Oslo"
    assert ids(iter(customers.find(filter={"type": "person"}))) == [person["id"]]
    assert ids(iter(customers.find(metadata={"chargebee_id": "cust-ada"}))) == [person["id"]]
    assert ids(customers.list()) == [person["id"], company["id"]]
    assert ids(customers.list(company["updated_at"])) == [person["id"]]
    customers.delete(str(company["id"]))
    with pytest.raises(NotFound, match=rf"^invoiced customers {company['id']}: HTTP 404"):
        customers.get(str(company["id"]))


def test_invoiced_lists_follow_link_headers(harness: Harness) -> None:
    customers = harness.systems.invoiced.customers
    made = [customers.create({"name": f"Person {n}", "type": "person"})["id"] for n in range(205)]
    assert ids(customers.list()) == made
    assert harness.systems.call_counts()["invoiced GET /customers"] == 3


def test_invoiced_items_have_caller_chosen_string_ids(harness: Harness) -> None:
    items = harness.systems.invoiced.items
    created = items.create({"id": "widget", "name": "Widget", "unit_cost": 15.0, "currency": "usd"})
    assert created["id"] == "widget"
    assert items.update("widget", {"description": "Blue"})["description"] == "Blue"
    with pytest.raises(BadRequest, match=r"^invoiced items widget: .*\(field unit_cost\)$"):
        items.update("widget", {"unit_cost": 20.0})
    assert ids(items.list()) == ["widget"]
    items.delete("widget")
    assert ids(items.list()) == []


def test_invoiced_invoices_crud_and_list(harness: Harness) -> None:
    person = harness.systems.invoiced.customers.create({"name": "Ada", "type": "person"})
    invoices = harness.systems.invoiced.invoices
    invoice = invoices.create(
        {
            "customer": person["id"],
            "currency": "eur",
            "items": [{"name": "Widget", "quantity": 2, "unit_cost": 7.5}],
            "metadata": {"chargebee_id": "order-1"},
        }
    )
    assert (invoice["customer"], invoice["total"]) == (person["id"], 15.0)
    assert invoices.update(str(invoice["id"]), {"name": "Order 1"})["name"] == "Order 1"
    assert ids(invoices.list()) == [invoice["id"]]
    invoices.delete(str(invoice["id"]))
    assert ids(invoices.list()) == []
    with pytest.raises(BadRequest, match=r"^invoiced invoices: HTTP 400 .*\(field customer\)$"):
        invoices.create({"currency": "eur"})


# --- faults -------------------------------------------------------------------------------------


def test_a_429_with_retry_after_is_waited_out() -> None:
    harness = Harness("chargebee.GET/customers=429,retry_after=2,times=1")
    assert ids(harness.systems.chargebee.customers.list()) == []
    # the account pauses 2 s from the 429's arrival on the real clock: a hair less is left
    assert harness.sleeps == [pytest.approx(2.0, abs=0.1)]
    assert harness.systems.calls.retries == 1


def test_a_persistent_503_ends_in_server_error_after_capped_attempts() -> None:
    harness = Harness("invoiced=503", max_attempts=3)
    with pytest.raises(ServerError, match=r"^invoiced items: HTTP 503"):
        list(harness.systems.invoiced.items.list())
    assert harness.sleeps == [0.5, 1.0]
    assert harness.systems.call_counts() == {"invoiced GET /items": 3}


def test_a_dropped_write_without_idempotency_key_is_not_resent() -> None:
    harness = Harness("chargebee.POST/customers=drop_after,times=1")
    with pytest.raises(LostResponse, match="connection lost after the request was sent"):
        harness.systems.chargebee.customers.create({"id": "c1", "first_name": "Ada"})
    # the write landed although the client never heard: exactly the ambiguity keys resolve
    assert ids(harness.systems.chargebee.customers.list()) == ["c1"]


def test_a_dropped_write_with_idempotency_key_is_resent_and_applied_once() -> None:
    harness = Harness("invoiced.POST/customers=drop_after,times=1")
    created = harness.systems.invoiced.customers.create(
        {"name": "Ada", "type": "person"}, idempotency_key="ada-1"
    )
    assert harness.systems.call_counts() == {"invoiced POST /customers": 2}
    assert ids(harness.systems.invoiced.customers.list()) == [created["id"]]


def test_a_lost_update_answer_is_checked_by_reading_not_blindly_resent() -> None:
    harness = Harness("chargebee.POST/customers/*=drop_after,times=1")
    customers = harness.systems.chargebee.customers
    customers.create({"id": "c1", "first_name": "Ada"})
    updated = customers.update("c1", {"first_name": "Grace"})
    assert updated["first_name"] == "Grace"
    assert harness.systems.call_counts() == {
        "chargebee POST /customers": 1,
        "chargebee POST /customers/{id}": 1,  # landed: re-read, not resent
        "chargebee GET /customers/{id}": 1,
    }


@pytest.mark.parametrize(("drop", "patches"), [("drop_after", 1), ("drop_before", 2)])
def test_a_lost_patch_is_resent_only_when_the_read_shows_it_did_not_land(
    drop: str, patches: int
) -> None:
    harness = Harness(f"invoiced.PATCH/customers/*={drop},times=1")
    customers = harness.systems.invoiced.customers
    created = customers.create({"name": "Ada", "type": "person"}, idempotency_key="ada")
    updated = customers.update(str(created["id"]), {"name": "Grace", "metadata": {"k": "v"}})
    assert (updated["name"], updated["metadata"]) == ("Grace", {"k": "v"})
    counts = harness.systems.call_counts()
    assert counts["invoiced PATCH /customers/{id}"] == patches
    assert counts["invoiced GET /customers/{id}"] == 1


def test_with_a_run_seed_every_write_carries_a_key_and_is_resent_after_a_lost_answer() -> None:
    sandbox = create_sandbox(seed=0, faults="chargebee.POST/customers/*=drop_after,times=1")
    seen: list[httpx.Request] = []
    client = both_in_process(sandbox)
    client.event_hooks["request"].append(seen.append)
    systems = sandbox_systems(client, sleep=lambda _s: None, idempotency_seed="run-7")
    systems.chargebee.customers.create({"id": "c1", "first_name": "Ada"})
    systems.chargebee.customers.update("c1", {"first_name": "Grace"})
    keys = [request.headers.get("chargebee-idempotency-key") for request in seen]
    assert all(keys) and keys[1] == keys[2] and keys[0] != keys[1]  # the resend reuses its key
    assert systems.call_counts() == {
        "chargebee POST /customers": 1,
        "chargebee POST /customers/{id}": 2,  # resent with its key: the sandbox replays
    }
    assert systems.chargebee.customers.get("c1")["first_name"] == "Grace"


def test_a_delete_whose_answer_was_lost_is_resent_and_a_404_then_means_done() -> None:
    harness = Harness(
        "chargebee.POST/customers/*/delete=drop_after,times=1;"
        "invoiced.DELETE/customers/*=drop_after,times=1"
    )
    chargebee, invoiced = harness.systems.chargebee.customers, harness.systems.invoiced.customers
    chargebee.create({"id": "c1", "first_name": "Ada"})
    person = invoiced.create({"name": "Ada", "type": "person"}, idempotency_key="ada")
    chargebee.delete("c1")
    invoiced.delete(str(person["id"]))
    assert ids(chargebee.list()) == []
    assert ids(invoiced.list()) == []
    counts = harness.systems.call_counts()
    assert counts["chargebee POST /customers/{id}/delete"] == 2
    assert counts["invoiced DELETE /customers/{id}"] == 2


def test_one_client_reaches_both_vendors_with_their_own_keys(harness: Harness) -> None:
    wrong_invoiced = harness.connect(CHARGEBEE_API_KEY, "wrong")
    assert list(wrong_invoiced.chargebee.customers.list()) == []
    with pytest.raises(AuthenticationFailed, match=r"^invoiced customers: HTTP 401"):
        list(wrong_invoiced.invoiced.customers.list())
    assert isinstance(harness.client, httpx.Client)


@pytest.mark.timeout(60)
def test_served_sandboxes_work_from_their_environment_over_real_sockets() -> None:
    """The command driver's path: five variables in, a plain network client out."""
    with running_sandboxes(seed=0) as served, httpx.Client(timeout=10) as http:
        systems = Systems.connect(Settings.from_env(served.env), http)
        systems.chargebee.customers.create({"id": "net-1", "first_name": "Ada"})
        person = systems.invoiced.customers.create(
            {"name": "Ada", "type": "person", "metadata": {"chargebee_id": "net-1"}}
        )
        assert ids(systems.chargebee.customers.list()) == ["net-1"]
        assert systems.invoiced.customers.find(metadata={"chargebee_id": "net-1"}) == [person]
    assert systems.calls.total == 4
