"""`talkqa sync` as people run it: two at once on one store, another account, failed entities."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import httpx
import pytest

from talkqa.sandbox.server import RunningSandboxes, running_sandboxes
from tests.cli_runner import run_cli
from tests.sandbox_fixtures import sandbox_systems

REPO = Path(__file__).resolve().parents[1]
CHECKLIST = REPO / "dataflows" / "chargebee-invoiced.rst"
SYNC = [sys.executable, "-c", "from talkqa.cli import main; main()", "sync", str(CHECKLIST)]


def _seed(sandboxes: RunningSandboxes, customers: int) -> None:
    with httpx.Client() as http:
        systems = sandbox_systems(http, sandboxes.chargebee_base_url, sandboxes.invoiced_base_url)
        for n in range(customers):
            systems.chargebee.customers.create({"id": f"c{n}", "first_name": f"P{n}"})


def _claims(sandboxes: RunningSandboxes) -> Counter[str]:
    with httpx.Client() as http:
        systems = sandbox_systems(http, sandboxes.chargebee_base_url, sandboxes.invoiced_base_url)
        return Counter(
            str(p["metadata"].get("chargebee_id")) for p in systems.invoiced.customers.list()
        )


def test_two_syncs_started_together_on_one_store(tmp_path: Path) -> None:
    state = tmp_path / "links.sqlite"
    with running_sandboxes(seed=0) as sandboxes:
        _seed(sandboxes, 120)
        env = {**sandboxes.env, "PATH": "/usr/bin:/bin"}
        runs = [
            subprocess.Popen(
                [*SYNC, "--state", str(state), "--json"],
                env=env,
                cwd=tmp_path,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        outputs = [run.communicate(timeout=120) for run in runs]
        assert [run.returncode for run in runs] == [0, 0], outputs
        for _out, err in outputs:  # a run that had to wait said so, in one line
            assert err == "" or (
                err.startswith("talkqa: another sync holds ") and err.count("\n") == 1
            )
        claims = _claims(sandboxes)
    assert sorted(claims) == sorted(f"c{n}" for n in range(120))  # 0 missing
    assert set(claims.values()) == {1}  # 0 duplicates
    with sqlite3.connect(state) as db:
        states = Counter(state for (state,) in db.execute("SELECT state FROM links"))
    assert states["tombstone"] == 0 and states["linked"] == 120


def test_failed_entities_exit_5_and_a_rerun_completes(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # every person's create after the first meets a 503 for as long as the rule holds (a 429 is
    # waited out, never given up while the server answers: tests/test_systems_limits.py)
    with running_sandboxes(seed=0, faults="invoiced.POST/customers=503,retry_after=0,skip=1") as sb:
        for name, value in sb.env.items():
            monkeypatch.setenv(name, value)
        _seed(sb, 3)
        state = tmp_path / "links.sqlite"
        assert run_cli(["sync", str(CHECKLIST), "--state", str(state)], monkeypatch) == 5
        captured = capsys.readouterr()
        assert captured.err.strip().splitlines() == [
            "talkqa: 2 entities failed: they are retried on the next run (see the notes above)"
        ]
        assert "failed: c1: invoiced customers: HTTP 503" in captured.out
        sb.sandbox.faults.clear()
        assert run_cli(["sync", str(CHECKLIST), "--state", str(state)], monkeypatch) == 0
        assert sorted(_claims(sb)) == ["c0", "c1", "c2"]


def test_a_store_of_another_account_is_refused_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "links.sqlite"
    with running_sandboxes(seed=0) as first:
        for name, value in first.env.items():
            monkeypatch.setenv(name, value)
        _seed(first, 2)
        assert run_cli(["sync", str(CHECKLIST), "--state", str(state)], monkeypatch) == 0
    with running_sandboxes(seed=0) as other:  # other ports: other accounts
        for name, value in other.env.items():
            monkeypatch.setenv(name, value)
        capsys.readouterr()
        assert run_cli(["sync", str(CHECKLIST), "--state", str(state)], monkeypatch) == 2
        [line] = capsys.readouterr().err.strip().splitlines()
        assert "belong to another chargebee and invoiced account" in line and "--fresh" in line
        args = ["sync", str(CHECKLIST), "--state", str(state), "--fresh", "--json"]
        assert run_cli(args, monkeypatch) == 0


def test_ctrl_c_says_what_was_done_and_that_a_rerun_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import reference_sync.engine as engine
    from reference_sync.summary import SectionSummary, SyncSummary

    def interrupted(*_args: object, **_kwargs: object) -> SyncSummary:
        done = SectionSummary(index=0, heading="customers", created=3, updated=1)
        done.updated_to_target = 1
        raise engine.SyncInterrupted(SyncSummary(sections=[done]))

    monkeypatch.setattr(engine, "run_sync", interrupted)
    for name in ("CHARGEBEE_API_KEY", "INVOICED_API_KEY"):
        monkeypatch.setenv(name, "k")
    monkeypatch.setenv("CHARGEBEE_BASE_URL", "http://127.0.0.1:9/api/v2")
    monkeypatch.setenv("INVOICED_BASE_URL", "http://127.0.0.1:9")
    state = tmp_path / "links.sqlite"
    assert run_cli(["sync", str(CHECKLIST), "--state", str(state)], monkeypatch) == 130
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line == (
        f"talkqa: interrupted after 4 writes (3 created, 1 updated, 0 deleted), each recorded "
        f"in {state}: rerun to resume"
    )
