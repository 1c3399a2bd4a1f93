"""Pure decisions: typed snapshots of both sides + the link memory in, actions out.

Planning never does I/O, so every rule of the sync (who wins a conflict, what the vendors
forbid, when a target is deleted) is testable on plain dicts. The engine reads, calls
``plan_section`` and applies the actions.

Change detection per property works on comparison forms (see ``mapping``): the store keeps,
per link, what each side held when last in sync. A side "changed" a property when its
current value differs from its own last-synced value; a side that was not read this run
(nothing changed since its cursor) is taken to still hold its last-synced values.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from reference_sync import mapping
from reference_sync.linkstore import CREATING, GONE, LINKED, TOMBSTONE, Link
from reference_sync.mapping import MISSING, CoercionError, Json
from reference_sync.summary import Conflict, EntityNote, NotCarried
from talkqa.dataflow.spec import MergeRule, Section, SectionKind
from talkqa.systems.catalog import Binding

_KEY_NAMESPACE = uuid.UUID("6f1d3c1e-5b7a-4c2e-9a41-2d0c7e3b9f10")


# --- the compiled section -----------------------------------------------------------------


@dataclass(frozen=True)
class PropertyRule:
    source_path: str
    target_path: str
    data_type: str | None
    referenced_section: str | None = None  # the name of the links that translate this reference
    # the sections whose links those are: an invoice's customer may be a person's or an
    # organisation's target, so both sections' links translate it
    referenced_keys: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.source_path} -> {self.target_path}"


@dataclass(frozen=True)
class SectionModel:
    """A checklist section bound to resources, ready to plan."""

    key: str
    section: Section
    source: Binding
    target: Binding
    rules: tuple[PropertyRule, ...]
    merge_rules: tuple[MergeRule, ...] = ()

    @property
    def heading(self) -> str:
        return self.section.heading

    @property
    def metadata_key(self) -> str:
        """Where the target records its source: ``metadata.chargebee_id``."""
        return f"{self.source.system}_id"

    @property
    def source_owned(self) -> mapping.Owned | None:
        """The source lives on an owner's entity (a Chargebee Address): see ``mapping.Owned``."""
        return mapping.owned(self.source.system, self.source.datatype)

    @property
    def target_owned(self) -> mapping.Owned | None:
        return mapping.owned(self.target.system, self.target.datatype)

    def link_id(self, source_id: str, source: Mapping[str, Any] | None) -> str | None:
        """What a target's claim of this source names: its id, or (owned) its owner's id."""
        owned = self.source_owned
        if owned is None:
            return source_id
        value = source.get(owned.owner_field) if source is not None else None
        return str(value) if value is not None else None

    def claim(self, target: Mapping[str, Any]) -> str | None:
        """The source id (or owner id) a target names (``mapping.target_claim``)."""
        return mapping.target_claim(self.target_owned, target, self.metadata_key)

    def rule(self, target_path: str) -> PropertyRule:
        return next(r for r in self.rules if r.target_path == target_path)

    def source_entity(self, source_id: str) -> str:
        """How notes name a source entity: ``chargebee customers c1``."""
        return f"{self.source.system} {self.source.resource} {source_id}"

    def target_entity(self, target_id: str) -> str:
        return f"{self.target.system} {self.target.resource} {target_id}"


def idempotency_key(section_key: str, source_id: str, generation: int) -> str:
    """Deterministic: a retried create replays, and re-recorded cassettes stay identical."""
    return str(uuid.uuid5(_KEY_NAMESPACE, f"{section_key}\n{source_id}\n{generation}"))


@dataclass(frozen=True)
class Refs:
    """Reference translation tables, per referenced section key: its links, source id ->
    the target's id in the target's own type (Invoiced customer ids are integers)."""

    forward: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @cached_property
    def backward(self) -> dict[str, dict[str, str]]:
        """The same links read the other way: str(target id) -> source id."""
        return {
            key: {str(native): source_id for source_id, native in links.items()}
            for key, links in self.forward.items()
        }


@dataclass(frozen=True)
class Side:
    """What was read of one side this run: by id; ``complete`` when it was a full read."""

    entities: Mapping[str, Json]
    complete: bool


# --- actions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Create:
    source_id: str
    fields: Json
    link: Link  # the link to record once created (target id filled in by the engine)
    idempotency_key: str


@dataclass(frozen=True)
class Adopt:
    """An existing target is this source's (metadata or merge rule): link, then update."""

    link: Link
    to_target: Json
    reason: str


@dataclass(frozen=True)
class Update:
    link: Link  # the new memory after both writes succeed
    to_target: Json
    to_source: Json


@dataclass(frozen=True)
class Recreate:
    """Delete and create the target again: the only way to change an immutable field."""

    link: Link
    fields: Json
    idempotency_key: str
    keep_id: bool


@dataclass(frozen=True)
class Delete:
    """The source is gone and the sync created the target: delete it if nothing depends on it."""

    link: Link


@dataclass(frozen=True)
class Unlink:
    link: Link  # the new row (state gone or tombstone)
    reason: str


@dataclass(frozen=True)
class Record:
    """No write needed, but the memory changes (both sides changed alike)."""

    link: Link


Action = Create | Adopt | Update | Recreate | Delete | Unlink | Record


@dataclass
class SectionPlan:
    actions: list[Action] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    not_carried: list[NotCarried] = field(default_factory=list)
    failed: list[EntityNote] = field(default_factory=list)
    retry_source: set[str] = field(default_factory=set)  # source ids to fetch again next run
    not_synced: set[str] = field(default_factory=set)  # read, and left alone on purpose

    def not_carry(
        self, model: SectionModel, label: str, entity: str, direction: str, reason: str
    ) -> None:
        """Note an edit the sync cannot carry over (reported, never silently dropped)."""
        self.not_carried.append(
            NotCarried(
                section=model.heading,
                property=label,
                entity=entity,
                direction=direction,
                reason=reason,
            )
        )


# --- projections --------------------------------------------------------------------------


class Unresolved(Exception):
    """A reference whose referenced entity has no link yet."""


def project_source(
    model: SectionModel, entity: Mapping[str, Any], refs: Refs
) -> tuple[dict[str, Any], dict[str, str]]:
    """Source entity -> comparison forms per target path, and per-path problems."""
    values: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for rule in model.rules:
        raw = mapping.read_path(entity, rule.source_path)
        if rule.referenced_section is not None:
            if raw is MISSING or raw is None or raw == "":
                values[rule.target_path] = None
                continue
            native = refs.forward.get(rule.referenced_section, {}).get(str(raw))
            if native is None:
                problems[rule.target_path] = f"references {raw}, which has no linked target" + (
                    f" {rule.referenced_section}"
                    if rule.referenced_section.startswith("(")
                    else " yet"
                )
                continue
            values[rule.target_path] = str(native)
            continue
        try:
            raw = _amount_to(model, rule, raw, entity, forward=True)
            values[rule.target_path] = mapping.comparison_form(
                raw, rule.data_type, model.target.system, rule.target_path
            )
        except CoercionError as error:
            problems[rule.target_path] = str(error)
    return values, problems


def _amount_to(
    model: SectionModel,
    rule: PropertyRule,
    value: Any,
    entity: Mapping[str, Any] | None,
    *,
    forward: bool,
) -> Any:
    """An amount read on one side in the other side's unit (Chargebee minor, Invoiced major),
    in the currency of ``entity``, the side it was read from (forward: the source)."""
    source = mapping.money(model.source.system, model.source.resource, rule.source_path)
    target = mapping.money(model.target.system, model.target.resource, rule.target_path)
    if not forward:
        source, target = target, source
    side = model.source if forward else model.target
    currency = mapping.currency_of(side.system, side.resource, entity)
    return mapping.convert_amount(value, currency, source, target)


def _whole_lists(
    model: SectionModel, changed: Mapping[str, Any], full: Mapping[str, Any]
) -> dict[str, Any]:
    """``changed`` plus every other mapped path into the same list of lines: a vendor takes a
    list of lines whole (Invoiced replaces an invoice's ``items``), so a line's other mapped
    values must travel with the one that changed."""
    lists = mapping.LISTS.get((model.target.system, model.target.resource), frozenset())
    heads = {mapping.top(path) for path in changed if "." in path} & lists
    out = dict(changed)
    for rule in model.rules:
        path = rule.target_path
        if "." in path and mapping.top(path) in heads and path not in out:
            out[path] = full.get(path)
    return out


def project_target(model: SectionModel, entity: Mapping[str, Any]) -> dict[str, Any]:
    """Target entity -> comparison forms per target path (unreadable values kept as text)."""
    values: dict[str, Any] = {}
    for rule in model.rules:
        raw = mapping.read_path(entity, rule.target_path)
        if rule.referenced_section is not None:
            values[rule.target_path] = None if raw in (MISSING, None, "") else str(raw)
            continue
        try:
            values[rule.target_path] = mapping.comparison_form(
                raw, rule.data_type, model.target.system, rule.target_path
            )
        except CoercionError:
            values[rule.target_path] = None if raw is MISSING else str(raw)
    return values


def derived_values(model: SectionModel, entity: Mapping[str, Any]) -> dict[str, Any]:
    """Fields the target requires that no row maps (Invoiced customer ``name``)."""
    if model.source_owned is not None:
        return {}  # it lives on its owner's target: never renames or reshapes that entity
    mapped = {r.target_path for r in model.rules}
    makers = mapping.DERIVED.get((model.target.system, model.target.resource), {})
    return {path: make(entity) for path, make in makers.items() if path not in mapped}


def _target_wire(model: SectionModel, path: str, value: Any, refs: Refs) -> Any:
    rule = model.rule(path)
    if rule.referenced_section is not None and value is not None:
        # send the id in the target's own type (Invoiced customer ids are integers)
        source_id = refs.backward.get(rule.referenced_section, {}).get(value)
        if source_id is not None:
            return refs.forward[rule.referenced_section][source_id]
        return value
    return mapping.to_wire(value, rule.data_type)


def target_fields(model: SectionModel, values: Mapping[str, Any], refs: Refs) -> Json:
    fields: Json = {}
    lists = mapping.LISTS.get((model.target.system, model.target.resource), frozenset())
    for path, value in values.items():
        mapping.write_path(fields, path, _target_wire(model, path, value, refs), lists)
    return mapping.wire_lines(model.target.system, model.target.resource, fields)


def creation_fields(
    model: SectionModel,
    source_id: str,
    values: Mapping[str, Any],
    derived: Mapping[str, Any],
    refs: Refs,
) -> Json:
    """Everything a create sends: derived, fixed (type=person), mapped, and the source id."""
    fields: Json = {}
    for path, value in derived.items():
        mapping.write_path(fields, path, value)
    for path, value in model.target.fixed.items():
        mapping.write_path(fields, path, value)
    lists = mapping.LISTS.get((model.target.system, model.target.resource), frozenset())
    for path, value in values.items():
        if value is not None:
            mapping.write_path(fields, path, _target_wire(model, path, value, refs), lists)
    mapping.wire_lines(model.target.system, model.target.resource, fields)
    return mapping.claim_fields(
        model.target.system, model.target.resource, model.metadata_key, source_id, fields
    )


# --- planning -----------------------------------------------------------------------------


def updated_at(entity: Mapping[str, Any] | None) -> int | None:
    """The vendor's own change stamp (integer seconds), None when absent or not one."""
    value = entity.get("updated_at") if entity is not None else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass
class _Reconciled:
    to_target: dict[str, Any] = field(default_factory=dict)
    to_source: dict[str, Any] = field(default_factory=dict)
    recreate: dict[str, Any] = field(default_factory=dict)
    new_source: dict[str, Any] = field(default_factory=dict)
    new_target: dict[str, Any] = field(default_factory=dict)


def _reconcile(
    model: SectionModel,
    link: Link,
    current: tuple[dict[str, Any], dict[str, Any]],
    problems: Mapping[str, str],
    stamps: tuple[int | None, int | None],
    plan: SectionPlan,
) -> _Reconciled:
    src_vals, tgt_vals = current
    out = _Reconciled()
    source_entity = model.source_entity(link.source_id)
    target_entity = model.target_entity(str(link.target_id))
    for rule in model.rules:
        path = rule.target_path
        t = tgt_vals.get(path)
        out.new_target[path] = t
        if path in problems:
            out.new_source[path] = link.source_values.get(path)
            plan.not_carry(model, rule.label, source_entity, "to_target", problems[path])
            continue
        s = src_vals.get(path)
        out.new_source[path] = s
        if s == t:
            continue
        s_changed = path not in link.source_values or s != link.source_values[path]
        t_changed = path in link.target_values and t != link.target_values[path]
        winner = "source"
        if s_changed and t_changed:
            src_at, tgt_at = stamps
            winner = "target" if (tgt_at or 0) > (src_at or 0) else "source"
            plan.conflicts.append(
                Conflict(
                    property=rule.label,
                    source_id=link.source_id,
                    target_id=str(link.target_id),
                    source_value=s,
                    target_value=t,
                    source_updated_at=src_at,
                    target_updated_at=tgt_at,
                    winner=winner,
                )
            )
        elif t_changed:
            winner = "target"
        if winner == "source":
            if not mapping.immutable(model.target.system, model.target.resource, path):
                out.to_target[path] = s
                out.new_target[path] = s
            elif link.created_by_sync and mapping.recreatable(
                model.target.system, model.target.resource, path
            ):
                out.recreate[path] = s
                out.new_target[path] = s
            else:
                plan.not_carry(
                    model,
                    rule.label,
                    source_entity,
                    "to_target",
                    f"{model.target.system} does not let {model.target.resource}.{path} change"
                    + ("" if link.created_by_sync else " (and the sync did not create it)"),
                )
        elif mapping.immutable(model.source.system, model.source.resource, rule.source_path):
            plan.not_carry(
                model,
                rule.label,
                target_entity,
                "to_source",
                f"{model.source.system} does not let {model.source.resource}."
                f"{rule.source_path} change",
            )
        else:
            out.to_source[path] = t
            out.new_source[path] = t
    return out


def source_fields(
    model: SectionModel,
    values: Mapping[str, Any],
    source_entity: Mapping[str, Any] | None,
    refs: Refs,
    plan: SectionPlan,
    target_id: str,
) -> Json:
    """Target-side edits in the source's terms: reverse references, units, normalise,
    reverse-coerce."""
    fields: Json = {}
    lists = mapping.LISTS.get((model.source.system, model.source.resource), frozenset())
    for path, value in values.items():
        rule = model.rule(path)
        out: Any = value
        if rule.referenced_section is not None and value is not None:
            back = refs.backward.get(rule.referenced_section, {}).get(str(value))
            if back is None:
                plan.not_carry(
                    model,
                    rule.label,
                    model.target_entity(target_id),
                    "to_source",
                    f"{value} is not linked to any {model.source.system} entity",
                )
                continue
            out = back
        else:
            try:
                out = _amount_to(model, rule, out, source_entity, forward=False)
            except CoercionError as error:
                plan.not_carry(
                    model, rule.label, model.target_entity(target_id), "to_source", str(error)
                )
                continue
            out = mapping.to_wire(out, rule.data_type)
            out = mapping.normalise(model.source.system, rule.source_path, out)
            like = mapping.read_path(source_entity or {}, rule.source_path)
            out = mapping.reverse_coerce(out, like)
        mapping.write_path(fields, rule.source_path, out, lists)
    return mapping.wire_lines(model.source.system, model.source.resource, fields)


def _matches(source: Mapping[str, Any], target: Mapping[str, Any], rule: MergeRule) -> bool:
    left = mapping.read_path(source, rule.source_path)
    right = mapping.read_path(target, rule.target_path)
    try:
        a, b = mapping.coerce(left, "string"), mapping.coerce(right, "string")
    except CoercionError:
        return False
    return a is not None and b is not None and a.lower() == b.lower()


def _find_existing(
    model: SectionModel,
    source_id: str,
    source: Mapping[str, Any],
    target: Side,
    taken: set[str],
) -> tuple[str, Json, str] | None:
    """An unlinked target that already is this source's: by metadata, else by merge rule."""

    def free() -> Iterator[tuple[str, Json]]:
        for target_id, entity in target.entities.items():
            if target_id not in taken and model.target.holds(entity):
                yield target_id, entity

    wanted = model.link_id(source_id, source)
    for target_id, entity in free():
        if wanted is not None and model.claim(entity) == wanted:
            return target_id, entity, f"metadata.{model.metadata_key}"
    for target_id, entity in free():
        for rule in model.merge_rules:
            if _matches(source, entity, rule):
                return target_id, entity, f"merge {rule.source_path} = {rule.target_path}"
    return None


def plan_section(
    model: SectionModel,
    links: Mapping[str, Link],
    source: Side,
    target: Side,
    refs: Refs,
    homes: Mapping[str, str] | None = None,
) -> SectionPlan:
    """Decide what to do for every entity read this run (and, on full reads, every link).

    ``homes``: for an owned target (a Chargebee Address), source id -> the entity a new
    target is created on (a subscription of the owner linked to the source).
    """
    plan = SectionPlan()
    taken = {link.target_id for link in links.values() if link.linked and link.target_id}
    by_target = {link.target_id: link for link in links.values() if link.linked}
    considered = set(source.entities)
    considered |= {by_target[t].source_id for t in target.entities if t in by_target}
    if source.complete or target.complete:
        considered |= {sid for sid, link in links.items() if link.linked}

    for source_id in sorted(considered):
        link = links.get(source_id)
        src = source.entities.get(source_id)
        if link is not None and link.linked:
            _plan_linked(model, link, src, source, target, refs, plan)
        elif src is not None and not mapping.is_deleted(src):
            _plan_unlinked(model, source_id, src, link, target, refs, taken, plan, homes or {})
    return plan


def _plan_linked(
    model: SectionModel,
    link: Link,
    src: Json | None,
    source: Side,
    target: Side,
    refs: Refs,
    plan: SectionPlan,
) -> None:
    assert link.target_id is not None
    tgt = target.entities.get(link.target_id)
    src_gone = (src is not None and mapping.is_deleted(src)) or (src is None and source.complete)
    tgt_gone = (tgt is not None and (mapping.is_deleted(tgt) or not model.target.holds(tgt))) or (
        tgt is None and target.complete
    )
    if src_gone and tgt_gone:
        plan.actions.append(Unlink(link.evolve(state=GONE), "deleted on both sides"))
        return
    if src_gone:
        if link.created_by_sync:
            plan.actions.append(Delete(link))
        else:
            plan.actions.append(
                Unlink(
                    link.evolve(state=GONE),
                    "source deleted; the target was not created by the sync, so it stays",
                )
            )
        return
    if tgt_gone:
        plan.actions.append(
            Unlink(
                link.evolve(state=TOMBSTONE),
                "target deleted (or no longer of this datatype); the source is kept and "
                "not re-created",
            )
        )
        return
    if src is not None:
        src_vals, problems = project_source(model, src, refs)
        derived = derived_values(model, src)
    else:
        src_vals, problems, derived = dict(link.source_values), {}, dict(link.derived)
    tgt_vals = project_target(model, tgt) if tgt is not None else dict(link.target_values)
    stamps = (updated_at(src), updated_at(tgt))
    out = _reconcile(model, link, (src_vals, tgt_vals), problems, stamps, plan)
    to_target = target_fields(model, _whole_lists(model, out.to_target, out.new_target), refs)
    for path, value in derived.items():
        if link.derived.get(path) != value:
            mapping.write_path(to_target, path, value)
    new_link = link.evolve(
        source_values=out.new_source, target_values=out.new_target, derived=derived
    )
    to_source = (
        source_fields(model, out.to_source, src, refs, plan, link.target_id)
        if out.to_source
        else {}
    )
    if out.recreate:
        # the new target carries every value (to_target included); the source may still change
        fields = creation_fields(model, link.source_id, out.new_target, derived, refs)
        keep_id = (model.target.system, model.target.resource) in mapping.CALLER_CHOSEN_ID
        generation = link.generation + 1
        if keep_id:
            fields["id"] = link.target_native
        plan.actions.append(
            Recreate(
                new_link.evolve(generation=generation),
                fields,
                idempotency_key(model.key, link.source_id, generation),
                keep_id,
            )
        )
        if to_source:
            plan.actions.append(Update(new_link, {}, to_source))
    elif to_target or to_source:
        plan.actions.append(Update(new_link, to_target, to_source))
    elif new_link != link:
        plan.actions.append(Record(new_link))


def _plan_unlinked(
    model: SectionModel,
    source_id: str,
    src: Json,
    link: Link | None,
    target: Side,
    refs: Refs,
    taken: set[str],
    plan: SectionPlan,
    homes: Mapping[str, str],
) -> None:
    if link is not None and link.state == TOMBSTONE:
        plan.not_synced.add(source_id)
        return  # its target was deleted on purpose: do not bring it back
    src_vals, problems = project_source(model, src, refs)
    derived = derived_values(model, src)
    # a source linked before and unlinked since (GONE) starts a new generation of keys
    generation = 0 if link is None else link.generation + (1 if link.state == GONE else 0)
    found = _find_existing(model, source_id, src, target, taken)
    if found is not None:
        target_id, entity, how = found
        taken.add(target_id)
        tgt_vals = project_target(model, entity)
        differing = {
            p: v
            for p, v in src_vals.items()
            if tgt_vals.get(p) != v
            and not mapping.immutable(model.target.system, model.target.resource, p)
        }
        new_target = {**tgt_vals, **differing}
        plan.actions.append(
            Adopt(
                Link(
                    section=model.key,
                    source_id=source_id,
                    state=LINKED,
                    target_id=target_id,
                    target_native=entity.get("id"),
                    created_by_sync=link is not None and link.state == CREATING,
                    source_values=src_vals,
                    target_values=new_target,
                    derived=derived,
                    generation=generation,
                ),
                target_fields(model, _whole_lists(model, differing, new_target), refs),
                how,
            )
        )
        return
    if model.section.kind is SectionKind.LINK_FIRST or model.source_owned is not None:
        # "Before any synchronization can take place, a link ... must be established": no
        # target is created for a source without one; it is looked at again next run. An
        # owned source (an Address) only ever lands on its owner's target: none yet, none made.
        plan.retry_source.add(source_id)
        plan.not_synced.add(source_id)
        return
    home: str | None = None
    owned_target = model.target_owned
    if owned_target is not None:
        home = homes.get(source_id)
        if home is None:  # nothing to carry it yet (no linked owner with a subscription)
            plan.retry_source.add(source_id)
            plan.not_synced.add(source_id)
            return
    required_missing = [p for p in problems if model.rule(p).referenced_section is not None]
    if required_missing:
        plan.failed.append(
            EntityNote(
                source_id=source_id,
                target_id=None,
                reason="; ".join(f"{model.rule(p).label}: {problems[p]}" for p in required_missing),
            )
        )
        plan.retry_source.add(source_id)
        return
    for path, reason in problems.items():
        plan.not_carry(
            model, model.rule(path).label, model.source_entity(source_id), "to_target", reason
        )
    fields = creation_fields(model, source_id, src_vals, derived, refs)
    if owned_target is not None and home is not None:
        fields[owned_target.home_key] = home
    plan.actions.append(
        Create(
            source_id,
            fields,
            Link(
                section=model.key,
                source_id=source_id,
                state=CREATING,
                created_by_sync=True,
                source_values=src_vals,
                target_values=dict(src_vals),
                derived=derived,
                generation=generation,
            ),
            idempotency_key(model.key, source_id, generation),
        )
    )
