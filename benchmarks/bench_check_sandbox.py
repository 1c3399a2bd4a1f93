"""`talkqa check` on a synced sandbox: wall and CPU time of ``check_spec``, and its findings.

    .venv/bin/python benchmarks/bench_check_sandbox.py [--customers 10000] [--items 1000]
        [--orders 20000] [--concurrency 1 6] [--repeat 3] [--profile FILE] [--baseline DIR]

The sandboxes run in their own process (`talkqa sandbox serve`), so the CPU figure is the
judge's alone; ``sandbox_cpu_s`` is what the emulators spent answering it (Linux only). On a
shared machine the two CPU figures say more than the wall time. A seeded sandbox is synced
once by the reference sync (8 writes in flight), then a few known mismatches are planted
through the vendors' APIs: invoice currencies changed, invoices deleted, persons claiming a
customer that does not exist. Each ``--concurrency`` value is timed ``--repeat`` times
(median printed), and every run must give the same findings: the judge may read faster,
never see differently.

``--baseline DIR`` (another checkout of talk-qa, e.g. ``/work/main`` beside a worktree)
times that checkout's judge against the same synced, planted sandbox in the same run: each
repetition runs the baseline's judge and then this one's, each in a fresh interpreter whose
``talkqa`` comes from its own tree, so before and after share the data and the machine's
load of that minute; both must give the same findings.
Small defaults so it runs in seconds; the issue-13 figure is 10000 / 1000 / 20000.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from sandbox_process import (  # benchmarks/, beside this script
    connected,
    process_env,
    reset,
    served_sandboxes,
    server_cpu,
)

from reference_sync import run_sync
from talkqa.checks import CheckReport, check_spec
from talkqa.dataflow.rst import load
from talkqa.systems.connect import Systems

REPO = Path(__file__).resolve().parents[1]
SPEC = load(REPO / "dataflows" / "chargebee-invoiced.rst")
PLANTED = 5  # of each kind


def plant(systems: Systems) -> dict[str, int]:
    """Known mismatches written the way a user (or a broken syncer) would: through the APIs."""
    invoices, customers = systems.invoiced.invoices, systems.invoiced.customers
    persons = [c for c in customers.list() if c.get("type") == "person"]
    linked = [i for i in invoices.list() if (i.get("metadata") or {}).get("chargebee_id")]
    step = max(1, len(linked) // (2 * PLANTED + 1))
    chosen = linked[::step][: 2 * PLANTED]
    currency, deleted = chosen[:PLANTED], chosen[PLANTED:]
    relinked = persons[:: max(1, len(persons) // PLANTED)][:PLANTED]
    for invoice in currency:
        other = "eur" if str(invoice.get("currency")).lower() != "eur" else "nok"
        invoices.update(str(invoice["id"]), {"currency": other})
    for invoice in deleted:
        invoices.delete(str(invoice["id"]))
    for n, person in enumerate(relinked):  # an orphan, a missing person, dangling invoices
        customers.update(str(person["id"]), {"metadata": {"chargebee_id": f"gone-{n}"}})
    return {"currency": len(currency), "deleted": len(deleted), "relinked": len(relinked)}


def timed(
    systems: Systems, env: dict[str, str], concurrency: int
) -> tuple[float, float, float, CheckReport]:
    """Wall seconds, the judge's CPU seconds, the sandbox's CPU seconds, and the report."""
    started, cpu, served = time.perf_counter(), time.process_time(), server_cpu(env)
    report = check_spec(SPEC, systems, concurrency=concurrency)
    return (
        time.perf_counter() - started,
        time.process_time() - cpu,
        server_cpu(env) - served,
        report,
    )


def judge_in(
    tree: Path, env: dict[str, str], concurrency: int
) -> tuple[float, float, float, list[str]]:
    """One judgement by the talk-qa of ``tree``, in a fresh interpreter: (wall s, its CPU s,
    the sandbox's CPU s, the findings' messages)."""
    served = server_cpu(env)
    child = subprocess.run(
        [sys.executable, __file__, "--judge-once", str(concurrency)],
        env={**process_env(env), "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        check=False,
    )
    if child.returncode != 0:
        raise SystemExit(f"the judge of {tree} failed: {child.stderr.strip()[-2000:]}")
    wall, cpu, messages, judge = json.loads(child.stdout.splitlines()[-1])
    if not Path(judge).is_relative_to(tree):
        raise SystemExit(f"the judge timed for {tree} came from {judge}")
    return wall, cpu, server_cpu(env) - served, messages


def judge_once(concurrency: int) -> None:
    """The child of ``judge_in``: one timed ``check_spec`` on the sandbox named by the
    environment, as a JSON line. Whose judge it is depends on PYTHONPATH alone."""
    from talkqa.systems.settings import Settings
    from talkqa.systems.wire import vendor_client

    with vendor_client(120) as http:
        systems = Systems.connect(Settings.from_env(dict(os.environ)), http)
        started, cpu = time.perf_counter(), time.process_time()
        report = check_spec(SPEC, systems, concurrency=concurrency)
        wall, used = time.perf_counter() - started, time.process_time() - cpu
    messages = [finding.message for finding in report.findings]
    print(json.dumps([wall, used, messages, sys.modules[check_spec.__module__].__file__]))


def compare_trees(
    env: dict[str, str], baseline: Path, concurrencies: list[int], repeat: int
) -> None:
    """Baseline and this tree's judge, alternating, on the same data in the same minutes."""
    trees = {"before": baseline.resolve(), "after": REPO}
    print(f"before = {trees['before']}, after = {trees['after']}")
    print("tree    concurrency  wall_s  cpu_s  sandbox_cpu_s  findings")
    for concurrency in concurrencies:
        runs: dict[str, list[tuple[float, float, float, list[str]]]] = {t: [] for t in trees}
        for _ in range(repeat):
            for name, tree in trees.items():
                runs[name].append(judge_in(tree, env, concurrency))
        messages = {tuple(run[3]) for timed_runs in runs.values() for run in timed_runs}
        if len(messages) != 1:
            raise SystemExit(f"concurrency {concurrency}: before and after find differently")
        for name, timed_runs in runs.items():
            print(
                f"{name:6s}  {concurrency:11d}  "
                f"{statistics.median(r[0] for r in timed_runs):6.2f}  "
                f"{statistics.median(r[1] for r in timed_runs):5.2f}  "
                f"{statistics.median(r[2] for r in timed_runs):13.2f}  "
                f"{len(timed_runs[0][3]):8d}"
            )


def main() -> None:
    if sys.argv[1:2] == ["--judge-once"]:
        judge_once(int(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--items", type=int, default=30)
    parser.add_argument("--orders", type=int, default=600)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 6])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", type=Path, help="write a cProfile of a serial check here")
    parser.add_argument(
        "--baseline", type=Path, help="also time the judge of this talk-qa checkout (before)"
    )
    args = parser.parse_args()
    with served_sandboxes() as env:
        reset(env, 0, customers=args.customers, items=args.items, orders=args.orders)
        with connected(env) as (systems, store):
            started = time.perf_counter()
            summary = run_sync(SPEC, systems, store, concurrency=8)
            print(
                f"synced {summary.totals['entities']} entities in "
                f"{time.perf_counter() - started:.1f} s ({summary.totals['failed']} failed)"
            )
            print(f"planted: {plant(systems)}")
            print("concurrency  wall_s  cpu_s  sandbox_cpu_s  GETs  findings  by kind")
            reference: list[str] | None = None
            for concurrency in args.concurrency:
                walls, cpus, served = [], [], []
                for _ in range(args.repeat):
                    systems.calls.reset()
                    wall, cpu, sandbox_cpu, report = timed(systems, env, concurrency)
                    walls.append(wall)
                    cpus.append(cpu)
                    served.append(sandbox_cpu)
                    messages = [finding.message for finding in report.findings]
                    if reference is None:
                        reference = messages
                    elif messages != reference:
                        raise SystemExit(f"concurrency {concurrency}: the findings differ")
                gets = sum(n for k, n in systems.call_counts().items() if " GET " in k)
                print(
                    f"{concurrency:11d}  {statistics.median(walls):6.2f}  "
                    f"{statistics.median(cpus):5.2f}  {statistics.median(served):13.2f}  "
                    f"{gets:4d}  "
                    f"{len(report.findings):8d}  {report.counts_by_kind()}"
                )
            if args.baseline:
                compare_trees(env, args.baseline, args.concurrency, args.repeat)
            if args.profile:  # one more, untimed, serial run: cProfile sees one thread only
                cProfile.runctx(
                    "check_spec(SPEC, systems)", globals(), {"systems": systems}, str(args.profile)
                )


if __name__ == "__main__":
    main()
