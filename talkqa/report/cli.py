"""`talkqa report`: the reports package's command (registered by talkqa.cli)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def report(
    results: Annotated[
        Path,
        typer.Argument(metavar="RESULTS", help="The Allure results of a `talkqa signoff` run."),
    ] = Path("reports/allure-results"),
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            metavar="DIR",
            help="Folder for the report; replaced only when it is an earlier talk-qa report.",
        ),
    ] = Path("reports/allure-report"),
    name: Annotated[
        str | None,
        typer.Option("--name", metavar="NAME", help="Report title (default: the checklists)."),
    ] = None,
) -> None:
    """Build the Allure 3 HTML report as one index.html that opens from disk (needs npx)."""
    from talkqa.report.allure_html import generate

    index = generate(results, out, name=name)
    typer.echo(f"Allure report (one file, opens from disk): {index}")


def register(app: typer.Typer) -> None:
    """Add `report` to the talkqa command."""
    app.command("report")(report)
