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
        (["parse"], "Missing argument 'DOC'. (see 'talkqa parse --help')"),
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


def test_a_collection_that_is_not_found_points_at_the_base_url(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from talkqa.systems.base import NotFound

    wrong_root = NotFound("chargebee", "customers", "not found", status=404)
    monkeypatch.setattr(cli, "app", _raising(wrong_root))
    assert run_main(monkeypatch, []) == 2
    assert capsys.readouterr().err == (
        "talkqa: error: chargebee customers: HTTP 404 not found: "
        "check CHARGEBEE_BASE_URL (it must be the API root)\n"
    )
    gone = NotFound("invoiced", "invoices", "no such invoice", entity_id="9", status=404)
    monkeypatch.setattr(cli, "app", _raising(gone))
    assert run_main(monkeypatch, []) == 2
    assert "BASE_URL" not in capsys.readouterr().err  # a missing entity is not a wrong URL


@pytest.mark.parametrize(
    ("argv", "usage", "words"),
    [
        (["parse", "--help"], "parse [OPTIONS] DOC", ["--bind-blank NAME"]),
        (["corpus", "--help"], "corpus [OPTIONS] DIR", ["--workers N", "one per core"]),
        (
            ["sync", "--help"],
            "sync [OPTIONS] DOC",
            ["--state PATH", ".talkqa/<checklist>-<systems>.sqlite"],
        ),
        (["signoff", "--help"], "signoff [OPTIONS] DOC", ["merge", "--mode", "MODE", "live"]),
        (["features", "check", "--help"], "check [OPTIONS] DOC FEATURES_DIR", []),
        (["sandbox", "seed", "--help"], "seed [OPTIONS]", ["--chargebee-url", "URL"]),
    ],
)
def test_help_names_arguments_as_the_readme_does(
    argv: list[str], usage: str, words: list[str]
) -> None:
    result = CliRunner().invoke(app, argv, env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0
    text = " ".join(result.output.split()).replace("{", "").replace("}", "")
    assert usage in text
    for word in words:
        assert word in text


def test_a_refused_key_names_the_variable_to_fix(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from talkqa.systems.base import AuthenticationFailed

    refused = AuthenticationFailed("invoiced", "customers", "The key is invalid.", status=401)
    monkeypatch.setattr(cli, "app", _raising(refused))
    assert run_main(monkeypatch, []) == 2
    assert capsys.readouterr().err == (
        "talkqa: error: invoiced customers: HTTP 401 The key is invalid: "
        "check INVOICED_API_KEY (and what that key may do)\n"
    )


def test_each_lazily_registered_command_is_the_one_its_module_registers() -> None:
    """`talkqa.cli.COMMANDS` names the module of each command without importing it: a name
    listed there that its module does not register (or one it registers that is not listed)
    would be a command missing from `talkqa --help`, or one that fails when run."""
    modules = set(cli.COMMANDS.values())
    registered = {name: module for module in modules for name in cli.registered_by(module)}
    assert registered == cli.COMMANDS


def test_only_the_module_of_the_command_run_is_imported() -> None:
    """`talkqa version` starts without importing any command's module (a fresh interpreter:
    this one has imported them all)."""
    import subprocess
    import sys

    probe = (
        "import sys; from talkqa.cli import main; sys.argv = ['talkqa', 'version']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print(sorted(set({sorted(set(cli.COMMANDS.values()))!r}) & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]", done.stdout
