"""The judge's reading of money: which vendor fields are amounts, and in which unit.

The vendors state the same amount in different units, and a syncer that copies the number
across is wrong by a factor of a hundred (or, for JPY, right by accident):

- Chargebee keeps every amount as an integer in the currency's minor unit: "If you have a
  plan priced at USD 10 in Chargebee ... the amount ... would display as 1000"; "for Zero
  decimal currencies such as JPY, Chargebee does not multiply the amount value by 100"
  ("As per the ISO definition"), https://www.chargebee.com/docs/billing/2.0/kb/product-catalog/
  what-are-zero-decimal-currencies. The order's ``currency_code`` names the currency, and
  ``order_line_items[].unit_price`` and ``.amount`` are such amounts (API reference, Order).
- Invoiced keeps amounts as numbers in the currency's major unit: a line item's
  ``unit_cost`` is "Unit cost or rate" (``unit_cost=45`` for 45.00) and its ``amount`` is
  "Computed from quantity x unit_cost", in the invoice's ``currency``
  (https://github.com/Invoiced/api/blob/master/source/includes/_invoicing.md.erb, Line Items).

A checklist row between two amounts (``order_line_items.unit_price`` -> ``items.amount``) is
compared in major units, the minor side divided by 10**exponent of the entity's ISO 4217
currency (the ``iso4217`` package). A row between an amount and a figure that is not money
(the corpus maps Invoiced ``items.quantity`` to Chargebee ``order_line_items.amount``) is
compared as written: no unit makes a count and an amount the same fact, so the judge does not
invent one. ``reference_sync/mapping.py`` holds its own copy of these facts, on purpose.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from iso4217 import Currency


@dataclass(frozen=True)
class MoneyFields:
    """Where a vendor resource keeps amounts: its currency field and its amount paths."""

    currency: str  # path of the entity's ISO 4217 code
    minor: bool  # amounts in the minor unit (Chargebee) rather than the major (Invoiced)
    paths: frozenset[str]  # dotted; a path into a list names each element's amount


MONEY: Mapping[tuple[str, str], MoneyFields] = {
    ("chargebee", "orders"): MoneyFields(
        "currency_code",
        True,
        frozenset(
            {
                "order_line_items.unit_price",
                "order_line_items.amount",
                "sub_total",
                "total",
                "tax",
                "discount",
            }
        ),
    ),
    ("invoiced", "invoices"): MoneyFields(
        "currency",
        False,
        frozenset({"items.unit_cost", "items.amount", "subtotal", "total", "balance"}),
    ),
    ("invoiced", "items"): MoneyFields("currency", False, frozenset({"unit_cost"})),
}


def money_fields(system: str, resource: str, path: str) -> MoneyFields | None:
    """The money facts of ``path`` when it holds an amount, else None."""
    fields = MONEY.get((system, resource))
    return fields if fields is not None and path in fields.paths else None


def exponent(currency: Any) -> int | None:
    """Digits after the decimal point of an ISO 4217 code (JPY 0, USD 2, KWD 3); None when
    the code is unknown, so the judge reports what it sees instead of guessing."""
    if not isinstance(currency, str):
        return None
    try:
        return int(Currency(currency.strip().upper()).exponent or 0)
    except ValueError:
        return None


def _canonical(number: Decimal) -> Decimal:
    """10.50 and 10.5 and 1E+1 read the same way: no trailing zeros, no exponent."""
    if number == number.to_integral_value():
        return number.quantize(Decimal(1))
    return number.normalize()


def _major(value: Any, fields: MoneyFields, digits: int) -> Any:
    if isinstance(value, list):
        return [_major(item, fields, digits) for item in value]
    if value is None or isinstance(value, bool | dict):
        return value
    try:
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value).strip())
    except InvalidOperation:
        return value
    if not number.is_finite():
        return value
    return _canonical(number.scaleb(-digits) if fields.minor else number)


def in_major_units(
    value: Any, fields: MoneyFields, entity: Mapping[str, Any] | None
) -> Any:
    """An amount (or a list of them) of ``entity`` in its currency's major unit, canonical;
    unchanged when the entity names no currency the judge knows."""
    currency = (entity or {}).get(fields.currency)
    digits = exponent(currency)
    if digits is None:
        return value
    return _major(value, fields, digits)


@dataclass(frozen=True)
class MoneyRow:
    """A property row between two amounts: both sides read in their currency's major unit.

    Resolved once per checklist row (``money_row``), then applied to every pair of it.
    """

    source: MoneyFields
    target: MoneyFields

    def in_major_units(
        self,
        expected: Any,
        actual: Any,
        source: Mapping[str, Any] | None,
        target: Mapping[str, Any] | None,
    ) -> tuple[Any, Any]:
        """The row's two values, each of its entity, in major units."""
        return in_major_units(expected, self.source, source), in_major_units(
            actual, self.target, target
        )


def money_row(source: tuple[str, str, str], target: tuple[str, str, str]) -> MoneyRow | None:
    """The row between (system, resource, path) ``source`` and ``target`` when both paths
    hold amounts; None otherwise (a count mapped to an amount is compared as written)."""
    left, right = money_fields(*source), money_fields(*target)
    if left is None or right is None:
        return None
    return MoneyRow(left, right)
