"""`talkqa`: the command line. Each package registers its own commands here.

Exit codes: 0 pass, 1 findings, 2 usage or input error (one line on stderr, no traceback).
"""

from __future__ import annotations

import sys

import typer

app = typer.Typer(
    name="talkqa",
    help="QA harness for data-sync flows described by Sesam Talk dataflow checklists.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register() -> None:
    """Each package owns the commands over its own work; this only assembles them."""
    import importlib

    for module in ("talkqa.dataflow.cli", "talkqa.sandbox.cli", "talkqa.judge_cli"):
        importlib.import_module(module).register(app)


@app.callback()
def _root() -> None:
    """QA harness for data-sync flows described by Sesam Talk dataflow checklists."""


@app.command()
def version() -> None:
    """Print talk-qa's version."""
    from talkqa import __version__

    typer.echo(__version__)


_register()


def main() -> None:
    """Console entry point: turns known errors into one line and exit code 2."""
    from talkqa.errors import UserError
    from talkqa.systems.base import ApiError

    try:
        app()
    except UserError as exc:
        print(f"talkqa: error: {exc}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
    except ApiError as exc:
        print(f"talkqa: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print("talkqa: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
