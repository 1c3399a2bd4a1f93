"""Sandbox clients and servers the sandbox, SDK and fault tests share (import what you use).

Not a conftest: other suites keep their own fixtures, and a module imported by name says
where a fixture comes from.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from talkqa.sandbox.server import (
    CHARGEBEE_API_KEY,
    INVOICED_API_KEY,
    RunningSandboxes,
    Sandbox,
    running_sandboxes,
)
from talkqa.systems.connect import Systems
from talkqa.systems.settings import Settings

# The hosts the one-client tests address: Settings.for_sandbox(CHARGEBEE_URL, INVOICED_URL).
CHARGEBEE_URL = "http://chargebee.sandbox/api/v2"
INVOICED_URL = "http://invoiced.sandbox"


class InProcess(httpx.BaseTransport):
    """httpx's ASGITransport under a sync client: the app runs in the calling thread, on an
    event loop of that thread's own (threads, as the sync's writers, each get one).

    Not starlette's TestClient: it hands every request to an event loop in another thread
    (a new one per request outside a ``with`` block), 2-4 ms of CPU per request against
    ~0.1 ms here, over thousands of requests in the suite. App exceptions reach the caller,
    as with TestClient (a sandbox's injected connection drop among them).
    """

    def __init__(self, app: ASGIApp) -> None:
        self._asgi = httpx.ASGITransport(app=app)
        self._local = threading.local()
        self._loops: list[asyncio.AbstractEventLoop] = []
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        loop: asyncio.AbstractEventLoop | None = getattr(self._local, "loop", None)
        if loop is None:
            loop = self._local.loop = asyncio.new_event_loop()
            with self._lock:
                self._loops.append(loop)
        return loop.run_until_complete(self._call(request))

    async def _call(self, request: httpx.Request) -> httpx.Response:
        answer = await self._asgi.handle_async_request(request)
        body = await answer.aread()  # read here: the sync client cannot iterate an async body
        return httpx.Response(answer.status_code, headers=answer.headers, content=body)

    def close(self) -> None:
        with self._lock:
            loops, self._loops = self._loops, []
        for loop in loops:
            loop.close()


def in_process(app: ASGIApp, base_url: str, api_key: str) -> httpx.Client:
    """An httpx client on one emulator app, no sockets, authenticated with ``api_key``."""
    return httpx.Client(transport=InProcess(app), base_url=base_url, auth=(api_key, ""))


def both_in_process(sandbox: Sandbox) -> httpx.Client:
    """One in-process client for both apps, routed by host (``chargebee...`` or else Invoiced),
    the way one scenario client reaches both vendors."""

    async def by_host(scope: Scope, receive: Receive, send: Send) -> None:
        host = dict(scope.get("headers") or []).get(b"host", b"")
        app = sandbox.chargebee_app if host.startswith(b"chargebee") else sandbox.invoiced_app
        await app(scope, receive, send)

    return httpx.Client(transport=InProcess(by_host), base_url="http://testserver")


def sandbox_systems(
    http: httpx.Client,
    chargebee_url: str = CHARGEBEE_URL,
    invoiced_url: str = INVOICED_URL,
    *,
    chargebee_api_key: str = CHARGEBEE_API_KEY,
    invoiced_api_key: str = INVOICED_API_KEY,
    **connect: Any,
) -> Systems:
    """Our connectors on the sandboxes through ``http`` (in process by default), no budget."""
    settings = Settings.for_sandbox(
        chargebee_url,
        invoiced_url,
        chargebee_api_key=chargebee_api_key,
        invoiced_api_key=invoiced_api_key,
    )
    return Systems.connect(settings, http, **connect)


@pytest.fixture(scope="module")
def served() -> Iterator[RunningSandboxes]:
    """Both emulators over real sockets, once per module (tests reset them)."""
    with running_sandboxes(seed=0) as running:
        yield running
