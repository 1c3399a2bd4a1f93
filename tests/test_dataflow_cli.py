"""`talkqa parse` and `talkqa corpus` as a user runs them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from talkqa.cli import app

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "dataflows"
SEED = Path(__file__).resolve().parents[2] / "shared" / "dataflows" / "Chargebee-to-Dataflow.rst"
TALKQA = Path(sys.executable).parent / "talkqa"


def parse_json(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["parse", *args, "--json"])
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def assert_contract_shape(data: dict[str, Any]) -> None:
    assert {"source", "target", "sections", "issues"} <= data.keys()
    for section in data["sections"]:
        assert {
            "heading",
            "source",
            "target",
            "kind",
            "merge_rules",
            "properties",
        } <= section.keys()
        assert set(section["source"]) == {"system", "datatype"} == set(section["target"])
        for rule in section["merge_rules"]:
            assert {"source_path", "target_path"} <= rule.keys()
        for prop in section["properties"]:
            assert {"source_path", "target_path", "data_type"} <= prop.keys()
    for issue in data["issues"]:
        assert {"line", "message"} <= issue.keys()


def test_parse_json_shape_with_bind_blank(tmp_path: Path) -> None:
    copy = tmp_path / "Chargebee-to-Dataflow.rst"
    shutil.copy(FIXTURES / "chargebee-invoiced.rst", copy)
    data = parse_json(str(copy), "--bind-blank", "invoiced")
    assert_contract_shape(data)
    assert data["target"] == "Invoiced"
    assert [s["target"]["system"] for s in data["sections"]] == ["Invoiced", "Invoiced"]
    assert data["sections"][1]["properties"][0] == {
        "source_path": "currency_code",
        "target_path": "currency",
        "data_type": "string",
        "qualifier": None,
        "line": copy.read_text().splitlines().index("   * - currency_code") + 1,
    }


def test_parse_json_of_the_seed_document() -> None:
    if not SEED.is_file():
        pytest.skip("../shared/dataflows/Chargebee-to-Dataflow.rst is absent")
    data = parse_json(str(SEED), "--bind-blank", "invoiced")
    assert_contract_shape(data)
    assert len(data["sections"]) == 3
    assert {s["target"]["system"] for s in data["sections"]} == {"Invoiced"}
    assert [(p["source_path"], p["target_path"]) for p in data["sections"][2]["properties"]] == [
        ("currency_code", "currency"),
        ("customer_id", "customer"),
    ]


def test_parse_json_carries_merge_rules_and_issues() -> None:
    data = parse_json(str(FIXTURES / "variations.rst"))
    assert_contract_shape(data)
    assert [r["source_path"] for r in data["sections"][0]["merge_rules"]] == ["email", "id"]
    assert {i["kind"] for i in data["issues"]} == {"qualifier", "unknown-type"}


def test_parse_table_prints_sections_and_issues_on_stderr() -> None:
    path = FIXTURES / "broken.rst"
    result = CliRunner().invoke(app, ["parse", str(path)])
    assert result.exit_code == 0
    assert "currency_code" in result.stdout
    assert "customer_id" in result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 3
    assert all(line.startswith(f"{path}:") for line in lines)
    assert "broken-row" in lines[0]


def test_unreadable_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "notes.rst"
    bad.write_text("Notes\n=====\n\nNothing here.\n")
    for target in (str(tmp_path / "missing.rst"), str(bad)):
        run = subprocess.run(
            [str(TALKQA), "parse", target], capture_output=True, text=True, timeout=60
        )
        assert run.returncode == 2
        assert run.stdout == ""
        assert len(run.stderr.strip().splitlines()) == 1
        assert target in run.stderr
        assert "Traceback" not in run.stderr


def test_corpus_json_and_exit_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    folder = tmp_path / "corpus"
    folder.mkdir()
    # the parser's own three fixtures, whose totals are known (other fixtures come and go)
    for name in ("chargebee-invoiced.rst", "variations.rst", "broken.rst"):
        shutil.copy(FIXTURES / name, folder / name)
    result = CliRunner().invoke(app, ["corpus", str(folder), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {"documents", "sections", "property_maps", "merge_rules", "issues"} <= data.keys()
    assert data["documents"] == 3
    assert data["merge_rules"] == 2
    assert data["sections_by_kind"] == {"every": 5, "link-first": 1, "conditional": 1}

    table = CliRunner().invoke(app, ["corpus", str(folder)])
    assert table.exit_code == 0
    assert "property maps" in table.stdout

    (folder / "readme.rst").write_text("Readme\n======\n\nNot a checklist.\n")
    failed = CliRunner().invoke(app, ["corpus", str(folder), "--json"])
    assert failed.exit_code == 1
    assert "readme.rst" in failed.stderr
    assert json.loads(failed.stdout)["documents"] == 4


def test_corpus_of_a_missing_folder_is_one_line_exit_2(tmp_path: Path) -> None:
    run = subprocess.run(
        [str(TALKQA), "corpus", str(tmp_path / "nowhere"), "--no-cache"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert len(run.stderr.strip().splitlines()) == 1
    assert "not a folder" in run.stderr
