"""Property maps as pure functions: dotted paths, declared-type coercion, vendor normalisation.

Everything the sync compares is first brought to one *comparison form*: the value as the
target system would hold it under the checklist's declared type, after the vendors' own
normalisations (Invoiced keeps ISO currency codes lower case, Chargebee upper case). Two
sides are "in sync" when their comparison forms are equal, so a harmless difference of
spelling (``USD``/``usd``, ``5``/``"5"``, ``""``/null) never causes a write, and the same
value never ping-pongs between the systems.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Final

Json = dict[str, Any]


class _Missing:
    """A path that leads nowhere: distinct from an explicit null."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()


class CoercionError(ValueError):
    """A value cannot be read as the checklist's declared type."""


# --- dotted paths -------------------------------------------------------------------------


def read_path(entity: Mapping[str, Any], path: str) -> Any:
    """``billing_address.city`` -> the nested value, MISSING when any step is absent."""
    current: Any = entity
    for step in path.split("."):
        if not isinstance(current, Mapping) or step not in current:
            return MISSING
        current = current[step]
    return current


def write_path(fields: Json, path: str, value: Any) -> None:
    """Set ``billing_address.city`` in a (nested) dict of fields to send, in place."""
    steps = path.split(".")
    current = fields
    for step in steps[:-1]:
        inner = current.get(step)
        if not isinstance(inner, dict):
            inner = {}
            current[step] = inner
        current = inner
    current[steps[-1]] = value


def leaf(path: str) -> str:
    return path.rsplit(".", 1)[-1]


def top(path: str) -> str:
    return path.split(".", 1)[0]


# --- declared types -----------------------------------------------------------------------

_TRUE = {"true", "1", "yes", "on", "y", "t"}
_FALSE = {"false", "0", "no", "off", "n", "f"}


def _to_decimal(value: Any, data_type: str) -> Decimal:
    if isinstance(value, bool):
        raise CoercionError(f"cannot read boolean {value!r} as {data_type}")
    try:
        return Decimal(str(value).strip())
    except InvalidOperation as error:
        raise CoercionError(f"cannot read {value!r} as {data_type}") from error


def _decimal_text(number: Decimal) -> str:
    text = format(number.normalize(), "f")
    return "0" if text in {"-0", ""} else text


def coerce(value: Any, data_type: str | None) -> Any:
    """The value under the declared type; None and "" are both "no value" (None).

    ``decimal`` comes out as its canonical text ("1.5" for 1.50) so comparison forms are
    exact and JSON-storable; ``to_wire`` turns it back into a number for the API.
    """
    if value is MISSING or value is None or (isinstance(value, str) and value.strip() == ""):
        return None
    if data_type is None:
        return value
    if data_type == "string":
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        if isinstance(value, dict | list):
            raise CoercionError(f"cannot read {type(value).__name__} as string")
        return str(value)
    if data_type == "integer":
        number = _to_decimal(value, data_type)
        if number != number.to_integral_value():
            raise CoercionError(f"cannot read {value!r} as integer without losing its fraction")
        return int(number)
    if data_type == "float":
        return float(_to_decimal(value, data_type))
    if data_type == "decimal":
        return _decimal_text(_to_decimal(value, data_type))
    if data_type == "boolean":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise CoercionError(f"cannot read {value!r} as boolean")
    return value  # an unknown declared type: compare as is


def to_wire(value: Any, data_type: str | None) -> Any:
    """A comparison-form value as the API wants it (decimals become JSON numbers)."""
    if data_type == "decimal" and isinstance(value, str):
        number = Decimal(value)
        return int(number) if number == number.to_integral_value() else float(number)
    return value


def reverse_coerce(value: Any, like: Any) -> Any:
    """A target value in the source's own type, guessed from the source's current value.

    The checklist declares only the target's type, so the source's current value is the
    best witness of what the source expects (an integer stays an integer).
    """
    if value is None or like is None or like is MISSING:
        return value
    try:
        if isinstance(like, bool):
            return coerce(value, "boolean")
        if isinstance(like, int):
            return coerce(value, "integer")
        if isinstance(like, float):
            return coerce(value, "float")
        if isinstance(like, str):
            return coerce(value, "string")
    except CoercionError:
        return value
    return value


# --- vendor normalisations ----------------------------------------------------------------


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


# (system, leaf field name) -> how that vendor stores the value.
NORMALISERS: Mapping[tuple[str, str], Callable[[Any], Any]] = {
    ("invoiced", "currency"): _lower,
    ("invoiced", "country"): _upper,
    ("chargebee", "currency_code"): _upper,
    ("chargebee", "preferred_currency_code"): _upper,
    ("chargebee", "country"): _upper,
}


def normalise(system: str, path: str, value: Any) -> Any:
    """The value as ``system`` stores it at ``path`` (``USD`` -> ``usd`` for Invoiced)."""
    fix = NORMALISERS.get((system, leaf(path)))
    return fix(value) if fix is not None and value is not None else value


def comparison_form(value: Any, data_type: str | None, system: str, path: str) -> Any:
    """Coerce then normalise as ``system`` would store ``path``: the form both sides share."""
    return normalise(system, path, coerce(value, data_type))


# --- what the vendors require or forbid ---------------------------------------------------


def derived_name(entity: Mapping[str, Any]) -> str:
    """Invoiced requires a customer name: first + last, else company, else email, else id."""
    parts = [str(entity.get(k) or "").strip() for k in ("first_name", "last_name")]
    full = " ".join(p for p in parts if p)
    for candidate in (full, entity.get("company"), entity.get("email"), entity.get("id")):
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()
    return str(entity.get("id", ""))


def _item_name(entity: Mapping[str, Any]) -> str:
    for key in ("name", "external_name", "id"):
        value = entity.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return str(entity.get("id", ""))


def _first_name(entity: Mapping[str, Any]) -> str:
    """An Invoiced person's name split for Chargebee: all but the last word."""
    words = str(entity.get("name") or "").split()
    return " ".join(words[:-1]) if len(words) > 1 else " ".join(words)


def _last_name(entity: Mapping[str, Any]) -> str:
    words = str(entity.get("name") or "").split()
    return words[-1] if len(words) > 1 else ""


def item_family_id() -> str:
    """The Chargebee item family items from Invoiced go into (Chargebee requires one)."""
    return os.environ.get("TALKQA_ITEM_FAMILY_ID", "talkqa")


# (target system, target resource) -> fields the target needs that no checklist row maps,
# derived from the source entity. Written on create, and kept up to date one way. A
# Chargebee customer made from an Invoiced person is named as a person (so it stays human
# data, see talkqa.systems.catalog); a Chargebee item needs an id, a type and a family.
DERIVED: Mapping[tuple[str, str], Mapping[str, Callable[[Mapping[str, Any]], Any]]] = {
    ("invoiced", "customers"): {"name": derived_name},
    ("invoiced", "items"): {"name": _item_name},
    ("chargebee", "customers"): {"first_name": _first_name, "last_name": _last_name},
    ("chargebee", "items"): {
        "id": lambda e: str(e.get("id")),
        "name": _item_name,
        "type": lambda _e: "charge",
        "item_family_id": lambda _e: item_family_id(),
    },
}


# --- where a target names its source ------------------------------------------------------

# (target system, resource) -> the field that holds the source's id: a metadata object by the
# vendor's own name, or (a Chargebee order has no metadata) its free ``reference_id`` holding
# ``<system>_id:<id>``.
CLAIM_FIELD: Mapping[tuple[str, str], str] = {
    ("chargebee", "customers"): "meta_data",
    ("chargebee", "orders"): "reference_id",
}


def claim_field(system: str, resource: str) -> str:
    return CLAIM_FIELD.get((system, resource), "metadata")


def claim_fields(system: str, resource: str, key: str, source_id: str, fields: Json) -> Json:
    """``fields`` plus the claim of ``source_id`` (``key``: ``chargebee_id``), kept whole."""
    name = claim_field(system, resource)
    if name == "reference_id":
        return {**fields, name: f"{key}:{source_id}"}
    current = fields.get(name)
    return {**fields, name: {**(current if isinstance(current, dict) else {}), key: source_id}}


def claim_of(entity: Mapping[str, Any], key: str) -> str | None:
    """The source id a target names (``metadata``, ``meta_data`` or ``reference_id``)."""
    for name in ("metadata", "meta_data"):
        metadata = entity.get(name)
        if isinstance(metadata, Mapping) and metadata.get(key) is not None:
            return str(metadata[key])
    reference = entity.get("reference_id")
    if isinstance(reference, str) and reference.startswith(f"{key}:"):
        return reference[len(key) + 1 :]
    return None

# (system, resource) -> fields the API refuses to change after create.
IMMUTABLE: Mapping[tuple[str, str], frozenset[str]] = {
    ("chargebee", "orders"): frozenset({"currency_code", "customer_id"}),
    ("chargebee", "items"): frozenset({"id", "type", "item_family_id"}),
    ("chargebee", "customers"): frozenset({"id"}),
    ("invoiced", "invoices"): frozenset({"customer", "id"}),
    ("invoiced", "items"): frozenset({"unit_cost", "currency", "id"}),
    ("invoiced", "customers"): frozenset({"id"}),
}

# Of the immutable fields, those a delete + recreate can still change, when the sync created
# the entity (never anything it did not create). Items keep their caller-chosen id.
RECREATABLE: Mapping[tuple[str, str], frozenset[str]] = {
    ("invoiced", "items"): frozenset({"unit_cost", "currency"}),
    ("invoiced", "invoices"): frozenset({"customer"}),
}

# Resources whose ids the caller chooses, so a recreate can keep the id.
CALLER_CHOSEN_ID: frozenset[tuple[str, str]] = frozenset({("invoiced", "items")})


def immutable(system: str, resource: str, path: str) -> bool:
    return top(path) in IMMUTABLE.get((system, resource), frozenset())


def recreatable(system: str, resource: str, path: str) -> bool:
    return top(path) in RECREATABLE.get((system, resource), frozenset())


def is_deleted(entity: Mapping[str, Any]) -> bool:
    """Chargebee flags deleted customers/orders (``deleted``) and items (``status``)."""
    return entity.get("deleted") is True or entity.get("status") == "deleted"
