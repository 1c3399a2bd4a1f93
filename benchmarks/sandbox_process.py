"""The bundled sandboxes in their own process, for benchmarks that must not share a GIL with
the sync they measure, plus the `/__admin` calls the benchmarks use (reset, seed, faults)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

TALKQA = [sys.executable, "-c", "from talkqa.cli import main; main()"]
# the served process of each running sandbox, by its Chargebee base URL (see `server_cpu`)
_SERVERS: dict[str, int] = {}


@contextlib.contextmanager
def served_sandboxes(seed: int = 0, faults: str = "") -> Iterator[dict[str, str]]:
    """`talkqa sandbox serve` on free 127.0.0.1 ports (with ``--faults`` when given); yields
    its five variables."""
    options = ["--seed", str(seed), *(["--faults", faults] if faults else [])]
    server = subprocess.Popen(
        [*TALKQA, "sandbox", "serve", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stdout is not None
        env: dict[str, str] = {}
        while len(env) < 5:
            line = server.stdout.readline()
            if not line:
                raise RuntimeError("the sandbox exited before it printed its variables")
            name, _, value = line.strip().partition("=")
            env[name] = value
        _SERVERS[env["CHARGEBEE_BASE_URL"]] = server.pid
        yield env
    finally:
        _SERVERS.pop(env.get("CHARGEBEE_BASE_URL", ""), None)
        server.terminate()
        server.wait(10)


def server_cpu(env: dict[str, str]) -> float:
    """CPU seconds the sandbox process has used so far (Linux `/proc`; NaN elsewhere).

    On a shared machine wall time says little; the CPU each side spends per answer does.
    """
    try:
        fields = Path(f"/proc/{_SERVERS[env['CHARGEBEE_BASE_URL']]}/stat").read_text().split()
    except (KeyError, OSError):
        return float("nan")
    ticks = int(fields[13]) + int(fields[14])  # utime, stime: fields 14 and 15 of proc(5)
    return ticks / os.sysconf("SC_CLK_TCK")


def admin_url(env: dict[str, str]) -> str:
    return env["CHARGEBEE_BASE_URL"].rsplit("/api/v2", 1)[0] + "/__admin"


def reset(env: dict[str, str], seed: int, **counts: int) -> None:
    """A fresh sandbox state for ``seed``, seeded with ``counts`` (customers, items, orders)."""
    with httpx.Client(timeout=600, auth=(env["CHARGEBEE_API_KEY"], "")) as http:
        http.post(f"{admin_url(env)}/faults", json={"spec": ""}).raise_for_status()
        http.post(f"{admin_url(env)}/reset", json={"seed": seed}).raise_for_status()
        if counts:
            http.post(f"{admin_url(env)}/seed", json=counts).raise_for_status()


def set_faults(env: dict[str, str], spec: str) -> None:
    with httpx.Client(timeout=60, auth=(env["CHARGEBEE_API_KEY"], "")) as http:
        http.post(f"{admin_url(env)}/faults", json={"spec": spec}).raise_for_status()


def process_env(env: dict[str, str]) -> dict[str, str]:
    """Our environment with the sandbox's variables on top (for a `talkqa sync` child)."""
    return {**os.environ, **env}


def fired(env: dict[str, str]) -> int:
    """How many injected faults fired since the rules were set."""
    with httpx.Client(timeout=60, auth=(env["CHARGEBEE_API_KEY"], "")) as http:
        rules = http.get(f"{admin_url(env)}/stats").raise_for_status().json()["rules"]
    return sum(int(rule.get("fired", 0)) for rule in rules)


@contextlib.contextmanager
def connected(env: dict[str, str]) -> Iterator[tuple[Any, Any]]:
    """Our connectors on a served sandbox over one pooled client, and a fresh link store:
    (Systems, LinkStore), for a benchmark's sync."""
    import tempfile

    from reference_sync import LinkStore
    from talkqa.systems.connect import Systems
    from talkqa.systems.settings import Settings
    from talkqa.systems.wire import vendor_client

    with (
        vendor_client(120) as http,
        tempfile.TemporaryDirectory() as tmp,
        LinkStore(Path(tmp) / "links.sqlite") as store,
    ):
        yield Systems.connect(Settings.from_env(env), http), store
