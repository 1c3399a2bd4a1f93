"""`talkqa sync`, `check`, `signoff` and `features`: the judge's commands.

Exit codes (talkqa.outcome.ExitCode): 0 pass, 1 findings (or a NO-GO), 2 usage or input
error, 4 INCOMPLETE (something could not be judged), and for `talkqa sync` 5 when some
entities failed (a rerun retries them). Every bad input is one line that says what, where
and what to do.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from talkqa.dataflow.spec import DataflowSpec
from talkqa.errors import UserError
from talkqa.outcome import ExitCode
from talkqa.project import Project
from talkqa.promises.ids import PromiseId
from talkqa.redact import Redactor, redact_files, redacted_output, redactor_from_env

features_app = typer.Typer(
    name="features",
    help="Generate the Gherkin features of a checklist, or check them for drift.",
    no_args_is_help=True,
    add_completion=False,
)

MODES = ("replay", "sandbox", "live")
# The pytest plugins (entry-point names) a checklist's features need, and only those: the
# others installed beside talk-qa (xdist, anyio, ...) cost the suite's start-up about half a
# second of CPU for nothing. A user's extra arguments load more with `-- -p NAME`.
SUITE_PLUGINS = ("pytest-bdd", "allure_pytest_bdd", "recording", "talkqa")
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
    label = doc_label(doc, out.resolve().parent)
    files = generate(spec, label)
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
    from talkqa.systems.connect import Systems
    from talkqa.systems.settings import Settings
    from talkqa.systems.wire import vendor_client

    settings = Settings.from_env()
    with vendor_client(30.0) as client:
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


SYNC_INCOMPLETE = int(ExitCode.ENTITIES_FAILED)  # some entities failed (or the store was busy)


def account_identities(settings: Any) -> dict[str, str]:
    """Each vendor account as a fingerprint of base URL and key (the key never stored)."""
    from reference_sync.guard import account_fingerprint

    return {
        "chargebee": account_fingerprint(
            settings.chargebee_base_url, settings.chargebee_api_key.get_secret_value()
        ),
        "invoiced": account_fingerprint(
            settings.invoiced_base_url, settings.invoiced_api_key.get_secret_value()
        ),
    }


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
    lock_timeout: Annotated[
        float,
        typer.Option(
            "--lock-timeout",
            metavar="SECONDS",
            min=0,
            help="How long to wait for another sync that holds the same link store.",
        ),
    ] = 300.0,
    fresh: Annotated[
        bool,
        typer.Option(
            "--fresh",
            help="Forget the store's links and cursors first (e.g. to point it at another "
            "account); targets are then linked again by their metadata, never deleted.",
        ),
    ] = False,
    concurrency: Annotated[
        int,
        typer.Option(
            "--concurrency",
            metavar="N",
            min=1,
            help="Writes of a section in flight at once (1: one at a time, in plan order).",
        ),
    ] = 8,
    as_json: JsonOpt = False,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch",
            help="Keep running as a service: a pass at start, then on a schedule "
            "(--interval) or on the vendors' webhooks (--webhook-port), until Ctrl-C or "
            "SIGTERM.",
        ),
    ] = False,
    interval: Annotated[
        float | None,
        typer.Option(
            "--interval",
            metavar="SECONDS",
            min=0.1,
            help="With --watch: seconds between passes (default 60); with --webhook-port: "
            "between checks of the events feeds for missed webhooks (default 30).",
            show_default=False,
        ),
    ] = None,
    webhook_port: Annotated[
        int | None,
        typer.Option(
            "--webhook-port",
            metavar="PORT",
            min=0,
            max=65535,
            help="With --watch: take webhooks on 127.0.0.1:PORT (/chargebee, /invoiced) and "
            "run a pass on each (0: a free port).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the reference sync once over the systems in the environment (or, with --watch,
    as a service).

    Exit 0 when everything is in sync, 5 when some entities failed (a rerun retries them)
    or another sync held the store, 130 on Ctrl-C (a rerun resumes; a service stops there),
    and 143 on SIGTERM (the same clean stop).
    """
    import secrets

    from rich.console import Console
    from rich.progress import Progress

    from reference_sync.engine import SyncInterrupted
    from reference_sync.guard import StoreBusy
    from talkqa.dataflow.gherkin import doc_stem
    from talkqa.sut import ReferenceDriver
    from talkqa.systems.settings import Settings

    if not watch and (interval is not None or webhook_port is not None):
        raise UserError("--interval and --webhook-port are options of --watch: add --watch")
    if watch and as_json:
        raise UserError("--json prints one run's summary: leave it out with --watch")
    spec = load_doc(doc)
    store = state or default_state(doc_stem(doc_label(doc)))
    if store.is_dir():
        raise UserError(f"--state {store}: is a folder: give the path of a sqlite file")
    console = Console(stderr=True)
    options = {
        "identities": account_identities(Settings.from_env()),
        "lock_timeout": lock_timeout,
        "fresh": fresh,
        "notice": lambda line: typer.echo(f"talkqa: {line}", err=True),
    }
    if watch:
        _watch(spec, store, options, concurrency, interval, webhook_port)
        return
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

        driver = ReferenceDriver(
            systems,
            store,
            progress=None if as_json else progress,
            concurrency=concurrency,
            store_options=options,
        )
        try:
            with sigterm_as_ctrl_c() as terminated:
                driver.run(spec)
        except sqlite3.DatabaseError as exc:
            raise UserError(
                f"--state {store}: {exc}: give another path, or delete the file to start "
                "the links afresh"
            ) from None
        except StoreBusy as exc:
            typer.echo(f"talkqa: {exc}", err=True)
            raise typer.Exit(SYNC_INCOMPLETE) from None
        except SyncInterrupted as stop:
            totals = stop.summary.totals
            how = "stopped by SIGTERM" if terminated else "interrupted"
            typer.echo(
                f"talkqa: {how} after {stop.summary.writes} writes "
                f"({totals['created']} created, {totals['updated']} updated, "
                f"{totals['deleted']} deleted), each recorded in {store}: rerun to resume",
                err=True,
            )
            raise typer.Exit(
                ExitCode.TERMINATED if terminated else ExitCode.INTERRUPTED
            ) from None
    summary = driver.last
    if as_json:
        typer.echo(summary.to_json())
    else:
        _print_sync_table(summary)
    if not summary.complete:
        failed = summary.totals["failed"]
        typer.echo(
            f"talkqa: {failed} entities failed"
            + (" and some sections could not be read" if failed == 0 else "")
            + ": they are retried on the next run (see the notes above)",
            err=True,
        )
        raise typer.Exit(SYNC_INCOMPLETE)


@contextmanager
def sigterm_as_ctrl_c() -> Iterator[list[bool]]:
    """While the block runs, SIGTERM takes Ctrl-C's path; the list says whether it came.

    Supervisors (systemd, `docker stop`, CI runners, a scheduler's timeout) stop a sync with
    SIGTERM: the writes in flight finish and are recorded, the rest never start, and the last
    line says what was done. The handler is installed even when the parent left SIGTERM
    ignored: a supervisor's stop must not be lost (only SIGINT has a reason to stay ignored:
    shells start background jobs so).
    """
    import signal

    terminated: list[bool] = []

    def terminate(_signum: int, _frame: object) -> None:
        terminated.append(True)
        raise KeyboardInterrupt  # raised in the main thread, where Ctrl-C's is

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield terminated
    finally:
        signal.signal(signal.SIGTERM, previous)


def _watch(
    spec: DataflowSpec,
    store: Path,
    options: dict[str, Any],
    concurrency: int,
    interval: float | None,
    webhook_port: int | None,
) -> None:
    """`talkqa sync --watch`: the reference sync as a service (`reference_sync.service`),
    one line per pass on stderr, until Ctrl-C (exit 130) or SIGTERM (exit 143).

    SIGTERM takes Ctrl-C's path (``sigterm_as_ctrl_c``).
    """
    import secrets
    from contextlib import ExitStack

    from reference_sync import service as svc
    from talkqa.sut import ReferenceDriver
    from talkqa.systems.settings import Settings
    from talkqa.systems.wire import vendor_client

    settings = Settings.from_env()
    cb_key = settings.chargebee_api_key.get_secret_value()
    inv_key = settings.invoiced_api_key.get_secret_value()
    admin = svc.sandbox_admin(settings.chargebee_base_url)
    webhooks = webhook_port is not None
    wakeups = svc.Wakeups()

    def say(line: str) -> None:
        typer.echo(f"talkqa: {line}", err=True)

    with ExitStack() as stack:
        http = stack.enter_context(vendor_client(10.0))
        systems = stack.enter_context(connected_systems(secrets.token_hex(8)))

        def run_pass(forget: bool) -> Any:
            driver = ReferenceDriver(systems, store, concurrency=concurrency,
                                     store_options={**options, "fresh": forget})
            driver.run(spec)
            options["fresh"] = False  # --fresh: the first pass only
            return driver.last

        feeds = None
        if webhooks:
            auth = _webhook_auth(admin is not None)
            listener = stack.enter_context(
                svc.WebhookListener(webhook_port or 0, auth, wakeups))
            where = f"http://127.0.0.1:{listener.port}/chargebee and /invoiced"
            if admin is not None:
                svc.register_sandbox_webhooks(http, admin, cb_key, listener)
                where += " (registered with the sandboxes)"
            feeds = svc.Feeds(lambda: svc.newest_events(
                http, (settings.chargebee_base_url, cb_key),
                (settings.invoiced_base_url, inv_key)))
            say(f"listening for webhooks on {where}; checking the events feeds every "
                f"{interval or svc.CATCH_UP_S:g}s")
        else:
            say(f"a pass every {interval or 60:g}s")
        service = svc.Service(
            run_pass=run_pass,
            wakeups=wakeups,
            interval=interval or (svc.CATCH_UP_S if webhooks else 60.0),
            webhooks=webhooks,
            generation=(lambda: svc.sandbox_generation(http, admin, cb_key))
            if admin is not None else (lambda: None),
            feeds=feeds,
            log=lambda done: say(_pass_line(done)),
        )
        terminated = stack.enter_context(sigterm_as_ctrl_c())
        try:
            service.serve()
        except KeyboardInterrupt:
            wakeups.stop()
            how = "SIGTERM" if terminated else "Ctrl-C"
            say(f"stopped after {len(service.passes)} passes ({how}); a rerun resumes from "
                f"{store}")
            raise typer.Exit(ExitCode.TERMINATED if terminated else ExitCode.INTERRUPTED) from None


def _webhook_auth(sandbox: bool) -> Any:
    """The credentials deliveries must carry: TALKQA_WEBHOOK_USERNAME, _PASSWORD (Chargebee's
    Basic auth) and _SECRET (Invoiced's signing key); made up for the bundled sandboxes."""
    import secrets

    from reference_sync.service import WebhookAuth

    names = ("TALKQA_WEBHOOK_USERNAME", "TALKQA_WEBHOOK_PASSWORD", "TALKQA_WEBHOOK_SECRET")
    values = [os.environ.get(name) for name in names]
    if all(values):
        return WebhookAuth(*[str(v) for v in values])
    if not sandbox:
        raise UserError(
            f"--webhook-port needs {', '.join(names)}: set them to the credentials your "
            "Chargebee and Invoiced webhook settings send")
    return WebhookAuth("talkqa", secrets.token_hex(16), secrets.token_hex(16))


def _pass_line(done: Any) -> str:
    head = f"pass {done.number} ({done.why})"
    if done.summary is None:
        return f"{head}: failed: {done.error}; the next pass retries"
    totals = done.summary.totals
    return (f"{head}: {totals['created']} created, {totals['updated']} updated, "
            f"{totals['deleted']} deleted, {totals['failed']} failed")


_SYNC_COLUMNS = {  # short headers, explained in the caption: the table fits 80 columns
    "entities": "all",
    "created": "new",
    "readopted": "adopt",
    "updated": "upd",
    "unchanged": "same",
    "deleted": "del",
    "unlinked": "unlnk",
    "failed": "fail",
    "not_synced": "left",
    "conflicts": "confl",
    "not_carried_over": "n/c",
}


def _print_sync_table(summary: Any) -> None:
    """Counts per section (short headers, wrapped headings), then what needs a person's eye."""
    from rich import box
    from rich.table import Table

    table = Table(
        title="reference sync",
        caption="all = new + adopt + upd + same + del + unlnk + fail + left (read, left alone "
        "on purpose); confl: conflicts; n/c: edits not carried over",
        box=box.SIMPLE_HEAD,
        padding=(0, 0),  # the box's blank column separators are the only gaps
    )
    table.add_column("section", overflow="fold", min_width=16)
    for header in _SYNC_COLUMNS.values():
        table.add_column(header, justify="right", no_wrap=True)
    for section in summary.sections:
        if section.skipped or section.error:
            blanks = [""] * (len(_SYNC_COLUMNS) - 1)
            why = f"skipped: {section.skipped}" if section.skipped else "read failed"
            table.add_row(section.heading, why, *blanks)
            continue
        counts = [getattr(section, name) for name in _SYNC_COLUMNS]
        table.add_row(section.heading, *[str(c if isinstance(c, int) else len(c)) for c in counts])
    table.add_section()
    table.add_row("total", *[str(summary.totals[name]) for name in _SYNC_COLUMNS])
    console = _console()
    console.print(table)
    notes = (
        [
            f"failed: {_failed_entity(n)}: {n.reason}"
            for section in summary.sections
            for n in section.failed
        ]
        + [
            f"section {section.heading}: {section.error}"
            for section in summary.sections
            if section.error
        ]
        + [
            f"conflict: {c.property} on {c.source_id} / {c.target_id}: {c.winner} side won"
            for section in summary.sections
            for c in section.conflicts
        ]
        + [
            f"not carried over: {n.entity} {n.property} ({n.direction}): {n.reason}"
            for section in summary.sections
            for n in section.not_carried_over
        ]
    )
    for line in notes[:20]:
        console.print(line, markup=False, highlight=False)
    if len(notes) > 20:
        console.print(f"... and {len(notes) - 20} more (use --json for all)")


def _failed_entity(note: Any) -> str:
    """A failed entity as the notes name it: its source id, and its target's when linked."""
    return f"{note.source_id}" + (f" / {note.target_id}" if note.target_id else "")


def _console() -> Any:
    """A console that does not squeeze tables into 80 columns when output is piped."""
    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=140)


def check(doc: DocArg, as_json: JsonOpt = False) -> None:
    """Judge the current state of the systems in the environment; exit 1 on findings.

    Reads the collections concurrently (one thread per collection a checklist can bind):
    nothing records this command's traffic, so its request order is free.
    """
    from talkqa.checks import check_spec

    spec = load_doc(doc)
    with connected_systems() as systems:
        report = check_spec(spec, systems, concurrency=6)
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
        str | None,
        typer.Option(
            "--mode",
            metavar="MODE",
            help="replay (recorded cassettes, offline), sandbox (the bundled emulators) "
            "or live (the vendors in CHARGEBEE_* / INVOICED_*); default: the project's "
            "`mode`, else replay.",
            show_default=False,
        ),
    ] = None,
    sut_command: Annotated[
        str | None,
        typer.Option(
            "--sut-command",
            metavar="CMD",
            help="Shell command that runs your syncer once (sandbox or live mode); "
            "default: the project's `sut_command`, else the reference sync.",
        ),
    ] = None,
    sut_service: Annotated[
        bool,
        typer.Option(
            "--sut-service",
            help="The syncer is a service that is already running (sandbox or live mode): "
            "run nothing, judge each promise as holding within --within.",
        ),
    ] = False,
    within: Annotated[
        str,
        typer.Option(
            "--within",
            metavar="DURATION",
            help="With --sut-service: how long after talk-qa's change a promise may take "
            "to hold (60s, 10m, ...).",
        ),
    ] = "60s",
    poll: Annotated[
        str,
        typer.Option(
            "--poll",
            metavar="DURATION",
            help="With --sut-service: the first wait between observations (it grows by half "
            "each time, to at most a tenth of --within).",
        ),
    ] = "1s",
    quiet: Annotated[
        str,
        typer.Option(
            "--quiet-window",
            metavar="DURATION",
            help="With --sut-service: the idempotence window, after everything synced, in "
            "which the service must write nothing.",
        ),
    ] = "10s",
    latency_budget: Annotated[
        str | None,
        typer.Option(
            "--latency-budget",
            metavar="DURATION",
            help="With --sut-service: a section whose p95 propagation latency exceeds this "
            "is a finding (NO-GO).",
            show_default=False,
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
            help="Run only this promise's scenarios (repeatable): " + ", ".join(PromiseId) + ".",
        ),
    ] = None,
    reset: Annotated[
        bool,
        typer.Option(
            "--reset",
            help="Sandbox mode with CHARGEBEE_BASE_URL and INVOICED_BASE_URL set: let talk-qa "
            "reset those sandboxes before every scenario (without it, signoff refuses to "
            "touch sandboxes you started).",
        ),
    ] = False,
    pytest_args: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[-- PYTEST_ARGS...]",
            help="Passed on to pytest after `--`, e.g. `-- -k currency --maxfail 1`.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the checklist's feature suite and write the sign-off (exit 0 GO, 1 NO-GO, 4
    INCOMPLETE: something could not be judged).

    Runs from a talk-qa project (this folder or one above it configures one: `talkqa init`).
    """
    project = _project_here()
    mode = mode or project.settings.mode
    sut_command = project.settings.sut_command if sut_command is None else sut_command
    selection = _selection(promise or [])
    extra = list(pytest_args or [])
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
    service = _service_options(sut_service, sut_command, mode, within, poll, quiet)
    budget = None
    if latency_budget is not None:
        from talkqa.sut import parse_duration

        if not sut_service:
            raise UserError("--latency-budget judges a service's latency: add --sut-service")
        budget = parse_duration(latency_budget, "--latency-budget")
    spec = load_doc(doc)
    label = doc_label(doc, project.root)
    suite = _feature_folder(project, label)
    _refuse_drift(spec, label, project.features)
    if sut_command:
        from talkqa.sut import check_command

        check_command(sut_command)  # a typo is a usage error, not a NO-GO
    if mode == "live":
        _reach_vendors(dict(os.environ))  # one line now rather than one failure per scenario
    results = reports / "allure-results"
    outcomes = reports / "outcomes.jsonl"
    args = [
        str(suite), f"--rootdir={project.root}",
        "-p", "no:cacheprovider", "--disable-plugin-autoload",
        *(word for plugin in SUITE_PLUGINS for word in ("-p", plugin)),
        f"--talkqa-mode={mode}", f"--alluredir={results}", "--clean-alluredir",
        f"--talkqa-outcomes={outcomes}",
    ]  # fmt: skip
    if mode == "replay":
        args += ["--block-network", "--record-mode=none"]
    else:
        args += ["--disable-recording"]
    if sut_command:
        args += [f"--sut-command={sut_command}"]
    args += service
    if selection:
        args += ["-m", " or ".join(selection)]
    args += extra
    started = datetime.now(UTC)
    with _suite_environment(mode, reset=reset) as (env, base_urls):
        redact = redactor_from_env(env)  # every output below, console included
        code = _run_suite(args, env, redact)
    finished = datetime.now(UTC)
    if code == 5 and selection:  # pytest: no test collected
        raise UserError(
            f"{label} has no scenario for --promise {', '.join(selection)}: "
            "see the @tags in its features"
        )
    unjudged = [
        f"{issue.where}: the checklist could not be read ({issue.kind}: {issue.message}), so "
        "what it promises there was not judged: fix the checklist and regenerate its features"
        for issue in spec.issues
        if issue.may_change_promises
    ]
    if code == 2:  # pytest: interrupted, or the features could not be collected
        unjudged.append(
            "the feature suite was interrupted or could not collect every scenario (see its "
            "output above): scenarios that did not end were not judged"
        )
    elif code not in (0, 1):
        raise UserError(
            f"the feature suite of {label} could not run (pytest exit code {code}): "
            "see its output above"
        )
    shown_command = redact(sut_command) if sut_command else None
    sut_name = (f"a running service (promises must hold within {within})" if sut_service
                else f"command: {shown_command}" if shown_command else "reference-sync")
    verdict = _write_signoff(
        spec, outcomes, reports, mode, sut_name, started, finished, selection, unjudged,
        [redact(arg) for arg in extra], budget,
    )  # fmt: skip
    from talkqa.report.environment import write_environment

    write_environment(results, mode=mode, sut=sut_name, base_urls=base_urls,
                      latency=verdict.latency)
    written = (outcomes, results, verdict.markdown, verdict.html, verdict.json_path)
    redact_files([path for path in written if path is not None], redact)
    typer.echo(f"{verdict.label.value}: {verdict.headline}")
    for line in verdict.unjudged:
        typer.echo(f"not judged: {redact(line)}", err=True)
    also = ", ".join(path.name for path in (verdict.html, verdict.json_path) if path is not None)
    typer.echo(f"sign-off: {verdict.markdown}" + (f" (also {also})" if also else ""))
    if verdict.exit_code:
        raise typer.Exit(verdict.exit_code)


def _run_suite(args: list[str], env: dict[str, str], redact: Redactor) -> int:
    """pytest on the feature suite in this process, with ``env`` as its environment and its
    output redacted: its exit code. Ctrl-C, which pytest turns into an exit code of its own
    (2, as for a suite that could not be collected), stays a KeyboardInterrupt (exit 130).

    In this process rather than a child's: the CLI has already imported most of what the
    suite needs, and a fresh interpreter importing pytest, pytest-bdd, Allure and talk-qa
    again costs ~1.2 s of CPU per sign-off. What one run leaves behind does not reach the
    next (a command runs one suite; talk-qa's plugin forgets parsed checklists at session
    start, for a test or script that signs off twice in one process).
    """
    import pytest

    class Interrupted:
        seen = False

        def pytest_keyboard_interrupt(self) -> None:
            self.seen = True

    interrupted = Interrupted()
    before = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        with redacted_output(redact):
            code = pytest.main(args, plugins=[interrupted])
    finally:
        os.environ.clear()
        os.environ.update(before)
    if interrupted.seen:
        raise KeyboardInterrupt
    return int(code)


def _service_options(
    sut_service: bool, sut_command: str | None, mode: str, within: str, poll: str, quiet: str
) -> list[str]:
    """The feature suite's options for --sut-service, each duration checked here (a typo is
    a usage error, not a NO-GO); none without it."""
    from talkqa.sut import parse_duration

    if not sut_service:
        return []
    if sut_command:
        raise UserError("--sut-service and --sut-command are two kinds of syncer: give one")
    if mode == "replay":
        raise UserError("--sut-service cannot be judged in replay mode (cassettes hold the "
                        "reference sync's traffic): use --mode sandbox or --mode live")
    if mode == "sandbox" and not (os.environ.get("CHARGEBEE_BASE_URL")
                                  and os.environ.get("INVOICED_BASE_URL")):
        raise UserError("--sut-service in sandbox mode judges the sandboxes your service "
                        "watches: set CHARGEBEE_BASE_URL and INVOICED_BASE_URL to them (and "
                        "pass --reset)")
    seconds = {name: parse_duration(value, f"--{name}")
               for name, value in (("within", within), ("poll", poll), ("quiet-window", quiet))}
    return ["--sut-service", *(f"--{name}={value}" for name, value in seconds.items())]


def _selection(promises: list[str]) -> list[str]:
    """The promise tags to run, in checklist order; a one-line error for an unknown one."""
    names = [p.value for p in PromiseId]
    unknown = [p for p in promises if p not in names]
    if unknown:
        raise UserError(f"--promise {unknown[0]!r} is not a promise: use one of {', '.join(names)}")
    return [p for p in names if p in promises]


def _project_here() -> Project:
    """The talk-qa project of the working directory (its features, cassettes, settings)."""
    from talkqa.project import find_project, not_a_project

    project = find_project(Path.cwd())
    if project is None:
        raise not_a_project(Path.cwd(), above=True, then="run `talkqa init` to make one")
    return project


def _feature_folder(project: Project, label: str) -> Path:
    """The checklist's generated features: <features>/<checklist-stem>/."""
    from talkqa.dataflow.gherkin import doc_stem

    folder = project.features / doc_stem(label)
    if not any(folder.glob("*.feature")):
        raise UserError(
            f"{folder}: no features for {label}: run "
            f"`talkqa features generate {label} --out {project.settings.features}/`"
        )
    return folder


def _refuse_drift(spec: DataflowSpec, label: str, features: Path) -> None:
    from talkqa.dataflow.gherkin import drift

    found = drift(spec, features, label)
    if found:
        raise UserError(
            f"features of {label} are out of step with the checklist ({found[0].message}; "
            f"{len(found)} in all): run `talkqa features generate {label} --out features/`"
        )


@contextmanager
def _suite_environment(
    mode: str, *, reset: bool = False
) -> Iterator[tuple[dict[str, str], dict[str, str]]]:
    """The suite's environment and the base URLs the report may show (never keys).

    Sandbox mode resets its sandboxes before every scenario. Sandboxes the user started (both
    base URLs in the environment) may hold their own data, so they are used only with
    ``--reset``, and signoff always says which sandboxes it uses.
    """
    env = dict(os.environ)
    if mode == "replay":
        from talkqa.pytest_plugin import REPLAY_CHARGEBEE_URL, REPLAY_INVOICED_URL

        yield env, {"chargebee": REPLAY_CHARGEBEE_URL, "invoiced": REPLAY_INVOICED_URL}
        return
    if mode == "sandbox" and env.get("CHARGEBEE_BASE_URL") and env.get("INVOICED_BASE_URL"):
        urls = f"{env['CHARGEBEE_BASE_URL']} and {env['INVOICED_BASE_URL']}"
        if not reset:
            raise UserError(
                f"--mode sandbox resets its sandboxes before every scenario, and the ones at "
                f"{urls} (CHARGEBEE_BASE_URL, INVOICED_BASE_URL) are yours: pass --reset to "
                "let it, or unset both variables to let signoff start its own"
            )
        _reach_running_sandboxes(env)
        typer.echo(
            f"signoff: using your sandboxes at {urls}, reset before every scenario", err=True
        )
    elif mode == "sandbox":
        from talkqa.sandbox.server import running_sandboxes

        typer.echo("signoff: starting the bundled sandboxes on 127.0.0.1", err=True)

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
    from talkqa.systems.connect import Systems
    from talkqa.systems.settings import Settings
    from talkqa.systems.wire import vendor_client

    settings = Settings.from_env(env)
    with vendor_client(30.0) as client:
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
    from talkqa.systems.wire import vendor_client

    unset = "or unset CHARGEBEE_BASE_URL and INVOICED_BASE_URL to let signoff start its own"
    for name in ("CHARGEBEE_BASE_URL", "INVOICED_BASE_URL"):
        url = env[name]
        key = env.get(name.replace("_BASE_URL", "_API_KEY"), "")
        try:
            with vendor_client(10.0) as client:
                answer = client.get(f"{admin_root(url)}/__admin/stats", auth=(key, ""))
        except httpx.HTTPError as exc:
            raise UserError(
                f"--mode sandbox: {name}={url} does not answer ({exc or type(exc).__name__}): "
                f"start `talkqa sandbox serve` and load the variables it prints, {unset}"
            ) from None
        if answer.status_code not in (200, 401):  # 401: ours, with a wrong key (said below)
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
    sut: str,
    started: datetime,
    finished: datetime,
    selection: list[str],
    unjudged: list[str],
    pytest_args: list[str],
    latency_budget: float | None = None,
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
        unjudged=unjudged,
        sections=sections_from_spec(spec),
        mode=mode,
        sut=sut,
        started=started,
        finished=finished,
        selection=selection,
        pytest_args=pytest_args,
        latency_budget=latency_budget,
    )
    return write_signoff(results, reports)


def run_report_schema() -> None:
    """Print the JSON Schema of the run report a syncer may write to $TALKQA_RUN_REPORT."""
    from talkqa.run_report import schema_json

    typer.echo(schema_json(), nl=False)


def register(app: typer.Typer) -> None:
    """Add sync, check, signoff and the features sub-app to the talkqa command."""
    app.command("sync")(sync)
    app.command("check")(check)
    app.command("signoff")(signoff)
    app.command("run-report-schema")(run_report_schema)
    app.add_typer(features_app, name="features")
