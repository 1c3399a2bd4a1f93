"""The harness is worth what it catches: every broken syncer of the catalogue gets a NO-GO.

Each entry of ``defects.catalogue.CATALOGUE`` is the reference sync with one named fault.
For each, ``talkqa signoff --mode sandbox --sut-command <entry.command>`` runs the feature
scenarios of the entry's promise on its checklist, against the bundled sandboxes (127.0.0.1,
no network), and must answer NO-GO naming that promise. The control (the reference sync run
through the same command driver) must answer GO on every checklist and promise used, so a
catch is never noise. The catch rate is printed in the terminal summary.

The runs are processes (forks of one that has imported the CLI) that mostly wait (the command
driver polls the vendors until the systems settle), so a few of them run side by side,
longest first, and ``tests/conftest.py`` starts them as soon as collection ends: they run
beside the rest of the suite, and these tests, which only read their results, run last
(``defect_signoffs``). Under pytest-xdist these tests are one work unit, and the worker that
takes it starts the pool.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from defect_signoffs import (  # tests/, beside this module
    CATALOGUE,
    PRELOAD,
    PROMISES,
    RATE,
    REPO,
    SIGNOFFS,
    Run,
    Signoffs,
    control_runs,
    defect_runs,
    register_catch_rate,
    selected_runs,
)

from talkqa.dataflow.rst import load
from talkqa.promises import promise as registry_promise


@pytest.fixture(scope="module")
def signoffs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Signoffs]:
    """The pool ``tests/conftest.py`` started after collection (closed at session end), or,
    should this module be collected without that conftest, one started here."""
    register_catch_rate(request.config)
    started = request.session.stash.get(SIGNOFFS, None)
    if started is not None:
        yield started
        return
    pool = Signoffs(selected_runs(request.session.items), tmp_path_factory.mktemp("signoffs"))
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
        assert any((REPO / "features" / Path(defect.checklist).stem).glob("*.feature"))


def test_the_fork_server_imports_start_no_thread() -> None:
    """Each sign-off is a fork of a process that imported ``PRELOAD``: a thread started by one
    of those imports would be forked mid-flight (a lock it held stays held in the child), a
    deadlock at random. A fresh interpreter, as the fork server is."""
    probe = (
        "import importlib, os, sys, threading\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"  # as the server's: tests/ too
        f"for name in {PRELOAD!r}:\n    importlib.import_module(name)\n"
        "print(threading.active_count(), len(os.listdir('/proc/self/task')))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "1"], f"threads (Python, OS): {done.stdout}"


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
