"""The typed form of a Sesam Talk "Dataflow" checklist.

Everything downstream (generator, reference sync, judge) reads this model and never the
RST: the parser is the anti-corruption layer between docutils' tree and the project.
Parse problems are data (``issues``) so one broken row never hides the rest of a document.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SectionKind(StrEnum):
    """How a section's opening sentence says source entities reach the target."""

    EVERY = "every"  # "Every S will be synchronized with a T."
    LINK_FIRST = "link-first"  # "Before any synchronization ... a link ... must be established."
    CONDITIONAL = "conditional"  # "When <condition>, it  will be synchronized with a T."


class DatatypeRef(_Frozen):
    """One side of a section: a system name and a datatype name as the checklist writes them."""

    system: str
    datatype: str


class PropertyMap(_Frozen):
    """One row of the property table: source path -> target path under a declared type."""

    source_path: str
    target_path: str
    data_type: str | None  # "string", "integer", ... without quotes; None for N/A
    qualifier: str | None = None  # text the checklist put after the path, e.g. "(Dependant on ...)"
    line: int


class MergeRule(_Frozen):
    """One row of a merge table: an alternative property pair that identifies the same entity."""

    source_path: str
    target_path: str
    line: int


class Section(_Frozen):
    """One datatype pair of a checklist, keyed by position (headings may repeat)."""

    index: int
    heading: str
    source: DatatypeRef
    target: DatatypeRef
    kind: SectionKind
    condition: str | None = None
    merges_existing: bool = False  # "If a matching T already exists, the S will be merged ..."
    merge_rules: tuple[MergeRule, ...] = ()
    properties: tuple[PropertyMap, ...] = ()
    sentences: tuple[str, ...] = ()  # the section's promises, verbatim (Allure stories)
    file: str
    line: int

    @property
    def existence_only(self) -> bool:
        """An empty property table asserts existence and linking only."""
        return not self.properties


# Parse notes that cannot change what a checklist promises: an unreadable generation
# timestamp, and a section left out because an earlier one already makes its promises.
HARMLESS_ISSUES = frozenset({"generated", "repeated-section"})


class ParseIssue(_Frozen):
    """Something the parser could not read; the rest of the document is still read."""

    file: str
    line: int
    kind: str  # e.g. "broken-row", "garbled-header", "unknown-type", "qualifier", "blank-system"
    message: str

    @property
    def may_change_promises(self) -> bool:
        """Whether the checklist may promise something the spec does not hold (a row dropped or
        altered, a sentence not understood): a sign-off cannot say GO over it."""
        return self.kind not in HARMLESS_ISSUES

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


class DataflowSpec(_Frozen):
    """A whole checklist: source and target system names, sections in document order."""

    file: str
    source: str
    target: str
    generated: datetime | None = None
    sections: tuple[Section, ...] = ()
    issues: tuple[ParseIssue, ...] = ()
