"""Build the two apps over one state, in process or served by uvicorn on 127.0.0.1.

`create_apps` is for `starlette.testclient.TestClient` (an `httpx.Client`, no sockets);
`running_sandboxes` is for anything that needs real URLs (SDKs, subprocesses, the CLI).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from talkqa.errors import UserError
from talkqa.sandbox import chargebee, invoiced
from talkqa.sandbox.admin import AdminApi
from talkqa.sandbox.clock import WRITES_PER_SECOND
from talkqa.sandbox.dispatch import SandboxApp, SandboxConnectionDropped
from talkqa.sandbox.faults import FaultEngine, parse_spec
from talkqa.sandbox.state import SandboxState
from talkqa.sandbox.webhooks import Webhooks

CHARGEBEE_SITE = chargebee.SITE
CHARGEBEE_API_KEY = chargebee.API_KEY
INVOICED_API_KEY = invoiced.API_KEY
HOST = "127.0.0.1"


@dataclass
class Sandbox:
    """Both emulators over one state (one clock, one RNG, one lock, one fault table, one
    webhook deliverer)."""

    state: SandboxState
    faults: FaultEngine
    admin: AdminApi
    webhooks: Webhooks
    chargebee_app: SandboxApp
    invoiced_app: SandboxApp

    def reset(self, seed: int = 0) -> None:
        self.admin.reset(seed)

    def stats(self) -> dict[str, Any]:
        return self.admin.stats()

    def seed(self, customers: int = 0, items: int = 0, orders: int = 0) -> dict[str, int]:
        return self.admin.seed(customers, items, orders)


def create_sandbox(
    seed: int = 0, faults: str | None = None, writes_per_second: int = WRITES_PER_SECOND
) -> Sandbox:
    """A fresh sandbox; `faults` is a SPEC (see `talkqa.sandbox.faults`) kept across resets;
    up to `writes_per_second` writes share one second of the clock (`talkqa.sandbox.clock`)."""
    if faults:
        parse_spec(faults)  # fail early with a UserError naming the bad rule
    state = SandboxState(seed, writes_per_second)
    engine = FaultEngine()
    webhooks = Webhooks(state, engine)
    admin = AdminApi(state, engine, faults, webhooks)
    return Sandbox(
        state=state,
        faults=engine,
        admin=admin,
        webhooks=webhooks,
        chargebee_app=SandboxApp(chargebee.VENDOR, state, engine, admin, webhooks),
        invoiced_app=SandboxApp(invoiced.VENDOR, state, engine, admin, webhooks),
    )


def create_apps(seed: int = 0, faults: str | None = None) -> tuple[SandboxApp, SandboxApp]:
    """(chargebee_app, invoiced_app) sharing one state, for in-process `TestClient`s:
    `TestClient(cb, base_url="http://127.0.0.1/api/v2")`, `TestClient(inv, base_url=...)`."""
    sandbox = create_sandbox(seed, faults)
    return sandbox.chargebee_app, sandbox.invoiced_app


def sandbox_env(chargebee_base_url: str, invoiced_base_url: str) -> dict[str, str]:
    """The five variables every system under test reads."""
    return {
        "CHARGEBEE_SITE": CHARGEBEE_SITE,
        "CHARGEBEE_API_KEY": CHARGEBEE_API_KEY,
        "CHARGEBEE_BASE_URL": chargebee_base_url,
        "INVOICED_API_KEY": INVOICED_API_KEY,
        "INVOICED_BASE_URL": invoiced_base_url,
    }


@dataclass
class RunningSandboxes:
    """What `running_sandboxes` yields."""

    sandbox: Sandbox
    chargebee_port: int
    invoiced_port: int
    env: dict[str, str] = field(default_factory=dict)

    @property
    def chargebee_base_url(self) -> str:
        return f"http://{HOST}:{self.chargebee_port}{chargebee.PREFIX}"

    @property
    def invoiced_base_url(self) -> str:
        return f"http://{HOST}:{self.invoiced_port}"

    def reset(self, seed: int = 0) -> None:
        self.sandbox.reset(seed)

    def stats(self) -> dict[str, Any]:
        return self.sandbox.stats()

    def seed(self, customers: int = 0, items: int = 0, orders: int = 0) -> dict[str, int]:
        """Bulk Chargebee data, as `POST /__admin/seed` adds it, without the HTTP round."""
        return self.sandbox.seed(customers, items, orders)


class _QuietDrops(logging.Filter):
    """Injected connection drops are intended: keep uvicorn from logging them as crashes."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, SandboxConnectionDropped)


def _bind(port: int) -> socket.socket:
    # IPPROTO_TCP, not the default 0: asyncio only sets TCP_NODELAY on accepted sockets
    # whose proto says TCP, and without it Nagle meets the client's delayed ACK and every
    # keep-alive request waits ~40 ms (measured: 44 ms -> 0.8 ms per call).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError as exc:
        sock.close()
        raise UserError(
            f"sandbox: cannot listen on {HOST}:{port} ({exc.strerror}); "
            "choose another port or 0 for a free one"
        ) from None
    return sock


@contextmanager
def _serve(app: SandboxApp, port: int) -> Iterator[int]:
    sock = _bind(port)
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        date_header=False,
        server_header=False,
        lifespan="off",
        log_config=None,
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"sandbox-{app.vendor.name}",
        daemon=True,
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise UserError(f"sandbox: the {app.vendor.name} server did not start")
        time.sleep(0.005)
    try:
        yield int(sock.getsockname()[1])
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()


@contextmanager
def running_sandboxes(
    seed: int = 0,
    chargebee_port: int = 0,
    invoiced_port: int = 0,
    faults: str | None = None,
    writes_per_second: int = WRITES_PER_SECOND,
) -> Iterator[RunningSandboxes]:
    """Serve both emulators on 127.0.0.1 (port 0 = a free port) until the block ends."""
    sandbox = create_sandbox(seed, faults, writes_per_second)
    uvicorn_log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietDrops) for f in uvicorn_log.filters):
        uvicorn_log.addFilter(_QuietDrops())
    with ExitStack() as stack:
        stack.callback(sandbox.webhooks.close)
        cb_port = stack.enter_context(_serve(sandbox.chargebee_app, chargebee_port))
        inv_port = stack.enter_context(_serve(sandbox.invoiced_app, invoiced_port))
        running = RunningSandboxes(sandbox, cb_port, inv_port)
        running.env = sandbox_env(running.chargebee_base_url, running.invoiced_base_url)
        yield running
