"""Event feeds and webhook deliveries of both sandboxes, as the vendors define them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from talkqa.errors import UserError
from talkqa.sandbox.faults import parse_spec
from talkqa.sandbox.server import CHARGEBEE_API_KEY, INVOICED_API_KEY, Sandbox, create_sandbox
from tests.sandbox_fixtures import in_process
from tests.webhook_receiver import receiver

ADMIN = "http://127.0.0.1/__admin"  # beside the vendor prefix, not under it
FAST = [0.01, 0.01, 0.01]  # retry delays short enough for a unit test


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    made = create_sandbox(seed=0)
    yield made
    made.webhooks.close()


def clients(sandbox: Sandbox) -> tuple[httpx.Client, httpx.Client]:
    return (in_process(sandbox.chargebee_app, "http://127.0.0.1/api/v2", CHARGEBEE_API_KEY),
            in_process(sandbox.invoiced_app, "http://127.0.0.1", INVOICED_API_KEY))


def hook(client: httpx.Client, **endpoint: Any) -> dict[str, Any]:
    answer = client.post(ADMIN + "/webhooks", json={"endpoints": [endpoint]})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_chargebee_posts_the_event_with_basic_auth(sandbox: Sandbox) -> None:
    cb, _ = clients(sandbox)
    with receiver() as endpoint:
        shown = hook(cb, url=endpoint.url, username="hooks", password="s3cret")
        assert shown["endpoints"][0]["basic_auth"] is True
        assert "s3cret" not in json.dumps(shown)  # credentials never shown back
        cb.post("/customers", data={"id": "c1", "first_name": "Ada"})
        got = endpoint.wait_for(1)[0]
    assert base64.b64decode(got.headers["authorization"].removeprefix("Basic ")) == (
        b"hooks:s3cret")
    sent = json.loads(got.body)
    assert sandbox.webhooks.wait_idle(5)
    stored = cb.get(f"/events/{sent['id']}").json()["event"]
    assert (sent["event_type"], sent["content"]["customer"]["id"]) == ("customer_created", "c1")
    assert sent["webhook_status"] == "scheduled" and stored["webhook_status"] == "succeeded"
    assert {**sent, "webhook_status": "succeeded"} == stored  # the feed's event, as sent


def test_invoiced_signs_the_event_and_names_what_an_update_changed(sandbox: Sandbox) -> None:
    _, inv = clients(sandbox)
    with receiver() as endpoint:
        hook(inv, url=endpoint.url, secret="whsec")
        person = inv.post("/customers", json={"name": "Ada", "type": "person"}).json()
        inv.patch(f"/customers/{person['id']}", json={"name": "Ada L"})
        inv.post("/items", json={"id": "gold", "name": "Gold"})  # items have no event type
        created, updated = endpoint.wait_for(2)
    for got in (created, updated):
        wanted = hmac.new(b"whsec", got.body, hashlib.sha256).hexdigest()
        assert got.headers["x-invoiced-signature"] == wanted
        assert got.headers["user-agent"] == "Invoiced/1.0"
    event = json.loads(updated.body)
    assert (json.loads(created.body)["type"], event["type"]) == (
        "customer.created", "customer.updated")
    assert event["data"]["object"]["name"] == "Ada L"
    assert event["data"]["previous"] == {"name": "Ada"}
    assert sandbox.webhooks.wait_idle(5) and sandbox.webhooks.stats()["delivered"] == 2


def test_invoiced_events_feed_is_newest_first_and_filters_by_subject(sandbox: Sandbox) -> None:
    _, inv = clients(sandbox)
    a = inv.post("/customers", json={"name": "A"}).json()
    b = inv.post("/customers", json={"name": "B"}).json()
    invoice = inv.post("/invoices", json={
        "customer": a["id"], "items": [{"name": "Work", "unit_cost": 5}]}).json()
    inv.post(f"/invoices/{invoice['id']}/void")
    inv.delete(f"/customers/{b['id']}")
    feed = inv.get("/events").json()
    assert [e["type"] for e in feed] == [
        "customer.deleted", "invoice.updated", "invoice.created", "customer.created",
        "customer.created"]
    assert feed[1]["data"]["previous"] == {"status": "not_sent"}
    about_b = inv.get("/events", params={"related_to": f"customer,{b['id']}"}).json()
    assert [e["type"] for e in about_b] == ["customer.deleted", "customer.created"]
    assert inv.get(f"/events/{feed[0]['id']}").json() == feed[0]
    assert inv.get("/events", params={"related_to": "customer"}).status_code == 400
    assert inv.get("/events", params={"sort": "id asc"}).status_code == 400  # not documented
    paged = inv.get("/events", params={"per_page": "2", "page": "3"})
    assert [e["id"] for e in paged.json()] == [feed[4]["id"]]


def test_a_failed_delivery_is_retried_then_given_up(sandbox: Sandbox) -> None:
    cb, _ = clients(sandbox)
    with receiver([500, 503]) as endpoint:
        hook(cb, url=endpoint.url, retry_delays=FAST)
        cb.post("/customers", data={"id": "c1"})
        attempts = endpoint.wait_for(3)
        assert sandbox.webhooks.wait_idle(5)
    sent = [json.loads(a.body) for a in attempts]
    assert [e["webhook_status"] for e in sent] == ["scheduled", "re_scheduled", "re_scheduled"]
    assert all({**e, "webhook_status": ""} == {**sent[0], "webhook_status": ""} for e in sent)
    assert {k: sandbox.webhooks.stats()[k] for k in ("delivered", "retried", "failed")} == {
        "delivered": 1, "retried": 2, "failed": 0}
    with receiver([500] * 10) as endpoint:
        hook(cb, url=endpoint.url, retry_delays=[0.01])
        cb.post("/customers", data={"id": "c2"})
        assert len(endpoint.wait_for(2)) == 2
        assert sandbox.webhooks.wait_idle(5)
        assert len(endpoint.got) == 2  # one try and one retry, then given up
    event = cb.get("/events", params={"limit": "1"}).json()["list"][0]["event"]
    assert event["webhook_status"] == "failed"
    assert sandbox.webhooks.stats()["failed"] == 1


def test_an_unreachable_endpoint_is_a_failed_delivery_not_a_crash(sandbox: Sandbox) -> None:
    cb, _ = clients(sandbox)
    with receiver() as endpoint:
        closed = endpoint.url
    hook(cb, url=closed, retry_delays=[0.01])
    cb.post("/customers", data={"id": "c1"})
    assert sandbox.webhooks.wait_idle(10)
    assert sandbox.webhooks.stats()["failed"] == 1


def test_faults_lose_duplicate_and_delay_deliveries() -> None:
    spec = ("chargebee.WEBHOOK/customer_changed=lose,times=1;"
            "chargebee.WEBHOOK/item_family_created=duplicate;"
            "chargebee.WEBHOOK/customer_created=latency,ms=3000")
    sandbox = create_sandbox(seed=0, faults=spec)
    cb, _ = clients(sandbox)
    try:
        with receiver() as endpoint:
            hook(cb, url=endpoint.url)
            cb.post("/customers", data={"id": "c1"})
            cb.post("/customers/c1", data={"first_name": "lost"})
            cb.post("/customers/c1", data={"first_name": "kept"})
            cb.post("/item_families", data={"id": "f", "name": "F"})
            got = endpoint.wait_for(4)
            assert sandbox.webhooks.wait_idle(5)
            assert len(endpoint.got) == 4
        kinds = [json.loads(g.body)["event_type"] for g in got]
        # the delayed create arrives last; the first change never arrives; the family twice
        assert kinds == ["customer_changed", "item_family_created", "item_family_created",
                         "customer_created"]
        assert json.loads(got[0].body)["content"]["customer"]["first_name"] == "kept"
        stats = sandbox.stats()
        assert stats["webhooks"]["lost"] == 1 and stats["webhooks"]["duplicated"] == 1
        assert stats["faults"]["chargebee WEBHOOK /customer_changed lose"] == 1
        feed = cb.get("/events", params={"event_type[is]": "customer_changed"}).json()["list"]
        assert len(feed) == 2  # a lost delivery is still in the feed, to catch up from
    finally:
        sandbox.webhooks.close()


def test_webhook_fault_kinds_and_targets_go_together() -> None:
    with pytest.raises(UserError, match="WEBHOOK target"):
        parse_spec("chargebee.POST=lose")
    with pytest.raises(UserError, match="takes latency, duplicate, lose only"):
        parse_spec("chargebee.WEBHOOK=500")
    (everything,) = parse_spec("*=latency,ms=5")
    assert not everything.matches("chargebee", "WEBHOOK", "/customer_created", "/customer_created")
    (deliveries,) = parse_spec("*.WEBHOOK=latency,ms=5")
    assert not deliveries.matches("chargebee", "GET", "/customers", "/customers")
    assert deliveries.matches("invoiced", "WEBHOOK", "/invoice.created", "/invoice.created")


def test_a_reset_is_a_new_generation_and_ends_pending_deliveries() -> None:
    sandbox = create_sandbox(seed=0, faults="chargebee.WEBHOOK=latency,ms=5000")
    cb, _ = clients(sandbox)
    try:
        with receiver() as endpoint:
            hook(cb, url=endpoint.url)
            before = cb.get(ADMIN + "/stats").json()["generation"]
            cb.post("/customers", data={"id": "c1"})
            assert sandbox.webhooks.stats()["pending"] == 1
            assert cb.post(ADMIN + "/reset").status_code == 200
            assert sandbox.webhooks.wait_idle(5)
            assert endpoint.got == []  # the event it announced no longer exists
            assert cb.get(ADMIN + "/stats").json()["generation"] == before + 1
            assert len(cb.get(ADMIN + "/webhooks").json()["endpoints"]) == 1  # settings stay
            cb.delete(ADMIN + "/faults")  # the next delivery goes at once
            cb.post("/customers", data={"id": "c2"})
            (got,) = endpoint.wait_for(1)
        assert json.loads(got.body)["content"]["customer"]["id"] == "c2"
    finally:
        sandbox.webhooks.close()


def test_endpoints_are_validated_filtered_and_removed(sandbox: Sandbox) -> None:
    cb, inv = clients(sandbox)
    bad = cb.post(ADMIN + "/webhooks", json={"endpoints": [{"url": "ftp://x"}]})
    assert bad.status_code == 400 and "http(s) URL" in bad.json()["error"]
    odd = cb.post(ADMIN + "/webhooks", json={"endpoints": [{"url": "http://x", "pw": "1"}]})
    assert odd.status_code == 400 and "unknown field(s) pw" in odd.json()["error"]
    with receiver() as endpoint:
        hook(cb, url=endpoint.url, event_types=["customer_changed"])
        cb.post("/customers", data={"id": "c1"})
        cb.post("/customers/c1", data={"first_name": "A"})
        (got,) = endpoint.wait_for(1)
        assert json.loads(got.body)["event_type"] == "customer_changed"
        assert inv.delete(ADMIN + "/webhooks").json() == {"endpoints": []}
        cb.post("/customers/c1", data={"first_name": "B"})
        assert sandbox.webhooks.wait_idle(5) and len(endpoint.got) == 1
    assert inv.get(ADMIN + "/webhooks").json() == {"endpoints": []}
