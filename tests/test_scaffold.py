"""`talkqa init`: the files of a new project, and never a file overwritten."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from talkqa.errors import UserError
from talkqa.project import read_project
from talkqa.scaffold import project_files, shipped_checklists, write_project

REPO = Path(__file__).resolve().parents[1]


def test_the_features_are_the_ones_committed_for_the_shipped_checklists() -> None:
    files = project_files(shipped_checklists())
    features = {name: text for name, text in files.items() if name.startswith("features/")}
    committed = {
        p.relative_to(REPO).as_posix(): p.read_text(encoding="utf-8")
        for name in shipped_checklists()
        for p in (REPO / "features" / Path(name).stem).glob("*.feature")
    }
    assert features and features == committed
    for name in shipped_checklists():
        assert files[f"dataflows/{name}"] == (REPO / "dataflows" / name).read_text("utf-8")


def test_the_settings_name_the_mode_and_the_place_of_the_syncer_command(tmp_path: Path) -> None:
    write_project(tmp_path, project_files(shipped_checklists()))
    project = read_project(tmp_path)
    assert project is not None
    assert project.settings.mode == "sandbox" and project.settings.sut_command is None
    assert "sut_command =" in (tmp_path / "talkqa.toml").read_text(encoding="utf-8")
    assert (tmp_path / "cassettes").is_dir() and not any((tmp_path / "cassettes").iterdir())


def test_the_workflow_shards_checklists_and_merges_their_allure_results() -> None:
    workflow = yaml.safe_load(project_files({})[".github/workflows/talkqa.yml"])
    jobs = workflow["jobs"]
    matrix = jobs["signoff"]["strategy"]["matrix"]["checklist"]
    assert "needs.checklists.outputs.names" in matrix
    runs = " ".join(str(step.get("run", "")) for step in jobs["signoff"]["steps"])
    assert "talkqa signoff dataflows/${{ matrix.checklist }}.rst" in runs
    merge = " ".join(str(step.get("run", "")) for step in jobs["report"]["steps"])
    assert "allure-results" in merge and "talkqa report merged" in merge
    assert jobs["report"]["needs"] == "signoff" and jobs["report"]["if"] == "always()"


def test_an_existing_file_stops_init_before_anything_is_written(tmp_path: Path) -> None:
    (tmp_path / "README.talkqa.md").write_text("mine\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"README\.talkqa\.md: already exists"):
        write_project(tmp_path, project_files(shipped_checklists()))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.talkqa.md"]
    assert (tmp_path / "README.talkqa.md").read_text(encoding="utf-8") == "mine\n"


def test_init_twice_is_refused_in_one_line_with_exit_2(tmp_path: Path) -> None:
    def init() -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-c", "from talkqa.cli import main; main()", "init", "p"]
        return subprocess.run(
            command, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
        )

    first = init()
    assert first.returncode == 0, first.stderr
    before = {p: p.read_bytes() for p in (tmp_path / "p").rglob("*") if p.is_file()}
    second = init()
    assert second.returncode == 2
    assert len(second.stderr.strip().splitlines()) == 1 and "already exists" in second.stderr
    assert {p: p.read_bytes() for p in (tmp_path / "p").rglob("*") if p.is_file()} == before
