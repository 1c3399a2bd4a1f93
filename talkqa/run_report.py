"""The run report: what a system under test may say about one run, in a published schema.

talk-qa judges syncers as black boxes through the vendors' APIs, but some promises are
about what a syncer *says*: that it resolved a conflict (and which side won), that it could
not carry an edit over because a vendor forbids it. A command syncer may write this report
as JSON to the path in ``$TALKQA_RUN_REPORT`` (set for every run); the reference sync gives
the same report. Promises that need it judge it when it exists, and the sign-off says
plainly when a syncer gave none. ``talkqa run-report-schema`` prints the JSON Schema.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

ENV_VAR = "TALKQA_RUN_REPORT"

Side = Literal["source", "target"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class ReportedConflict(_Model):
    """A mapped property changed on both sides since the last run."""

    source_id: str
    target_id: str | None = None
    property: str = Field(description="'source_path -> target_path' of the checklist row")
    winner: Side


class ReportedNotCarried(_Model):
    """An edit the syncer did not carry over because the other vendor forbids the change."""

    entity_id: str = Field(description="the id of the entity whose edit stayed behind")
    property: str = Field(description="'source_path -> target_path' of the checklist row")
    direction: Literal["to_target", "to_source"]
    reason: str = ""


class ReportedSection(_Model):
    """One checklist section (by its 1-based index in the checklist) in one run."""

    index: int
    created: int = 0
    updated_to_target: int = 0
    updated_to_source: int = 0
    conflicts: list[ReportedConflict] = []
    not_carried_over: list[ReportedNotCarried] = []


class RunReport(_Model):
    """A syncer's own account of one run."""

    syncer: str = ""
    sections: list[ReportedSection] = []

    def section(self, index: int) -> ReportedSection | None:
        return next((s for s in self.sections if s.index == index), None)


class RunReportError(ValueError):
    """The syncer wrote a report that is not in the schema: the syncer's fault, said in a line."""


def read_run_report(path: Path) -> RunReport | None:
    """The report at ``path``; None when the syncer wrote none."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        return RunReport.model_validate(json.loads(text))
    except (json.JSONDecodeError, ValidationError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RunReportError(f"its run report ${ENV_VAR} is not in the schema: {first}") from None


def schema_json() -> str:
    return json.dumps(RunReport.model_json_schema(), indent=2) + "\n"
