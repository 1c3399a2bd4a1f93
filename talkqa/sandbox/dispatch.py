"""The ASGI shell shared by both emulators: routing, auth, stats, faults, idempotency, errors.

Vendor modules supply pure handlers `(state, call) -> Reply` and an error renderer; this
module owns every byte of I/O so handlers stay testable and the order of checks is the same
for both vendors (admin, auth, route, faults, idempotency, handler).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from talkqa.sandbox.faults import FaultEngine
from talkqa.sandbox.state import Replay, SandboxState
from talkqa.sandbox.webhooks import Webhooks
from talkqa.sandbox.wire import WireError, render

_log = logging.getLogger("talkqa.sandbox")

# Largest request body either emulator reads (documented in the README): bigger ones get a
# 413 at once, from Content-Length or as soon as the stream passes it, never after reading
# megabytes into a parser that holds the state lock.
MAX_BODY_BYTES = 1_048_576


class _TooLarge(Exception):
    """The request body passed MAX_BODY_BYTES while streaming in."""


async def _bounded_body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


class SandboxConnectionDropped(httpx.RemoteProtocolError):
    """Raised to abort a response mid-way: uvicorn closes the socket, TestClient re-raises it,
    so in-process and networked clients both see an `httpx.RemoteProtocolError`."""


@dataclass(frozen=True)
class Problem(Exception):
    """A vendor error answer; each vendor renders it in its own envelope."""

    status: int
    message: str
    code: str = "invalid_request"
    param: str | None = None
    error_type: str | None = "invalid_request"
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Call:
    """One request as the handlers see it (already authenticated and routed)."""

    method: str
    path: str
    path_params: dict[str, str]
    query: list[tuple[str, str]]
    body: bytes
    content_type: str
    url: str


@dataclass
class Reply:
    status: int = 200
    payload: Any = None
    headers: list[tuple[str, str]] = field(default_factory=list)


Handler = Callable[[SandboxState, Call], Reply]


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    handler: Handler
    writes: bool

    @property
    def pattern(self) -> re.Pattern[str]:
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.template))
        return re.compile(f"^{regex}$")


@dataclass(frozen=True)
class Vendor:
    """What distinguishes the two emulators at the transport level."""

    name: str
    prefix: str
    api_key: str
    idempotency_header: str
    replay_header: str | None
    media_type: str
    routes: tuple[Route, ...]
    render_error: Callable[[Problem], dict[str, Any]]
    not_found: Callable[[str, str], Problem]
    unauthorized: Problem


class SandboxApp:
    """One vendor's ASGI app over the shared state; admin endpoints under `/__admin`."""

    def __init__(
        self, vendor: Vendor, state: SandboxState, faults: FaultEngine, admin: Any,
        webhooks: Webhooks | None = None,
    ) -> None:
        self.vendor = vendor
        self.state = state
        self.faults = faults
        self.admin = admin
        self.webhooks = webhooks
        self._compiled = [(route, route.pattern) for route in vendor.routes]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        path: str = scope["path"]
        if path == "/__admin" or path.startswith("/__admin/"):
            # the admin API resets and seeds the whole sandbox: it takes the vendor's key too
            if not self._authorized(request):
                await self._send(self._problem(self.vendor.unauthorized), scope, receive, send)
                return
            response = await self.admin(request, self.vendor.name)
            await response(scope, receive, send)
            return
        await self._vendor_call(request, path, scope, receive, send)

    async def _vendor_call(
        self, request: Request, path: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        vendor = self.vendor
        method = request.method.upper()
        relative = path[len(vendor.prefix) :] if path.startswith(vendor.prefix) else None
        route, params = self._match(method, relative)
        template = route.template if route else "<unknown>"
        with self.state.lock:
            self.state.request_counts[f"{vendor.name} {method} {template}"] += 1
        if not self._authorized(request):
            await self._send(self._problem(vendor.unauthorized), scope, receive, send)
            return
        if route is None or relative is None:
            problem = vendor.not_found(method, path)
            await self._send(self._problem(problem), scope, receive, send)
            return
        decision = self.faults.decide(vendor.name, method, relative, template)
        try:
            if decision.fired:
                with self.state.lock:
                    for kind in decision.fired:
                        self.state.fault_counts[f"{vendor.name} {method} {template} {kind}"] += 1
            if decision.latency_ms:
                await asyncio.sleep(decision.latency_ms / 1000)
            if decision.status is not None:
                await self._send(self._fault_reply(decision.status, decision.retry_after),
                                 scope, receive, send)
                return
            try:
                body = await _bounded_body(request)
            except _TooLarge:
                await self._send(self._problem(Problem(
                    413, f"The request body is larger than {MAX_BODY_BYTES} bytes.",
                    "request_too_large", None,
                )), scope, receive, send)
                return
            if decision.drop == "before":
                # after reading the body, before the write: a socket closed with unread bytes
                # sends a reset, so the client would see ReadError or RemoteProtocolError by
                # chance; a read body makes every drop the same half-sent response
                await self._drop(send)
            call = Call(
                method=method,
                path=relative,
                path_params=params,
                query=list(request.query_params.multi_items()),
                body=body,
                content_type=request.headers.get("content-type", ""),
                url=str(request.url),
            )
            reply = self._handle(route, call, request.headers.get(vendor.idempotency_header))
            if decision.drop == "after":
                await self._drop(send)
            await self._send(reply, scope, receive, send)
        finally:
            self.faults.release(decision)

    def _match(self, method: str, relative: str | None) -> tuple[Route | None, dict[str, str]]:
        if relative is None:
            return None, {}
        for route, pattern in self._compiled:
            if route.method != method:
                continue
            found = pattern.match(relative)
            if found:
                return route, found.groupdict()
        return None, {}

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer":
            return value == self.vendor.api_key
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return False
        return decoded.partition(":")[0] == self.vendor.api_key

    def _handle(self, route: Route, call: Call, idempotency_key: str | None) -> Reply:
        """Run a handler under the state lock; replay idempotent writes byte for byte."""
        with self.state.lock:
            fingerprint = hashlib.sha256(
                f"{call.method} {call.path} {sorted(call.query)}".encode() + b"\n" + call.body
            ).hexdigest()
            slot = (self.vendor.name, idempotency_key) if idempotency_key else None
            if slot is not None and route.writes and slot in self.state.idempotency:
                stored = self.state.idempotency[slot]
                if stored.fingerprint != fingerprint:
                    return self._problem(
                        Problem(
                            422 if self.vendor.name == "chargebee" else 400,
                            "The idempotency key was already used with a different request.",
                            "unable_to_process_request",
                            None,
                        )
                    )
                headers = [(self.vendor.replay_header, "true")] if self.vendor.replay_header else []
                return Reply(stored.status, _Raw(stored.body) if stored.body else None, headers)
            try:
                reply = route.handler(self.state, call)
                if reply.payload is not None:  # render here: a failure is still answered
                    reply.payload = _Raw(_bytes(reply.payload))
            except Problem as problem:
                reply = self._problem(problem)
            except WireError as exc:
                reply = self._problem(Problem(400, str(exc), "param_wrong_value", exc.param))
            except Exception:  # a sandbox bug must still answer in the vendor's shape
                _log.exception("sandbox handler failed: %s %s", call.method, call.path)
                reply = self._problem(
                    Problem(500, "Internal error in the sandbox.", "internal_error", None,
                            "operation_failed" if self.vendor.name == "chargebee" else "api")
                )
            if self.webhooks is not None:
                self.webhooks.publish_pending()
            if slot is not None and route.writes and reply.status < 500:
                body = b"" if reply.payload is None else _bytes(reply.payload)
                self.state.idempotency[slot] = Replay(fingerprint, reply.status, body)
            return reply

    def _problem(self, problem: Problem) -> Reply:
        return Reply(problem.status, self.vendor.render_error(problem), list(problem.headers))

    def _fault_reply(self, status: int, retry_after: int | None) -> Reply:
        headers = (("retry-after", str(retry_after)),) if retry_after is not None else ()
        chargebee = self.vendor.name == "chargebee"
        if status == 429:
            problem = Problem(
                429,
                "Sorry, access has been blocked temporarily due to request count exceeding "
                "acceptable limits. Please try after some time."
                if chargebee else "You're moving too fast",
                "api_request_limit_exceeded",
                None,
                "operation_failed" if chargebee else "rate_limit_error",
                headers,
            )
        elif status == 503:
            problem = Problem(503, "Sorry, the service is temporarily unavailable.",
                              "internal_temporary_error", None,
                              "operation_failed" if chargebee else "api", headers)
        else:
            problem = Problem(status, "Sorry, something went wrong when processing the request.",
                              "internal_error", None,
                              "operation_failed" if chargebee else "api", headers)
        return self._problem(problem)

    async def _drop(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", self.vendor.media_type.encode())]})
        await send({"type": "http.response.body", "body": b"{", "more_body": True})
        raise SandboxConnectionDropped("sandbox fault: connection dropped by the server")

    async def _send(self, reply: Reply, scope: Scope, receive: Receive, send: Send) -> None:
        if reply.payload is None:
            response = Response(status_code=reply.status, headers=dict(reply.headers))
        else:
            response = Response(
                content=_bytes(reply.payload),
                status_code=reply.status,
                media_type=self.vendor.media_type,
            )
            for name, value in reply.headers:
                response.headers.append(name, value)
        await response(scope, receive, send)


@dataclass(frozen=True)
class _Raw:
    """An already-rendered body (idempotent replays)."""

    data: bytes


def _bytes(payload: Any) -> bytes:
    return payload.data if isinstance(payload, _Raw) else render(payload)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
