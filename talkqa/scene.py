"""What a feature step does, behind the step text: the running scenario and its actions.

The step definitions in ``steps/`` only parse their text and call one function here, so the
step glue reads like the Gherkin it matches. Everything here talks to pytest at the edge
(``pytest.fail``/``pytest.skip``, the request's fixtures, Allure attachments); the rules it
applies (judging, vacuity, edit bookkeeping) are the pure functions of
:mod:`talkqa.pytest_plugin`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any, NoReturn, cast

import pytest

from talkqa.dataflow.gherkin import sentence_for
from talkqa.dataflow.spec import DataflowSpec, Section
from talkqa.pytest_plugin import (
    ConflictState,
    EditState,
    Redactor,
    ScenarioRecord,
    Shown,
    all_bindings,
    failure_text,
    judge_section,
    name_mismatch,
    rerun_findings,
    section_names,
    stamp,
    table_rows,
    unreported_conflicts,
    unwatched,
    vacuity,
    verify_conflict,
    verify_edits,
    verify_kept,
    verify_merged,
)
from talkqa.systems.catalog import Binding, bind, binding_of

Snapshot = dict[str, tuple[str, ...]]

# Checklists loaded by the Given step that names them, by the path the feature gives.
SPECS: dict[str, DataflowSpec] = {}

EDITS = pytest.StashKey[EditState]()
CONFLICT = pytest.StashKey[ConflictState]()
SNAPSHOTS = pytest.StashKey[tuple[Snapshot, Snapshot]]()


def load_spec(doc: str, root: Path) -> DataflowSpec:
    """The checklist at ``doc`` (relative to ``root`` unless absolute), parsed once."""
    if doc not in SPECS:
        from talkqa.dataflow.rst import load

        path = Path(doc) if Path(doc).is_absolute() else root / doc
        SPECS[doc] = load(path)
    return SPECS[doc]


def fail(message: str) -> NoReturn:
    """Fail the step with one line: a drifted feature or a broken promise, never a traceback."""
    pytest.fail(message, pytrace=False)


def attach_text(text: str, name: str) -> None:
    """A note in the Allure report (nothing when Allure is not running)."""
    with contextlib.suppress(Exception):
        import allure

        allure.attach(text, name=name, attachment_type=allure.attachment_type.TEXT)


class Scene:
    """The scenario's fixtures, each fetched when a step first asks for it.

    Step functions take only the arguments parsed from their text (and a datatable):
    allure-pytest-bdd shows every argument of a step function as a step parameter, and a
    fixture's repr there is noise. Fetching lazily also keeps ``section`` after the Given
    step that names the checklist, as before.
    """

    def __init__(self, request: pytest.FixtureRequest, root: Path) -> None:
        self.request = request
        self.root = root

    def _get(self, name: str) -> Any:
        return self.request.getfixturevalue(name)

    @property
    def record(self) -> ScenarioRecord:
        return cast(ScenarioRecord, self._get("record"))

    @property
    def section(self) -> Section:
        return cast(Section, self._get("section"))

    @property
    def systems(self) -> Any:
        return self._get("systems")

    @property
    def mode(self) -> str:
        return cast(str, self._get("talkqa_mode"))

    @property
    def run_id(self) -> str:
        return cast(str, self._get("scenario_run_id"))

    @property
    def redactor(self) -> Redactor:
        return cast(Redactor, self._get("redactor"))

    @property
    def sut_label(self) -> str:
        return cast(str, self._get("sut_label"))

    @property
    def stash(self) -> pytest.Stash:
        return cast(pytest.Stash, self.request.node.stash)

    @property
    def spec(self) -> DataflowSpec:
        return SPECS[self.record.dataflow]

    @property
    def names(self) -> tuple[str, str]:
        return section_names(self.section)

    def source_ids(self) -> set[str] | None:
        """Live mode judges only what the scenario created (the account is shared)."""
        return self.record.created.all_source_ids() if self.mode == "live" else None

    def created_sources(self) -> list[str]:
        """The ids of the section's source entities this scenario created."""
        binding = bind(self.section.source)
        return self.record.created.ids(binding.key) if binding is not None else []

    def bindings(self) -> tuple[Binding, Binding]:
        source, target = bind(self.section.source), bind(self.section.target)
        assert source is not None and target is not None
        return source, target

    def expect_names(self, *, source: str | None = None, target: str | None = None) -> None:
        """The names in the step text must be the checklist's."""
        stale = name_mismatch(self.section, source=source, target=target)
        if stale:
            fail(stale)

    def run_sut(self) -> None:
        """Run the system under test; its own report goes to Allure as evidence, keys hidden."""
        from talkqa.sut import SutError

        record, redactor = self.record, self.redactor
        failure: str | None = None
        try:
            summary = self._get("sut").run(self.spec)
        except SutError as exc:
            failure = redactor(str(exc))
        if failure is not None:
            # Failed outside the except block, so the report holds one message, not the
            # SutError chained to pytest's own Failed ("During handling of ...").
            fail(failure)
        record.last_run = summary
        with contextlib.suppress(Exception):
            import allure

            allure.attach(
                redactor(
                    json.dumps({"sut": summary.sut, **summary.details}, indent=2, default=str)
                ),
                name=f"{summary.sut} run",
                attachment_type=allure.attachment_type.JSON,
            )

    def report(self, findings: list[Any], name: str) -> None:
        """Every Then step ends here: findings go to the outcome, to Allure, and fail the step."""
        from talkqa.report.allure_findings import attach_findings

        self.record.findings = findings
        if findings:
            attach_findings(findings, f"findings: {name}")
            fail(failure_text(findings))

    def refuse_vacuous(self, reason: str | None) -> None:
        """A judgement that looked at nothing fails: no findings is not a kept promise."""
        if reason:
            self.record.reason = reason
            fail(reason)

    def skip(self, reason: str) -> NoReturn:
        """Not covered, never passed: the sign-off counts a skipped promise as not covered."""
        self.record.reason = reason
        pytest.skip(reason)

    def judge(
        self,
        checks: set[str],
        *,
        keep: Callable[[Any], bool] | None = None,
        pairs: bool = False,
        unlinked_sources: Collection[str] = (),
        rows: Collection[tuple[str, str]] | None = None,
    ) -> None:
        """Judge the section and refuse a vacuous pass: every source the scenario created must
        have been judged; with ``pairs`` at least one linked pair compared, on each of ``rows``."""
        record = self.record
        judged = judge_section(
            self.spec,
            self.section,
            self.systems,
            checks=checks,
            source_ids=self.source_ids(),
            unlinked_sources=unlinked_sources,
        )
        findings = [f for f in judged.findings if keep is None or keep(f)]
        record.entities_checked = judged.pairs_checked if pairs else judged.entities_checked
        record.findings = findings
        if not judged.covered:
            self.skip(f"not covered: {judged.reason}")
        self.report(findings, ", ".join(sorted(checks)))
        self.refuse_vacuous(
            vacuity(judged, self.created_sources(), self.names, pairs=pairs, rows=rows)
        )

    def judge_rows(self, datatable: list[list[str]], check: str) -> None:
        """Judge ``check`` on the pairs, for the table's property rows only."""
        rows, stale = table_rows(self.section, datatable)
        if stale:
            fail(stale)
        self.judge(
            {check},
            pairs=True,
            keep=lambda f: f.source_path is None or (f.source_path, f.target_path) in rows,
            rows=rows,
        )

    def judge_edit(self, extra: list[Any], *, skip_pair: tuple[str, str] | None = None) -> None:
        """After an edit: links, properties and references still hold, plus ``extra``."""
        judged = judge_section(
            self.spec,
            self.section,
            self.systems,
            checks={"exists", "properties", "references"},
            source_ids=self.source_ids(),
        )
        self.record.entities_checked = judged.entities_checked
        kept = [
            f
            for f in judged.findings
            if skip_pair is None or (f.source_path, f.target_path) != skip_pair
        ]
        self.report([*kept, *extra], "edits")
        self.refuse_vacuous(vacuity(judged, self.created_sources(), self.names))

    def linked_ids(self, source_ids: list[str]) -> list[str]:
        """The single linked target of each source, in order (fails the scenario when one has
        none)."""
        from talkqa.checks import read_snapshot

        section = self.section
        pairing = read_snapshot(section, self.systems, source_ids=source_ids).pairing()
        ids = []
        for sid in source_ids:
            linked = pairing.linked_id(sid)
            if linked is None:
                fail(
                    f"missing: {self.names[0]} '{sid}' has no single linked "
                    f"{self.names[1]} to edit"
                )
            ids.append(linked)
        return ids


_SCENES: list[Scene] = []


@contextlib.contextmanager
def scene_of(request: pytest.FixtureRequest, root: Path) -> Iterator[Scene]:
    """Make ``request``'s scenario the one :func:`scene` returns while it runs."""
    _SCENES.append(Scene(request, root))
    try:
        yield _SCENES[-1]
    finally:
        _SCENES.pop()


def scene() -> Scene:
    """The running scenario's scene (set by the autouse ``_scene`` fixture of the steps)."""
    return _SCENES[-1]


# --- Given --------------------------------------------------------------------------------------


def open_section(sc: Scene, doc: str, index: int) -> None:
    """Load the checklist, point the record at its section and label the Allure result."""
    from talkqa.checks import NotCovered, bindings_of

    record = sc.record
    spec = load_spec(doc, sc.root)
    found = [s for s in spec.sections if s.index == index]
    if not found:
        fail(f"feature out of date: {doc} has no section {index}: regenerate the features")
    sec = found[0]
    record.dataflow = doc
    record.section_index = sec.index
    record.section = sec.heading
    _allure_labels(spec, sec, record.promise, sc.mode, sc.sut_label)
    try:
        bindings_of(sec)
    except NotCovered as exc:
        sc.skip(f"not covered: {exc.reason}")


def _allure_labels(
    spec: DataflowSpec, sec: Section, promise: str, mode: str, sut_label: str
) -> None:
    with contextlib.suppress(Exception):
        import allure

        # allure's label setters are untyped
        allure.dynamic.epic(f"{spec.source} to {spec.target} Dataflow")  # type: ignore[no-untyped-call]
        allure.dynamic.feature(" ".join(sec.heading.split()))  # type: ignore[no-untyped-call]
        if promise:
            allure.dynamic.story(sentence_for(sec, promise))  # type: ignore[no-untyped-call]
        allure.dynamic.parameter("mode", Shown(mode))
        allure.dynamic.parameter("system under test", Shown(sut_label))


def create_sources(sc: Scene, count: int, names: str) -> None:
    from talkqa.samples import create_for_section

    sc.expect_names(source=names)
    sc.record.created = create_for_section(sc.section, count, sc.systems, sc.run_id)


def _expect_link_wording(section: Section, rule: str | None, claim: str | None) -> None:
    """The merge property (or link claim) in the step text must be the checklist's."""
    from talkqa.samples import link_wording

    said = f"matching it by {rule}" if rule is not None else f"that claims it by {claim}"
    if said != link_wording(section):
        fail(
            f"feature out of date: it links '{said}' where section {section.index} of the "
            f"checklist says '{link_wording(section)}': regenerate with `talkqa features generate`"
        )


def link_sources_first(sc: Scene, target: str, rule: str | None, claim: str | None) -> None:
    """Link-first and merge sections: the target exists before the system under test runs."""
    from talkqa.samples import link_first

    section, record = sc.section, sc.record
    sc.expect_names(target=target)
    _expect_link_wording(section, rule, claim)
    source = bind(section.source)
    assert source is not None
    link_first(section, record.created.ids(source.key), sc.systems, sc.run_id, record.created)


def link_referenced_first(
    sc: Scene, source: str, target: str, rule: str | None, claim: str | None
) -> None:
    """The referenced datatype's section is link-first: link the referenced entities first."""
    from talkqa.samples import link_first

    record = sc.record
    for other in sc.spec.sections:
        if section_names(other) == (" ".join(source.split()), " ".join(target.split())):
            _expect_link_wording(other, rule, claim)
            binding = bind(other.source)
            assert binding is not None
            ids = [i for i in record.created.ids(binding.key) if i not in record.created.existing]
            link_first(other, ids, sc.systems, sc.run_id, record.created)
            return
    fail(f"feature out of date: no section links {source} to {target}: regenerate the features")


# --- When ---------------------------------------------------------------------------------------


def run_sut_again(sc: Scene) -> None:
    """Idempotence scenarios snapshot every collection around the second run."""
    from talkqa.samples import snapshot

    if sc.record.promise != "idempotence":
        sc.run_sut()
        return
    bindings = all_bindings(sc.spec)
    only = sc.source_ids()
    also = sc.record.created.by_products  # e.g. the Chargebee invoices of its orders
    before = snapshot(sc.systems, bindings, only, also=also)
    sc.run_sut()
    sc.stash[SNAPSHOTS] = (before, snapshot(sc.systems, bindings, only, also=also))


def edit_linked(sc: Scene, side: str, path: str | None) -> None:
    """Edit each linked entity on ``side`` (``path`` names a vendor-limit edit) and remember
    what was written, and what the side that cannot change held, for the Then step."""
    from talkqa.compare import read_path
    from talkqa.samples import apply_edit, not_carried_edits, plan_edit

    section, systems, record = sc.section, sc.systems, sc.record
    edit = plan_edit(section, side)
    blocked = None
    if path is not None and (edit is None or edit.path != path):
        found = [(p, e) for p, e in not_carried_edits(section, side) if e.path == path]
        if not found:
            fail(
                f"feature out of date: talk-qa no longer edits {path} on the {side} side of "
                f"section {section.index}: regenerate the features"
            )
        blocked, edit = found[0]
    if edit is None:
        sc.skip(
            f"not covered: neither the checklist nor talk-qa knows a field the {side} "
            f"system's API lets us edit on a {sc.names[0 if side == 'source' else 1]}"
        )
    source, target = sc.bindings()
    source_ids = record.created.ids(source.key)
    targets = sc.linked_ids(source_ids)
    before: dict[str, Any] = {}
    if blocked is not None:  # what the side that cannot change holds now
        there = source if side == "target" else target
        there_path = blocked.source_path if side == "target" else blocked.target_path
        there_ids = source_ids if side == "target" else targets
        resource = systems.resource(there)
        before = {
            sid: read_path(resource.get(eid), there_path)
            for sid, eid in zip(source_ids, there_ids, strict=True)
        }
    binding, ids = (source, source_ids) if side == "source" else (target, targets)
    written = apply_edit(edit, binding, ids, systems)
    by_source = dict(zip(source_ids, ids, strict=True))
    sc.stash[EDITS] = EditState(edit, side, binding, written, by_source, blocked, before)


def edit_both_sides(sc: Scene, path: str, first: str) -> None:
    """The same mapped property changed on both sides since the last sync, ``first``'s side
    first; remembers what each side wrote and when, for the Then step."""
    from talkqa.samples import apply_edit, conflict_edits, conflict_property

    section, systems, record = sc.section, sc.systems, sc.record
    prop = conflict_property(section)
    if prop is None or prop.source_path != path:
        fail(
            f"feature out of date: {path} is not the property both sides can edit in section "
            f"{section.index}: regenerate the features"
        )
    source, target = sc.bindings()
    source_ids = record.created.ids(source.key)
    target_ids = sc.linked_ids(source_ids)
    source_edit, target_edit = conflict_edits(section, prop)
    src_system = " ".join(section.source.system.split())
    order = ("source", "target") if " ".join(first.split()) == src_system else ("target", "source")
    written: dict[str, dict[str, Any]] = {}
    for side in order:
        if side == "source":
            written[side] = apply_edit(source_edit, source, source_ids, systems)
        else:
            written[side] = apply_edit(target_edit, target, target_ids, systems)
    by_source = dict(zip(source_ids, target_ids, strict=True))
    src_res, tgt_res = systems.resource(source), systems.resource(target)
    sc.stash[CONFLICT] = ConflictState(
        prop,
        by_source,
        {sid: written["source"][sid] for sid in source_ids},
        {sid: written["target"][tid] for sid, tid in by_source.items()},
        {sid: stamp(src_res.get(sid)) for sid in source_ids},
        {sid: stamp(tgt_res.get(tid)) for sid, tid in by_source.items()},
    )


def edit_referenced(sc: Scene, path: str, names: str) -> None:
    """Edit (rename) the entities the section's sources reference, after their links exist."""
    from talkqa.samples import apply_edit, rename_edit

    source = bind(sc.section.source)
    assert source is not None
    for key in source.references.values():
        referenced = binding_of(key)
        if " ".join(names.split()).lower() != f"{referenced.system} {referenced.datatype}".lower():
            continue
        edit = rename_edit(referenced)
        if edit is None or edit.path != path:
            break
        apply_edit(edit, referenced, sc.record.created.ids(key), sc.systems)
        return
    fail(f"feature out of date: talk-qa does not edit {path} of {names}: regenerate the features")


# --- Then ---------------------------------------------------------------------------------------


def judge_unlinked(sc: Scene, source: str, target: str) -> None:
    """Link-first sections: the samples were never linked, so nothing may appear for them."""
    sc.expect_names(source=source, target=target)
    sc.judge({"exists", "link-first"}, unlinked_sources=sc.created_sources())


def judge_edits(sc: Scene) -> None:
    sc.judge_edit(verify_edits(sc.section, sc.stash[EDITS], sc.systems))


def judge_kept(sc: Scene, path: str) -> None:
    """A vendor-limit edit: not carried over, the other side keeps its value, links hold.

    The edited property may now differ between the two sides: that is the vendor's limit,
    not the syncer's fault, so the properties check leaves that one row out.
    """
    state = sc.stash[EDITS]
    blocked = state.blocked
    assert blocked is not None
    if path not in (blocked.source_path, blocked.target_path):
        fail(f"feature out of date: {path} is not the blocked property")
    attach_text(
        f"{blocked.source_path} -> {blocked.target_path}: the {state.side} edit is expected "
        "NOT to propagate (the other vendor's API refuses the change); not a finding.",
        "vendor limit",
    )
    sc.judge_edit(
        verify_kept(sc.section, state, sc.systems),
        skip_pair=(blocked.source_path, blocked.target_path),
    )


def judge_conflict(sc: Scene) -> None:
    sc.judge_edit(verify_conflict(sc.section, sc.stash[CONFLICT], sc.systems))


def judge_conflicts_reported(sc: Scene) -> None:
    """The reference sync names every conflict it resolved; other syncers' reports are opaque."""
    record = sc.record
    state = sc.stash[CONFLICT]
    details = getattr(record.last_run, "details", None) or {}
    missing = unreported_conflicts(details, record.section_index, list(state.by_source))
    if missing is None and sc.sut_label == "reference-sync":
        record.reason = (
            "conflict not reported: the reference sync's report has no conflicts for "
            f"section {record.section_index}"
        )
        fail(record.reason)
    if missing is None:
        attach_text(
            "the system under test's report names no conflicts talk-qa can read",
            "conflicts not reported",
        )
        return
    if missing:
        record.reason = (
            f"conflict not reported: the system under test resolved {len(missing)} conflicts "
            f"without naming them ({', '.join(missing)})"
        )
        fail(record.reason)


def judge_merged(sc: Scene, source: str, target: str) -> None:
    """Each source is linked to the target it was merged with, and to no other."""
    section, record = sc.section, sc.record
    sc.expect_names(source=source, target=target)
    src = bind(section.source)
    assert src is not None
    existing = {
        sid: tid
        for sid, tid in record.created.existing.items()
        if sid in record.created.ids(src.key)
    }
    record.entities_checked = len(existing)
    sc.report(verify_merged(section, existing, sc.systems), "merge")
    created = record.created.ids(src.key)
    without = [sid for sid in created if sid not in existing]
    if not created or without:
        sc.refuse_vacuous(
            f"not judged: {len(without)} of the {len(created)} {sc.names[0]} entities "
            f"this scenario created had no existing {target} to merge with "
            f"({', '.join(without)}), so no merge was judged for them"
        )


def judge_unchanged(sc: Scene) -> None:
    """Idempotence: every entity the second run created, deleted or wrote is a finding."""
    from talkqa.samples import snapshot_diff

    before, after = sc.stash[SNAPSHOTS]
    sc.record.entities_checked = len(after)
    sc.report(rerun_findings(sc.section, snapshot_diff(before, after)), "idempotence")
    source, target = sc.bindings()
    sc.refuse_vacuous(unwatched(source, sc.created_sources(), target, before, after))
