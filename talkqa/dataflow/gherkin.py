"""Checklist -> Gherkin, and the drift between a checklist and its feature files.

The feature files are generated, never written by hand: a checklist row that has no
scenario row is a promise nobody tests, and a scenario row whose checklist row is gone
tests a promise nobody made. ``generate`` is pure and deterministic (regenerating an
unchanged checklist gives byte-identical files), so ``drift`` can compare what is on disk
with what the checklist says, row by row.

Steps stay generic: a scenario names its section by position in the Background, and the
step definitions read everything else from the spec. The names in step text are there for
the reader; the steps verify them against the spec rather than trusting them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from talkqa.dataflow.spec import DataflowSpec, Section, SectionKind
from talkqa.promises import FeatureTag, PromiseId, ScenarioPlan, plans_of, promise
from talkqa.promises.base import section_names, system_name
from talkqa.promises.plan import Action, Side
from talkqa.promises.values import TABLE_HEADER, type_text
from talkqa.samples import forbidden_here, link_wording
from talkqa.systems.catalog import bind


@dataclass(frozen=True)
class Drift:
    """One difference between a checklist and its feature files."""

    kind: str  # missing-section | stale-section | missing-row | stale-row | changed-row | outdated
    file: str  # the feature file (relative name) it concerns
    section_index: int | None
    detail: str

    @property
    def message(self) -> str:
        where = self.file + (f" (section {self.section_index})" if self.section_index else "")
        return f"{where}: {self.kind}: {self.detail}"


def slug(text: str) -> str:
    """'Chargebee Customer to Invoiced Customers (human data)' -> 'chargebee-customer-to-...'."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


def doc_stem(doc_path: str) -> str:
    """The folder name of a checklist's features: its file stem."""
    return slug(PurePosixPath(doc_path.replace("\\", "/")).stem)


def feature_name(position: int, section: Section) -> str:
    """File name of a section's feature; the position keeps repeated headings apart."""
    return f"{position:02d}-{slug(section.heading)}.feature"


def _api(system: str) -> str:
    """ "the <system> API", also for an unnamed system (which already has its article)."""
    return f"{system}'s API" if system.startswith("the unnamed ") else f"the {system} API"


def _givens(spec: DataflowSpec, section: Section, plan: ScenarioPlan) -> list[str]:
    """A plan's Given lines: its source entities, and the links made before the sync."""
    src, tgt = section_names(section)
    lines = [
        f"Given {plan.count} {src} entities created through {_api(system_name(section, True))}"
    ]
    if plan.link_first:
        lines.append(f"And each of them has an existing {tgt} {link_wording(section)}")
    by_index = {s.index: s for s in spec.sections}
    for index in plan.referenced_links:
        other = by_index[index]
        ref_src, ref_tgt = section_names(other)
        lines.append(
            f"And each {ref_src} they reference has an existing {ref_tgt} {link_wording(other)}"
        )
    if plan.runs_before:
        lines.append("And the system under test has run")
    return lines


def _whens(section: Section, plan: ScenarioPlan) -> list[str]:
    """A plan's When lines: what changes, then the run of the system under test."""
    again = "And the system under test runs again"
    if plan.action is Action.RUN:
        return ["When the system under test runs"]
    if plan.action is Action.RERUN:
        return ["When the system under test runs again"]
    if plan.action is Action.EDIT:
        assert plan.edit is not None
        side = plan.edit.side
        system = system_name(section, side is Side.SOURCE)
        if plan.edit.path is None:
            return [f"When each linked {side} entity is edited through {_api(system)}", again]
        return [
            f"When {plan.edit.path} of each linked {side} entity is edited through the "
            f"{system} API",
            again,
        ]
    if plan.action is Action.CONFLICT:
        assert plan.conflict is not None
        first = plan.conflict.first
        one = system_name(section, first is Side.SOURCE)
        two = system_name(section, first is not Side.SOURCE)
        return [
            f"When {plan.conflict.prop.source_path} of each linked pair is edited in {one} "
            f"and then in {two}",
            again,
        ]
    edit = plan.referenced_edit
    assert edit is not None
    system = edit.system[:1].upper() + edit.system[1:]
    return [
        f"When {edit.path} of each referenced {system} {edit.datatype} is edited through the "
        f"{system} API",
        again,
    ]


def render_plan(spec: DataflowSpec, section: Section, plan: ScenarioPlan) -> list[str]:
    """One scenario, as Gherkin: every word comes from the plan (steps act on the plan)."""
    body = [
        *_givens(spec, section, plan),
        *_whens(section, plan),
        *promise(plan.promise).then_lines(spec, section, plan),
    ]
    return [
        "",
        f"  @{plan.promise} @vcr",
        f"  Scenario: {plan.title}",
        f"    Promise: {plan.sentence}",
        "",
        *("    " + line for line in body),
    ]


def _vendor_limits(section: Section) -> list[str]:
    """The feature's description of what the vendors forbid, so nobody is failed for it."""
    lines: list[str] = []
    for side in ("source", "target"):
        ref = section.source if side == "source" else section.target
        locked = forbidden_here(section, side)
        if locked:
            name = " ".join(f"{ref.system} {ref.datatype}".split())
            lines.append(
                f"  Vendor limit: {' '.join(ref.system.split())} does not let a {name} change "
                f"{', '.join(locked)}: an edit of it is not expected to propagate."
            )
    return lines


def render_section(spec: DataflowSpec, section: Section, doc_path: str) -> str:
    """One feature: the registry's plans of the section, as scenarios over one Background."""
    feature_tags = [FeatureTag.DATAFLOW]
    if section.existence_only:
        feature_tags.append(FeatureTag.EXISTENCE_ONLY)
    if bind(section.source) is None or bind(section.target) is None:
        feature_tags.append(FeatureTag.UNBOUND)
    opening = promise(
        PromiseId.LINK_FIRST if section.kind is SectionKind.LINK_FIRST else PromiseId.EXISTS
    )
    out: list[str] = [
        f"# Generated by talkqa from {doc_path}: do not edit, regenerate with",
        f"#   talkqa features generate {doc_path} --out features/",
        " ".join(f"@{tag}" for tag in feature_tags),
        f"Feature: {' '.join(section.heading.split())}",
        f"  Promise: {opening.sentence(section)}",
        "",
        f"  Checklist {doc_path}, section {section.index} (line {section.line}).",
    ]
    if section.existence_only:
        out.append(
            "  The property table is empty: this section promises existence and linking only."
        )
    out += _vendor_limits(section)
    out += [
        "",
        "  Background:",
        f'    Given the checklist "{doc_path}" section {section.index}',
    ]
    for plan in plans_of(spec, section):
        out += render_plan(spec, section, plan)
    return "\n".join(out) + "\n"


def generate(spec: DataflowSpec, doc_path: str) -> dict[str, str]:
    """Feature file name (``<doc-stem>/<nn>-<heading>.feature``) -> feature text, per section."""
    doc = doc_path.replace("\\", "/")
    stem = doc_stem(doc)
    return {
        f"{stem}/{feature_name(position, section)}": render_section(spec, section, doc)
        for position, section in enumerate(spec.sections, start=1)
    }


# --- drift ------------------------------------------------------------------------------------

_BACKGROUND = re.compile(r'^\s*Given the checklist "(?P<doc>[^"]*)" section (?P<index>\d+)\s*$')


@dataclass(frozen=True)
class _FeatureRows:
    section_index: int | None
    rows: frozenset[tuple[str, str, str]]  # (source_path, target_path, data_type)


def _split_cells(line: str) -> list[str]:
    body = line.strip()[1:-1]
    cells = re.split(r"(?<!\\)\|", body)
    return [c.strip().replace("\\|", "|").replace("\\\\", "\\") for c in cells]


def read_feature_rows(text: str) -> _FeatureRows:
    """The section index and the property rows a feature file tests (tables with our header)."""
    index: int | None = None
    rows: set[tuple[str, str, str]] = set()
    header: list[str] | None = None
    for line in text.splitlines():
        match = _BACKGROUND.match(line)
        if match:
            index = int(match["index"])
            continue
        stripped = line.strip()
        if not (stripped.startswith("|") and stripped.endswith("|")):
            header = None
            continue
        cells = _split_cells(stripped)
        if header is None:
            header = cells
            continue
        if header[:3] == list(TABLE_HEADER) and len(cells) >= 3:
            rows.add((cells[0], cells[1], cells[2]))
    return _FeatureRows(index, frozenset(rows))


def _features_root(features_dir: Path, stem: str) -> Path:
    nested = features_dir / stem
    return nested if nested.is_dir() else features_dir


def _row_drifts(
    name: str, index: int, want: Mapping[tuple[str, str], str], have: Mapping[tuple[str, str], str]
) -> list[Drift]:
    """Checklist rows (``want``, pair -> type) against a feature's rows (``have``)."""
    found: list[Drift] = []
    for (source_path, target_path), data_type in want.items():
        pair = f"{source_path} -> {target_path}"
        if (source_path, target_path) not in have:
            found.append(
                Drift("missing-row", name, index, f"{pair} ({data_type}) has no scenario row")
            )
        elif (written := have[(source_path, target_path)]) != data_type:
            detail = f"{pair} is {data_type} in the checklist, {written} in the feature"
            found.append(Drift("changed-row", name, index, detail))
    for (source_path, target_path), data_type in have.items():
        if (source_path, target_path) not in want:
            detail = f"{source_path} -> {target_path} ({data_type}) is not in the checklist"
            found.append(Drift("stale-row", name, index, detail))
    return found


def drift(spec: DataflowSpec, features_dir: Path | str, doc_path: str | None = None) -> list[Drift]:
    """Every checklist row without a scenario row, and every scenario row without a checklist row.

    ``doc_path`` is the checklist path as written in the Background (defaults to the spec's
    file); it only matters for the catch-all "outdated" comparison of whole files.
    """
    doc = (doc_path or spec.file).replace("\\", "/")
    stem = doc_stem(doc)
    root = _features_root(Path(features_dir), stem)
    expected = {
        name.split("/", 1)[1]: placed(text, features_dir)
        for name, text in generate(spec, doc).items()
    }
    on_disk = {p.name: p.read_text(encoding="utf-8") for p in sorted(root.glob("*.feature"))}
    by_index = {read_feature_rows(text).section_index: name for name, text in on_disk.items()}
    found: list[Drift] = []
    seen: set[str] = set()
    for position, section in enumerate(spec.sections, start=1):
        name = feature_name(position, section)
        disk_name = name if name in on_disk else by_index.get(section.index)
        if disk_name is None:
            found.append(
                Drift(
                    "missing-section",
                    name,
                    section.index,
                    f"no feature for '{section.heading}' (line {section.line})",
                )
            )
            continue
        seen.add(disk_name)
        text = on_disk[disk_name]
        have = {(r[0], r[1]): r[2] for r in read_feature_rows(text).rows}
        want = {(p.source_path, p.target_path): type_text(p.data_type) for p in section.properties}
        rows = _row_drifts(disk_name, section.index, want, have)
        found.extend(rows)
        if not rows and text != expected[name]:
            found.append(
                Drift(
                    "outdated",
                    disk_name,
                    section.index,
                    "differs from the generated text (regenerate it)",
                )
            )
    for name in sorted(set(on_disk) - seen):
        index = read_feature_rows(on_disk[name]).section_index
        found.append(Drift("stale-section", name, index, "its checklist section is gone"))
    return found


_REGENERATE = re.compile(r"^(?P<head>#   talkqa features generate (?P<doc>.+) --out )features/$")


def regenerate_out(doc_path: str, out_dir: Path | str) -> str:
    """The ``--out`` that regenerates into ``out_dir``, run from where ``doc_path`` is relative to.

    A checklist named relative to the folder holding ``out_dir`` (the project root) keeps the
    short ``<out-name>/``; one named relative to the working directory (``out_dir`` lies
    elsewhere) gets ``out_dir`` as seen from there; an absolute one an absolute ``out_dir``.
    """
    out = Path(out_dir).resolve()
    doc = PurePosixPath(doc_path)
    if not doc.is_absolute() and (out.parent / doc).is_file():
        return f"{out.name}/"
    here = Path.cwd().resolve()
    if not doc.is_absolute() and out.is_relative_to(here) and out != here:
        return f"{out.relative_to(here).as_posix()}/"
    return f"{out.as_posix()}/"


def placed(text: str, out_dir: Path | str) -> str:
    """A generated feature as written under ``out_dir``: its header names that folder.

    ``generate`` does not know where its text goes, so it writes ``--out features/``; the
    writer (and the drift check, which compares against what the writer would write) fix it.
    """
    head, sep, rest = text.partition("\n")
    second, sep2, tail = rest.partition("\n")
    found = _REGENERATE.match(second)
    if found is None:
        return text
    fixed = found["head"] + regenerate_out(found["doc"], out_dir)
    return head + sep + fixed + sep2 + tail


def write_features(files: Mapping[str, str], out_dir: Path | str) -> list[Path]:
    """Write generated files under ``out_dir``, removing stale features of the same checklist."""
    out = Path(out_dir)
    files = {name: placed(text, out) for name, text in files.items()}
    written: list[Path] = []
    stems = {name.split("/", 1)[0] for name in files}
    for stem in stems:
        folder = out / stem
        if folder.is_dir():
            for old in folder.glob("*.feature"):
                if f"{stem}/{old.name}" not in files:
                    old.unlink()
    for name, text in sorted(files.items()):
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
