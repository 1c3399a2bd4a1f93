"""Cassette hygiene (secrets, volatile headers, admin calls) and the outcome records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from vcr.request import Request

from talkqa.errors import UserError
from talkqa.pytest_plugin import (
    Redactor,
    ScenarioRecord,
    append_outcome,
    check_mode,
    drop_admin_requests,
    origin_of,
    outcome_line,
    run_id_for,
    skip_reason,
    strip_volatile_headers,
    vcr_config,
)
from talkqa.systems.settings import Settings


def _settings() -> Settings:
    return Settings.for_sandbox(
        "http://127.0.0.1:4321/api/v2",
        "http://127.0.0.1:5432",
        chargebee_api_key="cb_live_secret",
        invoiced_api_key="inv_live_secret",
    )


def test_admin_requests_never_reach_a_cassette() -> None:
    reset = Request("POST", "http://127.0.0.1:4321/__admin/reset", b"{}", {})
    listing = Request("GET", "http://127.0.0.1:4321/api/v2/customers", None, {})
    assert drop_admin_requests(reset) is None
    assert drop_admin_requests(listing) is listing


def test_volatile_response_headers_are_dropped_and_the_rest_sorted() -> None:
    response = {
        "headers": {"Server": ["uvicorn"], "date": ["Thu"], "link": ["<x>"], "Content-Type": ["j"]},
        "body": {"string": b"{}"},
    }
    assert list(strip_volatile_headers(response)["headers"]) == ["Content-Type", "link"]


def test_vcr_config_matches_without_host_and_hides_keys_and_origins() -> None:
    config = vcr_config(_settings())
    assert config["match_on"] == ["method", "path", "query", "body"]
    assert ("authorization", None) in config["filter_headers"]
    hidden = dict(config["filter_sensitive_data"])
    assert hidden["<CHARGEBEE_API_KEY>"] == "cb_live_secret"
    assert hidden["<INVOICED_API_KEY>"] == "inv_live_secret"
    assert "http://127.0.0.1:4321" in hidden.values() and "http://127.0.0.1:5432" in hidden.values()


def test_a_recorded_cassette_holds_no_key_and_no_port(tmp_path: Path) -> None:
    import httpx
    import vcr

    def app(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json={"ok": True}, headers={"date": "now", "link": str(request.url)}
        )

    settings = _settings()
    recorder = vcr.VCR(record_mode="all", **vcr_config(settings))
    path = tmp_path / "c.yaml"
    with recorder.use_cassette(str(path)), httpx.Client() as client:
        # vcrpy stubs httpx's transport: let the real one answer from a mock app
        transport = httpx.MockTransport(app)
        client._transport = transport
        client.get(
            "http://127.0.0.1:4321/api/v2/customers",
            auth=(settings.chargebee_api_key.get_secret_value(), ""),
        )
    text = path.read_text()
    assert "cb_live_secret" not in text and "4321" not in text
    assert "chargebee.recorded.invalid/api/v2/customers" in text
    assert "date:" not in text


def test_outcome_line_has_the_judge_contract_fields(tmp_path: Path) -> None:
    record = ScenarioRecord(
        dataflow="dataflows/x.rst",
        section_index=2,
        section="A to B",
        promise="exists",
        entities_checked=3,
    )
    path = tmp_path / "reports" / "outcomes.jsonl"
    append_outcome(path, outcome_line(record, "skipped", "not covered: no connector"))
    append_outcome(path, outcome_line(record, "passed"))
    first, second = (json.loads(line) for line in path.read_text().splitlines())
    assert first == {
        "dataflow": "dataflows/x.rst",
        "section_index": 2,
        "section": "A to B",
        "promise": "exists",
        "outcome": "skipped",
        "entities_checked": 3,
        "findings": [],
        "reason": "not covered: no connector",
    }
    assert second["outcome"] == "passed" and second["reason"] is None


def test_skip_reason_reads_pytest_longrepr() -> None:
    assert skip_reason(("f.py", 3, "Skipped: not covered: x")) == "not covered: x"
    assert skip_reason("boom") is None


def test_redactor_hides_keys_and_never_shows_them_in_its_repr() -> None:
    redact = Redactor({"<K>": "supersecret", "<SHORT>": "ab"})
    assert redact("401 for supersecret") == "401 for <K>"
    assert "supersecret" not in repr(redact)


def test_modes_and_run_ids() -> None:
    assert check_mode("sandbox") == "sandbox"
    with pytest.raises(UserError, match="not a mode"):
        check_mode("cloud")
    assert run_id_for("replay") == run_id_for("sandbox")  # cassettes need the same bodies
    assert run_id_for("live") != run_id_for("replay")
    assert origin_of("http://h:1/api/v2") == "http://h:1"
