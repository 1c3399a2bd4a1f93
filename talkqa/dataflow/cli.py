"""`talkqa parse` and `talkqa corpus`: look at what the parser reads, one file or a folder.

Exit codes: 0 read (parse issues are reported, not fatal), 1 some file of a corpus could not be
read, 2 unreadable input or bad usage (one line on stderr, via `UserError`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from talkqa.dataflow import corpus as corpus_mod
from talkqa.dataflow.render import issue_line, spec_table, spec_to_json
from talkqa.dataflow.rst import load

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add `parse` and `corpus` to the `talkqa` app."""
    app.command("parse")(parse_command)
    app.command("corpus")(corpus_command)


def parse_command(
    doc: Annotated[
        str, typer.Argument(metavar="DOC", help="A Sesam Talk dataflow checklist (.rst).")
    ],
    bind_blank: Annotated[
        str | None,
        typer.Option(
            "--bind-blank",
            metavar="NAME",
            help="The system a blank system name stands for, e.g. invoiced.",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the parsed checklist as JSON.")
    ] = False,
) -> None:
    """Parse one checklist: its sections and property maps; parse issues go to stderr."""
    spec = load(doc, bind_blank=bind_blank)
    if as_json:
        typer.echo(json.dumps(spec_to_json(spec), indent=2, ensure_ascii=False))
        return
    Console().print(spec_table(spec))
    for issue in spec.issues:
        typer.echo(issue_line(issue), err=True)


def corpus_command(
    folder: Annotated[str, typer.Argument(metavar="DIR", help="A folder of .rst checklists.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the totals as JSON.")] = False,
    workers: Annotated[
        int | None, typer.Option(
            "--workers", min=1, metavar="N", help="Processes.", show_default="one per core"
        )
    ] = None,
    no_cache: Annotated[
        bool,
        typer.Option("--no-cache", help="Re-parse every file (ignore the cache in ~/.cache)."),
    ] = False,
) -> None:
    """Parse every *.rst of a folder and print totals; exit 1 if a file could not be read."""
    cache = None if no_cache else corpus_mod.default_cache(folder)
    if sys.stderr.isatty():
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        ) as bar:
            task = bar.add_task("parsing", total=None)

            def advance(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            report = corpus_mod.scan(folder, workers=workers, cache=cache, progress=advance)
    else:
        report = corpus_mod.scan(folder, workers=workers, cache=cache)
    if as_json:
        typer.echo(json.dumps(corpus_mod.report_to_json(report), indent=2))
    else:
        Console().print(_totals_table(report))
    for file, error in report.failures:
        typer.echo(f"{file}: could not be read: {error}", err=True)
    if report.failures:
        raise typer.Exit(1)


def _totals_table(report: corpus_mod.CorpusReport) -> Table:
    table = Table(title="Corpus totals", title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("documents", str(report.documents))
    table.add_row("sections", str(report.sections))
    for kind, count in report.sections_by_kind.items():
        table.add_row(f"  {kind}", str(count))
    table.add_row("property maps", str(report.property_maps))
    table.add_row("merge rules", str(report.merge_rules))
    table.add_row("data types", "")
    for name, count in report.data_types.items():
        table.add_row(f"  {name}", str(count))
    table.add_row("issues", str(report.issues))
    for kind, count in report.issues_by_kind.items():
        table.add_row(f"  {kind}", str(count))
    table.add_row("failures", str(len(report.failures)))
    if report.slowest is not None:
        table.add_row(
            "slowest file", f"{Path(report.slowest[0]).name} {report.slowest[1] * 1000:.1f} ms"
        )
    table.add_row("time", f"{report.seconds:.2f} s ({report.cached} cached)")
    return table
