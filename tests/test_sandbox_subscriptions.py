"""Chargebee item prices, subscriptions and their addresses in the emulator: the only way to
reach a Chargebee Address (no id, no list: retrieve and update by subscription_id + label)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from talkqa.sandbox.server import CHARGEBEE_API_KEY, create_sandbox
from tests.sandbox_fixtures import in_process


@pytest.fixture
def cb() -> Iterator[httpx.Client]:
    app = create_sandbox(seed=0, writes_per_second=1).chargebee_app
    client = in_process(app, "http://127.0.0.1/api/v2", CHARGEBEE_API_KEY)
    for path, data in (
        ("/customers", {"id": "c1", "first_name": "Ada"}),
        ("/item_families", {"id": "fam", "name": "Family"}),
        ("/items", {"id": "gold", "name": "Gold", "type": "plan", "item_family_id": "fam"}),
        ("/items", {"id": "extra", "name": "Extra", "type": "addon", "item_family_id": "fam"}),
    ):
        assert client.post(path, data=data).status_code == 200
    yield client
    client.close()


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def subscribe(cb: httpx.Client, ident: str = "s1", customer: str = "c1") -> dict[str, Any]:
    ok(cb.post("/item_prices", data={"id": "gold-usd", "name": "Gold USD", "item_id": "gold",
                                     "price": "1500", "currency_code": "USD"}))
    body = ok(cb.post(f"/customers/{customer}/subscription_for_items",
                      data={"id": ident, "subscription_items[item_price_id][0]": "gold-usd"}))
    assert body["customer"]["id"] == customer
    return body["subscription"]  # type: ignore[no-any-return]


def test_item_price_takes_the_items_family_and_type_and_needs_an_item(cb: httpx.Client) -> None:
    price = ok(cb.post("/item_prices", data={"id": "p", "name": "P", "item_id": "gold",
                                             "price": "990"}))["item_price"]
    assert (price["item_family_id"], price["item_type"], price["price"]) == ("fam", "plan", 990)
    assert (price["currency_code"], price["period_unit"], price["object"]) == (
        "USD", "month", "item_price")
    missing = cb.post("/item_prices", data={"id": "q", "name": "Q", "item_id": "nope"})
    assert missing.status_code == 404 and missing.json()["api_error_code"] == "resource_not_found"
    blank = cb.post("/item_prices", data={"id": "r", "item_id": "gold"})
    assert blank.status_code == 400 and blank.json()["param"] == "name"
    listed = ok(cb.get("/item_prices", params={"item_id[is]": "gold"}))["list"]
    assert [entry["item_price"]["id"] for entry in listed] == ["p"]


def test_subscription_for_items_needs_one_plan_and_is_listed_by_customer(
    cb: httpx.Client,
) -> None:
    made = subscribe(cb)
    assert (made["customer_id"], made["status"], made["currency_code"]) == ("c1", "active", "USD")
    assert made["subscription_items"][0]["unit_price"] == 1500
    ok(cb.post("/item_prices", data={"id": "extra-usd", "name": "Extra", "item_id": "extra"}))
    no_plan = cb.post("/customers/c1/subscription_for_items",
                      data={"subscription_items[item_price_id][0]": "extra-usd"})
    assert no_plan.status_code == 400
    assert no_plan.json()["param"] == "subscription_items[item_price_id][0]"
    unknown = cb.post("/customers/zz/subscription_for_items",
                      data={"subscription_items[item_price_id][0]": "gold-usd"})
    assert unknown.status_code == 404 and unknown.json()["message"].startswith("Customer not")
    ok(cb.post("/customers", data={"id": "c2", "company": "Acme"}))
    ok(cb.post("/customers/c2/subscription_for_items",
               data={"id": "s2", "subscription_items[item_price_id][0]": "gold-usd"}))
    listed = ok(cb.get("/subscriptions", params={"customer_id[is]": "c2"}))["list"]
    assert [(e["subscription"]["id"], e["customer"]["id"]) for e in listed] == [("s2", "c2")]
    assert ok(cb.get("/subscriptions/s1"))["subscription"]["id"] == "s1"
    assert cb.get("/subscriptions/s9").status_code == 404


def test_address_is_added_replaced_whole_and_read_by_subscription_and_label(
    cb: httpx.Client,
) -> None:
    subscribe(cb)
    key = {"subscription_id": "s1", "label": "billing"}
    before = cb.get("/addresses", params=key)
    assert before.status_code == 404 and before.json()["api_error_code"] == "resource_not_found"
    added = ok(cb.post("/addresses", data={**key, "addr": "1 Main St", "city": "Oslo",
                                           "country": "NO", "zip": "0150"}))["address"]
    assert added == {"label": "billing", "addr": "1 Main St", "city": "Oslo", "country": "NO",
                     "zip": "0150", "validation_status": "not_validated",
                     "subscription_id": "s1", "object": "address"}
    ok(cb.post("/addresses", data={**key, "city": "Bergen"}))
    assert ok(cb.get("/addresses", params=key))["address"] == {
        "label": "billing", "city": "Bergen", "validation_status": "not_validated",
        "subscription_id": "s1", "object": "address"}
    other = cb.get("/addresses", params={**key, "label": "shipping"})
    assert other.status_code == 404
    nowhere = cb.post("/addresses", data={"subscription_id": "s9", "label": "billing"})
    assert nowhere.status_code == 404 and nowhere.json()["param"] == "subscription_id"
    unlabelled = cb.post("/addresses", data={"subscription_id": "s1"})
    assert unlabelled.status_code == 400 and unlabelled.json()["param"] == "label"
    bad = cb.post("/addresses", data={**key, "country": "Norway"})
    assert bad.status_code == 400 and bad.json()["param"] == "country"
    stranger = cb.post("/addresses", data={**key, "line1": "x"})
    assert stranger.status_code == 400 and stranger.json()["param"] == "line1"


def test_an_address_change_is_a_subscription_change_in_the_events_feed(cb: httpx.Client) -> None:
    subscribe(cb)
    ok(cb.post("/addresses", data={"subscription_id": "s1", "label": "billing", "city": "Oslo"}))
    kinds = [e["event"]["event_type"] for e in ok(cb.get("/events"))["list"]]
    assert kinds[:2] == ["subscription_changed", "subscription_created"]
