"""The service driver: promises judged as eventually holding, within a deadline, with the
latency of the first observation that held; end to end against the reference service."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from talkqa.errors import UserError
from talkqa.sandbox.server import RunningSandboxes
from talkqa.sut import ServiceDriver, eventually, format_duration, parse_duration
from tests import sandbox_fixtures
from tests.cli_runner import Ran, run_cli
from tests.service_process import DOC, ROOT, watching

served = sandbox_fixtures.served
Cli = Callable[..., Ran]


class FakeTime:
    """A clock that moves only when slept on."""

    def __init__(self) -> None:
        self.now = 100.0
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(round(seconds, 6))
        self.now += seconds


def test_eventually_holds_at_the_first_good_observation_and_says_when() -> None:
    time = FakeTime()
    answers = iter(["missing", "missing", None])
    ended = eventually(lambda: next(answers), since=99.0, within=60, poll=1,
                       clock=time.clock, sleep=time.sleep)
    assert (ended.held, ended.polls, ended.last_failure) == (True, 3, None)
    assert time.waits == [1, 1.5]  # backoff by half
    assert ended.latency == pytest.approx(1 + 1 + 1.5)  # from the change, not from the call


def test_eventually_gives_the_last_failure_at_the_deadline() -> None:
    time = FakeTime()
    seen = iter(f"missing {n}" for n in range(100))
    ended = eventually(lambda: next(seen), since=100.0, within=10, poll=0.5,
                       clock=time.clock, sleep=time.sleep)
    assert not ended.held and ended.latency is None
    assert time.now == 110.0  # the last observation falls on the deadline
    assert max(time.waits) <= 1.0  # waits grow to a tenth of --within at most
    assert ended.last_failure == f"missing {ended.polls - 1}"


def test_the_driver_times_from_the_change_and_keeps_quiet_only_without_one() -> None:
    time = FakeTime()
    driver = ServiceDriver(within=5, poll=1, quiet=3, clock=time.clock, sleep=time.sleep)
    driver.run(None)  # type: ignore[arg-type]  # the spec is not read
    assert driver.changed_at == 100.0 and time.waits == []
    time.now = 104.0
    driver.mark_change()  # an edit
    driver.run(None)  # type: ignore[arg-type]
    assert driver.changed_at == 104.0 and time.waits == []
    summary = driver.run(None)  # type: ignore[arg-type]  # nothing changed: the quiet window
    assert time.waits == [3] and summary.details["quiet_window_s"] == 3


@pytest.mark.parametrize(("text", "seconds", "shown"), [
    ("60s", 60, "60s"), ("10m", 600, "10m"), ("500ms", 0.5, "500ms"), ("1.5", 1.5, "1.5s")])
def test_durations(text: str, seconds: float, shown: str) -> None:
    assert parse_duration(text, "--within") == seconds
    assert format_duration(seconds) == shown


@pytest.mark.parametrize("text", ["", "soon", "0s", "-1s", "5d"])
def test_a_bad_duration_is_one_line(text: str) -> None:
    with pytest.raises(UserError, match="--within"):
        parse_duration(text, "--within")


# ---------------------------------------------------------------- signoff --sut-service
def signoff(cli: Cli, served: RunningSandboxes, reports: Path, *args: str) -> Ran:
    return cli(
        ["signoff", str(DOC), "--mode", "sandbox", "--sut-service", "--reset",
         "--reports", str(reports), "--promise", "exists", *args, "--", "-k", "Customer"],
        env={**os.environ, **served.env}, cwd=ROOT)


def outcomes(reports: Path) -> list[dict[str, object]]:
    lines = (reports / "outcomes.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_a_webhook_driven_service_is_go_with_its_latency(
    served: RunningSandboxes, tmp_path: Path, cli: Cli
) -> None:
    with watching(["--webhook-port", "0", "--state", str(tmp_path / "s.sqlite")],
                  served) as watch:
        watch.wait_line("pass 1 (start)")
        done = signoff(cli, served, tmp_path / "r", "--within", "20s", "--poll", "0.1s",
                       "--latency-budget", "15s")
        assert watch.interrupt() == 130
    httpx.delete(f"{served.chargebee_base_url.removesuffix('/api/v2')}/__admin/webhooks",
                 auth=(served.env["CHARGEBEE_API_KEY"], "")).raise_for_status()
    assert done.returncode == 0, done.stdout + done.stderr
    (outcome,) = outcomes(tmp_path / "r")
    assert outcome["status"] == "passed"
    assert isinstance(outcome["latency_s"], float) and outcome["latency_s"] < 20
    # each source entity the scenario made has its own figure, none later than the scenario's
    per_entity = outcome["entity_latency_s"]
    assert isinstance(per_entity, dict) and len(per_entity) == 3, per_entity
    assert all(0 <= seconds <= outcome["latency_s"] for seconds in per_entity.values())
    page = (tmp_path / "r" / "signoff.md").read_text()
    assert "## Propagation latency" in page and "p95 at most 15.0s per section" in page
    assert any(f"{entity} (" in page for entity in per_entity)  # the slowest are named


def test_a_service_slower_than_within_is_no_go_saying_so(
    served: RunningSandboxes, tmp_path: Path, cli: Cli
) -> None:
    with watching(["--interval", "600", "--state", str(tmp_path / "s.sqlite")],
                  served) as watch:
        watch.wait_line("pass 1 (start)")
        done = signoff(cli, served, tmp_path / "r", "--within", "1s", "--poll", "0.2s")
        assert watch.interrupt() == 130
    assert done.returncode == 1, done.stdout + done.stderr
    (outcome,) = outcomes(tmp_path / "r")
    assert outcome["status"] == "failed" and outcome["latency_s"] is None
    assert outcome["reason"] == "did not hold within 1s"
    page = (tmp_path / "r" / "signoff.md").read_text()
    assert "exists & linked (did not hold within 1s: 3 missing)" in page


# refusals are judged in-process (main, as the console script runs it): the exit code and the
# one line on stderr are what is asserted, not the process boundary
def test_a_latency_budget_needs_a_service(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(ROOT)
    code = run_cli(["signoff", str(DOC), "--latency-budget", "1s"], monkeypatch)
    assert code == 2 and "add --sut-service" in capsys.readouterr().err


@pytest.mark.parametrize(("args", "env", "message"), [
    (["--mode", "replay"], {}, "cannot be judged in replay mode"),
    (["--mode", "replay", "--latency-budget", "1s"], {}, "cannot be judged in replay mode"),
    (["--mode", "sandbox", "--sut-command", "true"], {}, "two kinds of syncer"),
    (["--mode", "sandbox"], {"CHARGEBEE_BASE_URL": ""}, "set CHARGEBEE_BASE_URL"),
    (["--mode", "sandbox", "--within", "soon"], {"CHARGEBEE_BASE_URL": "http://127.0.0.1:1",
                                                 "INVOICED_BASE_URL": "http://127.0.0.1:2"},
     "--within 'soon'"),
])
def test_sut_service_refuses_what_it_cannot_judge(
    args: list[str], env: dict[str, str], message: str,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(ROOT)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code = run_cli(["signoff", str(DOC), "--sut-service", *args], monkeypatch)
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err and "Traceback" not in err
