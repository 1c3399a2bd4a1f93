"""Promises about a link once made: an edit on either side reaches the other, an edit a
vendor forbids on the other side stays where it was made, and when both sides changed the
newest edit wins on both (and the system under test says so in its run report)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from talkqa.dataflow.spec import DataflowSpec, Section
from talkqa.promises.base import (
    Promise,
    bound,
    plan_for,
    section_names,
    system_name,
)
from talkqa.promises.ids import PromiseId
from talkqa.promises.plan import Action, ConflictPlan, EditPlan, ScenarioPlan, Side

if TYPE_CHECKING:
    from talkqa.scene import Scene

_ONCE_LINKED = ("Once a link",)


def _sides(section: Section, side: Side) -> tuple[str, str, str]:
    """(the system edited, the entity's name there, the other system) for ``side``."""
    src, tgt = section_names(section)
    here = system_name(section, side is Side.SOURCE)
    other = system_name(section, side is not Side.SOURCE)
    return here, (src if side is Side.SOURCE else tgt), other


class Edits(Promise):
    """An edit on either side reaches the other side, and the link survives it."""

    id: ClassVar[PromiseId] = PromiseId.EDITS
    title: ClassVar[str] = "Either-side edits"
    doc: ClassVar[str] = "promise: an edit on either side reaches the other side"
    sentence_starts: ClassVar[tuple[str, ...]] = _ONCE_LINKED

    def applies(self, section: Section) -> bool:
        return True

    def plans(self, spec: DataflowSpec, section: Section) -> list[ScenarioPlan]:
        from talkqa.samples import forbidden_here, plan_edit

        plans: list[ScenarioPlan] = []
        for side in Side:
            here, entity, other = _sides(section, side)
            edit = plan_edit(section, side.value) if bound(section) else None
            if edit is None:
                title = f"An edit in {here} of a linked {entity} reaches {other}"
                plans.append(
                    plan_for(
                        self,
                        spec,
                        section,
                        title,
                        action=Action.EDIT,
                        edit=EditPlan(side=side, path=None, mapped=False),
                    )
                )
                continue
            qualifier = None
            if edit.mapped:
                title = f"An edit in {here} of {edit.path} on a linked {entity} reaches {other}"
            else:
                locked = forbidden_here(section, side.value)
                if not section.properties:
                    why = "the checklist maps no property"
                elif locked:
                    why = f"{here} forbids changing {', '.join(locked)}"
                else:
                    why = f"talk-qa knows no mapped property {here} lets it edit"
                qualifier = f"link survival only: {why}"
                title = (
                    f"An edit in {here} of the unmapped {edit.path} on a linked {entity} keeps "
                    f"its link ({qualifier})"
                )
            plans.append(
                plan_for(
                    self,
                    spec,
                    section,
                    title,
                    action=Action.EDIT,
                    edit=EditPlan(side=side, path=edit.path, mapped=edit.mapped),
                    qualifier=qualifier,
                )
            )
        return plans

    def then_lines(self, spec: DataflowSpec, section: Section, plan: ScenarioPlan) -> list[str]:
        assert plan.edit is not None
        here, _entity, other = _sides(section, plan.edit.side)
        if plan.edit.path is not None and not plan.edit.mapped:
            return [f"Then the edit stays in {here} and every link still holds"]
        return [f"Then the edits reached {other} and every link still holds"]

    def judge(self, sc: Scene) -> None:
        from talkqa.pytest_plugin import verify_edits

        sc.judge_edit(verify_edits(sc.section, sc.edit_state(), sc.systems))


class VendorLimits(Promise):
    """An edit one vendor accepts on a mapped property the other vendor refuses to change:
    not carried over, the other side keeps its value, every link holds, and the system under
    test's run report (when it gives one) names the edit as not carried over."""

    id: ClassVar[PromiseId] = PromiseId.VENDOR_LIMITS
    title: ClassVar[str] = "Vendor limits"
    doc: ClassVar[str] = "an edit a vendor's API cannot carry over: expected not to propagate"
    sentence_starts: ClassVar[tuple[str, ...]] = _ONCE_LINKED

    def applies(self, section: Section) -> bool:
        from talkqa.samples import not_carried_edits

        return any(not_carried_edits(section, side.value) for side in Side)

    def plans(self, spec: DataflowSpec, section: Section) -> list[ScenarioPlan]:
        from talkqa.samples import not_carried_edits

        plans: list[ScenarioPlan] = []
        for side in Side:
            here, entity, other = _sides(section, side)
            for prop, blocked in not_carried_edits(section, side.value):
                there = prop.target_path if side is Side.SOURCE else prop.source_path
                plans.append(
                    plan_for(
                        self,
                        spec,
                        section,
                        f"An edit in {here} of {blocked.path} on a linked {entity} is not "
                        f"carried over, as {other} forbids changing {there}",
                        action=Action.EDIT,
                        edit=EditPlan(side=side, path=blocked.path, mapped=False, blocked=prop),
                    )
                )
        return plans

    def then_lines(self, spec: DataflowSpec, section: Section, plan: ScenarioPlan) -> list[str]:
        assert plan.edit is not None and plan.edit.blocked is not None
        _here, _entity, other = _sides(section, plan.edit.side)
        prop = plan.edit.blocked
        there = prop.target_path if plan.edit.side is Side.SOURCE else prop.source_path
        return [f"Then {other} keeps {there} as it was and every link still holds"]

    def judge(self, sc: Scene) -> None:
        """The edited property may now differ between the two sides: that is the vendor's
        limit, not the syncer's fault, so the properties check leaves that one row out."""
        from talkqa.pytest_plugin import unreported_not_carried, verify_kept

        state = sc.edit_state()
        blocked = state.blocked
        assert blocked is not None
        sc.attach_text(
            f"{blocked.source_path} -> {blocked.target_path}: the {state.side} edit is expected "
            "NOT to propagate (the other vendor's API refuses the change); not a finding.",
            "vendor limit",
        )
        extra = verify_kept(sc.section, state, sc.systems)
        report = sc.run_report()
        if report is not None:
            extra += unreported_not_carried(sc.section, state, report)
        sc.judge_edit(extra, skip_pair=(blocked.source_path, blocked.target_path))


class Conflicts(Promise):
    """The same mapped property changed on both sides since the last sync: the newest edit wins
    on both sides (ties: the source), and the run report names each conflict."""

    id: ClassVar[PromiseId] = PromiseId.CONFLICTS
    title: ClassVar[str] = "Conflicts"
    doc: ClassVar[str] = (
        "both sides edited since the last sync: the newest edit wins (ties: the source)"
    )
    sentence_starts: ClassVar[tuple[str, ...]] = _ONCE_LINKED

    def applies(self, section: Section) -> bool:
        from talkqa.samples import conflict_property

        return bound(section) and conflict_property(section) is not None

    def plans(self, spec: DataflowSpec, section: Section) -> list[ScenarioPlan]:
        from talkqa.samples import conflict_property, unstamped

        prop = conflict_property(section) if bound(section) else None
        if prop is None:
            return []
        why = unstamped(section)
        if why is not None:
            # the section does promise it (both sides edit the property), but no syncer can
            # tell which edit is newer: one cell that says so, never passed, never "—"
            return [
                plan_for(
                    self,
                    spec,
                    section,
                    f"{prop.source_path} edited on both sides: the newest edit cannot be told",
                    action=Action.CONFLICT,
                    conflict=ConflictPlan(prop=prop, first=Side.SOURCE),
                    vendor_impossible=why,
                )
            ]
        plans = []
        for first in Side:
            one = system_name(section, first is Side.SOURCE)
            two = system_name(section, first is not Side.SOURCE)
            plans.append(
                plan_for(
                    self,
                    spec,
                    section,
                    f"{prop.source_path} edited in {one} and then in {two}: the newest "
                    f"edit ({two}) wins on both sides",
                    action=Action.CONFLICT,
                    conflict=ConflictPlan(prop=prop, first=first),
                )
            )
        return plans

    def then_lines(self, spec: DataflowSpec, section: Section, plan: ScenarioPlan) -> list[str]:
        source_system = system_name(section, True)
        return [
            f"Then both systems hold the newest edit of each pair, {source_system}'s on a tie",
            "And the system under test reported each conflict",
        ]

    def judge(self, sc: Scene) -> None:
        from talkqa.pytest_plugin import verify_conflict

        sc.judge_edit(verify_conflict(sc.section, sc.conflict_state(), sc.systems))

    def judge_report(self, sc: Scene) -> None:
        """The run report must name every conflict; a syncer that gives no report is said to
        have given none (the sign-off notes it), never passed silently nor blamed."""
        from talkqa.pytest_plugin import unreported_conflicts

        record = sc.record
        state = sc.conflict_state()
        report = sc.run_report()
        if report is None:
            record.qualifier = (
                "conflict reporting not judged: the system under test gave no run report"
            )
            sc.attach_text(record.qualifier, "no run report")
            return
        missing = unreported_conflicts(report, record.section_index, list(state.by_source))
        if missing:
            sc.broken(
                f"conflict not reported: the system under test resolved {len(missing)} "
                f"conflicts without naming them in its run report ({', '.join(missing)})"
            )


class Idempotence(Promise):
    """A second run with nothing new changes nothing in either system."""

    id: ClassVar[PromiseId] = PromiseId.IDEMPOTENCE
    title: ClassVar[str] = "Idempotence"
    doc: ClassVar[str] = "promise: a second run changes nothing"
    sentence_starts: ClassVar[tuple[str, ...]] = _ONCE_LINKED

    def applies(self, section: Section) -> bool:
        return True

    def plans(self, spec: DataflowSpec, section: Section) -> list[ScenarioPlan]:
        src_system, tgt_system = system_name(section, True), system_name(section, False)
        return [
            plan_for(
                self,
                spec,
                section,
                f"A second run changes nothing in {src_system} or {tgt_system}",
                action=Action.RERUN,
            )
        ]

    def then_lines(self, spec: DataflowSpec, section: Section, plan: ScenarioPlan) -> list[str]:
        src_system, tgt_system = system_name(section, True), system_name(section, False)
        return [f"Then no entity changed in {src_system} or {tgt_system}"]

    def judge(self, sc: Scene) -> None:
        from talkqa.pytest_plugin import rerun_findings, unwatched, written_findings
        from talkqa.samples import snapshot_diff

        before, after = sc.snapshots()
        sc.record.entities_checked = len(after)
        findings = rerun_findings(sc.section, snapshot_diff(before, after))
        writes = sc.rerun_writes()
        if not findings and writes:  # writes the vendors' APIs cannot show, the sandbox can
            findings = written_findings(sc.section, writes)
        sc.report(findings, self.id)
        source, target = sc.bindings()
        blind = unwatched(source, sc.created_sources(), target, before, after)
        if blind:
            sc.unjudged(blind)
