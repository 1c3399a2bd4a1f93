"""The command line assembles and reports bad usage as a one-line error."""

from typer.testing import CliRunner

from talkqa.cli import app


def test_help_lists_talkqa() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "Sesam Talk" in result.output
