"""Service defects: each webhook-driven syncer of `defects.service` gets a NO-GO naming its
promise, and the same syncers without the fault get GO on the same scenarios."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from defects.service import SERVICE_CATALOGUE, SERVICE_CONTROL, ServiceDefect
from talkqa.sandbox.server import RunningSandboxes
from tests import sandbox_fixtures
from tests.cli_runner import Ran
from tests.service_process import ROOT, Watch, serving, watching

served = sandbox_fixtures.served
Cli = Callable[..., Ran]


def signoff(cli: Cli, served: RunningSandboxes, reports: Path, defect: ServiceDefect
            ) -> dict[str, object]:
    done = cli(
        ["signoff", defect.checklist, "--mode", "sandbox", "--sut-service", "--reset",
         "--within", "5s", "--poll", "0.2s", "--reports", str(reports),
         "--promise", defect.promise.value, "--", "-k", defect.scenarios],
        env={**os.environ, **served.env}, cwd=ROOT)
    assert done.returncode in (0, 1), done.stdout + done.stderr
    return dict(json.loads((reports / "signoff.json").read_text(encoding="utf-8")))


def judged(cli: Cli, served: RunningSandboxes, service: Watch, reports: Path,
           defect: ServiceDefect, ready: str = "listening on") -> dict[str, object]:
    try:
        service.wait_line(ready)
        return signoff(cli, served, reports, defect)
    finally:
        assert service.interrupt() == 130
        httpx.delete(f"{served.chargebee_base_url.removesuffix('/api/v2')}/__admin/webhooks",
                     auth=(served.env["CHARGEBEE_API_KEY"], "")).raise_for_status()


@pytest.mark.parametrize("defect", SERVICE_CATALOGUE, ids=lambda d: d.name)
def test_each_service_defect_is_no_go_on_its_promise(
    served: RunningSandboxes, tmp_path: Path, defect: ServiceDefect, cli: Cli
) -> None:
    with serving([sys.executable, "-m", "defects.service", defect.name], served) as service:
        page = judged(cli, served, service, tmp_path, defect)
    assert page["verdict"] == "NO-GO"
    promises = {p for b in page["broken_sections"] for p in b["promises"]}  # type: ignore[attr-defined]
    assert promises == {defect.promise.value}
    assert all("did not hold within 5s" in line for line in page["broken"])  # type: ignore[attr-defined]


@pytest.mark.parametrize("defect", SERVICE_CATALOGUE, ids=lambda d: d.name)
def test_without_the_fault_the_same_scenarios_are_go(
    served: RunningSandboxes, tmp_path: Path, defect: ServiceDefect, cli: Cli
) -> None:
    if defect.passes:  # its control is the reference service on webhooks
        doc = ROOT / defect.checklist
        with watching(["--webhook-port", "0", "--state", str(tmp_path / "s.sqlite")], served,
                      doc) as service:
            page = judged(cli, served, service, tmp_path / "r", defect, ready="pass 1 (start)")
    else:
        argv = [sys.executable, "-m", "defects.service", SERVICE_CONTROL.name]
        with serving(argv, served) as service:
            page = judged(cli, served, service, tmp_path / "r", defect)
    assert page["verdict"] == "GO", page["broken"]
