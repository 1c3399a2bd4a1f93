"""The harness is worth what it catches: every broken syncer of the catalogue gets a NO-GO.

Each entry of ``defects.catalogue.CATALOGUE`` is the reference sync with one named fault.
For each, ``talkqa signoff --mode sandbox --sut-command <entry.command>`` runs the feature
scenarios of the entry's promise on its checklist, against the bundled sandboxes (127.0.0.1,
no network), and must answer NO-GO naming that promise. The control (the reference sync run
through the same command driver) must answer GO on every checklist and promise used, so a
catch is never noise. The catch rate is printed in the terminal summary.

The runs are subprocesses that mostly wait (the command driver polls the vendors until the
systems settle), so a few of them run side by side, longest first.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from talkqa.dataflow.rst import load
from talkqa.promises import PromiseId
from talkqa.promises import promise as registry_promise

PROMISES = tuple(p.value for p in PromiseId)

REPO = Path(__file__).resolve().parents[1]
try:
    from defects.catalogue import CATALOGUE, CONTROL, Defect
except ImportError:  # `defects` is run from the project root, not installed
    sys.path.insert(0, str(REPO))
    from defects.catalogue import CATALOGUE, CONTROL, Defect

WORKERS = 3  # side by side: each run is mostly sleeping between polls
RUN_TIMEOUT = 300.0  # seconds, one sign-off


@dataclass(frozen=True)
class Run:
    """One sign-off: a syncer, a checklist, the promises whose scenarios run."""

    name: str
    command: str
    checklist: str
    promises: tuple[str, ...]
    defect: Defect | None = field(default=None, compare=False)

    @property
    def label(self) -> str:
        return f"{self.name}-{Path(self.checklist).stem}-{'+'.join(self.promises)}"

    @property
    def weight(self) -> int:
        """Rough cost, to start the longest runs first (edits and idempotence run twice)."""
        return sum(3 if p in ("edits", "idempotence") else 1 for p in self.promises)


def defect_runs() -> list[Run]:
    return [
        Run(d.name, d.command, d.checklist, (d.promise,), d)
        for d in CATALOGUE
        if d.promise is not None
    ]


def control_runs() -> list[Run]:
    """The reference sync on every checklist, with every promise an entry is judged on."""
    wanted: dict[str, set[str]] = {}
    for run in defect_runs():
        wanted.setdefault(run.checklist, set()).update(run.promises)
    return [
        Run(
            CONTROL.name,
            CONTROL.command_on(checklist),
            checklist,
            tuple(p for p in PROMISES if p in promises),
        )
        for checklist, promises in sorted(wanted.items())
    ]


@dataclass
class Signed:
    """What one sign-off produced."""

    run: Run
    code: int
    output: str
    verdict: dict[str, Any] | None

    def explain(self) -> str:
        tail = "\n".join(self.output.strip().splitlines()[-15:])
        return f"talkqa signoff ({self.run.label}) exit {self.code}:\n{tail}"


def _talkqa() -> list[str]:
    script = Path(sys.executable).parent / "talkqa"
    found = str(script) if script.is_file() else shutil.which("talkqa")
    if found is None:
        pytest.fail("no `talkqa` command next to the interpreter: `make install` first")
    return [found]


def sign_off(run: Run, where: Path) -> Signed:
    """``talkqa signoff`` of one run, in its own reports folder and defect state."""
    reports = where / run.label
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CHARGEBEE_", "INVOICED_", "TALKQA_DEFECT_"))
    }
    env["TALKQA_DEFECT_STATE"] = str(reports / "defect-state.sqlite")
    args = [
        *_talkqa(), "signoff", run.checklist, "--mode", "sandbox",
        "--sut-command", run.command, "--reports", str(reports),
    ]  # fmt: skip
    for promise in run.promises:
        args += ["--promise", promise]
    try:
        done = subprocess.run(
            args,
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        return Signed(run, -1, f"timed out after {RUN_TIMEOUT:.0f}s: {exc.stdout!r}", None)
    page = reports / "signoff.json"
    verdict = json.loads(page.read_text(encoding="utf-8")) if page.is_file() else None
    return Signed(run, done.returncode, done.stdout + done.stderr, verdict)


@dataclass
class CatchRate:
    """Collects the outcomes and prints the catch rate at the end of the session."""

    caught: dict[str, bool] = field(default_factory=dict)
    control: dict[str, bool] = field(default_factory=dict)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.caught and not self.control:
            return
        terminalreporter.section("defect catalogue")
        total = len(self.caught)
        hits = sum(self.caught.values())
        missed = sorted(name for name, hit in self.caught.items() if not hit)
        line = f"catch rate: {hits}/{total} broken syncers caught"
        terminalreporter.write_line(line + (f" (missed: {', '.join(missed)})" if missed else ""))
        for label, go in sorted(self.control.items()):
            terminalreporter.write_line(f"control {label}: {'GO' if go else 'NOT GO'}")


RATE = CatchRate()


class Signoffs:
    """Sign-offs started in the background, handed out as each test asks for its own."""

    def __init__(self, runs: list[Run], where: Path) -> None:
        self._pool = ThreadPoolExecutor(max_workers=WORKERS)
        self._where = where
        self._futures: dict[Run, Future[Signed]] = {}
        for run in sorted(runs, key=lambda r: -r.weight):
            self._submit(run)

    def _submit(self, run: Run) -> Future[Signed]:
        if run not in self._futures:
            self._futures[run] = self._pool.submit(sign_off, run, self._where)
        return self._futures[run]

    def result(self, run: Run) -> Signed:
        return self._submit(run).result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


@pytest.fixture(scope="module")
def signoffs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Signoffs]:
    plugins = request.config.pluginmanager
    if not plugins.is_registered(RATE):
        plugins.register(RATE, "talkqa-defect-catalogue-catch-rate")
    selected: list[Run] = [
        run
        for item in request.session.items
        if isinstance(item, pytest.Function)
        and item.module is request.module
        and hasattr(item, "callspec")
        and isinstance(run := item.callspec.params.get("run"), Run)
    ]
    pool = Signoffs(selected, tmp_path_factory.mktemp("signoffs"))
    yield pool
    pool.close()


def _source_datatypes(checklist: str) -> dict[int, str]:
    spec = load(REPO / checklist)
    return {s.index: s.source.datatype for s in spec.sections}


def test_the_catalogue_has_entries_with_checkable_promises() -> None:
    assert CATALOGUE, "defects.catalogue.CATALOGUE is empty"
    for defect in CATALOGUE:
        assert defect.promise in PROMISES, f"{defect.name}: promise {defect.promise!r}"
        assert (REPO / defect.checklist).is_file(), f"{defect.name}: {defect.checklist}"
        assert (
            REPO / "steps" / f"test_{Path(defect.checklist).stem.replace('-', '_')}.py"
        ).is_file()


@pytest.mark.parametrize("run", defect_runs(), ids=lambda r: r.name)
def test_each_broken_syncer_gets_a_no_go_naming_its_promise(run: Run, signoffs: Signoffs) -> None:
    signed = signoffs.result(run)
    defect = run.defect
    assert defect is not None and defect.promise is not None
    verdict = signed.verdict
    broken = {p for b in (verdict or {}).get("broken_sections", []) for p in b["promises"]}
    RATE.caught[run.name] = (
        verdict is not None and verdict["verdict"] == "NO-GO" and defect.promise in broken
    )
    assert verdict is not None, signed.explain()
    assert signed.code == 1, signed.explain()
    assert verdict["verdict"] == "NO-GO", signed.explain()
    # the summary names the promise the entry breaks, in the sections it breaks it in
    assert defect.promise in broken, f"broke {sorted(broken)}, not {defect.promise}"
    title = registry_promise(defect.promise).title.lower()
    assert title in verdict["headline"], verdict["headline"]
    datatypes = _source_datatypes(run.checklist)
    hit = {
        datatypes[b["index"]] for b in verdict["broken_sections"] if defect.promise in b["promises"]
    }
    assert hit & set(defect.sections), f"{defect.name} broke {hit}, not {defect.sections}"
    # the findings say what it did (idempotence: written_on_rerun, from the scenarios' Then)
    kinds = {f["kind"] for f in verdict["findings"]}
    if defect.findings:
        assert kinds & defect.findings, f"{defect.name}: findings {kinds}"
    else:  # broken without a finding: the sign-off says how
        failures = verdict["failures_without_findings"]
        assert any(defect.failure in line for line in failures), failures


@pytest.mark.parametrize("run", control_runs(), ids=lambda r: f"{r.name}-{Path(r.checklist).stem}")
def test_the_reference_sync_gets_a_go(run: Run, signoffs: Signoffs) -> None:
    signed = signoffs.result(run)
    verdict = signed.verdict
    RATE.control[f"{Path(run.checklist).stem} ({', '.join(run.promises)})"] = bool(
        verdict and verdict["go"] and signed.code == 0
    )
    assert verdict is not None, signed.explain()
    assert signed.code == 0 and verdict["verdict"] == "GO", signed.explain()
    # not vacuous: each promise it was run for passed somewhere
    for promise in run.promises:
        statuses = {
            row["cells"][promise]["status"]
            for matrix in verdict["matrices"]
            for row in matrix["rows"]
        }
        assert "passed" in statuses, f"{promise}: {statuses}"
