"""Webhook delivery: the events both emulators record, POSTed to endpoints as the vendors do.

A syncer that is a service learns of changes from webhooks, so the sandboxes send them:

- Chargebee POSTs the event JSON (the same object `GET /events/{id}` answers) with HTTP
  Basic auth from the endpoint's username and password, and follows each delivery in the
  event's `webhook_status` (`scheduled`, `succeeded`, `re_scheduled`, `failed`).
- Invoiced POSTs the event JSON with `X-Invoiced-Signature`: the hex HMAC-SHA256 of the body
  keyed with the endpoint's secret (Invoiced's webhooks guide, "Validating a webhook").

Only a 2xx answer counts as delivered; anything else, or no answer within `TIMEOUT_S`, is
retried after each of the endpoint's `retry_delays` in turn, then given up (the vendors retry
with exponential intervals for days; the sandbox compresses that into seconds). Endpoints are
site settings, set through `/__admin/webhooks`, and outlive a reset; deliveries do not: a reset
starts a new generation and what was pending for the old one is never sent. Faults with the
WEBHOOK pseudo-method (`talkqa.sandbox.faults`) delay, duplicate or lose deliveries.

One thread delivers, in order of due time then of recording, so events of one burst arrive in
the order the sandbox's clock gave them unless a fault or a retry reorders them, as on the
vendors. The thread starts with the first endpoint; a sandbox without endpoints starts none.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import hmac
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from talkqa.errors import UserError
from talkqa.sandbox.faults import WEBHOOK, FaultEngine
from talkqa.sandbox.state import JsonDict, SandboxState
from talkqa.sandbox.wire import render

SYSTEMS = ("chargebee", "invoiced")
RETRY_DELAYS = (1.0, 2.0, 4.0, 8.0, 16.0)  # seconds after the 1st, 2nd, ... failed attempt
TIMEOUT_S = 10.0
# Posts one delivery (url, body, headers) and returns the HTTP status; raises httpx.HTTPError.
Post = Callable[[str, bytes, dict[str, str]], int]


@dataclass(frozen=True)
class Endpoint:
    """One configured webhook endpoint of one system."""

    id: str
    system: str
    url: str
    username: str | None = None  # Chargebee: Basic auth
    password: str | None = None
    secret: str | None = None  # Invoiced: X-Invoiced-Signature key
    event_types: tuple[str, ...] = ()  # empty: every event
    retry_delays: tuple[float, ...] = RETRY_DELAYS

    def wants(self, system: str, event_type: str) -> bool:
        return self.system == system and (not self.event_types or event_type in self.event_types)

    def describe(self) -> dict[str, Any]:
        """The endpoint as `/__admin/webhooks` shows it: credentials only as present or not."""
        return {
            "id": self.id, "system": self.system, "url": self.url,
            "basic_auth": self.username is not None, "signed": self.secret is not None,
            "event_types": list(self.event_types), "retry_delays": list(self.retry_delays),
        }


_FIELDS = ("system", "url", "username", "password", "secret", "event_types", "retry_delays")


def endpoint_from_mapping(data: dict[str, Any], ident: str, default_system: str) -> Endpoint:
    """The JSON form of an endpoint (`POST /__admin/webhooks {"endpoints": [...]}`)."""
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise UserError(f"webhook endpoint: unknown field(s) {', '.join(unknown)}; "
                        f"use {', '.join(_FIELDS)}")
    system = str(data.get("system", default_system))
    if system not in SYSTEMS:
        raise UserError(f"webhook endpoint: system {system!r} is not one of {', '.join(SYSTEMS)}")
    url = data.get("url")
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(f"webhook endpoint: url must be an http(s) URL, got {url!r}")
    texts = {key: data.get(key) for key in ("username", "password", "secret")}
    for key, value in texts.items():
        if value is not None and not isinstance(value, str):
            raise UserError(f"webhook endpoint: {key} must be a string")
    types = data.get("event_types", [])
    if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
        raise UserError("webhook endpoint: event_types must be a list of event type names")
    delays = data.get("retry_delays", list(RETRY_DELAYS))
    if not isinstance(delays, list) or not all(
        isinstance(d, int | float) and not isinstance(d, bool) and 0 <= d <= 3600 for d in delays
    ):
        raise UserError("webhook endpoint: retry_delays must be a list of seconds (0 to 3600)")
    return Endpoint(
        id=ident, system=system, url=str(url), username=texts["username"],
        password=texts["password"], secret=texts["secret"], event_types=tuple(types),
        retry_delays=tuple(float(d) for d in delays),
    )


def event_type(system: str, event: JsonDict) -> str:
    return str(event["event_type"] if system == "chargebee" else event["type"])


def delivery_headers(endpoint: Endpoint, body: bytes) -> dict[str, str]:
    """The headers each vendor sends with a delivery of ``body`` to ``endpoint``."""
    headers = {"content-type": "application/json"}
    if endpoint.system == "chargebee":
        headers["user-agent"] = "ChargeBee"
        if endpoint.username is not None:
            token = f"{endpoint.username}:{endpoint.password or ''}".encode()
            headers["authorization"] = "Basic " + base64.b64encode(token).decode()
    else:
        headers["user-agent"] = "Invoiced/1.0"
        if endpoint.secret is not None:
            headers["x-invoiced-signature"] = hmac.new(
                endpoint.secret.encode(), body, hashlib.sha256).hexdigest()
    return headers


@dataclass(order=True)
class _Delivery:
    due: float
    seq: int
    endpoint: Endpoint = field(compare=False)
    system: str = field(compare=False)
    event: JsonDict = field(compare=False)
    generation: int = field(compare=False)
    attempt: int = field(default=0, compare=False)


def _httpx_post(client: httpx.Client) -> Post:
    def post(url: str, body: bytes, headers: dict[str, str]) -> int:
        return client.post(url, content=body, headers=headers).status_code
    return post


class Webhooks:
    """The endpoints of both emulators and the one thread that delivers to them."""

    def __init__(self, state: SandboxState, faults: FaultEngine, post: Post | None = None) -> None:
        self.state = state
        self.faults = faults
        self._post = post
        self._cond = threading.Condition()
        self._endpoints: list[Endpoint] = []
        self._queue: list[_Delivery] = []
        self._seq = 0
        self._numbers = 0
        self._busy = 0
        self._thread: threading.Thread | None = None
        self._closing = False
        self.counts: Counter[str] = Counter()

    # ------------------------------------------------------------ settings
    def configure(self, raw: list[dict[str, Any]], default_system: str,
                  replace: bool = True) -> list[dict[str, Any]]:
        endpoints = []
        for data in raw:
            self._numbers += 1
            endpoints.append(endpoint_from_mapping(data, f"we_{self._numbers}", default_system))
        with self._cond:
            if replace:
                self._endpoints = []
            self._endpoints.extend(endpoints)
            if self._endpoints and self._thread is None:
                self._thread = threading.Thread(target=self._run, name="sandbox-webhooks",
                                                daemon=True)
                self._thread.start()
        return self.describe()

    def clear(self) -> None:
        with self._cond:
            self._endpoints = []
            self._queue = []
            self._cond.notify_all()

    def describe(self) -> list[dict[str, Any]]:
        with self._cond:
            return [endpoint.describe() for endpoint in self._endpoints]

    # ------------------------------------------------------------ recording
    def publish_pending(self) -> None:
        """Schedule a delivery of each event the last writes recorded to each endpoint that
        wants it, as the faults decide (called by the app after every handler)."""
        taken = self.state.take_outbox()
        if not taken:
            return
        with self._cond:
            endpoints = list(self._endpoints)
        now = time.monotonic()
        scheduled: list[_Delivery] = []
        for system, event in taken:
            kind = event_type(system, event)
            for endpoint in endpoints:
                if not endpoint.wants(system, kind):
                    continue
                decision = self.faults.decide(system, WEBHOOK, f"/{kind}", f"/{kind}")
                with self.state.lock:
                    for fired in decision.fired:
                        self.state.fault_counts[f"{system} {WEBHOOK} /{kind} {fired}"] += 1
                    if system == "chargebee":
                        event["webhook_status"] = "scheduled"
                self.counts["lost"] += decision.copies == 0
                self.counts["duplicated"] += decision.copies > 1
                for _ in range(decision.copies):
                    scheduled.append(_Delivery(now + decision.latency_ms / 1000, 0, endpoint,
                                               system, event, self.state.generation))
        with self._cond:
            for delivery in scheduled:
                self._seq += 1
                delivery.seq = self._seq
                heapq.heappush(self._queue, delivery)
            self._cond.notify_all()

    def reset(self) -> None:
        """Forget what was pending and counted: a new generation starts (endpoints stay)."""
        with self._cond:
            self._queue = []
            self.counts = Counter()
            self._cond.notify_all()

    def stats(self) -> dict[str, int]:
        with self._cond:
            return {**{k: self.counts[k] for k in (
                "delivered", "retried", "failed", "lost", "duplicated")},
                "pending": len(self._queue) + self._busy}

    def wait_idle(self, timeout: float) -> bool:
        """Until nothing is pending or in flight (for tests and shutdown); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._busy, timeout)

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=TIMEOUT_S + 1)

    # ------------------------------------------------------------ delivering
    def _next(self) -> _Delivery | None:
        with self._cond:
            while not self._closing:
                if self._queue:
                    wait = self._queue[0].due - time.monotonic()
                    if wait <= 0:
                        self._busy += 1
                        return heapq.heappop(self._queue)
                    self._cond.wait(wait)
                else:
                    self._cond.wait()
            return None

    def _run(self) -> None:
        with httpx.Client(timeout=TIMEOUT_S) as client:
            post = self._post or _httpx_post(client)
            while (delivery := self._next()) is not None:
                try:
                    self._attempt(delivery, post)
                finally:
                    with self._cond:
                        self._busy -= 1
                        self._cond.notify_all()

    def _attempt(self, delivery: _Delivery, post: Post) -> None:
        if delivery.generation != self.state.generation:
            return  # the sandbox was reset: that event no longer exists
        with self.state.lock:
            body = render(delivery.event)
        try:
            ok = 200 <= post(delivery.endpoint.url, body,
                             delivery_headers(delivery.endpoint, body)) < 300
        except httpx.HTTPError:
            ok = False
        delays = delivery.endpoint.retry_delays
        retry = not ok and delivery.attempt < len(delays)
        with self.state.lock:
            if delivery.generation != self.state.generation:
                return
            if delivery.system == "chargebee":
                delivery.event["webhook_status"] = (
                    "succeeded" if ok else "re_scheduled" if retry else "failed")
        with self._cond:
            self.counts["delivered" if ok else "retried" if retry else "failed"] += 1
            if retry:
                delivery.due = time.monotonic() + delays[delivery.attempt]
                delivery.attempt += 1
                self._seq += 1
                delivery.seq = self._seq
                heapq.heappush(self._queue, delivery)
