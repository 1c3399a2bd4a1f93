"""`talkqa features|sync|check|signoff`: outputs, exit codes and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_runner import run_cli

REPO = Path(__file__).resolve().parents[1]
CHECKLIST = REPO / "dataflows" / "chargebee-invoiced.rst"
VENDOR_VARS = (
    "CHARGEBEE_SITE",
    "CHARGEBEE_API_KEY",
    "CHARGEBEE_BASE_URL",
    "INVOICED_API_KEY",
    "INVOICED_BASE_URL",
)


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


def test_signoff_outside_a_project_says_how_to_make_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no talkqa.toml here or above
    assert run_cli(["signoff", str(CHECKLIST)], monkeypatch) == 2
    error = _one_line_error(capsys.readouterr().err)
    assert "not a talk-qa project" in error and "talkqa init" in error


def test_signoff_of_a_checklist_without_features_says_how_to_generate_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "talkqa.toml").write_text("", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert run_cli(["signoff", str(CHECKLIST)], monkeypatch) == 2
    error = _one_line_error(capsys.readouterr().err)
    assert "no features for" in error and "talkqa features generate" in error


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


# --- what a user meets first: wrong paths, typos in commands, unreachable or wrong systems ----


def _closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_folder_or_a_file_in_the_wrong_place_is_named_as_such(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(REPO)
    assert run_cli(["features", "generate", "dataflows", "--out", str(tmp_path)], monkeypatch) == 2
    assert "dataflows: is a folder" in _one_line_error(capsys.readouterr().err)
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    assert run_cli(["features", "generate", str(CHECKLIST), "--out", str(a_file)], monkeypatch) == 2
    assert "--out" in _one_line_error(capsys.readouterr().err)
    assert run_cli(["features", "check", str(CHECKLIST), str(a_file)], monkeypatch) == 2
    assert "notes.txt: is a file" in _one_line_error(capsys.readouterr().err)


def test_signoff_can_select_the_merge_promise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The sign-off has a merge column, so --promise merge must be selectable (replay: fast)."""
    monkeypatch.chdir(REPO)
    doc = "tests/fixtures/dataflows/merge-chargebee-invoiced.rst"
    reports = tmp_path / "reports"
    args = ["signoff", doc, "--promise", "merge", "--reports", str(reports)]
    assert run_cli(args, monkeypatch) == 0
    outcomes = (reports / "outcomes.jsonl").read_text().splitlines()
    assert outcomes and all(json.loads(line)["promise"] == "merge" for line in outcomes)


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("no-such-syncer-xyz --once", "cannot find 'no-such-syncer-xyz' on PATH"),
        ("./missing-syncer.sh", "./missing-syncer.sh does not exist"),
        ("README.md --once", "cannot find 'README.md'"),
        ("echo 'unclosed", "check its quotes"),
    ],
)
def test_a_sut_command_the_shell_cannot_run_is_refused_before_any_scenario(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: str,
    expected: str,
) -> None:
    monkeypatch.chdir(REPO)
    reports = tmp_path / "reports"
    args = ["signoff", str(CHECKLIST), "--mode", "sandbox", "--sut-command", command,
            "--reports", str(reports)]  # fmt: skip
    assert run_cli(args, monkeypatch) == 2
    assert expected in _one_line_error(capsys.readouterr().err)
    assert not reports.exists()  # no NO-GO sign-off for a typo


def test_a_sut_command_that_is_not_executable_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from talkqa.sut import SutError, check_command

    script = tmp_path / "sync.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    with pytest.raises(SutError, match="not executable: `chmod"):
        check_command("./sync.sh --once", cwd=tmp_path)
    script.chmod(0o755)
    check_command("./sync.sh --once", cwd=tmp_path)
    check_command("cd . && ./sync.sh", cwd=tmp_path)  # shell builtins are fine too


def test_sandbox_mode_with_a_stale_sandbox_env_is_one_line_not_a_no_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(REPO)
    port = _closed_port()
    monkeypatch.setenv("CHARGEBEE_BASE_URL", f"http://127.0.0.1:{port}/api/v2")
    monkeypatch.setenv("INVOICED_BASE_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("CHARGEBEE_API_KEY", "k")
    monkeypatch.setenv("INVOICED_API_KEY", "k")
    reports = tmp_path / "reports"
    args = ["signoff", str(CHECKLIST), "--mode", "sandbox", "--reports", str(reports)]
    assert run_cli([*args, "--reset"], monkeypatch) == 2
    line = _one_line_error(capsys.readouterr().err)
    assert f"CHARGEBEE_BASE_URL=http://127.0.0.1:{port}/api/v2 does not answer" in line
    assert "talkqa sandbox serve" in line and not reports.exists()


def test_sandboxes_the_user_started_are_never_reset_without_saying_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("CHARGEBEE_BASE_URL", "http://127.0.0.1:9/api/v2")
    monkeypatch.setenv("INVOICED_BASE_URL", "http://127.0.0.1:9")
    reports = tmp_path / "reports"
    args = ["signoff", str(CHECKLIST), "--mode", "sandbox", "--reports", str(reports)]
    assert run_cli(args, monkeypatch) == 2  # refused before any request: nothing is reset
    line = _one_line_error(capsys.readouterr().err)
    assert "are yours: pass --reset" in line and "http://127.0.0.1:9/api/v2" in line
    assert not reports.exists()


def test_pytest_arguments_after_a_double_dash_reach_pytest_and_the_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    reports = tmp_path / "reports"
    args = ["signoff", str(CHECKLIST), "--reports", str(reports), "--", "-k", "currency"]
    assert run_cli(args, monkeypatch) == 0
    outcomes = (reports / "outcomes.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(outcomes) == 2  # the two scenarios whose names say "currency"
    page = (reports / "signoff.md").read_text(encoding="utf-8")
    assert "The run was given pytest arguments: -k currency." in page
    assert "| pytest arguments | -k currency |" in page


def test_ctrl_c_during_the_feature_suite_is_exit_130_and_no_sign_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The suite runs in the sign-off's own process, where pytest turns Ctrl-C into an exit
    code of its own: it must still stop `talkqa signoff` as interrupted, with no page."""
    plugin = tmp_path / "ctrl_c_in_a_scenario.py"
    plugin.write_text("def pytest_runtest_call(item):\n    raise KeyboardInterrupt\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(REPO)
    reports = tmp_path / "reports"
    args = ["signoff", str(CHECKLIST), "--reports", str(reports), "--", "-p", plugin.stem]
    assert run_cli(args, monkeypatch) == 130
    assert "KeyboardInterrupt" in capsys.readouterr().out  # the suite's own word on it
    assert not (reports / "signoff.md").exists()


def test_wrong_keys_or_an_unreachable_vendor_stop_a_signoff_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from talkqa.sandbox.server import running_sandboxes

    monkeypatch.chdir(REPO)
    reports = tmp_path / "reports"
    with running_sandboxes(seed=0) as sandboxes:
        for name, value in sandboxes.env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("INVOICED_API_KEY", "wrong")
        for mode in ("live", "sandbox"):
            args = ["signoff", str(CHECKLIST), "--mode", mode, "--reports", str(reports)]
            args += ["--reset"] if mode == "sandbox" else []  # they are the test's own
            assert run_cli(args, monkeypatch) == 2
            line = _one_line_error(capsys.readouterr().err)
            assert "invoiced customers: HTTP 401" in line and "check INVOICED_API_KEY" in line
    port = _closed_port()
    monkeypatch.setenv("INVOICED_API_KEY", "k")
    monkeypatch.setenv("CHARGEBEE_BASE_URL", f"http://127.0.0.1:{port}/api/v2")
    assert run_cli(["signoff", str(CHECKLIST), "--mode", "live"], monkeypatch) == 2
    line = _one_line_error(capsys.readouterr().err)
    assert f"GET http://127.0.0.1:{port}/api/v2/customers" in line
    assert "check CHARGEBEE_BASE_URL" in line
    assert not reports.exists()


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({"CHARGEBEE_BASE_URL": "127.0.0.1:8080/api/v2"}, "CHARGEBEE_BASE_URL='127.0.0.1"),
        ({"INVOICED_BASE_URL": "api.invoiced.com"}, "INVOICED_BASE_URL='api.invoiced.com'"),
        ({"CHARGEBEE_SITE": "acme.chargebee.com"}, "is not a site name"),
    ],
)
def test_a_malformed_url_or_site_is_named_before_any_request(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    no_vendor_env: None,
    variables: dict[str, str],
    expected: str,
) -> None:
    monkeypatch.setenv("CHARGEBEE_API_KEY", "k")
    monkeypatch.setenv("INVOICED_API_KEY", "k")
    monkeypatch.setenv("CHARGEBEE_SITE", "acme-test")
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert run_cli(["check", str(CHECKLIST)], monkeypatch) == 2
    assert expected in _one_line_error(capsys.readouterr().err)


def test_features_generate_reports_parse_issues_like_parse_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    blank = tmp_path / "Chargebee-to-Dataflow.rst"  # the file name cannot bind the blank target
    text = CHECKLIST.read_text(encoding="utf-8").replace("Chargebee to Invoiced", "Chargebee to ")
    blank.write_text(text.replace("Invoiced ", " "), encoding="utf-8")
    args = ["features", "generate", str(blank), "--out", str(tmp_path / "features")]
    assert run_cli(args, monkeypatch) == 0
    assert "blank-system" in capsys.readouterr().err
    assert run_cli(["features", "generate", str(CHECKLIST), "--out", str(tmp_path / "f2")],
                   monkeypatch) == 0  # fmt: skip
    assert capsys.readouterr().err == ""


def test_a_state_or_reports_path_of_the_wrong_kind_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    port = _closed_port()  # the state file is opened before any request
    monkeypatch.setenv("CHARGEBEE_BASE_URL", f"http://127.0.0.1:{port}/api/v2")
    monkeypatch.setenv("INVOICED_BASE_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("CHARGEBEE_API_KEY", "k")
    monkeypatch.setenv("INVOICED_API_KEY", "k")
    assert run_cli(["sync", str(CHECKLIST), "--state", str(tmp_path)], monkeypatch) == 2
    assert "is a folder" in _one_line_error(capsys.readouterr().err)
    garbage = tmp_path / "links.sqlite"
    garbage.write_text("not a database\n" * 100)
    assert run_cli(["sync", str(CHECKLIST), "--state", str(garbage)], monkeypatch) == 2
    line = _one_line_error(capsys.readouterr().err)
    assert "links.sqlite: file is not a database" in line and "delete the file" in line
    monkeypatch.chdir(REPO)
    args = ["signoff", str(CHECKLIST), "--reports", str(garbage)]
    assert run_cli(args, monkeypatch) == 2
    assert "--reports" in _one_line_error(capsys.readouterr().err)


def test_the_default_link_store_is_one_per_pair_of_systems(monkeypatch: pytest.MonkeyPatch) -> None:
    from talkqa.judge_cli import default_state

    monkeypatch.setenv("CHARGEBEE_API_KEY", "k")
    monkeypatch.setenv("INVOICED_API_KEY", "k")
    monkeypatch.setenv("CHARGEBEE_BASE_URL", "http://127.0.0.1:1001/api/v2")
    monkeypatch.setenv("INVOICED_BASE_URL", "http://127.0.0.1:1002")
    first = default_state("chargebee-invoiced")
    assert first == default_state("chargebee-invoiced")
    assert first.parent.name == ".talkqa" and first.name.startswith("chargebee-invoiced-")
    monkeypatch.setenv("INVOICED_BASE_URL", "http://127.0.0.1:2002")  # restarted elsewhere
    assert default_state("chargebee-invoiced") != first
