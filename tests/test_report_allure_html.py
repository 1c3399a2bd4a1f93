"""`make report`: the Allure 3 command, its config, and the one-line errors (no Node needed)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from talkqa.errors import UserError
from talkqa.report.allure_html import ALLURE_VERSION, allure_command, generate, main
from talkqa.report.environment import categories


def _results(tmp_path: Path, *epics: str) -> Path:
    results = tmp_path / "allure-results"
    results.mkdir()
    for n, epic in enumerate(epics or ("Chargebee to Invoiced Dataflow",)):
        result = {"name": f"scenario {n}", "labels": [{"name": "epic", "value": epic}]}
        (results / f"{n}-result.json").write_text(json.dumps(result), encoding="utf-8")
    return results


def test_the_version_is_pinned_and_the_command_is_allure3_generate(tmp_path: Path) -> None:
    assert ALLURE_VERSION.startswith("3.") and ALLURE_VERSION.count(".") == 2
    command = allure_command("npx", tmp_path / "r", tmp_path / "o", tmp_path / "c.json")
    assert command[:4] == ["npx", "--yes", f"allure@{ALLURE_VERSION}", "generate"]
    assert command[4:] == [
        str(tmp_path / "r"), "--output", str(tmp_path / "o"), "--config", str(tmp_path / "c.json")
    ]  # fmt: skip


def test_generate_writes_the_config_and_runs_npx(tmp_path: Path) -> None:
    results = _results(tmp_path, "Chargebee to Invoiced Dataflow", "Chargebee to Invoiced Dataflow")
    out = tmp_path / "allure-report"
    seen: list[list[str]] = []

    def fake_run(args: list[str], check: bool) -> subprocess.CompletedProcess[Any]:
        seen.append(args)
        Path(args[args.index("--output") + 1]).mkdir(parents=True)
        (out / "index.html").write_text("<html></html>", encoding="utf-8")
        return subprocess.CompletedProcess(args, 0)

    index = generate(results, out, npx="/usr/bin/npx", run=fake_run)
    assert index == out / "index.html"
    config = json.loads((tmp_path / "allurerc.json").read_text(encoding="utf-8"))
    assert config == {"name": "talk-qa: Chargebee to Invoiced Dataflow", "categories": categories()}
    assert seen[0][0] == "/usr/bin/npx" and seen[0][-1] == str(tmp_path / "allurerc.json")


def test_a_failed_generation_is_one_line(tmp_path: Path) -> None:
    results = _results(tmp_path)

    def failing(args: list[str], check: bool) -> subprocess.CompletedProcess[Any]:
        return subprocess.CompletedProcess(args, 1)

    with pytest.raises(UserError, match=r"could not generate .* \(npx exit code 1\)"):
        generate(results, tmp_path / "out", npx="npx", run=failing)


def test_without_node_it_says_what_to_install_and_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    results = _results(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert main([str(results), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "needs Node.js" in err and "apt-get install -y nodejs npm" in err
    assert not (tmp_path / "out").exists()


def test_without_results_it_says_to_run_the_signoff_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(tmp_path / "absent")]) == 2
    assert "no Allure results: run `make signoff`" in capsys.readouterr().err


def test_it_replaces_an_old_report_but_no_other_folder(tmp_path: Path) -> None:
    results = _results(tmp_path)
    calls: list[list[str]] = []

    def fake_run(args: list[str], check: bool) -> subprocess.CompletedProcess[Any]:
        calls.append(args)
        out = Path(args[args.index("--output") + 1])
        out.mkdir(parents=True)
        (out / "index.html").write_text("<html></html>", encoding="utf-8")
        return subprocess.CompletedProcess(args, 0)

    old = tmp_path / "old-report"
    old.mkdir()
    (old / "index.html").write_text("old", encoding="utf-8")
    (old / "stale.json").write_text("{}", encoding="utf-8")
    generate(results, old, npx="npx", run=fake_run)
    assert not (old / "stale.json").exists()
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(UserError, match="not an Allure report"):
        generate(results, precious, npx="npx", run=fake_run)
    assert (precious / "notes.txt").read_text(encoding="utf-8") == "keep me"
    assert len(calls) == 1
