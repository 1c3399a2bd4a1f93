"""The defect catalogue's sign-offs: which to run, how to run one, and a pool that runs them.

Not a test module: ``tests/conftest.py`` starts the pool as soon as collection ends, so the
sign-offs (`talkqa signoff` processes, forked from one that has imported the CLI, that
mostly wait while the command driver polls the vendors) run beside the rest of the suite
instead of after it; ``test_defect_catalogue`` reads their results, last.
"""

from __future__ import annotations

import json
import multiprocessing
import multiprocessing.context
import os
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from talkqa.promises import PromiseId

PROMISES = tuple(p.value for p in PromiseId)

REPO = Path(__file__).resolve().parents[1]
try:
    from defects.catalogue import CATALOGUE, CONTROL, Defect
except ImportError:  # `defects` is run from the project root, not installed
    sys.path.insert(0, str(REPO))
    from defects.catalogue import CATALOGUE, CONTROL, Defect

# side by side: each run spends most of its time asleep between the driver's polls, so more
# runs than cores keep both cores busy (measured on 2 cores: 4 beats 3; 6 gains nothing)
WORKERS = 4
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


# What every sign-off imports: the CLI, the judge's command, the sandboxes, the sign-off page,
# and the pytest its feature suite runs in (in the sign-off's process) with the libraries of
# its plugins. Imported once, in multiprocessing's fork server (a process that starts no
# thread, so forking it is safe), and each sign-off is a fork of it: ~1.4 s of CPU less per
# sign-off than a fresh `talkqa` interpreter importing them again. Not talk-qa's own plugin
# modules, nor allure_pytest_bdd (named by `-p`): the suite's pytest marks those for assertion
# rewriting, as in a `talkqa signoff` of its own.
PRELOAD = [
    "talkqa.cli",
    "talkqa.judge_cli",
    "talkqa.sandbox.server",
    "talkqa.report.signoff",
    "talkqa.report.environment",
    "talkqa.dataflow.rst",
    "talkqa.dataflow.gherkin",
    "pytest",
    "pytest_bdd.plugin",
    "pytest_recording.plugin",
    "allure_commons",
    "allure_commons.lifecycle",
    "httpx",
    # what the first request and the suite import on first use: the transport under httpx,
    # the sandboxes' server with the loop and parser uvicorn picks, the sign-off page's
    # templates, pytest's debugging and unittest plugins, the syncer the catalogue wraps
    "httpcore",
    "h11",
    "uvicorn.loops.uvloop",
    "uvicorn.protocols.http.httptools_impl",
    "uvicorn.lifespan.off",
    "jinja2",
    "attr",
    "pdb",
    "unittest",
    "reference_sync",
    "defects.run",
    "deepdiff",  # a finding's explanation
    "forkserver_warmup",  # tests/, last: the sign-off page's templates, compiled once
]


def _forks() -> multiprocessing.context.ForkServerContext:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def _talkqa_main(argv: list[str], env: dict[str, str], cwd: str, log: str) -> None:
    """In the forked child: exactly what the `talkqa` command runs, its output to ``log``."""
    import gc

    # What the fork server imported is the parent's: frozen, the garbage collector of the
    # sign-off (its suite's pytest ends with full collections) neither scans those objects
    # nor writes to them, which would copy every page they sit on into this child.
    gc.freeze()
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(out)
    sys.argv = ["talkqa", *argv]
    from talkqa.cli import main

    try:
        main()
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 0 if stop.code is None else 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # as the command would: no multiprocessing teardown in between


def sign_off(run: Run, where: Path, forks: Any) -> Signed:
    """``talkqa signoff`` of one run, in its own reports folder and defect state."""
    reports = where / run.label
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CHARGEBEE_", "INVOICED_", "TALKQA_DEFECT_"))
    }
    env["TALKQA_DEFECT_STATE"] = str(reports / "defect-state.sqlite")
    env["TALKQA_DEFECT_CHECKLIST"] = str(REPO / run.checklist)  # it syncs what it is judged on
    # each catalogue syncer runs inside the sign-off's pytest, not as a fresh interpreter
    # (talkqa/steps/plugin.py `_in_process_defect`): ~0.6 s of CPU saved on each of ~60 runs
    env["TALKQA_IN_PROCESS_DEFECTS"] = "1"
    args = [
        "signoff", run.checklist, "--mode", "sandbox",
        "--sut-command", run.command, "--reports", str(reports),
    ]  # fmt: skip
    for promise in run.promises:
        args += ["--promise", promise]
    log = reports.with_name(reports.name + ".log")
    child = forks.Process(target=_talkqa_main, args=(args, env, str(REPO), str(log)))
    child.start()
    child.join(RUN_TIMEOUT)
    if child.exitcode is None:
        child.kill()
        child.join()
        output = log.read_text(encoding="utf-8", errors="replace")
        return Signed(run, -1, f"timed out after {RUN_TIMEOUT:.0f}s: {output}", None)
    page = reports / "signoff.json"
    verdict = json.loads(page.read_text(encoding="utf-8")) if page.is_file() else None
    return Signed(run, child.exitcode, log.read_text(encoding="utf-8", errors="replace"), verdict)


class Signoffs:
    """Sign-offs started in the background, handed out as each test asks for its own."""

    def __init__(self, runs: list[Run], where: Path) -> None:
        self._pool = ThreadPoolExecutor(max_workers=WORKERS)
        self._forks = _forks()
        self._where = where
        self._futures: dict[Run, Future[Signed]] = {}
        for run in sorted(runs, key=lambda r: -r.weight):
            self._submit(run)

    def _submit(self, run: Run) -> Future[Signed]:
        if run not in self._futures:
            self._futures[run] = self._pool.submit(sign_off, run, self._where, self._forks)
        return self._futures[run]

    def result(self, run: Run) -> Signed:
        return self._submit(run).result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        # The fork server is waited for like a subprocess, so the CPU of the sign-offs forked
        # from it counts in this process's children (`time make test` sees it) and it does
        # not outlive the session. multiprocessing has no public call for this.
        from multiprocessing import forkserver

        forkserver._forkserver._stop()  # type: ignore[attr-defined]


def selected_runs(items: list[pytest.Item]) -> list[Run]:
    """The runs the collected catalogue tests ask for (``-k`` and node ids narrow them)."""
    return [
        run
        for item in items
        if isinstance(item, pytest.Function)
        and hasattr(item, "callspec")
        and isinstance(run := item.callspec.params.get("run"), Run)
    ]


SIGNOFFS = pytest.StashKey[Signoffs]()

CATCH_RATE = "talkqa-defect-catalogue-catch-rate"


@dataclass
class CatchRate:
    """Collects the outcomes and prints the catch rate at the end of the session.

    Under pytest-xdist the catalogue runs on a worker, whose terminal nobody sees: the worker
    hands its tallies to the controller (``workeroutput``), which prints them.
    """

    caught: dict[str, bool] = field(default_factory=dict)
    control: dict[str, bool] = field(default_factory=dict)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        workeroutput = getattr(session.config, "workeroutput", None)
        if workeroutput is not None and (self.caught or self.control):
            workeroutput[CATCH_RATE] = {"caught": self.caught, "control": self.control}

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        tallies = getattr(node, "workeroutput", {}).get(CATCH_RATE)
        if tallies:
            self.caught.update(tallies["caught"])
            self.control.update(tallies["control"])

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


def register_catch_rate(config: pytest.Config) -> None:
    """Once per process: on the controller too, which never imports the catalogue module."""
    if not config.pluginmanager.is_registered(RATE):
        config.pluginmanager.register(RATE, CATCH_RATE)
