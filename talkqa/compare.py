"""The judge's own reading of values: dotted paths, declared-type coercion, vendor normalisation.

The judge must not trust the syncer's mapping code, so it owns these rules: a checklist
declares a type per property ("string", "integer", ...), vendors store the same fact in
different shapes (Invoiced keeps ``usd`` for Chargebee's ``USD``; ids are ints on one side
and strings on the other), and a finding is only raised when the values differ *after*
both sides are read the same way. deepdiff then explains what differs, in a line.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

# Leaf names whose values are ISO codes (ISO 4217 currencies, ISO 3166 countries): the
# vendors agree on the code but not on its case, so case never makes a mismatch.
_ISO_CODE_LEAVES = frozenset(
    {"currency", "currency_code", "preferred_currency_code", "base_currency_code", "country"}
)
_TRUE = frozenset({"true", "1", "yes", "y", "on"})
_FALSE = frozenset({"false", "0", "no", "n", "off"})
KNOWN_TYPES = frozenset({"string", "integer", "float", "decimal", "boolean"})


class CoercionError(ValueError):
    """A value cannot be read as its declared type (e.g. 'abc' as an integer)."""


def read_path(entity: Mapping[str, Any] | None, path: str) -> Any:
    """The value at a dotted path; a list along the way maps over its elements.

    ``order_line_items.unit_price`` reads every line's unit price as a list. An absent
    key reads as None: vendors omit empty fields as often as they send null.
    """
    return _read(entity, _parts(path), 0)


@functools.cache
def _parts(path: str) -> tuple[str, ...]:
    """A path's keys, split once: the judge reads the same few paths of every entity."""
    return tuple(part for part in path.split(".") if part)


def _read(value: Any, parts: tuple[str, ...], at: int) -> Any:
    while at < len(parts):
        if type(value) is dict or isinstance(value, Mapping):  # dict first: no ABC check
            value = value.get(parts[at])
            at += 1
        elif isinstance(value, list):
            return [_read(item, parts, at) for item in value]
        else:
            return None
    return value


def declared_type(data_type: str | None) -> str | None:
    """The checklist's type, or None (compare as is) when N/A or not a type we know."""
    if data_type is None:
        return None
    name = data_type.strip().strip('"').lower()
    return name if name in KNOWN_TYPES else None


def coerce(value: Any, data_type: str | None) -> Any:
    """Read a value as the declared type; None and blank strings stay None (absent)."""
    return _coerce(value, _AS_KIND.get(declared_type(data_type)))


def _coerce(value: Any, as_kind: Callable[[Any], Any] | None) -> Any:
    if isinstance(value, list):
        return [_coerce(item, as_kind) for item in value]
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return value if as_kind is None else as_kind(value)


def _as_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict | list):
        raise CoercionError(f"{value!r} is not a string")
    return str(value)


def _as_decimal(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise CoercionError(f"{value!r} is not a number")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise CoercionError(f"{value!r} is not a finite number")
        return Decimal(repr(value))
    if isinstance(value, int | Decimal):
        return Decimal(value)
    if isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise CoercionError(f"{value!r} is not a number") from None
        if not number.is_finite():
            raise CoercionError(f"{value!r} is not a finite number")
        return number
    raise CoercionError(f"{value!r} is not a number")


def _as_integer(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    number = _as_decimal(value)
    if number != number.to_integral_value():
        raise CoercionError(f"{value!r} is not a whole number")
    return int(number)


def _as_float(value: Any) -> float:
    return float(_as_decimal(value))


def _as_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise CoercionError(f"{value!r} is not a boolean")


_AS_KIND: Mapping[str | None, Callable[[Any], Any]] = {
    "string": _as_string,
    "integer": _as_integer,
    "float": _as_float,
    "decimal": _as_decimal,
    "boolean": _as_boolean,
}


def _leaf(path: str) -> str:
    return path.rsplit(".", 1)[-1].strip().lower()


def normalise(value: Any, path: str) -> Any:
    """Vendor normalisations that hold whatever the declared type: ISO codes ignore case."""
    return _upper(value) if _leaf(path) in _ISO_CODE_LEAVES else value


def _upper(value: Any) -> Any:
    if isinstance(value, list):
        return [_upper(item) for item in value]
    return value.strip().upper() if isinstance(value, str) else value


def prepare(value: Any, data_type: str | None, path: str) -> Any:
    """Coerce to the declared type, then apply the vendor normalisations of the path."""
    return preparer(data_type, path)(value)


@functools.cache
def preparer(data_type: str | None, path: str) -> Callable[[Any], Any]:
    """``prepare`` for one checklist row's side, resolved once: the judge applies the same
    few (type, path) pairs to every entity, and working out the type and the path's
    normalisation per value was most of a comparison's cost."""
    as_kind = _AS_KIND.get(declared_type(data_type))
    if _leaf(path) in _ISO_CODE_LEAVES:
        return lambda value: _upper(_coerce(value, as_kind))
    return lambda value: _coerce(value, as_kind)


def _equal(left: Any, right: Any) -> bool:
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(
            _equal(a, b) for a, b in zip(left, right, strict=True)
        )
    if isinstance(left, float) and isinstance(right, float):
        return math.isclose(left, right, rel_tol=1e-9, abs_tol=1e-12)
    if type(left) is not type(right) and not (_is_number(left) and _is_number(right)):
        return False
    return bool(left == right)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def same(
    expected: Any,
    actual: Any,
    data_type: str | None,
    *,
    source_path: str,
    target_path: str,
) -> bool:
    """Whether the source's value and the target's value state the same fact.

    A value that cannot be read as the declared type only equals an identical raw value:
    the judge reports what it sees rather than guessing.
    """
    return comparer(data_type, source_path, target_path)(expected, actual)


@functools.cache
def comparer(data_type: str | None, source_path: str, target_path: str) -> Callable[
    [Any, Any], bool
]:
    """``same`` for one checklist row, its two preparers resolved once: the judge compares
    the same few rows on tens of thousands of pairs."""
    prepare_left, prepare_right = preparer(data_type, source_path), preparer(data_type, target_path)

    def compared(expected: Any, actual: Any) -> bool:
        try:
            left = prepare_left(expected)
        except CoercionError:
            left = _Raw(expected)
        try:
            right = prepare_right(actual)
        except CoercionError:
            right = _Raw(actual)
        if isinstance(left, _Raw) or isinstance(right, _Raw):
            return (
                isinstance(left, _Raw) and isinstance(right, _Raw) and left.value == right.value
            )
        return _equal(left, right)

    return compared


class _Raw:
    """A value that failed coercion, kept apart so it never equals a coerced value."""

    def __init__(self, value: Any) -> None:
        self.value = value


def _prepared_or_raw(value: Any, data_type: str | None, path: str) -> tuple[Any, str | None]:
    try:
        return prepare(value, data_type, path), None
    except CoercionError as exc:
        return value, str(exc)


def _has_ids(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(item, Mapping) and "id" in item for item in value)
    )


def explain(
    expected: Any,
    actual: Any,
    *,
    path: str,
    data_type: str | None = None,
    source_path: str | None = None,
    limit: int = 3,
) -> str:
    """deepdiff's account of a mismatch, in one short readable line.

    Values are compared as the judge compared them (coerced, normalised); lists of
    entities with an ``id`` are grouped by it so a reordered list is not a difference.
    """
    left, left_error = _prepared_or_raw(expected, data_type, source_path or path)
    right, right_error = _prepared_or_raw(actual, data_type, path)
    notes = [
        f"{side} {error}"
        for side, error in (("expected", left_error), ("got", right_error))
        if error
    ]
    # imported here: deepdiff is a sixth of a second of CPU at import, paid by every process
    # that imports the judge (each syncer the defect catalogue starts), and only a mismatch
    # needs it
    from deepdiff import DeepDiff

    name = declared_type(data_type)
    if _has_ids(left) and _has_ids(right):
        diff = DeepDiff(left, right, group_by="id", threshold_to_diff_deeper=0, view="tree")
        root = path
    else:
        diff = DeepDiff({path: left}, {path: right}, threshold_to_diff_deeper=0, view="tree")
        root = ""
    lines: list[str] = []
    for report_type in sorted(diff.keys(), key=_report_rank):
        for level in diff[report_type]:
            lines.append(_describe(report_type, level, root))
    shown = lines[:limit]
    if len(lines) > limit:
        shown.append(f"(+{len(lines) - limit} more)")
    text = "; ".join(notes + shown)
    if name:
        text = f"as {name}: {text}" if text else f"as {name}"
    return text


_REPORT_ORDER = (
    "values_changed",
    "type_changes",
    "dictionary_item_removed",
    "iterable_item_removed",
    "dictionary_item_added",
    "iterable_item_added",
)


def _report_rank(report_type: str) -> tuple[int, str]:
    rank = _REPORT_ORDER.index(report_type) if report_type in _REPORT_ORDER else len(_REPORT_ORDER)
    return rank, report_type


def _describe(report_type: str, level: Any, root: str) -> str:
    where = _readable_path(str(level.path()), root)
    t1, t2 = level.t1, level.t2
    if report_type in ("dictionary_item_added", "iterable_item_added"):
        return f"{where} only on the target: {_short(t2)}"
    if report_type in ("dictionary_item_removed", "iterable_item_removed"):
        return f"{where} missing on the target (expected {_short(t1)})"
    if report_type == "type_changes":
        return f"{where}: {type(t1).__name__} {_short(t1)} vs {type(t2).__name__} {_short(t2)}"
    if report_type == "values_changed":
        return f"{where}: {_short(t1)} -> {_short(t2)}"
    return f"{where}: {report_type.replace('_', ' ')}"


def _readable_path(deep_path: str, root: str) -> str:
    """ "root['li_1']['unit_price']" under root "items" -> "items[li_1].unit_price"."""
    out = root
    grouped = bool(root)
    for match in re.finditer(r"\[('(?:[^'\\]|\\.)*'|[^\]]*)\]", deep_path):
        token = match.group(1)
        if token.startswith("'"):
            key = token[1:-1]
            if grouped:
                out += f"[{key}]"
                grouped = False
            else:
                out += f".{key}" if out else key
        else:
            out += f"[{token}]"
    return out or "value"


def _short(value: Any, width: int = 60) -> str:
    text = repr(value)
    if isinstance(value, Decimal):
        text = str(value)
    return text if len(text) <= width else text[: width - 3] + "..."
