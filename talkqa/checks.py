"""The judge: a checklist's promises, checked against what both systems hold.

Reading is the only I/O (``read_snapshot``); everything else is pure functions on plain
JSON, so each promise can be tested with dicts. Every finding says what is wrong with
which entity in one line, starting with its kind ("mismatch: ..."), which is also what
Allure's categories match on.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, computed_field

from talkqa import collector
from talkqa.compare import comparer, explain, read_path
from talkqa.dataflow.spec import DataflowSpec, PropertyMap, Section, SectionKind
from talkqa.errors import UserError
from talkqa.links import Json, Pairing, claim, entity_id, merged, pair
from talkqa.promises.ids import PromiseId
from talkqa.reads import Reads, fields_for, judgement_reads
from talkqa.systems.base import Resource
from talkqa.systems.catalog import (
    Binding,
    binding_of,
    link_rows,
    section_bindings,
    unjudgeable_why,
)
from talkqa.systems.no_api import impossible, unwritable_rows
from talkqa.units import MoneyRow, money_row


class FindingKind(StrEnum):
    """What can be wrong; one Allure category each."""

    MISSING = "missing"
    DUPLICATE = "duplicate"
    ORPHAN = "orphan"
    WRONG_TYPE = "wrong_type"
    MISMATCH = "mismatch"
    DANGLING_REFERENCE = "dangling_reference"
    CREATED_UNLINKED = "created_unlinked"
    NOT_PROPAGATED = "not_propagated"  # an edit on one side never reached the other
    WRITTEN_ON_RERUN = "written_on_rerun"  # a second run with nothing new wrote anyway
    NOT_REPORTED = "not_reported"  # the run report is silent about what the syncer had to say


def _fmt_id(value: Any) -> str:
    text = str(value)
    return text if text.isdigit() else repr(text)


def _fmt_value(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class Finding(BaseModel):
    """One broken promise about one entity (or one property of one pair)."""

    model_config = ConfigDict(frozen=True)

    kind: FindingKind
    section: str
    section_index: int
    check: str
    source_label: str = ""
    target_label: str = ""
    source_id: str | None = None
    target_id: str | None = None
    source_path: str | None = None
    target_path: str | None = None
    expected: Any = None
    actual: Any = None
    explanation: str = ""
    note: str = ""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def message(self) -> str:
        """One line: kind, which entities, which property, expected vs actual, why."""
        parts = []
        if self.source_id is not None:
            parts.append(f"{self.source_label or 'source'} {_fmt_id(self.source_id)}".strip())
        if self.target_id is not None:
            parts.append(f"{self.target_label or 'target'} {_fmt_id(self.target_id)}".strip())
        subject = " -> ".join(parts) or self.section
        text = f"{self.kind.value}: {subject}"
        if self.target_path is not None:
            paths = (
                f"{self.source_path} -> {self.target_path}"
                if self.source_path is not None
                else self.target_path
            )
            text += f": {paths} expected {_fmt_value(self.expected)} got {_fmt_value(self.actual)}"
            if self.note:
                text += f" ({self.note})"
        elif self.note:
            text += f": {self.note}"
        if self.explanation:
            text += f" [{self.explanation}]"
        return " ".join(text.split())


@dataclass(frozen=True)
class SectionSnapshot:
    """What both systems hold for one section at one moment.

    ``targets`` are every entity of the target resource that claims a source of this
    section's datatype, of any type (so a company where a person is due is seen as
    wrong_type, not missing), plus unclaimed entities of the right type in merge sections.
    """

    section: Section
    source: Binding
    target: Binding
    sources: list[Json]
    targets: list[Json]
    undemanded: tuple[str, ...] = ()  # sources the rule left undemanded, and why

    def pairing(self) -> Pairing:
        """Paired once per snapshot: the checks, the pair count and the coverage share it."""
        return self._pairing

    @functools.cached_property
    def _pairing(self) -> Pairing:
        return self._pair(self.targets)

    def typed_targets(self, source_id: str) -> list[Json]:
        """The targets of the bound type linked to one source (computed once per snapshot)."""
        return self._typed_by_source.get(source_id, [])

    @functools.cached_property
    def _typed_by_source(self) -> dict[str, list[Json]]:
        holds = self.target.holds
        return {
            sid: [t for t in linked if holds(t)]
            for sid, linked in self.pairing().by_source.items()
        }

    def pairs(self) -> list[tuple[Json, Json]]:
        """(source, target) of every source linked to exactly one target of the bound type."""
        return self._pairs

    @functools.cached_property
    def _pairs(self) -> list[tuple[Json, Json]]:
        found = []
        for source, sid in zip(self.sources, self.source_ids, strict=True):
            typed = self.typed_targets(sid)
            if len(typed) == 1:
                found.append((source, typed[0]))
        return found

    @functools.cached_property
    def source_ids(self) -> list[str]:
        """The sources' ids, in order: every check of a judgement needs them."""
        return [entity_id(source) for source in self.sources]

    def typed_pairing(self) -> Pairing:
        """Only targets of the bound type: what references must point at."""
        return self._typed_pairing

    @functools.cached_property
    def _typed_pairing(self) -> Pairing:
        # the snapshot's pairing filtered, not a second pass: pairing places each target by
        # its own claim or merge properties alone, so leaving some out changes nothing else
        holds, pairing = self.target.holds, self.pairing()
        typed_ids = {entity_id(t) for linked in self._typed_by_source.values() for t in linked}
        return Pairing(
            by_source=self._typed_by_source,
            orphans=[orphan for orphan in pairing.orphans if holds(orphan)],
            merged=pairing.merged & typed_ids,
        )

    def _pair(self, targets: Sequence[Json]) -> Pairing:
        return pair(
            self.section,
            self.sources,
            targets,
            source_system=self.source.system,
            link_of=self.source.link_id,
            holder_of=self.target.claim_holder,
        )


class NotCovered(UserError):
    """A section talk-qa cannot judge (no connector for one of its datatypes).

    ``reason`` is the short why (for a matrix cell); the message adds where and what to do.
    """

    def __init__(self, section: Section, reason: str, hint: str) -> None:
        heading = " ".join(section.heading.split())
        super().__init__(
            f"section {section.index} '{heading}' ({section.file}:{section.line}): {reason}; {hint}"
        )
        self.reason = reason


class SystemsLike(Protocol):
    """What the judge needs of talkqa.systems.Systems: one resource per binding."""

    def resource(self, binding: Binding) -> Resource: ...


def _display(system: str) -> str:
    return system[:1].upper() + system[1:]


def label(side_system: str, datatype: str, binding: Binding | None) -> str:
    """'Chargebee Order'; a blank checklist system name falls back to the binding's."""
    system = side_system.strip() or (_display(binding.system) if binding else "")
    return f"{system} {' '.join(datatype.split())}".strip()


def bindings_of(section: Section) -> tuple[Binding, Binding]:
    """Both sides' bindings, or NotCovered naming the side without a connector."""
    source, target = section_bindings(section)
    missing = [
        label(ref.system, ref.datatype, None)
        for ref, found in ((section.source, source), (section.target, target))
        if found is None
    ]
    if source is None or target is None:
        if not (section.source.system.strip() and section.target.system.strip()):
            raise NotCovered(
                section,
                "the checklist leaves a system name blank",
                "bind it with --bind-blank <system> or name the file <source>-<target>.rst",
            )
        names = " and ".join(f"'{name}'" for name in missing)
        whys = [
            why
            for ref, found in ((section.source, source), (section.target, target))
            if found is None and (why := unjudgeable_why(ref)) is not None
        ]
        raise NotCovered(
            section,
            f"no connector for {names}" + "".join(f": {why}" for why in whys),
            "talk-qa covers Chargebee Customer, Item, Order, Address, Subscription and "
            "Invoiced Customers person/company/location data, Items, Invoices, Lineitem",
        )
    return source, target


def _alive(entity: Mapping[str, Any]) -> bool:
    """Deleted sources owe no target (Chargebee keeps them as deleted / status=deleted)."""
    return entity.get("deleted") is not True and entity.get("status") != "deleted"


def snapshot_from(
    section: Section,
    source: Binding,
    target: Binding,
    source_rows: Iterable[Json],
    target_rows: Iterable[Json],
    *,
    source_ids: Collection[str] | None = None,
) -> SectionSnapshot:
    """The snapshot of a section from raw listings (pure: read_snapshot's middle)."""
    wanted = {str(i) for i in source_ids} if source_ids is not None else None
    sources: list[Json] = []
    elsewhere: set[str] = set()  # live sources of another Talk datatype: another section's
    for row in source_rows:
        if not _alive(row) or (wanted is not None and entity_id(row) not in wanted):
            continue
        if source.holds(row):
            sources.append(row)
        else:
            elsewhere.add(source.link_id(row))
    # an owned source (an Address) is claimed through its owner, whose other targets (the
    # customer sections') are not this section's: only targets claiming one of ours count
    ours = {source.link_id(row) for row in sources} if source.owner is not None else None
    targets: list[Json] = []
    for row in target_rows:
        owner = claim(target.claim_holder(row), source.system)
        if owner is not None:
            if ours is not None:
                if owner in ours:
                    targets.append(row)
            elif (wanted is None or owner in wanted) and owner not in elsewhere:
                targets.append(row)
        elif section.merge_rules and target.holds(row):
            targets.append(row)
    return SectionSnapshot(section, source, target, sources, targets)


@dataclass
class Listings:
    """The collections one judgement has listed, each once, shared by every section reading
    it; with ``reads``, each listed with only the fields the judgement reads (``reads``)."""

    reads: Reads | None = None
    rows: dict[tuple[str, str], list[Json]] = dataclasses.field(default_factory=dict)

    def fields(self, binding: Binding) -> frozenset[str] | None:
        return fields_for(self.reads, binding)


def _read(systems: SystemsLike, binding: Binding, fields: frozenset[str] | None) -> list[Json]:
    resource = systems.resource(binding)
    if fields is None:
        return list(resource.list())  # the reader's own dicts: no copy
    return list(resource.list(fields=fields))


def _listing(systems: SystemsLike, binding: Binding, cache: Listings | None) -> list[Json]:
    if cache is None:
        return _read(systems, binding, None)
    key = (binding.system, binding.resource)
    if key not in cache.rows:
        cache.rows[key] = _read(systems, binding, cache.fields(binding))
    return cache.rows[key]


def read_snapshot(
    section: Section,
    systems: SystemsLike,
    *,
    source_ids: Collection[str] | None = None,
    cache: Listings | None = None,
) -> SectionSnapshot:
    """List the section's source datatype and target resource (the judge's only I/O).

    ``source_ids`` restricts the judged sources (live mode: only what this run created;
    targets claiming other sources are then someone else's and ignored). ``cache`` shares
    listings between sections that read the same collection (and may narrow their fields).
    """
    source, target = bindings_of(section)
    snap = snapshot_from(
        section,
        source,
        target,
        _listing(systems, source, cache),
        _listing(systems, target, cache),
        source_ids=source_ids,
    )
    if target.lives_on is None:
        return snap
    home = binding_of(target.lives_on)
    owner_field, owner_key = next(iter(home.references.items()))
    owner = binding_of(owner_key)
    return demanded(
        snap, _listing(systems, home, cache), owner_field, _listing(systems, owner, cache)
    )


def demanded(
    snap: SectionSnapshot, homes: Iterable[Json], owner_field: str, owners: Iterable[Json]
) -> SectionSnapshot:
    """Only the sources a target can live on: an Invoiced customer demands a Chargebee Address
    only when its linked Chargebee customer has a live subscription (pure; see the catalog)."""
    housed = {str(home.get(owner_field)) for home in homes if _alive(home)}
    linked = {
        owner_claim
        for row in owners
        if _alive(row)
        and entity_id(row) in housed
        and (owner_claim := claim(row, snap.source.system)) is not None
    }
    kept = [source for source in snap.sources if snap.source.link_id(source) in linked]
    left = len(snap.sources) - len(kept)
    if not left:
        return dataclasses.replace(snap, sources=kept)
    home = snap.target.lives_on[1].lower() if snap.target.lives_on else "entity"
    sources = label(snap.section.source.system, snap.section.source.datatype, snap.source)
    note = (
        f"{left} of {len(snap.sources)} {sources} "
        f"not demanded: no linked {_display(snap.target.system)} customer with a live {home} "
        f"to carry its {label(snap.section.target.system, snap.section.target.datatype, None)} "
        f"(one exists only on a {home})"
    )
    return dataclasses.replace(snap, sources=kept, undemanded=(*snap.undemanded, note))


@dataclass(frozen=True)
class _Ctx:
    snap: SectionSnapshot
    source_label: str
    target_label: str

    def finding(self, kind: FindingKind, check: PromiseId, **fields: Any) -> Finding:
        return Finding(
            kind=kind,
            section=" ".join(self.snap.section.heading.split()),
            section_index=self.snap.section.index,
            check=check.value,
            source_label=self.source_label,
            target_label=self.target_label,
            **fields,
        )


def check_section(
    snap: SectionSnapshot,
    pairings: Mapping[tuple[str, str], Pairing],
    *,
    unlinked_sources: Collection[str] = (),
) -> list[Finding]:
    """Every promise of one section, on one snapshot (pure).

    ``pairings`` are the referenced sections' pairings keyed by their target binding key;
    ``unlinked_sources`` are sources the scenario knows had no link before the sync (a
    link-first section must create nothing for them).
    """
    section = snap.section
    ctx = _Ctx(
        snap,
        label(section.source.system, section.source.datatype, snap.source),
        label(section.target.system, section.target.datatype, snap.target),
    )
    pairing = snap.pairing()
    unlinked = {str(i) for i in unlinked_sources}
    rows = _compiled(snap, judged_rows(section))
    findings: list[Finding] = []
    for source, sid in zip(snap.sources, snap.source_ids, strict=True):
        linked = pairing.targets_of(sid)
        if section.kind is SectionKind.LINK_FIRST and sid in unlinked:
            findings.extend(
                ctx.finding(
                    FindingKind.CREATED_UNLINKED,
                    PromiseId.LINK_FIRST,
                    source_id=sid,
                    target_id=entity_id(t),
                    note="created although this section syncs only sources linked beforehand",
                )
                for t in linked
            )
            continue
        typed = snap.typed_targets(sid)
        if not typed:
            findings.extend(_exists_findings(ctx, sid, linked))
            continue
        if len(typed) > 1:
            ids = ", ".join(_fmt_id(entity_id(t)) for t in typed)
            findings.append(
                ctx.finding(
                    FindingKind.DUPLICATE,
                    PromiseId.EXISTS,
                    source_id=sid,
                    note=f"linked to {len(typed)} {ctx.target_label}: {ids}",
                )
            )
            continue
        findings.extend(_property_findings(ctx, rows, sid, source, typed[0], pairings))
    for orphan in pairing.orphans:
        if snap.target.holds(orphan):
            findings.append(
                ctx.finding(
                    FindingKind.ORPHAN,
                    PromiseId.EXISTS,
                    source_id=claim(orphan, snap.source.system),
                    target_id=entity_id(orphan),
                    note=f"claims a {ctx.source_label} that does not exist",
                )
            )
    return findings


def _exists_findings(ctx: _Ctx, sid: str, linked: Sequence[Json]) -> list[Finding]:
    """No target of the right type: wrong_type if one of another type is linked, else missing."""
    fixed = ctx.snap.target.fixed
    if linked:
        return [
            ctx.finding(
                FindingKind.WRONG_TYPE,
                PromiseId.EXISTS,
                source_id=sid,
                target_id=entity_id(t),
                target_path=field,
                expected=want,
                actual=t.get(field),
            )
            for t in linked
            for field, want in fixed.items()
            if t.get(field) != want
        ]
    if ctx.snap.section.kind is not SectionKind.EVERY:
        return []
    return [
        ctx.finding(
            FindingKind.MISSING,
            PromiseId.EXISTS,
            source_id=sid,
            note=f"no {ctx.target_label} is linked to it",
        )
    ]


def judged_rows(section: Section) -> tuple[PropertyMap, ...]:
    """The property rows compared pair by pair: all but those the target's vendor computes
    (the scenario names those; nothing can be compared) and the link rows (the pair exists
    only because the target is that one). Worked out once per section, not once per pair:
    a judgement compares tens of thousands of pairs on the same rows."""
    unwritable = unwritable_rows(section)
    linked = link_rows(section)
    return tuple(
        prop
        for prop in section.properties
        if (prop.source_path, prop.target_path) not in unwritable
        and (prop.source_path, prop.target_path) not in linked
    )


@dataclass(frozen=True)
class _Row:
    """One compared row of a section with everything that does not depend on the pair
    resolved: whether it is a reference, its money fields, its comparison."""

    prop: PropertyMap
    ref_key: tuple[str, str] | None
    money: MoneyRow | None  # both sides hold amounts
    same: Callable[[Any, Any], bool]


def _compiled(snap: SectionSnapshot, rows: Sequence[PropertyMap]) -> tuple[_Row, ...]:
    compiled = []
    for prop in rows:
        compiled.append(
            _Row(
                prop,
                snap.target.references.get(prop.target_path),
                money_row(
                    (snap.source.system, snap.source.resource, prop.source_path),
                    (snap.target.system, snap.target.resource, prop.target_path),
                ),
                comparer(prop.data_type, prop.source_path, prop.target_path),
            )
        )
    return tuple(compiled)


def _property_findings(
    ctx: _Ctx,
    rows: Sequence[_Row],
    sid: str,
    source: Json,
    target: Json,
    pairings: Mapping[tuple[str, str], Pairing],
) -> list[Finding]:
    findings: list[Finding] = []
    for row in rows:
        prop = row.prop
        expected = read_path(source, prop.source_path)
        actual = read_path(target, prop.target_path)
        ref_key = row.ref_key
        if ref_key is not None:
            if ref_key in pairings:
                finding = _reference_finding(
                    ctx,
                    sid,
                    target,
                    prop.source_path,
                    prop.target_path,
                    expected,
                    actual,
                    ref_key,
                    pairings[ref_key],
                )
                if finding is not None:
                    findings.append(finding)
            continue
        if row.money is not None:  # compared in the currency's major unit (talkqa.units)
            expected, actual = row.money.in_major_units(expected, actual, source, target)
        if not row.same(expected, actual):
            findings.append(
                ctx.finding(
                    FindingKind.MISMATCH,
                    PromiseId.PROPERTIES,
                    source_id=sid,
                    target_id=entity_id(target),
                    source_path=prop.source_path,
                    target_path=prop.target_path,
                    expected=expected,
                    actual=actual,
                    explanation=explain(
                        expected,
                        actual,
                        path=prop.target_path,
                        data_type=prop.data_type,
                        source_path=prop.source_path,
                    ),
                )
            )
    return findings


def _translate(value: Any, pairing: Pairing) -> Any:
    """Source-side reference -> the id the target side must hold (lists map)."""
    if isinstance(value, list):
        return [_translate(item, pairing) for item in value]
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return pairing.linked_id(str(value))


def _as_ids(value: Any) -> Any:
    if isinstance(value, list):
        return [_as_ids(item) for item in value]
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return str(value)


def _unresolved(source_value: Any, expected: Any) -> bool:
    """A source reference with no single linked target: no target value can be right (an
    empty one included), so it is never equal to what the target holds."""
    if isinstance(source_value, list) and isinstance(expected, list):
        return any(_unresolved(s, e) for s, e in zip(source_value, expected, strict=True))
    return _as_ids(source_value) is not None and expected is None


def _shaped_like(expected: Any, actual: Any) -> Any:
    """Show an expected id the way the target stores ids (7, not '7', next to an int)."""
    if isinstance(expected, str) and isinstance(actual, int) and expected.isdigit():
        return int(expected)
    return expected


def _reference_finding(
    ctx: _Ctx,
    sid: str,
    target: Json,
    source_path: str,
    target_path: str,
    source_value: Any,
    actual: Any,
    ref_key: tuple[str, str],
    pairing: Pairing,
) -> Finding | None:
    """A reference must name the target linked to the referenced source."""
    if isinstance(source_value, str | int) and str(source_value).strip():
        # the common case, one id, without the list-shaped general path below
        linked = pairing.linked_id(str(source_value))
        if linked is not None and linked.strip() and linked == _as_ids(actual):
            return None
    expected = _translate(source_value, pairing)
    if _as_ids(expected) == _as_ids(actual) and not _unresolved(source_value, expected):
        return None
    expected = _shaped_like(expected, actual)
    ref_label = f"{_display(ref_key[0])} {ref_key[1]}"
    src_ref = ctx.snap.source.references.get(source_path)
    src_label = f"{_display(src_ref[0])} {src_ref[1]}" if src_ref else ctx.source_label
    if source_value is None:
        note = f"the {ctx.source_label} references no {src_label}"
    elif expected is None or (isinstance(expected, list) and None in expected):
        note = f"no single {ref_label} is linked to {src_label} {_fmt_value(source_value)}"
    else:
        note = f"the {ref_label} linked to {src_label} {_fmt_value(source_value)}"
    return ctx.finding(
        FindingKind.DANGLING_REFERENCE,
        PromiseId.REFERENCES,
        source_id=sid,
        target_id=entity_id(target),
        source_path=source_path,
        target_path=target_path,
        expected=expected,
        actual=actual,
        note=note,
    )


class SectionResult(BaseModel):
    """How much of one section was judged, or why it could not be."""

    index: int
    heading: str
    covered: bool
    reason: str | None = None
    sources_checked: int = 0
    targets_seen: int = 0
    pairs_checked: int = 0
    existence_only: bool = False
    notes: list[str] = []
    # property rows ("source -> target") that no linked pair gave a value on either side:
    # equal only because both are empty, so nothing was compared
    uncompared: list[str] = []
    # sources the Talk rule leaves undemanded, and why (a Chargebee Address needs a subscription)
    undemanded: list[str] = []
    # the judged sources' ids: a scenario checks that what it created was judged at all
    source_ids: list[str] = Field(default=[], exclude=True)


class CheckReport(BaseModel):
    """The judge's verdict on a whole checklist."""

    file: str
    findings: list[Finding] = []
    sections: list[SectionResult] = []

    @property
    def passed(self) -> bool:
        return not self.findings

    def counts_by_kind(self) -> dict[str, int]:
        return dict(Counter(f.kind.value for f in self.findings))

    def findings_for(self, section_index: int, check: str | None = None) -> list[Finding]:
        return [
            f
            for f in self.findings
            if f.section_index == section_index and (check is None or f.check == check)
        ]

    def to_json(self) -> str:
        body = self.model_dump(mode="json")
        body["passed"] = self.passed
        body["counts"] = self.counts_by_kind()
        return json.dumps(body, indent=2, sort_keys=True, default=str)


def _blank(value: Any) -> bool:
    if isinstance(value, list):
        return all(_blank(item) for item in value)
    return value is None or (isinstance(value, str) and not value.strip())


def uncompared_rows(section: Section, pairs: Sequence[tuple[Json, Json]]) -> list[str]:
    """Property rows empty on both sides of every pair: they pass without being compared.

    A misspelt path, or sample data without the property, reads as None on both sides and so
    as "equal"; a scenario must not call that a kept promise. No pairs, no rows: that case is
    the missing pairs' own failure.
    """
    return [
        f"{prop.source_path} -> {prop.target_path}"
        for prop in judged_rows(section)
        if pairs
        and all(
            _blank(read_path(source, prop.source_path))
            and _blank(read_path(target, prop.target_path))
            for source, target in pairs
        )
    ]


def _kind_notes(section: Section) -> list[str]:
    if section.kind is SectionKind.LINK_FIRST:
        return ["link-first: a source without a target is not a finding"]
    if section.kind is SectionKind.CONDITIONAL:
        return [
            f"condition not evaluated ({section.condition or 'no text'}): "
            "a source without a target is not a finding"
        ]
    return []


def _reference_pairings(
    snaps: Sequence[SectionSnapshot],
    systems: SystemsLike,
    cache: Listings,
    *,
    restricted: bool = True,
) -> tuple[dict[tuple[str, str], Pairing], dict[int, list[str]]]:
    """Pairings every reference field needs, built from unrestricted listings.

    ``restricted=False`` says the snapshots already hold every source (no ``source_ids``),
    so an owner section's own snapshot is the unrestricted one and is not rebuilt.

    A referenced datatype without its own section is still paired by link claim, so an
    Order's customer can be judged even in a checklist that lists only orders.
    """
    needed: dict[tuple[str, str], tuple[str, str] | None] = {}
    users: dict[tuple[str, str], list[int]] = {}
    for snap in snaps:
        for prop in snap.section.properties:
            ref_key = snap.target.references.get(prop.target_path)
            if ref_key is not None:
                needed.setdefault(ref_key, snap.source.references.get(prop.source_path))
                users.setdefault(ref_key, []).append(snap.section.index)
    pairings: dict[tuple[str, str], Pairing] = {}
    notes: dict[int, list[str]] = {}
    for ref_key, src_key in needed.items():
        wanted = binding_of(ref_key)
        source_wanted = binding_of(src_key) if src_key is not None else None
        owners = [
            s
            for s in snaps
            if s.target.within(wanted) and (source_wanted is None or s.source.within(source_wanted))
        ]
        if owners:
            fulls = [
                snapshot_from(
                    owner.section,
                    owner.source,
                    owner.target,
                    _listing(systems, owner.source, cache),
                    _listing(systems, owner.target, cache),
                )
                if restricted
                else owner
                for owner in owners
            ]
            pairings[ref_key] = merged([full.typed_pairing() for full in fulls])
        elif src_key is not None:
            src_b, tgt_b = binding_of(src_key), binding_of(ref_key)
            sources = [r for r in _listing(systems, src_b, cache) if src_b.holds(r) and _alive(r)]
            targets = [
                r
                for r in _listing(systems, tgt_b, cache)
                if tgt_b.holds(r) and claim(r, src_b.system) is not None
            ]
            pairings[ref_key] = pair(None, sources, targets, source_system=src_b.system)
        else:
            for index in users[ref_key]:
                notes.setdefault(index, []).append(
                    f"references to {ref_key[1]} not checked: the source side names no datatype"
                )
    return pairings, notes


def prefetch(
    spec: DataflowSpec,
    systems: SystemsLike,
    cache: Listings,
    concurrency: int,
) -> None:
    """List every distinct collection the bound sections read, ``concurrency`` at a time.

    The collections are independent and the connectors thread-safe, so the wall time of a
    judgement becomes that of its longest listing. Only on request: inside a cassette the
    recorded order of requests must stay the serial one.
    """
    bindings: dict[tuple[str, str], Binding] = {}
    for _, source, target in bound_sections(spec):
        for binding in (source, target):
            bindings.setdefault((binding.system, binding.resource), binding)
    missing = [binding for key, binding in bindings.items() if key not in cache.rows]
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="talkqa-judge") as pool:
        listings = list(
            pool.map(lambda binding: _read(systems, binding, cache.fields(binding)), missing)
        )
    for binding, rows in zip(missing, listings, strict=True):
        cache.rows[(binding.system, binding.resource)] = rows


def bound_sections(spec: DataflowSpec) -> list[tuple[Section, Binding, Binding]]:
    """Every section a judgement reads, with its bindings (not the vendor-impossible ones nor
    those without a connector, which are reported and not read)."""
    bound = []
    for section in spec.sections:
        if impossible(section) is not None:
            continue
        try:
            bound.append((section, *bindings_of(section)))
        except NotCovered:
            continue
    return bound


def check_spec(
    spec: DataflowSpec,
    systems: SystemsLike,
    *,
    source_ids: Collection[str] | None = None,
    unlinked_sources: Collection[str] = (),
    concurrency: int = 1,
) -> CheckReport:
    """Read every bound section once, pair, and check; unbound sections are 'not covered'.

    ``concurrency`` > 1 lists the distinct collections that many at a time first (see
    ``prefetch``); the default keeps the serial request order cassettes recorded. The cyclic
    garbage collector is paused meanwhile (``talkqa.collector``).
    """
    with collector.paused():
        return _check_spec(spec, systems, source_ids, unlinked_sources, concurrency)


def _check_spec(
    spec: DataflowSpec,
    systems: SystemsLike,
    source_ids: Collection[str] | None,
    unlinked_sources: Collection[str],
    concurrency: int,
) -> CheckReport:
    cache = Listings(reads=judgement_reads(bound_sections(spec)))
    if concurrency > 1:
        prefetch(spec, systems, cache, concurrency)
    results: dict[int, SectionResult] = {}
    snaps: list[SectionSnapshot] = []
    for section in spec.sections:
        heading = " ".join(section.heading.split())
        cannot = impossible(section)
        if cannot is not None:  # nothing to read: the vendor offers no API for it
            results[section.index] = SectionResult(
                index=section.index,
                heading=heading,
                covered=False,
                reason=cannot,
                existence_only=section.existence_only,
            )
            continue
        try:
            snaps.append(read_snapshot(section, systems, source_ids=source_ids, cache=cache))
        except NotCovered as exc:
            results[section.index] = SectionResult(
                index=section.index,
                heading=heading,
                covered=False,
                reason=exc.reason,
                existence_only=section.existence_only,
            )
    pairings, notes = _reference_pairings(snaps, systems, cache, restricted=source_ids is not None)
    findings: list[Finding] = []
    for snap in snaps:
        section = snap.section
        findings.extend(check_section(snap, pairings, unlinked_sources=unlinked_sources))
        pairs = snap.pairs()
        results[section.index] = SectionResult(
            index=section.index,
            heading=" ".join(section.heading.split()),
            covered=True,
            sources_checked=len(snap.sources),
            targets_seen=len(snap.targets),
            pairs_checked=len(pairs),
            existence_only=section.existence_only,
            notes=_kind_notes(section) + notes.get(section.index, []) + list(snap.undemanded),
            undemanded=list(snap.undemanded),
            uncompared=uncompared_rows(section, pairs),
            source_ids=list(snap.source_ids),
        )
    ordered = [results[s.index] for s in spec.sections if s.index in results]
    return CheckReport(file=spec.file, findings=findings, sections=ordered)
