"""Wire formats both vendors share: bracket-notation forms, literal values, JSON bodies.

Pure functions: the apps feed them the raw request pieces and get typed data or `WireError`.
Every value they let through can be stored and rendered back: bracket keys are at most
`MAX_KEY_DEPTH` segments deep, integers at most `MAX_INT_DIGITS` digits, and no string holds a
lone UTF-16 surrogate (JSON can carry one, UTF-8 cannot), so no reply can fail to render.
"""

from __future__ import annotations

import ast
import json
import math
import re
from typing import Any

import orjson

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
MAX_KEY_DEPTH = 4  # `a[b][c][0]`: deeper than any parameter either vendor documents
MAX_INT_DIGITS = 18  # fits a signed 64-bit integer, as the vendors' ids and amounts do
MAX_NESTING = 32  # JSON arrays/objects inside each other


class WireError(ValueError):
    """The request cannot be read at all; `param` names the culprit when known."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


def split_key(key: str) -> list[str]:
    """`order_line_items[id][0]` -> ["order_line_items", "id", "0"]."""
    if key.count("[") >= MAX_KEY_DEPTH:
        raise WireError(f"parameter name {key[:60]!r} is nested more than {MAX_KEY_DEPTH} deep",
                        key[:60])
    match = _KEY.match(key)
    if match is None:
        raise WireError(f"malformed parameter name {key[:60]!r}", key[:60])
    if not storable(key):
        raise WireError("parameter names must be valid Unicode text", None)
    return [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]


def storable(text: str) -> bool:
    """Whether UTF-8 can carry ``text`` (a lone surrogate from a JSON `\\ud800` cannot)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def bounded_int(text: str) -> int:
    """`int()` for request numbers: more than `MAX_INT_DIGITS` digits is the caller's error
    (Python refuses above 4,300 digits anyway, with a ValueError that is no 400)."""
    if len(text.lstrip("+-")) > MAX_INT_DIGITS:
        raise WireError(f"number {text[:24]}... has more than {MAX_INT_DIGITS} digits")
    return int(text)


def parse_bracketed(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Nest bracket keys the way Chargebee does.

    A trailing numeric segment is a column index: `a[k][0]` is field k of element 0 of array a,
    `a[0]` is element 0 of the scalar array a, `a[k]` is field k of object a.
    """
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = split_key(key)
        if len(parts) >= 2 and _is_index(parts[-1]):
            index = int(parts[-1])
            path = parts[:-1]
            if len(path) == 1:
                _slot(root, path[0], {})[index] = value
            else:
                array = _descend(root, path[:-1])
                elements = array.setdefault("\0array", {})
                elements.setdefault(index, {})[path[-1]] = value
            continue
        node = _descend(root, parts[:-1])
        node[parts[-1]] = value
    frozen: dict[str, Any] = _freeze(root)
    return frozen


def _is_index(part: str) -> bool:
    """An array column: ASCII digits only (`int("²")` fails) and a sane size."""
    return re.fullmatch(r"[0-9]{1,4}", part) is not None


def _slot(node: dict[str, Any], key: str, default: dict[Any, Any]) -> dict[Any, Any]:
    found = node.setdefault(key, default)
    if not isinstance(found, dict):
        raise WireError(f"parameter {key!r} given both as a value and as a list", key)
    return found


def _descend(node: dict[str, Any], path: list[str]) -> dict[str, Any]:
    for part in path:
        node = _slot(node, part, {})
    return node


def _freeze(node: dict[Any, Any]) -> Any:
    """Turn index-keyed dicts into lists ordered by index."""
    if "\0array" in node and len(node) == 1:
        return [_freeze(node["\0array"][i]) for i in sorted(node["\0array"])]
    if node and all(isinstance(k, int) or (isinstance(k, str) and _is_index(k)) for k in node):
        ordered = sorted(node, key=int)
        return [_freeze(node[i]) if isinstance(node[i], dict) else node[i] for i in ordered]
    out: dict[str, Any] = {}
    for key, value in node.items():
        out[key] = _freeze(value) if isinstance(value, dict) else value
    return out


def parse_literal(text: str, param: str) -> Any:
    """JSON first, then a Python literal (the Chargebee SDK sends `{'k': 'v'}` and `['a', 'b']`)."""
    try:
        value = json.loads(text, parse_int=bounded_int)
    except WireError:
        raise
    except (ValueError, RecursionError):
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError) as exc:
            raise WireError(f"{param} : invalid value {text[:60]!r}", param) from exc
    if not _plain_json(value):
        raise WireError(f"{param} : only JSON values are allowed, got {text[:60]!r}", param)
    return value


def _plain_json(value: Any, depth: int = 0) -> bool:
    """What JSON can carry back out: no sets, tuples-as-keys, bytes, NaN or infinities."""
    if depth > MAX_NESTING:
        return False
    if value is None or isinstance(value, bool):
        return True
    if isinstance(value, int):
        return bool(-(10**MAX_INT_DIGITS) < value < 10**MAX_INT_DIGITS)
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list | tuple):
        return all(_plain_json(item, depth + 1) for item in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and storable(k) and _plain_json(v, depth + 1)
                   for k, v in value.items())
    return False


def parse_json_body(raw: bytes) -> dict[str, Any]:
    """A JSON object body; anything else is the caller's mistake (400), never a 500."""
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw, parse_int=bounded_int)
    except json.JSONDecodeError as exc:
        raise WireError(f"request body is not valid JSON: {exc.msg}") from exc
    except UnicodeDecodeError:
        raise WireError("request body is not UTF-8") from None
    except RecursionError:
        raise WireError("request body is nested too deeply") from None
    if not isinstance(data, dict):
        raise WireError("request body must be a JSON object")
    if not _plain_json(data):
        raise WireError("request body holds values the API cannot store (NaN, Infinity, "
                        f"numbers over {MAX_INT_DIGITS} digits, lone UTF-16 surrogates) or is "
                        "nested too deeply")
    return data


def render(payload: Any) -> bytes:
    """Compact UTF-8 JSON in the order the builders inserted keys: stable across runs.

    orjson, because rendering full list pages was the emulators' largest cost per request
    (a 100-entity page: about 10x faster than the stdlib). Its bytes are the stdlib's compact,
    ``ensure_ascii=False`` ones but for floats below 1e-4, written without an exponent
    (``0.00001``, not ``1e-05``): the same number to every JSON reader. Keys that are not
    strings are written as strings, as the stdlib does.
    """
    return orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS)


def money(value: float) -> int | float:
    """Invoiced (PHP) writes whole amounts as integers and others with two decimals at most."""
    rounded = round(float(value), 2)
    return int(rounded) if rounded == int(rounded) else rounded
