"""The reference sync as a long-lived service (`talkqa sync --watch`).

Most syncers users sign off are services, not commands: they run on a schedule or react to
the vendors' webhooks. This is the reference sync run that way, so the service driver of
talk-qa is tested end to end against something that behaves like one.

- **On a schedule** (`--interval N`): a pass at start, then one every N seconds after the
  previous pass ended.
- **Driven by webhooks** (`--webhook-port P`): a listener on 127.0.0.1:P takes Chargebee's
  (`POST /chargebee`, HTTP Basic auth) and Invoiced's (`POST /invoiced`, `X-Invoiced-Signature`)
  deliveries; each valid one wakes a pass, and deliveries that arrive during a pass are
  coalesced into the next. Webhooks get lost, so every `--interval` seconds the service reads
  the newest event of each vendor's events feed and runs a catch-up pass when the feeds hold
  an event it was never told about. The pass at start catches up after downtime: the sync
  reads everything changed since its cursors.

Every pass is one ordinary run of the reference sync (its link store, its cursors, its
retries), so the service inherits its safety rules. Against the bundled sandboxes it also
watches `/__admin/stats` `generation`: a reset forgets every entity, so the first pass after
one forgets the store's links (`fresh`) instead of trusting links to entities that are gone.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

CATCH_UP_S = 30.0  # webhook mode: how often the events feeds are checked for missed deliveries


class Wakeups:
    """Why the service should run a pass next: set by the listener, the timer or Ctrl-C."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._reasons: list[str] = []
        self._stopped = False

    def poke(self, reason: str) -> None:
        with self._cond:
            self._reasons.append(reason)
            self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    @property
    def stopped(self) -> bool:
        with self._cond:
            return self._stopped

    def wait(self, timeout: float | None) -> list[str] | None:
        """The reasons gathered since the last call (empty when ``timeout`` passed first), or
        None once stopped."""
        with self._cond:
            self._cond.wait_for(lambda: self._stopped or bool(self._reasons), timeout)
            if self._stopped:
                return None
            taken, self._reasons = self._reasons, []
            return taken


@dataclass(frozen=True)
class Pass:
    """What one pass of the service did (for its one-line log)."""

    number: int
    why: str
    fresh: bool
    summary: Any  # the reference sync's SyncSummary, or None when the pass failed
    error: str | None = None


@dataclass
class Feeds:
    """The newest event id of each vendor's feed, as last seen (webhook mode's catch-up)."""

    read: Callable[[], tuple[str | None, str | None]]
    seen: tuple[str | None, str | None] = (None, None)

    def missed(self) -> bool:
        """Whether the feeds moved since the last look (the first look only remembers)."""
        now = self.read()
        moved = now != self.seen
        self.seen = now
        return moved


@dataclass
class Service:
    """The loop: wait for a reason, notice resets, run a pass, say what it did."""

    run_pass: Callable[[bool], Any]  # fresh -> the sync's summary; raises on failure
    wakeups: Wakeups
    interval: float
    webhooks: bool  # False: a pass every interval; True: on webhooks, the interval checks feeds
    generation: Callable[[], int | None] = lambda: None
    feeds: Feeds | None = None
    log: Callable[[Pass], None] = lambda _: None
    passes: list[Pass] = field(default_factory=list)

    def serve(self) -> None:
        """Until `wakeups.stop()`; the pass under way when it comes is finished first."""
        last_generation = self.generation()
        self._pass("start", fresh=False)
        while (reasons := self.wakeups.wait(self.interval)) is not None:
            if not reasons:
                if self.webhooks and not (self.feeds is not None and self.feeds.missed()):
                    continue
                reasons = ["interval" if not self.webhooks else "catch-up: events feed"]
            generation = self.generation()
            fresh = generation != last_generation
            last_generation = generation
            self._pass(_why(reasons, fresh), fresh=fresh)

    def _pass(self, why: str, fresh: bool) -> None:
        if self.feeds is not None:
            # before the pass: an event recorded while it runs is one it may not have read
            # (the pass's own writes show up too, costing one catch-up pass that writes nothing)
            self.feeds.missed()
        self._run(why, fresh)

    def _run(self, why: str, fresh: bool) -> None:
        number = len(self.passes) + 1
        try:
            done = Pass(number, why, fresh, self.run_pass(fresh))
        except Exception as exc:  # a pass that fails is logged; the service keeps serving
            done = Pass(number, why, fresh, None, f"{type(exc).__name__}: {exc}")
        self.passes.append(done)
        self.log(done)


def _why(reasons: list[str], fresh: bool) -> str:
    shown = ", ".join(dict.fromkeys(reasons[:3])) + (f" (+{len(reasons) - 3})"
                                                     if len(reasons) > 3 else "")
    return f"{shown}; sandbox reset, links forgotten" if fresh else shown


# ---------------------------------------------------------------- webhooks in
@dataclass(frozen=True)
class WebhookAuth:
    """What a delivery must carry: Chargebee's Basic credentials, Invoiced's signing secret."""

    username: str
    password: str
    secret: str

    def accepts(self, system: str, headers: dict[str, str], body: bytes) -> bool:
        if system == "chargebee":
            token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            return hmac.compare_digest(headers.get("authorization", ""), f"Basic {token}")
        wanted = hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(headers.get("x-invoiced-signature", ""), wanted)


def event_label(system: str, body: bytes) -> str | None:
    """`chargebee customer_created ev_…` for a delivery's JSON, None when it is not an event."""
    try:
        event = json.loads(body)
    except ValueError:
        return None
    if not isinstance(event, dict):
        return None
    kind = event.get("event_type" if system == "chargebee" else "type")
    return f"{system} {kind} {event.get('id')}" if isinstance(kind, str) else None


class WebhookListener:
    """`POST /chargebee` and `POST /invoiced` on 127.0.0.1: a valid delivery wakes a pass."""

    def __init__(
        self, port: int, auth: WebhookAuth, wakeups: Wakeups,
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        outer = self
        self.on_event = on_event  # instead of waking a pass (an event-by-event syncer)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # the stdlib's name for it
                system = self.path.strip("/")
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                status = outer.receive(system, headers, body)
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.auth = auth
        self.wakeups = wakeups
        self.received: list[str] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.1,),
                                         name="service-webhooks", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, system: str) -> str:
        return f"http://127.0.0.1:{self.port}/{system}"

    def receive(self, system: str, headers: dict[str, str], body: bytes) -> int:
        """The answer to one delivery: 404 for an unknown path, 401 without valid auth,
        400 for a body that is no event, else 200 and a pass is due."""
        if system not in ("chargebee", "invoiced"):
            return 404
        if not self.auth.accepts(system, headers, body):
            return 401
        label = event_label(system, body)
        if label is None:
            return 400
        self.received.append(label)
        if self.on_event is not None:
            self.on_event(system, json.loads(body))
        else:
            self.wakeups.poke(f"webhook: {label}")
        return 200

    def __enter__(self) -> WebhookListener:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


# ---------------------------------------------------------------- the vendors, seen by a service
def newest_events(http: httpx.Client, chargebee: tuple[str, str], invoiced: tuple[str, str]
                  ) -> tuple[str | None, str | None]:
    """The id of the newest event in each vendor's feed ((base URL, key) each; None: empty)."""
    cb_url, cb_key = chargebee
    inv_url, inv_key = invoiced
    cb = http.get(f"{cb_url}/events", params={"limit": "1"}, auth=(cb_key, ""))
    cb.raise_for_status()
    inv = http.get(f"{inv_url}/events", params={"per_page": "1"}, auth=(inv_key, ""))
    inv.raise_for_status()
    cb_list, inv_list = cb.json().get("list") or [], inv.json()
    return (str(cb_list[0]["event"]["id"]) if cb_list else None,
            str(inv_list[0]["id"]) if inv_list else None)


def sandbox_admin(base_url: str) -> str | None:
    """The admin root of a bundled sandbox at ``base_url`` (on 127.0.0.1 or localhost only:
    a vendor has no admin API), else None."""
    from urllib.parse import urlsplit

    parts = urlsplit(base_url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        return None
    return f"{parts.scheme}://{parts.netloc}/__admin"


def sandbox_generation(http: httpx.Client, admin: str, key: str) -> int | None:
    """The sandbox's reset `generation`, None when it cannot be read (then resets go
    unnoticed, as against a vendor)."""
    try:
        answer = http.get(f"{admin}/stats", auth=(key, ""))
        return int(answer.json()["generation"]) if answer.status_code == 200 else None
    except Exception:
        return None


def register_sandbox_webhooks(
    http: httpx.Client, admin: str, key: str, listener: WebhookListener
) -> None:
    """Point both sandboxes' webhooks at ``listener`` (a vendor's are set in its console)."""
    auth = listener.auth
    answer = http.post(f"{admin}/webhooks", auth=(key, ""), json={"endpoints": [
        {"system": "chargebee", "url": listener.url("chargebee"),
         "username": auth.username, "password": auth.password},
        {"system": "invoiced", "url": listener.url("invoiced"), "secret": auth.secret},
    ]})
    answer.raise_for_status()
