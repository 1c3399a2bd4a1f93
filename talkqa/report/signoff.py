"""The sign-off: one page a release manager reads to decide, with the evidence behind it.

Verdict first (GO / NO-GO and which promises broke, by section), then the checklist matrix
(each section x each promise, with numbered notes where a scenario proves less than its
promise, e.g. only that a link survives an edit), then the first findings of each kind,
then the run's metadata. The page is built once as plain data (``build``) and rendered
three times, as Markdown, as a self-contained HTML file and as JSON for tools, so all
always say the same thing.
"""

from __future__ import annotations

import functools
import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from talkqa import __version__
from talkqa.checks import NotCovered, bindings_of
from talkqa.dataflow.spec import DataflowSpec
from talkqa.errors import UserError
from talkqa.outcome import ExitCode, ScenarioOutcome, Status, decide
from talkqa.outcome import Verdict as VerdictKind
from talkqa.promises import REGISTRY, PromiseId, plans_of
from talkqa.promises import promise as registry_promise
from talkqa.report.environment import git_revision
from talkqa.report.latency import SectionLatency, by_section, over_budget, seconds

FINDINGS_PER_KIND = 5
Outcome = ScenarioOutcome  # the sign-off renders the one typed outcome of each scenario


LATENCY = "latency"  # a section broken by --latency-budget, beside the promises it broke


def _title(promise: str) -> str:
    """A promise's sign-off column, from the registry."""
    if promise == LATENCY:
        return "Propagation latency"
    try:
        return registry_promise(promise).title
    except ValueError:
        return promise


class SectionInfo(BaseModel):
    """What the checklist says about a section, so rows exist even where nothing ran."""

    dataflow: str
    index: int
    heading: str
    existence_only: bool = False
    covered: bool = True
    reason: str | None = None
    promises: list[str] = []  # the promises the section makes (its registry plans)


class SignoffInput(BaseModel):
    """Everything the sign-off page shows."""

    outcomes: list[Outcome]
    sections: list[SectionInfo] = []
    mode: str = ""
    sut: str = ""
    started: datetime | None = None
    finished: datetime | None = None
    version: str = __version__
    revision: str | None = None  # git revision; looked up when None
    # promises the run was limited to (``talkqa signoff --promise``); empty: all of them
    selection: list[str] = []
    # what talk-qa could not judge outside any scenario: checklist rows the parser could not
    # read (file:line), a run that was interrupted or could not start
    unjudged: list[str] = []
    # what the run passed on to pytest (``talkqa signoff -- ARGS``): it may narrow the run
    pytest_args: list[str] = []
    # ``--latency-budget``: seconds a section's p95 propagation latency may take (a service)
    latency_budget: float | None = None


class BrokenSection(BaseModel):
    """One section whose promises broke, for tools (the catalogue test, CI annotations)."""

    dataflow: str
    index: int
    section: str
    promises: list[str]  # promise ids: exists | properties | references | edits | ...


class Verdict(BaseModel):
    """The decision and where its page was written."""

    go: bool
    label: VerdictKind
    headline: str = ""
    broken: list[str]
    broken_sections: list[BrokenSection] = []
    unjudged: list[str] = []
    markdown: Path
    html: Path | None = None
    json_path: Path | None = None
    latency: list[SectionLatency] = []  # a service's propagation latency, per section

    def broken_promises(self) -> set[str]:
        """Every promise id broken in some section."""
        return {p for section in self.broken_sections for p in section.promises}

    @property
    def exit_code(self) -> int:
        return int(ExitCode.of(self.label))


def read_outcomes(path: Path) -> list[Outcome]:
    """Read reports/outcomes.jsonl; a bad line is a one-line error naming file:line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(
            f"{path}: no such file; run the features first (make test or talkqa signoff)"
        ) from None
    outcomes: list[Outcome] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            outcomes.append(Outcome.model_validate(json.loads(line)))
        except (json.JSONDecodeError, ValidationError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise UserError(
                f"{path}:{number}: not a scenario outcome ({first}); delete the file and rerun"
            ) from None
    return outcomes


def sections_from_spec(spec: DataflowSpec, dataflow: str | None = None) -> list[SectionInfo]:
    """The matrix rows of a checklist, with the reason a section cannot be judged."""
    rows: list[SectionInfo] = []
    for section in spec.sections:
        reason: str | None = None
        try:
            bindings_of(section)
        except NotCovered as exc:
            reason = exc.reason
        rows.append(
            SectionInfo(
                dataflow=dataflow or spec.file,
                index=section.index,
                heading=" ".join(section.heading.split()),
                existence_only=section.existence_only,
                covered=reason is None,
                reason=reason,
                promises=list(dict.fromkeys(p.promise.value for p in plans_of(spec, section))),
            )
        )
    return rows


# --- the page as data --------------------------------------------------------------------


@dataclass
class Cell:
    status: str  # passed | failed | skipped | impossible | existence-only | none
    text: str
    note: int | None = None  # number of the page's note that qualifies this cell


@dataclass
class Row:
    index: int
    heading: str
    cells: list[Cell]


@dataclass
class Matrix:
    dataflow: str
    promises: list[str]
    rows: list[Row]


@dataclass
class Page:
    title: str
    verdict: VerdictKind
    headline: str
    broken: list[str]
    coverage: str
    matrices: list[Matrix]
    findings: list[tuple[str, int, list[str]]]  # kind, total, first messages
    other_failures: list[str]
    not_covered: list[str]
    metadata: list[tuple[str, str]]
    notes: list[str] = field(default_factory=list)  # note n is notes[n - 1]
    broken_sections: list[BrokenSection] = field(default_factory=list)
    unjudged: list[str] = field(default_factory=list)  # what talk-qa could not judge, and why
    latency: list[SectionLatency] = field(default_factory=list)  # a service's, per section
    latency_budget: float | None = None

    @property
    def go(self) -> bool:
        return self.verdict is VerdictKind.GO


_ICON = {
    "passed": "✅",
    "failed": "❌",
    "error": "⚠️",
    "skipped": "⚪",
    "impossible": "🚫",
    "existence-only": "▫️",
    "none": "",
}

# An edit scenario of a section without mapped properties can only show that links hold.
EXISTENCE_ONLY_EDITS = (
    "existence only: the section maps no property, so the edit scenarios prove that every "
    "link survives an edit and that the edit is not overwritten, not that values travel"
)


def _first_line(text: str | None) -> str:
    """A reason's first line, without the 'not covered:' prefix the cell already says."""
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line.removeprefix("not covered:").strip()


def _dataflow_key(name: str) -> str:
    return Path(name).name


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _cell(
    outcomes: Sequence[Outcome], info: SectionInfo | None, promise: str, selected: bool
) -> Cell:
    values = (PromiseId.PROPERTIES, PromiseId.REFERENCES)
    if not outcomes:
        if info is not None and info.existence_only and promise in values:
            return Cell("existence-only", "existence only")
        if info is not None and not info.covered:
            return Cell("skipped", "not covered")
        makes = info is None or not info.promises or promise in info.promises
        return Cell("none", "not run" if makes and not selected else "—")
    checked = sum(o.entities_checked for o in outcomes)
    states = {o.status for o in outcomes}
    cannot = _impossible(outcomes)
    if cannot is not None:
        return Cell("impossible", cannot)
    if Status.FAILED in states:
        found = sum(len(o.findings) for o in outcomes)
        extra = f", {found} finding{'s' if found != 1 else ''}" if found else ""
        return Cell("failed", f"failed ({checked} checked{extra})")
    if Status.ERROR in states:
        errors = sum(1 for o in outcomes if o.status is Status.ERROR)
        return Cell("error", f"not judged ({_plural(errors, 'error')})")
    if Status.PASSED in states:
        # rows the vendor computes were not compared: the cell says which, with the source
        unwritable = sorted(
            {why for o in outcomes if o.status is Status.PASSED for why in o.vendor_impossible}
        )
        suffix = "".join(f"; 🚫 {why}" for why in unwritable)
        return Cell("passed", f"passed ({checked} checked){suffix}")
    if info is not None and info.existence_only and promise in values:
        return Cell("existence-only", "existence only")
    return Cell("skipped", "not covered")


def _impossible(outcomes: Sequence[Outcome]) -> str | None:
    """The vendor-impossible reason when every outcome of a cell is one (``no_api``)."""
    if outcomes and all(o.status is Status.SKIPPED and o.vendor_impossible for o in outcomes):
        return outcomes[0].vendor_impossible[0]
    return None


def _qualifier(outcomes: Sequence[Outcome], info: SectionInfo | None, promise: str) -> str | None:
    """Why a judged cell proves less than its promise says (the plans' own words)."""
    reasons = [
        _first_line(o.reason)
        for o in outcomes
        if o.reason and (o.status is Status.PASSED or (o.status is Status.FAILED and o.findings))
    ]
    reasons = [r for r in dict.fromkeys(reasons) if r]
    judged = any(o.status in (Status.PASSED, Status.FAILED) for o in outcomes)
    if (
        not reasons
        and judged
        and promise == PromiseId.EDITS
        and info is not None
        and info.existence_only
    ):
        reasons = [EXISTENCE_ONLY_EDITS]
    return "; ".join(reasons) or None


def _broken_summary(heading: str, failed: dict[str, list[Outcome]]) -> str:
    parts = []
    for promise, outcomes in failed.items():
        kinds = Counter(f.kind.value for o in outcomes for f in o.findings)
        if kinds:
            detail = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
            # a service's promise that never held says so before what it last saw
            late = next((_first_line(o.reason) for o in outcomes if o.reason and o.findings),
                        None)
            detail = f"{late}: {detail}" if late else detail
        else:
            detail = next((_first_line(o.reason) for o in outcomes if o.reason), "failed")
        parts.append(f"{_title(promise).lower()} ({detail})")
    return f"{heading} — " + "; ".join(parts)


def _no_go_headline(broken: Sequence[BrokenSection]) -> str:
    """'2 promises broken in 1 section: Orders (properties, either-side edits).'"""
    cells = sum(len(b.promises) for b in broken)
    named = "; ".join(
        f"{b.section} ({', '.join(_title(p).lower() for p in b.promises)})" for b in broken
    )
    return f"{_plural(cells, 'promise')} broken in {_plural(len(broken), 'section')}: {named}."


def _unjudged_line(outcome: Outcome) -> str:
    where = f" [{outcome.where}]" if outcome.where else ""
    return (
        f"{' '.join(outcome.section.split()) or outcome.dataflow or 'a scenario'} — "
        f"{_title(outcome.promise).lower() or 'scenario'}: {outcome.scenario}: "
        f"{_first_line(outcome.reason) or 'error'}{where}"
    )


def build(results: SignoffInput, revision: str) -> Page:
    """The sign-off page as data: the one place that decides GO / NO-GO / INCOMPLETE."""
    # Outcomes name a checklist as the feature did ("dataflows/x.rst"), sections as the
    # parser did (maybe absolute): the file name is what they share.
    names: dict[str, str] = {}
    by_cell: dict[tuple[str, int, str], list[Outcome]] = defaultdict(list)
    headings: dict[tuple[str, int], str] = {}
    for outcome in results.outcomes:
        key = names.setdefault(_dataflow_key(outcome.dataflow), outcome.dataflow)
        by_cell[(key, outcome.section_index, outcome.promise)].append(outcome)
        headings.setdefault((key, outcome.section_index), " ".join(outcome.section.split()))
    infos: dict[tuple[str, int], SectionInfo] = {}
    for known in results.sections:
        key = names.setdefault(_dataflow_key(known.dataflow), known.dataflow)
        infos[(key, known.index)] = known
        headings[(key, known.index)] = " ".join(known.heading.split())
    dataflows = list(dict.fromkeys(d for d, _ in list(infos) + list(headings)))
    made = {o.promise for o in results.outcomes} | {
        p for info in results.sections for p in info.promises
    }
    selection = set(results.selection)
    # the registry's columns: each promise the checklist makes or a scenario of this run tested
    promises = [p.id.value for p in REGISTRY if p.id in made or p.id in selection]

    matrices: list[Matrix] = []
    broken: list[str] = []
    broken_sections: list[BrokenSection] = []
    not_covered: list[str] = []
    notes: list[str] = []
    for dataflow in dataflows:
        rows: list[Row] = []
        for _, index in sorted(k for k in headings if k[0] == dataflow):
            info = infos.get((dataflow, index))
            heading = headings[(dataflow, index)]
            cells: list[Cell] = []
            for p in promises:
                outcomes = by_cell.get((dataflow, index, p), [])
                cell = _cell(outcomes, info, p, not selection or p in selection)
                qualifier = _qualifier(outcomes, info, p)
                if qualifier and cell.status in ("passed", "failed"):
                    notes.append(f"{heading} — {_title(p).lower()}: {qualifier}")
                    cell.note = len(notes)
                cells.append(cell)
            rows.append(Row(index, heading, cells))
            failed = {
                p: [o for o in by_cell.get((dataflow, index, p), []) if o.status is Status.FAILED]
                for p in promises
            }
            failed = {p: os for p, os in failed.items() if os}
            if failed:
                broken.append(_broken_summary(heading, failed))
                broken_sections.append(
                    BrokenSection(
                        dataflow=dataflow, index=index, section=heading, promises=list(failed)
                    )
                )
            if info is not None and not info.covered:
                not_covered.append(f"{heading}: {_first_line(info.reason) or 'no connector'}")
            else:
                for p in promises:
                    outcomes = by_cell.get((dataflow, index, p), [])
                    if (
                        outcomes
                        and all(o.status is Status.SKIPPED for o in outcomes)
                        and _impossible(outcomes) is None
                    ):
                        reason = next((o.reason for o in outcomes if o.reason), None)
                        not_covered.append(
                            f"{heading} — {_title(p).lower()}: {_first_line(reason) or 'skipped'}"
                        )
        matrices.append(Matrix(dataflow, promises, rows))

    latency = by_section(results.outcomes)
    if results.latency_budget is not None:
        for slow in over_budget(latency, results.latency_budget):
            key = names.get(_dataflow_key(slow.dataflow), slow.dataflow)
            heading = headings.get((key, slow.index), slow.section)
            broken.append(f"{heading} — propagation latency (p95 {seconds(slow.p95)} over the "
                          f"budget of {seconds(results.latency_budget)})")
            listed = next((b for b in broken_sections
                           if (b.dataflow, b.index) == (key, slow.index)), None)
            if listed is None:
                broken_sections.append(BrokenSection(dataflow=key, index=slow.index,
                                                     section=heading, promises=[LATENCY]))
            else:
                listed.promises.append(LATENCY)

    counts = Counter(o.status for o in results.outcomes)
    statuses = [c.status for m in matrices for r in m.rows for c in r.cells]
    total_cells = sum(1 for s in statuses if s != "none")
    judged = sum(1 for s in statuses if s in ("passed", "failed"))
    skipped_cells = statuses.count("skipped")
    impossible_cells = statuses.count("impossible")
    unjudged = [*results.unjudged] + [
        _unjudged_line(o) for o in results.outcomes if o.status is Status.ERROR
    ]
    verdict = decide(broken=bool(broken), judged=bool(judged), unjudged=bool(unjudged))
    if verdict is VerdictKind.NO_GO:
        headline = _no_go_headline(broken_sections)
        if unjudged:
            headline += f" Also {_plural(len(unjudged), 'thing')} could not be judged: see below."
    elif unjudged:
        headline = (
            f"{_plural(len(unjudged), 'thing')} could not be judged, none of them the system "
            "under test's fault: see below."
        )
    elif not judged:
        headline = "Nothing was judged: no scenario passed or failed."
    else:
        headline = f"Every checked promise holds ({_plural(judged, 'promise')} checked)."
        if skipped_cells:
            headline += f" {skipped_cells} not covered: see below."
        if impossible_cells:
            headline += (
                f" {_plural(impossible_cells, 'cell')} no syncer can keep: the vendor offers no "
                "API for it (see the matrix)."
            )
    if selection:
        chosen = ", ".join(_title(p).lower() for p in promises if p in selection)
        headline += f" Only these promises were run: {chosen}."
    if results.pytest_args:
        headline += f" The run was given pytest arguments: {' '.join(results.pytest_args)}."
    impossible_text = (
        f", {impossible_cells} impossible through the vendors' APIs" if impossible_cells else ""
    )
    coverage = (
        f"{judged} of {total_cells} matrix cells checked, {skipped_cells} not covered"
        f"{impossible_text}; scenarios: {counts.get(Status.PASSED, 0)} passed, "
        f"{counts.get(Status.FAILED, 0)} failed, {counts.get(Status.ERROR, 0)} not judged "
        f"(error), {counts.get(Status.SKIPPED, 0)} skipped."
    )

    by_kind: dict[str, list[str]] = defaultdict(list)
    other_failures: list[str] = []
    for outcome in results.outcomes:
        for finding in outcome.findings:
            by_kind[finding.kind.value].append(finding.message)
        if outcome.status is Status.FAILED and not outcome.findings:
            other_failures.append(
                f"{' '.join(outcome.section.split())} — {_title(outcome.promise).lower()}: "
                f"{_first_line(outcome.reason) or 'failed without findings'}"
            )
    findings = [
        (kind, len(messages), list(dict.fromkeys(messages))[:FINDINGS_PER_KIND])
        for kind, messages in sorted(by_kind.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    ]

    def stamp(moment: datetime | None) -> str:
        return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "—"

    metadata = [
        ("Mode", results.mode or "—"),
        ("System under test", results.sut or "—"),
        ("Started", stamp(results.started)),
        ("Finished", stamp(results.finished)),
        ("talk-qa version", results.version),
        ("Git revision", revision),
        ("Checklists", ", ".join(dataflows) or "—"),
        ("Promises run", ", ".join(p for p in promises if p in selection) or "all"),
        ("pytest arguments", " ".join(results.pytest_args) or "—"),
    ]
    title = "Sign-off: " + (", ".join(Path(d).stem for d in dataflows) or "no checklist")
    return Page(
        title=title,
        verdict=verdict,
        headline=headline,
        broken=broken,
        coverage=coverage,
        matrices=matrices,
        findings=findings,
        other_failures=other_failures,
        not_covered=not_covered,
        metadata=metadata,
        notes=notes,
        broken_sections=broken_sections,
        unjudged=unjudged,
        latency=latency,
        latency_budget=results.latency_budget,
    )


# --- renderers -----------------------------------------------------------------------------


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _cell_text(cell: Cell) -> str:
    text = f"{_ICON[cell.status]} {cell.text}".strip()
    return f"{text} [{cell.note}]" if cell.note else text


@functools.cache
def _templates() -> Any:
    """The page's two templates (``talkqa/report/templates``): HTML escapes every value."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("talkqa.report", "templates"),
        autoescape=jinja2.select_autoescape(["html.j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(md=_md, cell=_cell_text, title=_title, seconds=seconds)
    return env


def render_markdown(page: Page) -> str:
    icon = {VerdictKind.GO: "✅", VerdictKind.NO_GO: "❌", VerdictKind.INCOMPLETE: "⚠️"}
    text = _templates().get_template("signoff.md.j2").render(page=page, icon=icon[page.verdict])
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return str(text)


def render_html(page: Page) -> str:
    css = {VerdictKind.GO: "go", VerdictKind.NO_GO: "nogo", VerdictKind.INCOMPLETE: "incomplete"}
    return str(
        _templates().get_template("signoff.html.j2").render(page=page, css=css[page.verdict])
    )


def render_json(page: Page) -> str:
    """The same page for tools: verdict, broken promises by section, matrix, findings."""
    data: dict[str, Any] = {
        "verdict": page.verdict.value,
        "go": page.go,
        "unjudged": page.unjudged,
        "headline": page.headline,
        "broken": page.broken,
        "broken_sections": [b.model_dump() for b in page.broken_sections],
        "coverage": page.coverage,
        "matrices": [
            {
                "dataflow": m.dataflow,
                "promises": m.promises,
                "rows": [
                    {
                        "index": r.index,
                        "section": r.heading,
                        "cells": {
                            p: {
                                "status": c.status,
                                "text": c.text,
                                "note": page.notes[c.note - 1] if c.note else None,
                            }
                            for p, c in zip(m.promises, r.cells, strict=True)
                        },
                    }
                    for r in m.rows
                ],
            }
            for m in page.matrices
        ],
        "findings": [
            {"kind": kind, "total": total, "first": messages}
            for kind, total, messages in page.findings
        ],
        "failures_without_findings": page.other_failures,
        "not_covered": page.not_covered,
        "notes": page.notes,
        "latency": {
            "budget_s": page.latency_budget,
            "sections": [
                {"dataflow": f.dataflow, "index": f.index, "section": f.section,
                 "entities": f.count, "p50_s": f.p50, "p95_s": f.p95, "max_s": f.max,
                 "slowest": [{"entity": name, "seconds": value} for name, value in f.slowest]}
                for f in page.latency
            ],
        },
        "run": dict(page.metadata),
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def write_signoff(results: SignoffInput, out_dir: Path) -> Verdict:
    """Write signoff.md, signoff.html and signoff.json into out_dir; return the verdict."""
    page = build(results, results.revision or git_revision())
    out_dir.mkdir(parents=True, exist_ok=True)
    markdown = out_dir / "signoff.md"
    page_html = out_dir / "signoff.html"
    page_json = out_dir / "signoff.json"
    markdown.write_text(render_markdown(page), encoding="utf-8")
    page_html.write_text(render_html(page), encoding="utf-8")
    page_json.write_text(render_json(page), encoding="utf-8")
    return Verdict(
        go=page.go,
        label=page.verdict,
        headline=page.headline,
        broken=page.broken,
        broken_sections=page.broken_sections,
        unjudged=page.unjudged,
        markdown=markdown,
        html=page_html,
        json_path=page_json,
        latency=page.latency,
    )
