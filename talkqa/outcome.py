"""The one typed outcome of every scenario, and the verdict they add up to.

Each scenario ends as exactly one :class:`ScenarioOutcome`, written once by the pytest
plugin (``reports/outcomes.jsonl``) and rendered from there into the sign-off's Markdown,
HTML and JSON and the console line; Allure gets the same status from the same test. A
scenario that talk-qa could not judge (its own error, a broken or missing cassette, a
feature out of date, an interrupted run) is an ``error``: never passed, never blamed on
the system under test. Any error, or a checklist row the parser could not read, makes the
verdict INCOMPLETE.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum

from pydantic import BaseModel, ConfigDict

from talkqa.checks import Finding


class Status(StrEnum):
    PASSED = "passed"  # judged, and the promise held
    FAILED = "failed"  # judged, and the system under test broke the promise
    ERROR = "error"  # not judged: talk-qa, its evidence or its environment failed
    SKIPPED = "skipped"  # not covered (no connector, nothing the vendors let us do)


class ScenarioOutcome(BaseModel):
    """One scenario's result: the record every report is rendered from."""

    model_config = ConfigDict(extra="forbid")

    dataflow: str
    section_index: int
    section: str
    promise: str
    scenario: str
    status: Status
    entities_checked: int = 0
    findings: list[Finding] = []
    # why it failed without findings, errored, or was skipped; for a passed scenario, what
    # it proved less than its promise says (e.g. "link survival only: ...")
    reason: str | None = None
    where: str | None = None  # the file (and line) an error concerns, e.g. a cassette
    # a service (`--sut-service`): seconds from talk-qa's change to the first observation
    # where the promise held (None: not judged over time, or it never held)
    latency_s: float | None = None
    # what no syncer can keep here, each "vendor offers no API to ... (source)" from
    # talkqa.systems.no_api: a skipped scenario's whole reason, or the rows a pass left out
    vendor_impossible: list[str] = []
    # the same per source entity the scenario changed (its id -> seconds): when each one
    # first held, which the section's figures and its slowest entities are made of
    entity_latency_s: dict[str, float] = {}


class NotJudged(Exception):
    """Raised when talk-qa cannot judge a scenario: not an AssertionError nor pytest's
    ``Failed``, so Allure files the scenario as *broken* (a test defect), never as a failed
    promise (a product defect); the plugin shows its message as the one-line report."""


class Verdict(StrEnum):
    GO = "GO"
    NO_GO = "NO-GO"
    INCOMPLETE = "INCOMPLETE"


class ExitCode(IntEnum):
    """The exit codes of every talkqa command (documented in the README and ``--help``)."""

    OK = 0  # GO, no findings
    FINDINGS = 1  # NO-GO, or findings
    USAGE = 2  # bad usage or input
    BUG = 3  # a bug in talk-qa
    INCOMPLETE = 4  # talk-qa could not judge every promise
    ENTITIES_FAILED = 5  # talkqa sync: some entities failed and are retried on the next run
    INTERRUPTED = 130  # Ctrl-C: 128 + SIGINT, as shells report it
    TERMINATED = 143  # talkqa sync stopped by SIGTERM (128 + SIGTERM)

    @classmethod
    def of(cls, verdict: Verdict) -> ExitCode:
        return {
            Verdict.GO: cls.OK,
            Verdict.NO_GO: cls.FINDINGS,
            Verdict.INCOMPLETE: cls.INCOMPLETE,
        }[verdict]


def decide(broken: bool, judged: bool, unjudged: bool) -> Verdict:
    """The verdict, in one place.

    A broken promise is NO-GO even when other promises could not be judged (the release
    cannot go either way; the page lists both). Otherwise anything not judged, or nothing
    judged at all, is INCOMPLETE; GO only when every promise that ran was judged and held.
    """
    if broken:
        return Verdict.NO_GO
    if unjudged or not judged:
        return Verdict.INCOMPLETE
    return Verdict.GO
