"""The command line assembles, and every failure a user can meet is one line on stderr."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from talkqa import cli
from talkqa.cli import app, main


def test_help_lists_the_commands() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("parse", "corpus", "sync", "check", "signoff", "sandbox", "features"):
        assert command in result.output


def run_main(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> int:
    monkeypatch.setattr("sys.argv", ["talkqa", *argv])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return int(exit_info.value.code or 0)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["parse"], "Missing argument 'doc'. (see 'talkqa parse --help')"),
        (["parse", "x.rst", "--bogus"], "No such option: --bogus"),
        (["sandbox", "serve", "--chargebee-port", "99999"], "less than or equal to 65535"),
        (["no-such-command"], "No such command 'no-such-command'"),
        (["parse", "missing.rst"], "missing.rst: no such file"),
    ],
)
def test_usage_and_input_errors_are_one_line_exit_2(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    expected: str,
) -> None:
    assert run_main(monkeypatch, argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("talkqa: error: ")
    assert expected in err


def _raising(exc: Exception) -> typer.Typer:
    broken = typer.Typer()

    @broken.callback(invoke_without_command=True)
    def boom() -> None:
        raise exc

    return broken


def test_an_os_error_names_the_file(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "app", _raising(PermissionError(13, "Permission denied", "/x/y")))
    assert run_main(monkeypatch, []) == 2
    assert capsys.readouterr().err == "talkqa: error: /x/y: Permission denied\n"


def test_a_bug_is_one_line_exit_3_unless_debugging(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "app", _raising(KeyError("oops")))
    monkeypatch.delenv("TALKQA_DEBUG", raising=False)
    assert run_main(monkeypatch, []) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error: KeyError" in err and "TALKQA_DEBUG=1" in err
    monkeypatch.setenv("TALKQA_DEBUG", "1")
    monkeypatch.setattr("sys.argv", ["talkqa"])
    with pytest.raises(KeyError):
        main()
