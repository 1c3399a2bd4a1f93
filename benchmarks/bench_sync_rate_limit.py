"""`talkqa sync` against Chargebee's test-site limits: exit status, pace and the 429s it cost.

    .venv/bin/python benchmarks/bench_sync_rate_limit.py [--limit 150] [--customers 590]
                                                         [--no-pace]

The issue-13 scenario end to end, through the command a user runs: `talkqa sandbox serve
--faults chargebee-test-site` (150 requests a minute, 50 concurrent GETs and POSTs; another
``--limit`` serves the same rules at that rate) in its own process, ``--customers`` Invoiced
persons created through Invoiced's API (not limited), then one `talkqa sync` of
`dataflows/invoiced-chargebee.rst`, which must create each of them in Chargebee. The
sandbox's own request counters (``/__admin/stats``) say how many Chargebee requests the sync
made and how many were answered 429. Prints the exit status, the elapsed time, the pace as a
share of the limit (all requests, and those not answered 429) and the share answered 429: the
issue's goals are exit 0, >= 0.95 of the limit and <= 2% answered 429. ``--no-pace`` leaves
``CHARGEBEE_REQUESTS_PER_MINUTE`` unset, as for any sandbox on 127.0.0.1: the sync then has no
pace of its own until it learns one from the server's 429s.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from sandbox_process import TALKQA, admin_url, process_env, served_sandboxes

from talkqa.sandbox.faults import PRESETS
from talkqa.systems.connect import Systems
from talkqa.systems.settings import Settings

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "dataflows" / "invoiced-chargebee.rst"


def limits(limit: int) -> str:
    """The test-site preset itself at 150 a minute; the same rules at another rate."""
    if limit == 150:
        return "chargebee-test-site"
    return PRESETS["chargebee-test-site"].replace("limit=150;", f"limit={limit};", 1)


def chargebee_counts(env: dict[str, str]) -> tuple[int, int]:
    """(requests, of them answered 429) the Chargebee sandbox has counted so far."""
    with httpx.Client(timeout=30, auth=(env["CHARGEBEE_API_KEY"], "")) as http:
        stats: dict[str, Any] = http.get(f"{admin_url(env)}/stats").raise_for_status().json()
    requests = sum(n for key, n in stats["requests"].items() if key.startswith("chargebee "))
    throttled = sum(n for key, n in stats["faults"].items() if key.startswith("chargebee "))
    return requests, throttled


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=150, help="Chargebee requests per minute")
    parser.add_argument("--customers", type=int, default=590, help="Invoiced customers to push")
    parser.add_argument("--no-pace", action="store_true", help="leave the pace unset")
    args = parser.parse_args()
    with served_sandboxes(seed=0, faults=limits(args.limit)) as env:
        with httpx.Client(timeout=60) as http:
            invoiced = Systems.connect(Settings.from_env(env), http).invoiced.customers
            for n in range(args.customers):
                invoiced.create(
                    {"name": f"Rate {n}", "email": f"rate{n}@example.com", "type": "person"}
                )
        before, throttled_before = chargebee_counts(env)
        sync_env = process_env(env)
        if args.no_pace:
            sync_env.pop("CHARGEBEE_REQUESTS_PER_MINUTE", None)
        else:
            sync_env["CHARGEBEE_REQUESTS_PER_MINUTE"] = str(args.limit)
        with tempfile.TemporaryDirectory() as tmp:
            started = time.monotonic()
            done = subprocess.run(
                [*TALKQA, "sync", str(DOC), "--state", str(Path(tmp) / "links.sqlite")],
                env=sync_env,
                capture_output=True,
                text=True,
                check=False,
            )
            elapsed = time.monotonic() - started
        after, throttled_after = chargebee_counts(env)
    requests, throttled = after - before, throttled_after - throttled_before
    per_minute = requests / elapsed * 60
    print(f"limit                 {limits(args.limit)}")
    print(f"our pace              {'none (429s only)' if args.no_pace else f'{args.limit}/min'}")
    print(f"invoiced customers    {args.customers} to create in Chargebee")
    print(f"chargebee requests    {requests} (sandbox's count)")
    print(f"elapsed               {elapsed:.1f} s")
    print(f"achieved              {per_minute:.1f}/min = {per_minute / args.limit:.3f} of limit")
    # the server's own count of what it let through: 429s are requests, but not the pace
    accepted = (requests - throttled) / elapsed * 60
    print(f"accepted              {accepted:.1f}/min = {accepted / args.limit:.3f} of limit")
    print(f"answered 429          {throttled} of {requests} = {throttled / max(requests, 1):.2%}")
    print(f"exit status           {done.returncode}")
    if done.returncode != 0:
        print(done.stdout[-2000:], done.stderr[-2000:], sep="\n", file=sys.stderr)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
