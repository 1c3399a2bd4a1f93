"""The shared transport rules: retries, Retry-After, the request budget, typed errors, counts."""

from __future__ import annotations

import base64
from collections.abc import Callable

import httpx
import pytest

from talkqa.systems.base import (
    ApiError,
    AuthenticationFailed,
    BadRequest,
    NotFound,
    RateLimited,
    ServerError,
    UnexpectedResponse,
)
from talkqa.systems.http import (
    CallCounter,
    RateBudget,
    RetryPolicy,
    VendorHttp,
    retry_after_seconds,
)

Handler = Callable[[httpx.Request], httpx.Response]


class FakeTime:
    """A clock that only moves when something sleeps on it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def scripted(*responses: httpx.Response | Exception) -> tuple[Handler, list[httpx.Request]]:
    """A handler answering with ``responses`` in order, recording each request."""
    seen: list[httpx.Request] = []
    queue = list(responses)

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return handle, seen


def vendor(
    handler: Handler, time: FakeTime, *, budget: RateBudget | None = None, attempts: int = 5
) -> VendorHttp:
    client = httpx.Client(transport=httpx.MockTransport(handler))
    return VendorHttp(
        client,
        system="chargebee",
        base_url="https://acme-test.chargebee.com/api/v2/",
        api_key="secret-key",
        retry=RetryPolicy(max_attempts=attempts),
        sleep=time.sleep,
        budget=budget,
        counter=CallCounter(),
    )


def test_basic_auth_uses_the_key_as_username_and_an_empty_password() -> None:
    handle, seen = scripted(httpx.Response(200, json={}))
    vendor(handle, FakeTime()).request("GET", "/customers", resource="customers")
    expected = "Basic " + base64.b64encode(b"secret-key:").decode()
    assert seen[0].headers["authorization"] == expected
    assert str(seen[0].url) == "https://acme-test.chargebee.com/api/v2/customers"


def test_path_arguments_are_url_quoted_but_the_template_is_counted() -> None:
    handle, seen = scripted(httpx.Response(200, json={}))
    http = vendor(handle, FakeTime())
    http.request("GET", "/customers/{id}", resource="customers", path_args={"id": "a b/c"})
    assert seen[0].url.raw_path == b"/api/v2/customers/a%20b%2Fc"
    assert http.counter.counts() == {"chargebee GET /customers/{id}": 1}


def test_429_is_retried_after_the_seconds_retry_after_asks_for() -> None:
    time = FakeTime()
    handle, seen = scripted(
        httpx.Response(429, headers={"Retry-After": "7"}, json={"message": "slow down"}),
        httpx.Response(200, json={"ok": True}),
    )
    http = vendor(handle, time)
    response = http.request("GET", "/customers", resource="customers")
    assert response.json() == {"ok": True}
    assert time.sleeps == [7.0]
    assert len(seen) == 2
    assert http.counter.total == 2
    assert http.counter.retries == 1


def test_5xx_backs_off_exponentially_then_raises_server_error_naming_the_entity() -> None:
    time = FakeTime()
    failure = {"message": "try later", "api_error_code": "internal_temporary_error"}
    handle, seen = scripted(*[httpx.Response(503, json=failure) for _ in range(4)])
    with pytest.raises(ServerError) as caught:
        vendor(handle, time, attempts=4).request(
            "GET", "/customers/{id}", resource="customers", path_args={"id": "c1"}, entity_id="c1"
        )
    assert len(seen) == 4
    assert time.sleeps == [0.5, 1.0, 2.0]
    assert caught.value.status == 503
    assert str(caught.value) == (
        "chargebee customers c1: HTTP 503 internal_temporary_error: try later"
    )


def test_retry_after_is_capped_and_backoff_is_capped() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=5.0, max_retry_after=60.0)
    assert policy.delay(1, 3600.0) == 60.0
    assert [policy.delay(n, None) for n in (1, 2, 3, 4, 5)] == [1.0, 2.0, 4.0, 5.0, 5.0]


@pytest.mark.parametrize(
    ("raw", "seconds"), [("3", 3.0), (" 1.5 ", 1.5), ("-1", None), ("Wed, 21 Oct 2026", None)]
)
def test_retry_after_reads_only_seconds(raw: str, seconds: float | None) -> None:
    assert retry_after_seconds(httpx.Response(429, headers={"Retry-After": raw})) == seconds


def test_a_429_that_persists_becomes_rate_limited() -> None:
    time = FakeTime()
    body = {"message": "too many", "api_error_code": "api_request_limit_exceeded"}
    handle, seen = scripted(*[httpx.Response(429, json=body) for _ in range(3)])
    with pytest.raises(RateLimited, match="api_request_limit_exceeded"):
        vendor(handle, time, attempts=3).request("GET", "/items", resource="items")
    assert len(seen) == 3
    assert len(time.sleeps) == 2


def test_connection_errors_are_retried() -> None:
    time = FakeTime()
    handle, seen = scripted(httpx.ConnectError("refused"), httpx.Response(200, json={}))
    vendor(handle, time).request(
        "POST", "/customers", resource="customers", content=b"first_name=Ada"
    )
    assert len(seen) == 2
    assert time.sleeps == [0.5]


def test_a_write_that_may_have_arrived_is_not_resent_without_an_idempotency_key() -> None:
    handle, seen = scripted(httpx.ReadTimeout("slow"), httpx.Response(200, json={}))
    with pytest.raises(ServerError, match="connection failed after 1 attempt"):
        vendor(handle, FakeTime()).request("POST", "/customers", resource="customers")
    assert len(seen) == 1


def test_a_write_with_an_idempotency_key_is_resent_after_a_timeout() -> None:
    handle, seen = scripted(httpx.ReadTimeout("slow"), httpx.Response(200, json={}))
    vendor(handle, FakeTime()).request("POST", "/customers", resource="customers", idempotent=True)
    assert len(seen) == 2


def test_connection_errors_that_persist_become_server_errors() -> None:
    handle, _ = scripted(*[httpx.ConnectError("refused") for _ in range(2)])
    with pytest.raises(ServerError, match="chargebee items: connection failed after 2"):
        vendor(handle, FakeTime(), attempts=2).request("GET", "/items", resource="items")


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, BadRequest),
        (409, BadRequest),
        (422, BadRequest),
        (401, AuthenticationFailed),
        (403, AuthenticationFailed),
        (404, NotFound),
    ],
)
def test_each_error_status_maps_to_its_typed_error_without_retrying(
    status: int, error: type[ApiError]
) -> None:
    time = FakeTime()
    body = {
        "message": "email is invalid",
        "type": "invalid_request",
        "api_error_code": "param_wrong_value",
        "param": "email",
    }
    handle, seen = scripted(httpx.Response(status, json=body))
    with pytest.raises(error) as caught:
        vendor(handle, time).request(
            "POST", "/customers/{id}", resource="customers", path_args={"id": "c9"}, entity_id="c9"
        )
    assert type(caught.value) is error
    assert str(caught.value) == (
        f"chargebee customers c9: HTTP {status} param_wrong_value: email is invalid (field email)"
    )
    assert (caught.value.code, caught.value.param, caught.value.status) == (
        "param_wrong_value",
        "email",
        status,
    )
    assert len(seen) == 1
    assert time.sleeps == []


def test_an_error_without_a_json_body_still_names_where_it_happened() -> None:
    handle, _ = scripted(httpx.Response(404, text="<html>nope</html>"))
    with pytest.raises(NotFound, match=r"^chargebee items i1: HTTP 404 <html>nope</html>$"):
        vendor(handle, FakeTime()).request("GET", "/items/i1", resource="items", entity_id="i1")


def test_read_json_refuses_a_non_json_success() -> None:
    handle, _ = scripted(httpx.Response(200, text="oops"))
    http = vendor(handle, FakeTime())
    response = http.request("GET", "/items", resource="items")
    with pytest.raises(
        UnexpectedResponse, match=r"chargebee items: HTTP 200 body is not JSON: .oops.$"
    ):
        http.read_json(response, resource="items")


def test_the_budget_lets_a_minute_of_requests_through_then_spaces_them() -> None:
    time = FakeTime()
    budget = RateBudget(60, clock=time.clock, sleep=time.sleep)
    for _ in range(60):
        budget.acquire()
    assert time.sleeps == []
    budget.acquire()
    budget.acquire()
    assert time.sleeps == [1.0, 1.0]
    time.now += 30  # half a minute idle refills half the bucket
    for _ in range(30):
        budget.acquire()
    assert time.sleeps == [1.0, 1.0]
    budget.acquire()
    assert time.sleeps == [1.0, 1.0, 1.0]


def test_the_budget_does_not_spin_when_the_clock_stands_still() -> None:
    sleeps: list[float] = []
    budget = RateBudget(120, clock=lambda: 5.0, sleep=sleeps.append, burst=1)
    for _ in range(4):
        budget.acquire()
    assert sleeps == [0.5, 0.5, 0.5]
    assert budget.waited == pytest.approx(1.5)


def test_every_attempt_spends_the_budget() -> None:
    time = FakeTime()
    budget = RateBudget(60, clock=time.clock, sleep=time.sleep, burst=1)
    handle, seen = scripted(
        httpx.Response(500, json={}), httpx.Response(200, json={}), httpx.Response(200, json={})
    )
    http = vendor(handle, time, budget=budget)
    http.request("GET", "/items", resource="items")  # token, 500, back off 0.5s, wait 0.5s more
    http.request("GET", "/items", resource="items")  # waits a full second
    assert len(seen) == 3
    assert time.sleeps == [0.5, 0.5, 1.0]


def test_counter_keys_sort_and_reset() -> None:
    counter = CallCounter()
    counter.record("invoiced", "GET", "/items")
    counter.record("chargebee", "POST", "/customers")
    counter.record("invoiced", "GET", "/items")
    assert counter.counts() == {"chargebee POST /customers": 1, "invoiced GET /items": 2}
    assert counter.total == 3
    counter.reset()
    assert counter.counts() == {}
    assert counter.total == 0
