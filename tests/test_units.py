"""The judge's money units: Chargebee minor units against Invoiced major units, both ways."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from talkqa.compare import read_path, same
from talkqa.units import exponent, money_row


def _order(currency: str, *lines: tuple[int, int]) -> dict[str, Any]:
    return {
        "currency_code": currency,
        "order_line_items": [{"unit_price": p, "amount": a} for p, a in lines],
    }


def _invoice(currency: str, *lines: tuple[float, float]) -> dict[str, Any]:
    return {
        "currency": currency.lower(),
        "items": [{"amount": a, "quantity": q} for a, q in lines],
    }


def _pair(
    order: dict[str, Any], invoice: dict[str, Any], cb_path: str, inv_path: str
) -> tuple[Any, Any]:
    """Chargebee -> Invoiced (the order is the source) read in common units."""
    expected, actual = read_path(order, cb_path), read_path(invoice, inv_path)
    row = money_row(("chargebee", "orders", cb_path), ("invoiced", "invoices", inv_path))
    return (expected, actual) if row is None else row.in_major_units(
        expected, actual, order, invoice
    )


def test_iso_exponents_include_zero_and_three_decimal_currencies() -> None:
    assert (exponent("usd"), exponent("JPY"), exponent("KWD"), exponent("XXX1")) == (2, 0, 3, None)


def test_cents_and_major_units_state_the_same_amount_line_by_line() -> None:
    order = _order("USD", (1050, 1050), (1000, 2000))
    invoice = _invoice("USD", (10.5, 1), (10, 2))
    left, right = _pair(order, invoice, "order_line_items.unit_price", "items.amount")
    assert left == right == [Decimal("10.5"), Decimal("10")]
    assert same(left, right, "string", source_path="a", target_path="b")


def test_an_amount_copied_without_conversion_is_a_mismatch() -> None:
    order = _order("USD", (1050, 1050))
    copied = _invoice("USD", (1050, 1))
    left, right = _pair(order, copied, "order_line_items.unit_price", "items.amount")
    assert not same(left, right, "string", source_path="a", target_path="b")
    # ... and so is a conversion by 100 where the currency has no minor unit
    yen = _order("JPY", (1050, 1050))
    divided = _invoice("JPY", (10.5, 1))
    left, right = _pair(yen, divided, "order_line_items.unit_price", "items.amount")
    assert not same(left, right, "string", source_path="a", target_path="b")
    right_yen = _invoice("JPY", (1050, 1))
    left, right = _pair(yen, right_yen, "order_line_items.unit_price", "items.amount")
    assert same(left, right, "string", source_path="a", target_path="b")


def test_the_other_direction_reads_invoiced_as_source_the_same_way() -> None:
    invoice = _invoice("EUR", (12.34, 1))
    order = _order("EUR", (1234, 1234))
    row = money_row(
        ("invoiced", "invoices", "items.amount"),
        ("chargebee", "orders", "order_line_items.unit_price"),
    )
    assert row is not None
    left, right = row.in_major_units([12.34], [1234], invoice, order)
    assert left == right == [Decimal("12.34")]


def test_a_count_mapped_to_an_amount_is_compared_as_written() -> None:
    """The corpus maps Invoiced items.quantity to Chargebee order_line_items.amount: no unit
    makes a count an amount, so neither side is converted."""
    order = _order("USD", (1000, 1000))
    invoice = _invoice("USD", (10, 1000))
    left, right = _pair(order, invoice, "order_line_items.amount", "items.quantity")
    assert (left, right) == ([1000], [1000])
    assert same(left, right, "string", source_path="a", target_path="b")


def test_lines_pair_by_position_so_a_missing_line_is_a_mismatch() -> None:
    order = _order("USD", (1000, 1000), (500, 500))
    invoice = _invoice("USD", (10, 1))
    left, right = _pair(order, invoice, "order_line_items.unit_price", "items.amount")
    assert not same(left, right, "string", source_path="a", target_path="b")
