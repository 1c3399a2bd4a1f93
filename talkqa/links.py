"""How the judge pairs source and target entities without trusting the syncer's memory.

A syncer may keep its links anywhere (the reference sync uses sqlite); the judge only
believes what the target system itself says: an entity records its source in
``metadata.<source>_id`` (Chargebee spells its own field ``meta_data``; its orders, which
have no metadata, say ``reference_id: <source>_id:<id>``). A section whose
checklist names merge properties may also pair an unclaimed target by those properties,
which is how "merged with the existing one" becomes checkable.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from talkqa.compare import read_path
from talkqa.dataflow.spec import Section
from talkqa.systems.catalog import system_key

Json = dict[str, Any]

_METADATA_FIELDS = ("metadata", "meta_data")


@functools.lru_cache(maxsize=64)
def link_key(source_system: str) -> str:
    """The metadata key a target uses to name its source: 'chargebee_id'.

    Cached: the judge asks once per target entity, tens of thousands of times a check.
    """
    return f"{system_key(source_system)}_id"


def claim(target: Mapping[str, Any], source_system: str = "chargebee") -> str | None:
    """The source id a target says it was synchronised from, or None.

    A Chargebee order has no metadata: it names its source in its free-text
    ``reference_id`` as ``invoiced_id:<id>``.
    """
    key = link_key(source_system)
    for name in _METADATA_FIELDS:
        metadata = target.get(name)
        if type(metadata) is dict or isinstance(metadata, Mapping):  # dict first: no ABC check
            value = metadata.get(key)
            if value is not None and str(value).strip():
                return str(value).strip()
    reference = target.get("reference_id")
    if isinstance(reference, str) and reference.startswith(f"{key}:"):
        return reference[len(key) + 1 :].strip() or None
    return None


def entity_id(entity: Mapping[str, Any]) -> str:
    """Ids are ints on Invoiced and strings on Chargebee: the judge speaks strings."""
    return str(entity.get("id"))


@dataclass(frozen=True)
class Pairing:
    """Which targets belong to which source, as the target system tells it."""

    by_source: dict[str, list[Json]]
    orphans: list[Json] = field(default_factory=list)
    merged: frozenset[str] = frozenset()  # target ids paired by merge properties, not a claim

    def targets_of(self, source_id: str) -> list[Json]:
        return self.by_source.get(str(source_id), [])

    def linked(self, source_id: str) -> Json | None:
        """The one target linked to a source; None when there is none or several."""
        targets = self.targets_of(source_id)
        return targets[0] if len(targets) == 1 else None

    def linked_id(self, source_id: str) -> str | None:
        target = self.linked(source_id)
        return entity_id(target) if target is not None else None


def _merge_value(value: Any) -> str | None:
    """Merge properties match as text, ignoring case and outer blanks; blanks never match."""
    if value is None or isinstance(value, Mapping | list):
        return None
    text = str(value).strip().casefold()
    return text or None


def pair(
    section: Section | None,
    sources: Sequence[Json],
    targets: Sequence[Json],
    *,
    source_system: str | None = None,
    link_of: Callable[[Json], str] = entity_id,
    holder_of: Callable[[Json], Mapping[str, Any]] = lambda target: target,
) -> Pairing:
    """Pair targets with sources: by link claim, then (merge sections) by merge properties.

    A claimed target belongs to the source it names even when its merge properties point
    elsewhere: the claim is the target system's own word. An unclaimed target that matches
    a source by one of the merge rows is paired with it, so a syncer that created a second
    target instead of merging shows up as a duplicate.

    ``link_of`` says what a claim of a source names (its id; a Chargebee Address: its
    subscription's customer, ``Binding.link_id``), ``holder_of`` where a target keeps its
    claim (itself; an Address: its customer, ``Binding.claim_holder``).
    """
    system = source_system or (section.source.system if section else "") or "chargebee"
    by_source: dict[str, list[Json]] = {entity_id(source): [] for source in sources}
    by_link: dict[str, list[str]] = {}
    for source in sources:
        by_link.setdefault(link_of(source), []).append(entity_id(source))
    orphans: list[Json] = []
    unclaimed: list[Json] = []
    for target in targets:
        owner = claim(holder_of(target), system)
        if owner is None:
            unclaimed.append(target)
        elif owner in by_link:
            for source_id in by_link[owner]:
                by_source[source_id].append(target)
        else:
            orphans.append(target)
    merged: set[str] = set()
    rules = section.merge_rules if section is not None else ()
    if rules and unclaimed:
        index: list[dict[str, list[str]]] = []
        for rule in rules:
            values: dict[str, list[str]] = {}
            for source in sources:
                value = _merge_value(read_path(source, rule.source_path))
                if value is not None:
                    values.setdefault(value, []).append(entity_id(source))
            index.append(values)
        for target in unclaimed:
            owners: dict[str, None] = {}
            for rule, values in zip(rules, index, strict=True):
                value = _merge_value(read_path(target, rule.target_path))
                owners.update(dict.fromkeys(values.get(value, []) if value else []))
            for owner in owners:
                by_source[owner].append(target)
                merged.add(entity_id(target))
    return Pairing(by_source=by_source, orphans=orphans, merged=frozenset(merged))


def merged(pairings: Sequence[Pairing]) -> Pairing:
    """Several sections' pairings as one: where an invoice's customer may be a person's or an
    organisation's target (each source belongs to one of them by the Talk datatype rule)."""
    by_source: dict[str, list[Json]] = {}
    for pairing in pairings:
        for source_id, targets in pairing.by_source.items():
            by_source.setdefault(source_id, []).extend(targets)
    return Pairing(
        by_source=by_source,
        orphans=[o for p in pairings for o in p.orphans],
        merged=frozenset().union(*(p.merged for p in pairings)),
    )
