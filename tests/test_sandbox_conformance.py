"""Conformance: every record the sandboxes answer validates against the vendors' own
definitions (`talkqa/sandbox/defs/*.json`, extracted by `tools/vendor_defs/extract.py`).

Every field returned exists in the vendor's definition with the same JSON type, and every
field the vendor always returns is present; this holds for each resource and operation the
sandboxes serve (create, retrieve, update, list, delete).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from talkqa.sandbox import chargebee, invoiced, vendor_defs
from talkqa.sandbox.server import CHARGEBEE_API_KEY, INVOICED_API_KEY, create_sandbox
from tests.sandbox_fixtures import in_process

JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "number": (int, float), "boolean": (bool,), "object": (dict,),
    "array": (list,),
}


def problems(vendor: str, resource: str, record: dict[str, Any]) -> list[str]:
    """What makes ``record`` differ from the vendor's definition of ``resource``."""
    attributes = vendor_defs.attributes(vendor, resource)
    found: list[str] = []
    for key, value in record.items():
        spec = attributes.get(key)
        if spec is None:
            found.append(f"{resource}.{key}: not a vendor attribute")
            continue
        wanted = JSON_TYPES.get(spec["type"])
        if value is None and vendor == "invoiced":
            continue  # Invoiced sends every attribute, null when unset
        if wanted is not None and (
            not isinstance(value, wanted) or (bool not in wanted and isinstance(value, bool))
        ):
            found.append(f"{resource}.{key}: {type(value).__name__}, vendor says {spec['type']}")
        if "enum" in spec and value not in spec["enum"]:
            found.append(f"{resource}.{key}: {value!r} not in the vendor's enum")
    for key, spec in attributes.items():
        if spec["required"] and key not in record:
            found.append(f"{resource}.{key}: always returned by the vendor, missing")
    return found


@pytest.fixture
def clients() -> Iterator[tuple[httpx.Client, httpx.Client]]:
    sandbox = create_sandbox(seed=0)
    cb = in_process(sandbox.chargebee_app, "http://127.0.0.1/api/v2", CHARGEBEE_API_KEY)
    inv = in_process(sandbox.invoiced_app, "http://127.0.0.1", INVOICED_API_KEY)
    yield cb, inv
    cb.close()
    inv.close()


def ok(response: httpx.Response) -> Any:
    assert response.status_code < 300, response.text
    return response.json() if response.content else None


def chargebee_records(cb: httpx.Client) -> list[tuple[str, dict[str, Any]]]:
    """Every resource through every operation the Chargebee sandbox serves."""
    out: list[tuple[str, dict[str, Any]]] = []

    def keep(key: str, body: Any) -> None:
        out.append((key, body[key]))

    keep("customer", ok(cb.post("/customers", data={
        "id": "c1", "first_name": "Ada", "email": "ada@example.com", "company": "Acme",
        "billing_address[city]": "Oslo", "billing_address[country]": "NO",
        "meta_data": '{"tier": "gold"}'})))
    keep("customer", ok(cb.post("/customers", data={"id": "c2"})))
    keep("customer", ok(cb.post("/customers/c1", data={"phone": "+47 1"})))
    keep("customer", ok(cb.post("/customers/c1/update_billing_info",
                                data={"billing_address[zip]": "0150", "vat_number": "NO1"})))
    keep("customer", ok(cb.get("/customers/c1")))
    keep("item_family", ok(cb.post("/item_families", data={"id": "f1", "name": "Fam"})))
    keep("item_family", ok(cb.post("/item_families/f1", data={"description": "d"})))
    keep("item_family", ok(cb.get("/item_families/f1")))
    keep("item", ok(cb.post("/items", data={"id": "i1", "name": "Gold", "type": "plan",
                                            "item_family_id": "f1"})))
    keep("item", ok(cb.post("/items", data={"id": "i2", "name": "Extra", "type": "addon",
                                            "item_family_id": "f1"})))
    keep("item", ok(cb.post("/items/i1", data={"description": "d", "metadata": '{"a": 1}'})))
    keep("item", ok(cb.get("/items/i1")))
    keep("invoice", ok(cb.post("/invoices", data={
        "customer_id": "c1", "currency_code": "USD", "charges[amount][0]": "1000",
        "charges[description][0]": "Work"})))
    keep("invoice", ok(cb.get("/invoices/1")))
    keep("order", ok(cb.post("/orders", data={"id": "o1", "invoice_id": "1"})))
    keep("order", ok(cb.post("/orders/o1", data={"status": "processing", "note": "n"})))
    keep("order", ok(cb.get("/orders/o1")))
    keep("item_price", ok(cb.post("/item_prices", data={
        "id": "p1", "name": "Gold USD", "item_id": "i1", "price": "1500"})))
    keep("item_price", ok(cb.get("/item_prices/p1")))
    keep("subscription", ok(cb.post("/customers/c1/subscription_for_items", data={
        "id": "s1", "subscription_items[item_price_id][0]": "p1"})))
    keep("subscription", ok(cb.get("/subscriptions/s1")))
    keep("address", ok(cb.post("/addresses", data={
        "subscription_id": "s1", "label": "billing", "addr": "1 Main St", "city": "Oslo",
        "country": "NO", "zip": "0150"})))
    keep("address", ok(cb.get("/addresses", params={"subscription_id": "s1", "label": "billing"})))
    for path, key in (("/customers", "customer"), ("/item_families", "item_family"),
                      ("/items", "item"), ("/invoices", "invoice"), ("/orders", "order"),
                      ("/item_prices", "item_price"), ("/subscriptions", "subscription"),
                      ("/events", "event")):
        for entry in ok(cb.get(path, params={"limit": "100"}))["list"]:
            keep(key, entry)
    keep("order", ok(cb.post("/orders/o1/delete")))
    keep("item", ok(cb.post("/items/i2/delete")))
    keep("customer", ok(cb.post("/customers/c2/delete")))
    keep("item_family", ok(cb.post("/item_families/f1/delete")))
    return out


def test_every_chargebee_record_matches_the_vendors_definition(
    clients: tuple[httpx.Client, httpx.Client],
) -> None:
    records = chargebee_records(clients[0])
    assert {key for key, _ in records} == {
        "customer", "item_family", "item", "invoice", "order", "event", "item_price",
        "subscription", "address"}
    found = sorted({p for key, record in records for p in problems("chargebee", key, record)})
    assert found == []


def test_every_chargebee_order_line_item_matches_the_vendors_definition(
    clients: tuple[httpx.Client, httpx.Client],
) -> None:
    """An order's ``order_line_items`` are Chargebee's Order.OrderLineItem objects."""
    lines = [
        line
        for key, record in chargebee_records(clients[0])
        if key == "order"
        for line in record["order_line_items"]
    ]
    assert lines
    found = sorted({p for line in lines for p in problems("chargebee", "order_line_item", line)})
    assert found == []


def test_chargebee_event_content_matches_the_vendors_definition(
    clients: tuple[httpx.Client, httpx.Client],
) -> None:
    chargebee_records(clients[0])
    events = ok(clients[0].get("/events", params={"limit": "100"}))["list"]
    found = sorted({
        p for entry in events for key, record in entry["event"]["content"].items()
        for p in problems("chargebee", key, record)
    })
    assert events and found == []


def invoiced_records(inv: httpx.Client) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    person = ok(inv.post("/customers", json={"name": "Ada", "type": "person",
                                             "email": "ada@example.com",
                                             "metadata": {"chargebee_id": "c1"}}))
    out.append(("customer", person))
    out.append(("customer", ok(inv.patch(f"/customers/{person['id']}",
                                          json={"phone": "+47 1"}))))
    out.append(("customer", ok(inv.get(f"/customers/{person['id']}"))))
    out.append(("item", ok(inv.post("/items", json={"id": "gold", "name": "Gold",
                                                    "unit_cost": 10}))))
    out.append(("item", ok(inv.patch("/items/gold", json={"description": "d"}))))
    out.append(("item", ok(inv.get("/items/gold"))))
    invoice = ok(inv.post("/invoices", json={
        "customer": person["id"], "currency": "usd",
        "items": [{"name": "Work", "quantity": 1, "unit_cost": 10}]}))
    out.append(("invoice", invoice))
    out.append(("invoice", ok(inv.patch(f"/invoices/{invoice['id']}", json={"notes": "n"}))))
    out.append(("invoice", ok(inv.get(f"/invoices/{invoice['id']}"))))
    out.append(("invoice", ok(inv.post(f"/invoices/{invoice['id']}/void"))))
    for path, key in (("/customers", "customer"), ("/items", "item"), ("/invoices", "invoice"),
                      ("/events", "event")):
        out += [(key, record) for record in ok(inv.get(path))]
    out.append(("event", ok(inv.get(f"/events/{out[-1][1]['id']}"))))
    return out


def test_every_invoiced_record_matches_the_vendors_definition(
    clients: tuple[httpx.Client, httpx.Client],
) -> None:
    records = invoiced_records(clients[1])
    assert {key for key, _ in records} == {"customer", "item", "invoice", "event"}
    found = sorted({p for key, record in records for p in problems("invoiced", key, record)})
    assert found == []


def test_invoiced_events_match_the_vendors_definition(
    clients: tuple[httpx.Client, httpx.Client],
) -> None:
    """Each event's type is one the reference lists and its subject is a valid record."""
    invoiced_records(clients[1])
    events = ok(clients[1].get("/events", params={"per_page": "100"}))
    types = set(vendor_defs.load("invoiced")["event_types"])
    found = sorted({p for event in events for p in (
        *problems("invoiced", event["data"]["object"]["object"], event["data"]["object"]),
        *([] if event["type"] in types else [f"event.type: {event['type']!r} not listed"]),
    )})
    assert {e["type"] for e in events} == {
        "customer.created", "customer.updated", "invoice.created", "invoice.updated"}
    assert found == []


def test_every_invoiced_line_item_matches_the_vendors_definition(
    clients: tuple[httpx.Client, httpx.Client],
) -> None:
    """An invoice's ``items`` are Invoiced line item objects, every attribute present."""
    lines = [
        line
        for key, record in invoiced_records(clients[1])
        if key == "invoice"
        for line in record["items"]
    ]
    assert lines
    assert sorted({p for line in lines for p in problems("invoiced", "line_item", line)}) == []


@pytest.mark.parametrize("vendor", [chargebee.VENDOR, invoiced.VENDOR], ids=lambda v: v.name)
def test_every_served_list_is_defined_by_the_vendor(vendor: Any) -> None:
    """A route the sandbox serves is a resource the definitions describe."""
    defined = vendor_defs.load(vendor.name)["resources"]
    prefixes = {route.template.split("/")[1] for route in vendor.routes}
    singular = {
        p.removesuffix("ies") + "y" if p.endswith("ies")
        else p.removesuffix("es") if p.endswith("sses") else p.removesuffix("s")
        for p in prefixes
    }
    assert singular <= set(defined)
