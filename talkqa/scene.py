"""What a feature step does, behind the step text: the running scenario and its actions.

Every scenario acts on its :class:`~talkqa.promises.ScenarioPlan`, looked up by the
scenario's name among the registry's plans of its section: the step text is for people and
is never parsed for decisions. The step definitions in ``talkqa/steps/`` call one function
here; the promise classes judge. Everything here talks to pytest at the edge (``pytest.fail``/
``pytest.skip``, the request's fixtures, Allure attachments).

Two ways to fail, kept apart because the verdict depends on it: :meth:`Scene.broken` (the
system under test broke a promise: NO-GO) and :meth:`Scene.unjudged` (talk-qa could not
judge: the scenario is an error and the verdict INCOMPLETE).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any, NoReturn, cast

import pytest

from talkqa.dataflow.spec import DataflowSpec, PropertyMap, Section
from talkqa.outcome import NotJudged
from talkqa.promises import PromiseId, ScenarioPlan, plans_of, promise
from talkqa.promises.base import section_names
from talkqa.promises.edits import Conflicts
from talkqa.promises.plan import Action, Side
from talkqa.pytest_plugin import (
    ConflictState,
    EditState,
    ScenarioRecord,
    Shown,
    all_bindings,
    counted_writes,
    evidence_failure,
    failure_text,
    judge_section,
    stamp,
    vacuity,
)
from talkqa.redact import Redactor
from talkqa.run_report import RunReport
from talkqa.sut import ServiceDriver, format_duration
from talkqa.systems.catalog import Binding, bind, binding_of, section_bindings
from talkqa.systems.no_api import unwritable_rows

Snapshot = dict[str, tuple[str, ...]]

# Checklists loaded by the Given step that names them, by the path the feature gives.
SPECS: dict[str, DataflowSpec] = {}

PLAN = pytest.StashKey[ScenarioPlan]()
EDITS = pytest.StashKey[EditState]()
CONFLICT = pytest.StashKey[ConflictState]()
SNAPSHOTS = pytest.StashKey[tuple[Snapshot, Snapshot]]()
WRITES = pytest.StashKey[dict[str, int]]()  # sandbox mode: writes the sandbox saw in a rerun
REFERENCED_LINKED = pytest.StashKey[int]()


def load_spec(doc: str, root: Path) -> DataflowSpec:
    """The checklist at ``doc`` (relative to ``root`` unless absolute), parsed once."""
    if doc not in SPECS:
        from talkqa.dataflow.rst import load

        path = Path(doc) if Path(doc).is_absolute() else root / doc
        SPECS[doc] = load(path)
    return SPECS[doc]


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
    def plan(self) -> ScenarioPlan:
        return self.stash[PLAN]

    @property
    def names(self) -> tuple[str, str]:
        return section_names(self.section)

    def attach_text(self, text: str, name: str) -> None:
        attach_text(self.redactor(text), self.redactor(name))

    # --- the two ways a scenario fails, and the third way it ends ---------------------------

    def broken(self, reason: str) -> NoReturn:
        """The system under test broke the promise: the scenario fails, the verdict is NO-GO."""
        self.record.broken = True
        self.record.reason = self.redactor(reason)
        pytest.fail(self.record.reason, pytrace=False)

    def unjudged(self, reason: str) -> NoReturn:
        """talk-qa could not judge (its evidence or its features are wrong): an error."""
        self.record.reason = self.redactor(reason)
        raise NotJudged(self.record.reason)

    def skip(self, reason: str, *, impossible: bool = False) -> NoReturn:
        """Not covered, never passed: the sign-off counts a skipped promise as not covered, or,
        with ``impossible`` (a ``no_api`` fact's text), as impossible through the APIs."""
        self.record.reason = reason
        if impossible:
            self.record.vendor_impossible = [reason]
        pytest.skip(reason)

    def attempt(self, judge: Callable[[], None]) -> str | None:
        """Run a judgement without failing the scenario: None when it held, else why not
        (its findings stay on the record). The way a service's promise is polled with the
        same judge that fails a scenario; `unjudged` and `skip` still end the scenario."""
        try:
            judge()
        except pytest.fail.Exception:
            if not self.record.broken:
                raise
            self.record.broken = False
            return self.record.reason
        return None

    @property
    def service(self) -> ServiceDriver | None:
        """The service driver when the system under test is a service (`--sut-service`)."""
        driver = self._get("sut")
        return driver if isinstance(driver, ServiceDriver) else None

    def eventually(self, judge: Callable[[], None]) -> None:
        """A service: ``judge`` until it holds (its latency recorded) or the deadline passed
        (broken: "did not hold within …", with the last observation's findings)."""
        service = self.service
        assert service is not None
        since = service.changed_at if service.changed_at is not None else service.clock()
        entities = self.created_sources()
        first_held: dict[str, float] = {}

        def observe() -> str | None:
            failure = self.attempt(judge)
            if failure is not None and not self.record.findings:
                return failure  # not held, and no finding says for which entity
            named = {f.source_id for f in self.record.findings} if failure is not None else set()
            held_at = max(0.0, service.clock() - since)
            for entity in entities:
                if entity not in named:
                    first_held.setdefault(entity, held_at)
            return failure

        ended = service.eventually(observe)
        if ended.held:
            self.record.latency_s = ended.latency
            self.record.entity_latency_s = dict(first_held)
            per_entity = "".join(
                f"\n  {entity}: {seconds:.3f}s"
                for entity, seconds in sorted(first_held.items(), key=lambda kv: -kv[1])
            )
            self.attach_text(
                f"held {ended.latency or 0:.3f}s after talk-qa's change, at observation "
                f"{ended.polls} (deadline {format_duration(service.within)}); each entity "
                f"first held:{per_entity or ' (no entity of its own)'}",
                "propagation latency")
            return
        self.record.over_time = f"did not hold within {format_duration(service.within)}"
        self.broken(f"{self.record.over_time} ({ended.polls} observations): "
                    f"{ended.last_failure}")

    # --- what a scenario observed ---------------------------------------------------------------

    def edit_state(self) -> EditState:
        return self.stash[EDITS]

    def conflict_state(self) -> ConflictState:
        return self.stash[CONFLICT]

    def snapshots(self) -> tuple[Snapshot, Snapshot]:
        return self.stash[SNAPSHOTS]

    def rerun_writes(self) -> dict[str, int] | None:
        """Writes the sandbox itself counted during the second run (None outside sandbox mode)."""
        return self.stash.get(WRITES, None)

    @property
    def sandbox_requests(self) -> Callable[[], dict[str, int]] | None:
        return cast("Callable[[], dict[str, int]] | None", self._get("sandbox_requests"))

    def run_report(self) -> RunReport | None:
        """The run report of the latest run of the system under test (None: it gave none)."""
        last = self.record.last_run
        return cast(RunReport | None, getattr(last, "report", None))

    def source_ids(self) -> set[str] | None:
        """Live mode judges only what the scenario created (the account is shared)."""
        return self.record.created.all_source_ids() if self.mode == "live" else None

    def created_sources(self) -> list[str]:
        """The ids of the section's source entities this scenario created."""
        binding = bind(self.section.source)
        return self.record.created.ids(binding.key) if binding is not None else []

    def bindings(self) -> tuple[Binding, Binding]:
        source, target = section_bindings(self.section)
        assert source is not None and target is not None
        return source, target

    def run_sut(self) -> None:
        """Run the system under test; its own report goes to Allure as evidence, keys hidden.

        A run that fails (a command's non-zero exit, a report outside the schema) is the
        system under test's failure: the promise is broken.
        """
        from talkqa.sut import SutError

        failure: str | None = None
        try:
            summary = self._get("sut").run(self.spec)
        except SutError as exc:
            failure = str(exc)
        except Exception as exc:
            if evidence_failure(exc) is not None:
                raise  # the cassette failed, not the syncer: an error (see the plugin)
            failure = f"the system under test crashed: {type(exc).__name__}: {exc}"
        if failure is not None:
            # Failed outside the except block, so the report holds one message, not the
            # SutError chained to pytest's own Failed ("During handling of ...").
            self.broken(failure)
        first_run = self.record.last_run is None
        self.record.last_run = summary
        if self.service is not None:
            self._service_ran(first_run)
        evidence: dict[str, Any] = {"sut": summary.sut, **summary.details}
        if summary.report is not None:
            evidence["run_report"] = summary.report.model_dump(mode="json")
        with contextlib.suppress(Exception):
            import allure

            allure.attach(
                self.redactor(json.dumps(evidence, indent=2, default=str)),
                name=f"{summary.sut} run",
                attachment_type=allure.attachment_type.JSON,
            )

    def _service_ran(self, first_run: bool) -> None:
        """A service acts on its own time: before talk-qa changes anything more (an edit, a
        conflict, a quiet window), the first sync must have happened, so wait until the
        section's links, properties and references hold."""
        plan = self.plan
        if plan.link_first or plan.referenced_links:
            self.skip("not covered with --sut-service: a running service may sync the "
                      "sources before talk-qa links them first")
        if first_run and plan.action is not Action.RUN:
            self.eventually(lambda: self.judge_edit([]))
            self.record.latency_s = None  # the latency that counts is the change's

    # --- judging ---------------------------------------------------------------------------------

    def report(self, findings: list[Any], name: str) -> None:
        """Every judgement ends here: findings go to the outcome, to Allure, and fail the step."""
        from talkqa.report.allure_findings import attach_findings

        self.record.findings = findings
        if findings:
            attach_findings(findings, f"findings: {name}")
            self.broken(failure_text(findings))

    def refuse_vacuous(self, reason: tuple[str, bool] | None) -> None:
        """A judgement that looked at nothing does not pass: ``(why, the syncer's fault)``."""
        if reason is None:
            return
        why, syncer_fault = reason
        if syncer_fault:
            self.broken(why)
        self.unjudged(why)

    def judge(
        self,
        checks: Collection[str],
        *,
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
        findings = [
            f
            for f in judged.findings
            if rows is None or f.source_path is None or (f.source_path, f.target_path) in rows
        ]
        record.entities_checked = judged.pairs_checked if pairs else judged.entities_checked
        if not judged.covered:
            self.skip(f"not covered: {judged.reason}")
        if judged.undemanded:  # the count the pass stands on says what it left out, and why
            record.qualifier = " · ".join([*filter(None, [record.qualifier]), *judged.undemanded])
        self.report(findings, ", ".join(sorted(checks)))
        self.refuse_vacuous(
            vacuity(judged, self.created_sources(), self.names, pairs=pairs, rows=rows)
        )
        if rows is not None:  # only a judgement of property rows leaves rows out
            self.name_unwritable(rows)

    def name_unwritable(self, rows: Collection[tuple[str, str]] | None) -> None:
        """A pass judged without the rows the vendor computes says so, with the source: the
        sign-off shows it in the cell rather than letting the pass claim those rows."""
        unwritable = unwritable_rows(self.section)
        notes = [why for row, why in unwritable.items() if rows is None or row in rows]
        if notes:
            self.record.qualifier = " · ".join([*filter(None, [self.record.qualifier]), *notes])
            self.record.vendor_impossible = [*self.record.vendor_impossible, *notes]

    def judge_rows(self, rows: tuple[PropertyMap, ...], check: str) -> None:
        """Judge ``check`` on the pairs, for the plan's property rows only."""
        self.judge({check}, pairs=True, rows={(p.source_path, p.target_path) for p in rows})

    def judge_edit(self, extra: list[Any], *, skip_pair: tuple[str, str] | None = None) -> None:
        """After an edit: links, properties and references still hold, plus ``extra``."""
        judged = judge_section(
            self.spec,
            self.section,
            self.systems,
            checks={PromiseId.EXISTS, PromiseId.PROPERTIES, PromiseId.REFERENCES},
            source_ids=self.source_ids(),
        )
        self.record.entities_checked = judged.entities_checked
        kept = [
            f
            for f in judged.findings
            if skip_pair is None or (f.source_path, f.target_path) != skip_pair
        ]
        self.report([*kept, *extra], self.plan.promise)
        self.refuse_vacuous(vacuity(judged, self.created_sources(), self.names))
        self.name_unwritable(None)

    def linked_ids(self, source_ids: list[str]) -> list[str]:
        """The single linked target of each source, in order (the promise is broken when one
        has none: there is nothing to edit)."""
        from talkqa.checks import read_snapshot

        pairing = read_snapshot(self.section, self.systems, source_ids=source_ids).pairing()
        ids = []
        for sid in source_ids:
            linked = pairing.linked_id(sid)
            if linked is None:
                self.broken(
                    f"missing: {self.names[0]} '{sid}' has no single linked {self.names[1]} to edit"
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
    """Load the checklist, find this scenario's plan, and label the Allure result."""
    from talkqa.checks import NotCovered, bindings_of

    record = sc.record
    spec = load_spec(doc, sc.root)
    found = [s for s in spec.sections if s.index == index]
    if not found:
        sc.unjudged(f"feature out of date: {doc} has no section {index}: regenerate the features")
    sec = found[0]
    record.dataflow = doc
    record.section_index = sec.index
    record.section = sec.heading
    plan = next((p for p in plans_of(spec, sec) if p.title == record.scenario), None)
    if plan is None:
        sc.unjudged(
            f"feature out of date: section {index} of {doc} plans no scenario "
            f"'{record.scenario}': regenerate with `talkqa features generate {doc}`"
        )
    sc.stash[PLAN] = plan
    record.promise = plan.promise
    record.qualifier = plan.qualifier
    _allure_labels(spec, sec, plan, sc.mode, sc.sut_label)
    try:
        bindings_of(sec)
    except NotCovered as exc:
        sc.skip(f"not covered: {exc.reason}")
    if plan.impossible is not None:
        sc.skip(plan.impossible, impossible=True)


def _allure_labels(
    spec: DataflowSpec, sec: Section, plan: ScenarioPlan, mode: str, sut_label: str
) -> None:
    with contextlib.suppress(Exception):
        import allure

        # allure's label setters are untyped
        allure.dynamic.epic(f"{spec.source} to {spec.target} Dataflow")  # type: ignore[no-untyped-call]
        allure.dynamic.feature(" ".join(sec.heading.split()))  # type: ignore[no-untyped-call]
        allure.dynamic.story(plan.sentence)  # type: ignore[no-untyped-call]
        allure.dynamic.parameter("mode", Shown(mode))
        allure.dynamic.parameter("system under test", Shown(sut_label))


def create_sources(sc: Scene) -> None:
    from talkqa.samples import create_for_section

    sc.record.created = create_for_section(sc.section, sc.plan.count, sc.systems, sc.run_id)


def link_sources_first(sc: Scene) -> None:
    """Link-first and merge sections: the target exists before the system under test runs."""
    from talkqa.samples import link_first

    section, record = sc.section, sc.record
    source = bind(section.source)
    assert source is not None and sc.plan.link_first
    link_first(section, record.created.ids(source.key), sc.systems, sc.run_id, record.created)


def link_referenced_first(sc: Scene) -> None:
    """The next referenced link-first section of the plan: link its entities first (the plan
    lists them in the order the feature's Given lines name them)."""
    from talkqa.samples import link_first

    record = sc.record
    done = sc.stash.get(REFERENCED_LINKED, 0)
    sc.stash[REFERENCED_LINKED] = done + 1
    index = sc.plan.referenced_links[done]
    other = next(s for s in sc.spec.sections if s.index == index)
    binding = bind(other.source)
    assert binding is not None
    ids = [i for i in record.created.ids(binding.key) if i not in record.created.existing]
    link_first(other, ids, sc.systems, sc.run_id, record.created)


# --- When ---------------------------------------------------------------------------------------


def run_sut_again(sc: Scene) -> None:
    """Idempotence scenarios snapshot every collection around the second run."""
    from talkqa.samples import snapshot

    if sc.plan.action is not Action.RERUN:
        sc.run_sut()
        return
    bindings = all_bindings(sc.spec)
    only = sc.source_ids()
    also = sc.record.created.by_products  # e.g. the Chargebee invoices of its orders
    requests = sc.sandbox_requests  # the sandbox's own counts: sandbox mode only
    counted = requests() if requests is not None else None
    before = snapshot(sc.systems, bindings, only, also=also)
    sc.run_sut()
    sc.stash[SNAPSHOTS] = (before, snapshot(sc.systems, bindings, only, also=also))
    if requests is not None and counted is not None:
        sc.stash[WRITES] = counted_writes(counted, requests())


def change(sc: Scene) -> None:
    """The plan's change between the two runs of the system under test."""
    action = sc.plan.action
    if action is Action.EDIT:
        edit_linked(sc)
    elif action is Action.CONFLICT:
        edit_both_sides(sc)
    elif action is Action.EDIT_REFERENCED:
        edit_referenced(sc)
    else:
        sc.unjudged(f"feature out of date: the plan of '{sc.plan.title}' changes nothing")
    if sc.service is not None:
        sc.service.mark_change()


def edit_linked(sc: Scene) -> None:
    """Edit each linked entity on the plan's side and remember what was written, and what
    the side that cannot change held (a vendor limit), for the Then step."""
    from talkqa.compare import read_path
    from talkqa.samples import apply_edit, edit_of

    systems, record = sc.systems, sc.record
    plan = sc.plan.edit
    assert plan is not None
    side = plan.side
    if plan.path is None:
        sc.skip(
            f"not covered: neither the checklist nor talk-qa knows a field the {side} "
            f"system's API lets us edit on a {sc.names[0 if side is Side.SOURCE else 1]}"
        )
    source, target = sc.bindings()
    source_ids = record.created.ids(source.key)
    targets = sc.linked_ids(source_ids)
    before: dict[str, Any] = {}
    blocked = plan.blocked
    if blocked is not None:  # what the side that cannot change holds now
        there = source if side is Side.TARGET else target
        there_path = blocked.source_path if side is Side.TARGET else blocked.target_path
        there_ids = source_ids if side is Side.TARGET else targets
        resource = systems.resource(there)
        before = {
            sid: read_path(resource.get(eid), there_path)
            for sid, eid in zip(source_ids, there_ids, strict=True)
        }
    binding, ids = (source, source_ids) if side is Side.SOURCE else (target, targets)
    edit = edit_of(binding, plan.path, mapped=plan.mapped)
    written = apply_edit(edit, binding, ids, systems)
    by_source = dict(zip(source_ids, ids, strict=True))
    sc.stash[EDITS] = EditState(edit, side.value, binding, written, by_source, blocked, before)


def edit_both_sides(sc: Scene) -> None:
    """The plan's property changed on both sides since the last sync, its ``first`` side
    first; remembers what each side wrote and when, for the Then step."""
    from talkqa.samples import apply_edit, conflict_edits

    systems, record = sc.systems, sc.record
    plan = sc.plan.conflict
    assert plan is not None
    prop = plan.prop
    source, target = sc.bindings()
    source_ids = record.created.ids(source.key)
    target_ids = sc.linked_ids(source_ids)
    source_edit, target_edit = conflict_edits(sc.section, prop)
    written: dict[Side, dict[str, Any]] = {}
    for side in (plan.first, plan.first.other):
        if side is Side.SOURCE:
            written[side] = apply_edit(source_edit, source, source_ids, systems)
        else:
            written[side] = apply_edit(target_edit, target, target_ids, systems)
    by_source = dict(zip(source_ids, target_ids, strict=True))
    src_res, tgt_res = systems.resource(source), systems.resource(target)
    sc.stash[CONFLICT] = ConflictState(
        prop,
        by_source,
        {sid: written[Side.SOURCE][sid] for sid in source_ids},
        {sid: written[Side.TARGET][tid] for sid, tid in by_source.items()},
        {sid: stamp(src_res.get(sid)) for sid in source_ids},
        {sid: stamp(tgt_res.get(tid)) for sid, tid in by_source.items()},
    )


def edit_referenced(sc: Scene) -> None:
    """Edit (rename) the entities the section's sources reference, after their links exist."""
    from talkqa.samples import apply_edit, edit_of

    plan = sc.plan.referenced_edit
    assert plan is not None
    referenced = binding_of((plan.system, plan.datatype))
    edit = edit_of(referenced, plan.path, mapped=False)
    apply_edit(edit, referenced, sc.record.created.ids(referenced.key), sc.systems)


# --- Then ---------------------------------------------------------------------------------------


def judge_promise(sc: Scene) -> None:
    """The plan's promise judges what the scenario observed; a service's, as eventually
    holding (idempotence excepted: its quiet window is one observation of two snapshots)."""
    judge = promise(sc.plan.promise)
    if sc.service is not None and sc.plan.action is not Action.RERUN:
        sc.eventually(lambda: judge.judge(sc))
        return
    judge.judge(sc)


def judge_conflicts_reported(sc: Scene) -> None:
    """The second Then of a conflicts scenario: the run report names each conflict."""
    cast(Conflicts, promise(PromiseId.CONFLICTS)).judge_report(sc)
