"""What both vendor connectors share: auth, retries, the account's limiter, typed errors, counts.

Every byte goes through the injected ``httpx.Client``: the caller decides whether that is
the network, a local sandbox, a Starlette TestClient or a vcrpy cassette. This module never
builds a transport, so the same connector code runs unchanged in every mode. Time is
injected too (``sleep``, ``clock``), so retry and limiter behaviour is testable without
waiting.

Retry policy (tenacity, entered only when a first attempt failed), by what went wrong:

- 429: never given up while the server keeps answering. The whole account pauses (its
  ``AccountLimiter``: ``Retry-After`` or a doubling backoff, and a slower pace), and the
  request is tried again; only 429s for longer than ``RetryPolicy.rate_limit_patience``
  (15 minutes) raise ``RateLimited``.
- 503: the server did not take the request: resent up to ``max_attempts`` times with
  capped exponential backoff (or its ``Retry-After``), then ``ServerError``.
- other 5xx and a connection lost after sending: resent only when that is safe (a read, a
  DELETE, a write with an idempotency key); otherwise ``ServerError``/``LostResponse`` at once,
  and the connector decides (``resend_checked``: re-read, then resend only if needed).
- no connection at all (refused, unknown host): ``connect_attempts`` tries (2), a short pause
  apart, then ``Unreachable``: a closed loopback port is answered at once, so waiting longer
  only delays the one-line message.
"""

from __future__ import annotations

import functools
import hashlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, cast
from urllib.parse import quote

import httpx
import pydantic_core
import tenacity
from pydantic import BaseModel, ConfigDict, ValidationError

from talkqa.systems.base import (
    ApiError,
    AuthenticationFailed,
    BadRequest,
    Json,
    LostResponse,
    NotFound,
    RateLimited,
    ServerError,
    UnexpectedResponse,
    Unreachable,
)
from talkqa.systems.limits import AccountLimiter, Clock, Sleep

# Methods a server may see twice without harm; writes are resent after a half-sent request
# only when they carry an idempotency key.
_SAFE_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE"})
# Failures where no connection was made, so nothing was sent.
_NO_CONNECTION = (httpx.ConnectError, httpx.ConnectTimeout)


class CallCounter:
    """HTTP attempts per system, method and path template, for benchmarks and reports.

    Keys use the template (``/customers/{id}``), not the concrete path, so counts from
    different runs line up. Every attempt is counted, retries included, because each one
    spends the vendor's rate limit. Thread-safe: the sync sends from a pool.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self.retries = 0
        self.throttled = 0  # attempts answered 429

    def record(self, system: str, method: str, template: str) -> None:
        with self._lock:
            self._counts[f"{system} {method} {template}"] += 1

    def retried(self) -> None:
        with self._lock:
            self.retries += 1

    def answered_429(self) -> None:
        with self._lock:
            self.throttled += 1

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self._counts.items()))

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
            self.retries = 0
            self.throttled = 0


@dataclass(frozen=True)
class RetryPolicy:
    """How long to keep trying (no jitter: runs against the sandbox stay deterministic)."""

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0  # never trust a server to park us longer than this
    rate_limit_patience: float = 900.0  # seconds of nothing but 429s before RateLimited
    connect_attempts: int = 2
    connect_delay: float = 0.2

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if retry_after is not None:
            return min(retry_after, self.max_retry_after)
        return float(min(self.base_delay * (2 ** (attempt - 1)), self.max_delay))


def retry_after_seconds(response: httpx.Response, now: datetime | None = None) -> float | None:
    """The ``Retry-After`` header in seconds (delta-seconds or HTTP-date); None when unreadable."""
    raw = response.headers.get("retry-after")
    if raw is None:
        return None
    text = raw.strip()
    try:
        value = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
    return value if value >= 0 else None


_ERROR_BY_STATUS: Mapping[int, type[ApiError]] = {
    400: BadRequest,
    409: BadRequest,
    422: BadRequest,
    401: AuthenticationFailed,
    403: AuthenticationFailed,
    404: NotFound,
    429: RateLimited,
}


def error_for(
    response: httpx.Response, *, system: str, resource: str, entity_id: str | None
) -> ApiError:
    """The typed error for a failed response, carrying the vendor's code and field.

    Chargebee says ``api_error_code`` (older bodies ``error_code``) and ``param``; Invoiced
    says ``type`` and ``param``. Both put prose in ``message``.
    """
    body: Any
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {}
    message = body.get("message") or body.get("error_msg") or response.text[:200].strip()
    message = str(message or response.reason_phrase or "request failed")
    code = body.get("api_error_code") or body.get("error_code") or body.get("type")
    param = body.get("param")
    status = response.status_code
    cls = _ERROR_BY_STATUS.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else BadRequest
    return cls(
        system,
        resource,
        message,
        entity_id=entity_id,
        status=status,
        code=str(code) if code else None,
        param=str(param) if param else None,
    )


@dataclass
class _Again(Exception):
    """One attempt failed in a way worth another; ``error`` is what to raise on giving up."""

    kind: str  # "throttled" | "unavailable" | "lost" | "unreachable"
    error: ApiError
    retry_after: float | None = None


class VendorHttp:
    """One vendor's view of the shared client: base URL, key, account limiter, retry rules.

    ``idempotency_seed`` (a per-run value from the caller) makes every write without a
    caller's key get one derived from the seed and the request, so lost responses on writes
    can be resent; without a seed only callers' keys are sent (see ``write_key``).
    """

    def __init__(
        self,
        http: httpx.Client,
        *,
        system: str,
        base_url: str,
        api_key: str,
        retry: RetryPolicy | None = None,
        sleep: Sleep = time.sleep,
        clock: Clock = time.monotonic,
        limiter: AccountLimiter | None = None,
        counter: CallCounter | None = None,
        idempotency_seed: str | None = None,
    ) -> None:
        self.http = http
        self.system = system
        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self.limiter = limiter or AccountLimiter(system, None, clock=clock, sleep=sleep)
        self.counter = counter if counter is not None else CallCounter()
        self.idempotency_seed = idempotency_seed
        self._auth = httpx.BasicAuth(api_key, "")
        self._sleep = sleep
        self._clock = clock
        self._key_lock = threading.Lock()
        self._sent_keys: Counter[str] = Counter()
        self._parsed: dict[str, httpx.URL] = {}  # template (no arguments) -> its URL

    def url(self, template: str, path_args: Mapping[str, str] | None = None) -> str:
        quoted = {k: quote(str(v), safe="") for k, v in (path_args or {}).items()}
        return self.base_url + template.format(**quoted)

    def _target(self, template: str, path_args: Mapping[str, str] | None) -> httpx.URL | str:
        """Where to send: parsed once per template without arguments (creates, lists).

        httpx parses a text URL on every request, its host through ``ipaddress``: about a
        third of building a request, paid again for the same few URLs.
        """
        if path_args:
            return self.url(template, path_args)
        parsed = self._parsed.get(template)
        if parsed is None:
            parsed = self._parsed[template] = httpx.URL(self.url(template))
        return parsed

    def write_key(
        self, given: str | None, method: str, path: str, body: Callable[[], bytes]
    ) -> str | None:
        """The idempotency key of one logical write: the caller's, else one derived.

        ``body`` gives the encoded request body, and is called only when a key is derived:
        encoding it is most of the cost, and the sync passes its own key on every write.

        Derived keys hash the run's seed, the request and how many identical requests this
        run sent before, so they are deterministic (re-recorded cassettes stay identical)
        yet never reuse an earlier run's key: a replayed key would silently drop a write
        that sets a field back to an old value. No seed, no derived key.
        """
        if given or self.idempotency_seed is None:
            return given or None
        seed = self.idempotency_seed.encode()
        request = b"\0".join([seed, method.encode(), path.encode(), body()])
        digest = hashlib.sha256(request).hexdigest()
        with self._key_lock:
            occurrence = self._sent_keys[digest]
            self._sent_keys[digest] += 1
        return "tq-" + hashlib.sha256(f"{digest}:{occurrence}".encode()).hexdigest()[:32]

    def request(
        self,
        method: str,
        template: str,
        *,
        resource: str,
        path_args: Mapping[str, str] | None = None,
        entity_id: str | None = None,
        params: Mapping[str, str] | None = None,
        content: bytes | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        gone_ok: bool = False,
    ) -> httpx.Response:
        """Send one logical request; retry what is retryable; raise the typed error otherwise.

        ``template`` is the path with ``{name}`` placeholders filled from ``path_args``
        (URL-quoted); it is also the key the call counter uses. ``gone_ok``: a 404 on a
        resend is the answer (a delete whose first response was lost already happened).
        """
        method = method.upper()
        url = self._target(template, path_args)
        resend_safe = idempotent if idempotent is not None else method in _SAFE_METHODS
        first_throttle: list[float] = []
        sent = [0]
        failed: Counter[str] = Counter()  # failed attempts per kind: each kind has its budget

        def attempt() -> httpx.Response:
            sent[0] += 1
            response = self._send(
                method,
                url,
                template,
                resource,
                entity_id,
                resend_safe,
                {
                    "params": dict(params) if params else None,
                    "content": content,
                    "json": json,
                    "headers": dict(headers) if headers else None,
                },
            )
            self.limiter.observe(response.headers)
            status = response.status_code
            if response.is_success or (gone_ok and status == 404 and sent[0] > 1):
                self.limiter.succeeded()
                return response
            error = error_for(response, system=self.system, resource=resource, entity_id=entity_id)
            retry_after = retry_after_seconds(response)
            if status == 429:
                self.counter.answered_429()
                self.limiter.throttled_by_server(retry_after)
                if not first_throttle:
                    first_throttle.append(self._clock())
                failed["throttled"] += 1
                raise _Again("throttled", error, retry_after)
            if status == 503 or (status >= 500 and resend_safe):
                failed["unavailable"] += 1
                raise _Again("unavailable", error, retry_after)
            raise error

        def attempt_counted() -> httpx.Response:
            try:
                return attempt()
            except _Again as again:
                if again.kind in ("unreachable", "lost"):
                    failed[again.kind] += 1
                raise

        def stop(state: tenacity.RetryCallState) -> bool:
            again = state.outcome.exception() if state.outcome else None
            if not isinstance(again, _Again):
                return True
            if again.kind == "throttled":
                return self._clock() - first_throttle[0] >= self.retry.rate_limit_patience
            if again.kind == "unreachable":
                return failed[again.kind] >= self.retry.connect_attempts
            return failed[again.kind] >= self.retry.max_attempts

        def wait(state: tenacity.RetryCallState) -> float:
            again = state.outcome.exception() if state.outcome else None
            assert isinstance(again, _Again)
            if again.kind == "throttled":
                return 0.0  # the account's limiter holds every thread until the pause ends
            if again.kind == "unreachable":
                return self.retry.connect_delay
            return self.retry.delay(failed[again.kind], again.retry_after)

        def before_sleep(state: tenacity.RetryCallState) -> None:
            self.counter.retried()

        # The first attempt runs outside tenacity: nearly every request succeeds at once, and
        # building and driving a Retrying per request was a tenth of the sync's own CPU. A
        # failed first attempt is handed to tenacity as its attempt 1, so the budgets, waits
        # and counts above are the same as if tenacity had made it.
        try:
            return attempt_counted()
        except _Again as again:
            first_failure: list[_Again] = [again]

        def attempt_after_first() -> httpx.Response:
            if first_failure:
                raise first_failure.pop()
            return attempt_counted()

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Again),
            stop=stop,
            wait=wait,
            before_sleep=before_sleep,
            sleep=lambda seconds: self._sleep(seconds) if seconds > 0 else None,
            reraise=True,
        )
        try:
            return retrying(attempt_after_first)
        except _Again as again:
            if again.kind == "throttled":
                error = again.error
                waited = self._clock() - first_throttle[0]
                raise RateLimited(
                    error.system,
                    error.resource,
                    f"{error.detail} (still answered 429 after {waited:.0f}s of backing off: "
                    f"the account's limit may be lower than "
                    f"{self.system.upper()}_REQUESTS_PER_MINUTE, or shared with another client)",
                    entity_id=error.entity_id,
                    status=error.status,
                    code=error.code,
                    param=error.param,
                ) from again
            raise again.error from again.__cause__

    def _send(
        self,
        method: str,
        url: httpx.URL | str,
        template: str,
        resource: str,
        entity_id: str | None,
        resend_safe: bool,
        options: dict[str, Any],
    ) -> httpx.Response:
        """One attempt inside the account's limits; transport failures typed by what is known."""
        with self.limiter.slot():
            self.counter.record(self.system, method, template)
            try:
                return self.http.request(method, url, auth=self._auth, **options)
            except _NO_CONNECTION as exc:
                raise _Again(
                    "unreachable",
                    Unreachable(
                        self.system,
                        resource,
                        f"cannot connect: {method} {url} ({type(exc).__name__}: "
                        f"{exc or 'no detail'}): "
                        f"check {self.system.upper()}_BASE_URL and that the server is up",
                        entity_id=entity_id,
                    ),
                ) from exc
            except httpx.TransportError as exc:
                detail = f"{type(exc).__name__}: {exc or 'no detail'} ({method} {url})"
                if resend_safe or isinstance(exc, httpx.PoolTimeout):
                    raise _Again(
                        "lost",
                        ServerError(
                            self.system,
                            resource,
                            f"connection failed: {detail}",
                            entity_id=entity_id,
                        ),
                    ) from exc
                raise LostResponse(
                    self.system,
                    resource,
                    f"connection lost after the request was sent, not resent without an "
                    f"idempotency key: {detail}",
                    entity_id=entity_id,
                ) from exc

    def read_json(
        self, response: httpx.Response, *, resource: str, entity_id: str | None = None
    ) -> Any:
        """The response body as JSON, or UnexpectedResponse naming where it came from.

        Parsed by pydantic-core's Rust parser straight from the bytes: a judgement decodes
        hundreds of full pages, and the stdlib decoder was its largest CPU cost.
        """
        try:
            return pydantic_core.from_json(response.content)
        except ValueError as exc:
            raise UnexpectedResponse(
                self.system,
                resource,
                f"body is not JSON: {response.text[:120]!r}",
                entity_id=entity_id,
                status=response.status_code,
            ) from exc


@functools.cache
def lean(model: type[BaseModel]) -> type[BaseModel]:
    """``model`` with the fields it does not type ignored instead of kept: the same checks,
    without copying every other field of an answer into a model that is thrown away.

    Made once per model: building a pydantic class builds its validator (~10 ms of CPU), and
    every connection to Invoiced asks for one per resource."""
    config = ConfigDict(**{**model.model_config, "extra": "ignore"})
    namespace = {"model_config": config, "__module__": model.__module__}
    return cast(type[BaseModel], type(f"Lean{model.__name__}", (model,), namespace))


def validated(
    model: type[BaseModel],
    data: Any,
    *,
    system: str,
    resource: str,
    entity_id: str | None = None,
) -> Any:
    """``data`` unchanged when it fits ``model``; UnexpectedResponse naming the bad field if not.

    Validation guards the edge (a vendor or emulator answering in the wrong shape fails
    here, loudly, not three modules later); callers keep working on the plain JSON.
    """
    try:
        model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise UnexpectedResponse(
            system,
            resource,
            f"response does not have the expected shape: {first['msg']}",
            entity_id=entity_id,
            param=where,
        ) from exc
    return data


def holds(entity: Any, wanted: Any) -> bool:
    """Whether ``entity`` already carries every value of ``wanted`` (dicts: a subset).

    Scalars compare as text as well, since a form-encoded write reads back typed.
    """
    if isinstance(wanted, Mapping):
        return isinstance(entity, Mapping) and all(
            key in entity and holds(entity[key], value) for key, value in wanted.items()
        )
    if isinstance(wanted, list | tuple):
        return (
            isinstance(entity, list | tuple)
            and len(entity) == len(wanted)
            and all(holds(have, want) for have, want in zip(entity, wanted, strict=True))
        )
    if wanted is None:
        return True  # None is "leave as is" in both vendors' write bodies
    return bool(entity == wanted or str(entity) == str(wanted))


def resend_checked(
    send: Callable[[], Json],
    reread: Callable[[], Json],
    fields: Mapping[str, Any],
    attempts: int,
) -> Json:
    """An update without an idempotency key, made safe to retry by reading first.

    When the outcome is unknown (a lost response, a 5xx but 503), the entity is read back: if it
    already holds ``fields`` the write happened and is not sent again; otherwise it is
    resent (setting fields to values twice is harmless). At most ``attempts`` sends.
    """
    for attempt in range(1, attempts + 1):
        try:
            return send()
        except ServerError as exc:
            if exc.status == 503 or attempt >= attempts:
                raise  # a 503 was never applied, and VendorHttp already retried it
            entity = reread()
            if holds(entity, fields):
                return entity
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover
