"""The system-under-test drivers: environment, errors, settling, and the in-process sync."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from talkqa.dataflow.spec import DataflowSpec, DatatypeRef, Section, SectionKind
from talkqa.sut import CommandDriver, ReferenceDriver, ReplayCommandDriver, SutError

ENV = {
    "CHARGEBEE_SITE": "acme-test",
    "CHARGEBEE_API_KEY": "cb_secret_key",
    "CHARGEBEE_BASE_URL": "http://127.0.0.1:1/api/v2",
    "INVOICED_API_KEY": "inv_secret_key",
    "INVOICED_BASE_URL": "http://127.0.0.1:2",
}


def _spec() -> DataflowSpec:
    return DataflowSpec(
        file="x.rst",
        source="Chargebee",
        target="Invoiced",
        sections=(
            Section(
                index=0,
                heading="Chargebee Customer to Invoiced Customers person",
                source=DatatypeRef(system="Chargebee", datatype="Customer"),
                target=DatatypeRef(system="Invoiced", datatype="Customers person"),
                kind=SectionKind.EVERY,
                file="x.rst",
                line=1,
            ),
        ),
    )


def _python(code: str) -> str:
    return f"{sys.executable} -c '{code}'"


def test_command_driver_gives_the_command_the_vendor_settings(tmp_path: Path) -> None:
    out = tmp_path / "env.json"
    script = tmp_path / "sync.py"
    script.write_text(
        "import json, os, sys\n"
        f"names = {list(ENV)!r}\n"
        "json.dump({n: os.environ.get(n) for n in names}, open(sys.argv[1], 'w'))\n"
    )
    summary = CommandDriver(f"{sys.executable} {script} {out}", ENV).run(_spec())
    assert json.loads(out.read_text()) == ENV
    assert summary.details["exit_code"] == 0


def test_failing_command_is_one_clear_error_with_its_stderr_tail() -> None:
    code = 'import sys; print("starting"); sys.stderr.write("boom: bad key\\n"); sys.exit(3)'
    with pytest.raises(SutError) as caught:
        CommandDriver(_python(code), ENV).run(_spec())
    message = str(caught.value)
    assert "exit code 3" in message and "boom: bad key" in message
    assert "\n" not in message


def test_command_driver_refuses_empty_command_and_missing_settings() -> None:
    with pytest.raises(SutError, match="empty"):
        CommandDriver("  ", ENV)
    partial = {k: v for k, v in ENV.items() if k != "INVOICED_API_KEY"}
    with pytest.raises(SutError, match="INVOICED_API_KEY"):
        CommandDriver("true", partial)


def test_command_driver_polls_until_the_checks_settle() -> None:
    answers: Iterator[int] = iter([1, 2, 3, 3, 99])
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    driver = CommandDriver(
        "true", ENV, probe=lambda _s: next(answers), sleep=sleep, clock=lambda: now[0]
    )
    assert driver.run(_spec()).details["polls"] == 4


def test_command_driver_stops_polling_at_the_timeout() -> None:
    counter = iter(range(1000))
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    driver = CommandDriver(
        "true",
        ENV,
        probe=lambda _s: next(counter),  # never settles
        timeout=5.0,
        interval=1.0,
        sleep=sleep,
        clock=lambda: now[0],
    )
    assert driver.run(_spec()).details["polls"] == 6


def test_replay_mode_cannot_run_a_command() -> None:
    with pytest.raises(SutError, match="cannot run in replay mode"):
        ReplayCommandDriver("./my-sync").run(_spec())


def test_reference_driver_links_a_customer_through_the_sandboxes(tmp_path: Path) -> None:
    from talkqa.sandbox.server import running_sandboxes
    from talkqa.systems.connect import Systems
    from talkqa.systems.settings import Settings

    with running_sandboxes(seed=0) as sandboxes, httpx.Client(timeout=10) as client:
        systems = Systems.connect(Settings.from_env(sandboxes.env), client)
        systems.chargebee.customers.create({"id": "c1", "first_name": "Ada", "last_name": "L"})
        driver = ReferenceDriver(systems, tmp_path / "state" / "links.sqlite")
        driver.run(_spec())
        people = [c for c in systems.invoiced.customers.list() if c.get("type") == "person"]
    assert [p["metadata"]["chargebee_id"] for p in people] == ["c1"]
    assert driver.last is not None and driver.last.totals["created"] == 1
    assert (tmp_path / "state" / "links.sqlite").is_file()
