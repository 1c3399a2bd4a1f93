"""Read a Sesam Talk "Dataflow" checklist (reStructuredText) into a `DataflowSpec`.

This module is the anti-corruption layer between docutils' tree and the project: nothing
downstream sees a docutils node. docutils gives the skeleton (title, sections, paragraphs,
where each list-table starts and ends) and the line numbers. The rows of a list-table are
read from the source lines: docutils' own list-table parses every cell as a nested document,
which was nine tenths of the time of a parse, throws away what we need (a trailing TAB), and
rejects a table with one broken row, which we must read anyway.

Problems become `ParseIssue`s so one bad row never hides the rest of the document; only
input that is not a checklist at all raises `UserError` (one line: file, line, what to do).
"""

from __future__ import annotations

import copy
import functools
import io
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from optparse import Values
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.frontend import get_default_settings
from docutils.parsers.rst import Directive, Parser, roles, states
from docutils.statemachine import string2lines
from docutils.utils import new_document

from talkqa.dataflow.spec import (
    DataflowSpec,
    DatatypeRef,
    MergeRule,
    ParseIssue,
    PropertyMap,
    Section,
    SectionKind,
)
from talkqa.errors import UserError

__all__ = ["KNOWN_SYSTEMS", "KNOWN_TYPES", "display_name", "load", "parse_text"]

#: File slug -> display name of the Sesam Talk systems (from the corpus titles). Binding a
#: blank by slug needs this because slugs lose spaces and case ("powerofficego").
KNOWN_SYSTEMS: dict[str, str] = {
    "asana": "Asana", "businesscentral": "Business Central", "businessnxt": "Business Nxt",
    "chargebee": "Chargebee", "crmoffice": "CRMOffice", "customcrm": "Custom CRM",
    "customerp": "Custom ERP", "customhrm": "Custom HRM", "custompms": "Custom PMS",
    "customwebshop": "Custom Webshop", "difi": "Difi", "exact": "Exact Online",
    "freshteam": "Freshteam", "hubspot": "HubSpot", "invoiced": "Invoiced", "keap": "Keap",
    "membercare": "MemberCare", "powerofficego": "PowerOffice GO", "salesforce": "Salesforce",
    "shopify": "Shopify", "squarespace": "Squarespace", "ssb": "Ssb",
    "superoffice": "SuperOffice", "tidsbanken": "Tidsbanken", "tilores": "Tilores",
    "trello": "Trello", "tripletex": "Tripletex", "unieconomy": "Unieconomy", "wave": "Wave",
    "webcrm": "WebCRM", "wikidata": "Wikidata", "wix": "Wix.com", "woocommerce": "WooCommerce",
    "youtrack": "YouTrack", "zendesk": "Zendesk", "zohocrm": "ZohoCRM",
}  # fmt: skip

#: Declared types a checklist may name (quoted in the table: "string").
KNOWN_TYPES = frozenset({"string", "integer", "float", "boolean", "decimal"})

_TITLE = re.compile(r"^(?:(?P<src>.*?) )?to (?P<tgt>.*?) ?Dataflow$")
_GENERATED = re.compile(r"^Generated:\s*(?P<value>.*)$")
_EVERY = re.compile(r"^Every (?P<s>.+?) will be synchronized with an? (?P<t>.+?)\.?$")
_LINK_FIRST = re.compile(r"^Before any synchronization can take place, a link between")
_WHEN = re.compile(r"^(?:When )?(?P<cond>.+?),\s+it\s+will be synchronized with an? (?P<t>.+?)\.?$")
_MERGES_EXISTING = re.compile(r"^If a matching .+? already exists, .+? will be merged")
_MERGE_TABLE = re.compile(r"will merge with .+? property combinations? match")
_PROPERTY_TABLE = re.compile(r"^The following properties are synchronized between")
_KNOWN_SENTENCE = re.compile(
    r"^(Every |Before any synchronization |When |If a matching |If no matching |A new |"
    r"Once a link between |The following properties |An? .+? will merge with )"
)
_QUALIFIED_PATH = re.compile(r"^(?P<path>\S+)\s+(?P<qualifier>\(.*\))$")
_HEADER_PROPERTY = re.compile(r"propert(y|ies)$", re.IGNORECASE)
_HEADER_TYPE = re.compile(r"data\s*type$", re.IGNORECASE)
_IGNORED_DOCUTILS = ("Title underline too short",)
_SESAM_INTERNAL = "sesam-internal"


def load(path: str | Path, bind_blank: str | None = None) -> DataflowSpec:
    """Read a checklist file; `UserError` (one line) when it cannot be read at all."""
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise UserError(f"{name}: no such file; check the path") from None
    except IsADirectoryError:
        raise UserError(
            f"{name}: is a folder; pass one .rst file (or use `talkqa corpus`)"
        ) from None
    except OSError as exc:
        raise UserError(f"{name}: cannot read ({exc.strerror}); check permissions") from None
    return parse_text(_decode(data, name), name, bind_blank)


def parse_text(text: str, file: str, bind_blank: str | None = None) -> DataflowSpec:
    """Parse checklist text; `file` names it in issues and binds a blank system by its slug."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").removeprefix("\ufeff")
    return _Reader(file, text.split("\n"), bind_blank).read(_doctree(text, file))


def display_name(name: str) -> str:
    """A system's display name from a slug or a user's spelling ("invoiced" -> "Invoiced")."""
    known = KNOWN_SYSTEMS.get(_key(name))
    if known is not None:
        return known
    return name[:1].upper() + name[1:] if name.islower() else name


def _decode(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise UserError(
            f"{name}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); save it as UTF-8"
        ) from None


def _doctree(text: str, file: str) -> nodes.document:
    """Parse with docutils quietly: its messages stay in the tree, we report what matters."""
    document = new_document(file, copy.copy(_settings()))
    try:
        _Parser().parse(text, document)
    except Exception as exc:  # docutils is foreign code: never let it show a traceback
        raise UserError(f"{file}:1: docutils could not read the document ({exc})") from None
    return document


@functools.cache
def _settings() -> Values:
    """Building docutils' settings costs more than parsing a checklist: do it once."""
    settings = get_default_settings(Parser)
    settings.report_level = 5
    settings.halt_level = 5
    settings.warning_stream = io.StringIO()  # never written to at report level 5
    settings.file_insertion_enabled = False  # a checklist must never read other files
    settings.raw_enabled = False
    return settings


class _Pool(list[Any]):
    """Reusable docutils state machines: building one (15 states' transition tables) cost
    more than running it over a checklist.

    A machine is returned after its run; it then forgets that document's observer, which
    docutils attaches anew at every run (a kept one would pile up and be called per line).
    """

    def append(self, machine: Any) -> None:
        machine.observers.clear()
        super().append(machine)

    def take(self, make: Callable[[], Any]) -> Any:
        try:
            return self.pop()
        except IndexError:
            return make()


class _RawListTable(nodes.General, nodes.Element):
    """A list-table docutils did not parse: where it starts and where its block ends.

    docutils' own list-table parses every cell as a nested document (a fresh state machine
    per cell), which was ~90% of a checklist's parse time; its rows are read from the source
    lines instead, the same way a broken table always was.
    """


class _ListTable(Directive):
    """Stands in for `list-table`: keeps the block's extent, parses nothing inside it."""

    has_content = True  # no arguments, no option_spec: options stay content lines, unparsed

    def run(self) -> list[nodes.Node]:
        table = _RawListTable()
        table.line = self.lineno
        table["block_end"] = self.content.offset(-1) + 1 if self.content else self.lineno
        return [table]


_DIRECTIVES: dict[str, type[Directive]] = {"list-table": _ListTable}


def _private_states() -> tuple[type[states.RSTState], ...]:
    """docutils' RST states, seeing `_DIRECTIVES` first, without touching its registry.

    The state machine names states by class name, so each subclass keeps its base's name.
    Nested parses must use these classes too, and get their own pools of state machines so
    that none built from them can reach another docutils user.
    """
    list_machines: dict[str, _Pool] = {}  # by initial state
    docutils_directive: Any = states.Body.directive  # untyped in the stubs

    def init(self: states.RSTState, state_machine: Any, debug: bool = False) -> None:
        states.RSTState.__init__(self, state_machine, debug)
        self.nested_sm_kwargs = {"state_classes": _STATE_CLASSES, "initial_state": "Body"}

    def directive(self: Any, match: re.Match[str], **presets: Any) -> Any:
        own = _DIRECTIVES.get(match.group(1).lower())
        if own is None:
            return docutils_directive(self, match, **presets)
        return self.run_directive(own, match, match.group(1), presets)

    def nested_list_parse(
        self: Any,
        block: Any,
        input_offset: int,
        node: nodes.Element,
        initial_state: str,
        blank_finish: bool,
        blank_finish_state: str | None = None,
        extra_settings: dict[str, Any] | None = None,
        **others: Any,
    ) -> tuple[int, bool]:
        """docutils' own, but reusing machines: it built one per list and per directive."""
        if any(others.values()):  # a caller with its own machine: docutils knows best
            return states.RSTState.nested_list_parse(  # type: ignore[no-any-return]
                self, block, input_offset, node, initial_state, blank_finish,
                blank_finish_state, extra_settings or {}, **others,
            )  # fmt: skip
        pool = list_machines.setdefault(initial_state, _Pool())
        machine = pool.take(
            lambda: states.NestedStateMachine(_STATE_CLASSES, initial_state, self.debug)
        )
        machine.parent_state_machine = self.state_machine
        finish_state = machine.states[blank_finish_state or initial_state]
        finish_state.blank_finish = blank_finish
        for key, value in (extra_settings or {}).items():
            setattr(machine.states[initial_state], key, value)
        machine.run(block, input_offset, memo=self.memo, node=node, match_titles=False)
        blank_finish = finish_state.blank_finish
        offset = machine.abs_line_offset()
        machine.parent_state_machine = None
        pool.append(machine)
        return offset, blank_finish

    def explicit_list(self: Any, blank_finish: bool) -> None:
        """docutils' own, minus its nested machine when that would stop at its first line.

        After an explicit construct (our list-table) docutils runs a machine in the
        `Explicit` state, which ends at once on anything but another `..`/`__` construct.
        """
        lines, following = self.state_machine.input_lines, self.state_machine.line_offset + 1
        if following < len(lines) and _EXPLICIT_START.match(lines[following]):
            states.Body.explicit_list(self, blank_finish)
        elif not blank_finish:
            self.parent += self.unindent_warning("Explicit markup")

    explicit = copy.copy(states.Body.explicit)  # its constructs hold Body's functions
    explicit.constructs = [
        (directive if method is docutils_directive else method, pattern)
        for method, pattern in states.Body.explicit.constructs
    ]
    namespace: dict[str, Any] = {
        "__init__": init,
        "nested_sm_cache": _Pool(),  # docutils' nested_parse() pops and appends it
        "nested_list_parse": nested_list_parse,
    }
    body = {"directive": directive, "explicit": explicit, "explicit_list": explicit_list}
    return tuple(
        type(base.__name__, (base,), namespace | (body if issubclass(base, states.Body) else {}))
        for base in states.state_classes
    )


_STATE_CLASSES = _private_states()
_EXPLICIT_START = re.compile(r"(\.\.|__)( +|$)")  # Body's explicit_markup / anonymous
_TOP_MACHINES = _Pool()


def _plain_text(text: str, lineno: int) -> list[nodes.Text]:
    return [nodes.Text(text)]


class _Parser(Parser):
    """docutils' RST parser on our states, reusing its top-level state machine."""

    def parse(self, inputstring: str, document: nodes.document) -> None:
        """`Parser.parse`, step for step, with a machine from the pool."""
        self.setup_parse(inputstring, document)
        settings = document.settings
        lines = string2lines(inputstring, tab_width=settings.tab_width, convert_whitespace=True)
        for number, line in enumerate(lines, start=1):
            if len(line) > settings.line_length_limit:
                document.append(
                    document.reporter.error(f"Line {number} exceeds the line-length-limit.")
                )
                break
        else:
            machine = _TOP_MACHINES.take(lambda: states.RSTStateMachine(_STATE_CLASSES, "Body"))
            inliner = states.Inliner()
            # no standalone-URI search: a URI's node reads back as the text it was made of,
            # and searching every paragraph and title for one cost a tenth of the parse
            inliner.implicit_inline = _plain_text  # type: ignore[method-assign]
            machine.run(lines, document, inliner=inliner)
            _TOP_MACHINES.append(machine)  # not after an exception: it may be half-way
        # a `default-role` directive must not outlive its document
        vars(roles)["_roles"].pop("", None)
        self.finish_parse()


@functools.lru_cache(maxsize=4096)  # headings are split by trying every prefix
def _key(name: str) -> str:
    """Compare system names across display drift ("Powerofficego" ~ "PowerOffice GO")."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _norm(text: str) -> str:
    return " ".join(text.split())


def _first_line(node: nodes.Node) -> int | None:
    """docutils sets `line` on some nodes only: take the first one found inside."""
    if node.line:
        return node.line
    for child in node.findall(nodes.Element):
        if child.line:
            return child.line
    return None


@dataclass(frozen=True)
class _Cell:
    text: str
    line: int | None


@dataclass
class _Table:
    """A list-table, whichever way it was read: rows of cells, header first if any."""

    line: int
    header: list[_Cell] | None
    rows: list[list[_Cell]]
    last_line: int = 0


@dataclass
class _SectionDraft:
    heading: str
    line: int
    sentences: list[str] = field(default_factory=list)
    kind: SectionKind | None = None
    condition: str | None = None
    merges_existing: bool = False
    merge_rules: list[MergeRule] = field(default_factory=list)
    properties: list[PropertyMap] = field(default_factory=list)
    target_hint: str | None = None  # "<Tgt system>" from the "... Data Type" header cell


class _Reader:
    """One document's parse: collects sections and issues while walking docutils' tree."""

    def __init__(self, file: str, lines: list[str], bind_blank: str | None) -> None:
        self.file = file
        self.lines = lines
        self.bind_blank = bind_blank
        self.issues: list[ParseIssue] = []
        self.source = ""
        self.target = ""
        self.tables_read: list[tuple[int, int]] = []  # line spans we read from the source

    def issue(self, line: int | None, kind: str, message: str) -> None:
        self.issues.append(ParseIssue(file=self.file, line=line or 1, kind=kind, message=message))

    # -- document -------------------------------------------------------------------------

    def read(self, document: nodes.document) -> DataflowSpec:
        title_section = self._title_section(document)
        generated = self._generated(title_section)
        drafts: list[_SectionDraft] = []
        for section in document.findall(nodes.section):
            if section is title_section:
                continue
            draft = self._section(section)
            if draft is not None:
                drafts.append(draft)
        self._docutils_messages(document)
        sections = self._once([self._finish(index, draft) for index, draft in enumerate(drafts)])
        self.issues.sort(key=lambda issue: issue.line)
        return DataflowSpec(
            file=self.file,
            source=self.source,
            target=self.target,
            generated=generated,
            sections=tuple(sections),
            issues=tuple(self.issues),
        )

    def _once(self, sections: list[Section]) -> list[Section]:
        """Each promise once: a section that repeats an earlier one (the same datatypes, kind
        and condition, and no row or merge rule the earlier one lacks) promises nothing new,
        so it is left out with a note instead of being judged twice. Generated checklists
        repeat sections (the current Invoiced-to-Chargebee one lists a pair three times)."""
        kept: list[Section] = []
        for section in sections:
            earlier = next((k for k in kept if _repeats(section, k)), None)
            if earlier is None:
                kept.append(section)
                continue
            self.issue(
                section.line,
                "repeated-section",
                f"section {section.index} {_norm(section.heading)!r} repeats section "
                f"{earlier.index} (line {earlier.line}): its promises are judged once, there",
            )
        return kept

    def _title_section(self, document: nodes.document) -> nodes.section:
        first_title_line = 1
        for section in document.findall(nodes.section):
            title = section.next_node(nodes.title)
            if title is None:
                continue
            text = title.astext().strip()
            match = _TITLE.match(text)
            if match is not None:
                self._bind(match.group("src") or "", match.group("tgt") or "", title.line)
                return section
            if first_title_line == 1 and title.line:
                first_title_line = self._heading_line(title.line, text)
        raise UserError(
            f"{self.file}:{first_title_line}: not a Sesam Talk dataflow document "
            '(no "<A> to <B> Dataflow" title)'
        )

    def _bind(self, source: str, target: str, line: int | None) -> None:
        """Fill a blank system name from --bind-blank or the file slug, never by guessing."""
        source, target = source.strip(), target.strip()
        slugs = _slugs(self.file)
        blanks = [side for side, name in (("source", source), ("target", target)) if not name]
        for side in blanks:
            bound: str | None = None
            if self.bind_blank and len(blanks) == 1:
                bound = display_name(self.bind_blank)
            elif slugs is not None:
                own, other_slug, other = (
                    (slugs[0], slugs[1], target)
                    if side == "source"
                    else (slugs[1], slugs[0], source)
                )
                if not other or _same_system(other, other_slug):
                    bound = display_name(own)
            if bound is None:
                self.issue(
                    line,
                    "blank-system",
                    f"the {side} system name is blank and cannot be bound from the file name; "
                    "pass --bind-blank NAME or name the file <source>-<target>.rst",
                )
                bound = ""
            if side == "source":
                source = bound
            else:
                target = bound
        self.source, self.target = source, target

    def _generated(self, title_section: nodes.section) -> datetime | None:
        for paragraph in title_section.findall(nodes.paragraph):
            match = _GENERATED.match(paragraph.astext().strip())
            if match is None:
                continue
            try:
                return datetime.fromisoformat(match.group("value").strip())
            except ValueError:
                self.issue(
                    paragraph.line, "generated", f"unreadable timestamp {match.group('value')!r}"
                )
                return None
        return None

    def _docutils_messages(self, document: nodes.document) -> None:
        """docutils' own complaints that we did not already turn into a precise issue."""
        for message in document.findall(nodes.system_message):
            if message.get("level", 0) < 2:
                continue
            paragraph = message.next_node(nodes.paragraph)
            text = _norm(paragraph.astext()) if paragraph is not None else _norm(message.astext())
            line = message.get("line") or 0
            if text.startswith(_IGNORED_DOCUTILS) or any(
                first <= line <= last + 1 for first, last in self.tables_read
            ):
                continue  # noise, or about a table we already read and reported precisely
            self.issue(line, "rst", text)

    # -- sections -------------------------------------------------------------------------

    def _heading_line(self, title_line: int, text: str) -> int:
        """docutils puts a title on its underline; the heading text is usually just above."""
        for candidate in (title_line - 1, title_line, title_line - 2):
            if 1 <= candidate <= len(self.lines) and self.lines[candidate - 1].strip() == text:
                return candidate
        return max(title_line - 1, 1)

    def _section(self, section: nodes.section) -> _SectionDraft | None:
        title = section.next_node(nodes.title)
        heading = title.astext() if title is not None else ""
        line = self._heading_line(title.line or 1, heading.strip()) if title is not None else 1
        if heading.strip().rstrip(".").strip().lower() == "introduction":
            return None
        if " to " not in heading:
            self.issue(
                line, "heading", f"section {heading!r} is not '<source> to <target>'; skipped"
            )
            return None
        draft = _SectionDraft(heading=heading, line=line)
        context: str | None = None
        consumed_until = 0
        for child in section.children:
            if isinstance(child, (nodes.title, nodes.section)):
                continue
            child_line = _first_line(child) or 0
            if child_line and child_line <= consumed_until:
                continue  # a stray piece of a broken table we already read from the source
            if isinstance(child, nodes.paragraph):
                context = self._paragraph(draft, child) or context
            elif isinstance(child, _RawListTable):
                table = self._table_from_source(child.line or child_line)
                if table.last_line > child["block_end"]:
                    # a broken row ran past docutils' block: what docutils made of the rest
                    # is ours already, and so are its complaints about it
                    consumed_until = table.last_line
                    self.tables_read.append((table.line, table.last_line))
                self._take_table(draft, table, context)
                context = None
        return draft

    def _paragraph(self, draft: _SectionDraft, paragraph: nodes.paragraph) -> str | None:
        """Record a promise (one paragraph each); return the table context it announces."""
        text = _norm(paragraph.astext())
        if not text:
            return None
        draft.sentences.append(text)
        known = _KNOWN_SENTENCE.match(text) is not None
        if draft.kind is None:
            when = _WHEN.match(text)
            if _EVERY.match(text):
                draft.kind = SectionKind.EVERY
            elif _LINK_FIRST.match(text):
                draft.kind = SectionKind.LINK_FIRST
            elif when is not None:
                draft.kind = SectionKind.CONDITIONAL
                draft.condition = when.group("cond")
                if not text.startswith("When "):
                    known = True
                    self.issue(
                        paragraph.line,
                        "odd-condition",
                        "conditional sentence without 'When': "
                        f"condition read as {draft.condition!r}",
                    )
        if not known:
            self.issue(paragraph.line, "unknown-sentence", f"unrecognised sentence {text!r}")
        if _MERGES_EXISTING.match(text):
            draft.merges_existing = True
        if _MERGE_TABLE.search(text):
            return "merge"
        if _PROPERTY_TABLE.match(text):
            return "properties"
        return None

    def _finish(self, index: int, draft: _SectionDraft) -> Section:
        source, target = self._split_heading(draft)
        kind = draft.kind
        if kind is None:
            self.issue(
                draft.line,
                "kind",
                f"section {_norm(draft.heading)!r} has no 'Every ...'/'Before any ...'/'When ...' "
                "sentence; read as 'every'",
            )
            kind = SectionKind.EVERY
        return Section(
            index=index,
            heading=draft.heading,
            source=source,
            target=target,
            kind=kind,
            condition=draft.condition,
            merges_existing=draft.merges_existing,
            merge_rules=tuple(draft.merge_rules),
            properties=tuple(draft.properties),
            sentences=tuple(draft.sentences),
            file=self.file,
            line=draft.line,
        )

    def _split_heading(self, draft: _SectionDraft) -> tuple[DatatypeRef, DatatypeRef]:
        """Split "<S sys> <S type> to <T sys> <T type>" using the title's system names."""
        heading = draft.heading
        best: tuple[int, DatatypeRef, DatatypeRef] | None = None
        for match in re.finditer(" to ", heading):
            left, right = heading[: match.start()], heading[match.end() :]
            source = _split_system(left, self.source, ())
            target = _split_system(right, self.target, (draft.target_hint or "",))
            score = (source is not None) + (target is not None)
            if best is None or score > best[0]:
                best = (
                    score,
                    source or DatatypeRef(system=self.source, datatype=_norm(left)),
                    target or DatatypeRef(system=self.target, datatype=_norm(right)),
                )
        assert best is not None  # the caller checked " to " is present
        score, source, target = best
        if score < 2:
            self.issue(
                draft.line,
                "system-mismatch",
                f"section {_norm(heading)!r} does not start with the title's systems "
                f"{self.source!r}/{self.target!r}; "
                f"read as {source.datatype!r} -> {target.datatype!r}",
            )
        return source, target

    # -- tables ---------------------------------------------------------------------------

    def _table_from_source(self, directive_line: int) -> _Table:
        """Read a list-table from the source lines that follow its directive.

        docutils only delimits the table (see `_ListTable`); rows are read here, broken ones
        included: a data type without its '- ', a cell wrapped onto the next line.
        """
        header_rows = 0
        rows: list[list[_Cell]] = []
        last = directive_line
        previous_blank = False
        width = 0
        text_column = 0
        for number in range(directive_line + 1, len(self.lines) + 1):
            raw = self.lines[number - 1]
            stripped = raw.strip()
            if not stripped:
                previous_blank = True
                continue
            unindented = not raw[:1].isspace()
            row_incomplete = bool(rows) and len(rows[-1]) < max(width, 2)
            if unindented and (previous_blank or not row_incomplete):
                break
            previous_blank = False
            last = number
            if stripped.startswith(":header-rows:"):
                value = stripped.partition(":header-rows:")[2].strip()
                header_rows = int(value) if value.isdigit() else 1
            elif stripped.startswith(":"):
                continue
            elif stripped == "*" or stripped.startswith("* "):
                rows.append([_Cell(_strip_marker(stripped[1:]), number)])
                text_column = _text_column(raw)
            elif stripped == "-" or stripped.startswith("- "):
                if rows:
                    rows[-1].append(_Cell(_strip_marker(stripped), number))
                    text_column = _text_column(raw)
            elif rows and len(raw) - len(raw.lstrip()) >= text_column:
                previous = rows[-1][-1]  # a wrapped cell: continues the cell above
                rows[-1][-1] = _Cell(_norm(f"{previous.text} {stripped}"), previous.line)
            elif rows:
                self.issue(
                    number,
                    "broken-row",
                    f"table cell {stripped!r} lacks its '- ' prefix; read as the row's next cell",
                )
                rows[-1].append(_Cell(_norm(stripped), number))
            if len(rows) == 1:
                width = len(rows[0])
        header = rows[0] if header_rows and rows else None
        body = rows[1:] if header is not None else rows
        return _Table(line=directive_line, header=header, rows=body, last_line=last)

    def _take_table(self, draft: _SectionDraft, table: _Table, context: str | None) -> None:
        header, rows = table.header, list(table.rows)
        if header is None and rows and _looks_like_header(rows[0]):
            header, rows = rows[0], rows[1:]
        width = len(header) if header is not None else (len(rows[0]) if rows else 0)
        if context is None:
            context = "merge" if width == 2 else "properties"
            self.issue(
                table.line, "table", f"table without an announcing sentence; read as {context}"
            )
        self._check_header(draft, table, header, context)
        for cells in rows:
            line = _row_line(cells, table.line)
            if context == "merge":
                self._merge_row(draft, cells, line)
            else:
                self._property_row(draft, cells, line)

    def _check_header(
        self, draft: _SectionDraft, table: _Table, header: list[_Cell] | None, context: str
    ) -> None:
        expected = 2 if context == "merge" else 3
        if header is None:
            self.issue(
                table.line, "garbled-header", "table has no header row; rows read by position"
            )
            return
        line = _row_line(header, table.line)
        if len(header) != expected:
            self.issue(
                line, "garbled-header", f"header has {len(header)} cells, expected {expected}"
            )
        for position, cell in enumerate(header[:expected]):
            pattern = _HEADER_TYPE if position == 2 else _HEADER_PROPERTY
            if not pattern.search(cell.text):
                self.issue(
                    cell.line or line,
                    "garbled-header",
                    f"header cell {cell.text!r} is not '<type> Property'/'<system> Data Type'",
                )
        if context != "merge" and len(header) >= 3 and _HEADER_TYPE.search(header[2].text):
            hint = _HEADER_TYPE.sub("", header[2].text).strip()
            draft.target_hint = hint or draft.target_hint

    def _path(self, cell: _Cell, row_line: int, column: str) -> tuple[str, str | None]:
        """A property path and the qualifier the checklist wrote around it, if any."""
        line = cell.line or row_line
        text = cell.text
        qualifiers: list[str] = []
        raw = self.lines[line - 1] if 1 <= line <= len(self.lines) else ""
        if raw.rstrip(" ").endswith("\t"):
            qualifiers.append("trailing TAB")
            self.issue(line, "qualifier", f"{column} cell {text!r} ends with a TAB")
        match = _QUALIFIED_PATH.match(text)
        if match is not None:
            text = match.group("path")
            qualifiers.append(match.group("qualifier"))
            self.issue(line, "qualifier", f"{column} {text!r} carries {match.group('qualifier')!r}")
        elif " " in text:
            text, _, rest = text.partition(" ")
            qualifiers.append(rest)
            self.issue(line, "qualifier", f"{column} {text!r} is followed by {rest!r}")
        if text.startswith("$"):
            qualifiers.append(_SESAM_INTERNAL)
            self.issue(line, "qualifier", f"{column} {text!r} is a Sesam-internal property")
        return text, "; ".join(qualifiers) or None

    def _merge_row(self, draft: _SectionDraft, cells: list[_Cell], line: int) -> None:
        if len(cells) < 2:
            self.issue(
                line, "broken-row", f"merge row has {len(cells)} cell(s), expected 2; skipped"
            )
            return
        if len(cells) > 2:
            self.issue(line, "broken-row", f"merge row has {len(cells)} cells, expected 2")
        source, _ = self._path(cells[0], line, "source property")
        target, _ = self._path(cells[1], line, "target property")
        draft.merge_rules.append(MergeRule(source_path=source, target_path=target, line=line))

    def _property_row(self, draft: _SectionDraft, cells: list[_Cell], line: int) -> None:
        if len(cells) < 2:
            self.issue(
                line, "broken-row", f"property row has {len(cells)} cell(s), expected 3; skipped"
            )
            return
        if len(cells) != 3:
            self.issue(line, "broken-row", f"property row has {len(cells)} cells, expected 3")
        source, source_q = self._path(cells[0], line, "source property")
        target, target_q = self._path(cells[1], line, "target property")
        data_type: str | None = None
        if len(cells) >= 3:
            data_type = self._data_type(cells[2], line)
        qualifier = "; ".join(q for q in (source_q, target_q) if q) or None
        draft.properties.append(
            PropertyMap(
                source_path=source,
                target_path=target,
                data_type=data_type,
                qualifier=qualifier,
                line=line,
            )
        )

    def _data_type(self, cell: _Cell, row_line: int) -> str | None:
        text = cell.text.strip()
        if text.upper() in {"N/A", "NA"}:
            return None
        name = text[1:-1].strip() if len(text) >= 2 and text[0] == text[-1] == '"' else text
        if name.lower() in KNOWN_TYPES:
            return name.lower()
        self.issue(
            cell.line or row_line,
            "unknown-type",
            f"data type {text!r} is not one of {', '.join(sorted(KNOWN_TYPES))} or N/A; "
            "read as undeclared",
        )
        return None


def _slugs(file: str) -> tuple[str, str] | None:
    parts = Path(file).stem.split("-")
    if len(parts) == 2 and all(parts):
        return parts[0].lower(), parts[1].lower()
    return None


def _same_system(name: str, slug: str) -> bool:
    key, slug_key = _key(name), _key(slug)
    return key.startswith(slug_key) or key == _key(KNOWN_SYSTEMS.get(slug_key, ""))


def _split_system(side: str, system: str, hints: Sequence[str]) -> DatatypeRef | None:
    """`side` is "<system> <type>"; the system prefix may drift in case and spacing."""
    if side.startswith(" ") or not side.strip():
        return DatatypeRef(system=system, datatype=_norm(side))  # a blank system name
    names = [_key(name) for name in (system, *hints) if _key(name)]
    for name in names:
        for position in _spaces(side):
            if _key(side[:position]) == name:
                return DatatypeRef(system=system, datatype=_norm(side[position:]))
    for name in names:  # a shortened display name: "Exact Items" under "Exact Online"
        for position in _spaces(side):
            prefix = _key(side[:position])
            if prefix and name.startswith(prefix):
                return DatatypeRef(system=system, datatype=_norm(side[position:]))
    return None


def _spaces(text: str) -> Iterator[int]:
    return (index for index, char in enumerate(text) if char == " ")


def _strip_marker(text: str) -> str:
    """ "- cell" -> "cell" (the '* ' of a row was already cut by the caller)."""
    text = text.strip()
    return _norm(text[1:] if text.startswith("-") else text)


def _text_column(raw: str) -> int:
    """Where a cell's text starts on a "* - text" / "- text" line."""
    marker = raw.lstrip(" *-")
    return len(raw) - len(marker) if marker else len(raw) + 1


def _row_line(cells: list[_Cell], fallback: int) -> int:
    for offset, cell in enumerate(cells):
        if cell.line:
            return cell.line - offset
    return fallback


def _looks_like_header(cells: list[_Cell]) -> bool:
    return len(cells) >= 2 and all(_HEADER_PROPERTY.search(cell.text) for cell in cells[:2])


def _repeats(later: Section, earlier: Section) -> bool:
    """Whether ``later`` promises nothing ``earlier`` does not (see ``_Reader._once``)."""

    def rows(section: Section) -> set[tuple[str, str, str | None]]:
        return {(p.source_path, p.target_path, p.data_type) for p in section.properties}

    def rules(section: Section) -> set[tuple[str, str]]:
        return {(r.source_path, r.target_path) for r in section.merge_rules}

    return (
        later.source == earlier.source
        and later.target == earlier.target
        and later.kind == earlier.kind
        and later.condition == earlier.condition
        and later.merges_existing == earlier.merges_existing
        and rows(later) <= rows(earlier)
        and rules(later) <= rules(earlier)
    )
