"""Every `talkqa …` command the README (and the project README `talkqa init` writes) names
exists, with every option it shows: a renamed or dropped option fails here, not for a user."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from talkqa.cli import app
from talkqa.scaffold import project_files

REPO = Path(__file__).resolve().parents[1]
ROOT = typer.main.get_command(app)
CODE = re.compile(r"```[^\n]*\n(.*?)```|`([^`\n]+)`", re.DOTALL)
CALL = re.compile(r"(?<![\w./-])talkqa (.+)")
OPTION = re.compile(r"^\[?(--[a-z][\w-]*)")


def _snippets(text: str) -> Iterator[str]:
    for block, inline in CODE.findall(text):
        yield from (block.replace("\\\n", " ").splitlines() if block else [inline])


def _calls(text: str) -> list[tuple[list[str], list[str]]]:
    """(command path, options) of each `talkqa …` call in the code of a markdown text."""
    found = []
    for snippet in _snippets(text):
        for match in CALL.finditer(snippet):
            rest = match.group(1).split(" #")[0].split(" && ")[0].split(" > ")[0]
            try:
                words = shlex.split(rest)
            except ValueError:
                words = rest.split()
            command: Any = ROOT  # typer's own click: a group is what has commands
            path: list[str] = []
            while words and words[0] in getattr(command, "commands", {}):
                path.append(words[0])
                command = command.commands[words.pop(0)]
            if "--" in words:  # what follows goes to pytest
                words = words[: words.index("--")]
            options = [m.group(1) for w in words if (m := OPTION.match(w))]
            found.append((path, options))
    return found


def _readmes() -> dict[str, str]:
    return {
        "README.md": (REPO / "README.md").read_text(encoding="utf-8"),
        "README.talkqa.md": project_files({})["README.talkqa.md"],
    }


CALLS = sorted(
    {(name, " ".join(p), " ".join(o)) for name, text in _readmes().items() for p, o in _calls(text)}
)


def test_the_readme_names_every_command_of_the_cli() -> None:
    named = {path.split(" ")[0] for name, path, _options in CALLS if name == "README.md"}
    assert set(ROOT.commands) - named == set()


@pytest.mark.parametrize(("readme", "path", "options"), CALLS)
def test_each_command_the_readme_names_exists_with_its_options(
    readme: str, path: str, options: str
) -> None:
    command: Any = ROOT
    for word in path.split():
        command = command.commands[word]
    known = {"--help", *(opt for param in command.params for opt in param.opts)}
    for option in options.split():
        assert option in known, f"{readme}: `talkqa {path}` has no option {option}"
    result = CliRunner().invoke(app, [*path.split(), "--help"])
    assert result.exit_code == 0, result.output
