"""A scenario's plan: every decision about what a scenario does, made once, as data.

The generator renders a plan as Gherkin for people to read; at run time the steps look the
same plan up by the scenario's name and act on it. Nothing is decided from step text, so
the words of a feature can never disagree with what its steps do.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from talkqa.dataflow.spec import PropertyMap
from talkqa.promises.ids import PromiseId


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Side(StrEnum):
    SOURCE = "source"
    TARGET = "target"

    @property
    def other(self) -> Side:
        return Side.TARGET if self is Side.SOURCE else Side.SOURCE


class Action(StrEnum):
    """What happens in the scenario's When, after its Givens."""

    RUN = "run"  # the system under test runs once
    EDIT = "edit"  # each linked entity on one side is edited, then the sut runs again
    CONFLICT = "conflict"  # both sides of each pair edited, one after the other, then run again
    EDIT_REFERENCED = "edit-referenced"  # the referenced entities are edited, then run again
    RERUN = "rerun"  # the sut runs again with nothing changed


class EditPlan(_Frozen):
    """An edit of ``path`` on each linked entity of ``side``.

    ``mapped``: the checklist maps the path, so the edit must reach the other side.
    ``blocked``: the property row whose other side its vendor refuses to change (a vendor
    limit): the edit is expected to stay where it was made.
    """

    side: Side
    path: str | None  # None: talk-qa knows no field this side's API lets it edit
    mapped: bool
    blocked: PropertyMap | None = None


class ConflictPlan(_Frozen):
    """``prop`` edited on both sides of each linked pair: ``first``'s side first."""

    prop: PropertyMap
    first: Side


class ReferencedEditPlan(_Frozen):
    """Each entity the section's sources reference (``system``/``datatype``) edited at ``path``."""

    system: str
    datatype: str
    path: str


class ScenarioPlan(_Frozen):
    """One scenario of one promise of one section."""

    promise: PromiseId
    section_index: int
    title: str  # the scenario's name: unique within its feature, the plan's key
    sentence: str  # the checklist sentence the scenario tests (Allure story)
    count: int  # source entities the scenario creates
    link_first: bool = False  # each source gets its existing target before the sut runs
    # link-first sections of referenced datatypes whose links are made first
    referenced_links: tuple[int, ...] = ()
    runs_before: bool = False  # the sut has run once before the When
    action: Action = Action.RUN
    edit: EditPlan | None = None
    conflict: ConflictPlan | None = None
    referenced_edit: ReferencedEditPlan | None = None
    rows: tuple[PropertyMap, ...] = ()  # the property rows the Then step's table names
    qualifier: str | None = None  # what the scenario proves less than its promise, if anything
    # "vendor offers no API to ... (source)": no syncer can keep this promise through the
    # vendors' APIs, so the scenario is neither run nor counted as passed or not covered
    impossible: str | None = None
