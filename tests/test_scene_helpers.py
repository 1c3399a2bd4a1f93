"""The pure helpers the feature steps lean on: step text checked against the checklist."""

from __future__ import annotations

from pathlib import Path

import pytest

from talkqa.dataflow.rst import load
from talkqa.dataflow.spec import DataflowSpec
from talkqa.pytest_plugin import (
    all_bindings,
    last_line,
    name_mismatch,
    section_names,
    table_rows,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def spec() -> DataflowSpec:
    return load(REPO / "dataflows" / "chargebee-invoiced.rst")


def test_section_names_are_the_step_text_names(spec: DataflowSpec) -> None:
    assert section_names(spec.sections[2]) == ("Chargebee Order", "Invoiced Invoices")


def test_names_match_up_to_whitespace_and_a_drifted_name_says_where(spec: DataflowSpec) -> None:
    section = spec.sections[0]
    assert name_mismatch(section, source="Chargebee  Customer") is None
    assert name_mismatch(section, source="Chargebee Customer", target=None) is None
    stale = name_mismatch(section, target="Invoiced Customers company")
    assert stale is not None
    assert "'Invoiced Customers company'" in stale and "section 0" in stale
    assert "'Invoiced Customers person'" in stale


def test_table_rows_are_the_pairs_and_stale_rows_are_named(spec: DataflowSpec) -> None:
    section = spec.sections[2]
    header = ["source_path", "target_path", "type"]
    rows, stale = table_rows(section, [header, ["currency_code", "currency", "string"]])
    assert rows == {("currency_code", "currency")} and stale is None
    rows, stale = table_rows(section, [header, ["total", "amount", "number"]])
    assert rows == {("total", "amount")}
    assert stale is not None and "total -> amount" in stale and "section 2" in stale


def test_all_bindings_lists_each_collection_once_in_checklist_order(spec: DataflowSpec) -> None:
    doubled = spec.model_copy(update={"sections": [*spec.sections, spec.sections[0]]})
    assert [b.key for b in all_bindings(doubled)] == [
        ("chargebee", "Customer"),
        ("invoiced", "Customers person"),
        ("chargebee", "Item"),
        ("invoiced", "Items"),
        ("chargebee", "Order"),
        ("invoiced", "Invoices"),
    ]


def test_last_line_is_the_failure_reason() -> None:
    assert last_line("Traceback\n  boom\n\nE   missing: x\n  \n") == "E   missing: x"
    assert last_line("  \n") == "failed"
    assert len(last_line("x" * 900)) == 500
