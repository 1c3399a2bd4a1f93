"""The sign-off page: verdict first, matrix, findings by kind, metadata; Markdown and HTML."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from reference_sync.testing import checklist_spec, section
from talkqa.errors import UserError
from talkqa.report.signoff import (
    Outcome,
    SectionInfo,
    SignoffInput,
    read_outcomes,
    sections_from_spec,
    write_signoff,
)
from tests.signoff_inputs import CUSTOMERS, DOC, ORDERS, mismatch, outcome

ADDRESS = "Chargebee Address to Invoiced Customers (organisation data)"


SECTIONS = [
    SectionInfo(dataflow=DOC, index=0, heading=CUSTOMERS, existence_only=True),
    SectionInfo(
        dataflow=DOC,
        index=1,
        heading=ORDERS,
        promises=["exists", "properties", "references", "edits", "idempotence"],
    ),
    SectionInfo(
        dataflow=DOC,
        index=2,
        heading=ADDRESS,
        covered=False,
        reason="section 2: no connector for 'Chargebee Address'",
    ),
]


def _input(outcomes: list[Outcome]) -> SignoffInput:
    return SignoffInput(
        outcomes=outcomes,
        sections=SECTIONS,
        mode="sandbox",
        sut="reference sync",
        started=datetime(2026, 11, 26, 1, 0, tzinfo=UTC),
        finished=datetime(2026, 11, 26, 1, 2, tzinfo=UTC),
        revision="abc123",
    )


def _green() -> list[Outcome]:
    return [
        outcome(0, CUSTOMERS, "exists", "passed", entities_checked=3),
        outcome(0, CUSTOMERS, "edits", "passed", entities_checked=3),
        outcome(1, ORDERS, "exists", "passed", entities_checked=2),
        outcome(1, ORDERS, "properties", "passed", entities_checked=2),
        outcome(1, ORDERS, "references", "passed", entities_checked=2),
        outcome(1, ORDERS, "idempotence", "skipped", reason="not covered: replay mode"),
    ]


def test_go_when_every_checked_promise_holds(tmp_path: Path) -> None:
    verdict = write_signoff(_input(_green()), tmp_path)
    assert verdict.go and verdict.label == "GO" and verdict.broken == []
    text = verdict.markdown.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[0] == "# Sign-off: chargebee-invoiced"
    assert lines[2] == "## ✅ GO"
    assert lines[4] == "Every checked promise holds (5 promises checked). 6 not covered: see below."
    assert text.index("## ✅ GO") < text.index("## Checklist matrix") < text.index("## Findings")
    assert text.index("## Findings") < text.index("## Run")
    assert "| 0 | Chargebee Customer to Invoiced Customers person | ✅ passed (3 checked) |" in text
    row = _row(text, 0)
    assert row.count("existence only") == 2  # properties and references
    orders = _row(text, 1)
    assert "⚪ not covered" in orders  # idempotence skipped
    address = _row(text, 2)
    assert address.count("not covered") == 5
    assert (
        "Chargebee Address to Invoiced Customers (organisation data): section 2: no connector"
        in (text)
    )
    assert "idempotence: replay mode" in text
    assert "| Mode | sandbox |" in text
    assert "| System under test | reference sync |" in text
    assert "| Git revision | abc123 |" in text
    assert "| Started | 2026-11-26 01:00:00 UTC |" in text
    assert "None." in text


def test_no_go_names_the_broken_promises_per_section(tmp_path: Path) -> None:
    outcomes = _green()
    outcomes[3] = outcome(
        1,
        ORDERS,
        "properties",
        "failed",
        entities_checked=9,
        findings=[json.loads(mismatch(f"o{i}").model_dump_json()) for i in range(7)],
    )
    outcomes.append(
        outcome(
            0, CUSTOMERS, "idempotence", "failed", reason="written_on_rerun: 2 entities changed"
        )
    )
    verdict = write_signoff(_input(outcomes), tmp_path)
    assert not verdict.go and verdict.label == "NO-GO"
    assert verdict.broken == [
        f"{CUSTOMERS} — idempotence (written_on_rerun: 2 entities changed)",
        f"{ORDERS} — properties (7 mismatch)",
    ]
    text = verdict.markdown.read_text(encoding="utf-8")
    assert "## ❌ NO-GO" in text
    headline = text.splitlines()[4]
    assert headline == (
        f"2 promises broken in 2 sections: {CUSTOMERS} (idempotence); {ORDERS} (properties)."
    )
    assert verdict.headline == headline
    assert [(b.index, b.section, b.promises) for b in verdict.broken_sections] == [
        (0, CUSTOMERS, ["idempotence"]),
        (1, ORDERS, ["properties"]),
    ]
    assert verdict.broken_promises() == {"idempotence", "properties"}
    assert "❌ failed (9 checked, 7 findings)" in text
    assert "### mismatch — 7 (first 5)" in text
    assert text.count("- `mismatch: Chargebee Order") == 5
    assert "### failures without findings" in text


def test_nothing_judged_is_incomplete_not_go(tmp_path: Path) -> None:
    outcomes = [outcome(2, ADDRESS, "exists", "skipped", reason="not covered: no connector")]
    verdict = write_signoff(_input(outcomes), tmp_path)
    assert not verdict.go
    assert verdict.label == "INCOMPLETE" and verdict.exit_code == 4
    assert "Nothing was judged" in verdict.markdown.read_text(encoding="utf-8")


def test_html_has_the_same_verdict_and_no_external_assets(tmp_path: Path) -> None:
    outcomes = _green()
    outcomes[3] = outcome(
        1,
        ORDERS,
        "properties",
        "failed",
        findings=[json.loads(mismatch("o<1>").model_dump_json())],
    )
    verdict = write_signoff(_input(outcomes), tmp_path)
    assert verdict.html is not None
    page = verdict.html.read_text(encoding="utf-8")
    assert '<div id="verdict" class="verdict nogo">NO-GO</div>' in page
    assert f"1 promise broken in 1 section: {ORDERS} (properties).</p>" in page
    assert "&#39;o&lt;1&gt;&#39;" in page  # escaped, not markup
    assert "<style>" in page
    for external in ("<link", "<script", "src=", "http://", "https://"):
        assert external not in page


def test_several_scenarios_of_one_promise_aggregate(tmp_path: Path) -> None:
    outcomes = [
        outcome(1, ORDERS, "exists", "passed", entities_checked=2),
        outcome(
            1,
            ORDERS,
            "exists",
            "failed",
            entities_checked=3,
            findings=[{**json.loads(mismatch("o1").model_dump_json()), "kind": "missing"}],
        ),
    ]
    text = write_signoff(_input(outcomes), tmp_path).markdown.read_text(encoding="utf-8")
    assert "❌ failed (5 checked, 1 finding)" in text


def test_read_outcomes_reads_json_lines_and_names_a_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "outcomes.jsonl"
    good = outcome(0, CUSTOMERS, "exists", "passed", entities_checked=1).model_dump_json()
    path.write_text(good + "\n\n" + good + "\n", encoding="utf-8")
    assert len(read_outcomes(path)) == 2
    path.write_text(good + '\n{"status": "maybe"}\n', encoding="utf-8")
    with pytest.raises(UserError, match=r"outcomes.jsonl:2: not a scenario outcome"):
        read_outcomes(path)
    with pytest.raises(UserError, match="no such file"):
        read_outcomes(tmp_path / "absent.jsonl")


def test_sections_from_spec_marks_existence_only_and_not_covered() -> None:
    spec = checklist_spec(
        section(0, "Customer", "Customers (human data)"),
        section(1, "Quote", "Customers (organisation data)", (("a", "b", "string"),)),
    )
    first, second = sections_from_spec(spec, DOC)
    assert (first.dataflow, first.existence_only, first.covered) == (DOC, True, True)
    assert not second.existence_only and not second.covered
    assert second.reason is not None
    assert second.reason.startswith("no connector for 'Chargebee Quote'")


def test_sections_and_outcomes_of_one_checklist_meet_by_file_name(tmp_path: Path) -> None:
    sections = [s.model_copy(update={"dataflow": "/abs/work/" + DOC}) for s in SECTIONS]
    results = _input(_green()).model_copy(update={"sections": sections})
    text = write_signoff(results, tmp_path).markdown.read_text(encoding="utf-8")
    assert text.count("| 1 | Chargebee Order to Invoiced Invoices |") == 1
    assert "###" not in text.split("## Findings")[0]  # one checklist: one matrix, no sub-heading


def _with_orders_edit(**kw: Any) -> list[Outcome]:
    """All green, plus a passed orders edit scenario whose ``reason`` or ``scenario`` is given."""
    return [*_green(), outcome(1, ORDERS, "edits", "passed", entities_checked=2, **kw)]


def _row(text: str, index: int) -> str:
    """The matrix row of section ``index``."""
    return next(line for line in text.splitlines() if line.startswith(f"| {index} |"))


def test_reasons_of_judged_cells_become_numbered_notes(tmp_path: Path) -> None:
    survival = (
        "link survival only: the source system's API cannot change a mapped property "
        "(currency_code), so status (unmapped) was edited"
    )
    verdict = write_signoff(_input(_with_orders_edit(reason=survival)), tmp_path)
    text = verdict.markdown.read_text(encoding="utf-8")
    customers = _row(text, 0)
    orders = _row(text, 1)
    # the customers section maps nothing: its edit scenario proves link survival only
    assert "✅ passed (3 checked) [1]" in customers
    assert "✅ passed (2 checked) [2]" in orders
    assert f"1. {CUSTOMERS} — either-side edits: existence only: the section maps no" in text
    assert f"2. {ORDERS} — either-side edits: {survival}" in text
    page = verdict.html.read_text(encoding="utf-8") if verdict.html else ""
    assert '<sup><a href="#note-2">[2]</a></sup>' in page and 'id="note-2"' in page
    assert verdict.go  # a qualified pass is still a pass


def test_skipped_reason_is_listed_not_noted(tmp_path: Path) -> None:
    text = write_signoff(_input(_green()), tmp_path).markdown.read_text(encoding="utf-8")
    assert f"- {ORDERS} — idempotence: replay mode" in text
    orders = _row(text, 1)
    assert "[" not in orders  # skipped cells carry no note number


def test_json_says_the_same_as_the_page(tmp_path: Path) -> None:
    outcomes = _green()
    outcomes[3] = outcome(
        1, ORDERS, "properties", "failed", findings=[json.loads(mismatch("o1").model_dump_json())]
    )
    verdict = write_signoff(_input(outcomes), tmp_path)
    assert verdict.json_path == tmp_path / "signoff.json"
    data = json.loads(verdict.json_path.read_text(encoding="utf-8"))
    assert data["verdict"] == "NO-GO" and data["go"] is False
    assert data["headline"] == verdict.headline
    assert data["broken_sections"] == [
        {"dataflow": DOC, "index": 1, "section": ORDERS, "promises": ["properties"]}
    ]
    rows = data["matrices"][0]["rows"]
    assert rows[1]["cells"]["properties"]["status"] == "failed"
    assert rows[0]["cells"]["properties"]["status"] == "existence-only"
    assert data["findings"][0]["kind"] == "mismatch" and data["findings"][0]["total"] == 1
    assert data["run"]["Mode"] == "sandbox"


def test_a_selection_says_which_promises_ran(tmp_path: Path) -> None:
    outcomes = [o for o in _green() if o.promise == "exists"]
    results = _input(outcomes).model_copy(update={"selection": ["exists"]})
    verdict = write_signoff(results, tmp_path)
    text = verdict.markdown.read_text(encoding="utf-8")
    assert verdict.go
    assert "Only these promises were run: exists & linked." in verdict.headline
    orders = _row(text, 1)
    assert orders.count("not run") == 4  # properties, references, edits, idempotence
    assert "Vendor limits" not in text  # no section makes it, no scenario tested it
    assert "| Promises run | exists |" in text


def test_what_a_passed_scenario_proves_less_qualifies_its_cell(tmp_path: Path) -> None:
    name = (
        "An edit in Chargebee of the unmapped status on a linked Chargebee Order keeps its "
        "link (link survival only: Chargebee forbids changing currency_code, customer_id)"
    )
    outcomes = [
        *_with_orders_edit(scenario=name, reason=name.rsplit("(", 1)[1].rstrip(")")),
        outcome(
            1,
            ORDERS,
            "exists",
            "passed",
            scenario="Every X has one Invoiced Customers (human data)",
        ),
    ]
    text = write_signoff(_input(outcomes), tmp_path).markdown.read_text(encoding="utf-8")
    assert (
        f"2. {ORDERS} — either-side edits: link survival only: Chargebee forbids changing "
        "currency_code, customer_id"
    ) in text
    assert "human data" not in text  # a datatype's parentheses are no qualifier


def test_a_vendor_impossible_cell_is_neither_passed_nor_not_covered(tmp_path: Path) -> None:
    """The orders' edits cell here: the vendor offers no API for it. It does not stop a GO,
    it is not listed as not covered, and the page says why, with the source."""
    from talkqa.systems.no_api import Operation, no_api

    fact = no_api("chargebee", "business_entities", Operation.CREATE)
    assert fact is not None
    outcomes = [
        *_green(),
        outcome(1, ORDERS, "edits", "skipped", reason=fact.text(), scenario="one",
                vendor_impossible=[fact.text()]),
        outcome(1, ORDERS, "edits", "skipped", reason=fact.text(), scenario="two",
                vendor_impossible=[fact.text()]),
    ]
    verdict = write_signoff(_input(outcomes), tmp_path)
    assert verdict.go
    text = verdict.markdown.read_text(encoding="utf-8")
    assert f"🚫 {fact.text()}" in _row(text, 1)
    assert "edits: vendor offers" not in text.split("## Not covered", 1)[1]
    assert "1 cell no syncer can keep: the vendor offers no API for it" in verdict.headline
    data = json.loads((tmp_path / "signoff.json").read_text(encoding="utf-8"))
    cell = data["matrices"][0]["rows"][1]["cells"]["edits"]
    assert (cell["status"], cell["text"]) == ("impossible", fact.text())
    assert "1 impossible through the vendors' APIs" in data["coverage"]
