"""Plan and apply, section by section, referenced datatypes first.

A run, per bound section (customers before the orders that reference them):
1. read each side since its cursor (everything on the first run or with ``full=True``),
   plus the entities whose last attempt failed;
2. plan (pure, ``plan.plan_section``);
3. apply: creates with deterministic idempotency keys, updates both ways, unlinks; every
   link change is committed as soon as its write succeeded;
4. move each side's cursor. Cursors come from the data's own ``updated_at``, never the local
   clock. Reads ask for ``updated_after = cursor - 1`` so the boundary second is read again
   (two edits in the same second are never lost); what was already in sync is recognised by
   its last-synced values and costs no write. When the sync wrote to a side, a closing read
   from the old cursor tells the sync's own writes (their values match the memory) from
   edits others made meanwhile; the cursor stops before the first of those.

Deletions (a careful integrator's choice; the sync never deletes what it did not create):
- a source deleted (Chargebee ``deleted``/``status: deleted``, a 404 on a retry, or absent
  from a full read): the target is deleted only when the sync created it and no linked
  entity of another section still references it (an invoice of the person); otherwise the
  link is dropped (state ``gone``) and the target left in place, reported as unlinked.
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
import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from reference_sync import mapping
from reference_sync.linkstore import CREATING, GONE, LINKED, TOMBSTONE, Link, LinkStore
from reference_sync.plan import (
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
from talkqa.dataflow.spec import DataflowSpec, Section
from talkqa.systems.base import ApiError, BadRequest, Json, NotFound, Resource
from talkqa.systems.catalog import Binding, bind

Progress = Callable[[str, int, int], None]
SOURCE, TARGET = "source", "target"

# Errors about one entity: reported, and the run goes on. Anything else (authentication,
# a server down after every retry) stops the run; the store stays consistent.
_ENTITY_ERRORS = (BadRequest, NotFound)


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
) -> str | None:
    for _section, key, source, target in bound:
        if target.key == tgt_ref and (src_ref is None or source.key == src_ref):
            return key
    return None


def compile_spec(spec: DataflowSpec) -> Compiled:
    """Bind each section, resolve reference rules, and order sections by dependency."""
    out = Compiled()
    bound: list[tuple[Section, str, Binding, Binding]] = []
    seen: dict[str, int] = {}
    for section in spec.sections:
        source, target = bind(section.source), bind(section.target)
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
            referenced = None
            if prop.target_path in target.references:
                tgt_ref = target.references[prop.target_path]
                referenced = (
                    _find_referenced(bound, source.references.get(prop.source_path), tgt_ref)
                    or f"(no section of this checklist links {tgt_ref[1]})"
                )
            rules.append(
                PropertyRule(prop.source_path, prop.target_path, prop.data_type, referenced)
            )
        # A reference the target requires but no row maps (an invoice's customer): pair it
        # with the source's own reference to the matching section.
        mapped = {r.target_path for r in rules}
        for tgt_field, tgt_ref in target.references.items():
            if tgt_field in mapped:
                continue
            for src_field, src_ref in source.references.items():
                referenced = _find_referenced(bound, src_ref, tgt_ref)
                if referenced is not None:
                    rules.append(PropertyRule(src_field, tgt_field, "string", referenced))
                    break
        models[key] = SectionModel(
            key=key,
            section=section,
            source=source,
            target=target,
            rules=tuple(rules),
            merge_rules=section.merge_rules,
        )
    out.models = _dependency_order(list(models.values()))
    return out


def _dependency_order(models: list[SectionModel]) -> list[SectionModel]:
    """Referenced sections first, otherwise document order (a cycle keeps document order)."""
    ordered: list[SectionModel] = []
    placed: set[str] = set()
    remaining = list(models)
    keys = {m.key for m in models}
    while remaining:
        for model in remaining:
            needs = {r.referenced_section for r in model.rules} & keys - {model.key}
            if needs <= placed:
                break
        else:
            model = remaining[0]
        ordered.append(model)
        placed.add(model.key)
        remaining.remove(model)
    return ordered


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


@dataclass
class _Run:
    spec: DataflowSpec
    systems: Systems
    store: LinkStore
    progress: Progress | None
    full: bool
    reader: _Reader = field(default_factory=_Reader)
    models: dict[str, SectionModel] = field(default_factory=dict)
    summaries: dict[str, SectionSummary] = field(default_factory=dict)
    deletes: list[tuple[SectionModel, Delete]] = field(default_factory=list)

    def refs(self, model: SectionModel) -> Refs:
        forward: dict[str, dict[str, Any]] = {}
        for rule in model.rules:
            key = rule.referenced_section
            if key is not None and key not in forward:
                links = self.store.links(key).values()
                forward[key] = {link.source_id: link.target_native for link in links if link.linked}
        return Refs(forward=forward)

    def dependants(self, model: SectionModel, target_native: Any) -> int:
        """Linked entities of other sections whose reference points at this target."""
        wanted = str(target_native)
        count = 0
        for other in self.models.values():
            paths = [r.target_path for r in other.rules if r.referenced_section == model.key]
            if not paths:
                continue
            for link in self.store.links(other.key).values():
                if link.linked:
                    count += sum(link.target_values.get(path) == wanted for path in paths)
        return count


def run_sync(
    spec: DataflowSpec,
    systems: Systems,
    store: LinkStore,
    *,
    progress: Progress | None = None,
    full: bool = False,
) -> SyncSummary:
    """Bring both systems to sync for every bound section of ``spec``.

    ``full=True`` reads everything instead of what changed since the cursors (the first run
    of a section always does): only a full read notices deletions the vendors do not flag.
    """
    compiled = compile_spec(spec)
    run = _Run(spec, systems, store, progress, full)
    run.models = {m.key: m for m in compiled.models}
    for skipped in compiled.skipped:
        run.summaries[f"skipped#{skipped.index}"] = skipped
        if progress is not None:
            progress(skipped.heading, 0, 0)
    for model in compiled.models:
        summary = SectionSummary(index=model.section.index, heading=model.heading, key=model.key)
        run.summaries[model.key] = summary
        _sync_section(run, model, summary)
    for model in reversed(compiled.models):  # dependants first: orders before customers
        for owner, delete in run.deletes:
            if owner.key == model.key:
                _apply_delete(run, model, delete, run.summaries[model.key])
    ordered = sorted(run.summaries.values(), key=lambda s: s.index)
    return SyncSummary(sections=ordered)


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


def _sync_section(run: _Run, model: SectionModel, summary: SectionSummary) -> None:
    src_res = run.systems.resource(model.source)
    tgt_res = run.systems.resource(model.target)
    src_entities, src_complete, src_high = _read_side(run, model, SOURCE, src_res, model.source)
    tgt_entities, tgt_complete, tgt_high = _read_side(run, model, TARGET, tgt_res, model.target)
    refs = run.refs(model)
    links = run.store.links(model.key)
    if not tgt_complete and _needs_every_target(model, links, src_entities):
        # a new source may match an existing target by a merge rule: look at them all
        tgt_entities = {**_by_id(run.reader.list(tgt_res, model.target, None)), **tgt_entities}
        tgt_complete = True
    plan = plan_section(
        model, links, Side(src_entities, src_complete), Side(tgt_entities, tgt_complete), refs
    )
    summary.conflicts.extend(plan.conflicts)
    summary.not_carried_over.extend(plan.not_carried)
    summary.failed.extend(plan.failed)
    applier = _Applier(run, model, summary, plan, src_res, tgt_res)
    applier.apply_all()

    if applier.wrote_target:
        run.reader.invalidate(tgt_res)
    if applier.wrote_source:
        run.reader.invalidate(src_res)
    refs = run.refs(model)
    tgt_cursor = _next_cursor(
        run,
        tgt_res,
        model.target,
        tgt_high,
        applier.wrote_target,
        lambda e: _target_explained(run, model, e),
    )
    src_cursor = _next_cursor(
        run,
        src_res,
        model.source,
        src_high,
        applier.wrote_source,
        lambda e: _source_explained(run, model, refs, e),
    )
    if tgt_cursor is not None:
        run.store.set_cursor(model.key, TARGET, tgt_cursor)
    if src_cursor is not None:
        run.store.set_cursor(model.key, SOURCE, src_cursor)
    run.store.set_pending(model.key, SOURCE, plan.retry_source | applier.retry_source)
    run.store.set_pending(model.key, TARGET, applier.retry_target)
    linked = sum(1 for link in run.store.links(model.key).values() if link.linked)
    summary.unchanged = max(0, linked - len(applier.touched))


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


def _target_explained(run: _Run, model: SectionModel, entity: Json) -> bool:
    if not model.target.holds(entity):
        return True
    link = run.store.by_target(model.key, str(entity.get("id")))
    return link is None or project_target(model, entity) == link.target_values


def _source_explained(run: _Run, model: SectionModel, refs: Refs, entity: Json) -> bool:
    link = run.store.get(model.key, str(entity.get("id")))
    if link is None or link.state == CREATING:
        return mapping.is_deleted(entity)
    if not link.linked:
        return True
    values, _problems = project_source(model, entity, refs)
    return values == link.source_values


class _Applier:
    """Carries out one section's plan, committing each link as its write succeeds."""

    def __init__(
        self,
        run: _Run,
        model: SectionModel,
        summary: SectionSummary,
        plan: SectionPlan,
        src_res: Resource,
        tgt_res: Resource,
    ) -> None:
        self.run, self.model, self.summary, self.plan = run, model, summary, plan
        self.src_res, self.tgt_res = src_res, tgt_res
        self.wrote_source = self.wrote_target = False
        self.touched: set[str] = set()
        self.retry_source: set[str] = set()
        self.retry_target: set[str] = set()

    def apply_all(self) -> None:
        total = len(self.plan.actions)
        if self.run.progress is not None:
            self.run.progress(self.model.heading, 0, total)
        for done, action in enumerate(self.plan.actions, start=1):
            try:
                self._apply(action)
            except _ENTITY_ERRORS as error:
                self._failed(action, error)
            if self.run.progress is not None:
                self.run.progress(self.model.heading, done, total)

    def _failed(self, action: object, error: ApiError) -> None:
        link = getattr(action, "link", None)
        source_id = getattr(action, "source_id", None) or (link.source_id if link else None)
        target_id = link.target_id if link is not None else None
        self.summary.failed.append(
            EntityNote(source_id=source_id, target_id=target_id, reason=str(error))
        )
        if source_id is not None:
            self.retry_source.add(source_id)
        if target_id is not None:  # re-read both sides next run: neither edit is lost
            self.retry_target.add(target_id)

    def _apply(self, action: object) -> None:
        store = self.run.store
        if isinstance(action, Create):
            store.put(action.link)
            self.wrote_target = True
            created = self.tgt_res.create(action.fields, idempotency_key=action.idempotency_key)
            store.put(self._linked(action.link, created))
            self.summary.created += 1
            self.touched.add(action.source_id)
        elif isinstance(action, Adopt):
            store.put(action.link)
            self.touched.add(action.link.source_id)
            if action.to_target:
                self._update_target(action.link, action.to_target)
                self.summary.updated_to_target += 1
        elif isinstance(action, Update):
            self._apply_update(action)
        elif isinstance(action, Recreate):
            self._apply_recreate(action)
        elif isinstance(action, Delete):
            self.run.deletes.append((self.model, action))
            self.touched.add(action.link.source_id)
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
        self.touched.add(link.source_id)
        self.summary.unlinked.append(
            EntityNote(source_id=link.source_id, target_id=link.target_id, reason=reason)
        )

    def _update_target(self, link: Link, fields: Json) -> None:
        assert link.target_id is not None
        self.wrote_target = True
        self.tgt_res.update(link.target_id, _merge_metadata(fields, link, self.model))

    def _apply_update(self, action: Update) -> None:
        link = action.link
        assert link.target_id is not None
        self.touched.add(link.source_id)
        if action.to_target:
            try:
                self._update_target(link, action.to_target)
            except NotFound:
                self._unlink(
                    link.evolve(state=TOMBSTONE),
                    "target deleted; the source is kept and not re-created",
                )
                return
            self.summary.updated_to_target += 1
        if action.to_source:
            self.wrote_source = True
            try:
                self.src_res.update(link.source_id, action.to_source)
            except NotFound:
                self._unlink(link.evolve(state=GONE), "source deleted; the target stays")
                return
            self.summary.updated_to_source += 1
        self.run.store.put(link)

    def _apply_recreate(self, action: Recreate) -> None:
        link = action.link
        assert link.target_id is not None
        self.touched.add(link.source_id)
        if not action.keep_id and self.run.dependants(self.model, link.target_native):
            self.summary.not_carried_over.append(_dependants_note(self.model, link))
            return
        self.wrote_target = True
        with contextlib.suppress(NotFound):
            self.tgt_res.delete(link.target_id)
        fields = action.fields
        try:
            created = self.tgt_res.create(fields, idempotency_key=action.idempotency_key)
        except BadRequest:
            if not action.keep_id:
                raise
            fields = {k: v for k, v in fields.items() if k != "id"}
            created = self.tgt_res.create(fields, idempotency_key=action.idempotency_key)
        self.run.store.put(self._linked(link, created))
        self.summary.updated_to_target += 1


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
    metadata = fields.get("metadata")
    if isinstance(metadata, dict) and model.metadata_key not in metadata:
        return {**fields, "metadata": {**metadata, model.metadata_key: link.source_id}}
    return fields


def _apply_delete(run: _Run, model: SectionModel, action: Delete, summary: SectionSummary) -> None:
    link = action.link
    assert link.target_id is not None
    dependants = run.dependants(model, link.target_native)
    kept: str | None = None  # why the target stays, if it does
    if dependants:
        kept = f"source deleted; the target stays: {dependants} linked entities reference it"
    else:
        try:
            run.systems.resource(model.target).delete(link.target_id)
        except NotFound:
            pass
        except BadRequest as error:
            kept = str(error)
    run.store.put(link.evolve(state=GONE))
    if kept is None:
        summary.deleted += 1
    else:
        summary.unlinked.append(
            EntityNote(source_id=link.source_id, target_id=link.target_id, reason=kept)
        )
