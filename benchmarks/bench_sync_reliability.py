"""The reference sync under faults, crashes and concurrency: counts of what went wrong.

    .venv/bin/python benchmarks/bench_sync_reliability.py [--scenario all|faults|lost|kill|two]
        [--seeds 5] [--runs 3] [--customers 200] [--items 20] [--orders 300]
        [--kills 10] [--pairs 10] [--concurrency 8]

The sandboxes run in their own process (`talkqa sandbox serve`), seeded per trial; faults
come from the sandbox's fault SPEC (talkqa/sandbox/faults.py), placed at positions drawn
from the trial's seed. After each trial the faults are cleared and the judge
(`talkqa.checks.check_spec`) counts findings; the figures are those counts.

- faults: per seed, 10% 429, 5% 503 and 2% lost responses (drop_after) on every write of
  both vendors, edits and deletions between runs; up to --runs runs; a run that raised
  (instead of confining a failure to its entity) counts as aborted.
- lost: the same with only 2% lost responses on every write (issue 12's "done when").
- kill: `talkqa sync` SIGKILLed at a random moment --kills times, then one run to the end.
- two: --pairs times, two `talkqa sync` on one store started together.

Connector back-off sleeps are skipped in-process (the figures are counts, not seconds).
"""

from __future__ import annotations

import argparse
import random
import signal
import sqlite3
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from sandbox_process import (  # benchmarks/, beside this script
    TALKQA,
    fired,
    process_env,
    reset,
    served_sandboxes,
    set_faults,
)

from reference_sync import LinkStore, run_sync
from reference_sync.testing import ORDER_PROPERTIES, checklist_spec, section
from talkqa.checks import check_spec
from talkqa.systems.connect import Systems
from talkqa.systems.settings import Settings

REPO = Path(__file__).resolve().parents[1]
CHECKLIST = REPO / "dataflows" / "chargebee-invoiced.rst"
SPEC = checklist_spec(  # two-way properties, so there are writes to Chargebee too
    section(0, "Order", "Invoices", ORDER_PROPERTIES),
    section(
        1,
        "Customer",
        "Customers person",
        (("billing_address.city", "city", "string"), ("email", "email", "string")),
    ),
    section(2, "Item", "Items"),
)
WRITES = [f"{s}.{m}" for s, m in (("chargebee", "POST"), ("invoiced", "POST"))] + [
    "invoiced.PATCH",
    "invoiced.DELETE",
]
EDIT_SHARE = 0.03  # of customers edited each side, and of items deleted, between runs
FINDINGS = ("missing", "duplicate", "dangling_reference", "mismatch")


def _systems(env: dict[str, str], http: httpx.Client) -> Systems:
    settings = Settings.from_env(env)
    return Systems.connect(settings, http, sleep=lambda _seconds: None)


def _fault_spec(rng: random.Random, rates: dict[str, float], creates: int, edits: int) -> str:
    """One rule per fault, at drawn positions of each write route: at least one per kind
    and route, so updates and deletions (few per run) meet every fault too."""
    rules = []
    for target in WRITES:
        span = creates if target == "invoiced.POST" else max(4, edits)
        for kind, rate in rates.items():
            for position in sorted(rng.sample(range(span), max(1, round(span * rate)))):
                options = ",retry_after=0" if kind == "429" else ""
                rules.append(f"{target}={kind}{options},skip={position},times=1")
    return ";".join(rules)


def _findings(systems: Systems) -> Counter[str]:
    report = check_spec(SPEC, systems)
    counts = Counter({kind: 0 for kind in FINDINGS})
    counts.update(report.counts_by_kind())
    return counts


def _edit(systems: Systems, rng: random.Random, share: float) -> None:
    """Edits both ways and deletions, so the next run updates and deletes too."""
    customers = list(systems.chargebee.customers.list())
    for customer in rng.sample(customers, max(1, int(len(customers) * share))):
        systems.chargebee.customers.update(
            customer["id"], {"email": f"edited.{rng.randrange(10**6)}@example.com"}
        )
    people = [p for p in systems.invoiced.customers.list() if p.get("type") == "person"]
    for person in rng.sample(people, max(1, int(len(people) * share))):
        systems.invoiced.customers.update(str(person["id"]), {"city": f"City {rng.randrange(99)}"})
    items = [i for i in systems.chargebee.items.list() if i.get("status") != "deleted"]
    for item in rng.sample(items, max(1, int(len(items) * share))):
        systems.chargebee.items.delete(item["id"])


def fault_trials(env: dict[str, str], args: argparse.Namespace, rates: dict[str, float]) -> None:
    print(f"\nfaults {rates} on every write, {args.seeds} seeds, up to {args.runs} runs")
    print("seed  runs  aborted  fired  failed/run        " + "  ".join(FINDINGS))
    for seed in range(args.seeds):
        rng = random.Random(seed)
        reset(env, seed, customers=args.customers, items=args.items, orders=args.orders)
        requests = args.customers + args.items + args.orders
        aborted, failed, runs, faults = 0, [], 0, 0
        with httpx.Client(timeout=60) as http, tempfile.TemporaryDirectory() as tmp:
            systems = _systems(env, http)
            with LinkStore(Path(tmp) / "links.sqlite") as store:
                for run in range(args.runs):
                    if run:
                        faults += fired(env)
                        set_faults(env, "")
                        _edit(systems, rng, EDIT_SHARE)
                    edits = int(args.customers * EDIT_SHARE) * 2
                    set_faults(env, _fault_spec(rng, rates, requests, edits))
                    runs += 1
                    try:
                        summary = run_sync(SPEC, systems, store, concurrency=args.concurrency)
                    except Exception:  # a run that stopped instead of confining the failure
                        aborted += 1
                        continue
                    failed.append(summary.totals["failed"])
                    if summary.complete and run:
                        break
                faults += fired(env)
                set_faults(env, "")
                found = _findings(systems)
        counts = "  ".join(f"{found[k]:>{len(k)}}" for k in FINDINGS)
        print(f"{seed:4d}  {runs:4d}  {aborted:7d}  {faults:5d}  {failed!s:16}  {counts}")


def _store_states(state: Path) -> Counter[str]:
    with sqlite3.connect(state) as db:
        return Counter(s for (s,) in db.execute("SELECT state FROM links"))


def kill_trials(env: dict[str, str], args: argparse.Namespace) -> None:
    """Each trial: a fresh sandbox, an initial `talkqa sync` SIGKILLed at a random moment
    of its run (the moment drawn from the length of an uninterrupted one), then a run to
    the end; the judge counts what the kill left behind."""
    print(f"\nSIGKILL during an initial sync, {args.kills} trials, then one run to the end")
    rng = random.Random(0)
    counts = {"customers": args.customers, "items": args.items, "orders": args.orders}

    def command(state: Path) -> list[str]:
        jobs = str(args.concurrency)
        return [*TALKQA, "sync", str(CHECKLIST), "--state", str(state), "--concurrency", jobs]

    reset(env, 0, **counts)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.monotonic()
        subprocess.run(
            command(Path(tmp) / "links.sqlite"),
            env=process_env(env),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        length = time.monotonic() - started
    print(f"an uninterrupted run takes {length:.1f}s")
    print("trial  killed_at  final_exit  store                     " + "  ".join(FINDINGS))
    for trial in range(args.kills):
        reset(env, trial, **counts)
        with tempfile.TemporaryDirectory() as tmp:
            state = Path(tmp) / "links.sqlite"
            child = subprocess.Popen(
                command(state), env=process_env(env), stdout=subprocess.DEVNULL
            )
            at = rng.uniform(0.2, 0.95) * length
            time.sleep(at)
            child.send_signal(signal.SIGKILL)
            killed = child.wait() == -signal.SIGKILL
            final = subprocess.run(
                command(state), env=process_env(env), capture_output=True, check=False
            )
            with httpx.Client(timeout=60) as http:
                found = _findings_for(CHECKLIST, _systems(env, http))
            states = dict(_store_states(state))
        when = f"{at:.2f}s" if killed else "(done)"
        row = "  ".join(f"{found[k]:>{len(k)}}" for k in FINDINGS)
        print(f"{trial:5d}  {when:>9}  {final.returncode:10d}  {states!s:24}  {row}")


def _findings_for(doc: Path, systems: Systems) -> Counter[str]:
    from talkqa.dataflow.rst import load

    counts = Counter({kind: 0 for kind in FINDINGS})
    counts.update(check_spec(load(doc), systems).counts_by_kind())
    return counts


def two_syncs(env: dict[str, str], args: argparse.Namespace) -> None:
    print(f"\ntwo `talkqa sync` on one store started together, {args.pairs} trials")
    print("trial  exits   waited  tombstones  " + "  ".join(FINDINGS))
    for trial in range(args.pairs):
        reset(env, trial, customers=args.customers, items=args.items, orders=args.orders)
        with tempfile.TemporaryDirectory() as tmp:
            state = Path(tmp) / "links.sqlite"
            command = [*TALKQA, "sync", str(CHECKLIST), "--state", str(state), "--json"]
            children = [
                subprocess.Popen(
                    command,
                    env=process_env(env),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for _ in range(2)
            ]
            errors = [child.communicate()[1] for child in children]
            with httpx.Client(timeout=60) as http:
                found = _findings_for(CHECKLIST, _systems(env, http))
            waited = sum("another sync holds" in e for e in errors)
            counts = "  ".join(f"{found[k]:>{len(k)}}" for k in FINDINGS)
            exits = [child.returncode for child in children]
            tombstones = _store_states(state)["tombstone"]
            print(f"{trial:5d}  {exits!s:6}  {waited:6d}  {tombstones:10d}  {counts}")


SCENARIOS: dict[str, Callable[[dict[str, str], argparse.Namespace], Any]] = {
    "faults": lambda env, a: fault_trials(env, a, {"429": 0.10, "503": 0.05, "drop_after": 0.02}),
    "lost": lambda env, a: fault_trials(env, a, {"drop_after": 0.02}),
    "kill": kill_trials,
    "two": two_syncs,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=["all", *SCENARIOS], default="all")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    chosen = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    with served_sandboxes() as env:
        for name in chosen:
            started = time.monotonic()
            SCENARIOS[name](env, args)
            print(f"  ({name}: {time.monotonic() - started:.1f}s)")


if __name__ == "__main__":
    main()
