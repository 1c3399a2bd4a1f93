"""CPU of the feature replay (`make features`): every scenario replayed from its cassette.

`make test` runs the replay beside the unit tests on two cores, so each CPU second of the
replay costs the whole suite. Runs the replay RUNS times (default 3) in a child pytest and
prints each run's CPU (user + sys of the child) and the median; with ``--baseline DIR``
(another checkout, e.g. ``git worktree add /tmp/base main``) it alternates runs of the
baseline's replay and this tree's, with this venv, so both meet the same machine load, and
prints the ratio of the medians. The load average is printed with the figures.

    .venv/bin/python benchmarks/bench_replay.py [--runs N] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPLAY = ["features", "--talkqa-mode=replay", "--block-network", "--record-mode=none", "-q"]


def replay_cpu(tree: Path) -> float:
    """CPU seconds (user + sys) of one replay of ``tree``'s features with ``tree``'s code."""
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": ""}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", *REPLAY, "-p", "no:cacheprovider"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"replay of {tree} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline", type=Path, help="another checkout to compare against")
    args = parser.parse_args()
    trees = {"this tree": ROOT}
    if args.baseline is not None:
        trees = {"baseline": args.baseline.resolve(), **trees}
    load_before = os.getloadavg()
    replay_cpu(ROOT)  # warm the bytecode cache and the file cache: not counted
    if args.baseline is not None:
        replay_cpu(trees["baseline"])
    cpu: dict[str, list[float]] = {name: [] for name in trees}
    for _ in range(args.runs):
        for name, tree in trees.items():
            cpu[name].append(replay_cpu(tree))
    loads = [f"{x:.2f}" for x in (*load_before, *os.getloadavg())]
    print(
        f"load average (1, 5, 15 min) before: {' '.join(loads[:3])}; after: {' '.join(loads[3:])}"
    )
    for name, runs in cpu.items():
        shown = ", ".join(f"{s:.1f}" for s in runs)
        print(f"{name:10} replay CPU s (user+sys): {shown}; median {statistics.median(runs):.1f}")
    if args.baseline is not None:
        ratio = statistics.median(cpu["this tree"]) / statistics.median(cpu["baseline"])
        print(f"this tree / baseline: {ratio:.2f}")


if __name__ == "__main__":
    main()
