"""A talk-qa project: where its checklists, features and cassettes are, and what it judges.

talk-qa runs from any folder once that folder says so: a ``talkqa.toml`` (top-level keys) or
a ``[tool.talkqa]`` table in ``pyproject.toml``. The pytest plugin, ``talkqa signoff`` and
``talkqa init`` all read it through :func:`find_project`, so the three never disagree about
which folder holds what. Folders are relative to the file that configures them.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from talkqa.errors import UserError

CONFIG_FILE = "talkqa.toml"
# The checklists talk-qa ships (in this repository a link to dataflows/, in the wheel a copy):
# what `talkqa init` starts a project from and what the defect catalogue's syncers follow.
SHIPPED_CHECKLISTS = Path(__file__).resolve().parent / "checklists"


class ProjectSettings(BaseModel):
    """The keys a project may set (unknown keys are refused: a typo must not pass silently)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataflows: str = "dataflows"
    features: str = "features"
    cassettes: str = "cassettes"
    # the shell command that runs the system under test once; None: the reference sync
    sut_command: str | None = None
    # the feature suite's mode when neither pytest nor signoff is told one
    mode: Literal["replay", "sandbox", "live"] = "replay"


class Project(BaseModel):
    """A found configuration, its folders resolved against the folder of its file."""

    model_config = ConfigDict(frozen=True)

    root: Path
    source: Path  # the file the settings came from
    settings: ProjectSettings

    @property
    def dataflows(self) -> Path:
        return self.root / self.settings.dataflows

    @property
    def features(self) -> Path:
        return self.root / self.settings.features

    @property
    def cassettes(self) -> Path:
        return self.root / self.settings.cassettes

    def holds_feature(self, path: Path) -> bool:
        """Whether ``path`` is one of this project's feature files."""
        return path.suffix == ".feature" and path.resolve().is_relative_to(self.features.resolve())


def _table(path: Path) -> dict[str, object] | None:
    """The talk-qa table of a config file, or None when the file configures no talk-qa."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML ({exc}): fix the file") from None
    if path.name == CONFIG_FILE:
        return data
    tool = data.get("tool")
    found = tool.get("talkqa") if isinstance(tool, dict) else None
    return found if isinstance(found, dict) else None


def read_project(root: Path) -> Project | None:
    """The project configured in ``root`` itself (``talkqa.toml`` first), or None."""
    for name in (CONFIG_FILE, "pyproject.toml"):
        path = root / name
        if not path.is_file():
            continue
        table = _table(path)
        if table is None:
            continue
        try:
            settings = ProjectSettings.model_validate(table)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(table)"
            raise UserError(f"{path}: {where}: {first['msg']}: fix the talk-qa settings") from None
        return Project(root=root.resolve(), source=path.resolve(), settings=settings)
    return None


def not_a_project(folder: Path, *, above: bool, then: str) -> UserError:
    """The one wording of "no talk-qa settings here" (``above``: nor in any parent folder)."""
    where = "here or above" if above else "in this folder"
    return UserError(
        f"{folder}: not a talk-qa project (no talkqa.toml, nor [tool.talkqa] in pyproject.toml, "
        f"{where}): {then}"
    )


def find_project(start: Path) -> Project | None:
    """The nearest configured project at or above ``start`` (like ruff or mypy find theirs)."""
    start = start.resolve()
    for folder in (start, *start.parents):
        found = read_project(folder)
        if found is not None:
            return found
    return None
