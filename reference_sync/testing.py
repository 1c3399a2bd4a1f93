"""An in-memory stand-in for the two vendors, for the sync's tests and benchmark.

It honours the Resource contract and the vendor behaviour the sync depends on: ids
(Invoiced integers, Chargebee strings), an ``updated_at`` clock that ticks on every write
(so tests control same-second ties with ``hold``), ``updated_after`` filtering oldest
change first, idempotent replays, Chargebee soft deletes, lower-case Invoiced currencies,
and the fields each API refuses to change. Calls are serialised (one lock shared by both
vendors), so a sync writing from several threads meets what a server would. It counts
calls (a list counts one call per page of 100) so tests can assert how many requests a
run costs. It is not the sandbox: that emulates HTTP; this only emulates the contract.
"""

from __future__ import annotations

import copy
import functools
import math
import threading
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

from talkqa.dataflow.spec import DataflowSpec, DatatypeRef, PropertyMap, Section, SectionKind
from talkqa.systems.base import BadRequest, Json, NotFound
from talkqa.systems.catalog import Binding

PAGE = 100

_IMMUTABLE: Mapping[tuple[str, str], frozenset[str]] = {
    ("chargebee", "orders"): frozenset({"currency_code", "customer_id"}),
    ("invoiced", "invoices"): frozenset({"customer"}),
}
_PATCHABLE: Mapping[tuple[str, str], frozenset[str]] = {
    ("invoiced", "items"): frozenset({"name", "description", "type", "metadata"}),
}


P = ParamSpec("P")
T = TypeVar("T")


def _serialised(method: Callable[P, T]) -> Callable[P, T]:
    """Run a FakeResource call under its shared lock (``self.lock``)."""

    @functools.wraps(method)
    def call(*args: P.args, **kwargs: P.kwargs) -> T:
        with args[0].lock:  # type: ignore[attr-defined]
            return method(*args, **kwargs)

    return call


@dataclass
class FakeClock:
    """Unix seconds; ``tick`` on every write unless ``hold`` freezes it (same-second ties)."""

    now: int = 1_700_000_000
    held: bool = False

    def tick(self) -> int:
        if not self.held:
            self.now += 1
        return self.now


def _merge(into: Json, fields: Mapping[str, Any]) -> None:
    for key, value in fields.items():
        if key != "metadata" and isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)


@dataclass
class FakeResource:
    system: str
    name: str
    clock: FakeClock
    calls: Counter[str]
    entities: dict[str, Json] = field(default_factory=dict)
    replays: dict[str, Json] = field(default_factory=dict)
    next_number: int = 1
    fail_create_for: set[str] = field(default_factory=set)  # source ids whose create fails
    fail_update_for: set[str] = field(default_factory=set)  # entity ids whose update fails
    lock: threading.RLock = field(default_factory=threading.RLock)

    def _count(self, method: str, pages: int = 1) -> None:
        self.calls[f"{self.system} {method} {self.name}"] += pages

    def _visible(self, include_deleted: bool) -> list[Json]:
        rows = list(self.entities.values())
        if not include_deleted:
            rows = [r for r in rows if not r.get("deleted")]
        return rows

    @_serialised
    def list(
        self,
        updated_after: int | None = None,
        *,
        filters: Mapping[str, str] | None = None,
        fields: Collection[str] | None = None,  # every field is kept: the contract allows it
    ) -> Iterator[Json]:
        filters = dict(filters or {})
        include_deleted = filters.pop("include_deleted", "false") == "true"
        rows = self._visible(include_deleted)
        for key, value in filters.items():
            if key.startswith("filter[") and key.endswith("]"):
                rows = [r for r in rows if str(r.get(key[7:-1])) == value]
        if updated_after is not None:
            rows = [r for r in rows if r["updated_at"] > updated_after]
            rows.sort(key=lambda r: (r["updated_at"], str(r["id"])))
        self._count("LIST", max(1, math.ceil(len(rows) / PAGE)))
        return iter([copy.deepcopy(r) for r in rows])

    @_serialised
    def get(self, entity_id: str) -> Json:
        self._count("GET")
        entity = self.entities.get(str(entity_id))
        if entity is None:
            raise NotFound(self.system, self.name, "not found", entity_id=entity_id, status=404)
        return copy.deepcopy(entity)

    @_serialised
    def create(self, fields: Mapping[str, Any], idempotency_key: str | None = None) -> Json:
        self._count("CREATE")
        if idempotency_key is not None and idempotency_key in self.replays:
            return copy.deepcopy(self.replays[idempotency_key])
        metadata = fields.get("metadata") or {}
        if isinstance(metadata, Mapping) and metadata.get("chargebee_id") in self.fail_create_for:
            raise BadRequest(self.system, self.name, "refused by the test", status=400)
        entity = self._new(fields)
        if idempotency_key is not None:
            self.replays[idempotency_key] = copy.deepcopy(entity)
        return copy.deepcopy(entity)

    def _new(self, fields: Mapping[str, Any]) -> Json:
        entity: Json = {}
        _merge(entity, fields)
        if self.system == "invoiced":
            self._check_invoiced_create(entity)
            if self.name == "items":
                entity.setdefault("id", f"item-{self.next_number}")
            else:
                entity["id"] = self.next_number
            if isinstance(entity.get("currency"), str):
                entity["currency"] = entity["currency"].lower()
        else:
            entity.setdefault("id", f"{self.name[:2]}_{self.next_number}")
        if str(entity["id"]) in self.entities and not self.entities[str(entity["id"])].get(
            "deleted"
        ):
            raise BadRequest(self.system, self.name, "id taken", param="id", status=400)
        self.next_number += 1
        entity["created_at"] = entity["updated_at"] = self.clock.tick()
        self.entities[str(entity["id"])] = entity
        return entity

    def _check_invoiced_create(self, entity: Json) -> None:
        if self.name == "customers" and not entity.get("name"):
            raise BadRequest(self.system, self.name, "name is required", param="name", status=400)
        if self.name == "invoices" and entity.get("customer") is None:
            raise BadRequest(
                self.system, self.name, "customer is required", param="customer", status=400
            )

    @_serialised
    def update(self, entity_id: str, fields: Mapping[str, Any]) -> Json:
        self._count("UPDATE")
        entity = self.entities.get(str(entity_id))
        if entity is None or entity.get("deleted"):
            raise NotFound(self.system, self.name, "not found", entity_id=entity_id, status=404)
        if str(entity_id) in self.fail_update_for:
            raise BadRequest(self.system, self.name, "refused by the test", status=400)
        refused = set(fields) & _IMMUTABLE.get((self.system, self.name), frozenset())
        allowed = _PATCHABLE.get((self.system, self.name))
        if allowed is not None:
            refused |= set(fields) - allowed
        if refused:
            raise BadRequest(
                self.system,
                self.name,
                "cannot be changed",
                entity_id=entity_id,
                param=sorted(refused)[0],
                status=400,
            )
        self.edit(entity_id, fields)
        return copy.deepcopy(entity)

    @_serialised
    def delete(self, entity_id: str) -> None:
        self._count("DELETE")
        entity = self.entities.get(str(entity_id))
        if entity is None or entity.get("deleted"):
            raise NotFound(self.system, self.name, "not found", entity_id=entity_id, status=404)
        if self.system == "chargebee":
            entity["deleted"] = True
            if self.name == "items":
                entity["status"] = "deleted"
            entity["updated_at"] = self.clock.tick()
        else:
            del self.entities[str(entity_id)]

    # --- what a person does in the vendor's UI (no rules, no call counted) ----------------

    def edit(self, entity_id: str, fields: Mapping[str, Any]) -> None:
        entity = self.entities[str(entity_id)]
        _merge(entity, fields)
        if self.system == "invoiced" and isinstance(entity.get("currency"), str):
            entity["currency"] = entity["currency"].lower()
        entity["updated_at"] = self.clock.tick()

    def seed(self, fields: Mapping[str, Any]) -> Json:
        """Create without counting a call (test setup)."""
        return copy.deepcopy(self._new(fields))


class FakeSystems:
    """Both vendors in memory, sharing one clock; ``resource(binding)`` as the real Systems."""

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.clock = clock or FakeClock()
        self.calls: Counter[str] = Counter()
        self.lock = threading.RLock()
        self.resources: dict[tuple[str, str], FakeResource] = {}
        for system, names in (
            ("chargebee", ("customers", "items", "orders", "item_families")),
            ("invoiced", ("customers", "items", "invoices")),
        ):
            for name in names:
                self.resources[(system, name)] = FakeResource(
                    system, name, self.clock, self.calls, lock=self.lock
                )

    def resource(self, binding: Binding) -> FakeResource:
        return self.resources[(binding.system, binding.resource)]

    def __getitem__(self, key: tuple[str, str]) -> FakeResource:
        return self.resources[key]

    def writes(self) -> int:
        return sum(
            n for k, n in self.calls.items() if k.split()[1] in {"CREATE", "UPDATE", "DELETE"}
        )

    def total_calls(self) -> int:
        return sum(self.calls.values())


def section(
    index: int,
    source: str,
    target: str,
    properties: tuple[tuple[str, str, str | None], ...] = (),
    *,
    source_system: str = "Chargebee",
    target_system: str = "Invoiced",
) -> Section:
    """A checklist section as the parser would give it (tests build specs without RST)."""
    return Section(
        index=index,
        heading=f"{source_system} {source} to {target_system} {target}",
        source=DatatypeRef(system=source_system, datatype=source),
        target=DatatypeRef(system=target_system, datatype=target),
        kind=SectionKind.EVERY,
        properties=tuple(
            PropertyMap(source_path=s, target_path=t, data_type=d, line=index * 10 + n)
            for n, (s, t, d) in enumerate(properties)
        ),
        file="chargebee-invoiced.rst",
        line=index * 10,
    )


ORDER_PROPERTIES: tuple[tuple[str, str, str | None], ...] = (
    ("currency_code", "currency", "string"),
    ("customer_id", "customer", "string"),
)


def checklist_spec(*sections: Section) -> DataflowSpec:
    """Our first flow (orders listed first on purpose: the sync must order by reference)."""
    chosen = sections or (
        section(0, "Order", "Invoices", ORDER_PROPERTIES),
        section(1, "Customer", "Customers person"),
        section(2, "Item", "Items"),
    )
    return DataflowSpec(
        file="chargebee-invoiced.rst", source="Chargebee", target="Invoiced", sections=chosen
    )
