"""How fast the checklist parser reads the Sesam Talk corpus, cold: files per second.

The figure that counts is cold (no results cache): the parser's own speed. Prints one process
with no cache, the process pool with no cache (what `talkqa corpus --no-cache` does), and,
for reference only, the pool with a warm cache. Each cold figure is the best of --repeat runs
(the machine is shared: the best run is the one least disturbed by others).

    .venv/bin/python benchmarks/bench_parse_corpus.py [FOLDER] [--repeat N]

Target: well under 3 s for the 1,152-file corpus on 2 cores, <= 1.5 ms/file in one process.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from talkqa.dataflow.corpus import CorpusReport, scan

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "dataflows" / "corpus"


def _run(folder: Path, workers: int | None, cache: Path | None) -> tuple[float, CorpusReport]:
    started = time.perf_counter()
    report = scan(folder, workers=workers, cache=cache)
    return time.perf_counter() - started, report


def _print(label: str, seconds: float, report: CorpusReport) -> None:
    slowest = (
        f"{Path(report.slowest[0]).name} {report.slowest[1] * 1000:.0f} ms"
        if report.slowest
        else "-"
    )
    print(
        f"{label:<26} {report.documents:>5} files {seconds:6.2f} s "
        f"{report.documents / seconds:7.0f} files/s "
        f"{seconds / report.documents * 1000:6.2f} ms/file"
        f"  (failures {len(report.failures)}, cached {report.cached}, slowest {slowest})"
    )


def _cold(label: str, folder: Path, workers: int | None, repeat: int) -> float:
    runs = [_run(folder, workers, None) for _ in range(repeat)]
    seconds, report = min(runs, key=lambda run: run[0])
    _print(label, seconds, report)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--repeat", type=int, default=3, help="cold runs each; best is shown")
    args = parser.parse_args()
    folder: Path = args.folder
    if not folder.is_dir():
        parser.exit(2, f"{folder}: not a folder; pass the corpus folder\n")
    started = time.perf_counter()
    _cold("one process, no cache", folder, 1, args.repeat)
    pool = _cold("pool, no cache", folder, None, args.repeat)
    with tempfile.TemporaryDirectory() as scratch:
        cache = Path(scratch) / "cache.json"
        _run(folder, None, cache)  # fill it
        _print("pool, warm cache (ref.)", *_run(folder, None, cache))
    total = time.perf_counter() - started
    print(f"corpus total, cold (pool): {pool:.2f} s; benchmark ran {total:.1f} s")


if __name__ == "__main__":
    main()
