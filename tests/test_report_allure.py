"""Allure attachments, environment panel and categories."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from talkqa.checks import Finding, FindingKind
from talkqa.report import allure_findings
from talkqa.report.allure_findings import attach_findings, findings_html, findings_json
from talkqa.report.environment import (
    allure3_config,
    categories,
    kind_regex,
    redact_url,
    write_environment,
)
from talkqa.report.latency import SectionLatency


def _finding(**kw: Any) -> Finding:
    base: dict[str, Any] = {
        "kind": FindingKind.MISMATCH,
        "section": "Chargebee Order to Invoiced Invoices",
        "section_index": 1,
        "check": "properties",
        "source_label": "Chargebee Order",
        "target_label": "Invoiced Invoices",
        "source_id": "ord_3",
        "target_id": "12",
        "source_path": "currency_code",
        "target_path": "currency",
        "expected": "EUR",
        "actual": "usd",
        "explanation": "as string: currency: 'EUR' -> 'USD'",
    }
    return Finding(**{**base, **kw})


def test_html_table_has_one_escaped_row_per_finding() -> None:
    page = findings_html([_finding(), _finding(source_id="<b>x</b>")], "findings: properties")
    assert page.count("<tr><td") == 2
    assert "currency_code → currency" in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page
    assert "findings: properties (2)" in page
    assert "No findings." in findings_html([])


def test_json_round_trips_with_messages() -> None:
    rows = json.loads(findings_json([_finding()]))
    assert rows[0]["message"].startswith(
        "mismatch: Chargebee Order 'ord_3' -> Invoiced Invoices 12"
    )
    assert Finding.model_validate(rows[0]) == _finding()


def test_attach_findings_sends_html_and_json(monkeypatch: pytest.MonkeyPatch) -> None:
    import allure

    sent: list[tuple[str, str, Any]] = []
    monkeypatch.setattr(
        allure,
        "attach",
        lambda body, name=None, attachment_type=None: sent.append((body, name, attachment_type)),
    )
    attach_findings([_finding()], "findings")
    assert [(name, kind) for _, name, kind in sent] == [
        ("findings (table)", allure.attachment_type.HTML),
        ("findings (json)", allure.attachment_type.JSON),
    ]
    assert allure_findings.findings_json([_finding()]) == sent[1][0]


def test_attach_findings_is_harmless_outside_an_allure_run() -> None:
    attach_findings([_finding()], "findings")  # no Allure plugin listening: nothing happens


def test_redact_url_strips_credentials_and_secret_parameters() -> None:
    assert redact_url("https://key:pw@acme-test.chargebee.com/api/v2") == (
        "https://acme-test.chargebee.com/api/v2"
    )
    assert redact_url("http://127.0.0.1:8123/x?api_key=s3cret&page=2") == (
        "http://127.0.0.1:8123/x?api_key=%2A%2A%2A&page=2"
    )


def test_write_environment_writes_properties_and_categories(tmp_path: Path) -> None:
    write_environment(
        tmp_path / "allure-results",
        mode="sandbox",
        sut="reference sync",
        base_urls={
            "chargebee": "https://u:secret@x.chargebee.com/api/v2",
            "invoiced": "http://127.0.0.1:9000",
        },
        revision="abc123",
    )
    props = (tmp_path / "allure-results" / "environment.properties").read_text(encoding="utf-8")
    entries = dict(line.split("=", 1) for line in props.splitlines())
    assert entries["mode"] == "sandbox"
    assert entries["system.under.test"] == "reference sync"
    assert entries["git.revision"] == "abc123"
    assert entries["chargebee.base_url"] == "https://x.chargebee.com/api/v2"
    assert entries["invoiced.base_url"] == "http://127.0.0.1:9000"
    assert "talkqa.version" in entries
    assert "secret" not in props
    cats = json.loads((tmp_path / "allure-results" / "categories.json").read_text("utf-8"))
    regexes = {c.get("messageRegex") for c in cats}
    assert {kind_regex(kind) for kind in FindingKind} <= regexes


@pytest.mark.parametrize("kind", list(FindingKind))
def test_each_finding_kind_has_a_category_matching_its_messages(kind: FindingKind) -> None:
    message = "\n".join([_finding(kind=FindingKind.MISSING).message, _finding(kind=kind).message])
    own = next(c for c in categories() if c["messageRegex"] == kind_regex(kind))
    # Allure 2 matches the whole message (Java), Allure 3 searches it (JavaScript)
    assert re.fullmatch(own["messageRegex"], message)
    assert re.search(own["messageRegex"], message)
    others = [k for k in FindingKind if k not in (kind, FindingKind.MISSING)]
    for other in others:
        regex = next(c for c in categories() if c["messageRegex"] == kind_regex(other))
        assert not re.fullmatch(regex["messageRegex"], message)
        assert not re.search(regex["messageRegex"], message)


def test_category_patterns_need_no_dot_all_flag() -> None:
    """JavaScript (Allure 3) has no (?s): every pattern must span lines without it."""
    for category in categories():
        pattern = category.get("messageRegex")
        if pattern is None:
            continue
        assert "(?" not in pattern
        assert "." not in pattern.replace("\\.", "")


def test_allure3_config_carries_the_same_categories() -> None:
    config = allure3_config("talk-qa: x")
    assert config == {"name": "talk-qa: x", "categories": categories()}


def test_a_services_latency_per_section_is_in_the_environment_panel(tmp_path: Path) -> None:
    """Allure shows the sign-off's propagation figures, not only each scenario's own."""
    figure = SectionLatency("d.rst", 2, "Chargebee Order to Invoiced Invoices", 6, 0.5, 1.25,
                            3.0, (("o1 (orders exist)", 3.0),))
    write_environment(tmp_path, mode="sandbox", sut="a running service", base_urls={},
                      revision="r", latency=[figure])
    props = (tmp_path / "environment.properties").read_text(encoding="utf-8")
    entries = dict(line.split("=", 1) for line in props.splitlines())
    assert entries["latency.section.2"] == (
        "Chargebee Order to Invoiced Invoices: p50 0.50s, p95 1.25s, max 3.00s over 6 entities"
    )
