"""`talkqa report`: the Allure 3 command, its config, the folder swap and the one-line errors.

Everything here runs with a fake npx (no Node needed); tests/test_browser.py opens a real
report from disk.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from talkqa.errors import UserError
from talkqa.report.allure_html import (
    ALLURE_VERSION,
    MARKER,
    allure_command,
    generate,
    report_config,
    without_analytics,
)
from talkqa.report.environment import categories
from tests.cli_runner import run_cli

Run = Callable[..., subprocess.CompletedProcess[Any]]


def _results(tmp_path: Path, *epics: str) -> Path:
    results = tmp_path / "allure-results"
    results.mkdir()
    for n, epic in enumerate(epics or ("Chargebee to Invoiced Dataflow",)):
        result = {"name": f"scenario {n}", "labels": [{"name": "epic", "value": epic}]}
        (results / f"{n}-result.json").write_text(json.dumps(result), encoding="utf-8")
    return results


def _fake_npx(seen: list[list[str]], page: str = "<html>report</html>") -> Run:
    """Writes what Allure writes: a folder with index.html at --output."""

    def run(args: list[str], check: bool) -> subprocess.CompletedProcess[Any]:
        seen.append(args)
        out = Path(args[args.index("--output") + 1])
        out.mkdir(parents=True)
        (out / "index.html").write_text(page, encoding="utf-8")
        (out / "summary.json").write_text("{}", encoding="utf-8")
        return subprocess.CompletedProcess(args, 0)

    return run


def _failing(args: list[str], check: bool) -> subprocess.CompletedProcess[Any]:
    out = Path(args[args.index("--output") + 1])
    out.mkdir(parents=True)
    (out / "half-written.json").write_text("{", encoding="utf-8")
    return subprocess.CompletedProcess(args, 1)


def test_the_version_is_pinned_and_the_command_is_allure3_generate(tmp_path: Path) -> None:
    assert ALLURE_VERSION.startswith("3.") and ALLURE_VERSION.count(".") == 2
    command = allure_command("npx", tmp_path / "r", tmp_path / "o", tmp_path / "c.json")
    assert command[:4] == ["npx", "--yes", f"allure@{ALLURE_VERSION}", "generate"]
    assert command[4:] == [
        str(tmp_path / "r"), "--output", str(tmp_path / "o"), "--config", str(tmp_path / "c.json")
    ]  # fmt: skip


def test_the_config_asks_for_one_file_with_our_name_and_categories() -> None:
    config = report_config("talk-qa: X")
    assert config["name"] == "talk-qa: X" and config["categories"] == categories()
    assert config["plugins"] == {
        "awesome": {"options": {"singleFile": True, "reportName": "talk-qa: X"}}
    }


def test_generate_runs_npx_with_the_config_and_marks_the_report_as_ours(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = _results(tmp_path, "Chargebee to Invoiced Dataflow", "Chargebee to Invoiced Dataflow")
    out = tmp_path / "allure-report"
    seen: list[list[str]] = []
    configs: list[dict[str, Any]] = []

    def run(args: list[str], check: bool) -> subprocess.CompletedProcess[Any]:
        configs.append(json.loads(Path(args[-1]).read_text(encoding="utf-8")))
        return _fake_npx(seen)(args, check)

    assert generate(results, out, npx="/usr/bin/npx", run=run) == out / "index.html"
    assert configs == [report_config("talk-qa: Chargebee to Invoiced Dataflow")]
    assert seen[0][0] == "/usr/bin/npx" and seen[0][4] == str(results)
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "index.html", "summary.json"]
    assert "fetches it from the npm registry" in capsys.readouterr().out  # said before npx runs
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no scratch
    assert not (tmp_path / "allurerc.json").exists()  # nothing written next to the results


def test_the_analytics_tag_is_removed_from_the_page(tmp_path: Path) -> None:
    tag = (
        '\n    <script async src="https://www.googletagmanager.com/gtag/js?id=G-X"></script>\n'
        "    <script>\n        window.dataLayer = window.dataLayer || [];\n"
        "        gtag('config', 'G-X', {});\n    </script>"
    )
    page = f"<html><body><div id=app></div>{tag}\n<script>report()</script></body></html>"
    assert without_analytics(page) == (
        "<html><body><div id=app></div>\n<script>report()</script></body></html>"
    )
    out = tmp_path / "report"
    generate(_results(tmp_path), out, npx="npx", run=_fake_npx([], page))
    assert "googletagmanager" not in (out / "index.html").read_text(encoding="utf-8")


def test_a_previous_report_is_replaced_whole(tmp_path: Path) -> None:
    results = _results(tmp_path)
    out = tmp_path / "report"
    generate(results, out, npx="npx", run=_fake_npx([], "<html>first</html>"))
    (out / "old-widget.json").write_text("{}", encoding="utf-8")  # from an older Allure
    generate(results, out, npx="npx", run=_fake_npx([], "<html>second</html>"))
    assert (out / "index.html").read_text(encoding="utf-8") == "<html>second</html>"
    assert not (out / "old-widget.json").exists() and (out / MARKER).is_file()


@pytest.mark.parametrize("user_file", ["notes.txt", "index.html"])
def test_a_folder_we_did_not_write_is_refused_and_left_alone(
    tmp_path: Path, user_file: str
) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / user_file).write_text("keep me", encoding="utf-8")
    seen: list[list[str]] = []
    with pytest.raises(UserError, match=rf"is not a talk-qa report \(no {MARKER} in it\)"):
        generate(_results(tmp_path), precious, npx="npx", run=_fake_npx(seen))
    assert [p.name for p in precious.iterdir()] == [user_file]
    assert (precious / user_file).read_text(encoding="utf-8") == "keep me"
    assert seen == []  # refused before anything ran


def test_a_failed_generation_is_one_line_and_leaves_the_old_report(tmp_path: Path) -> None:
    results = _results(tmp_path)
    out = tmp_path / "report"
    generate(results, out, npx="npx", run=_fake_npx([], "<html>good</html>"))
    with pytest.raises(UserError, match=r"could not generate .* \(npx exit code 1\)"):
        generate(results, out, npx="npx", run=_failing)
    assert (out / "index.html").read_text(encoding="utf-8") == "<html>good</html>"
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "index.html", "summary.json"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_known_key_in_the_generated_files_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHARGEBEE_API_KEY", "cb_live_secret_1234")
    out = tmp_path / "report"
    page = "<html><script>{token:e}</script>cb_live_secret_1234</html>"
    generate(_results(tmp_path), out, npx="npx", run=_fake_npx([], page))
    assert (out / "index.html").read_text(encoding="utf-8") == (
        "<html><script>{token:e}</script><CHARGEBEE_API_KEY></html>"  # code left as written
    )


def test_without_node_it_says_what_to_install_and_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    results = _results(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert run_cli(["report", str(results), "--out", str(tmp_path / "out")], monkeypatch) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("talkqa: error: ")
    assert "needs Node.js" in err and "apt-get install -y nodejs npm" in err
    assert not (tmp_path / "out").exists()


def test_without_results_it_says_to_run_the_signoff_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(["report", str(tmp_path / "absent")], monkeypatch) == 2
    assert "no Allure results: run `make signoff`" in capsys.readouterr().err


def test_an_out_that_is_a_file_is_refused_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    results = _results(tmp_path)
    a_file = tmp_path / "report.html"
    a_file.write_text("mine", encoding="utf-8")
    assert run_cli(["report", str(results), "--out", str(a_file)], monkeypatch) == 2
    assert "is a file" in capsys.readouterr().err and a_file.read_text("utf-8") == "mine"
