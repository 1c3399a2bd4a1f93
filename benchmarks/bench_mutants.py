"""Prints the kill rate of the judge's planted faults (``make mutants``) and how long it took.

Run: ``python benchmarks/bench_mutants.py`` from the project root (about four minutes: most
of it is the defect-catalogue sign-offs some mutants need).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools.mutants import MUTANTS, run
from tools.mutation import BaselineFailed, Verdict, summary_line


def main() -> int:
    started = time.monotonic()
    try:
        results = run(MUTANTS)
    except BaselineFailed as exc:
        print(f"bench_mutants: {exc}", file=sys.stderr)
        return 1
    elapsed = time.monotonic() - started
    slowest = max(results, key=lambda r: r.seconds)
    print(summary_line(results))
    print(
        f"mutants: {len(results)}, wall time {elapsed:.0f}s, slowest {slowest.mutant.id} "
        f"({slowest.seconds:.0f}s)"
    )
    return 0 if all(r.verdict is Verdict.KILLED for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
