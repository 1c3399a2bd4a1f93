"""The vendors' own definitions (`defs/*.json`, made by `tools/vendor_defs/extract.py`) as
typed data, and the request checks both emulators derive from them.

A parameter, filter or operator the vendor does not define is a 400 naming it; one the
vendor defines is accepted even where the sandbox does not model it. Max lengths, enums and
required parameters come from the same data, so the sandbox cannot drift from the vendor
one hand-written rule at a time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

Json = dict[str, Any]


@cache
def load(vendor: str) -> Json:
    """The committed definitions of ``vendor`` ("chargebee" or "invoiced")."""
    text = resources.files("talkqa.sandbox").joinpath("defs", f"{vendor}.json").read_text(
        encoding="utf-8"
    )
    data: Json = json.loads(text)
    return data


def resource(vendor: str, name: str) -> Json:
    found: Json = load(vendor)["resources"][name]
    return found


def attributes(vendor: str, name: str) -> Json:
    """attribute -> {"type", "required", ["enum"]} of a resource as the vendor returns it."""
    found: Json = resource(vendor, name)["attributes"]
    return found


def operation(vendor: str, name: str, op: str) -> Json:
    found: Json = resource(vendor, name)["operations"][op]
    return found


@dataclass(frozen=True)
class Filter:
    """One list filter: its kind decides how values compare; nested ones filter a sub-object
    (`relationship[parent_id][is]=...`)."""

    kind: str  # string | enum | number | timestamp | boolean | nested
    operators: tuple[str, ...]
    values: tuple[str, ...] = ()
    nested: dict[str, Filter] = field(default_factory=dict)


def _filter(ops: Json) -> Filter:
    if any("properties" in spec for spec in ops.values()):
        return Filter("nested", tuple(sorted(ops)),
                      nested={sub: _filter(spec.get("properties", {})) for sub, spec in
                              ops.items()})
    names = tuple(sorted(ops))
    values = tuple(ops.get("is", {}).get("enum", ()))
    if "after" in ops:
        return Filter("timestamp", names)
    if "lt" in ops:
        return Filter("number", names)
    if values and set(values) == {"true", "false"}:
        return Filter("boolean", names)
    if values:
        return Filter("enum", names, values)
    return Filter("string", names)


@cache
def chargebee_filters(name: str) -> dict[str, Filter]:
    """attribute -> Filter of a Chargebee list operation."""
    return {attr: _filter(ops) for attr, ops in operation("chargebee", name, "list")["filters"]
            .items()}


def sort_by(vendor: str, name: str) -> tuple[str, ...]:
    return tuple(operation(vendor, name, "list").get("sort_by", ()))


class ParamError(ValueError):
    """A request parameter the vendor would refuse; `param` is its wire name."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


def check_params(vendor: str, name: str, op: str, params: Json, where: str) -> None:
    """Refuse what the vendor's definition of the operation refuses: unknown parameters,
    strings over their max length, values outside an enum, missing required ones."""
    spec = operation(vendor, name, op)
    for key in spec.get("required", ()):
        if params.get(key) in (None, ""):
            raise ParamError(key, f"{key} : cannot be blank")
    _check_object(spec["params"], params, "", where)


def _check_object(schema: Json, params: Json, prefix: str, where: str) -> None:
    for key, value in params.items():
        wire = f"{prefix}[{key}]" if prefix else key
        found = schema.get(key)
        if found is None:
            raise ParamError(wire, f"{wire} : is not a parameter of {where}")
        _check_value(found, value, wire, where)


def _check_value(schema: Json, value: Any, wire: str, where: str) -> None:
    kind = schema.get("type")
    if isinstance(value, dict):
        properties = schema.get("properties")
        if kind == "object" and properties:  # an empty properties list: any key (metadata)
            _check_object(properties, value, wire, where)
        elif kind != "object" and kind is not None and kind != "any":
            raise ParamError(wire, f"{wire} : expected a single value")
        return
    if isinstance(value, list):
        if kind == "object":  # columns: charges[amount][0] -> {"amount": ...} per element
            for index, element in enumerate(value):
                if isinstance(element, dict):
                    for sub, item in element.items():
                        column = schema.get("properties", {}).get(sub)
                        name = f"{wire}[{sub}][{index}]"
                        if column is None:
                            raise ParamError(name, f"{name} : is not a parameter of {where}")
                        _check_value(column.get("items", {}), item, name, where)
            return
        for index, element in enumerate(value):
            _check_value(schema.get("items", {}), element, f"{wire}[{index}]", where)
        return
    if not isinstance(value, str) or value == "":
        return
    limit = schema.get("maxLength")
    if isinstance(limit, int) and len(value) > limit:
        raise ParamError(wire, f"{wire} : cannot be more than {limit} characters")
    choices = schema.get("enum")
    if choices and kind == "string" and value not in choices:
        raise ParamError(wire, f"{wire} : invalid value {value[:40]!r} (one of "
                               f"{', '.join(map(str, choices[:12]))})")
