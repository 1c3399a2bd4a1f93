"""The pytest11 plugin loads in every pytest run of the environment: outside a talk-qa
project, and for tests that are not the project's scenarios, it must change nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PLAIN = """\
def test_plain():
    assert 1 + 1 == 2
"""


def _pytest(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_outside_a_project_recording_options_and_feature_files_are_left_alone(
    tmp_path: Path,
) -> None:
    (tmp_path / "test_plain.py").write_text(PLAIN, encoding="utf-8")
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "x.feature").write_text("Feature: not ours\n", encoding="utf-8")
    done = _pytest(tmp_path, "--record-mode=rewrite", "-q")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout and "cannot be used in replay mode" not in done.stdout


def test_in_a_sandbox_project_a_plain_test_starts_no_sandbox(tmp_path: Path) -> None:
    (tmp_path / "talkqa.toml").write_text('mode = "sandbox"\n', encoding="utf-8")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_plain.py").write_text(PLAIN, encoding="utf-8")
    done = _pytest(tmp_path, "tests", "--setup-show")
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "test_plain" in out and "PASSED" in out.upper()
    set_up = {line.split()[2] for line in out.splitlines() if line.split()[:1] == ["SETUP"]}
    assert "_fresh_sandbox" in set_up and "_scene" in set_up  # autouse: present, inert
    assert not set_up & {"sandboxes", "talkqa_settings", "systems", "record"}, out


def test_in_a_replay_project_recording_is_refused_before_anything_runs(tmp_path: Path) -> None:
    (tmp_path / "talkqa.toml").write_text("", encoding="utf-8")
    (tmp_path / "test_plain.py").write_text(PLAIN, encoding="utf-8")
    done = _pytest(tmp_path, "--record-mode=rewrite", "-q")
    assert done.returncode == 4, done.stdout + done.stderr
    assert "--record-mode=rewrite cannot be used in replay mode" in done.stdout + done.stderr
