"""talk-qa project settings: where they are found, what they may say, how folders resolve."""

from __future__ import annotations

from pathlib import Path

import pytest

from talkqa.errors import UserError
from talkqa.project import SHIPPED_CHECKLISTS, find_project, read_project

REPO = Path(__file__).resolve().parents[1]


def test_talkqa_toml_keys_override_the_defaults_relative_to_its_folder(tmp_path: Path) -> None:
    (tmp_path / "talkqa.toml").write_text(
        'features = "qa/features"\nmode = "sandbox"\nsut_command = "my-syncer --once"\n',
        encoding="utf-8",
    )
    project = read_project(tmp_path)
    assert project is not None
    assert project.features == tmp_path.resolve() / "qa" / "features"
    assert project.cassettes == tmp_path.resolve() / "cassettes"
    assert project.settings.mode == "sandbox"
    assert project.settings.sut_command == "my-syncer --once"


def test_a_pyproject_configures_a_project_only_with_a_tool_talkqa_table(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.ruff]\nline-length = 90\n", encoding="utf-8")
    assert read_project(tmp_path) is None
    (tmp_path / "pyproject.toml").write_text('[tool.talkqa]\ncassettes = "tapes"\n', "utf-8")
    project = read_project(tmp_path)
    assert project is not None and project.cassettes.name == "tapes"


def test_the_nearest_project_above_a_folder_is_found(tmp_path: Path) -> None:
    (tmp_path / "talkqa.toml").write_text("", encoding="utf-8")
    deep = tmp_path / "features" / "flow"
    deep.mkdir(parents=True)
    found = find_project(deep)
    assert found is not None and found.root == tmp_path.resolve()
    assert found.holds_feature(deep / "01-x.feature")
    assert not found.holds_feature(deep / "01-x.py")
    assert not found.holds_feature(tmp_path / "elsewhere" / "01-x.feature")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('featurs = "f"\n', "featurs"),  # a typo must not pass silently
        ('mode = "recorded"\n', "mode"),
        ("features = \n", "not valid TOML"),
    ],
)
def test_bad_settings_are_one_line_naming_the_file(tmp_path: Path, text: str, words: str) -> None:
    (tmp_path / "talkqa.toml").write_text(text, encoding="utf-8")
    with pytest.raises(UserError) as raised:
        read_project(tmp_path)
    message = str(raised.value)
    assert "talkqa.toml" in message and words in message and "\n" not in message


def test_this_repository_is_a_project_and_ships_its_checklists() -> None:
    project = find_project(REPO)
    assert project is not None and project.features == REPO / "features"
    shipped = sorted(p.name for p in SHIPPED_CHECKLISTS.glob("*.rst"))
    assert shipped == sorted(p.name for p in (REPO / "dataflows").glob("*.rst"))
