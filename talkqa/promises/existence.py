"""Promises about whether targets exist: exactly one per source, none for an unlinked source
of a link-first section, and a merge instead of a duplicate."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from talkqa.dataflow.spec import DataflowSpec, Section, SectionKind
from talkqa.promises.base import (
    SAMPLE_COUNT,
    Promise,
    plan_for,
    section_names,
)
from talkqa.promises.ids import PromiseId
from talkqa.promises.plan import ScenarioPlan
from talkqa.systems.catalog import bind

if TYPE_CHECKING:
    from talkqa.scene import Scene


def _fixed(section: Section) -> str:
    """' with type person' when the target binding fixes fields (the Then names them)."""
    target = bind(section.target)
    if target is None or not target.fixed:
        return ""
    return " with " + " and ".join(f"{k} {v}" for k, v in sorted(target.fixed.items()))


class Exists(Promise):
    """Every source (or, for a conditional section, each source at most once) is linked to
    exactly one target."""

    id: ClassVar[PromiseId] = PromiseId.EXISTS
    title: ClassVar[str] = "Exists & linked"
    doc: ClassVar[str] = "promise: every source has exactly one linked target"
    sentence_starts: ClassVar[tuple[str, ...]] = ("Every ", "When ")

    def applies(self, section: Section) -> bool:
        return section.kind is not SectionKind.LINK_FIRST

    def fallback_sentence(self, src: str, tgt: str) -> str:
        return f"Every {src} will be synchronized with a {tgt}."

    def plans(self, spec: DataflowSpec, section: Section) -> list[ScenarioPlan]:
        if not self.applies(section):
            return []
        src, tgt = section_names(section)
        title = (
            f"A {src} has at most one linked {tgt}"
            if section.kind is SectionKind.CONDITIONAL
            else f"Every {src} has exactly one linked {tgt}"
        )
        return [plan_for(self, spec, section, title, count=SAMPLE_COUNT, runs_before=False)]

    def then_lines(self, spec: DataflowSpec, section: Section, plan: ScenarioPlan) -> list[str]:
        src, tgt = section_names(section)
        many = "at most one" if section.kind is SectionKind.CONDITIONAL else "exactly one"
        return [f"Then every {src} has {many} linked {tgt}{_fixed(section)}"]

    def judge(self, sc: Scene) -> None:
        # conditional sections: the condition is prose, so the exists check asserts "missing"
        # only for "every" sections and duplicates for both
        sc.judge({PromiseId.EXISTS})


class LinkFirst(Promise):
    """A link-first section: nothing is created for a source nobody linked first."""

    id: ClassVar[PromiseId] = PromiseId.LINK_FIRST
    title: ClassVar[str] = "Link first"
    doc: ClassVar[str] = "promise: no target is created for a source that was not linked first"
    sentence_starts: ClassVar[tuple[str, ...]] = ("Before any",)

    def applies(self, section: Section) -> bool:
        return section.kind is SectionKind.LINK_FIRST

    def fallback_sentence(self, src: str, tgt: str) -> str:
        return (
            f"Before any synchronization of a {src} and a {tgt}, a link between them must be "
            "established."
        )

    def plans(self, spec: DataflowSpec, section: Section) -> list[ScenarioPlan]:
        if not self.applies(section):
            return []
        src, tgt = section_names(section)
        return [
            plan_for(
                self,
                spec,
                section,
                f"No {tgt} is created for a {src} that was not linked first",
                count=SAMPLE_COUNT,
                runs_before=False,
                link_first=False,
            )
        ]

    def then_lines(self, spec: DataflowSpec, section: Section, plan: ScenarioPlan) -> list[str]:
        src, tgt = section_names(section)
        return [f"Then no {tgt} is created for an unlinked {src}"]

    def judge(self, sc: Scene) -> None:
        sc.judge({PromiseId.EXISTS, PromiseId.LINK_FIRST}, unlinked_sources=sc.created_sources())


class Merge(Promise):
    """A source whose merge property matches an existing target is linked to it: no duplicate."""

    id: ClassVar[PromiseId] = PromiseId.MERGE
    title: ClassVar[str] = "Merge"
    doc: ClassVar[str] = (
        "promise: a source whose merge property matches an existing target links to it"
    )
    sentence_starts: ClassVar[tuple[str, ...]] = ("If a matching",)

    def _also_matches(self, sentence: str) -> bool:
        return " will merge with " in sentence

    def fallback_sentence(self, src: str, tgt: str) -> str:
        return (
            f"A {src} will merge with a {tgt} if one of the following property combinations match:"
        )

    def applies(self, section: Section) -> bool:
        return bool(section.merge_rules)

    def plans(self, spec: DataflowSpec, section: Section) -> list[ScenarioPlan]:
        if not self.applies(section):
            return []
        src, tgt = section_names(section)
        rule = section.merge_rules[0]
        return [
            plan_for(
                self,
                spec,
                section,
                f"A {src} whose {rule.source_path} matches an existing {tgt} is merged "
                "with it, not duplicated",
                runs_before=False,
                link_first=True,
            )
        ]

    def then_lines(self, spec: DataflowSpec, section: Section, plan: ScenarioPlan) -> list[str]:
        src, tgt = section_names(section)
        return [f"Then each {src} is linked to its existing {tgt} and to no other"]

    def judge(self, sc: Scene) -> None:
        from talkqa.pytest_plugin import verify_merged

        section, record = sc.section, sc.record
        src = bind(section.source)
        assert src is not None
        created = record.created.ids(src.key)
        existing = {sid: tid for sid, tid in record.created.existing.items() if sid in created}
        record.entities_checked = len(existing)
        sc.report(verify_merged(section, existing, sc.systems), self.id)
        without = [sid for sid in created if sid not in existing]
        if not created or without:
            sc.unjudged(
                f"not judged: {len(without)} of the {len(created)} {sc.names[0]} entities "
                f"this scenario created had no existing {sc.names[1]} to merge with "
                f"({', '.join(without)}), so no merge was judged for them"
            )
