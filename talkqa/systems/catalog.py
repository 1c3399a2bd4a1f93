"""Binds a checklist's datatype names to vendor resources.

A checklist says "Invoiced Customers person"; the API says "customers with type=person".
This table is the single place where that translation lives, together with the fields
that hold references to another datatype (an order's ``customer_id`` is a Chargebee
Customer id; an invoice's ``customer`` is an Invoiced Customers person id).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from talkqa.dataflow.spec import DatatypeRef


@dataclass(frozen=True)
class Binding:
    """Where entities of one checklist datatype live and what sets them apart."""

    system: str  # connector key: "chargebee" | "invoiced"
    datatype: str  # canonical checklist name: "Customer", "Customers person", ...
    resource: str  # collection: "customers", "items", "orders", "invoices"
    fixed: Mapping[str, Any] = field(default_factory=dict)  # e.g. {"type": "person"}
    # field path -> the datatype (system, canonical name) whose id it holds
    references: Mapping[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return (self.system, self.datatype)

    def holds(self, entity: Mapping[str, Any]) -> bool:
        """Whether an entity of the resource belongs to this datatype (type=person, ...)."""
        return all(entity.get(k) == v for k, v in self.fixed.items())


_BINDINGS: tuple[Binding, ...] = (
    Binding("chargebee", "Customer", "customers"),
    Binding("chargebee", "Item", "items"),
    Binding("chargebee", "Order", "orders", references={"customer_id": ("chargebee", "Customer")}),
    # Chargebee's API can neither create, list nor change one (talkqa.systems.no_api): bound so
    # its sections are judged as vendor-impossible, never as "not covered"
    Binding("chargebee", "Business_entity", "business_entities"),
    Binding("invoiced", "Customers person", "customers", fixed={"type": "person"}),
    Binding("invoiced", "Customers company", "customers", fixed={"type": "company"}),
    Binding("invoiced", "Items", "items"),
    Binding(
        "invoiced",
        "Invoices",
        "invoices",
        references={"customer": ("invoiced", "Customers person")},
    ),
    # "Invoiced Lineitem": the line items of an invoice; its paths go into the list
    # (items.amount), so the entity paired with a Chargebee Order is the invoice itself
    Binding("invoiced", "Lineitem", "invoices"),
)

# Names the generator used over time for the same datatype (see dataflow-format.md).
_ALIASES: Mapping[tuple[str, str], str] = {
    ("invoiced", "customers (human data)"): "Customers person",
    ("invoiced", "customers (organisation data)"): "Customers company",
}


def system_key(name: str) -> str:
    """'PowerOffice GO' -> 'powerofficego': display names drift, keys must not."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def bind(ref: DatatypeRef) -> Binding | None:
    """The binding of a checklist datatype, or None when talk-qa has no connector for it."""
    system = system_key(ref.system)
    datatype = " ".join(ref.datatype.split())
    datatype = _ALIASES.get((system, datatype.lower()), datatype)
    for binding in _BINDINGS:
        if binding.system == system and binding.datatype.lower() == datatype.lower():
            return binding
    return None


def binding_of(key: tuple[str, str]) -> Binding:
    """The binding named by a reference target (system, canonical datatype)."""
    found = bind(DatatypeRef(system=key[0], datatype=key[1]))
    if found is None:
        raise KeyError(f"no binding for {key[0]} {key[1]}")
    return found
