"""The verdict never blames the system under test for what talk-qa could not judge.

Each test builds a throwaway copy of the project's suite (steps, features, cassettes,
checklists) and breaks one piece of evidence the way a user could: a cassette cut in half or
deleted, a checklist row cut to two cells, a recording attempted in replay mode.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli_runner import Ran

Cli = Callable[..., Ran]

REPO = Path(__file__).resolve().parents[1]
CASSETTE = Path(
    "cassettes/chargebee-invoiced/03-chargebee-order-to-invoiced-invoices/"
    "each-linked-invoiced-invoices-has-the-mapped-properties-of-its-chargebee-order.yaml"
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the suite: what `talkqa signoff` reads from the working directory."""
    root = tmp_path / "project"
    root.mkdir()
    for folder in ("features", "cassettes", "dataflows"):
        shutil.copytree(REPO / folder, root / folder)
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


def _signoff_json(root: Path) -> dict[str, object]:
    data = json.loads((root / "reports" / "signoff.json").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _tree_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        digest.update(str(path.relative_to(folder)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.mark.parametrize("damage", ["truncated", "deleted"])
def test_a_broken_cassette_is_incomplete_not_a_broken_promise(
    project: Path, damage: str, cli: Cli
) -> None:
    cassette = project / CASSETTE
    if damage == "truncated":
        text = cassette.read_text(encoding="utf-8")
        cassette.write_text(text[: len(text) // 2], encoding="utf-8")
    else:
        cassette.unlink()
    # the exists and properties scenarios: enough to see the broken one among good ones
    promises = ("--promise", "exists", "--promise", "properties")
    done = cli(["signoff", "dataflows/chargebee-invoiced.rst", *promises], cwd=project)
    out = done.stdout + done.stderr
    assert done.returncode == 4, out
    assert "INCOMPLETE:" in done.stdout, out
    lines = [line for line in out.splitlines() if str(CASSETTE) in line]
    assert lines, out
    assert "Traceback" not in out, out
    data = _signoff_json(project)
    assert data["verdict"] == "INCOMPLETE"
    assert data["broken_sections"] == []  # nothing is blamed on the system under test
    unjudged = data["unjudged"]
    assert isinstance(unjudged, list) and len(unjudged) == 1
    assert str(CASSETTE) in unjudged[0] and "properties" in unjudged[0]
    outcomes = [
        json.loads(line)
        for line in (project / "reports" / "outcomes.jsonl").read_text().splitlines()
    ]
    assert len(outcomes) == 4  # every collected scenario has its outcome: none vanished
    assert [o["status"] for o in outcomes].count("error") == 1
    assert [o["status"] for o in outcomes].count("failed") == 0
    # Allure shows it too, as broken (a test defect), though it ended before its first step
    results = [
        json.loads(path.read_text(encoding="utf-8"))
        for path in (project / "reports" / "allure-results").glob("*-result.json")
    ]
    assert len(results) == 4
    broken = [r for r in results if r["status"] == "broken"]
    assert len(broken) == 1 and str(CASSETTE) in broken[0]["statusDetails"]["message"]


def test_recording_in_replay_mode_is_refused_and_touches_no_cassette(project: Path) -> None:
    before = _tree_digest(project / "cassettes")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "features",
            "--record-mode=rewrite",
            "-p",
            "no:cacheprovider",
        ],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    out = done.stdout + done.stderr
    assert done.returncode != 0, out
    refusals = [line for line in out.splitlines() if "--record-mode=rewrite cannot be used" in line]
    assert len(refusals) == 1, out
    assert _tree_digest(project / "cassettes") == before


def test_a_checklist_row_cut_short_is_incomplete_naming_its_line(
    project: Path, cli: Cli
) -> None:
    doc = project / "dataflows" / "chargebee-invoiced.rst"
    lines = doc.read_text(encoding="utf-8").splitlines()
    row = next(i for i, line in enumerate(lines) if "currency_code" in line and "*" in line)
    # "* - a\n  - b\n  - c": drop the third cell of the row
    third = next(i for i in range(row + 1, len(lines)) if lines[i].strip().startswith("- "))
    third = next(i for i in range(third + 1, len(lines)) if lines[i].strip().startswith("- "))
    del lines[third]
    doc.write_text("\n".join(lines) + "\n", encoding="utf-8")
    generated = cli(["features", "generate", "dataflows/chargebee-invoiced.rst"], cwd=project)
    assert generated.returncode == 0, generated.stderr
    args = ["signoff", "dataflows/chargebee-invoiced.rst", "--mode", "sandbox"]
    done = cli([*args, "--promise", "properties"], cwd=project)
    out = done.stdout + done.stderr
    assert done.returncode == 4, out
    assert f"dataflows/chargebee-invoiced.rst:{row + 1}" in out, out
    data = _signoff_json(project)
    assert data["verdict"] == "INCOMPLETE"
    assert any(f":{row + 1}:" in line for line in data["unjudged"]), data["unjudged"]  # type: ignore[union-attr]


def test_a_cassette_missing_a_request_is_an_error_naming_it(project: Path, cli: Cli) -> None:
    """The code now makes a request the cassette never recorded: the evidence is stale."""
    import yaml

    cassette = project / CASSETTE
    data = yaml.safe_load(cassette.read_text(encoding="utf-8"))
    data["interactions"] = data["interactions"][:-1]
    cassette.write_text(yaml.safe_dump(data), encoding="utf-8")
    done = cli(["signoff", "dataflows/chargebee-invoiced.rst", "--promise", "properties"],
               cwd=project)
    out = done.stdout + done.stderr
    assert done.returncode == 4, out
    data = _signoff_json(project)
    assert data["broken_sections"] == []
    (line,) = data["unjudged"]  # type: ignore[misc]
    assert str(CASSETTE) in line and "has no recorded answer for" in line, line


def test_evidence_failures_are_found_anywhere_in_the_exception_chain() -> None:
    from talkqa.pytest_plugin import evidence_failure

    blocked = RuntimeError("Network is disabled for host '127.0.0.1'")
    try:
        try:
            raise blocked
        except RuntimeError as exc:
            raise ValueError("the connector gave up") from exc
    except ValueError as wrapped:
        assert evidence_failure(wrapped) is blocked
    assert evidence_failure(KeyError("customer")) is None  # a crash is the syncer's own
