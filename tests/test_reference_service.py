"""The reference sync as a service (`talkqa sync --watch`): its loop, its webhook listener,
and the command end to end against the sandboxes (seconds, not minutes)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from reference_sync.service import Feeds, Service, Wakeups, WebhookAuth, WebhookListener
from talkqa.sandbox.server import RunningSandboxes
from tests import sandbox_fixtures
from tests.service_process import DOC, ROOT, TALKQA, serving, watching

served = sandbox_fixtures.served


# ---------------------------------------------------------------- the loop
class Script:
    """A fake pass that stops the service after ``passes`` passes."""

    def __init__(self, wakeups: Wakeups, passes: int, fail_at: int = 0) -> None:
        self.wakeups, self.passes, self.fail_at = wakeups, passes, fail_at
        self.fresh: list[bool] = []

    def __call__(self, fresh: bool) -> str:
        self.fresh.append(fresh)
        if len(self.fresh) >= self.passes:
            self.wakeups.stop()
        if len(self.fresh) == self.fail_at:
            raise RuntimeError("vendor down")
        return "done"


def test_on_a_schedule_a_pass_at_start_then_every_interval() -> None:
    wakeups = Wakeups()
    script = Script(wakeups, passes=3, fail_at=2)
    service = Service(script, wakeups, interval=0.01, webhooks=False)
    service.serve()
    assert [(p.number, p.why) for p in service.passes] == [
        (1, "start"), (2, "interval"), (3, "interval")]
    assert service.passes[1].error == "RuntimeError: vendor down"  # logged, kept serving


def test_a_reset_makes_the_next_pass_forget_its_links() -> None:
    wakeups = Wakeups()
    generations = iter([1, 1, 2, 2])
    script = Script(wakeups, passes=3)
    service = Service(script, wakeups, interval=0.01, webhooks=False,
                      generation=lambda: next(generations))
    service.serve()
    assert script.fresh == [False, False, True]
    assert service.passes[2].why == "interval; sandbox reset, links forgotten"


def test_webhooks_wake_a_pass_and_quiet_feeds_do_not() -> None:
    wakeups = Wakeups()
    newest = iter([("e1", "1")] * 4 + [("e2", "1")] * 10)
    feeds = Feeds(lambda: next(newest))
    script = Script(wakeups, passes=3)
    service = Service(script, wakeups, interval=0.01, webhooks=True, feeds=feeds)
    wakeups.poke("webhook: chargebee customer_created e1")
    service.serve()
    # start; the webhook; then quiet checks until the feed moved without a webhook
    assert [p.why for p in service.passes] == [
        "start", "webhook: chargebee customer_created e1", "catch-up: events feed"]


# ---------------------------------------------------------------- the listener
def test_the_listener_takes_only_deliveries_it_can_authenticate() -> None:
    wakeups = Wakeups()
    auth = WebhookAuth("u", "p", "whsec")
    with WebhookListener(0, auth, wakeups) as listener, httpx.Client() as http:
        event = json.dumps({"id": "ev_1", "event_type": "customer_created"}).encode()
        basic = "Basic " + base64.b64encode(b"u:p").decode()
        assert http.post(listener.url("chargebee"), content=event,
                         headers={"authorization": basic}).status_code == 200
        assert http.post(listener.url("chargebee"), content=event,
                         headers={"authorization": "Basic eDp5"}).status_code == 401
        signed = json.dumps({"id": 7, "type": "invoice.created"}).encode()
        signature = hmac.new(b"whsec", signed, hashlib.sha256).hexdigest()
        assert http.post(listener.url("invoiced"), content=signed,
                         headers={"x-invoiced-signature": signature}).status_code == 200
        assert http.post(listener.url("invoiced"), content=signed + b" ",
                         headers={"x-invoiced-signature": signature}).status_code == 401
        assert http.post(listener.url("chargebee"), content=b"[]",
                         headers={"authorization": basic}).status_code == 400
        assert http.post(listener.url("other"), content=event).status_code == 404
    assert wakeups.wait(0) == ["webhook: chargebee customer_created ev_1",
                               "webhook: invoiced invoice.created 7"]


# ---------------------------------------------------------------- end to end
def persons(served: RunningSandboxes) -> list[str]:
    answer = httpx.get(f"{served.invoiced_base_url}/customers",
                       auth=(served.env["INVOICED_API_KEY"], ""))
    return [c["metadata"].get("chargebee_id") for c in answer.json()]


def create_customer(served: RunningSandboxes, ident: str) -> None:
    httpx.post(f"{served.chargebee_base_url}/customers", data={"id": ident, "first_name": ident},
               auth=(served.env["CHARGEBEE_API_KEY"], "")).raise_for_status()


def test_a_webhook_driven_service_syncs_each_change_and_stops_on_ctrl_c(
    served: RunningSandboxes, tmp_path: Path
) -> None:
    served.reset()
    with watching(["--webhook-port", "0", "--state", str(tmp_path / "s.sqlite")],
                  served) as watch:
        watch.wait_line("registered with the sandboxes")
        watch.wait_line("pass 1 (start)")
        create_customer(served, "c1")
        watch.wait_line("webhook: chargebee customer_created", "1 created")
        assert persons(served) == ["c1"]
        assert watch.interrupt() == 130
    assert "stopped after" in watch.lines[-1]
    httpx.delete(f"{served.chargebee_base_url.removesuffix('/api/v2')}/__admin/webhooks",
                 auth=(served.env["CHARGEBEE_API_KEY"], "")).raise_for_status()


def test_a_scheduled_service_notices_a_sandbox_reset(
    served: RunningSandboxes, tmp_path: Path
) -> None:
    served.reset()
    with watching(["--interval", "0.2", "--state", str(tmp_path / "s.sqlite")],
                  served) as watch:
        watch.wait_line("pass 1 (start)")
        create_customer(served, "c1")
        watch.wait_line("(interval)", "1 created")
        served.reset()
        watch.wait_line("sandbox reset, links forgotten")
        create_customer(served, "c2")  # before or after that pass: c2 is synced either way
        watch.wait_line("1 created", count=2)
        assert persons(served) == ["c2"]
        assert watch.interrupt() == 130


def test_sigterm_stops_the_service_as_ctrl_c_does(
    served: RunningSandboxes, tmp_path: Path
) -> None:
    """How systemd, `docker stop` and CI runners stop a service: the same clean stop as
    Ctrl-C (its summary line, no traceback), with SIGTERM's exit status, 143."""
    served.reset()
    store = tmp_path / "s.sqlite"
    with watching(["--interval", "0.2", "--state", str(store)], served) as watch:
        watch.wait_line("pass 1 (start)")
        create_customer(served, "c1")
        watch.wait_line("(interval)", "1 created")
        assert watch.interrupt(signal.SIGTERM) == 143
    passes = [line for line in watch.lines if line.startswith("talkqa: pass ")]
    assert watch.lines[-1] == (
        f"talkqa: stopped after {len(passes)} passes (SIGTERM); a rerun resumes from {store}"
    )
    assert not any("Traceback" in line for line in watch.lines)
    assert persons(served) == ["c1"]


def test_sigterm_stops_a_one_shot_sync_cleanly_and_a_rerun_completes_it(
    served: RunningSandboxes, tmp_path: Path
) -> None:
    """A scheduler's timeout or `docker stop` ends a plain `talkqa sync` with SIGTERM: the
    writes in flight finish and are recorded, the last line says what was done, exit 143;
    the rerun creates the rest, none twice."""
    from talkqa.systems.connect import Systems
    from talkqa.systems.settings import Settings
    from talkqa.systems.wire import vendor_client

    served.reset()
    served.seed(customers=3000)  # seconds of writes: the signal lands mid-sync
    store = tmp_path / "s.sqlite"
    with serving([TALKQA, "sync", str(DOC), "--state", str(store)], served) as sync:
        while not served.stats()["requests"].get("invoiced POST /customers"):
            assert sync.proc.poll() is None, sync.lines  # still running, not yet writing
            time.sleep(0.01)  # the sandbox serves from this process: leave it the GIL
        code = sync.interrupt(signal.SIGTERM)
        assert code == 143, "\n".join(sync.lines)
    [line] = [line for line in sync.lines if "SIGTERM" in line]
    assert line.startswith("talkqa: stopped by SIGTERM after ")
    assert line.endswith(f"each recorded in {store}: rerun to resume")
    assert not any("Traceback" in line for line in sync.lines)
    rerun = subprocess.run([TALKQA, "sync", str(DOC), "--state", str(store)],
                           env={**os.environ, **served.env}, capture_output=True, text=True,
                           cwd=ROOT, check=False)
    assert rerun.returncode == 0, rerun.stderr
    with vendor_client(10.0) as http:
        systems = Systems.connect(Settings.from_env(served.env), http)
        linked = [c["metadata"].get("chargebee_id") for c in systems.invoiced.customers.list()]
    assert len(linked) == len(set(linked)) == 3000


def test_watch_options_need_watch(tmp_path: Path) -> None:
    done = subprocess.run([TALKQA, "sync", str(DOC), "--interval",
                           "5"], capture_output=True, text=True, cwd=ROOT, check=False)
    assert done.returncode == 2
    assert "options of --watch" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("extra", [[], ["TALKQA_WEBHOOK_USERNAME"]])
def test_webhooks_from_a_vendor_need_their_credentials(extra: list[str]) -> None:
    env = {**os.environ, "CHARGEBEE_SITE": "acme-test", "CHARGEBEE_API_KEY": "k",
           "INVOICED_API_KEY": "k", **{name: "x" for name in extra}}
    env.pop("CHARGEBEE_BASE_URL", None)
    env.pop("INVOICED_BASE_URL", None)
    done = subprocess.run([TALKQA, "sync", str(DOC), "--watch",
                           "--webhook-port", "0", "--state", "/nonexistent/s.sqlite"],
                          capture_output=True, text=True, cwd=ROOT, check=False, env=env)
    assert done.returncode == 2, done.stderr
    assert "TALKQA_WEBHOOK_SECRET" in done.stderr and "Traceback" not in done.stderr
