"""`talkqa init`: a talk-qa project for someone's syncer, in any folder.

The project holds the checklists talk-qa ships, their generated features, an empty cassettes
folder, ``talkqa.toml`` (the folders, the mode, the syncer's command), a README stub and a
GitHub Actions workflow that signs off each checklist in its own job and merges their Allure
results into one report. :func:`project_files` decides every file's text (pure);
:func:`write_project` writes them, and never over a file that is already there.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from pathlib import Path

from talkqa.errors import UserError
from talkqa.project import SHIPPED_CHECKLISTS

# The scaffold's own files, shipped as package data: name in the package -> path in a project.
TEMPLATES: Mapping[str, str] = {
    "talkqa.toml": "talkqa.toml",
    "README.md": "README.talkqa.md",
    "workflow.yml": ".github/workflows/talkqa.yml",
}
DATAFLOWS, FEATURES, CASSETTES = "dataflows", "features", "cassettes"


def shipped_checklists() -> dict[str, str]:
    """File name -> text of every checklist talk-qa ships, in name order."""
    return {
        path.name: path.read_text(encoding="utf-8")
        for path in sorted(SHIPPED_CHECKLISTS.glob("*.rst"))
    }


def project_files(checklists: Mapping[str, str]) -> dict[str, str]:
    """Every file of a new project (POSIX path relative to it -> text): the checklists, the
    features generated from them exactly as `talkqa features generate` writes them, and the
    templates."""
    from talkqa.dataflow.gherkin import generate
    from talkqa.dataflow.rst import parse_text

    files: dict[str, str] = {}
    for name, text in checklists.items():
        label = f"{DATAFLOWS}/{name}"
        files[label] = text
        for feature, body in generate(parse_text(text, label), label).items():
            files[f"{FEATURES}/{feature}"] = body
    scaffold = resources.files(__package__) / "files"
    for template, target in TEMPLATES.items():
        files[target] = (scaffold / template).read_text(encoding="utf-8")
    return files


def write_project(root: Path, files: Mapping[str, str]) -> list[Path]:
    """Write ``files`` under ``root`` (and an empty cassettes folder); refuse, before writing
    anything, when one of them exists: the folder may be someone's repository."""
    if root.exists() and not root.is_dir():
        raise UserError(f"{root}: is a file: give the folder to make the talk-qa project in")
    taken = [name for name in files if (root / name).exists()]
    if taken:
        more = f" (and {len(taken) - 1} more)" if len(taken) > 1 else ""
        raise UserError(
            f"{root / taken[0]}: already exists{more}: talkqa init never overwrites a file; "
            "move it away or init another folder"
        )
    written = []
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    (root / CASSETTES).mkdir(parents=True, exist_ok=True)
    return written
