"""`make cassettes` (talkqa.record): records aside, swaps in per checklist, only on success.

The pytest run is faked here (it writes cassettes the way the suite does, into the staged
copy's ``cassettes/``); `make cassettes` itself is the real run, checked for a zero diff.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from talkqa.record import (
    SUITE_PARTS,
    RecordingFailed,
    main,
    record,
    recorded_checklists,
    recording_command,
)

Run = Callable[..., subprocess.CompletedProcess[Any]]


def _project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    (project / "features" / "flow").mkdir(parents=True)
    (project / "dataflows").mkdir()
    (project / "pyproject.toml").write_text(
        "[tool.pytest.ini_options]\n[tool.talkqa]\n", encoding="utf-8"
    )
    (project / "reports").mkdir()
    (project / "reports" / "big.bin").write_bytes(b"not part of the suite")
    old = project / "cassettes" / "flow" / "01-feature"
    old.mkdir(parents=True)
    (old / "kept-scenario.yaml").write_text("old recording\n", encoding="utf-8")
    (old / "removed-scenario.yaml").write_text("stale\n", encoding="utf-8")
    mine = project / "cassettes" / "my-own-checklist"
    mine.mkdir()
    (mine / "x.yaml").write_text("mine\n", encoding="utf-8")
    return project


def _suite_writes(code: int, seen: list[Path]) -> Run:
    """A recording that writes like the feature suite, then exits with ``code``."""

    def run(args: list[str], cwd: Path, check: bool) -> subprocess.CompletedProcess[Any]:
        seen.append(Path(cwd))
        staged = sorted(p.name for p in Path(cwd).iterdir())
        assert staged == ["dataflows", "features", "pyproject.toml"]  # no reports/, no cassettes/
        fresh = Path(cwd) / "cassettes" / "flow" / "01-feature"
        fresh.mkdir(parents=True)
        (fresh / "kept-scenario.yaml").write_text("new recording\n", encoding="utf-8")
        (Path(cwd) / "cassettes" / "unsorted").mkdir()
        return subprocess.CompletedProcess(args, code)

    return run


def test_the_recording_runs_the_whole_suite_against_sandboxes_with_rewrite() -> None:
    command = recording_command()
    assert command[1:4] == ["-m", "pytest", "features"]
    assert "--talkqa-mode=sandbox" in command and "--record-mode=rewrite" in command
    assert not any(arg.startswith("-k") or arg.startswith("-m=") for arg in command)
    assert "cassettes" not in SUITE_PARTS


def test_a_passing_recording_replaces_only_the_checklists_it_recorded(tmp_path: Path) -> None:
    project = _project(tmp_path)
    seen: list[Path] = []
    assert record(project, run=_suite_writes(0, seen)) == ["flow"]
    fresh = project / "cassettes" / "flow" / "01-feature"
    assert sorted(p.name for p in fresh.iterdir()) == ["kept-scenario.yaml"]  # stale one gone
    assert (fresh / "kept-scenario.yaml").read_text(encoding="utf-8") == "new recording\n"
    assert (project / "cassettes" / "my-own-checklist" / "x.yaml").read_text("utf-8") == "mine\n"
    assert not (project / "cassettes" / "unsorted").exists()
    assert seen[0].is_relative_to(project / ".talkqa") and not seen[0].exists()  # scratch gone


def test_a_failed_recording_leaves_every_cassette_as_it_was(tmp_path: Path) -> None:
    project = _project(tmp_path)
    before = {p: p.read_bytes() for p in (project / "cassettes").rglob("*") if p.is_file()}
    with pytest.raises(RecordingFailed, match=r"pytest exit code 1\).*left as it was"):
        record(project, run=_suite_writes(1, []))
    after = {p: p.read_bytes() for p in (project / "cassettes").rglob("*") if p.is_file()}
    assert after == before
    assert list((project / ".talkqa").iterdir()) == []


def test_recorded_checklists_skips_non_scenario_and_hidden_folders(tmp_path: Path) -> None:
    for name in ("b", "a", "unsorted", ".tmp"):
        (tmp_path / name).mkdir()
    (tmp_path / "file.yaml").write_text("", encoding="utf-8")
    assert recorded_checklists(tmp_path) == ["a", "b"]
    assert recorded_checklists(tmp_path / "absent") == []


def test_outside_a_project_it_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--project", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "not a talk-qa project" in err
