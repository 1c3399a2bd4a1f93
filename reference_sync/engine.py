"""Plan and apply, section by section, referenced datatypes first.

A run, per bound section (customers before the orders that reference them):
1. read the section's links, then each side since its cursor (everything on the first run
   or with ``full=True``), plus the entities whose last attempt failed (links first: a link
   committed after the targets were read would look like a deleted target);
2. plan (pure, ``plan.plan_section``);
3. apply: creates with deterministic idempotency keys, updates both ways, unlinks; every
   link change is committed as soon as its write succeeded (a create's outcome with the next
   commit: its intent is committed, with the rest of its batch's, before the create is sent).
   Different entities' writes may run concurrently (``concurrency`` worker threads); a failed
   write is confined to its entity (reported, put on the retry list) unless the key was
   refused;
4. move each side's cursor. Cursors come from the data's own ``updated_at``, never the local
   clock. Reads ask for ``updated_after = cursor - 1`` so the boundary second is read again
   (two edits in the same second are never lost); what was already in sync is recognised by
   its last-synced values and costs no write. When the sync wrote to a side, a closing read
   from the old cursor tells the sync's own writes (their values match the memory) from
   edits others made meanwhile; the cursor stops before the first of those.

Deletions (a careful integrator's choice; the sync never deletes what it did not create):
- a source deleted (Chargebee ``deleted``/``status: deleted``, a 404 on a retry, or absent
  from a full read): the target is deleted only when the sync created it, the target
  itself still names the source in its metadata (asked just before the delete), and no
  linked entity of another section still references it (an invoice of the person);
  otherwise the link is dropped (state ``gone``) and the target left in place, reported as
  unlinked. A delete that fails keeps the link, and the source is looked at again.
  Deletions run after all sections, dependants first (orders before customers).
- a target deleted (a 404 on update, absent from a full read, or no longer of the
  datatype, e.g. type changed from person to company): the link becomes a tombstone and is
  reported; the source is never deleted, and not re-created either (someone removed it on
  purpose) until ``LinkStore.forget(section, source_id)``.
Creation is one way (source -> target); an unlinked target is only ever linked, never
copied back.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from reference_sync import mapping
from reference_sync.linkstore import CREATING, GONE, LINKED, TOMBSTONE, Link, LinkStore
from reference_sync.plan import (
    Action,
    Adopt,
    Create,
    Delete,
    PropertyRule,
    Record,
    Recreate,
    Refs,
    SectionModel,
    SectionPlan,
    Side,
    Unlink,
    Update,
    plan_section,
    project_source,
    project_target,
    updated_at,
)
from reference_sync.summary import EntityNote, NotCarried, SectionSummary, SyncSummary
from reference_sync.workers import run_batches
from talkqa.dataflow.spec import DataflowSpec, Section
from talkqa.systems.base import (
    ApiError,
    AuthenticationFailed,
    BadRequest,
    Json,
    NotFound,
    Resource,
)
from talkqa.systems.catalog import Binding, binding_of, section_bindings

Progress = Callable[[str, int, int], None]
SOURCE, TARGET = "source", "target"
# Entities whose create intents share one commit (see ``_Applier._intend``): at most this
# many targets a crash may leave to be adopted or resent by the next run, per worker.
INTENT_BATCH = 32


class Systems(Protocol):
    """What the sync needs of ``talkqa.systems.connect.Systems``."""

    def resource(self, binding: Binding) -> Resource: ...


# --- compiling the spec -------------------------------------------------------------------


def section_key(source: Binding, target: Binding) -> str:
    """Stable across documents and re-orderings: the bound datatypes, not the position."""
    return f"{source.system}:{source.datatype}->{target.system}:{target.datatype}"


@dataclass
class Compiled:
    models: list[SectionModel] = field(default_factory=list)  # referenced sections first
    skipped: list[SectionSummary] = field(default_factory=list)


def _find_referenced(
    bound: list[tuple[Section, str, Binding, Binding]],
    src_ref: tuple[str, str] | None,
    tgt_ref: tuple[str, str],
) -> tuple[str, ...]:
    """The sections whose targets a reference may name (a person's or an organisation's)."""
    wanted = binding_of(tgt_ref)
    source_wanted = binding_of(src_ref) if src_ref is not None else None
    return tuple(
        key
        for _section, key, source, target in bound
        if target.within(wanted) and (source_wanted is None or source.within(source_wanted))
    )


def compile_spec(spec: DataflowSpec) -> Compiled:
    """Bind each section, resolve reference rules, and order sections by dependency."""
    out = Compiled()
    bound: list[tuple[Section, str, Binding, Binding]] = []
    seen: dict[str, int] = {}
    for section in spec.sections:
        source, target = section_bindings(section)
        if source is None or target is None:
            missing = section.source if source is None else section.target
            out.skipped.append(
                SectionSummary(
                    index=section.index,
                    heading=section.heading,
                    skipped=f"no connector for {missing.system} {missing.datatype}".strip(),
                )
            )
            continue
        unsyncable = _unsyncable(section, source, target)
        if unsyncable is not None:
            out.skipped.append(unsyncable)
            continue
        key = section_key(source, target)
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > 1:
            key = f"{key}#{seen[key]}"
        bound.append((section, key, source, target))

    models: dict[str, SectionModel] = {}
    for section, key, source, target in bound:
        rules: list[PropertyRule] = []
        for prop in section.properties:
            if prop.source_path.startswith("$") or prop.target_path.startswith("$"):
                continue  # Sesam-internal, no vendor field behind it
            if prop.target_path in target.references:
                tgt_ref = target.references[prop.target_path]
                keys = _find_referenced(bound, source.references.get(prop.source_path), tgt_ref)
                links = " + ".join(keys) or f"(no section of this checklist links {tgt_ref[1]})"
                rules.append(
                    PropertyRule(prop.source_path, prop.target_path, prop.data_type, links, keys)
                )
                continue
            computed = mapping.COMPUTED.get((target.system, target.resource), frozenset())
            if prop.target_path in computed:
                continue  # the vendor computes it: nothing a sync can write
            if prop.target_path == "id" and mapping.owned(source.system, source.datatype):
                continue  # the owner's link itself (the vendor assigns ids): nothing to write
            rules.append(PropertyRule(prop.source_path, prop.target_path, prop.data_type))
        # A reference the target requires but no row maps (an invoice's customer): pair it
        # with the source's own reference to the matching section.
        mapped = {r.target_path for r in rules}
        for tgt_field, tgt_ref in target.references.items():
            if tgt_field in mapped:
                continue
            for src_field, src_ref in source.references.items():
                keys = _find_referenced(bound, src_ref, tgt_ref)
                if keys:
                    rules.append(
                        PropertyRule(src_field, tgt_field, "string", " + ".join(keys), keys)
                    )
                    break
        models[key] = SectionModel(
            key=key,
            section=section,
            source=source,
            target=target,
            rules=tuple(rules),
            merge_rules=section.merge_rules,
        )
    out.models = _dependency_order(_fold_contained(list(models.values())))
    return out


def _fold_contained(models: list[SectionModel]) -> list[SectionModel]:
    """A section of a datatype living inside another's entities (Invoiced Lineitem inside
    Invoices) adds its rules to that section's model, so both keep one link per entity; with
    no such section in the checklist it stays a model of its own."""
    out = list(models)
    for part in models:
        container = mapping.CONTAINED_IN.get((part.source.system, part.source.datatype))
        if container is None:
            continue
        host = next(
            (
                m
                for m in out
                if (m.source.system, m.source.datatype) == container
                and m.target.key == part.target.key
            ),
            None,
        )
        if host is None:
            continue
        have = {r.target_path for r in host.rules}
        extra = tuple(r for r in part.rules if r.target_path not in have)
        out[out.index(host)] = replace(host, rules=host.rules + extra)
        out.remove(part)
    return out


def _unsyncable(section: Section, source: Binding, target: Binding) -> SectionSummary | None:
    """A section whose source the vendor's API cannot read, or whose target it cannot create
    (Chargebee business entities): skipped with the reason, rather than failing every run."""
    if (source.system, source.resource) in mapping.NO_READ:
        why = f"{source.system} offers no API to read {source.resource}"
    elif (target.system, target.resource) in mapping.NO_CREATE:
        why = f"{target.system} offers no API to create {target.resource}"
    else:
        return None
    return SectionSummary(index=section.index, heading=section.heading, skipped=why)


def _dependency_order(models: list[SectionModel]) -> list[SectionModel]:
    """Referenced sections first, otherwise document order (a cycle keeps document order)."""
    ordered: list[SectionModel] = []
    placed: set[str] = set()
    remaining = list(models)
    keys = {m.key for m in models}
    while remaining:
        for model in remaining:
            needs = {k for r in model.rules for k in r.referenced_keys} & keys - {model.key}
            needs |= _owners(model, models)
            if needs <= placed:
                break
        else:
            model = remaining[0]
        ordered.append(model)
        placed.add(model.key)
        remaining.remove(model)
    return ordered


def _owners(model: SectionModel, models: list[SectionModel]) -> set[str]:
    """An owned datatype's section waits for its owner's: an Address lands on the customer's
    target (forward), or on a subscription of the customer linked to its source (reverse)."""
    source, target = model.source_owned, model.target_owned
    return {
        other.key
        for other in models
        if other.key != model.key
        and (
            (source is not None and other.source.key == source.owner)
            or (target is not None and other.target.key == target.owner)
        )
    }


# --- reading ------------------------------------------------------------------------------


class _Reader:
    """Lists through the Resource contract, memoised within a run until a write."""

    def __init__(self) -> None:
        self._memo: dict[tuple[str, str, int | None, tuple[tuple[str, str], ...]], list[Json]] = {}

    def invalidate(self, resource: Resource) -> None:
        for memo_key in [k for k in self._memo if k[:2] == (resource.system, resource.name)]:
            del self._memo[memo_key]

    def list(self, resource: Resource, binding: Binding, after: int | None) -> list[Json]:
        filters: dict[str, str] = {}
        if binding.system == "chargebee" and binding.resource in {"customers", "orders"}:
            filters["include_deleted"] = "true"  # deletions are changes too
        if binding.system == "invoiced":
            filters.update({f"filter[{k}]": str(v) for k, v in binding.fixed.items()})
        takes_filters = "filters" in inspect.signature(resource.list).parameters
        memo_key = (resource.system, resource.name, after, tuple(sorted(filters.items())))
        if memo_key not in self._memo:
            if takes_filters and filters:
                found = resource.list(updated_after=after, filters=filters)  # type: ignore[call-arg]
            else:
                found = resource.list(updated_after=after)
            self._memo[memo_key] = list(found)
        return self._memo[memo_key]


def _by_id(entities: Iterable[Json]) -> dict[str, Json]:
    return {str(e["id"]): e for e in entities if "id" in e}


# --- the run ------------------------------------------------------------------------------


class SyncInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run: every finished write is recorded; ``summary`` says what was done."""

    def __init__(self, summary: SyncSummary) -> None:
        super().__init__()
        self.summary = summary


@dataclass
class _Run:
    spec: DataflowSpec
    systems: Systems
    store: LinkStore
    progress: Progress | None
    full: bool
    concurrency: int = 1
    reader: _Reader = field(default_factory=_Reader)
    models: dict[str, SectionModel] = field(default_factory=dict)
    summaries: dict[str, SectionSummary] = field(default_factory=dict)
    ledgers: dict[str, _Ledger] = field(default_factory=dict)
    deletes: list[tuple[SectionModel, Delete]] = field(default_factory=list)

    def refs(self, model: SectionModel) -> Refs:
        forward: dict[str, dict[str, Any]] = {}
        for rule in model.rules:
            key = rule.referenced_section
            if key is not None and key not in forward:
                forward[key] = {
                    link.source_id: link.target_native
                    for section in rule.referenced_keys
                    for link in self.store.links(section).values()
                    if link.linked
                }
        return Refs(forward=forward)

    def dependants(self, model: SectionModel, target_native: Any) -> int:
        """Linked entities of other sections whose reference points at this target."""
        wanted = str(target_native)
        count = 0
        for other in self.models.values():
            paths = [r.target_path for r in other.rules if model.key in r.referenced_keys]
            if not paths:
                continue
            for link in self.store.links(other.key).values():
                if link.linked:
                    count += sum(link.target_values.get(path) == wanted for path in paths)
        return count

    def summary(self) -> SyncSummary:
        for key, ledger in self.ledgers.items():
            ledger.close(self.summaries[key], self.store.links(key))
        return SyncSummary(sections=sorted(self.summaries.values(), key=lambda s: s.index))


def run_sync(
    spec: DataflowSpec,
    systems: Systems,
    store: LinkStore,
    *,
    progress: Progress | None = None,
    full: bool = False,
    concurrency: int = 1,
) -> SyncSummary:
    """Bring both systems to sync for every bound section of ``spec``.

    ``full=True`` reads everything instead of what changed since the cursors (the first run
    of a section always does): only a full read notices deletions the vendors do not flag.
    ``concurrency`` is how many writes of a section may be in flight at once; 1 (the
    default) writes in plan order, which recorded cassettes and seeded sandbox ids rely on.
    Ctrl-C raises SyncInterrupted once the writes in flight have finished.
    """
    compiled = compile_spec(spec)
    run = _Run(spec, systems, store, progress, full, max(1, concurrency))
    run.models = {m.key: m for m in compiled.models}
    for skipped in compiled.skipped:
        run.summaries[f"skipped#{skipped.index}"] = skipped
        if progress is not None:
            progress(skipped.heading, 0, 0)
    try:
        for model in compiled.models:
            summary = SectionSummary(
                index=model.section.index, heading=model.heading, key=model.key
            )
            run.summaries[model.key] = summary
            run.ledgers[model.key] = _Ledger()
            _sync_section(run, model, summary)
        for model in reversed(compiled.models):  # dependants first: orders before customers
            for owner, delete in run.deletes:
                if owner.key == model.key:
                    _apply_delete(run, model, delete, run.summaries[model.key])
    except KeyboardInterrupt:
        raise SyncInterrupted(run.summary()) from None
    return run.summary()


@dataclass
class _Ledger:
    """What became of each source entity of a section: the summary's counts, each once."""

    accounted: set[str] = field(default_factory=set)  # the links held + live sources read
    outcome: dict[str, str] = field(default_factory=dict)  # source id -> created, updated...
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, source_id: str, outcome: str) -> None:
        """Record an outcome; a failure or unlink is final, an update never hides a create."""
        with self.lock:
            previous = self.outcome.get(source_id)
            if previous in {"failed", "unlinked", "created", "readopted"} and outcome == "updated":
                return
            if previous in {"failed", "unlinked"}:
                return
            self.outcome[source_id] = outcome

    def close(self, summary: SectionSummary, links: Mapping[str, Link]) -> None:
        counts = {name: 0 for name in ("created", "readopted", "updated", "deleted")}
        for outcome in self.outcome.values():
            if outcome in counts:
                counts[outcome] += 1
        summary.created, summary.readopted = counts["created"], counts["readopted"]
        summary.updated, summary.deleted = counts["updated"], counts["deleted"]
        summary.entities = len(self.accounted)
        summary.unchanged = sum(
            1 for sid, link in links.items() if link.linked and sid not in self.outcome
        )


def _prepare_targets(run: _Run, model: SectionModel) -> None:
    """Vendor set-up a create needs: Chargebee refuses an item whose item family is missing."""
    if (model.target.system, model.target.resource) != ("chargebee", "items"):
        return
    families = run.systems.resource(Binding("chargebee", "Item family", "item_families"))
    family = mapping.item_family_id()
    try:
        families.get(family)
    except NotFound:
        families.create({"id": family, "name": "Talk-QA"}, idempotency_key=f"family-{family}")


def _read_side(
    run: _Run, model: SectionModel, side: str, resource: Resource, binding: Binding
) -> tuple[dict[str, Json], bool, int | None]:
    cursor = None if run.full else run.store.cursor(model.key, side)
    after = cursor - 1 if cursor is not None else None
    entities = _by_id(run.reader.list(resource, binding, after))
    for entity_id in run.store.pending(model.key, side):
        if entity_id in entities:
            continue
        try:
            entities[entity_id] = resource.get(entity_id)
        except NotFound:
            entities[entity_id] = {"id": entity_id, "deleted": True}
    return entities, cursor is None, _latest(entities.values(), cursor)


def _latest(entities: Iterable[Json], floor: int | None) -> int | None:
    """The newest ``updated_at`` among ``entities``, never below ``floor`` (a cursor)."""
    stamps = [s for s in map(updated_at, entities) if s is not None]
    return max([*stamps, floor] if floor is not None else stamps, default=None)


def _confined(error: ApiError) -> bool:
    """A failure that concerns one entity (or one section's read), not the whole run.

    A refused key would fail every call alike, so it stops the run; anything else (a
    refusal of one entity's content, a 404, a 429 or 5xx or lost connection that outlasted
    the connector's retries) is reported where it happened and retried next run.
    """
    return not isinstance(error, AuthenticationFailed)


def _sync_section(run: _Run, model: SectionModel, summary: SectionSummary) -> None:
    src_res = run.systems.resource(model.source)
    tgt_res = run.systems.resource(model.target)
    ledger = run.ledgers[model.key]
    # The links first: a link committed after the target side was read would otherwise look
    # like a target deleted since (the run lock keeps other runs out; this keeps it sound).
    links = run.store.links(model.key)
    try:
        _retire_replaced(run, model, tgt_res)
        src_entities, src_complete, src_high = _read_side(run, model, SOURCE, src_res, model.source)
        # the section's own sources only: a Chargebee customer that names only a company is
        # the organisation section's, not the person section's (catalog.section_bindings)
        src_entities = {
            sid: e
            for sid, e in src_entities.items()
            if model.source.holds(e) or mapping.is_deleted(e)
        }
        tgt_entities, tgt_complete, tgt_high = _read_side(run, model, TARGET, tgt_res, model.target)
        if not tgt_complete and _needs_every_target(model, links, src_entities):
            # a new source may match an existing target by a merge rule: look at them all
            tgt_entities = {**_by_id(run.reader.list(tgt_res, model.target, None)), **tgt_entities}
            tgt_complete = True
    except ApiError as error:
        if not _confined(error):
            raise
        summary.error = f"could not read: {error}; nothing of this section was written"
        del run.ledgers[model.key]  # nothing to account for: every count stays 0
        return
    refs = run.refs(model)
    ledger.accounted |= {sid for sid, link in links.items() if link.linked}
    ledger.accounted |= {sid for sid, e in src_entities.items() if not mapping.is_deleted(e)}
    try:
        homes = _homes(run, model)
    except ApiError as error:
        if not _confined(error):
            raise
        summary.error = f"could not read: {error}; nothing of this section was written"
        del run.ledgers[model.key]
        return
    plan = plan_section(
        model,
        links,
        Side(src_entities, src_complete),
        Side(tgt_entities, tgt_complete),
        refs,
        homes,
    )
    summary.conflicts.extend(plan.conflicts)
    summary.not_carried_over.extend(plan.not_carried)
    summary.failed.extend(plan.failed)
    for note in plan.failed:
        if note.source_id is not None:
            ledger.note(note.source_id, "failed")
    summary.not_synced = len(plan.not_synced & ledger.accounted)
    ledger.outcome.update(dict.fromkeys(plan.not_synced, "not_synced"))
    if any(isinstance(action, Create) for action in plan.actions):
        _prepare_targets(run, model)
    claims = {sid: model.link_id(sid, e) for sid, e in src_entities.items()}
    applier = _Applier(run, model, summary, plan, src_res, tgt_res, tgt_entities, claims)
    applier.apply_all()

    if applier.wrote_target:
        run.reader.invalidate(tgt_res)
    if applier.wrote_source:
        run.reader.invalidate(src_res)
    refs = run.refs(model)
    # the links as the writes left them, read once: the closing reads hold every entity the
    # run wrote (31k on a first sync), and a query per entity cost more than the comparison
    after = run.store.links(model.key) if applier.wrote_target or applier.wrote_source else {}
    tgt_cursor = _next_cursor(
        run,
        tgt_res,
        model.target,
        tgt_high,
        applier.wrote_target,
        functools.partial(_target_explained, model, _linked_by_target(after)),
    )
    src_cursor = _next_cursor(
        run,
        src_res,
        model.source,
        src_high,
        applier.wrote_source,
        functools.partial(_source_explained, model, after, refs),
    )
    if tgt_cursor is not None:
        run.store.set_cursor(model.key, TARGET, tgt_cursor)
    if src_cursor is not None:
        run.store.set_cursor(model.key, SOURCE, src_cursor)
    run.store.set_pending(model.key, SOURCE, plan.retry_source | applier.retry_source)
    run.store.set_pending(model.key, TARGET, applier.retry_target)


def _homes(run: _Run, model: SectionModel) -> dict[str, str]:
    """For an owned target (a Chargebee Address): source id -> the home a new one is made on,
    the oldest live subscription of the Chargebee customer that claims the source."""
    owned = model.target_owned
    if owned is None:
        return {}
    owner, home = binding_of(owned.owner), binding_of(owned.home)
    claims = {
        str(entity.get("id")): claim
        for entity in run.reader.list(run.systems.resource(owner), owner, None)
        if not mapping.is_deleted(entity)
        and (claim := mapping.claim_of(entity, model.metadata_key)) is not None
    }
    found: dict[str, str] = {}
    homes = run.reader.list(run.systems.resource(home), home, None)
    for entity in sorted(homes, key=lambda h: (h.get("created_at") or 0, str(h.get("id")))):
        source_id = claims.get(str(entity.get(owned.home_owner)))
        if source_id is not None and not mapping.is_deleted(entity):
            found.setdefault(source_id, str(entity.get("id")))
    return found


def _needs_every_target(
    model: SectionModel, links: Mapping[str, Link], sources: Mapping[str, Json]
) -> bool:
    if not (model.merge_rules or model.section.merges_existing):
        return False
    return any(
        (link := links.get(sid)) is None or link.state in {CREATING, GONE}
        for sid, entity in sources.items()
        if not mapping.is_deleted(entity)
    )


def _next_cursor(
    run: _Run,
    resource: Resource,
    binding: Binding,
    high: int | None,
    wrote: bool,
    explained: Callable[[Json], bool],
) -> int | None:
    if not wrote:
        return high
    closing = run.reader.list(resource, binding, high - 1 if high is not None else None)
    others = [s for e in closing if not explained(e) and (s := updated_at(e)) is not None]
    if others:
        return min(others)
    return _latest(closing, high)


def _linked_by_target(links: Mapping[str, Link]) -> dict[str, Link]:
    """Linked links by target id; the first by source id should two name one target."""
    found: dict[str, Link] = {}
    for link in links.values():
        if link.linked and link.target_id is not None:
            found.setdefault(link.target_id, link)
    return found


def _target_explained(model: SectionModel, by_target: Mapping[str, Link], entity: Json) -> bool:
    if not model.target.holds(entity):
        return True
    link = by_target.get(str(entity.get("id")))
    return link is None or project_target(model, entity) == link.target_values


def _source_explained(
    model: SectionModel, links: Mapping[str, Link], refs: Refs, entity: Json
) -> bool:
    if not model.source.holds(entity):
        return True  # another section's entity (another Talk datatype)
    link = links.get(str(entity.get("id")))
    if link is None or link.state == CREATING:
        return mapping.is_deleted(entity)
    if not link.linked:
        return True
    values, _problems = project_source(model, entity, refs)
    return values == link.source_values


def claimed_by(entity: Mapping[str, Any], model: SectionModel) -> str | None:
    """The source id a target names (``metadata``; Chargebee ``meta_data``, ``reference_id``;
    an owned target: its owner's)."""
    return model.claim(entity)


def _retire_replaced(run: _Run, model: SectionModel, tgt_res: Resource) -> None:
    """Delete targets a recreate replaced, where a crash came between create and delete."""
    for source_id, old_target in run.store.retiring(model.key):
        with contextlib.suppress(NotFound):
            if claimed_by(tgt_res.get(old_target), model) == source_id:
                tgt_res.delete(old_target)
        run.store.retired(model.key, old_target)


class _Refused(Exception):
    """A write the sync will not make: the target no longer is the one the link names.

    ``drop``: the target belongs to another source now, so the link goes (the source is
    linked or created afresh next run); otherwise the entity is retried next run.
    """

    def __init__(self, reason: str, *, drop: bool) -> None:
        super().__init__(reason)
        self.drop = drop


def _action_source(action: Action) -> str:
    return action.source_id if isinstance(action, Create) else action.link.source_id


class _Applier:
    """Carries out one section's plan, committing each link as its write succeeds.

    Actions of different source entities are independent (references point at other
    sections, synced before), so up to ``run.concurrency`` of them are in flight at once
    (``reference_sync.workers``: that many threads, each taking a batch of entities at a
    time); one entity's actions run in plan order. A batch's create intents are committed
    together before its first create is sent (``_intend``). The store serialises its own
    writes; the applier's counters are guarded by ``_lock``.
    """

    def __init__(
        self,
        run: _Run,
        model: SectionModel,
        summary: SectionSummary,
        plan: SectionPlan,
        src_res: Resource,
        tgt_res: Resource,
        targets_read: Mapping[str, Json],
        claims: Mapping[str, str | None],
    ) -> None:
        self.run, self.model, self.summary, self.plan = run, model, summary, plan
        self.src_res, self.tgt_res = src_res, tgt_res
        self.targets_read = targets_read
        # source id -> what its target must claim (its id; an owned source: its owner's)
        self.claims = claims
        self.ledger = run.ledgers[model.key]
        self.wrote_source = self.wrote_target = False
        self.retry_source: set[str] = set()
        self.retry_target: set[str] = set()
        self._lock = threading.Lock()

    def apply_all(self) -> None:
        try:
            self._apply_groups()
        finally:
            self.run.store.flush()  # the last creates' links, whatever stopped the run

    def _apply_groups(self) -> None:
        groups: dict[str, list[Action]] = {}
        for action in self.plan.actions:
            groups.setdefault(_action_source(action), []).append(action)
        total = len(groups)
        self._progress(0, total)
        workers = min(self.run.concurrency, total)
        size = max(1, min(INTENT_BATCH, -(-total // max(workers, 1))))
        ordered = list(groups.values())
        batches = [ordered[start : start + size] for start in range(0, total, size)]
        run_batches(
            batches,
            workers,
            self._intend,
            self._apply_entity,
            lambda done: self._progress(done, total),
        )

    def _intend(self, batch: Sequence[list[Action]]) -> None:
        """Commit the ``creating`` intent of every create in ``batch`` in one transaction,
        before any of them is sent: one commit per batch instead of one per entity, and the
        store's lock (held across sqlite's commit, which lets go of the GIL) is taken once
        per batch, not once per request. A crash before a create leaves its intent, as a
        crash just after sending it would: the rerun adopts the target that names the
        source, or resends the same idempotency key."""
        intents = [a.link for actions in batch for a in actions if isinstance(a, Create)]
        if intents:
            self.run.store.put_all(intents)

    def _progress(self, done: int, total: int) -> None:
        if self.run.progress is not None:
            self.run.progress(self.model.heading, done, total)

    def _apply_entity(self, actions: list[Action]) -> None:
        for action in actions:
            try:
                self._apply(action)
            except ApiError as error:
                if not _confined(error):
                    raise
                self._failed(action, str(error))
                return
            except _Refused as refused:
                if refused.drop:
                    self._unlink(action.link.evolve(state=GONE), str(refused))
                else:
                    self._failed(action, str(refused))
                return

    def _failed(self, action: Action, reason: str) -> None:
        link = action.link
        source_id = _action_source(action)
        target_id = link.target_id
        with self._lock:
            self.summary.failed.append(
                EntityNote(source_id=source_id, target_id=target_id, reason=reason)
            )
            self.retry_source.add(source_id)
            if target_id is not None:  # re-read both sides next run: neither edit is lost
                self.retry_target.add(target_id)
        self.ledger.note(source_id, "failed")

    def _count(self, direction: str) -> None:
        with self._lock:
            setattr(self.summary, direction, getattr(self.summary, direction) + 1)

    def _wrote(self, side: str) -> None:
        with self._lock:
            setattr(self, f"wrote_{side}", True)

    def _apply(self, action: Action) -> None:
        store = self.run.store
        if isinstance(action, Create):  # its intent is committed (``_intend``)
            self._wrote(TARGET)
            created = self.tgt_res.create(action.fields, idempotency_key=action.idempotency_key)
            # committed with the next entity's intent: one commit per create, not two
            store.put(self._linked(action.link, created), defer=True)
            self.ledger.note(action.source_id, "created")
        elif isinstance(action, Adopt):
            store.put(action.link)
            self.ledger.note(action.link.source_id, "readopted")
            if action.to_target:
                self._update_target(action.link, action.to_target)
                self._count("updated_to_target")
        elif isinstance(action, Update):
            self._apply_update(action)
        elif isinstance(action, Recreate):
            self._apply_recreate(action)
        elif isinstance(action, Delete):
            with self._lock:
                self.run.deletes.append((self.model, action))
        elif isinstance(action, Unlink):
            self._unlink(action.link, action.reason)
        elif isinstance(action, Record):
            store.put(action.link)

    def _linked(self, link: Link, created: Json) -> Link:
        native = created.get("id")
        return link.evolve(
            state=LINKED,
            target_id=str(native),
            target_native=native,
            target_values=project_target(self.model, created),
        )

    def _unlink(self, link: Link, reason: str) -> None:
        self.run.store.put(link)
        with self._lock:
            self.summary.unlinked.append(
                EntityNote(source_id=link.source_id, target_id=link.target_id, reason=reason)
            )
        self.ledger.note(link.source_id, "unlinked")

    def _still_ours(self, link: Link) -> None:
        """Re-check, at the moment of a write, that the target still is this link's.

        The store must still link this source to this target (no other run relinked it),
        and the target as read this run must not name another source in its metadata.
        """
        current = self.run.store.get(self.model.key, link.source_id)
        if current is None or current.target_id != link.target_id or not current.linked:
            raise _Refused("the link changed while the sync ran; left for the next run", drop=False)
        entity = self.targets_read.get(str(link.target_id))
        owner = claimed_by(entity, self.model) if entity is not None else None
        expected = self.claims.get(link.source_id, link.source_id)
        if owner is not None and expected is not None and owner != expected:
            raise _Refused(
                f"the target now names {self.model.metadata_key} {owner}, not "
                f"{link.source_id}: left in place, not overwritten",
                drop=True,
            )

    def _update_target(self, link: Link, fields: Json) -> None:
        assert link.target_id is not None
        self._wrote(TARGET)
        self.tgt_res.update(link.target_id, _merge_metadata(fields, link, self.model))

    def _apply_update(self, action: Update) -> None:
        link = action.link
        assert link.target_id is not None
        self._still_ours(link)
        if action.to_target:
            try:
                self._update_target(link, action.to_target)
            except NotFound:
                self._unlink(
                    link.evolve(state=TOMBSTONE),
                    "target deleted; the source is kept and not re-created",
                )
                return
            self._count("updated_to_target")
        if action.to_source:
            self._wrote(SOURCE)
            try:
                self.src_res.update(link.source_id, action.to_source)
            except NotFound:
                self._unlink(link.evolve(state=GONE), "source deleted; the target stays")
                return
            self._count("updated_to_source")
        self.run.store.put(link)
        self.ledger.note(link.source_id, "updated")

    def _apply_recreate(self, action: Recreate) -> None:
        """Create the new target first, then retire the old one: a crash between the two
        leaves a duplicate the next run removes (``retiring``), never a lost entity."""
        link = action.link
        old_target = link.target_id
        assert old_target is not None
        if not action.keep_id and self.run.dependants(self.model, link.target_native):
            with self._lock:
                self.summary.not_carried_over.append(_dependants_note(self.model, link))
            return
        self._still_ours(link)
        self._wrote(TARGET)
        if action.keep_id:
            # the new target must carry the old id, so the old one has to go first; the
            # link says "creating" meanwhile, so a crash in between re-creates it next run
            self.run.store.put(link.evolve(state=CREATING))
            with contextlib.suppress(NotFound):
                self.tgt_res.delete(old_target)
            try:
                created = self.tgt_res.create(action.fields, idempotency_key=action.idempotency_key)
            except BadRequest:
                fields = {k: v for k, v in action.fields.items() if k != "id"}
                created = self.tgt_res.create(fields, idempotency_key=action.idempotency_key)
            self.run.store.put(self._linked(link, created))
        else:
            created = self.tgt_res.create(action.fields, idempotency_key=action.idempotency_key)
            self.run.store.replace_target(self._linked(link, created), old_target)
            with contextlib.suppress(NotFound):
                self.tgt_res.delete(old_target)
            self.run.store.retired(self.model.key, old_target)
        self._count("updated_to_target")
        self.ledger.note(link.source_id, "updated")


def _dependants_note(model: SectionModel, link: Link) -> NotCarried:
    return NotCarried(
        section=model.heading,
        property="(recreate)",
        entity=model.target_entity(str(link.target_id)),
        direction="to_target",
        reason="needs delete and recreate, but other linked entities reference it",
    )


def _merge_metadata(fields: Json, link: Link, model: SectionModel) -> Json:
    """A PATCH of ``metadata`` replaces it whole: keep the source id in it."""
    name = mapping.claim_field(model.target.system, model.target.resource)
    metadata = fields.get(name)
    if isinstance(metadata, dict) and model.metadata_key not in metadata:
        return mapping.claim_fields(
            model.target.system, model.target.resource, model.metadata_key, link.source_id, fields
        )
    return fields


def _apply_delete(run: _Run, model: SectionModel, action: Delete, summary: SectionSummary) -> None:
    """Delete a target the sync created, after asking the target itself that it still is.

    The target must still name this source in its metadata (another process or person may
    have re-used or re-claimed it, or the store may name another account's entity); a
    failed call keeps the link, and the source is looked at again next run.
    """
    link = action.link
    ledger = run.ledgers[model.key]
    assert link.target_id is not None
    dependants = run.dependants(model, link.target_native)
    kept: str | None = None  # why the target stays, if it does
    resource = run.systems.resource(model.target)
    if dependants:
        kept = f"source deleted; the target stays: {dependants} linked entities reference it"
    else:
        try:
            owner = claimed_by(resource.get(link.target_id), model)
            if owner != link.source_id:
                kept = (
                    f"source deleted; the target names {model.metadata_key} {owner}, not "
                    f"{link.source_id}, so it was not the sync's to delete: left in place"
                )
            else:
                resource.delete(link.target_id)
        except NotFound:
            pass
        except ApiError as error:
            if not _confined(error):
                raise
            if isinstance(error, BadRequest):
                kept = str(error)
            else:
                summary.failed.append(
                    EntityNote(
                        source_id=link.source_id, target_id=link.target_id, reason=str(error)
                    )
                )
                ledger.note(link.source_id, "failed")
                run.store.add_pending(model.key, SOURCE, {link.source_id})
                return
    run.store.put(link.evolve(state=GONE))
    if kept is None:
        ledger.note(link.source_id, "deleted")
    else:
        summary.unlinked.append(
            EntityNote(source_id=link.source_id, target_id=link.target_id, reason=kept)
        )
        ledger.note(link.source_id, "unlinked")
