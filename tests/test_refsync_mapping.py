"""Pure mapping functions: paths, declared types, vendor normalisation, derived names."""

from __future__ import annotations

import pytest

from reference_sync import mapping
from reference_sync.mapping import MISSING, CoercionError


def test_read_path_follows_dots_and_tells_missing_from_null() -> None:
    entity = {"billing_address": {"city": "Oslo", "zip": None}, "id": "c1"}
    assert mapping.read_path(entity, "billing_address.city") == "Oslo"
    assert mapping.read_path(entity, "billing_address.zip") is None
    assert mapping.read_path(entity, "billing_address.state") is MISSING
    assert mapping.read_path(entity, "id.nested") is MISSING


def test_write_path_builds_nested_dicts_without_losing_siblings() -> None:
    fields: dict[str, object] = {"billing_address": {"line1": "Main St"}}
    mapping.write_path(fields, "billing_address.city", "Oslo")
    mapping.write_path(fields, "email", "a@b")
    assert fields == {"billing_address": {"line1": "Main St", "city": "Oslo"}, "email": "a@b"}


@pytest.mark.parametrize(
    ("value", "data_type", "expected"),
    [
        (5, "string", "5"),
        (5.0, "string", "5"),
        (True, "string", "true"),
        ("12", "integer", 12),
        (12.0, "integer", 12),
        ("1.25", "float", 1.25),
        ("1.50", "decimal", "1.5"),
        (100, "decimal", "100"),
        ("yes", "boolean", True),
        (0, "boolean", False),
        ("", "string", None),
        (None, "integer", None),
        ({"a": 1}, None, {"a": 1}),
    ],
)
def test_coerce_to_declared_type(value: object, data_type: str | None, expected: object) -> None:
    assert mapping.coerce(value, data_type) == expected


@pytest.mark.parametrize(
    ("value", "data_type"), [("abc", "integer"), (1.5, "integer"), ("maybe", "boolean")]
)
def test_coerce_refuses_what_it_cannot_read(value: object, data_type: str) -> None:
    with pytest.raises(CoercionError):
        mapping.coerce(value, data_type)


def test_decimal_goes_back_to_a_json_number_on_the_wire() -> None:
    assert mapping.to_wire("1.5", "decimal") == 1.5
    assert mapping.to_wire("100", "decimal") == 100


def test_reverse_coerce_follows_the_source_values_type() -> None:
    assert mapping.reverse_coerce("7", like=3) == 7
    assert mapping.reverse_coerce(7, like="x") == "7"
    assert mapping.reverse_coerce("true", like=False) is True
    assert mapping.reverse_coerce("7", like=MISSING) == "7"


def test_currency_codes_follow_each_vendor() -> None:
    assert mapping.comparison_form("USD", "string", "invoiced", "currency") == "usd"
    assert mapping.normalise("chargebee", "currency_code", "usd") == "USD"
    assert mapping.normalise("invoiced", "billing.country", "no") == "NO"
    assert mapping.normalise("invoiced", "name", "Ada") == "Ada"


@pytest.mark.parametrize(
    ("customer", "name"),
    [
        (
            {"id": "c1", "first_name": "Ada", "last_name": "Lovelace", "company": "X"},
            "Ada Lovelace",
        ),
        ({"id": "c1", "last_name": "Lovelace"}, "Lovelace"),
        ({"id": "c1", "first_name": " ", "company": "Analytical Ltd"}, "Analytical Ltd"),
        ({"id": "c1", "email": "ada@example.com"}, "ada@example.com"),
        ({"id": "c1"}, "c1"),
    ],
)
def test_customer_name_falls_back_in_order(customer: dict[str, str], name: str) -> None:
    assert mapping.derived_name(customer) == name


def test_write_rules_name_what_the_vendors_forbid() -> None:
    assert mapping.immutable("chargebee", "orders", "currency_code")
    assert mapping.immutable("invoiced", "invoices", "customer")
    assert mapping.immutable("invoiced", "items", "unit_cost")
    assert mapping.recreatable("invoiced", "items", "currency")
    assert not mapping.immutable("invoiced", "customers", "city")
    assert not mapping.recreatable("chargebee", "orders", "customer_id")


def test_deleted_flags_of_chargebee() -> None:
    assert mapping.is_deleted({"deleted": True})
    assert mapping.is_deleted({"status": "deleted"})
    assert not mapping.is_deleted({"status": "active", "deleted": False})
