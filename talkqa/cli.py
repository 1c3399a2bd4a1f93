"""`talkqa`: the command line. Each package registers its own commands here.

Exit codes (``talkqa.outcome.ExitCode``): 0 pass, 1 findings, 2 usage or input error (one line
on stderr, no traceback), 3 a bug in talk-qa, 4 INCOMPLETE (a sign-off that could not judge
every promise), 130 interrupted.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, NoReturn

import typer

if TYPE_CHECKING:
    from talkqa.systems.base import ApiError

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

    for module in (
        "talkqa.dataflow.cli",
        "talkqa.sandbox.cli",
        "talkqa.judge_cli",
        "talkqa.report.cli",
        "talkqa.scaffold.cli",
    ):
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


def _api_hint(exc: ApiError) -> str:
    """What to do about a vendor error that stopped a command, when the error alone does not say.

    A refused key is fixed in the environment; a collection that answers 404 (not an entity,
    not a field) means the base URL points at something that is not the vendor's API.
    """
    from talkqa.systems.base import AuthenticationFailed, NotFound

    if isinstance(exc, AuthenticationFailed):
        return f": check {exc.system.upper()}_API_KEY (and what that key may do)"
    if isinstance(exc, NotFound) and exc.entity_id is None and exc.param is None:
        return f": check {exc.system.upper()}_BASE_URL (it must be the API root)"
    return ""


def main() -> None:
    """Console entry point: every failure a user can meet is one line on stderr.

    0 pass, 1 findings, 2 usage or input error, 3 a bug in talk-qa (set TALKQA_DEBUG=1 for
    the traceback), 4 INCOMPLETE, 130 interrupted.
    """
    import os

    from talkqa.errors import UserError
    from talkqa.redact import redactor_from_env
    from talkqa.systems.base import ApiError

    def fail(message: str, code: int) -> NoReturn:
        """One line on stderr; an error may quote a setting, never a key in it."""
        print(f"talkqa: {redactor_from_env(os.environ)(message)}", file=sys.stderr)
        raise SystemExit(code)

    try:
        code = app(standalone_mode=False)
    except (KeyboardInterrupt, typer.Abort):
        fail("interrupted", 130)
    except typer.exceptions.TyperException as exc:  # usage errors: one line, where to look
        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        if not message.strip():  # bare `talkqa`: the help was the answer
            raise SystemExit(getattr(exc, "exit_code", 2)) from None
        fail(f"error: {message}{hint}", getattr(exc, "exit_code", 2))
    except UserError as exc:
        fail(f"error: {exc}", 2)
    except ApiError as exc:
        hint = _api_hint(exc)
        fail(f"error: {str(exc).rstrip('. ') if hint else exc}{hint}", 2)
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        fail(f"error: {where}{exc.strerror or exc}", 2)
    except Exception as exc:
        if os.environ.get("TALKQA_DEBUG"):
            raise
        fail(
            f"internal error: {type(exc).__name__}: {exc} "
            "(a bug in talk-qa: rerun with TALKQA_DEBUG=1 for the traceback and report it)",
            3,
        )
    raise SystemExit(code if isinstance(code, int) else 0)
