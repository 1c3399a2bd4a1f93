"""The shared transport rules: retries, Retry-After, the account limiter, typed errors, counts."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest

from talkqa.systems.base import (
    ApiError,
    AuthenticationFailed,
    BadRequest,
    Json,
    LostResponse,
    NotFound,
    RateLimited,
    ServerError,
    Transient,
    UnexpectedResponse,
    Unreachable,
)
from talkqa.systems.http import (
    CallCounter,
    RetryPolicy,
    VendorHttp,
    holds,
    lean,
    resend_checked,
    retry_after_seconds,
)
from talkqa.systems.limits import AccountLimiter

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
    handler: Handler,
    time: FakeTime,
    *,
    limiter: AccountLimiter | None = None,
    attempts: int = 5,
    patience: float = 900.0,
    seed: str | None = None,
) -> VendorHttp:
    client = httpx.Client(transport=httpx.MockTransport(handler))
    return VendorHttp(
        client,
        system="chargebee",
        base_url="https://acme-test.chargebee.com/api/v2/",
        api_key="secret-key",
        retry=RetryPolicy(max_attempts=attempts, rate_limit_patience=patience),
        sleep=time.sleep,
        clock=time.clock,
        limiter=limiter,
        counter=CallCounter(),
        idempotency_seed=seed,
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


def test_a_template_sent_again_with_other_parameters_carries_only_its_own() -> None:
    handle, seen = scripted(*(httpx.Response(200, json={}) for _ in range(3)))
    http = vendor(handle, FakeTime())
    http.request("GET", "/customers", resource="customers", params={"offset": "a"})
    http.request("GET", "/customers", resource="customers", params={"limit": "5"})
    http.request("GET", "/customers", resource="customers")
    assert [str(request.url) for request in seen] == [
        "https://acme-test.chargebee.com/api/v2/customers?offset=a",
        "https://acme-test.chargebee.com/api/v2/customers?limit=5",
        "https://acme-test.chargebee.com/api/v2/customers",
    ]


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


NOW = datetime(2026, 10, 21, 7, 28, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        ("3", 3.0),
        (" 1.5 ", 1.5),
        ("-1", None),
        ("soon", None),
        ("Wed, 21 Oct 2026 07:28:30 GMT", 30.0),
        ("Wed, 21 Oct 2026 07:27:00 GMT", 0.0),  # a date in the past: go now
    ],
)
def test_retry_after_reads_seconds_and_http_dates(raw: str, seconds: float | None) -> None:
    response = httpx.Response(429, headers={"Retry-After": raw})
    assert retry_after_seconds(response, now=NOW) == seconds


def test_a_429_never_gives_up_while_the_patience_lasts() -> None:
    time = FakeTime()
    throttled = [httpx.Response(429, json={"message": "too many"}) for _ in range(20)]
    handle, seen = scripted(*throttled, httpx.Response(200, json={"ok": True}))
    http = vendor(handle, time, attempts=2)
    assert http.request("GET", "/items", resource="items").json() == {"ok": True}
    assert len(seen) == 21  # far beyond max_attempts: 429 is not a failure budget
    assert http.counter.throttled == 20
    assert time.sleeps[:6] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0]  # the account's backoff


def test_a_429_that_outlasts_the_patience_becomes_rate_limited_a_transient_error() -> None:
    time = FakeTime()
    body = {"message": "too many", "api_error_code": "api_request_limit_exceeded"}
    handle, seen = scripted(*[httpx.Response(429, json=body) for _ in range(10)])
    http = vendor(handle, time, patience=60.0)
    with pytest.raises(RateLimited, match=r"HTTP 429 api_request_limit_exceeded: too many \(still"):
        http.request("GET", "/items", resource="items")
    assert time.sleeps == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0]  # 61 s of 429s > 60 s patience
    assert len(seen) == 7
    assert http.counter.throttled == 7
    assert issubclass(RateLimited, Transient)


def test_no_connection_is_retried_once_shortly_then_says_where() -> None:
    time = FakeTime()
    handle, seen = scripted(httpx.ConnectError("refused"), httpx.Response(200, json={}))
    vendor(handle, time).request(
        "POST", "/customers", resource="customers", content=b"first_name=Ada"
    )
    assert len(seen) == 2
    assert time.sleeps == [0.2]


def test_a_write_that_may_have_arrived_is_not_resent_without_an_idempotency_key() -> None:
    handle, seen = scripted(httpx.ReadTimeout("slow"), httpx.Response(200, json={}))
    with pytest.raises(LostResponse, match="connection lost after the request was sent"):
        vendor(handle, FakeTime()).request("POST", "/customers", resource="customers")
    assert len(seen) == 1


def test_a_500_on_a_write_without_a_key_is_not_resent_but_a_503_is() -> None:
    handle, seen = scripted(httpx.Response(500, json={"message": "boom"}))
    with pytest.raises(ServerError, match="HTTP 500"):
        vendor(handle, FakeTime()).request("POST", "/customers", resource="customers")
    assert len(seen) == 1
    handle, seen = scripted(httpx.Response(503, json={}), httpx.Response(200, json={}))
    vendor(handle, FakeTime()).request("POST", "/customers", resource="customers")
    assert len(seen) == 2


def test_a_resent_delete_answered_404_already_happened() -> None:
    handle, seen = scripted(httpx.ReadError("reset"), httpx.Response(404, json={}))
    response = vendor(handle, FakeTime()).request(
        "DELETE", "/items/{id}", resource="items", path_args={"id": "i1"}, gone_ok=True
    )
    assert response.status_code == 404
    assert len(seen) == 2
    handle, _ = scripted(httpx.Response(404, json={"message": "gone"}))
    with pytest.raises(NotFound):  # a first answer of 404 is still an error
        vendor(handle, FakeTime()).request("DELETE", "/items/i1", resource="items", gone_ok=True)


def test_a_write_with_an_idempotency_key_is_resent_after_a_timeout() -> None:
    handle, seen = scripted(httpx.ReadTimeout("slow"), httpx.Response(200, json={}))
    vendor(handle, FakeTime()).request("POST", "/customers", resource="customers", idempotent=True)
    assert len(seen) == 2


def test_no_connection_after_two_tries_is_unreachable_naming_the_variable() -> None:
    time = FakeTime()
    handle, seen = scripted(*[httpx.ConnectError("refused") for _ in range(5)])
    with pytest.raises(Unreachable) as caught:
        vendor(handle, time).request("GET", "/items", resource="items")
    assert len(seen) == 2
    assert time.sleeps == [0.2]
    assert str(caught.value) == (
        "chargebee items: cannot connect: GET https://acme-test.chargebee.com/api/v2/items "
        "(ConnectError: refused): check CHARGEBEE_BASE_URL and that the server is up"
    )
    assert not isinstance(caught.value, Transient)


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


def test_every_attempt_waits_for_the_accounts_pace() -> None:
    time = FakeTime()
    limiter = AccountLimiter("Chargebee", 100, clock=time.clock, sleep=time.sleep)
    handle, seen = scripted(
        httpx.Response(500, json={}), httpx.Response(200, json={}), httpx.Response(200, json={})
    )
    http = vendor(handle, time, limiter=limiter)
    http.request(
        "GET", "/items", resource="items"
    )  # 500, back off 0.5 s, pace 0.112 s more (ms, rounded up)
    http.request("GET", "/items", resource="items")  # one emission interval (0.612 s)
    assert len(seen) == 3
    assert time.sleeps == pytest.approx([0.5, 0.1122, 0.6122], abs=0.0015)


def test_derived_write_keys_are_deterministic_and_unique_per_request() -> None:
    handle, _ = scripted()
    first, second = (
        vendor(handle, FakeTime(), seed="run-1"),
        vendor(handle, FakeTime(), seed="run-1"),
    )
    def body() -> bytes:
        return b"email=a"

    keys = [first.write_key(None, "POST", "/customers/c1", body) for _ in range(2)]
    assert keys == [second.write_key(None, "POST", "/customers/c1", body) for _ in range(2)]
    assert keys[0] != keys[1]  # the same write twice in a run is two writes
    other_run = vendor(handle, FakeTime(), seed="run-2")
    assert other_run.write_key(None, "POST", "/customers/c1", body) not in keys
    def unencodable() -> bytes:
        raise AssertionError("a body encoded although no key was derived from it")

    # the caller's key, or no seed: the body is never encoded (the sync's every write)
    assert first.write_key("mine", "POST", "/customers/c1", unencodable) == "mine"
    assert vendor(handle, FakeTime()).write_key(None, "POST", "/x", unencodable) is None


def test_holds_compares_written_fields_as_a_subset() -> None:
    entity = {"id": "c1", "email": "a@x", "meta_data": {"k": 1, "other": 2}, "tags": ["a"]}
    assert holds(entity, {"email": "a@x", "meta_data": {"k": "1"}, "tags": ["a"]})
    assert holds(entity, {"email": None})
    assert not holds(entity, {"email": "b@x"})
    assert not holds(entity, {"tags": ["a", "b"]})
    assert not holds(entity, {"missing": "x"})


def test_resend_checked_rereads_and_resends_only_when_the_write_did_not_land() -> None:
    sends: list[int] = []
    state = {"email": "old"}

    def lose_first(landed: bool) -> Json:
        sends.append(1)
        if len(sends) == 1:
            if landed:
                state["email"] = "new"
            raise LostResponse("invoiced", "customers", "lost")
        state["email"] = "new"
        return dict(state)

    assert resend_checked(lambda: lose_first(True), lambda: dict(state), {"email": "new"}, 3) == {
        "email": "new"
    }
    assert len(sends) == 1  # it landed: not sent again
    sends.clear()
    state["email"] = "old"
    resend_checked(lambda: lose_first(False), lambda: dict(state), {"email": "new"}, 3)
    assert len(sends) == 2  # it did not: sent again


def test_resend_checked_gives_up_after_its_attempts() -> None:
    def always() -> Json:
        raise ServerError("invoiced", "customers", "boom", status=500)

    with pytest.raises(ServerError, match="boom"):
        resend_checked(always, lambda: {"email": "old"}, {"email": "new"}, 2)


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


def test_resend_checked_leaves_a_503_alone_it_was_never_applied_and_already_retried() -> None:
    reads: list[int] = []

    def busy() -> Json:
        raise ServerError("invoiced", "customers", "busy", status=503)

    def reread() -> Json:
        reads.append(1)
        return {}

    with pytest.raises(ServerError, match="busy"):
        resend_checked(busy, reread, {"email": "new"}, 5)
    assert reads == []


def test_each_kind_of_failure_spends_its_own_budget() -> None:
    time = FakeTime()
    handle, seen = scripted(
        httpx.Response(429, json={}),
        httpx.Response(429, json={}),
        httpx.Response(503, json={}),
        httpx.Response(429, json={}),
        httpx.Response(503, json={}),
        httpx.Response(200, json={"ok": True}),
    )
    http = vendor(handle, time, attempts=3)  # 3 attempts for 503s; 429s do not count
    assert http.request("GET", "/items", resource="items").json() == {"ok": True}
    assert len(seen) == 6
    assert time.sleeps == [1.0, 2.0, 0.5, 4.0, 1.0]  # 503 backoff counts 503s only


def test_a_lean_model_ignores_what_it_does_not_type_and_is_built_once() -> None:
    """Every connection to Invoiced asks for one per resource: building a pydantic class
    each time cost ~2.7 ms of CPU per connection."""
    from pydantic import BaseModel

    class Customer(BaseModel):
        id: int

    slim = lean(Customer)
    assert slim is lean(Customer) and slim is not Customer
    assert not hasattr(slim.model_validate({"id": 1, "name": "kept out"}), "name")
    with pytest.raises(ValueError):
        slim.model_validate({"id": "not a number"})
