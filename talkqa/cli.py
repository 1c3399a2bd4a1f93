"""`talkqa`: the command line. Each package registers its own commands, imported only when
one of them runs (or `--help` lists them): a command starts without loading the others.

Exit codes (``talkqa.outcome.ExitCode``): 0 pass, 1 findings, 2 usage or input error (one line
on stderr, no traceback), 3 a bug in talk-qa, 4 INCOMPLETE (a sign-off that could not judge
every promise), 130 interrupted.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator, MutableMapping
from typing import TYPE_CHECKING, Any, NoReturn

import typer
import typer.core
import typer.main

if TYPE_CHECKING:
    from talkqa.systems.base import ApiError

# Each command, in `talkqa --help` order, with the module whose ``register(app)`` adds it.
# Only the module of the command being run is imported: a sign-off does not pay for the
# sandboxes' CLI, the report builder or the scaffold (about half of `import talkqa.cli`).
# tests/test_cli.py checks that each module registers exactly the names listed here.
COMMANDS: dict[str, str] = {
    "parse": "talkqa.dataflow.cli",
    "corpus": "talkqa.dataflow.cli",
    "sync": "talkqa.judge_cli",
    "check": "talkqa.judge_cli",
    "signoff": "talkqa.judge_cli",
    "run-report-schema": "talkqa.judge_cli",
    "report": "talkqa.report.cli",
    "init": "talkqa.scaffold.cli",
    "sandbox": "talkqa.sandbox.cli",
    "features": "talkqa.judge_cli",
}


def registered_by(module: str) -> dict[str, typer.core.TyperCommand | typer.core.TyperGroup]:
    """The commands a package's ``register(app)`` adds, built as Typer builds them."""
    own = typer.Typer()
    importlib.import_module(module).register(own)
    return dict(typer.main.get_group(own).commands)  # type: ignore[arg-type]


class _LazyCommands(MutableMapping[str, Any]):
    """The root group's commands: the names known up front, each module imported when one
    of its commands is first looked up (run, or listed with its help text)."""

    def __init__(self, loaded: MutableMapping[str, Any]) -> None:
        self._loaded = loaded
        self._names = [*loaded, *(name for name in COMMANDS if name not in loaded)]

    def __getitem__(self, name: str) -> Any:
        if name not in self._loaded and name in COMMANDS:
            self._loaded.update(registered_by(COMMANDS[name]))
        return self._loaded[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self._loaded[name] = command
        if name not in self._names:
            self._names.append(name)

    def __delitem__(self, name: str) -> None:
        del self._loaded[name]
        self._names.remove(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._names


class _LazyGroup(typer.core.TyperGroup):
    """`talkqa`'s root group: every command listed, none imported before it is needed."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = _LazyCommands(self.commands)

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.commands)  # names only: Typer's own would import every module


app = typer.Typer(
    name="talkqa",
    cls=_LazyGroup,
    help="QA harness for data-sync flows described by Sesam Talk dataflow checklists.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """QA harness for data-sync flows described by Sesam Talk dataflow checklists."""


@app.command()
def version() -> None:
    """Print talk-qa's version."""
    from talkqa import __version__

    typer.echo(__version__)



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
