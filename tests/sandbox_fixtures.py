"""Sandbox clients and servers the sandbox, SDK and fault tests share (import what you use).

Not a conftest: other suites keep their own fixtures, and a module imported by name says
where a fixture comes from.
"""

from __future__ import annotations

import warnings
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

with warnings.catch_warnings():  # starlette 1.x nudges towards httpx2; httpx 0.28 is our pin
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

# The hosts the one-client tests address: Settings.for_sandbox(CHARGEBEE_URL, INVOICED_URL).
CHARGEBEE_URL = "http://chargebee.sandbox/api/v2"
INVOICED_URL = "http://invoiced.sandbox"


def in_process(app: ASGIApp, base_url: str, api_key: str) -> httpx.Client:
    """An httpx client on one emulator app, no sockets, authenticated with ``api_key``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        client = TestClient(app, base_url=base_url)
    client.auth = (api_key, "")  # starlette's TestClient takes no auth= argument
    return client


def both_in_process(sandbox: Sandbox) -> TestClient:
    """One in-process client for both apps, routed by host (``chargebee...`` or else Invoiced),
    the way one scenario client reaches both vendors. A starlette TestClient: an httpx.Client.
    """

    async def by_host(scope: Scope, receive: Receive, send: Send) -> None:
        host = dict(scope.get("headers") or []).get(b"host", b"")
        app = sandbox.chargebee_app if host.startswith(b"chargebee") else sandbox.invoiced_app
        await app(scope, receive, send)

    return TestClient(by_host)


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
