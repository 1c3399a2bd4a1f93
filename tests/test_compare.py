"""The judge's own value reading: paths, declared types, vendor normalisation, explanations."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from talkqa.compare import CoercionError, coerce, declared_type, explain, read_path, same


def test_read_path_reads_nested_dicts_and_maps_over_lists() -> None:
    order = {
        "billing_address": {"city": "Oslo"},
        "order_line_items": [{"unit_price": 100}, {"unit_price": 250}, {}],
    }
    assert read_path(order, "billing_address.city") == "Oslo"
    assert read_path(order, "order_line_items.unit_price") == [100, 250, None]
    assert read_path(order, "billing_address.zip") is None
    assert read_path(order, "nowhere.at.all") is None
    assert read_path({"city": "Bergen"}, "city") == "Bergen"
    assert read_path(None, "city") is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('"string"', "string"),
        ("integer", "integer"),
        ("Decimal", "decimal"),
        (None, None),
        ('["datetime-format","%Y-%m-%d","_."]', None),
        ("N/A", None),
    ],
)
def test_declared_type_knows_the_checklist_types_only(
    raw: str | None, expected: str | None
) -> None:
    assert declared_type(raw) == expected


@pytest.mark.parametrize(
    ("value", "data_type", "expected"),
    [
        (12, "string", "12"),
        (12.0, "string", "12"),
        (True, "string", "true"),
        ("12", "integer", 12),
        ("12.0", "integer", 12),
        (12.0, "integer", 12),
        (" 7 ", "integer", 7),
        ("1.50", "decimal", Decimal("1.50")),
        (0.1, "decimal", Decimal("0.1")),
        ("2.5", "float", 2.5),
        ("TRUE", "boolean", True),
        ("no", "boolean", False),
        (0, "boolean", False),
        ("", "integer", None),
        ("   ", "string", None),
        (None, "boolean", None),
        (["1", "2"], "integer", [1, 2]),
        ({"a": 1}, None, {"a": 1}),
    ],
)
def test_coerce_reads_values_as_their_declared_type(
    value: Any, data_type: str, expected: Any
) -> None:
    result = coerce(value, data_type)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("value", "data_type"),
    [
        ("abc", "integer"),
        ("1.5", "integer"),
        ("maybe", "boolean"),
        (2, "boolean"),
        ("nan", "decimal"),
        (True, "decimal"),
        ({"a": 1}, "string"),
    ],
)
def test_coerce_refuses_values_that_are_not_of_the_type(value: Any, data_type: str) -> None:
    with pytest.raises(CoercionError):
        coerce(value, data_type)


def _same(expected: Any, actual: Any, data_type: str | None, sp: str = "a", tp: str = "b") -> bool:
    return same(expected, actual, data_type, source_path=sp, target_path=tp)


def test_currency_codes_compare_case_insensitively() -> None:
    assert _same("USD", "usd", "string", "currency_code", "currency")
    assert _same("eur", "EUR", None, "currency_code", "currency")
    assert not _same("EUR", "usd", "string", "currency_code", "currency")


def test_case_matters_outside_iso_code_fields() -> None:
    assert not _same("Ada", "ada", "string", "first_name", "name")


def test_ids_compare_across_int_and_string_when_declared_string() -> None:
    assert _same("12", 12, "string")
    assert not _same("12", 13, "string")


def test_numbers_compare_numerically_under_their_type() -> None:
    assert _same("1.50", 1.5, "decimal")
    assert _same(1, 1.0, "integer")
    assert _same(0.1 + 0.2, 0.3, "float")
    assert not _same("1.51", 1.5, "decimal")


def test_blank_and_absent_are_the_same_fact() -> None:
    assert _same(None, "", "string")
    assert _same("", None, None)
    assert not _same("x", None, "string")


def test_untyped_values_compare_as_is_but_not_across_types() -> None:
    assert _same({"a": 1}, {"a": 1}, None)
    assert not _same("1", 1, None)
    assert _same(1, 1.0, None)


def test_without_a_declared_type_a_boolean_is_not_a_number() -> None:
    """Python says True == 1; a checklist's flag and a count are different facts."""
    assert not _same(True, 1, None)
    assert not _same(0, False, None)
    assert _same(1, 1.0, None)  # numbers stay numbers across int and float
    assert not _same("1", 1, None)


def test_uncoercible_values_only_equal_identical_raw_values() -> None:
    assert not _same("abc", 3, "integer")
    assert _same("abc", "abc", "integer")
    assert not _same("abc", "abd", "integer")


def test_lists_compare_element_wise_under_the_type() -> None:
    assert _same([100, 250], ["100", "250.0"], "integer")
    assert not _same([100, 250], [100], "integer")
    assert not _same([100, 250], [250, 100], "integer")


def test_explain_names_the_path_and_both_values() -> None:
    text = explain("EUR", "usd", path="currency", data_type='"string"', source_path="currency_code")
    assert text == "as string: currency: 'EUR' -> 'USD'"


def test_explain_groups_lists_of_entities_by_id() -> None:
    expected = [{"id": "li_1", "unit_price": 100}, {"id": "li_2", "unit_price": 5}]
    actual = [{"id": "li_2", "unit_price": 5}, {"id": "li_1", "unit_price": 101}]
    text = explain(expected, actual, path="items")
    assert text == "items[li_1].unit_price: 100 -> 101"


def test_explain_reports_missing_and_extra_entries_and_truncates() -> None:
    expected = [{"id": str(i), "v": i} for i in range(6)]
    actual = [{"id": str(i), "v": i + 1} for i in range(6)]
    text = explain(expected, actual, path="items", limit=2)
    assert text.count("->") == 2
    assert text.endswith("(+4 more)")
    assert text.startswith("items[0].v: 0 -> 1; items[1].v: 1 -> 2; ")
    gone = explain([{"id": "a"}, {"id": "b"}], [{"id": "a"}], path="items")
    assert gone == "items[b] missing on the target (expected {})"


def test_explain_says_why_a_value_could_not_be_read() -> None:
    text = explain("abc", 3, path="quantity", data_type="integer")
    assert text.startswith("as integer: expected 'abc' is not a number")
