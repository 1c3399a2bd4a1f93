"""The official Chargebee SDK (3.x) against the sandbox: its typed errors carry vendor codes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from talkqa.sandbox.server import RunningSandboxes
from tests import sandbox_fixtures
from tests.webhook_receiver import receiver

chargebee = pytest.importorskip("chargebee")
pytestmark = pytest.mark.sdk

served = sandbox_fixtures.served  # both emulators over sockets, once per module


@pytest.fixture
def cb(served: RunningSandboxes) -> Iterator[Any]:
    served.reset()
    previous = chargebee.Chargebee.verify_ca_certs
    chargebee.Chargebee.verify_ca_certs = False  # class attribute: plain http needs it off
    client = chargebee.Chargebee(api_key=served.env["CHARGEBEE_API_KEY"],
                                 site=served.env["CHARGEBEE_SITE"], protocol="http")
    client.env.api_endpoint = served.chargebee_base_url
    yield client
    chargebee.Chargebee.verify_ca_certs = previous


def all_pages(resource: Any, key: str, params: dict[str, Any]) -> tuple[list[str], int]:
    ids: list[str] = []
    pages = 0
    offset = None
    while True:
        result = resource.list({**params, **({"offset": offset} if offset else {})})
        ids += [getattr(entry, key).id for entry in result.list]
        pages += 1
        offset = result.next_offset
        if not offset:
            return ids, pages


def test_customers_full_cycle(cb: Any) -> None:
    made = [cb.Customer.create({"id": f"c{n}", "first_name": f"N{n}",
                                "billing_address": {"city": "Oslo", "country": "NO"},
                                "meta_data": {"n": n}}).customer for n in range(5)]
    assert made[0].billing_address.city == "Oslo" and made[0].meta_data == {"n": 0}
    assert cb.Customer.retrieve("c3").customer.first_name == "N3"
    ids, pages = all_pages(cb.Customer, "customer", {"limit": 2})
    assert ids == [f"c{n}" for n in reversed(range(5))] and pages == 3  # newest first
    filtered, _ = all_pages(cb.Customer, "customer", {"limit": 10, "id": {"in": ["c1", "c4"]}})
    assert filtered == ["c4", "c1"]
    named, _ = all_pages(cb.Customer, "customer", {"first_name": {"starts_with": "N3"}})
    assert named == ["c3"]
    with pytest.raises(chargebee.InvalidRequestError) as refused:  # not a vendor operator
        cb.Customer.list({"first_name": {"in": ["N1"]}})
    assert refused.value.param == "first_name[in]"
    assert cb.Customer.update("c1", {"email": "n1@example.com"}).customer.email == "n1@example.com"
    billed = cb.Customer.update_billing_info("c1", {"billing_address": {"city": "Bergen"}})
    assert billed.customer.billing_address.city == "Bergen"
    assert cb.Customer.delete("c1").customer.deleted is True
    with pytest.raises(chargebee.InvalidRequestError) as missing:
        cb.Customer.retrieve("c1")
    assert (missing.value.http_status_code, missing.value.api_error_code) == (
        404, "resource_not_found")
    with pytest.raises(chargebee.InvalidRequestError) as duplicate:
        cb.Customer.create({"id": "c2"})
    assert (duplicate.value.http_status_code, duplicate.value.api_error_code) == (
        400, "duplicate_entry")
    assert duplicate.value.param == "id"


def test_items_full_cycle(cb: Any) -> None:
    cb.ItemFamily.create({"id": "fam", "name": "Family"})
    for n in range(3):
        cb.Item.create({"id": f"i{n}", "name": f"Item {n}", "type": "plan",
                        "item_family_id": "fam", "metadata": {"n": n}})
    assert cb.Item.retrieve("i2").item.metadata == {"n": 2}
    ids, pages = all_pages(cb.Item, "item", {"limit": 1})
    assert ids == ["i2", "i1", "i0"] and pages == 3  # newest first
    assert cb.Item.update("i0", {"description": "first"}).item.description == "first"
    assert cb.Item.delete("i0").item.status == "deleted"
    with pytest.raises(chargebee.InvalidRequestError) as missing_param:
        cb.Item.create({"id": "i9", "name": "No type", "item_family_id": "fam"})
    assert missing_param.value.api_error_code == "param_wrong_value"
    assert missing_param.value.param == "type"
    with pytest.raises(chargebee.InvalidRequestError) as missing:
        cb.Item.retrieve("nope")
    assert missing.value.http_status_code == 404


def test_orders_full_cycle(cb: Any) -> None:
    cb.Customer.create({"id": "c1", "preferred_currency_code": "EUR"})
    for n in range(3):
        invoice = cb.Invoice.create({"customer_id": "c1", "currency_code": "EUR",
                                     "charges": [{"amount": 1000 * (n + 1),
                                                  "description": f"charge {n}"}]}).invoice
        order = cb.Order.create({"id": f"o{n}", "invoice_id": invoice.id}).order
        assert (order.customer_id, order.currency_code) == ("c1", "EUR")
    assert cb.Order.retrieve("o2").order.total == 3000
    ids, pages = all_pages(cb.Order, "order", {"limit": 2})
    assert ids == ["o2", "o1", "o0"] and pages == 2  # newest first
    assert cb.Order.update("o0", {"status": "shipped"}).order.status == "shipped"
    assert cb.Order.delete("o0").order.deleted is True
    with pytest.raises(chargebee.InvalidRequestError) as missing:
        cb.Order.retrieve("o0")
    assert missing.value.api_error_code == "resource_not_found"
    with pytest.raises(chargebee.InvalidRequestError) as no_invoice:
        cb.Order.create({"id": "o9"})
    assert (no_invoice.value.http_status_code, no_invoice.value.param) == (400, "invoice_id")


def test_subscriptions_and_addresses_full_cycle(cb: Any) -> None:
    """Product catalog 2.0 as the SDK sends it: item price, subscription for items, and the
    address retrieved and replaced by subscription_id + label."""
    cb.Customer.create({"id": "c1", "first_name": "Ada"})
    cb.ItemFamily.create({"id": "fam", "name": "Family"})
    cb.Item.create({"id": "gold", "name": "Gold", "type": "plan", "item_family_id": "fam"})
    price = cb.ItemPrice.create({"id": "gold-usd", "name": "Gold USD", "item_id": "gold",
                                 "price": 900, "currency_code": "USD"}).item_price
    assert (price.item_type, price.price) == ("plan", 900)
    made = cb.Subscription.create_with_items(
        "c1", {"id": "s1", "subscription_items": [{"item_price_id": "gold-usd", "quantity": 2}]})
    assert (made.subscription.customer_id, made.customer.id) == ("c1", "c1")
    assert made.subscription.subscription_items[0].amount == 1800
    listed = cb.Subscription.list({"customer_id": {"is": "c1"}}).list
    assert [(e.subscription.id, e.customer.id) for e in listed] == [("s1", "c1")]
    assert cb.Subscription.retrieve("s1").subscription.status == "active"
    key = {"subscription_id": "s1", "label": "billing"}
    with pytest.raises(chargebee.InvalidRequestError) as missing:
        cb.Address.retrieve(key)
    assert (missing.value.http_status_code, missing.value.api_error_code) == (
        404, "resource_not_found")
    cb.Address.update({**key, "addr": "Storgata 1", "city": "Oslo", "country": "NO"})
    replaced = cb.Address.update({**key, "city": "Bergen"}).address
    assert (replaced.city, replaced.addr) == ("Bergen", None)  # replaced whole
    assert cb.Address.retrieve(key).address.city == "Bergen"
    with pytest.raises(chargebee.InvalidRequestError) as nowhere:
        cb.Address.update({"subscription_id": "s9", "label": "billing"})
    assert (nowhere.value.http_status_code, nowhere.value.param) == (404, "subscription_id")


@pytest.mark.parametrize("resource", ["Customer", "Item", "Order"])
def test_wrong_key_is_an_authentication_error(
    served: RunningSandboxes, cb: Any, resource: str
) -> None:
    bad = chargebee.Chargebee(api_key="wrong", site="x", protocol="http")
    bad.env.api_endpoint = served.chargebee_base_url
    with pytest.raises(chargebee.APIError) as denied:
        getattr(bad, resource).list({"limit": 1})
    assert (denied.value.http_status_code, denied.value.api_error_code) == (
        401, "api_authentication_failed")
    with pytest.raises(chargebee.APIError) as denied_write:
        getattr(bad, resource).retrieve("any")
    assert denied_write.value.http_status_code == 401


def test_idempotency_replay_through_the_sdk(cb: Any) -> None:
    headers = {"chargebee-idempotency-key": "same"}
    first = cb.Customer.create({"first_name": "Ada"}, headers)
    second = cb.Customer.create({"first_name": "Ada"}, headers)
    assert first.customer.id == second.customer.id
    assert second.headers.get("chargebee-idempotency-replayed") == "true"
    assert len(cb.Customer.list({"limit": 10}).list) == 1


def test_the_sdk_lists_events_and_parses_a_delivered_webhook(
    served: RunningSandboxes, cb: Any
) -> None:
    admin = httpx.Client(base_url=f"http://127.0.0.1:{served.chargebee_port}/__admin",
                         auth=(served.env["CHARGEBEE_API_KEY"], ""))
    with receiver() as endpoint, admin:
        admin.post("/webhooks", json={"endpoints": [
            {"url": endpoint.url, "username": "u", "password": "p"}]}).raise_for_status()
        try:
            cb.ItemFamily.create({"id": "fam", "name": "Family"})
            for n in range(4):
                cb.Customer.create({"id": f"c{n}", "first_name": f"N{n}"})
                cb.Customer.update(f"c{n}", {"last_name": "L"})
            cb.Item.create({"id": "i1", "name": "Gold", "type": "plan", "item_family_id": "fam"})
            delivered = endpoint.wait_for(10)
        finally:
            admin.delete("/webhooks").raise_for_status()
    oldest_first = {"asc": "occurred_at"}
    every = [e.event for e in cb.Event.list({"limit": 100, "sort_by": oldest_first}).list]
    assert len(every) == 10
    since = every[4].occurred_at
    wanted = {"customer_created", "customer_changed"}
    listed = cb.Event.list({"limit": 100, "sort_by": oldest_first,
                            "occurred_at": {"after": since},
                            "event_type": {"in": sorted(wanted)}}).list
    assert [e.event.id for e in listed] == [
        e.id for e in every if e.event_type in wanted and e.occurred_at > since]
    assert listed and len(listed) < len(every)
    parsed = cb.Event.deserialize(delivered[-1].body.decode())
    assert (parsed.event_type, parsed.content["item"]["id"]) == ("item_created", "i1")
    assert parsed.id == every[-1].id and parsed.api_version == "v2"
