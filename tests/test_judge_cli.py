"""`talkqa features|sync|check|signoff`: outputs, exit codes and one-line errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from talkqa.cli import main

REPO = Path(__file__).resolve().parents[1]
CHECKLIST = REPO / "dataflows" / "chargebee-invoiced.rst"
VENDOR_VARS = (
    "CHARGEBEE_SITE",
    "CHARGEBEE_API_KEY",
    "CHARGEBEE_BASE_URL",
    "INVOICED_API_KEY",
    "INVOICED_BASE_URL",
)


def run_cli(args: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(sys, "argv", ["talkqa", *args])
    try:
        main()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.fixture
def no_vendor_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VENDOR_VARS:
        monkeypatch.delenv(name, raising=False)


def _one_line_error(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("talkqa: error: ")
    return lines[0]


def _generated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The checklist's features generated from the project folder into tmp_path/features."""
    monkeypatch.chdir(REPO)
    out = tmp_path / "features"
    assert run_cli(["features", "generate", str(CHECKLIST), "--out", str(out)], monkeypatch) == 0
    return out


def test_features_generate_then_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _generated(tmp_path, monkeypatch)
    written = sorted((out / "chargebee-invoiced").glob("*.feature"))
    assert len(written) == 3
    # the Background names the checklist relative to the project, as the steps load it
    assert 'Given the checklist "dataflows/chargebee-invoiced.rst"' in written[0].read_text()
    capsys.readouterr()
    assert run_cli(["features", "check", str(CHECKLIST), str(out)], monkeypatch) == 0
    assert "in step" in capsys.readouterr().out


def test_features_check_exits_1_on_drift(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _generated(tmp_path, monkeypatch)
    feature = out / "chargebee-invoiced" / "03-chargebee-order-to-invoiced-invoices.feature"
    feature.write_text(
        feature.read_text().replace("| currency_code | currency    | string    |\n", "")
    )
    capsys.readouterr()
    assert run_cli(["features", "check", str(CHECKLIST), str(out)], monkeypatch) == 1
    assert "missing-row: currency_code -> currency" in capsys.readouterr().out


def test_missing_checklist_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(tmp_path / "nope.rst")
    for args in (["features", "generate", missing], ["signoff", missing], ["sync", missing]):
        assert run_cli(args, monkeypatch) == 2
        assert "nope.rst: no such checklist" in _one_line_error(capsys.readouterr().err)


def test_signoff_rejects_bad_usage_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(REPO)
    doc = "dataflows/chargebee-invoiced.rst"
    assert run_cli(["signoff", doc, "--mode", "cloud"], monkeypatch) == 2
    assert "'cloud' is not a mode" in _one_line_error(capsys.readouterr().err)
    assert run_cli(["signoff", doc, "--sut-command", "./sync"], monkeypatch) == 2
    assert "replay mode" in _one_line_error(capsys.readouterr().err)


def test_signoff_without_a_feature_suite_says_how_to_make_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no steps/ here
    assert run_cli(["signoff", str(CHECKLIST)], monkeypatch) == 2
    assert "no feature suite" in _one_line_error(capsys.readouterr().err)


def test_check_and_live_signoff_name_the_missing_settings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], no_vendor_env: None
) -> None:
    monkeypatch.chdir(REPO)
    assert run_cli(["check", str(CHECKLIST)], monkeypatch) == 2
    assert "CHARGEBEE_API_KEY" in _one_line_error(capsys.readouterr().err)
    assert run_cli(["signoff", str(CHECKLIST), "--mode", "live"], monkeypatch) == 2
    assert "INVOICED_API_KEY" in _one_line_error(capsys.readouterr().err)


def test_sync_then_check_against_the_sandboxes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import httpx

    from talkqa.sandbox.server import running_sandboxes
    from talkqa.systems.connect import Systems
    from talkqa.systems.settings import Settings

    with running_sandboxes(seed=0) as sandboxes:
        for name, value in sandboxes.env.items():
            monkeypatch.setenv(name, value)
        with httpx.Client() as client:
            systems = Systems.connect(Settings.from_env(sandboxes.env), client)
            systems.chargebee.customers.create({"id": "c1", "first_name": "Ada"})
        assert run_cli(["check", str(CHECKLIST)], monkeypatch) == 1  # c1 is not in Invoiced
        assert "missing: Chargebee Customer 'c1'" in capsys.readouterr().out
        state = tmp_path / "links.sqlite"
        assert run_cli(["sync", str(CHECKLIST), "--state", str(state), "--json"], monkeypatch) == 0
        assert '"created": 1' in capsys.readouterr().out
        assert run_cli(["check", str(CHECKLIST), "--json"], monkeypatch) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["findings"] == [] and report["sections"][0]["pairs_checked"] == 1
