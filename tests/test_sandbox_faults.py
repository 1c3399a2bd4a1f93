"""Each fault kind reaches a plain httpx client exactly as configured."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from talkqa.errors import UserError
from talkqa.sandbox.faults import FaultRule, parse_spec
from talkqa.sandbox.server import (
    CHARGEBEE_API_KEY,
    INVOICED_API_KEY,
    RunningSandboxes,
)
from tests import sandbox_fixtures

served = sandbox_fixtures.served  # both emulators over sockets, once per module


@pytest.fixture
def sb(served: RunningSandboxes) -> Iterator[RunningSandboxes]:
    served.reset()
    yield served
    served.sandbox.faults.clear()


def chargebee(sb: RunningSandboxes) -> httpx.Client:
    return httpx.Client(base_url=sb.chargebee_base_url, auth=(CHARGEBEE_API_KEY, ""), timeout=10)


def invoiced(sb: RunningSandboxes) -> httpx.Client:
    return httpx.Client(base_url=sb.invoiced_base_url, auth=(INVOICED_API_KEY, ""), timeout=10)


def faults(sb: RunningSandboxes, spec: str) -> None:
    response = httpx.post(
        f"{sb.invoiced_base_url}/__admin/faults", json={"spec": spec}, auth=(INVOICED_API_KEY, "")
    )
    assert response.status_code == 200, response.text


def test_spec_parsing() -> None:
    rules = parse_spec("chargebee.POST/customers=429,retry_after=2,times=1; invoiced=latency,ms=5")
    assert rules == [
        FaultRule(system="chargebee", method="POST", route="/customers", kind="429",
                  retry_after=2, times=1),
        FaultRule(system="invoiced", kind="latency", ms=5),
    ]
    assert parse_spec("*.GET=concurrency,limit=50")[0].limit == 50
    preset = parse_spec("chargebee-test-site")
    assert [(r.kind, r.method, r.limit) for r in preset] == [
        ("rpm", "*", 150), ("concurrency", "GET", 50), ("concurrency", "POST", 50)]
    assert parse_spec("chargebee=rpm,limit=150,retry_after=auto")[0].retry_after == "auto"
    for bad in ("chargebee", "stripe=500", "chargebee=teapot", "chargebee=500,retry_after=1",
                "chargebee=rpm", "chargebee=latency", "chargebee=500,times=x",
                "chargebee=500,colour=red", "chargebee=500,times"):
        with pytest.raises(UserError):
            parse_spec(bad)


def test_429_with_and_without_retry_after(sb: RunningSandboxes) -> None:
    faults(sb, "chargebee.GET/customers=429,retry_after=3,times=1;"
               "invoiced.GET/customers=429,times=1")
    with chargebee(sb) as cb, invoiced(sb) as inv:
        limited = cb.get("/customers")
        assert limited.status_code == 429 and limited.headers["retry-after"] == "3"
        assert limited.json()["api_error_code"] == "api_request_limit_exceeded"
        assert limited.json()["type"] == "operation_failed"
        assert cb.get("/customers").status_code == 200  # times=1
        plain = inv.get("/customers")
        assert plain.status_code == 429 and "retry-after" not in plain.headers
        assert plain.json()["message"] == "You're moving too fast"
    stats = sb.stats()["faults"]
    assert stats == {"chargebee GET /customers 429": 1, "invoiced GET /customers 429": 1}


@pytest.mark.parametrize(("status", "code"), [(500, "internal_error"),
                                              (503, "internal_temporary_error")])
def test_server_errors_in_vendor_shape(sb: RunningSandboxes, status: int, code: str) -> None:
    faults(sb, f"chargebee.POST/customers={status},skip=1,times=1;invoiced={status},times=1")
    with chargebee(sb) as cb, invoiced(sb) as inv:
        assert cb.post("/customers", data={"id": "a"}).status_code == 200  # skip=1
        failed = cb.post("/customers", data={"id": "b"})
        assert failed.status_code == status and failed.json()["api_error_code"] == code
        assert cb.get("/customers/b").status_code == 404  # the failed write was not applied
        other = inv.get("/items")
        assert other.status_code == status and other.json()["type"] == "api"


def test_latency_is_added(sb: RunningSandboxes) -> None:
    faults(sb, "invoiced.GET/items=latency,ms=200")
    with invoiced(sb) as inv:
        start = time.perf_counter()
        assert inv.get("/items").status_code == 200
        slow = time.perf_counter() - start
        start = time.perf_counter()
        assert inv.get("/customers").status_code == 200
        fast = time.perf_counter() - start
    assert slow >= 0.2 and fast < 0.2


@pytest.mark.parametrize(("kind", "applied"), [("drop_before", False), ("drop_after", True)])
def test_dropped_connection_before_or_after_the_write(
    sb: RunningSandboxes, kind: str, applied: bool
) -> None:
    faults(sb, f"chargebee.POST/customers={kind},times=1;invoiced.POST/items={kind},times=1")
    with chargebee(sb) as cb, invoiced(sb) as inv:
        with pytest.raises(httpx.RemoteProtocolError):
            cb.post("/customers", data={"id": "c1"})
        assert (cb.get("/customers/c1").status_code == 200) is applied
        with pytest.raises(httpx.RemoteProtocolError):
            inv.post("/items", json={"id": "i1", "name": "Item"})
        assert (inv.get("/items/i1").status_code == 200) is applied
        assert cb.get("/customers").status_code == 200  # the server survived


def test_a_retry_after_a_dropped_write_is_safe_with_an_idempotency_key(
    sb: RunningSandboxes,
) -> None:
    faults(sb, "chargebee.POST/customers=drop_after,times=1")
    headers = {"chargebee-idempotency-key": "retry-me"}
    with chargebee(sb) as cb:
        with pytest.raises(httpx.RemoteProtocolError):
            cb.post("/customers", data={"first_name": "Ada"}, headers=headers)
        retried = cb.post("/customers", data={"first_name": "Ada"}, headers=headers)
        assert retried.status_code == 200
        assert retried.headers["chargebee-idempotency-replayed"] == "true"
        assert len(cb.get("/customers").json()["list"]) == 1


def test_requests_per_minute_limit(sb: RunningSandboxes) -> None:
    faults(sb, "chargebee=rpm,limit=3,retry_after=auto")
    with chargebee(sb) as cb:
        statuses = [cb.get("/customers").status_code for _ in range(5)]
        assert statuses == [200, 200, 200, 429, 429]
        retry = int(cb.get("/customers").headers["retry-after"])
        assert 1 <= retry <= 60
    with invoiced(sb) as inv:
        assert inv.get("/customers").status_code == 200  # the limit is per system


def test_concurrent_request_limit(sb: RunningSandboxes) -> None:
    faults(sb, "chargebee.GET=latency,ms=600;chargebee.GET=concurrency,limit=2")
    statuses: list[int] = []
    lock = threading.Lock()

    def call() -> None:
        with chargebee(sb) as cb:
            status = cb.get("/customers").status_code
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200, 200, 429, 429]
    with chargebee(sb) as cb:  # slots are released once the requests end
        assert cb.get("/customers").status_code == 200


def test_in_process_drop_raises_the_same_httpx_error() -> None:
    from talkqa.sandbox.server import create_apps

    cb_app, _ = create_apps(faults="chargebee.POST=drop_after")
    client = sandbox_fixtures.in_process(cb_app, "http://127.0.0.1/api/v2", CHARGEBEE_API_KEY)
    with pytest.raises(httpx.RemoteProtocolError):
        client.post("/customers", data={"id": "c1"})
    assert client.get("/customers/c1").status_code == 200


def test_admin_faults_json_rules_and_delete(sb: RunningSandboxes) -> None:
    url = f"{sb.chargebee_base_url.removesuffix('/api/v2')}/__admin/faults"
    admin = (CHARGEBEE_API_KEY, "")
    added = httpx.post(url, json={"rules": [{"route": "/items*", "kind": "503"}]}, auth=admin)
    assert added.json()["rules"][0]["system"] == "chargebee"  # defaults to the app's system
    with chargebee(sb) as cb:
        assert cb.get("/items").status_code == 503
        assert cb.get("/customers").status_code == 200
        assert httpx.post(url, json={"rules": [{"kind": "boom"}]}, auth=admin).status_code == 400
        assert httpx.delete(url, auth=admin).json() == {"rules": []}
        assert cb.get("/items").status_code == 200


def test_probability_and_seed_parse_and_are_checked() -> None:
    rule = parse_spec("*=503,p=0.1,seed=7,retry_after=2")[0]
    assert (rule.kind, rule.p, rule.seed, rule.retry_after) == ("503", 0.1, 7, 2)
    for bad in ("*=503,p=0", "*=503,p=1.5", "*=503,p=often", "*=503,seed=-1"):
        with pytest.raises(UserError):
            parse_spec(bad)


def _pattern(spec: str, requests: int) -> list[bool]:
    rule = parse_spec(spec)[0]
    return [rule.draw() for _ in range(requests)]


def test_seeded_random_faults_repeat_and_differ_by_seed() -> None:
    first = _pattern("*=500,p=0.3,seed=7", 200)
    assert first == _pattern("*=500,p=0.3,seed=7", 200)
    assert first != _pattern("*=500,p=0.3,seed=8", 200)
    assert 30 <= sum(first) <= 90  # about 60 of 200: random, not every nth
    assert all(_pattern("*=500", 20))  # no p: every matching request


def test_random_503_with_retry_after_repeats_after_a_reset(sb: RunningSandboxes) -> None:
    spec = "invoiced.GET=503,p=0.5,seed=7,retry_after=4"
    base = f"{sb.invoiced_base_url}/__admin"

    def statuses() -> list[int]:
        with invoiced(sb) as inv:
            answers = [inv.get("/items") for _ in range(12)]
        failed = [a for a in answers if a.status_code == 503]
        assert all(a.headers["retry-after"] == "4" for a in failed)
        return [a.status_code for a in answers]

    faults(sb, spec)
    first = statuses()
    assert set(first) == {200, 503}
    httpx.post(f"{base}/reset", json={}, auth=(INVOICED_API_KEY, "")).raise_for_status()
    faults(sb, spec)
    assert statuses() == first
