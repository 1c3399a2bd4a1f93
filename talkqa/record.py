"""`make cassettes`: re-record the checklists' cassettes without risking anyone's files.

The feature suite writes cassettes into its project's cassettes folder. So the project's
suite (its configuration, features and checklists) is copied into a scratch folder under
``.talkqa/`` and recorded there against freshly reset sandboxes; only when the whole
recording passed is each re-recorded checklist's folder swapped into ``cassettes/``.
A failed or interrupted recording leaves ``cassettes/`` exactly as it was, and a folder
no checklist of the suite records (say, ``cassettes/my-own-checklist/``) is never touched.

Usage: ``python -m talkqa.record [--project DIR]``. It takes no pytest selection on purpose:
a checklist's folder is replaced whole, so a partial recording would drop cassettes.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from talkqa.errors import UserError
from talkqa.project import Project, not_a_project, read_project

# What the feature suite reads below the project folder, besides the folders its settings name
# (this repository's tests/fixtures holds test checklists; copied only where they exist).
SUITE_PARTS: tuple[str, ...] = (
    "pyproject.toml",
    "talkqa.toml",
    "tests/fixtures",
)
NOT_A_CHECKLIST = frozenset({"unsorted"})  # cassettes of tests that are not scenarios

Runner = Callable[..., subprocess.CompletedProcess[Any]]


class RecordingFailed(UserError):
    """The suite did not record cleanly: exit 1, like any failed run, not a usage error."""


def recording_command(features: str = "features") -> list[str]:
    """The pytest run that records every scenario against fresh sandboxes (pure)."""
    return [
        sys.executable, "-m", "pytest", features, "-p", "no:cacheprovider",
        "--talkqa-mode=sandbox", "--record-mode=rewrite",
    ]  # fmt: skip


def project_at(folder: Path) -> Project:
    """The talk-qa project configured in ``folder`` itself, or a one-line error."""
    project = read_project(folder)
    if project is None:
        raise not_a_project(
            folder, above=False, then="run `make cassettes` from the talk-qa project"
        )
    return project


def stage_suite(project: Project, into: Path) -> None:
    """Copy the parts of the project the feature suite reads (never its cassettes)."""
    parts = (*SUITE_PARTS, project.settings.features, project.settings.dataflows)
    for part in dict.fromkeys(parts):
        source, target = project.root / part, into / part
        if source.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", ".pytest_cache")
            shutil.copytree(source, target, ignore=ignore)
        elif source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def recorded_checklists(cassettes: Path) -> list[str]:
    """The checklist folders a recording wrote, by name."""
    if not cassettes.is_dir():
        return []
    return sorted(
        p.name
        for p in cassettes.iterdir()
        if p.is_dir() and p.name not in NOT_A_CHECKLIST and not p.name.startswith(".")
    )


def swap_in(fresh: Path, cassettes: Path, names: Sequence[str], parking: Path) -> None:
    """Replace ``cassettes/<name>`` by ``fresh/<name>`` for each name, nothing else.

    The old folder is parked (a rename) before the new one is moved in, so no moment has
    a half-deleted checklist; the parking is dropped with the scratch folder.
    """
    cassettes.mkdir(parents=True, exist_ok=True)
    parking.mkdir(parents=True, exist_ok=True)
    for name in names:
        target = cassettes / name
        if target.exists():
            target.rename(parking / name)
        shutil.move(str(fresh / name), str(target))


def record(folder: Path, *, run: Runner = subprocess.run) -> list[str]:
    """Record into scratch, then swap in the re-recorded checklists; their names.

    Raises RecordingFailed (one line) when the recording fails, UserError when ``project``
    is not a talk-qa project; ``cassettes/`` is then untouched.
    """
    project = project_at(folder)
    scratch_root = project.root / ".talkqa"
    scratch_root.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="record-", dir=scratch_root) as scratch:
        suite = Path(scratch) / "suite"
        stage_suite(project, suite)
        done = run(recording_command(project.settings.features), cwd=suite, check=False)
        if done.returncode != 0:
            raise RecordingFailed(
                f"recording failed (pytest exit code {done.returncode}): see its output above; "
                "cassettes/ is left as it was"
            )
        names = recorded_checklists(suite / project.settings.cassettes)
        if not names:
            raise RecordingFailed("the recording wrote no cassettes: cassettes/ is left as it was")
        fresh = suite / project.settings.cassettes
        swap_in(fresh, project.cassettes, names, Path(scratch) / "old")
    return names


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m talkqa.record",
        description="Re-record the cassettes of every checklist with a feature suite.",
    )
    parser.add_argument("--project", type=Path, default=Path.cwd(), help="the talk-qa project")
    args = parser.parse_args(argv)
    try:
        names = record(args.project.resolve())
    except KeyboardInterrupt:
        print("make cassettes: interrupted: cassettes/ is left as it was", file=sys.stderr)
        return 130
    except UserError as exc:
        print(f"make cassettes: {exc}", file=sys.stderr)
        return 1 if isinstance(exc, RecordingFailed) else 2
    print(f"re-recorded the cassettes of {', '.join(names)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
