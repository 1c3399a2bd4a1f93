"""Parse a whole folder of checklists and total what was read.

This is how we prove the parser on the 1,152 real documents. A cold parse costs ~1.5 ms a
file, so one process reads the corpus in under 2 s and a pool of one process per core in
about 1 s. Per-file results can also be cached on disk, keyed by the file's bytes and the
parser's own source, so that any change to the parser or a document invalidates exactly what
it must; the cache is a convenience, not what makes a scan fast.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import docutils

from talkqa.dataflow import rst, spec
from talkqa.errors import UserError

__all__ = ["CorpusReport", "FileResult", "default_cache", "parse_one", "report_to_json", "scan"]

_POOL_THRESHOLD = 32  # below this, a pool's start-up costs more than it saves


@dataclass(frozen=True)
class FileResult:
    """What one document contributed to the totals (picklable, JSON-able)."""

    file: str
    seconds: float
    sections_by_kind: dict[str, int] = field(default_factory=dict)
    property_maps: int = 0
    merge_rules: int = 0
    data_types: dict[str, int] = field(default_factory=dict)
    issues_by_kind: dict[str, int] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class CorpusReport:
    """Totals over a folder; `failures` are the files that could not be read at all."""

    documents: int
    sections_by_kind: dict[str, int]
    property_maps: int
    merge_rules: int
    data_types: dict[str, int]
    issues_by_kind: dict[str, int]
    slowest: tuple[str, float] | None
    failures: list[tuple[str, str]]
    seconds: float
    cached: int

    @property
    def sections(self) -> int:
        return sum(self.sections_by_kind.values())

    @property
    def issues(self) -> int:
        return sum(self.issues_by_kind.values())


def parse_one(path: str) -> FileResult:
    """Parse one file and summarise it; never raises (a failure is data for the report)."""
    started = time.perf_counter()
    try:
        parsed = rst.load(path)
    except UserError as exc:
        return FileResult(file=path, seconds=time.perf_counter() - started, error=str(exc))
    except Exception as exc:  # a parser bug must name its file, not stop the whole corpus
        return FileResult(
            file=path,
            seconds=time.perf_counter() - started,
            error=f"{path}: parser crashed: {type(exc).__name__}: {exc}",
        )
    seconds = time.perf_counter() - started
    kinds = Counter(section.kind.value for section in parsed.sections)
    types = Counter(
        prop.data_type or "undeclared" for section in parsed.sections for prop in section.properties
    )
    return FileResult(
        file=path,
        seconds=seconds,
        sections_by_kind=dict(kinds),
        property_maps=sum(len(section.properties) for section in parsed.sections),
        merge_rules=sum(len(section.merge_rules) for section in parsed.sections),
        data_types=dict(types),
        issues_by_kind=dict(Counter(issue.kind for issue in parsed.issues)),
    )


def scan(
    folder: str | Path,
    *,
    workers: int | None = None,
    cache: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> CorpusReport:
    """Parse every `*.rst` of `folder`; `UserError` if it is not a folder of checklists."""
    root = Path(folder)
    if not root.is_dir():
        raise UserError(f"{folder}: not a folder; pass the folder that holds the .rst checklists")
    paths = sorted(str(path) for path in root.glob("*.rst"))
    if not paths:
        raise UserError(f"{folder}: no *.rst files here; pass the folder of checklists")
    started = time.perf_counter()
    stored = _load_cache(cache)
    # hashing every file is only worth it when there is a cache to look up or fill
    keys = {path: _file_key(path) for path in paths} if cache is not None else {}
    results: dict[str, FileResult] = {}
    for path in paths:
        hit = stored.get(keys[path]) if stored else None
        if hit is not None:
            results[path] = hit
    todo = [path for path in paths if path not in results]
    cached = len(results)
    if progress is not None:
        progress(cached, len(paths))
    for result in _parse_all(todo, workers):
        results[result.file] = result
        if progress is not None:
            progress(len(results), len(paths))
    if cache is not None and todo:
        _save_cache(cache, {keys[path]: results[path] for path in paths})
    return _total([results[path] for path in paths], time.perf_counter() - started, cached)


def default_cache(folder: str | Path) -> Path:
    """One cache file per folder under the user's cache dir (never inside the corpus)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "talkqa"
    digest = hashlib.sha256(str(Path(folder).resolve()).encode()).hexdigest()[:16]
    return base / f"corpus-{digest}.json"


def report_to_json(report: CorpusReport) -> dict[str, Any]:
    """Totals and breakdowns as JSON-ready data."""
    return {
        "documents": report.documents,
        "sections": report.sections,
        "sections_by_kind": report.sections_by_kind,
        "property_maps": report.property_maps,
        "merge_rules": report.merge_rules,
        "data_types": report.data_types,
        "issues": report.issues,
        "issues_by_kind": report.issues_by_kind,
        "slowest": (
            {"file": report.slowest[0], "seconds": round(report.slowest[1], 4)}
            if report.slowest
            else None
        ),
        "failures": [{"file": file, "error": error} for file, error in report.failures],
        "seconds": round(report.seconds, 3),
        "cached": report.cached,
    }


def _parse_all(paths: list[str], workers: int | None) -> Iterator[FileResult]:
    count = workers if workers is not None else (os.cpu_count() or 1)
    if count <= 1 or len(paths) < _POOL_THRESHOLD:
        yield from map(parse_one, paths)
        return
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    with ProcessPoolExecutor(max_workers=count, mp_context=context) as pool:
        yield from pool.map(parse_one, paths, chunksize=max(1, min(32, len(paths) // (count * 8))))


def _total(results: Iterable[FileResult], seconds: float, cached: int) -> CorpusReport:
    kinds: Counter[str] = Counter()
    types: Counter[str] = Counter()
    issues: Counter[str] = Counter()
    maps = rules = documents = 0
    failures: list[tuple[str, str]] = []
    slowest: tuple[str, float] | None = None
    for result in results:
        documents += 1
        if result.error is not None:
            failures.append((result.file, result.error))
            continue
        kinds.update(result.sections_by_kind)
        types.update(result.data_types)
        issues.update(result.issues_by_kind)
        maps += result.property_maps
        rules += result.merge_rules
        if slowest is None or result.seconds > slowest[1]:
            slowest = (result.file, result.seconds)
    return CorpusReport(
        documents=documents,
        sections_by_kind=dict(kinds.most_common()),
        property_maps=maps,
        merge_rules=rules,
        data_types=dict(types.most_common()),
        issues_by_kind=dict(issues.most_common()),
        slowest=slowest,
        failures=failures,
        seconds=seconds,
        cached=cached,
    )


def _parser_fingerprint() -> str:
    """Changes whenever the parser's code (or docutils) changes, so stale results die."""
    digest = hashlib.sha256(docutils.__version__.encode())
    for module in (rst, spec):
        digest.update(Path(module.__file__ or "").read_bytes())
    digest.update(Path(__file__).read_bytes())
    return digest.hexdigest()


def _file_key(path: str) -> str:
    digest = hashlib.sha256(_FINGERPRINT.encode())
    digest.update(path.encode())
    digest.update(Path(path).read_bytes() if Path(path).is_file() else b"")
    return digest.hexdigest()


def _load_cache(cache: Path | None) -> dict[str, FileResult]:
    if cache is None or not cache.is_file():
        return {}
    try:
        raw = json.loads(cache.read_text(encoding="utf-8"))
        return {key: FileResult(**value) for key, value in raw.items()}
    except (OSError, ValueError, TypeError):
        return {}  # a damaged cache is only a slower run


def _save_cache(cache: Path, results: dict[str, FileResult]) -> None:
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        temporary = cache.with_suffix(".tmp")
        temporary.write_text(
            json.dumps({key: asdict(value) for key, value in results.items()}), encoding="utf-8"
        )
        temporary.replace(cache)
    except OSError:
        pass  # caching is an optimisation; a read-only home must not fail the command


_FINGERPRINT = _parser_fingerprint()
