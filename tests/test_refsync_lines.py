"""The reference sync's own reading of line items and money units, in both directions."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from reference_sync import mapping
from reference_sync.engine import compile_spec
from reference_sync.mapping import MISSING, CoercionError
from reference_sync.plan import Refs, creation_fields, project_source, project_target
from reference_sync.testing import checklist_spec, section

CB_TO_INV = (
    ("order_line_items.unit_price", "items.amount", "string"),
    ("order_line_items.description", "items.description", "string"),
    ("order_line_items.amount", "items.quantity", "string"),
)
INV_TO_CB = (
    ("items.amount", "order_line_items.unit_price", "string"),
    ("items.description", "order_line_items.description", "string"),
    ("items.quantity", "order_line_items.amount", "string"),
)
CB_ORDERS = mapping.MONEY[("chargebee", "orders")]
INV_INVOICES = mapping.MONEY[("invoiced", "invoices")]


def _order(currency: str, *lines: tuple[int, str]) -> dict[str, Any]:
    return {
        "id": "o1",
        "currency_code": currency,
        "order_line_items": [
            {"unit_price": p, "amount": p, "description": d} for p, d in lines
        ],
    }


def test_a_path_into_a_list_reads_each_line_in_order() -> None:
    order = _order("USD", (1050, "a"), (99, "b"))
    assert mapping.read_path(order, "order_line_items.unit_price") == [1050, 99]
    assert mapping.read_path({"items": [{}, {"amount": 1}]}, "items.amount") == [None, 1]
    assert mapping.read_path({}, "items.amount") is MISSING


def test_a_list_value_is_written_line_by_line() -> None:
    fields: dict[str, Any] = {}
    lists = frozenset({"items"})
    mapping.write_path(fields, "items.amount", ["10.5", "0.99"], lists)
    mapping.write_path(fields, "items.description", ["a", "b"], lists)
    assert fields == {"items": [{"amount": "10.5", "description": "a"},
                                {"amount": "0.99", "description": "b"}]}
    # without the list fact, a list is an ordinary value
    plain: dict[str, object] = {}
    mapping.write_path(plain, "tags.x", [1], frozenset())
    assert plain == {"tags": {"x": [1]}}


@pytest.mark.parametrize(
    ("currency", "minor", "major"),
    [("USD", 1050, Decimal("10.5")), ("JPY", 1050, Decimal(1050)), ("KWD", 1050, Decimal("1.05"))],
)
def test_amounts_convert_both_ways_by_the_currency_exponent(
    currency: str, minor: int, major: Decimal
) -> None:
    assert mapping.convert_amount(minor, currency, CB_ORDERS, INV_INVOICES) == major
    assert mapping.convert_amount(float(major), currency, INV_INVOICES, CB_ORDERS) == minor
    assert mapping.convert_amount([minor], currency, CB_ORDERS, INV_INVOICES) == [major]


def test_a_count_or_an_unknown_currency_is_not_converted_silently() -> None:
    assert mapping.convert_amount(1050, "USD", CB_ORDERS, None) == 1050
    with pytest.raises(CoercionError, match="ISO 4217"):
        mapping.convert_amount(1050, None, CB_ORDERS, INV_INVOICES)


def test_invoiced_lines_are_sent_as_the_unit_cost_that_gives_the_amount() -> None:
    fields = {"items": [{"amount": "10.5", "quantity": "1050", "description": "a"}]}
    assert mapping.wire_lines("invoiced", "invoices", fields) == {
        "items": [{"quantity": 1050, "unit_cost": 0.01, "description": "a"}]
    }


def test_chargebee_to_invoiced_projects_lines_in_invoiced_units() -> None:
    compiled = compile_spec(checklist_spec(section(0, "Order", "Invoices", CB_TO_INV)))
    model = compiled.models[0]
    values, problems = project_source(model, _order("USD", (1050, "a"), (99, "b")), Refs())
    assert problems == {}
    assert values == {
        "items.amount": ["10.5", "0.99"],
        "items.description": ["a", "b"],
        "items.quantity": ["1050", "99"],
    }
    invoice = {"currency": "usd", "items": [
        {"amount": 10.5, "quantity": 1050, "description": "a"},
        {"amount": 0.99, "quantity": 99, "description": "b"},
    ]}
    assert project_target(model, invoice) == values
    created = creation_fields(model, "o1", values, {}, Refs())
    assert created["items"] == [
        {"quantity": 1050, "unit_cost": 0.01, "description": "a"},
        {"quantity": 99, "unit_cost": 0.01, "description": "b"},
    ]


def test_invoiced_to_chargebee_projects_lines_in_chargebee_units() -> None:
    spec = checklist_spec(
        section(0, "Lineitem", "Order", INV_TO_CB, source_system="Invoiced",
                target_system="Chargebee")
    )
    model = compile_spec(spec).models[0]
    invoice = {"id": 7, "currency": "jpy", "items": [{"amount": 1200, "quantity": 1,
                                                       "description": "x"}]}
    values, problems = project_source(model, invoice, Refs())
    assert problems == {}
    assert values == {
        "order_line_items.unit_price": ["1200"],
        "order_line_items.description": ["x"],
    }  # items.quantity -> order_line_items.amount: Chargebee computes it, no sync writes it
    eur = {"id": 8, "currency": "eur", "items": [{"amount": 12.34, "quantity": 2,
                                                  "description": "y"}]}
    assert project_source(model, eur, Refs())[0]["order_line_items.unit_price"] == ["1234"]
    created = creation_fields(model, "8", project_source(model, eur, Refs())[0], {}, Refs())
    assert created["order_line_items"] == [
        {"unit_price": 1234, "description": "y"}
    ]


def test_sections_into_or_out_of_a_business_entity_are_skipped_with_the_reason() -> None:
    into = section(
        0, "Customers company", "Business_entity", source_system="Invoiced",
        target_system="Chargebee",
    )  # fmt: skip
    out_of = section(1, "Business_entity", "Customers company")
    compiled = compile_spec(checklist_spec(into, out_of, section(2, "Item", "Items")))
    assert [m.section.index for m in compiled.models] == [2]
    assert [(s.index, s.skipped) for s in compiled.skipped] == [
        (0, "chargebee offers no API to create business_entities"),
        (1, "chargebee offers no API to read business_entities"),
    ]


def test_a_changed_line_value_sends_the_whole_list_of_lines() -> None:
    """Invoiced replaces an invoice's items whole: the other mapped line values travel too,
    and the result is the list of lines as Invoiced takes them."""
    from reference_sync.plan import _whole_lists, target_fields

    model = compile_spec(checklist_spec(section(0, "Order", "Invoices", CB_TO_INV))).models[0]
    full = {
        "items.amount": ["10.5"],
        "items.description": ["a"],
        "items.quantity": ["1050"],
        "currency": "usd",
    }
    changed = _whole_lists(model, {"items.amount": ["10.5"]}, full)
    assert changed == {k: v for k, v in full.items() if k.startswith("items.")}
    assert _whole_lists(model, {"currency": "eur"}, full) == {"currency": "eur"}
    assert target_fields(model, changed, Refs()) == {
        "items": [{"quantity": 1050, "unit_cost": 0.01, "description": "a"}]
    }


def test_lineitem_rows_ride_the_invoice_section_link_and_skip_what_chargebee_computes() -> None:
    """One Chargebee order per Invoiced invoice: the Lineitem section adds its rows to the
    Invoices section's model (no second link, no second order), minus the line amount that
    Chargebee computes and no sync can write."""
    from talkqa.dataflow.rst import load

    spec = load(Path(__file__).resolve().parents[1] / "dataflows" / "invoiced-chargebee.rst")
    models = compile_spec(spec).models
    assert [m for m in models if m.source.datatype == "Lineitem"] == []
    invoices = next(m for m in models if m.source.datatype == "Invoices")
    targets = {r.target_path for r in invoices.rules}
    assert {"order_line_items.unit_price", "order_line_items.description"} <= targets
    assert "order_line_items.amount" not in targets
