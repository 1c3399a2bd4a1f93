"""How a defect bends the reference sync: proxies around ``Systems`` and its ``Resource``s.

A defect is the real reference sync with one small fault, so that a harness which misses
it cannot blame a second, accidental difference. The fault sits between the sync and the
vendors: a ``Tap`` on one vendor collection hides entities from the sync's reads, shifts
the ``updated_after`` of its incremental reads, or rewrites (or drops) its writes. The
vendors themselves, and the judge reading them, see the result as any broken syncer would
leave it.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from talkqa.systems.base import Json, Resource
from talkqa.systems.catalog import Binding


@dataclass(frozen=True)
class Here:
    """What a tap's hook may look at: the untouched systems and the untouched collection."""

    systems: Any
    resource: Resource


Hide = Callable[[Here, list[Json]], list[Json]]  # the entities the sync may see
Read = Callable[[Here, Json], Json]  # how the sync sees one entity it reads or wrote
RewriteCreate = Callable[[Here, Json], Json]  # the fields actually sent
RewriteUpdate = Callable[[Here, str, Json], Json | None]  # None: the write is dropped
Since = Callable[[int | None], int | None]  # the `updated_after` actually asked for


@dataclass(frozen=True)
class Tap:
    """One fault on one vendor collection ("invoiced", "customers")."""

    system: str
    resource: str
    hide: Hide | None = None
    read: Read | None = None
    create: RewriteCreate | None = None
    update: RewriteUpdate | None = None
    since: Since | None = None
    keyless: bool = False  # creates go out without the sync's idempotency key (never replayed)

    def matches(self, resource: Resource) -> bool:
        return (resource.system, resource.name) == (self.system, self.resource)


class TappedResource:
    """A ``Resource`` that applies its taps; everything else goes straight through."""

    def __init__(self, inner: Resource, taps: tuple[Tap, ...], systems: Any) -> None:
        self.inner = inner
        self.taps = taps
        self.here = Here(systems, inner)
        self.system = inner.system
        self.name = inner.name

    def list(
        self,
        updated_after: int | None = None,
        *,
        filters: Mapping[str, str] | None = None,
        fields: Collection[str] | None = None,  # every field is kept: the contract allows it
    ) -> Iterator[Json]:
        for tap in self.taps:
            if tap.since is not None:
                updated_after = tap.since(updated_after)
        if filters and "filters" in inspect.signature(self.inner.list).parameters:
            found = list(self.inner.list(updated_after, filters=filters))  # type: ignore[call-arg]
        else:
            found = list(self.inner.list(updated_after))
        for tap in self.taps:
            if tap.hide is not None:
                found = tap.hide(self.here, found)
        return iter([self._seen(e) for e in found])

    def _seen(self, entity: Json) -> Json:
        for tap in self.taps:
            if tap.read is not None:
                entity = tap.read(self.here, entity)
        return entity

    def get(self, entity_id: str) -> Json:
        return self._seen(self.inner.get(entity_id))

    def create(self, fields: Mapping[str, Any], idempotency_key: str | None = None) -> Json:
        sent: Json = dict(fields)
        for tap in self.taps:
            if tap.create is not None:
                sent = tap.create(self.here, sent)
        if any(tap.keyless for tap in self.taps):
            idempotency_key = None
        return self._seen(self.inner.create(sent, idempotency_key=idempotency_key))

    def update(self, entity_id: str, fields: Mapping[str, Any]) -> Json:
        sent: Json | None = dict(fields)
        for tap in self.taps:
            if tap.update is not None and sent is not None:
                sent = tap.update(self.here, entity_id, sent)
        if sent is None:  # dropped: answer like the vendor would, with the entity as it is
            return self.get(entity_id)
        return self._seen(self.inner.update(entity_id, sent))

    def delete(self, entity_id: str) -> None:
        self.inner.delete(entity_id)


def masked(system: str, resource: str, field: str, wrong: Callable[[Here, Any], Any]) -> Tap:
    """Write a wrong value into ``field`` while the sync reads back the value it meant.

    The meant value rides along in the entity's metadata, so the sync believes it is in
    sync and writes nothing more on later runs: the defect breaks the property (or the
    reference), not idempotence. The judge reads ``field`` itself and sees the wrong value.
    """
    key = f"talkqa_defect_{field}"

    def write(here: Here, fields: Json, current: Mapping[str, Any]) -> Json:
        if field not in fields:
            return fields
        meant = fields[field]
        metadata = {**_metadata(current), **_metadata(fields), key: json.dumps(meant)}
        return {**fields, field: wrong(here, meant), "metadata": metadata}

    def create(here: Here, fields: Json) -> Json:
        return write(here, fields, {})

    def update(here: Here, entity_id: str, fields: Json) -> Json:
        if field not in fields and "metadata" not in fields:
            return fields
        current = here.resource.get(entity_id)
        if field not in fields:  # a metadata PATCH replaces it whole: keep the meant value
            kept = {k: v for k, v in _metadata(current).items() if k == key}
            return {**fields, "metadata": {**_metadata(fields), **kept}}
        return write(here, fields, current)

    def read(_here: Here, entity: Json) -> Json:
        meant = _metadata(entity).get(key)
        return {**entity, field: json.loads(meant)} if isinstance(meant, str) else entity

    return Tap(system, resource, read=read, create=create, update=update)


def _metadata(entity: Mapping[str, Any]) -> dict[str, Any]:
    value = entity.get("metadata")
    return dict(value) if isinstance(value, Mapping) else {}


class TappedSystems:
    """``Systems`` whose collections carry the defect's taps (untapped ones pass through)."""

    def __init__(self, inner: Any, taps: tuple[Tap, ...]) -> None:
        self.inner = inner
        self.taps = taps

    def resource(self, binding: Binding) -> Resource:
        resource: Resource = self.inner.resource(binding)
        mine = tuple(tap for tap in self.taps if tap.matches(resource))
        return TappedResource(resource, mine, self.inner) if mine else resource

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
