"""HTTP calls of a first and a second sync run: the second must grow with edits, not with N.

    .venv/bin/python benchmarks/bench_sync_calls.py [--customers 1000] [--edit-percent 1]
                                                    [--fake]

Against the bundled sandbox served on 127.0.0.1 (free ports) through the real connectors
and their call counters; ``--fake`` (or a missing sandbox) uses the in-memory fake vendors.
Edits: ``edit-percent`` of the customers changed in Chargebee and as many others in Invoiced
between the runs.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

from reference_sync import LinkStore, SyncSummary, run_sync
from reference_sync.engine import Systems
from reference_sync.testing import FakeSystems, checklist_spec, section

SPEC = checklist_spec(
    section(
        0,
        "Customer",
        "Customers person",
        (("billing_address.city", "city", "string"), ("email", "email", "string")),
    )
)


@contextlib.contextmanager
def _sandbox_systems(customers: int) -> Iterator[tuple[Systems, Callable[[], dict[str, int]], Any]]:
    import httpx

    from talkqa.sandbox.server import CHARGEBEE_API_KEY, INVOICED_API_KEY, running_sandboxes
    from talkqa.systems.connect import Systems as RealSystems
    from talkqa.systems.settings import Settings

    with running_sandboxes(seed=0) as sandbox, httpx.Client(auth=(CHARGEBEE_API_KEY, "")) as http:
        http.post(
            f"{sandbox.chargebee_base_url.rsplit('/api/v2', 1)[0]}/__admin/seed",
            json={"customers": customers},
        ).raise_for_status()
        settings = Settings.for_sandbox(
            sandbox.chargebee_base_url,
            sandbox.invoiced_base_url,
            chargebee_api_key=CHARGEBEE_API_KEY,
            invoiced_api_key=INVOICED_API_KEY,
        )
        systems = RealSystems.connect(settings, http)

        def counts() -> dict[str, int]:
            found = systems.call_counts()
            systems.calls.reset()
            return found

        yield systems, counts, systems


@contextlib.contextmanager
def _fake_systems(customers: int) -> Iterator[tuple[Systems, Callable[[], dict[str, int]], Any]]:
    fake = FakeSystems()
    for n in range(customers):
        fake["chargebee", "customers"].seed(
            {"id": f"c{n}", "email": f"c{n}@example.com", "billing_address": {"city": "Oslo"}}
        )

    def counts() -> dict[str, int]:
        found = dict(fake.calls)
        fake.calls.clear()
        return found

    yield fake, counts, fake


def _edit(backend: Any, edits: int, fake: bool) -> None:
    """``edits`` customers changed in Chargebee, ``edits`` others changed in Invoiced."""
    if fake:
        source_ids = sorted(backend["chargebee", "customers"].entities)[:edits]
        people = list(backend["invoiced", "customers"].entities.values())[-edits:]
        for sid in source_ids:
            backend["chargebee", "customers"].edit(sid, {"email": f"{sid}@edited.example.com"})
        for person in people:
            backend["invoiced", "customers"].edit(str(person["id"]), {"city": "Bergen"})
        return
    chargebee, invoiced = backend.chargebee, backend.invoiced
    source_ids = [c["id"] for c, _ in zip(chargebee.customers.list(), range(edits), strict=False)]
    people = list(invoiced.customers.list())[-edits:]
    for sid in source_ids:
        chargebee.customers.update(sid, {"email": f"{sid.lower()}@edited.example.com"})
    for person in people:
        invoiced.customers.update(str(person["id"]), {"city": "Bergen"})


def _show(title: str, summary: SyncSummary, counts: dict[str, int], seconds: float) -> None:
    total = sum(counts.values())
    print(f"\n{title}: {total} HTTP calls in {seconds:.2f}s  totals={summary.totals}")
    for key in sorted(counts):
        print(f"  {counts[key]:6d}  {key}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--edit-percent", type=float, default=1.0)
    parser.add_argument("--fake", action="store_true", help="in-memory fake vendors")
    args = parser.parse_args()
    edits = max(1, int(args.customers * args.edit_percent / 100))
    use_fake = args.fake
    if not use_fake:
        try:
            import talkqa.sandbox.server  # noqa: F401
        except ImportError:
            use_fake = True
    opener = _fake_systems if use_fake else _sandbox_systems
    print(
        f"backend: {'fake vendors' if use_fake else 'sandbox over HTTP'}; N={args.customers}; "
        f"{edits} edits on each side"
    )
    with opener(args.customers) as (systems, counts, backend), LinkStore(":memory:") as store:
        counts()
        started = time.perf_counter()
        first = run_sync(SPEC, systems, store)
        _show("first run", first, counts(), time.perf_counter() - started)
        _edit(backend, edits, use_fake)
        counts()
        started = time.perf_counter()
        second = run_sync(SPEC, systems, store)
        second_counts = counts()
        _show("second run", second, second_counts, time.perf_counter() - started)
        writes = second.totals["updated_to_target"] + second.totals["updated_to_source"]
        print(
            f"\nsecond run: {sum(second_counts.values())} calls for {2 * edits} edits "
            f"({writes} entities written) out of N={args.customers}"
        )


if __name__ == "__main__":
    main()
