"""How fast the checklist parser reads the Sesam Talk corpus: files per second.

Prints three figures: one process with no cache (the parser's own speed), the process pool
with no cache (a cold `talkqa corpus`), and the pool with a warm cache (a repeated run).

    .venv/bin/python benchmarks/bench_parse_corpus.py [FOLDER]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from talkqa.dataflow.corpus import scan

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "dataflows" / "corpus"


def _measure(
    label: str, folder: Path, workers: int | None = None, cache: Path | None = None
) -> None:
    started = time.perf_counter()
    report = scan(folder, workers=workers, cache=cache)
    seconds = time.perf_counter() - started
    slowest = (
        f"{Path(report.slowest[0]).name} {report.slowest[1] * 1000:.0f} ms"
        if report.slowest
        else "-"
    )
    print(
        f"{label:<24} {report.documents:>5} files {seconds:6.2f} s "
        f"{report.documents / seconds:8.0f} files/s  (failures {len(report.failures)}, "
        f"slowest {slowest})"
    )


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    if not folder.is_dir():
        sys.exit(f"{folder}: not a folder; pass the corpus folder")
    _measure("one process, no cache", folder, workers=1)
    with tempfile.TemporaryDirectory() as scratch:
        cache = Path(scratch) / "cache.json"
        _measure("pool, cold cache", folder, cache=cache)
        _measure("pool, warm cache", folder, cache=cache)


if __name__ == "__main__":
    main()
