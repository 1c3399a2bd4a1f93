"""The vendor-impossible table agrees with the vendors' own definitions, and reads as a sentence.

``talkqa/sandbox/defs/*.json`` are extracted from the vendors' published definitions (the
Chargebee SDK generated from its OpenAPI spec, Invoiced's API reference source): a fact of
``talkqa.systems.no_api`` that one of them contradicts is a wrong fact, and the sign-off
would blame no one for a promise a syncer could have kept.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from talkqa.dataflow.rst import load
from talkqa.samples import forbidden
from talkqa.systems.catalog import binding_of
from talkqa.systems.no_api import (
    CHARGEBEE_ORDER_LINES,
    NO_API,
    NO_API_PREFIX,
    NoApi,
    Operation,
    impossible,
    no_api,
    unwritable_rows,
)

REPO = Path(__file__).resolve().parents[1]
DEFS = REPO / "talkqa" / "sandbox" / "defs"
SINGULAR = {
    "customers": "customer",
    "items": "item",
    "orders": "order",
    "invoices": "invoice",
    "business_entities": "business_entity",
    "addresses": "address",
}
# the operations of the extracted definitions that would do what a fact says is impossible
OPERATIONS = {
    Operation.CREATE: {"create"},
    Operation.READ: {"list", "retrieve"},
    Operation.UPDATE: {"update"},
    Operation.WRITE: {"create", "update"},
}


def _resource(fact: NoApi) -> dict[str, Any]:
    defs = json.loads((DEFS / f"{fact.system}.json").read_text(encoding="utf-8"))
    resource: dict[str, Any] = defs["resources"][SINGULAR[fact.resource]]
    return resource


def _param(params: dict[str, Any], path: str) -> bool:
    """Whether an operation's parameters let a caller send ``path`` (dotted into objects)."""
    head, _, rest = path.partition(".")
    if head not in params:
        return False
    return not rest or _param(params[head].get("properties", {}), rest)


@pytest.mark.parametrize("fact", NO_API, ids=lambda f: f"{f.system}-{f.resource}-{f.operation}")
def test_every_fact_is_what_the_vendor_definition_shows(fact: NoApi) -> None:
    operations = _resource(fact)["operations"]
    if not fact.fields:
        assert not OPERATIONS[fact.operation] & set(operations), fact
        return
    if fact.operation is Operation.READ:  # a field no answer carries
        attributes = _resource(fact)["attributes"]
        assert [f for f in sorted(fact.fields) if f in attributes] == [], fact
        return
    # a field the vendor computes can be sent neither on create nor on update
    names = ("create", "update") if fact.operation is Operation.WRITE else ("update",)
    for name in names:
        params = operations[name]["params"]
        assert [f for f in sorted(fact.fields) if _param(params, f)] == [], (name, fact)


def test_chargebee_business_entities_offer_transfers_only() -> None:
    fact = no_api("chargebee", "business_entities", Operation.CREATE)
    assert fact is not None
    assert fact.text() == (
        f"{NO_API_PREFIX} create a Chargebee business entity ({fact.source})"
    )
    assert "apidocs.chargebee.com/docs/api/business_entities" in fact.source
    assert set(_resource(fact)["operations"]) == {"create_transfers", "get_transfers"}


def test_a_field_fact_names_the_field_and_leaves_the_others_free() -> None:
    order = binding_of(("chargebee", "Order"))
    assert forbidden(order, "order_line_items.unit_price")
    assert forbidden(order, "currency_code")
    assert not forbidden(order, "status")
    assert not forbidden(order, "order_line_items.status")  # Chargebee lets a line's status change
    fact = no_api("chargebee", "orders", Operation.UPDATE, "order_line_items.amount")
    assert fact is not None
    assert fact.text("order_line_items.amount").startswith(
        f"{NO_API_PREFIX} change order_line_items.amount of a Chargebee order ("
    )
    assert no_api("chargebee", "orders", Operation.CREATE) is None


def test_a_section_is_impossible_when_its_source_cannot_be_read_or_its_target_made() -> None:
    from reference_sync.testing import section

    def text(operation: Operation) -> str:
        fact = no_api("chargebee", "business_entities", operation)
        assert fact is not None
        return fact.text()

    into = section(
        0, "Customers company", "Business_entity", source_system="Invoiced",
        target_system="Chargebee",
    )  # fmt: skip
    assert impossible(into) == text(Operation.CREATE)
    assert impossible(section(0, "Business_entity", "Customers company")) == text(Operation.READ)
    assert impossible(section(0, "Order", "Invoices")) is None
    assert impossible(section(0, "Address", "Customers company")) is None  # no connector


def test_a_vendor_computed_row_is_named_with_its_source_and_the_others_are_not() -> None:
    spec = load(REPO / "dataflows" / "invoiced-chargebee.rst")
    lines = next(s for s in spec.sections if s.source.datatype == "Lineitem")
    rows = unwritable_rows(lines)
    assert list(rows) == [("items.quantity", "order_line_items.amount")]
    assert rows[("items.quantity", "order_line_items.amount")] == (
        "items.quantity -> order_line_items.amount: "
        f"{NO_API_PREFIX} set order_line_items.amount of a Chargebee order "
        f"({CHARGEBEE_ORDER_LINES})"
    )
    invoices = next(s for s in spec.sections if s.source.datatype == "Invoices")
    assert unwritable_rows(invoices) == {}
