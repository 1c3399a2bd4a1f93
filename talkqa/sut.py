"""Drivers for the system under test: whatever brings Chargebee and Invoiced to sync.

The judge must be able to judge any syncer, so a scenario only knows this protocol. The
in-process driver runs our reference sync with the scenario's own httpx client (so the
cassette holds its traffic); the command driver runs someone else's syncer as a shell
command with the vendors' settings in its environment; the service driver runs nothing (the
syncer is a service, already running) and judges each promise as eventually holding. This
module is the only place in ``talkqa`` that imports ``reference_sync``.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from talkqa.dataflow.spec import DataflowSpec
from talkqa.errors import UserError
from talkqa.redact import redactor_from_env
from talkqa.run_report import (
    ENV_VAR,
    ReportedConflict,
    ReportedNotCarried,
    ReportedSection,
    RunReport,
    RunReportError,
    read_run_report,
)
from talkqa.systems.connect import Systems

ENV_VARS: tuple[str, ...] = (
    "CHARGEBEE_SITE",
    "CHARGEBEE_API_KEY",
    "CHARGEBEE_BASE_URL",
    "INVOICED_API_KEY",
    "INVOICED_BASE_URL",
)


class SutError(UserError):
    """The system under test could not run (its command failed, or cannot run in this mode)."""


@dataclass
class RunSummary:
    """One run of the system under test: how it went (free-form per driver, shown as evidence)
    and its run report in the published schema (None when the syncer gave none)."""

    sut: str
    seconds: float
    details: dict[str, Any] = field(default_factory=dict)
    report: RunReport | None = None


class SystemUnderTest(Protocol):
    """Anything that brings both systems to sync for a checklist."""

    name: str

    def run(self, spec: DataflowSpec) -> RunSummary: ...


Progress = Callable[[str, int, int], None]  # (section heading, done, total)


class ReferenceDriver:
    """Our reference sync, in process, over the given systems (and so the given httpx client).

    ``state`` is the sqlite link store: a fresh file per scenario keeps scenarios
    independent; ``talkqa sync --state`` keeps one across runs like a deployed syncer would.
    """

    name = "reference-sync"

    def __init__(
        self,
        systems: Systems,
        state: Path,
        *,
        progress: Progress | None = None,
        full: bool = False,
        concurrency: int = 1,
        store_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.systems = systems
        self.state = state
        self.progress = progress
        self.full = full
        self.concurrency = concurrency  # 1: writes in recorded order (cassettes rely on it)
        self.store_options = dict(store_options or {})  # reference_sync.guard.guarded_store
        self.last: Any = None  # the reference sync's SyncSummary of the latest run

    def run(self, spec: DataflowSpec) -> RunSummary:
        from reference_sync.engine import run_sync
        from reference_sync.guard import guarded_store

        started = time.monotonic()
        with guarded_store(self.state, **self.store_options) as store:
            self.last = run_sync(
                spec,
                self.systems,
                store,
                progress=self.progress,
                full=self.full,
                concurrency=self.concurrency,
            )
        return RunSummary(
            self.name,
            time.monotonic() - started,
            _as_details(self.last),
            report=reference_run_report(self.last),
        )


def reference_run_report(summary: Any) -> RunReport:
    """The reference sync's summary in the published run-report schema (the same contract a
    command syncer writes to ``$TALKQA_RUN_REPORT``)."""
    return RunReport(
        syncer="reference-sync",
        sections=[
            ReportedSection(
                index=section.index,
                created=section.created,
                updated_to_target=section.updated_to_target,
                updated_to_source=section.updated_to_source,
                conflicts=[
                    ReportedConflict(
                        source_id=c.source_id,
                        target_id=c.target_id,
                        property=c.property,
                        winner=c.winner,
                    )
                    for c in section.conflicts
                ],
                not_carried_over=[
                    ReportedNotCarried(
                        entity_id=n.entity.rsplit(" ", 1)[-1],
                        property=n.property,
                        direction=n.direction,
                        reason=n.reason,
                    )
                    for n in section.not_carried_over
                ],
            )
            for section in summary.sections
        ],
    )


def _as_details(result: object) -> dict[str, Any]:
    """The reference sync's own report as plain data, whatever shape it has."""
    if result is None:
        return {}
    method = getattr(result, "model_dump", None)
    if callable(method):
        value = method(mode="json")
        if isinstance(value, dict):
            return value
    if isinstance(result, dict):
        return dict(result)
    return {"result": repr(result)}


def _tail(text: str, lines: int = 15) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()][-lines:]
    return " | ".join(kept)


class CommandRunner(Protocol):
    """How a command is executed: its exit code and output, as ``subprocess.run`` gives them."""

    def __call__(
        self, command: str, *, env: dict[str, str], cwd: Path | None, timeout: float
    ) -> subprocess.CompletedProcess[str]: ...


def run_in_shell(
    command: str, *, env: dict[str, str], cwd: Path | None, timeout: float
) -> subprocess.CompletedProcess[str]:
    """The command in a shell, its output captured (the driver's one way outside tests)."""
    return subprocess.run(
        command,
        shell=True,
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


SETTLE_INTERVAL_S = 1.0  # the command driver's wait between two probes of the systems


class CommandDriver:
    """Any syncer, run as a shell command with the vendors' settings in its environment.

    An external syncer may finish its work after its command returns (a queue, a webhook),
    so after the command the driver polls ``probe`` (the judge's view of the systems) until
    two consecutive answers agree, or ``timeout`` seconds pass.
    """

    def __init__(
        self,
        command: str,
        env: Mapping[str, str],
        *,
        probe: Callable[[DataflowSpec], Hashable] | None = None,
        timeout: float = 60.0,
        interval: float = SETTLE_INTERVAL_S,
        command_timeout: float = 600.0,
        cwd: Path | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        runner: CommandRunner | None = None,
    ) -> None:
        if not command.strip():
            raise SutError("--sut-command is empty: give the shell command that runs your syncer")
        missing = [name for name in ENV_VARS if name != "CHARGEBEE_SITE" and not env.get(name)]
        if missing:
            raise SutError(
                f"the command driver needs {', '.join(missing)}: set them (or use sandbox mode)"
            )
        self.command = command
        self.env = dict(env)
        self.probe = probe
        self.timeout = timeout
        self.interval = interval
        self.command_timeout = command_timeout
        self.cwd = cwd
        self.sleep = sleep
        self.clock = clock
        self.runner: CommandRunner = runner or run_in_shell
        self.redact = redactor_from_env(self.env)
        self.name = self.redact(f"command: {command}")

    def environment(self) -> dict[str, str]:
        """The command's environment: ours, with the vendor settings on top."""
        merged = dict(os.environ)
        merged.update({k: v for k, v in self.env.items() if v is not None})
        return merged

    def run(self, spec: DataflowSpec) -> RunSummary:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="talkqa-run-") as folder:
            report_path = Path(folder) / "run-report.json"
            summary = self._run(spec, report_path)
            try:
                summary.report = read_run_report(report_path)
            except RunReportError as exc:
                raise SutError(f"system under test '{self.redact(self.command)}': {exc}") from None
        return summary

    def _run(self, spec: DataflowSpec, report_path: Path) -> RunSummary:
        started = self.clock()
        try:
            done = self.runner(
                self.command,
                env={**self.environment(), ENV_VAR: str(report_path)},
                cwd=self.cwd,
                timeout=self.command_timeout,
            )
        except subprocess.TimeoutExpired as exc:
            raise SutError(
                f"system under test '{self.redact(self.command)}' ran longer than "
                f"{self.command_timeout:.0f}s: make it finish, or raise the timeout"
            ) from exc
        if done.returncode != 0:
            tail = self.redact(_tail(done.stderr) or _tail(done.stdout) or "(no output)")
            raise SutError(
                f"system under test '{self.redact(self.command)}' failed with exit code "
                f"{done.returncode}: {tail}"
            )
        polls = self._settle(spec)
        return RunSummary(
            self.name,
            self.clock() - started,
            {
                "exit_code": done.returncode,
                "stdout_tail": self.redact(_tail(done.stdout, 5)),
                "polls": polls,
            },
        )

    def _settle(self, spec: DataflowSpec) -> int:
        """Poll until two consecutive probes agree or the timeout passes; the number of polls."""
        if self.probe is None:
            return 0
        deadline = self.clock() + self.timeout
        previous = self.probe(spec)
        polls = 1
        while self.clock() < deadline:
            self.sleep(self.interval)
            current = self.probe(spec)
            polls += 1
            if current == previous:
                break
            previous = current
        return polls


# --- services -------------------------------------------------------------------------------

QUIET_WINDOW_S = 10.0  # default: a service must write nothing this long when nothing changed
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str, option: str) -> float:
    """Seconds from `60s`, `10m`, `500ms`, `1h` or a plain number of seconds."""
    import re

    found = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h)?\s*", text)
    if found is None or float(found.group(1)) <= 0:
        raise UserError(f"{option} {text!r}: give a duration such as 60s, 10m or 500ms")
    return float(found.group(1)) * _UNITS[found.group(2) or "s"]


def format_duration(seconds: float) -> str:
    """The way a duration was most likely written: 60s, 10m, 1.5s, 500ms."""
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    if seconds > 60 and seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"


@dataclass(frozen=True)
class Eventual:
    """How a promise judged over time ended: held (and how long after the change it was first
    seen holding) or not, with the last observation's failure."""

    held: bool
    latency: float | None
    polls: int
    last_failure: str | None


def eventually(
    check: Callable[[], str | None],
    *,
    since: float,
    within: float,
    poll: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Eventual:
    """Run ``check`` (None: holds; else why not) until it holds or ``within`` seconds after
    ``since`` have passed; waits start at ``poll`` and grow by half each time, to at most a
    tenth of ``within`` (never below ``poll``), and the last observation falls on the deadline.
    Each observation reads the vendors through their account limiters, so polling never
    outruns a rate limit."""
    deadline = since + within
    longest = max(poll, within / 10)
    wait = poll
    polls = 0
    while True:
        polls += 1
        failure = check()
        now = clock()
        if failure is None:
            return Eventual(True, max(0.0, now - since), polls, None)
        if now >= deadline:
            return Eventual(False, None, polls, failure)
        sleep(min(wait, deadline - now))
        wait = min(longest, wait * 1.5)


class ServiceDriver:
    """A syncer that is already running (a service): talk-qa makes its changes through the
    vendors' APIs and runs nothing. ``run`` only marks when the change it must react to was
    made; the scene then judges each promise as eventually holding (`eventually`) within
    ``within`` seconds, polling from every ``poll`` seconds. A run with no change before it
    (idempotence) waits ``quiet`` seconds, during which the service must write nothing."""

    name = "service"

    def __init__(
        self,
        *,
        within: float,
        poll: float = 1.0,
        quiet: float = QUIET_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.within = within
        self.poll = poll
        self.quiet = quiet
        self.clock = clock
        self.sleep = sleep
        self.changed_at: float | None = None
        self.runs = 0
        self._edited = False

    def mark_change(self) -> None:
        """talk-qa just changed something the service must carry over: time starts now."""
        self.changed_at = self.clock()
        self._edited = True

    def run(self, spec: DataflowSpec) -> RunSummary:
        self.runs += 1
        details: dict[str, Any] = {"within_s": self.within, "poll_s": self.poll}
        if self.changed_at is None:
            self.changed_at = self.clock()  # the Givens just created the sources
        elif not self._edited:
            # nothing changed since the last observation: the service must stay quiet
            self.sleep(self.quiet)
            details["quiet_window_s"] = self.quiet
        self._edited = False
        return RunSummary(self.name, 0.0, details)

    def eventually(self, check: Callable[[], str | None]) -> Eventual:
        since = self.changed_at if self.changed_at is not None else self.clock()
        return eventually(check, since=since, within=self.within, poll=self.poll,
                          clock=self.clock, sleep=self.sleep)


_SHELL_SYNTAX = frozenset("=$`(){}<>|&;*?[~")


def check_command(command: str, *, cwd: Path | None = None) -> None:
    """Refuse a command whose program the shell cannot find, before any scenario runs it.

    A typo in ``--sut-command`` would otherwise fail every scenario and read as a NO-GO.
    Only the first word is checked (with the shell's own ``command -v``, so builtins and
    PATH count); anything shell syntax makes uncertain is left to the shell.
    """
    try:
        words = shlex.split(command)
    except ValueError as exc:
        raise SutError(
            f"--sut-command {command!r} is not a valid shell command ({exc}): check its quotes"
        ) from None
    if not words:
        raise SutError("--sut-command is empty: give the shell command that runs your syncer")
    program = words[0]
    if any(char in _SHELL_SYNTAX for char in program):
        return
    if "/" in program:
        path = (cwd or Path.cwd()) / program
        if not path.is_file():
            raise SutError(
                f"--sut-command {command!r}: {program} does not exist (seen from {path.parent}): "
                "give the path of your syncer, relative to where you run talkqa"
            )
        if not os.access(path, os.X_OK):
            raise SutError(
                f"--sut-command {command!r}: {program} is not executable: "
                f"`chmod +x {program}`, or run it through its interpreter"
            )
        return
    found = subprocess.run(
        ["sh", "-c", 'command -v -- "$1"', "sh", program],
        capture_output=True,
        cwd=cwd,
        check=False,
    )
    if found.returncode != 0:
        raise SutError(
            f"--sut-command {command!r}: the shell cannot find {program!r} on PATH: "
            "give the path of your syncer (e.g. ./my-syncer) or install it"
        )


class ReplayCommandDriver:
    """Stands in for the command driver in replay mode, where no command can run."""

    def __init__(self, command: str) -> None:
        self.name = f"command: {command}"
        self.command = command

    def run(self, spec: DataflowSpec) -> RunSummary:
        raise SutError(
            f"--sut-command '{self.command}' cannot run in replay mode: cassettes hold the "
            "reference sync's recorded traffic, not your syncer's: "
            "use --talkqa-mode=sandbox or live"
        )
