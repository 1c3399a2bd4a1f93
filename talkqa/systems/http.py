"""What both vendor connectors share: auth, retries, a request budget, typed errors, counts.

Every byte goes through the injected ``httpx.Client``: the caller decides whether that is
the network, a local sandbox, a Starlette TestClient or a vcrpy cassette. This module never
builds a transport, so the same connector code runs unchanged in every mode. Time is
injected too (``sleep``, ``clock``), so retry and budget behaviour is testable without
waiting.
"""

from __future__ import annotations

import json as jsonlib
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from talkqa.systems.base import (
    ApiError,
    AuthenticationFailed,
    BadRequest,
    NotFound,
    RateLimited,
    ServerError,
    UnexpectedResponse,
)

Sleep = Callable[[float], None]
Clock = Callable[[], float]

# Methods a server may see twice without harm; writes are retried after a half-sent request
# only when they carry an idempotency key.
_SAFE_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE"})
# Failures where the request never reached the server, so any method may be resent.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class CallCounter:
    """HTTP attempts per system, method and path template, for benchmarks and reports.

    Keys use the template (``/customers/{id}``), not the concrete path, so counts from
    different runs line up. Every attempt is counted, retries included, because each one
    spends the vendor's rate limit.
    """

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self.retries = 0

    def record(self, system: str, method: str, template: str) -> None:
        self._counts[f"{system} {method} {template}"] += 1

    def counts(self) -> dict[str, int]:
        return dict(sorted(self._counts.items()))

    @property
    def total(self) -> int:
        return sum(self._counts.values())

    def reset(self) -> None:
        self._counts.clear()
        self.retries = 0


class RateBudget:
    """A token bucket: bursts up to ``requests_per_minute``, then one call per 1/rate seconds.

    Vendors count requests per minute per account (Chargebee test sites: 150/min); staying
    under the budget is cheaper than collecting 429s and backing off. After sleeping, the
    bucket assumes the time passed even if the injected clock did not move, so a fake clock
    cannot make ``acquire`` spin.
    """

    def __init__(
        self,
        requests_per_minute: int,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
        burst: int | None = None,
    ) -> None:
        if requests_per_minute <= 0:
            raise ValueError("requests_per_minute must be positive")
        self.requests_per_minute = requests_per_minute
        self._rate = requests_per_minute / 60.0  # tokens per second
        self._capacity = float(burst if burst is not None else requests_per_minute)
        self._tokens = self._capacity
        self._clock = clock
        self._sleep = sleep
        self._last = clock()
        self.waited = 0.0  # total seconds slept, for reports

    def acquire(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._last)
        self._tokens = min(self._capacity, self._tokens + elapsed * self._rate)
        self._last = max(self._last, now)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return
        wait = (1.0 - self._tokens) / self._rate
        self._sleep(wait)
        self.waited += wait
        self._tokens = 0.0
        self._last += wait


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff (no jitter: runs against the sandbox stay deterministic)."""

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0  # never trust a server to park us longer than this

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if retry_after is not None:
            return min(retry_after, self.max_retry_after)
        return float(min(self.base_delay * (2 ** (attempt - 1)), self.max_delay))


def retry_after_seconds(response: httpx.Response) -> float | None:
    """The ``Retry-After`` header in seconds; None when absent or not a number of seconds."""
    raw = response.headers.get("retry-after")
    if raw is None:
        return None
    try:
        value = float(raw.strip())
    except ValueError:
        return None
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


class VendorHttp:
    """One vendor's view of the shared client: its base URL, key, budget and retry rules."""

    def __init__(
        self,
        http: httpx.Client,
        *,
        system: str,
        base_url: str,
        api_key: str,
        retry: RetryPolicy | None = None,
        sleep: Sleep = time.sleep,
        budget: RateBudget | None = None,
        counter: CallCounter | None = None,
    ) -> None:
        self.http = http
        self.system = system
        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self.budget = budget
        self.counter = counter if counter is not None else CallCounter()
        self._auth = httpx.BasicAuth(api_key, "")
        self._sleep = sleep

    def url(self, template: str, path_args: Mapping[str, str] | None = None) -> str:
        quoted = {k: quote(str(v), safe="") for k, v in (path_args or {}).items()}
        return self.base_url + template.format(**quoted)

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
    ) -> httpx.Response:
        """Send one logical request; retry what is retryable; raise the typed error otherwise.

        ``template`` is the path with ``{name}`` placeholders filled from ``path_args``
        (URL-quoted); it is also the key the call counter uses.
        """
        method = method.upper()
        url = self.url(template, path_args)
        resend_safe = idempotent if idempotent is not None else method in _SAFE_METHODS
        attempt = 0
        while True:
            attempt += 1
            if self.budget is not None:
                self.budget.acquire()
            self.counter.record(self.system, method, template)
            try:
                response = self.http.request(
                    method,
                    url,
                    params=dict(params) if params else None,
                    content=content,
                    json=json,
                    headers=dict(headers) if headers else None,
                    auth=self._auth,
                )
            except httpx.TransportError as exc:
                retryable = isinstance(exc, _NOT_SENT) or resend_safe
                if retryable and attempt < self.retry.max_attempts:
                    self._back_off(attempt, None)
                    continue
                raise ServerError(
                    self.system,
                    resource,
                    f"connection failed after {attempt} attempt(s): {type(exc).__name__}: "
                    f"{exc or 'no detail'} ({method} {url}): check "
                    f"{self.system.upper()}_BASE_URL and that the server is up",
                    entity_id=entity_id,
                ) from exc
            status = response.status_code
            if (status == 429 or status >= 500) and attempt < self.retry.max_attempts:
                response.close()
                self._back_off(attempt, retry_after_seconds(response))
                continue
            if response.is_success:
                return response
            raise error_for(response, system=self.system, resource=resource, entity_id=entity_id)

    def _back_off(self, attempt: int, retry_after: float | None) -> None:
        self.counter.retries += 1
        self._sleep(self.retry.delay(attempt, retry_after))

    def read_json(
        self, response: httpx.Response, *, resource: str, entity_id: str | None = None
    ) -> Any:
        """The response body as JSON, or UnexpectedResponse naming where it came from."""
        try:
            return response.json()
        except (ValueError, jsonlib.JSONDecodeError) as exc:
            raise UnexpectedResponse(
                self.system,
                resource,
                f"body is not JSON: {response.text[:120]!r}",
                entity_id=entity_id,
                status=response.status_code,
            ) from exc


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
