"""Chargebee list semantics as pure functions: filters `attr[op]=value`, sort, keyset offsets."""

from __future__ import annotations

import json
import math
import re
from bisect import bisect_right
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime
from typing import Any

from talkqa.sandbox.dispatch import Problem
from talkqa.sandbox.vendor_defs import Filter
from talkqa.sandbox.wire import WireError, parse_literal

Row = dict[str, Any]
Predicate = Callable[[Row], bool]

RESERVED = ("sort_by",)


def bad(param: str, message: str) -> Problem:
    return Problem(400, f"{param} : {message}", "param_wrong_value", param)


def parse_limit(raw: Any) -> int:
    if raw is None:
        return 10
    if not isinstance(raw, str) or not re.fullmatch(r"[0-9]{1,3}", raw) or not 1 <= int(raw) <= 100:
        raise bad("limit", "must be an integer between 1 and 100")
    return int(raw)


def build_predicate(
    query: dict[str, Any], filters: Mapping[str, Filter], params: Collection[str]
) -> Predicate:
    """One predicate for all `attr[op]=value` params, as the vendor defines them (`filters`:
    `vendor_defs.chargebee_filters`); `params` are the list's other parameters (limit, ...).
    An unknown attribute or operator is a 400 naming it, never ignored."""
    checks: list[Predicate] = []
    for name, ops in query.items():
        if name in RESERVED or name in params:
            continue
        spec = filters.get(name)
        if spec is None:
            known = ", ".join(sorted(filters))
            raise bad(name, f"is not a filterable attribute (filter on {known})")
        if not isinstance(ops, dict):
            raise bad(name, "filters are written attr[operator]=value")
        checks += _checks(name, spec, ops, name)
    return lambda row: all(check(row) for check in checks)


def _checks(name: str, spec: Filter, ops: dict[str, Any], wire: str) -> list[Predicate]:
    found: list[Predicate] = []
    for op, raw in ops.items():
        param = f"{wire}[{op}]"
        if spec.kind == "nested":
            sub = spec.nested.get(op)
            if sub is None or not isinstance(raw, dict):
                raise bad(param, f"{op} is not a filterable attribute of {wire}")
            found.append(_within(name, _checks(op, sub, raw, param)))
            continue
        if op not in spec.operators:
            raise bad(param, f"operator {op} is not supported for this attribute "
                             f"(use {', '.join(spec.operators)})")
        if not isinstance(raw, str):
            raise bad(param, "expected a single value")
        if spec.kind == "enum" and op in ("is", "is_not") and raw not in spec.values:
            raise bad(param, f"invalid value {raw[:40]!r} (one of {', '.join(spec.values)})")
        found.append(_check(name, spec.kind, op, raw, param))
    return found


def _within(name: str, inner: list[Predicate]) -> Predicate:
    """Checks on the sub-object ``row[name]`` (absent: an empty one)."""
    def check(row: Row) -> bool:
        value = row.get(name)
        sub = value if isinstance(value, dict) else {}
        return all(each(sub) for each in inner)
    return check


def _check(name: str, kind: str, op: str, raw: str, param: str) -> Predicate:
    if op == "is_present":
        want = _boolean(raw, param)
        return lambda row: (row.get(name) not in (None, "")) == want
    if kind == "boolean":
        flag = _boolean(raw, param)
        return lambda row: row.get(name) is flag
    if kind in ("string", "enum"):
        return _string_check(name, op, raw, param)
    if op == "between":
        low, high = _pair(raw, param, kind)
        return lambda row: _num(row, name) is not None and low <= _num(row, name) <= high  # type: ignore[operator]
    value = _scalar(raw, param, kind)
    if kind == "timestamp" and op == "on":
        day = datetime.fromtimestamp(value, UTC).date()
        return lambda row: (v := _num(row, name)) is not None and datetime.fromtimestamp(
            v, UTC
        ).date() == day
    compare: dict[str, Callable[[float, float], bool]] = {
        "is": lambda a, b: a == b,
        "is_not": lambda a, b: a != b,
        "lt": lambda a, b: a < b,
        "before": lambda a, b: a < b,
        "lte": lambda a, b: a <= b,
        "gt": lambda a, b: a > b,
        "after": lambda a, b: a > b,
        "gte": lambda a, b: a >= b,
    }
    fn = compare[op]
    return lambda row: (v := _num(row, name)) is not None and fn(v, value)


def _string_check(name: str, op: str, raw: str, param: str) -> Predicate:
    if op in ("in", "not_in"):
        values = {str(v) for v in _list(raw, param)}
        if op == "in":
            return lambda row: _text(row, name) in values
        return lambda row: _text(row, name) not in values
    if op == "is":
        return lambda row: _text(row, name) == raw
    if op == "is_not":
        return lambda row: _text(row, name) != raw
    return lambda row: (t := _text(row, name)) is not None and t.startswith(raw)


def _text(row: Row, name: str) -> str | None:
    value = row.get(name)
    return None if value is None else str(value)


def _num(row: Row, name: str) -> float | None:
    value = row.get(name)
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _boolean(raw: str, param: str) -> bool:
    if raw not in ("true", "false"):
        raise bad(param, "must be true or false")
    return raw == "true"


def _list(raw: str, param: str) -> list[Any]:
    """`["a","b"]`, `['a', 'b']` (the Python SDK) or `[a,b]` (the vendor's own pattern,
    `^\\[(.*)(,.*)*\\]$`, allows bare words)."""
    try:
        value = parse_literal(raw, param)
    except WireError as exc:
        if re.fullmatch(r"\[[^\[\]\"']*\]", raw):
            return [part.strip() for part in raw[1:-1].split(",") if part.strip()]
        raise bad(param, "expected a list like [\"a\",\"b\"]") from exc
    if not isinstance(value, list | tuple):
        raise bad(param, "expected a list like [\"a\",\"b\"]")
    return list(value)


def _scalar(raw: str, param: str, kind: str) -> float:
    try:
        number = float(raw)
    except ValueError:
        raise bad(param, f"expected a {kind}") from None
    if not math.isfinite(number) or abs(number) > 1e15:
        raise bad(param, f"expected a finite {kind}")
    if kind == "timestamp" and (number != int(number) or not 0 <= number <= 253402300799):
        raise bad(param, "expected integer Unix seconds")
    return number


def _pair(raw: str, param: str, kind: str) -> tuple[float, float]:
    values = _list(raw, param)
    if len(values) != 2:
        raise bad(param, "between takes exactly two values [low, high]")
    low, high = (_scalar(str(v), param, kind) for v in values)
    return low, high


def parse_sort(query: dict[str, Any], allowed: tuple[str, ...]) -> tuple[str, bool] | None:
    """`sort_by[asc]=updated_at` -> ("updated_at", False); None = the vendor's default
    (newest first)."""
    raw = query.get("sort_by")
    if raw is None:
        return None
    if not isinstance(raw, dict) or len(raw) != 1:
        raise bad("sort_by", "use sort_by[asc]=attr or sort_by[desc]=attr")
    direction, attr = next(iter(raw.items()))
    if direction not in ("asc", "desc") or attr not in allowed:
        raise bad(f"sort_by[{direction}]", f"sort on {' or '.join(allowed)}, asc or desc")
    return str(attr), direction == "desc"


def paginate(
    rows: list[Row],
    keep: Predicate,
    sort: tuple[str, bool] | None,
    limit: int,
    offset: str | None,
) -> tuple[list[Row], str | None]:
    """Keyset pagination: an offset names the last row served, so writes between pages do not
    shift rows across page boundaries (creation order uses the row's position as its seq)."""
    after = _decode_offset(offset)
    if sort is None or sort[0] in ("created_at", "occurred_at"):  # creation order
        descending = sort is None or sort[1]  # no sort_by: newest first, as Chargebee lists
        return _by_position(rows, keep, descending, limit, after)
    attr, descending = sort
    keyed = sorted(
        ((_sort_key(row.get(attr)), seq) for seq, row in enumerate(rows) if keep(row)),
        reverse=descending,
    )
    if after is not None:
        if descending:
            keyed = [k for k in keyed if k < after]
        else:
            keyed = keyed[bisect_right(keyed, after) :]
    page = keyed[: limit + 1]
    more = len(page) > limit
    page = page[:limit]
    chosen = [rows[seq] for _, seq in page]
    next_offset = _encode_offset(page[-1]) if more and page else None
    return chosen, next_offset


SortKey = tuple[int, float | str]


def _sort_key(value: Any) -> SortKey:
    """Absent values first, then numbers, then text: never two types compared (a float() of
    a name was a 500), so any sortable attribute of either type sorts."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (1, float(value))
    if isinstance(value, str):
        return (2, value)
    return (0, 0.0)


def _by_position(
    rows: list[Row], keep: Predicate, descending: bool, limit: int,
    after: tuple[SortKey, int] | None,
) -> tuple[list[Row], str | None]:
    found: list[tuple[int, Row]] = []
    if descending:
        start = len(rows) - 1 if after is None else min(after[1] - 1, len(rows) - 1)
        indices: range = range(start, -1, -1)
    else:
        indices = range(0 if after is None else after[1] + 1, len(rows))
    for seq in indices:
        row = rows[seq]
        if keep(row):
            found.append((seq, row))
            if len(found) > limit:
                break
    more = len(found) > limit
    found = found[:limit]
    next_offset = _encode_offset(((0, 0.0), found[-1][0])) if more and found else None
    return [row for _, row in found], next_offset


def _encode_offset(key: tuple[SortKey, int]) -> str:
    (rank, value), seq = key
    shown: Any = int(value) if isinstance(value, float) and value == int(value) else value
    return json.dumps([rank, shown, seq], separators=(",", ":"), ensure_ascii=False)


def _decode_offset(offset: str | None) -> tuple[SortKey, int] | None:
    if offset is None:
        return None
    try:
        rank, value, seq = json.loads(offset)
        key: tuple[SortKey, int] = ((int(rank), value if rank == 2 else float(value)), int(seq))
    except (ValueError, TypeError, OverflowError):
        raise bad("offset", "use the next_offset of the previous page") from None
    if key[1] < 0 or not isinstance(key[0][1], str if key[0][0] == 2 else float):
        raise bad("offset", "use the next_offset of the previous page")
    return key
