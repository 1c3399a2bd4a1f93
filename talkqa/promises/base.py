"""What every promise is: a small class that says whether it applies to a section, plans the
section's scenarios for it, words its Then step, and judges what the scenario observed.

Modelled on singer-sdk's standard test templates: each check decides for itself whether it
applies, and carries a readable id (its :class:`PromiseId`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from talkqa.dataflow.spec import DataflowSpec, PropertyMap, Section, SectionKind
from talkqa.promises.ids import PromiseId
from talkqa.promises.plan import (
    Action,
    ConflictPlan,
    EditPlan,
    ReferencedEditPlan,
    ScenarioPlan,
)
from talkqa.systems.catalog import bind
from talkqa.systems.no_api import impossible

if TYPE_CHECKING:
    from talkqa.scene import Scene

SAMPLE_COUNT = 3  # entities per scenario: enough to see pairing mistakes, few enough to replay fast
EDIT_SAMPLE_COUNT = 2


def section_names(section: Section) -> tuple[str, str]:
    """The source and target as step text names them (e.g. 'Chargebee Customer')."""
    return (
        " ".join(f"{section.source.system} {section.source.datatype}".split()),
        " ".join(f"{section.target.system} {section.target.datatype}".split()),
    )


def system_name(section: Section, source: bool) -> str:
    """A side's system as scenario text; a blank (unbound) name reads as the unnamed system of
    its datatype, so titles do not end in "reaches " (such sections skip as not covered)."""
    side = section.source if source else section.target
    name = " ".join(side.system.split())
    return name or " ".join(f"the unnamed {side.datatype} system".split())


def bound(section: Section) -> bool:
    return bind(section.source) is not None and bind(section.target) is not None


def referenced_links(spec: DataflowSpec, section: Section) -> tuple[int, ...]:
    """The link-first sections of the datatypes this section's sources reference: their links
    must exist before the system under test runs, or nothing referencing them can sync."""
    source = bind(section.source)
    found: list[int] = []
    for ref_key in dict.fromkeys(source.references.values() if source is not None else ()):
        for other in spec.sections:
            other_source = bind(other.source)
            if (
                other is not section
                and other.kind is SectionKind.LINK_FIRST
                and other_source is not None
                and other_source.key == ref_key
                and bind(other.target) is not None
            ):
                found.append(other.index)
                break
    return tuple(found)


def needs_link_first(section: Section) -> bool:
    return section.kind is SectionKind.LINK_FIRST and bind(section.target) is not None


def plan_for(
    promise: Promise,
    spec: DataflowSpec,
    section: Section,
    title: str,
    *,
    count: int = EDIT_SAMPLE_COUNT,
    runs_before: bool = True,
    link_first: bool | None = None,
    action: Action = Action.RUN,
    edit: EditPlan | None = None,
    conflict: ConflictPlan | None = None,
    referenced_edit: ReferencedEditPlan | None = None,
    rows: tuple[PropertyMap, ...] = (),
    qualifier: str | None = None,
    sentence: str | None = None,
    vendor_impossible: str | None = None,
) -> ScenarioPlan:
    """A plan of ``promise`` for ``section``; the Givens every scenario of a section shares
    (its link-first links, the referenced sections' links) are filled in here, once."""
    return ScenarioPlan(
        promise=promise.id,
        section_index=section.index,
        title=title,
        sentence=sentence if sentence is not None else promise.sentence(section),
        count=count,
        link_first=needs_link_first(section) if link_first is None else link_first,
        referenced_links=referenced_links(spec, section),
        runs_before=runs_before,
        action=action,
        edit=edit,
        conflict=conflict,
        referenced_edit=referenced_edit,
        rows=rows,
        qualifier=qualifier,
        impossible=vendor_impossible if vendor_impossible is not None else impossible(section),
    )


class Promise(ABC):
    """One promise a checklist section can make."""

    id: ClassVar[PromiseId]
    title: ClassVar[str]  # the sign-off column
    doc: ClassVar[str]  # the pytest marker's description
    # how the checklist sentence this promise tests begins (the Allure story)
    sentence_starts: ClassVar[tuple[str, ...]]

    @abstractmethod
    def applies(self, section: Section) -> bool:
        """Whether the section makes this promise at all."""

    @abstractmethod
    def plans(self, spec: DataflowSpec, section: Section) -> list[ScenarioPlan]:
        """The scenarios that test this promise of ``section`` (empty when it does not apply)."""

    @abstractmethod
    def then_lines(self, spec: DataflowSpec, section: Section, plan: ScenarioPlan) -> list[str]:
        """The Then (and And) lines of a plan's scenario, without indentation."""

    @abstractmethod
    def judge(self, sc: Scene) -> None:
        """Judge the scenario's observation; fails the scenario on a broken promise."""

    def fallback_sentence(self, src: str, tgt: str) -> str:
        return f"Once a link between a {src} and a {tgt} is established, it will keep in sync."

    def sentence(self, section: Section) -> str:
        """The checklist sentence this promise tests, verbatim when present."""
        for sentence in section.sentences:
            if sentence.startswith(self.sentence_starts) or self._also_matches(sentence):
                return " ".join(sentence.split())
        return self.fallback_sentence(*section_names(section))

    def _also_matches(self, sentence: str) -> bool:
        return False


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    """A Gherkin data table, columns aligned."""
    all_rows = [header, *rows]
    widths = [max(len(_cell(r[i])) for r in all_rows) for i in range(len(header))]
    return [
        "| " + " | ".join(_cell(c).ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
        for r in all_rows
    ]
