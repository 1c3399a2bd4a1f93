"""`talkqa sync`, `check`, `signoff` and `features`: the judge's commands.

Exit codes (talkqa.cli): 0 pass, 1 findings (or a NO-GO), 2 usage or input error. Every
bad input is one line that says what, where and what to do.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from talkqa.dataflow.spec import DataflowSpec
from talkqa.errors import UserError

features_app = typer.Typer(
    name="features",
    help="Generate the Gherkin features of a checklist, or check them for drift.",
    no_args_is_help=True,
    add_completion=False,
)

MODES = ("replay", "sandbox", "live")
DocArg = Annotated[
    Path,
    typer.Argument(
        metavar="DOC", help="A Sesam Talk dataflow checklist (.rst).", show_default=False
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


def doc_label(doc: Path, root: Path | None = None) -> str:
    """The checklist path as features name it: relative to the project root, POSIX.

    The root is the folder that holds the features folder when the checklist lies below it
    (so generating or checking from another folder gives the same text), else the working
    directory; a checklist outside both is named by its absolute path.
    """
    path = doc.resolve()
    for base in (root, Path.cwd()):
        if base is not None and path.is_relative_to(base.resolve()):
            return path.relative_to(base.resolve()).as_posix()
    return path.as_posix()


def load_doc(doc: Path) -> DataflowSpec:
    """The spec of a checklist, or a one-line error when the file is absent or unreadable."""
    if doc.is_dir():
        raise UserError(f"{doc}: is a folder: give the path of one dataflow .rst file in it")
    if not doc.is_file():
        raise UserError(f"{doc}: no such checklist: give the path of a dataflow .rst file")
    from talkqa.dataflow.rst import load

    spec = load(doc)
    if not spec.sections:
        raise UserError(f"{doc}: the checklist has no sections: nothing to test")
    return spec


# --- features ---------------------------------------------------------------------------------


@features_app.command("generate")
def features_generate(
    doc: DocArg,
    out: Annotated[
        Path, typer.Option("--out", metavar="DIR", help="The features folder to write into.")
    ] = Path("features"),
) -> None:
    """Write one feature per checklist section under OUT/<checklist-stem>/."""
    from talkqa.dataflow.gherkin import generate, write_features

    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: is a file: give the folder to write the features into")
    from talkqa.dataflow.render import issue_line

    spec = load_doc(doc)
    for issue in spec.issues:  # e.g. a blank target: the features would test half a promise
        typer.echo(issue_line(issue), err=True)
    files = generate(spec, doc_label(doc, out.resolve().parent))
    for path in write_features(files, out):
        typer.echo(str(path))


@features_app.command("check")
def features_check(
    doc: DocArg,
    features_dir: Annotated[
        Path,
        typer.Argument(
            metavar="FEATURES_DIR",
            help="The features folder (the --out of `features generate`).",
            show_default=False,
        ),
    ],
) -> None:
    """Exit 1 when a checklist row has no scenario row, or a scenario row no checklist row."""
    from talkqa.dataflow.gherkin import drift

    if features_dir.exists() and not features_dir.is_dir():
        raise UserError(f"{features_dir}: is a file: give the features folder of {doc}")
    if not features_dir.is_dir():
        raise UserError(f"{features_dir}: no such folder: give the features folder of {doc}")
    spec = load_doc(doc)
    label = doc_label(doc, features_dir.resolve().parent)
    found = drift(spec, features_dir, label)
    for item in found:
        typer.echo(item.message)
    if found:
        typer.echo(
            f"{len(found)} differences: regenerate with "
            f"`talkqa features generate {doc} --out {features_dir}`",
            err=True,
        )
        raise typer.Exit(1)
    typer.echo(f"{features_dir}: in step with {label}")


# --- sync and check ---------------------------------------------------------------------------


@contextmanager
def connected_systems(idempotency_seed: str | None = None) -> Iterator[Any]:
    """Systems from the environment (CHARGEBEE_* / INVOICED_*), over one httpx client."""
    import httpx

    from talkqa.systems.connect import Systems
    from talkqa.systems.settings import Settings

    settings = Settings.from_env()
    with httpx.Client(timeout=30.0) as client:
        yield Systems.connect(settings, client, idempotency_seed=idempotency_seed)


def default_state(checklist: str) -> Path:
    """One link store per checklist and pair of systems.

    Links name entities of particular systems: a store kept for one pair (a sandbox on
    other ports, another Chargebee site) must not be trusted against another.
    """
    import hashlib

    from talkqa.systems.settings import Settings

    settings = Settings.from_env()
    systems = f"{settings.chargebee_base_url}|{settings.invoiced_base_url}"
    digest = hashlib.sha256(systems.encode()).hexdigest()[:10]
    return Path(".talkqa") / f"{checklist}-{digest}.sqlite"


def sync(
    doc: DocArg,
    state: Annotated[
        Path | None,
        typer.Option(
            "--state",
            metavar="PATH",
            help=(
                "The sync's link store (sqlite), kept between runs; the default is one per "
                "checklist and pair of base URLs."
            ),
            show_default=".talkqa/<checklist>-<systems>.sqlite",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the reference sync once over the systems in the environment; exit 1 if a write failed."""
    import secrets

    from rich.console import Console
    from rich.progress import Progress

    from talkqa.dataflow.gherkin import doc_stem
    from talkqa.sut import ReferenceDriver

    spec = load_doc(doc)
    store = state or default_state(doc_stem(doc_label(doc)))
    if store.is_dir():
        raise UserError(f"--state {store}: is a folder: give the path of a sqlite file")
    console = Console(stderr=True)
    progress_bar = Progress(console=console, transient=True, disable=not console.is_terminal)
    # A fresh seed per run: every write gets an idempotency key no earlier run used.
    with connected_systems(secrets.token_hex(8)) as systems, progress_bar as bar:
        tasks: dict[str, Any] = {}
        waiting = bar.add_task("", total=None, visible=False)

        def rate_limited(wait: Any) -> None:
            label = f"waiting {wait.seconds:.0f}s for {wait.label}'s rate limit"
            bar.update(waiting, description=label, visible=True)

        systems.on_limiter_wait(rate_limited)

        def progress(heading: str, done: int, total: int) -> None:
            bar.update(waiting, visible=False)
            if heading not in tasks:
                tasks[heading] = bar.add_task(heading, total=total or None)
            bar.update(tasks[heading], completed=done, total=total or None)

        driver = ReferenceDriver(systems, store, progress=None if as_json else progress)
        try:
            driver.run(spec)
        except sqlite3.DatabaseError as exc:
            raise UserError(
                f"--state {store}: {exc}: give another path, or delete the file to start "
                "the links afresh"
            ) from None
    summary = driver.last
    if as_json:
        typer.echo(summary.to_json())
    else:
        _print_sync_table(summary)
    if summary.totals.get("failed", 0):
        raise typer.Exit(1)


def _print_sync_table(summary: Any) -> None:
    """Counts per section (the issue's columns), then what needs a person's eye."""
    from rich.table import Table

    columns = {
        "created": "created",
        "updated_to_target": "→ target",
        "updated_to_source": "← source",
        "unchanged": "unchanged",
        "conflicts": "conflicts",
        "not_carried_over": "not carried",
        "deleted": "deleted",
        "unlinked": "unlinked",
        "failed": "failed",
    }
    table = Table(title="reference sync")
    table.add_column("section", ratio=1)
    for header in columns.values():
        table.add_column(header, justify="right", no_wrap=True)
    for section in summary.sections:
        if section.skipped:
            blanks = [""] * (len(columns) - 1)
            table.add_row(section.heading, f"skipped: {section.skipped}", *blanks)
            continue
        counts = [getattr(section, name) for name in columns]
        table.add_row(section.heading, *[str(c if isinstance(c, int) else len(c)) for c in counts])
    table.add_section()
    table.add_row("total", *[str(summary.totals[name]) for name in columns])
    console = _console()
    console.print(table)
    notes = [
        f"conflict: {c.property} on {c.source_id} / {c.target_id}: {c.winner} side won"
        for section in summary.sections
        for c in section.conflicts
    ] + [
        f"not carried over: {n.entity} {n.property} ({n.direction}): {n.reason}"
        for section in summary.sections
        for n in section.not_carried_over
    ]
    for line in notes[:20]:
        console.print(line, markup=False, highlight=False)
    if len(notes) > 20:
        console.print(f"... and {len(notes) - 20} more (use --json for all)")


def _console() -> Any:
    """A console that does not squeeze tables into 80 columns when output is piped."""
    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=140)


def check(doc: DocArg, as_json: JsonOpt = False) -> None:
    """Judge the current state of the systems in the environment; exit 1 on findings."""
    from talkqa.checks import check_spec

    spec = load_doc(doc)
    with connected_systems() as systems:
        report = check_spec(spec, systems)
    if as_json:
        typer.echo(report.to_json())
    else:
        _print_check(report)
    if not report.passed:
        raise typer.Exit(1)


def _print_check(report: Any) -> None:
    from rich.table import Table

    table = Table(title="checks")
    for name in ("section", "covered", "sources", "targets", "findings"):
        table.add_column(name)
    for section in report.sections:
        count = len(report.findings_for(section.index))
        table.add_row(
            section.heading,
            "yes" if section.covered else f"no: {section.reason}",
            str(section.sources_checked),
            str(section.targets_seen),
            str(count),
        )
    console = _console()
    console.print(table)
    for finding in report.findings:
        console.print(finding.message, markup=False, highlight=False)


# --- signoff ----------------------------------------------------------------------------------


def signoff(
    doc: DocArg,
    mode: Annotated[
        str,
        typer.Option(
            "--mode",
            metavar="MODE",
            help="replay (recorded cassettes, offline), sandbox (the bundled emulators) "
            "or live (the vendors in CHARGEBEE_* / INVOICED_*).",
        ),
    ] = "replay",
    sut_command: Annotated[
        str | None,
        typer.Option(
            "--sut-command",
            metavar="CMD",
            help="Shell command that runs your syncer once (sandbox or live mode); "
            "default: the reference sync.",
        ),
    ] = None,
    reports: Annotated[
        Path, typer.Option("--reports", metavar="DIR", help="The folder to write the reports to.")
    ] = Path("reports"),
    promise: Annotated[
        list[str] | None,
        typer.Option(
            "--promise",
            metavar="PROMISE",
            help="Run only this promise's scenarios (repeatable): "
            "exists, properties, references, edits, idempotence, merge.",
        ),
    ] = None,
) -> None:
    """Run the checklist's feature suite and write the sign-off (exit 0 GO, 1 NO-GO)."""
    selection = _selection(promise or [])
    if reports.exists() and not reports.is_dir():
        raise UserError(f"--reports {reports}: is a file: give the folder to write reports to")
    if mode not in MODES:
        raise UserError(f"--mode {mode!r} is not a mode: use one of {', '.join(MODES)}")
    if sut_command is not None and not sut_command.strip():
        raise UserError("--sut-command is empty: give the shell command that runs your syncer")
    if sut_command and mode == "replay":
        raise UserError(
            "--sut-command cannot run in replay mode (cassettes hold the reference sync's "
            "traffic): use --mode sandbox or --mode live"
        )
    spec = load_doc(doc)
    label = doc_label(doc)
    module = _test_module(label)
    _refuse_drift(spec, label)
    if sut_command:
        from talkqa.sut import check_command

        check_command(sut_command)  # a typo is a usage error, not a NO-GO
    if mode == "live":
        _reach_vendors(dict(os.environ))  # one line now rather than one failure per scenario
    results = reports / "allure-results"
    outcomes = reports / "outcomes.jsonl"
    args = [
        sys.executable, "-m", "pytest", str(module), "-p", "no:cacheprovider",
        f"--talkqa-mode={mode}", f"--alluredir={results}", "--clean-alluredir",
        f"--talkqa-outcomes={outcomes}",
    ]  # fmt: skip
    if mode == "replay":
        args += ["--block-network", "--record-mode=none"]
    else:
        args += ["--disable-recording"]
    if sut_command:
        args += [f"--sut-command={sut_command}"]
    if selection:
        args += ["-m", " or ".join(selection)]
    started = datetime.now(UTC)
    with _suite_environment(mode) as (env, base_urls):
        code = subprocess.run(args, env=env, check=False).returncode
    finished = datetime.now(UTC)
    if code == 5 and selection:  # pytest: no test collected
        raise UserError(
            f"{label} has no scenario for --promise {', '.join(selection)}: "
            "see the @tags in its features"
        )
    if code not in (0, 1):
        raise UserError(
            f"the feature suite of {label} could not run (pytest exit code {code}): "
            "see its output above"
        )
    verdict = _write_signoff(
        spec, outcomes, reports, mode, sut_command, started, finished, selection
    )
    from talkqa.report.environment import write_environment

    sut_name = f"command: {sut_command}" if sut_command else "reference-sync"
    write_environment(results, mode=mode, sut=sut_name, base_urls=base_urls)
    typer.echo(f"{verdict.label}: {verdict.headline}")
    also = ", ".join(path.name for path in (verdict.html, verdict.json_path) if path is not None)
    typer.echo(f"sign-off: {verdict.markdown}" + (f" (also {also})" if also else ""))
    if not verdict.go or code != 0:
        raise typer.Exit(1)


def _selection(promises: list[str]) -> list[str]:
    """The promise tags to run, in checklist order; a one-line error for an unknown one."""
    from talkqa.dataflow.gherkin import PROMISES

    unknown = [p for p in promises if p not in PROMISES]
    if unknown:
        raise UserError(
            f"--promise {unknown[0]!r} is not a promise: use one of {', '.join(PROMISES)}"
        )
    return [p for p in PROMISES if p in promises]


def _test_module(label: str) -> Path:
    from talkqa.dataflow.gherkin import doc_stem

    module = Path("steps") / f"test_{doc_stem(label).replace('-', '_')}.py"
    if not module.is_file():
        raise UserError(
            f"{module}: no feature suite for {label}: create it with "
            f'`from pytest_bdd import scenarios; scenarios("{doc_stem(label)}")` '
            "(run from the project root)"
        )
    return module


def _refuse_drift(spec: DataflowSpec, label: str) -> None:
    from talkqa.dataflow.gherkin import drift

    features = Path("features")
    found = drift(spec, features, label)
    if found:
        raise UserError(
            f"features of {label} are out of step with the checklist ({found[0].message}; "
            f"{len(found)} in all): run `talkqa features generate {label} --out features/`"
        )


@contextmanager
def _suite_environment(mode: str) -> Iterator[tuple[dict[str, str], dict[str, str]]]:
    """The suite's environment and the base URLs the report may show (never keys)."""
    env = dict(os.environ)
    if mode == "replay":
        from talkqa.pytest_plugin import REPLAY_CHARGEBEE_URL, REPLAY_INVOICED_URL

        yield env, {"chargebee": REPLAY_CHARGEBEE_URL, "invoiced": REPLAY_INVOICED_URL}
        return
    if mode == "sandbox" and env.get("CHARGEBEE_BASE_URL") and env.get("INVOICED_BASE_URL"):
        _reach_running_sandboxes(env)
    elif mode == "sandbox":
        from talkqa.sandbox.server import running_sandboxes

        with running_sandboxes(seed=0) as sandboxes:
            env.update(sandboxes.env)
            yield (
                env,
                {
                    "chargebee": sandboxes.chargebee_base_url,
                    "invoiced": sandboxes.invoiced_base_url,
                },
            )
        return
    from talkqa.systems.settings import Settings

    settings = Settings.from_env(env)
    yield (
        env,
        {
            "chargebee": settings.chargebee_base_url,
            "invoiced": settings.invoiced_base_url,
        },
    )


def _reach_vendors(env: dict[str, str]) -> None:
    """One read per vendor before the suite: wrong keys or URLs are one line, not a NO-GO."""
    import httpx

    from talkqa.systems.connect import Systems
    from talkqa.systems.settings import Settings

    settings = Settings.from_env(env)
    with httpx.Client(timeout=30.0) as client:
        systems = Systems.connect(settings, client, max_attempts=2)
        for customers in (systems.chargebee.customers, systems.invoiced.customers):
            next(iter(customers.list()), None)


def _reach_running_sandboxes(env: dict[str, str]) -> None:
    """Sandbox mode with both base URLs set judges those sandboxes: they must be ours, and up.

    Every scenario resets them through the admin API, so a stale `sandbox.env` or a real
    vendor's URL would otherwise fail every scenario and read as a NO-GO.
    """
    import httpx

    from talkqa.sandbox.cli import admin_root

    unset = "or unset CHARGEBEE_BASE_URL and INVOICED_BASE_URL to let signoff start its own"
    for name in ("CHARGEBEE_BASE_URL", "INVOICED_BASE_URL"):
        url = env[name]
        try:
            answer = httpx.get(f"{admin_root(url)}/__admin/stats", timeout=10.0)
        except httpx.HTTPError as exc:
            raise UserError(
                f"--mode sandbox: {name}={url} does not answer ({exc or type(exc).__name__}): "
                f"start `talkqa sandbox serve` and load the variables it prints, {unset}"
            ) from None
        if answer.status_code != 200:
            raise UserError(
                f"--mode sandbox: {name}={url} is not a talk-qa sandbox (its admin API "
                f"answered HTTP {answer.status_code}): use --mode live for real vendors, {unset}"
            )
    _reach_vendors(env)


def _write_signoff(
    spec: DataflowSpec,
    outcomes: Path,
    reports: Path,
    mode: str,
    sut_command: str | None,
    started: datetime,
    finished: datetime,
    selection: list[str],
) -> Any:
    from talkqa.report.signoff import (
        SignoffInput,
        read_outcomes,
        sections_from_spec,
        write_signoff,
    )

    if not outcomes.is_file():
        raise UserError(f"{outcomes}: the feature suite wrote no outcomes: see its output above")
    results = SignoffInput(
        outcomes=read_outcomes(outcomes),
        sections=sections_from_spec(spec),
        mode=mode,
        sut=f"command: {sut_command}" if sut_command else "reference-sync",
        started=started,
        finished=finished,
        selection=selection,
    )
    return write_signoff(results, reports)


def register(app: typer.Typer) -> None:
    """Add sync, check, signoff and the features sub-app to the talkqa command."""
    app.command("sync")(sync)
    app.command("check")(check)
    app.command("signoff")(signoff)
    app.add_typer(features_app, name="features")
