"""What a sync run did, per section: the sign-off and the CLI read this, never the store."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field


class Conflict(BaseModel):
    """One mapped property changed on both sides since the last sync."""

    model_config = ConfigDict(frozen=True)

    property: str  # "source_path -> target_path"
    source_id: str
    target_id: str
    source_value: Any
    target_value: Any
    source_updated_at: int | None
    target_updated_at: int | None
    winner: str  # "source" | "target"


class NotCarried(BaseModel):
    """An edit the vendors' APIs would not let the sync carry over."""

    model_config = ConfigDict(frozen=True)

    section: str
    property: str
    entity: str  # "chargebee orders o1" style: the entity whose edit stayed behind
    direction: str  # "to_target" | "to_source"
    reason: str


class EntityNote(BaseModel):
    """An entity unlinked or failed, with why."""

    model_config = ConfigDict(frozen=True)

    source_id: str | None
    target_id: str | None
    reason: str


class SectionSummary(BaseModel):
    """One section's run. Every source entity the run accounts for (``entities``: the links
    it held plus every live source it read) lands in exactly one of created, readopted,
    updated, unchanged, deleted, unlinked, failed or not_synced, so they add up to it.
    ``updated_to_target``/``updated_to_source`` count writes per direction on top."""

    index: int
    heading: str
    key: str | None = None
    skipped: str | None = None  # why the section was not synced at all
    error: str | None = None  # why the section stopped part-way (a read that failed)
    entities: int = 0
    created: int = 0
    readopted: int = 0  # existing targets linked (by metadata or a merge rule), not created
    updated: int = 0  # entities written to, either way
    updated_to_target: int = 0
    updated_to_source: int = 0
    unchanged: int = 0
    deleted: int = 0
    not_synced: int = 0  # read and left alone on purpose (tombstoned, or waiting for a link)
    conflicts: list[Conflict] = Field(default_factory=list)
    not_carried_over: list[NotCarried] = Field(default_factory=list)
    unlinked: list[EntityNote] = Field(default_factory=list)
    failed: list[EntityNote] = Field(default_factory=list)

    @property
    def accounted(self) -> int:
        """The outcomes summed: equals ``entities`` when nothing was lost count of."""
        return (
            self.created
            + self.readopted
            + self.updated
            + self.unchanged
            + self.deleted
            + len(self.unlinked)
            + len(self.failed)
            + self.not_synced
        )


_COUNTS = (
    "entities",
    "created",
    "readopted",
    "updated",
    "updated_to_target",
    "updated_to_source",
    "unchanged",
    "deleted",
    "not_synced",
)


class SyncSummary(BaseModel):
    sections: list[SectionSummary] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def totals(self) -> dict[str, int]:
        totals = {name: sum(getattr(s, name) for s in self.sections) for name in _COUNTS}
        totals["conflicts"] = sum(len(s.conflicts) for s in self.sections)
        totals["not_carried_over"] = sum(len(s.not_carried_over) for s in self.sections)
        totals["unlinked"] = sum(len(s.unlinked) for s in self.sections)
        totals["failed"] = sum(len(s.failed) for s in self.sections)
        totals["skipped_sections"] = sum(1 for s in self.sections if s.skipped)
        return totals

    @property
    def complete(self) -> bool:
        """Every entity synced or deliberately left: no failure waits for the next run."""
        return not any(s.failed or s.error for s in self.sections)

    @property
    def writes(self) -> int:
        t = self.totals
        return t["created"] + t["updated_to_target"] + t["updated_to_source"] + t["deleted"]

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)
