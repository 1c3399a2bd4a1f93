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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from talkqa.dataflow.spec import DataflowSpec, DatatypeRef, PropertyMap, Section, SectionKind
from talkqa.samples import (
    conflict_property,
    forbidden_here,
    link_wording,
    not_carried_edits,
    plan_edit,
    rename_edit,
)
from talkqa.systems.catalog import Binding, bind, binding_of

# Every tag the generator writes; steps/conftest.py registers them as pytest markers.
PROMISES: tuple[str, ...] = (
    "exists",
    "properties",
    "references",
    "edits",
    "idempotence",
    "merge",
)
TAGS: Mapping[str, str] = {
    "dataflow": "a feature generated from a dataflow checklist",
    "exists": "promise: every source has exactly one linked target",
    "properties": "promise: mapped properties are equal under their declared types",
    "references": "promise: reference fields point at the linked target of the referenced source",
    "edits": "promise: an edit on either side reaches the other side",
    "idempotence": "promise: a second run changes nothing",
    "merge": "promise: a source whose merge property matches an existing target links to it",
    "conflict": "both sides edited since the last sync: the newest edit wins (ties: the source)",
    "vendor_limit": "an edit a vendor's API cannot carry over: expected not to propagate",
    "existence_only": "the section's property table is empty: existence and linking only",
    "unbound": "talk-qa has no connector for a datatype of this section",
}

SAMPLE_COUNT = 3  # entities per scenario: enough to see pairing mistakes, few enough to replay fast
EDIT_SAMPLE_COUNT = 2

_TABLE_HEADER = ("source_path", "target_path", "data_type")
_REF_HEADER = (*_TABLE_HEADER, "references")


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


def is_reference(binding: Binding | None, prop: PropertyMap) -> bool:
    """Whether a property row maps a reference field (checked by the references promise)."""
    return binding is not None and prop.source_path in binding.references


def split_rows(section: Section) -> tuple[list[PropertyMap], list[PropertyMap]]:
    """(plain property rows, reference rows) of a section, in checklist order."""
    binding = bind(section.source)
    plain = [p for p in section.properties if not is_reference(binding, p)]
    refs = [p for p in section.properties if is_reference(binding, p)]
    return plain, refs


def sentence_for(section: Section, promise: str) -> str:
    """The checklist sentence a promise tests (the Allure story), verbatim when present."""
    prefixes = {
        "exists": ("Every ", "Before any", "When "),
        "properties": ("The following properties",),
        "references": ("The following properties",),
        "edits": ("Once a link",),
        "idempotence": ("Once a link",),
        "merge": ("If a matching",),
    }[promise]
    for sentence in section.sentences:
        if sentence.startswith(prefixes) or (
            promise == "merge" and " will merge with " in sentence
        ):
            return " ".join(sentence.split())
    src, tgt = _names(section)
    fallback = {
        "exists": f"Every {src} will be synchronized with a {tgt}.",
        "properties": f"The following properties are synchronized between a {src} and a {tgt}.",
        "references": f"The following properties are synchronized between a {src} and a {tgt}.",
        "edits": f"Once a link between a {src} and a {tgt} is established, it will keep in sync.",
        "idempotence": f"Once a link between a {src} and a {tgt} is established, "
        "it will keep in sync.",
        "merge": f"A {src} will merge with a {tgt} if one of the following property "
        "combinations match:",
    }
    return fallback[promise]


def _names(section: Section) -> tuple[str, str]:
    src = " ".join(f"{section.source.system} {section.source.datatype}".split())
    tgt = " ".join(f"{section.target.system} {section.target.datatype}".split())
    return src, tgt


def _type_text(data_type: str | None) -> str:
    return data_type if data_type is not None else "N/A"


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _table(header: tuple[str, ...], rows: Iterable[tuple[str, ...]], indent: str) -> list[str]:
    all_rows = [header, *rows]
    widths = [max(len(_cell(r[i])) for r in all_rows) for i in range(len(header))]
    return [
        indent + "| " + " | ".join(_cell(c).ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
        for r in all_rows
    ]


def _row(prop: PropertyMap) -> tuple[str, str, str]:
    return (prop.source_path, prop.target_path, _type_text(prop.data_type))


def _ref_row(spec: DataflowSpec, prop: PropertyMap, binding: Binding) -> tuple[str, str, str, str]:
    key = binding.references[prop.source_path]
    for section in spec.sections:
        source = bind(section.source)
        if source is not None and source.key == key:
            return (
                *_row(prop),
                " ".join(f"{section.source.system} {section.source.datatype}".split()),
            )
    return (*_row(prop), f"{key[0]} {key[1]}")


def _givens(
    spec: DataflowSpec, section: Section, count: int, *, link_first: bool = True
) -> list[str]:
    """The Given steps of a scenario: its source entities, and the links made before the sync
    when a link-first section needs them (the section's own, or a referenced section's)."""
    src, _tgt = _names(section)
    lines = [f"    Given {count} {src} entities created through {_api(_system(section.source))}"]
    if section.kind is SectionKind.LINK_FIRST and link_first and bind(section.target) is not None:
        lines.append(
            f"    And each of them has an existing {_names(section)[1]} {link_wording(section)}"
        )
    source = bind(section.source)
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
                ref_src, ref_tgt = _names(other)
                lines.append(
                    f"    And each {ref_src} they reference has an existing {ref_tgt} "
                    f"{link_wording(other)}"
                )
                break
    return lines


def _exists_scenario(spec: DataflowSpec, section: Section, fixed: str) -> list[str]:
    """The opening sentence's promise, worded by the section's kind."""
    src, tgt = _names(section)
    promise = f"    Promise: {sentence_for(section, 'exists')}"
    if section.kind is SectionKind.LINK_FIRST:
        return [
            f"  Scenario: No {tgt} is created for a {src} that was not linked first",
            promise,
            "",
            *_givens(spec, section, SAMPLE_COUNT, link_first=False),
            "    When the system under test runs",
            f"    Then no {tgt} is created for an unlinked {src}",
        ]
    if section.kind is SectionKind.CONDITIONAL:
        return [
            f"  Scenario: A {src} has at most one linked {tgt}",
            promise,
            "",
            *_givens(spec, section, SAMPLE_COUNT),
            "    When the system under test runs",
            f"    Then every {src} has at most one linked {tgt}{fixed}",
        ]
    return [
        f"  Scenario: Every {src} has exactly one linked {tgt}",
        promise,
        "",
        *_givens(spec, section, SAMPLE_COUNT),
        "    When the system under test runs",
        f"    Then every {src} has exactly one linked {tgt}{fixed}",
    ]


def _merge_scenario(spec: DataflowSpec, section: Section) -> list[str]:
    """A source whose merge property equals an existing target's links to it: no duplicate."""
    src, tgt = _names(section)
    rule = section.merge_rules[0]
    return [
        "",
        "  @merge @vcr",
        f"  Scenario: A {src} whose {rule.source_path} matches an existing {tgt} is merged "
        "with it, not duplicated",
        f"    Promise: {sentence_for(section, 'merge')}",
        "",
        f"    Given {EDIT_SAMPLE_COUNT} {src} entities created through "
        f"{_api(_system(section.source))}",
        f"    And each of them has an existing {tgt} {link_wording(section)}",
        *_givens(spec, section, EDIT_SAMPLE_COUNT)[1 + (section.kind is SectionKind.LINK_FIRST) :],
        "    When the system under test runs",
        f"    Then each {src} is linked to its existing {tgt} and to no other",
    ]


def _systems(section: Section) -> tuple[str, str]:
    return _system(section.source), _system(section.target)


def _system(side: DatatypeRef) -> str:
    """A side's system as scenario text; a blank (unbound) name reads as the unnamed system of
    its datatype, so titles do not end in "reaches " (such sections skip as not covered)."""
    name = " ".join(side.system.split())
    return name or " ".join(f"the unnamed {side.datatype} system".split())


def _api(system: str) -> str:
    """ "the <system> API", also for an unnamed system (which already has its article)."""
    return f"{system}'s API" if system.startswith("the unnamed ") else f"the {system} API"


def _edit_scenarios(spec: DataflowSpec, section: Section) -> list[str]:
    """Either-side edits, stated as what the vendors allow: carried over, not carried over
    (the other vendor forbids the change), or link survival only (nothing mapped can change)."""
    src, tgt = _names(section)
    src_system, tgt_system = _systems(section)
    promise = f"    Promise: {sentence_for(section, 'edits')}"
    bound = bind(section.source) is not None and bind(section.target) is not None
    out: list[str] = []
    for side, system, other in (
        ("source", src_system, tgt_system),
        ("target", tgt_system, src_system),
    ):
        entity = src if side == "source" else tgt
        givens = [
            *_givens(spec, section, EDIT_SAMPLE_COUNT),
            "    And the system under test has run",
        ]
        edit = plan_edit(section, side) if bound else None
        if edit is None:
            out += [
                "",
                "  @edits @vcr",
                f"  Scenario: An edit in {system} of a linked {entity} reaches {other}",
                promise,
                "",
                *givens,
                f"    When each linked {side} entity is edited through {_api(system)}",
                "    And the system under test runs again",
                f"    Then the edits reached {other} and every link still holds",
            ]
            continue
        if edit.mapped:
            title = f"An edit in {system} of {edit.path} on a linked {entity} reaches {other}"
            then = f"    Then the edits reached {other} and every link still holds"
        else:
            locked = forbidden_here(section, side)
            if not section.properties:
                why = "the checklist maps no property"
            elif locked:
                why = f"{system} forbids changing {', '.join(locked)}"
            else:
                why = f"talk-qa knows no mapped property {system} lets it edit"
            title = (
                f"An edit in {system} of the unmapped {edit.path} on a linked {entity} keeps its "
                f"link (link survival only: {why})"
            )
            then = f"    Then the edit stays in {system} and every link still holds"
        out += [
            "",
            "  @edits @vcr",
            f"  Scenario: {title}",
            promise,
            "",
            *givens,
            f"    When {edit.path} of each linked {side} entity is edited through the {system} API",
            "    And the system under test runs again",
            then,
        ]
        for prop, blocked in not_carried_edits(section, side):
            there = prop.target_path if side == "source" else prop.source_path
            out += [
                "",
                "  @edits @vendor_limit @vcr",
                f"  Scenario: An edit in {system} of {blocked.path} on a linked {entity} is not "
                f"carried over, as {other} forbids changing {there}",
                promise,
                "",
                *givens,
                f"    When {blocked.path} of each linked {side} entity is edited through the "
                f"{system} API",
                "    And the system under test runs again",
                f"    Then {other} keeps {there} as it was and every link still holds",
            ]
    conflict = conflict_property(section) if bound else None
    if conflict is not None:
        for first, second in ((src_system, tgt_system), (tgt_system, src_system)):
            out += [
                "",
                "  @edits @conflict @vcr",
                f"  Scenario: {conflict.source_path} edited in {first} and then in {second}: the "
                f"newest edit ({second}) wins on both sides",
                promise,
                "",
                *_givens(spec, section, EDIT_SAMPLE_COUNT),
                "    And the system under test has run",
                f"    When {conflict.source_path} of each linked pair is edited in {first} "
                f"and then in {second}",
                "    And the system under test runs again",
                f"    Then both systems hold the newest edit of each pair, {src_system}'s on a tie",
                "    And the system under test reported each conflict",
            ]
    return out


def _reference_edit_scenario(
    spec: DataflowSpec, section: Section, refs: list[PropertyMap], source_binding: Binding
) -> list[str]:
    """A referenced entity edited after its dependants exist: every reference still holds."""
    _src, tgt = _names(section)
    out: list[str] = []
    for ref_key in dict.fromkeys(
        source_binding.references[p.source_path]
        for p in refs
        if p.source_path in source_binding.references
    ):
        referenced = binding_of(ref_key)
        edit = rename_edit(referenced)
        if edit is None:
            continue
        name = f"{_display(referenced.system)} {referenced.datatype}"
        out += [
            "",
            "  @references @vcr",
            f"  Scenario: The references of each linked {tgt} still point at linked targets after "
            f"each referenced {name} is edited",
            f"    Promise: {sentence_for(section, 'edits')}",
            "",
            *_givens(spec, section, EDIT_SAMPLE_COUNT),
            "    And the system under test has run",
            f"    When {edit.path} of each referenced {name} is edited through the "
            f"{_display(referenced.system)} API",
            "    And the system under test runs again",
            "    Then every reference points at the target linked to the referenced source:",
            *_table(_REF_HEADER, (_ref_row(spec, p, source_binding) for p in refs), "      "),
        ]
    return out


def _display(system: str) -> str:
    return system[:1].upper() + system[1:]


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
    """One feature: every promise the section makes, as scenarios over the same Background."""
    src, tgt = _names(section)
    source_binding = bind(section.source)
    target_binding = bind(section.target)
    plain, refs = split_rows(section)
    feature_tags = ["@dataflow"]
    if section.existence_only:
        feature_tags.append("@existence_only")
    if source_binding is None or target_binding is None:
        feature_tags.append("@unbound")
    src_system, tgt_system = _systems(section)
    fixed = ""
    if target_binding is not None and target_binding.fixed:
        fixed = " with " + " and ".join(f"{k} {v}" for k, v in sorted(target_binding.fixed.items()))

    out: list[str] = [
        f"# Generated by talkqa from {doc_path}: do not edit, regenerate with",
        f"#   talkqa features generate {doc_path} --out features/",
        " ".join(feature_tags),
        f"Feature: {' '.join(section.heading.split())}",
        f"  Promise: {sentence_for(section, 'exists')}",
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
        "",
        "  @exists @vcr",
        *_exists_scenario(spec, section, fixed),
    ]
    if section.merge_rules:
        out += _merge_scenario(spec, section)
    if plain:
        out += [
            "",
            "  @properties @vcr",
            f"  Scenario: Each linked {tgt} has the mapped properties of its {src}",
            f"    Promise: {sentence_for(section, 'properties')}",
            "",
            *_givens(spec, section, SAMPLE_COUNT),
            "    When the system under test runs",
            "    Then every linked pair has these properties equal under their declared types:",
            *_table(_TABLE_HEADER, (_row(p) for p in plain), "      "),
        ]
    if refs and source_binding is not None:
        out += [
            "",
            "  @references @vcr",
            f"  Scenario: The references of each linked {tgt} point at linked targets",
            f"    Promise: {sentence_for(section, 'references')}",
            "",
            *_givens(spec, section, SAMPLE_COUNT),
            "    When the system under test runs",
            "    Then every reference points at the target linked to the referenced source:",
            *_table(_REF_HEADER, (_ref_row(spec, p, source_binding) for p in refs), "      "),
        ]
        if target_binding is not None:
            out += _reference_edit_scenario(spec, section, refs, source_binding)
    out += _edit_scenarios(spec, section)
    out += [
        "",
        "  @idempotence @vcr",
        f"  Scenario: A second run changes nothing in {src_system} or {tgt_system}",
        f"    Promise: {sentence_for(section, 'idempotence')}",
        "",
        *_givens(spec, section, EDIT_SAMPLE_COUNT),
        "    And the system under test has run",
        "    When the system under test runs again",
        f"    Then no entity changed in {src_system} or {tgt_system}",
    ]
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
        if header[:3] == list(_TABLE_HEADER) and len(cells) >= 3:
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
        want = {(p.source_path, p.target_path): _type_text(p.data_type) for p in section.properties}
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


GENERATED_MARK = "# Generated by talkqa from "


def is_generated(path: Path) -> bool:
    """Whether a feature file carries the generator's header (so talk-qa wrote it)."""
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            return handle.readline().startswith(GENERATED_MARK)
    except OSError:
        return False


def write_features(files: Mapping[str, str], out_dir: Path | str) -> list[Path]:
    """Write generated files under ``out_dir``, removing stale features of the same checklist.

    Only a stale file with the generator's header is removed: a hand-written feature a
    user keeps next to the generated ones is theirs, whatever its name.
    """
    out = Path(out_dir)
    files = {name: placed(text, out) for name, text in files.items()}
    written: list[Path] = []
    stems = {name.split("/", 1)[0] for name in files}
    for stem in stems:
        folder = out / stem
        if folder.is_dir():
            for old in folder.glob("*.feature"):
                if f"{stem}/{old.name}" not in files and is_generated(old):
                    old.unlink()
    for name, text in sorted(files.items()):
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
