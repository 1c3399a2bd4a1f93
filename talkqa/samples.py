"""Source entities for a scenario, created through the vendor's own API.

A scenario says "Given 3 Chargebee Order entities": this module knows what a valid Order
needs (a Customer to belong to; Chargebee then creates the invoice the order comes from)
and makes the data deterministic for a run id, so a recorded cassette matches its replay
byte for byte. Every id carries the run id: in live mode that is how teardown finds what
this run created, and how the judge restricts itself to it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from talkqa.dataflow.spec import Section
from talkqa.errors import UserError
from talkqa.systems.base import ApiError, Json, NotFound
from talkqa.systems.catalog import Binding, bind, binding_of
from talkqa.systems.connect import Systems

Factory = Callable[[str, int, Mapping[tuple[str, str], list[str]]], dict[str, Any]]


def _customer(run_id: str, i: int, _deps: Mapping[tuple[str, str], list[str]]) -> dict[str, Any]:
    return {
        "id": f"tq-{run_id}-cust-{i}",
        "first_name": "Ada",
        "last_name": f"Lovelace {i}",
        "email": f"ada.{i}.{run_id}@example.com",
        "phone": f"+47 2200 00{i:02d}",
        "preferred_currency_code": "USD",
        "billing_address": {
            "first_name": "Ada",
            "last_name": f"Lovelace {i}",
            "line1": f"Storgata {i}",
            "city": "Oslo",
            "zip": f"01{i:02d}",
            "country": "NO",
        },
    }


def item_family_id() -> str:
    """The Chargebee item family sample items belong to (shared by runs, never deleted)."""
    return os.environ.get("TALKQA_ITEM_FAMILY_ID", "talkqa")


def _item(run_id: str, i: int, _deps: Mapping[tuple[str, str], list[str]]) -> dict[str, Any]:
    return {
        "id": f"tq-{run_id}-item-{i}",
        "name": f"Talk-QA item {run_id} {i}",
        "type": "charge",
        "item_family_id": item_family_id(),
        "description": f"Sample item {i}",
    }


def _ensure_item_family(systems: Systems) -> None:
    """Chargebee refuses an item whose family does not exist: make it once."""
    families = systems.chargebee.collection("item_families")
    family = item_family_id()
    try:
        families.get(family)
    except NotFound:
        families.create({"id": family, "name": "Talk-QA samples"})


_CURRENCIES = ("USD", "EUR", "NOK")


def _order(run_id: str, i: int, deps: Mapping[tuple[str, str], list[str]]) -> dict[str, Any]:
    customers = deps[("chargebee", "Customer")]
    return {
        "id": f"tq-{run_id}-order-{i}",
        "customer_id": customers[(i - 1) % len(customers)],
        "currency_code": _CURRENCIES[(i - 1) % len(_CURRENCIES)],
        "order_line_items": [{"amount": 1000 * i, "description": f"Sample line {i}"}],
    }


@dataclass(frozen=True)
class Recipe:
    """How to make valid entities of one source datatype, and what they need first."""

    factory: Factory
    needs: Mapping[tuple[str, str], int] = field(default_factory=dict)  # dependency -> how many
    prepare: Callable[[Systems], None] | None = None  # vendor set-up the entities need


RECIPES: Mapping[tuple[str, str], Recipe] = {
    ("chargebee", "Customer"): Recipe(_customer),
    ("chargebee", "Item"): Recipe(_item, prepare=_ensure_item_family),
    ("chargebee", "Order"): Recipe(_order, needs={("chargebee", "Customer"): 2}),
}


@dataclass
class Created:
    """What a scenario created, by datatype, in creation order (teardown deletes in reverse)."""

    by_datatype: dict[tuple[str, str], list[Json]] = field(default_factory=dict)
    # (system, collection, id) of everything written, by-products included (an order's invoice)
    order: list[tuple[str, str, str]] = field(default_factory=list)

    def ids(self, key: tuple[str, str]) -> list[str]:
        return [str(e["id"]) for e in self.by_datatype.get(key, [])]

    def all_source_ids(self) -> set[str]:
        return {str(e["id"]) for entities in self.by_datatype.values() for e in entities}

    def add(self, binding: Binding, entity: Json) -> None:
        self.by_datatype.setdefault(binding.key, []).append(entity)
        invoice_id = entity.get("invoice_id") if binding.key == ("chargebee", "Order") else None
        if invoice_id:  # Chargebee made the order from an invoice the connector created first
            self.order.append(("chargebee", "invoices", str(invoice_id)))
        self.order.append((binding.system, binding.resource, str(entity["id"])))


def create(
    binding: Binding,
    count: int,
    systems: Systems,
    run_id: str,
    created: Created | None = None,
) -> Created:
    """Create ``count`` entities of ``binding`` (and their dependencies first) via the API."""
    recipe = RECIPES.get(binding.key)
    if recipe is None:
        raise UserError(
            f"talk-qa cannot create sample {binding.system} {binding.datatype} entities: "
            f"known datatypes are {', '.join(f'{s} {d}' for s, d in RECIPES)}"
        )
    done = created if created is not None else Created()
    deps: dict[tuple[str, str], list[str]] = {}
    for dep_key, dep_count in recipe.needs.items():
        if len(done.ids(dep_key)) < dep_count:
            create(binding_of(dep_key), dep_count - len(done.ids(dep_key)), systems, run_id, done)
        deps[dep_key] = done.ids(dep_key)
    if recipe.prepare is not None and not done.ids(binding.key):
        recipe.prepare(systems)
    resource = systems.resource(binding)
    start = len(done.ids(binding.key)) + 1
    for i in range(start, start + count):
        fields = recipe.factory(run_id, i, deps)
        entity = resource.create(fields, idempotency_key=f"tq-{run_id}-{binding.resource}-{i}")
        done.add(binding, entity)
    return done


def create_for_section(section: Section, count: int, systems: Systems, run_id: str) -> Created:
    """The Given step: ``count`` source entities of a section (plus what they need)."""
    binding = bind(section.source)
    if binding is None:
        raise UserError(
            f"section {section.index} '{section.heading}': talk-qa has no connector for "
            f"{section.source.system} {section.source.datatype}"
        )
    return create(binding, count, systems, run_id)


def delete_created(created: Created, systems: Systems) -> list[str]:
    """Live-mode teardown: delete what the scenario created, newest first; return failures."""
    failures: list[str] = []
    for system, collection, entity_id in reversed(created.order):
        try:
            getattr(systems, system).collection(collection).delete(entity_id)
        except ApiError as exc:
            failures.append(str(exc))
    return failures


def delete_linked_targets(
    source_ids: set[str], systems: Systems, targets: list[Binding]
) -> list[str]:
    """Live-mode teardown of what the system under test wrote: targets claiming our sources.

    ``targets`` in checklist order (referenced first); deletion runs backwards, so invoices go
    before the customers they belong to (Invoiced refuses to delete a customer with invoices).
    """
    failures: list[str] = []
    seen: set[tuple[str, str]] = set()
    for binding in reversed(targets):
        if (binding.system, binding.resource) in seen:
            continue
        seen.add((binding.system, binding.resource))
        resource = systems.resource(binding)
        for entity in list(resource.list()):
            claim = (entity.get("metadata") or {}).get("chargebee_id")
            if claim is not None and str(claim) in source_ids:
                try:
                    resource.delete(str(entity["id"]))
                except ApiError as exc:
                    failures.append(str(exc))
    return failures


# --- edits (the either-side promise) ----------------------------------------------------------


@dataclass(frozen=True)
class Edit:
    """A change a vendor's API accepts on an entity, and whether the checklist maps it.

    ``mapped`` edits must reach the other side (the property must then be equal on both);
    unmapped edits only show that the link survives a change (no duplicate, no loss).
    """

    path: str
    value: Callable[[Json], Any]
    mapped: bool = False


def _suffix(field_name: str) -> Callable[[Json], Any]:
    def value(entity: Json) -> Any:
        return f"{entity.get(field_name) or ''} (edited)".strip()

    return value


# Fields each vendor lets an update change, by (system, resource): vendor facts, not checklist
# facts (Chargebee cannot change an order's currency or customer; Invoiced items only take
# name, description, type, metadata). Paths that a checklist maps are preferred when present.
EDITABLE: Mapping[tuple[str, str], Mapping[str, Callable[[Json], Any]]] = {
    ("chargebee", "customers"): {
        "first_name": _suffix("first_name"),
        "last_name": _suffix("last_name"),
        "email": lambda e: f"edited.{e.get('email') or 'x@example.com'}",
    },
    ("chargebee", "items"): {"description": _suffix("description")},
    ("chargebee", "orders"): {"status": lambda e: "processing"},
    ("invoiced", "customers"): {
        "name": _suffix("name"),
        "email": lambda e: f"edited.{e.get('email') or 'x@example.com'}",
        "phone": lambda e: "+47 22 00 00 00",
    },
    ("invoiced", "items"): {"description": _suffix("description"), "name": _suffix("name")},
    ("invoiced", "invoices"): {"name": _suffix("name")},
}


def plan_edit(section: Section, side: str) -> Edit | None:
    """The edit to make on ``side`` ("source" or "target"): a mapped property when the vendor
    API can change it on both sides, else a neutral field; None when nothing can be edited."""
    source = bind(section.source)
    target = bind(section.target)
    if source is None or target is None:
        return None
    here, there = (source, target) if side == "source" else (target, source)
    editable_here = EDITABLE.get((here.system, here.resource), {})
    editable_there = EDITABLE.get((there.system, there.resource), {})
    for prop in section.properties:
        path_here = prop.source_path if side == "source" else prop.target_path
        path_there = prop.target_path if side == "source" else prop.source_path
        if path_here in editable_here and path_there in editable_there:
            return Edit(path_here, editable_here[path_here], mapped=True)
    mapped_here = {p.source_path if side == "source" else p.target_path for p in section.properties}
    for path, value in editable_here.items():
        if path not in mapped_here:
            return Edit(path, value, mapped=False)
    return None


def apply_edit(
    edit: Edit, binding: Binding, entity_ids: list[str], systems: Systems
) -> dict[str, Any]:
    """Edit each entity through its vendor API; entity id -> the value written."""
    resource = systems.resource(binding)
    written: dict[str, Any] = {}
    for entity_id in entity_ids:
        current = resource.get(entity_id)
        value = edit.value(current)
        resource.update(entity_id, _nested(edit.path, value))
        written[entity_id] = value
    return written


def _nested(path: str, value: Any) -> dict[str, Any]:
    head, _, rest = path.partition(".")
    return {head: _nested(rest, value) if rest else value}


def lookup(entity: Mapping[str, Any], path: str) -> Any:
    """A dotted path's value in vendor JSON (None when absent)."""
    current: Any = entity
    for part in path.split("."):
        if not isinstance(current, Mapping):
            return None
        current = current.get(part)
    return current


# --- snapshots (the idempotence promise, black box) -------------------------------------------


def snapshot(
    systems: Systems, bindings: list[Binding], only: Collection[str] | None = None
) -> dict[str, tuple[str, ...]]:
    """'system resource id' -> (updated_at, resource_version) of every entity of the resources.

    The idempotence check compares two of these: a second run that writes anything moves an
    updated_at (the sandboxes' clock ticks per write) or adds/removes an entity. ``only``
    (live mode: a shared account) keeps the entities with those ids or claiming those sources.
    """
    seen: set[tuple[str, str]] = set()
    state: dict[str, tuple[str, ...]] = {}
    for binding in bindings:
        key = (binding.system, binding.resource)
        if key in seen:
            continue
        seen.add(key)
        for entity in _all(systems, binding):
            if only is not None and not _concerns(entity, only):
                continue
            state[f"{binding.system} {binding.resource} {entity.get('id')}"] = (
                str(entity.get("updated_at")),
                str(entity.get("resource_version", "")),
            )
    return state


def _concerns(entity: Json, ids: Collection[str]) -> bool:
    claim = (entity.get("metadata") or {}).get("chargebee_id")
    return str(entity.get("id")) in ids or (claim is not None and str(claim) in ids)


def _all(systems: Systems, binding: Binding) -> Iterator[Json]:
    yield from systems.resource(binding).list()


def snapshot_changes(
    before: Mapping[str, tuple[str, ...]], after: Mapping[str, tuple[str, ...]]
) -> list[str]:
    """One line per entity a run created, deleted or wrote."""
    lines: list[str] = []
    for key in sorted(set(before) | set(after)):
        if key not in before:
            lines.append(f"{key}: created by the second run")
        elif key not in after:
            lines.append(f"{key}: deleted by the second run")
        elif before[key] != after[key]:
            lines.append(
                f"{key}: written by the second run (updated_at {before[key][0]} -> {after[key][0]})"
            )
    return lines
