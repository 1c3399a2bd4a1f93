"""`talkqa init`: the scaffold package's command (registered by talkqa.cli)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def init(
    folder: Annotated[
        Path,
        typer.Argument(
            metavar="[DIR]", help="The project folder (made if missing).", show_default=False
        ),
    ] = Path("."),
) -> None:
    """Make a talk-qa project in DIR: the shipped checklists, their features, talkqa.toml, a
    README stub and a CI workflow; refuses if any of those files exists."""
    from talkqa.scaffold import project_files, shipped_checklists, write_project

    written = write_project(folder, project_files(shipped_checklists()))
    typer.echo(f"talkqa init: wrote {len(written)} files and cassettes/ into {folder}")
    typer.echo(
        "next: talkqa signoff dataflows/chargebee-invoiced.rst --mode sandbox "
        "(see README.talkqa.md; your syncer goes in talkqa.toml, sut_command)"
    )


def register(app: typer.Typer) -> None:
    app.command("init")(init)
