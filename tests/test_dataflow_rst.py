"""The checklist parser on every variation the format documents (synthetic snippets)."""

from __future__ import annotations

from pathlib import Path

import pytest

from talkqa.dataflow.rst import display_name, load, parse_text
from talkqa.dataflow.spec import DataflowSpec, SectionKind
from talkqa.errors import UserError

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "dataflows"
SEED = Path(__file__).resolve().parents[2] / "shared" / "dataflows" / "Chargebee-to-Dataflow.rst"


def line_of(path: Path, needle: str, occurrence: int = 1) -> int:
    """1-based line of the n-th source line containing `needle` (independent of the parser)."""
    seen = 0
    for number, line in enumerate(path.read_bytes().decode().splitlines(), start=1):
        if needle in line:
            seen += 1
            if seen == occurrence:
                return number
    raise AssertionError(f"{needle!r} not in {path}")


def kinds(spec: DataflowSpec) -> list[str]:
    return [issue.kind for issue in spec.issues]


def doc(*sections: str, title: str = "Chargebee to Invoiced Dataflow") -> str:
    bar = "=" * len(title)
    head = (
        f"{bar}\n{title}\n{bar}\n\nGenerated: 2024-11-13 00:00:00\n\n"
        "Introduction\n------------\n\nText.\n\n"
    )
    return head + "\n\n".join(sections)


def section(heading: str, opening: str, rows: str = "", header: str | None = None) -> str:
    source, target = heading.split(" to ")
    header = header or (
        f"   * - {source} Property\n     - {target} Property\n     - Invoiced Data Type\n"
    )
    return (
        f"{heading}\n{'-' * len(heading)}\n{opening}\n\n"
        f"The following properties are synchronized between a {source} and a {target}:\n\n"
        f".. list-table::\n   :header-rows: 1\n\n{header}{rows}\n"
    )


# -- the blank system name ------------------------------------------------------------------


def crlf_copy(tmp_path: Path, name: str = "chargebee-invoiced.rst") -> Path:
    """The corpus is CRLF; git may normalise fixtures, so make the CRLF copy here."""
    path = tmp_path / name
    path.write_bytes((FIXTURES / "chargebee-invoiced.rst").read_bytes().replace(b"\n", b"\r\n"))
    return path


def test_crlf_document_with_blank_target_is_bound_by_file_slug(tmp_path: Path) -> None:
    path = crlf_copy(tmp_path)
    spec = load(path)
    assert (spec.source, spec.target) == ("Chargebee", "Invoiced")
    assert [s.target.system for s in spec.sections] == ["Invoiced", "Invoiced"]
    assert [s.target.datatype for s in spec.sections] == ["Customers person", "Invoices"]
    assert spec.issues == ()
    order = spec.sections[1]
    assert order.file == str(path)
    assert order.line == line_of(path, "Chargebee Order to  Invoices")
    assert [p.line for p in order.properties] == [
        line_of(path, "* - currency_code"),
        line_of(path, "* - customer_id"),
    ]
    assert load(FIXTURES / "chargebee-invoiced.rst").sections == tuple(
        s.model_copy(update={"file": str(FIXTURES / "chargebee-invoiced.rst")})
        for s in spec.sections
    )


def test_bind_blank_wins_over_an_unusable_slug(tmp_path: Path) -> None:
    path = crlf_copy(tmp_path, "Chargebee-to-Dataflow.rst")
    unbound = load(path)
    assert unbound.target == ""
    assert kinds(unbound) == ["blank-system"]
    assert unbound.issues[0].line == 3
    bound = load(path, bind_blank="invoiced")
    assert bound.target == "Invoiced"
    assert {s.target.system for s in bound.sections} == {"Invoiced"}
    assert bound.issues == ()


def test_slug_does_not_bind_when_the_other_side_disagrees(tmp_path: Path) -> None:
    path = crlf_copy(tmp_path, "hubspot-invoiced.rst")
    spec = load(path)
    assert spec.target == ""
    assert "blank-system" in kinds(spec)


def test_blank_source_in_the_title_is_bound_by_slug() -> None:
    text = doc(title=" to Invoiced Dataflow")
    assert parse_text(text, "chargebee-invoiced.rst").source == "Chargebee"
    assert parse_text(text, "x.rst", bind_blank="chargebee").source == "Chargebee"
    assert "blank-system" in kinds(parse_text(text, "x.rst"))


def test_display_names_from_slugs_and_user_spelling() -> None:
    assert display_name("invoiced") == "Invoiced"
    assert display_name("powerofficego") == "PowerOffice GO"
    assert display_name("squarespace") == "Squarespace"
    assert display_name("neverheardof") == "Neverheardof"
    assert display_name("My System") == "My System"


def test_seed_document_with_bind_blank() -> None:
    if not SEED.is_file():
        pytest.skip("../shared/dataflows/Chargebee-to-Dataflow.rst is absent")
    spec = load(SEED, bind_blank="invoiced")
    assert spec.target == "Invoiced"
    assert [s.target.datatype for s in spec.sections] == ["Customers person", "Items", "Invoices"]
    assert [s.existence_only for s in spec.sections] == [True, True, False]
    assert [(p.source_path, p.target_path, p.data_type) for p in spec.sections[2].properties] == [
        ("currency_code", "currency", "string"),
        ("customer_id", "customer", "string"),
    ]


# -- kinds, merges, qualifiers, types ----------------------------------------------------------


def test_section_kinds_merges_and_repeated_headings() -> None:
    path = FIXTURES / "variations.rst"
    spec = load(path)
    assert spec.generated is not None and spec.generated.year == 2024
    assert [s.kind for s in spec.sections] == [
        SectionKind.LINK_FIRST,
        SectionKind.CONDITIONAL,
        SectionKind.EVERY,
    ]
    assert [s.index for s in spec.sections] == [0, 1, 2]
    assert spec.sections[1].heading == spec.sections[2].heading
    assert spec.sections[2].line == line_of(path, "Chargebee Order to Invoiced Invoices", 2)
    assert spec.sections[1].condition == "a Chargebee Order is paid"
    assert spec.sections[2].existence_only
    customer = spec.sections[0]
    assert customer.merges_existing
    assert not spec.sections[1].merges_existing
    assert [(r.source_path, r.target_path, r.line) for r in customer.merge_rules] == [
        ("email", "email", line_of(path, "* - email")),
        ("id", "number", line_of(path, "* - id")),
    ]
    assert customer.sentences[0].startswith("Before any synchronization can take place")
    assert any("it will keep in sync" in sentence for sentence in customer.sentences)
    assert all("  " not in sentence for sentence in customer.sentences)


def test_qualifiers_and_types_become_issues_and_the_rest_is_read() -> None:
    path = FIXTURES / "variations.rst"
    props = {p.target_path: p for p in load(path).sections[0].properties}
    assert props["metadata.chargebee_id"].source_path == "$original_id"
    assert props["metadata.chargebee_id"].qualifier == "sesam-internal"
    assert props["toObjectId"].source_path == "company"
    assert props["toObjectId"].qualifier == (
        "(Dependant on having wd:Q852835 in sesam_simpleAssociationTypes)"
    )
    assert props["toObjectId"].data_type is None  # N/A, no issue
    assert props["email"].source_path == "email"
    assert props["email"].qualifier == "trailing TAB"
    assert props["date"].data_type is None
    assert props["payment_terms"].data_type == "integer"
    issues = {(i.kind, i.line) for i in load(path).issues}
    assert issues == {
        ("qualifier", line_of(path, "$original_id")),
        ("qualifier", line_of(path, "toObjectId (Dependant")),
        ("qualifier", line_of(path, "email\t")),
        ("unknown-type", line_of(path, "datetime-format")),
    }


def test_introduction_with_a_short_underline_is_not_a_section_nor_an_issue() -> None:
    spec = load(FIXTURES / "variations.rst")
    assert "Introduction." in (FIXTURES / "variations.rst").read_text()
    assert all("Introduction" not in s.heading for s in spec.sections)
    assert "rst" not in kinds(spec)


def test_broken_rows_and_garbled_header_are_reported_and_the_rest_read() -> None:
    path = FIXTURES / "broken.rst"
    spec = load(path)
    order, item = spec.sections
    assert [(p.source_path, p.target_path, p.data_type, p.line) for p in order.properties] == [
        ("currency_code", "currency", "string", line_of(path, "* - currency_code")),
        ("customer_id", "customer", "string", line_of(path, "* - customer_id")),
        ("total", "total", "integer", line_of(path, "* - total")),
    ]
    broken_lines = [i.line for i in spec.issues if i.kind == "broken-row"]
    assert broken_lines == [line_of(path, '"string"', 1), line_of(path, '"string"', 2)]
    assert [(p.source_path, p.data_type) for p in item.properties] == [("name", "string")]
    garbled = [i for i in spec.issues if i.kind == "garbled-header"]
    assert [i.line for i in garbled] == [line_of(path, "Itemz Propretty")]
    assert set(kinds(spec)) == {"broken-row", "garbled-header"}


def test_unknown_quoted_type_and_empty_table() -> None:
    text = doc(
        section(
            "Chargebee Order to Invoiced Invoices",
            "Every Chargebee Order will be synchronized with a Invoiced Invoices.",
            '   * - total\n     - total\n     - "money"\n'
            "   * - paid\n     - paid\n     - boolean\n",
        ),
        section("Chargebee Item to Invoiced Items", "Every X will be synchronized with a Y."),
    )
    spec = parse_text(text, "x.rst")
    assert [p.data_type for p in spec.sections[0].properties] == [None, "boolean"]
    assert kinds(spec) == ["unknown-type"]
    assert spec.sections[1].properties == ()


def test_missing_opening_sentence_defaults_to_every_with_an_issue() -> None:
    text = doc(section("Chargebee Item to Invoiced Items", "Something else entirely."))
    spec = parse_text(text, "x.rst")
    assert spec.sections[0].kind is SectionKind.EVERY
    assert set(kinds(spec)) == {"kind", "unknown-sentence"}


def test_conditional_without_when_keeps_its_comment_as_condition() -> None:
    opening = "removed for now until resolved, it  will be synchronized with a Invoiced Items."
    spec = parse_text(doc(section("Chargebee Item to Invoiced Items", opening)), "x.rst")
    assert spec.sections[0].kind is SectionKind.CONDITIONAL
    assert spec.sections[0].condition == "removed for now until resolved"
    assert kinds(spec) == ["odd-condition"]


def test_section_prefix_drifting_from_the_title_is_split_by_system() -> None:
    text = doc(
        section("Exact Items to Power Office Go Product", "Every X will be synchronized with a Y."),
        title="Exact Online to PowerOffice GO Dataflow",
    )
    only = parse_text(text, "x.rst").sections[0]
    assert (only.source.system, only.source.datatype) == ("Exact Online", "Items")
    assert (only.target.system, only.target.datatype) == ("PowerOffice GO", "Product")


def test_types_with_spaces_and_parentheses() -> None:
    text = doc(
        section(
            "Chargebee Address to Invoiced Customers (organisation data)",
            "Every X will be synchronized with a Y.",
        )
    )
    only = parse_text(text, "x.rst").sections[0]
    assert only.target.datatype == "Customers (organisation data)"
    assert only.source.datatype == "Address"


def test_document_without_sections() -> None:
    spec = parse_text(doc(), "asana-trello.rst")
    assert (spec.source, spec.target, spec.sections, spec.issues) == (
        "Chargebee",
        "Invoiced",
        (),
        (),
    )


# -- our own checklists -----------------------------------------------------------------------


def test_our_first_checklist() -> None:
    path = REPO / "dataflows" / "chargebee-invoiced.rst"
    assert b"\r" not in path.read_bytes()
    assert "NDA" not in path.read_text()
    spec = load(path)
    assert spec.issues == ()
    assert (spec.source, spec.target) == ("Chargebee", "Invoiced")
    assert [(s.source.datatype, s.target.datatype) for s in spec.sections] == [
        ("Customer", "Customers person"),
        ("Item", "Items"),
        ("Order", "Invoices"),
    ]
    assert [len(s.properties) for s in spec.sections] == [0, 0, 2]
    assert [(p.source_path, p.target_path) for p in spec.sections[2].properties] == [
        ("currency_code", "currency"),
        ("customer_id", "customer"),
    ]


def test_our_contacts_checklist() -> None:
    path = REPO / "dataflows" / "chargebee-invoiced-contacts.rst"
    spec = load(path)
    assert spec.issues == ()
    assert (spec.source, spec.target) == ("Chargebee", "Invoiced")
    customer, item, order = spec.sections
    assert customer.target.datatype == "Customers person"
    assert [(p.source_path, p.target_path, p.data_type) for p in customer.properties] == [
        ("email", "email", "string"),
        ("phone", "phone", "string"),
        ("billing_address.line1", "address1", "string"),
        ("billing_address.city", "city", "string"),
        ("billing_address.zip", "postal_code", "string"),
        ("billing_address.country", "country", "string"),
    ]
    first = load(REPO / "dataflows" / "chargebee-invoiced.rst")
    assert [p.model_dump(exclude={"line"}) for p in order.properties] == [
        p.model_dump(exclude={"line"}) for p in first.sections[2].properties
    ]
    assert item.existence_only


# -- unreadable input -------------------------------------------------------------------------


def test_missing_file_is_one_line_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"nope\.rst: no such file") as caught:
        load(tmp_path / "nope.rst")
    assert "\n" not in str(caught.value)


def test_not_utf8_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "latin.rst"
    path.write_bytes(b"Chargebee to Invoiced Dataflow\n==========\n\nK\xf8benhavn\n")
    with pytest.raises(UserError, match=r"latin\.rst:4: not UTF-8"):
        load(path)


def test_not_a_dataflow_document(tmp_path: Path) -> None:
    path = tmp_path / "readme.rst"
    path.write_text("Hello\n=====\n\nJust text.\n")
    with pytest.raises(UserError, match=r"readme\.rst:1: not a Sesam Talk dataflow document"):
        load(path)
    with pytest.raises(UserError, match=r"empty\.rst:1: not a Sesam Talk"):
        parse_text("", "empty.rst")


def test_folder_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="is a folder"):
        load(tmp_path)


def test_paths_that_look_like_rst_markup_are_kept_verbatim() -> None:
    rows = '   * - net_*days*\n     - custom_\n     - "integer"\n'
    opening = "Every Chargebee Order will be synchronized with a Invoiced Invoices."
    text = doc(section("Chargebee Order to Invoiced Invoices", opening, rows))
    spec = parse_text(text, "x.rst")
    only = spec.sections[0].properties[0]
    assert (only.source_path, only.target_path, only.data_type) == (
        "net_*days*",
        "custom_",
        "integer",
    )
    assert spec.issues == ()


def test_a_wrapped_cell_in_a_broken_table_continues_its_cell() -> None:
    text = (FIXTURES / "broken.rst").read_text()
    wrapped = text.replace("     - currency\n", "     - currency\n       (Dependant on x)\n")
    spec = parse_text(wrapped, "x.rst")
    first = spec.sections[0].properties[0]
    assert (first.target_path, first.qualifier, first.data_type) == (
        "currency",
        "(Dependant on x)",
        "string",
    )
    assert [i.kind for i in spec.issues].count("broken-row") == 2


# -- docutils reads the structure, the table rows are read from the source -------------------

ORDER = "Chargebee Order to Invoiced Invoices"
EVERY_ORDER = "Every Chargebee Order will be synchronized with a Invoiced Invoices."


def test_cells_are_read_verbatim_and_never_as_rst_markup() -> None:
    """docutils' list-table parsed each cell as RST: a stray backquote became a warning that
    was glued into the cell text. Cells are paths, so they are read as written."""
    rows = '   * - `weird\n     - b|sub|\n     - "string"\n'
    spec = parse_text(doc(section(ORDER, EVERY_ORDER, rows)), "x.rst")
    only = spec.sections[0].properties[0]
    assert (only.source_path, only.target_path, only.data_type) == ("`weird", "b|sub|", "string")
    assert spec.issues == ()


def test_a_titled_list_table_reads_the_same_rows() -> None:
    rows = '   * - total\n     - total\n     - "integer"\n'
    text = doc(section(ORDER, EVERY_ORDER, rows))
    titled = text.replace(".. list-table::", ".. list-table:: Synchronized properties")
    plain, named = parse_text(text, "x.rst"), parse_text(titled, "x.rst")
    assert named.sections == plain.sections
    assert [(p.source_path, p.data_type) for p in named.sections[0].properties] == [
        ("total", "integer")
    ]


def test_text_glued_under_a_table_is_reported_where_it_starts() -> None:
    rows = '   * - total\n     - total\n     - "integer"\n'
    text = doc(section(ORDER, EVERY_ORDER, rows)).rstrip("\n") + "\nGlued text.\n"
    spec = parse_text(text, "x.rst")
    glued = text.split("\n").index("Glued text.") + 1
    assert ("rst", glued) in {(issue.kind, issue.line) for issue in spec.issues}
    assert [p.source_path for p in spec.sections[0].properties] == ["total"]


def test_a_table_cut_by_an_unindented_cell_is_not_lost_silently() -> None:
    """The block docutils delimits ends at the unindented line; what follows is reported."""
    text = (FIXTURES / "variations.rst").read_text()
    lines = text.split("\n")
    cut = next(i for i, line in enumerate(lines) if line.strip() == "- Invoiced Data Type")
    lines[cut] = lines[cut].lstrip()
    spec = parse_text("\n".join(lines), "variations.rst")
    assert any(issue.line == cut + 1 and issue.kind == "rst" for issue in spec.issues)


def test_parsing_leaves_docutils_as_it_found_it() -> None:
    """Our list-table and our state machines are private: another docutils user in the same
    process still gets docutils' own list-table and default role."""
    from docutils.core import publish_doctree
    from docutils.nodes import literal, table, title_reference

    rows = '   * - total\n     - total\n     - "integer"\n'
    text = ".. default-role:: literal\n\n" + doc(section(ORDER, EVERY_ORDER, rows))
    assert parse_text(text, "x.rst").sections[0].properties[0].source_path == "total"
    quiet = {"report_level": 5}
    other = publish_doctree(
        ".. list-table::\n\n   * - a\n     - b\n\n`role`\n", settings_overrides=quiet
    )
    assert len(list(other.findall(table))) == 1
    assert list(other.findall(title_reference)) and not list(other.findall(literal))


def test_reused_parser_state_does_not_carry_over_between_documents() -> None:
    """docutils' state machines are pooled across parses: no document may see another's."""
    import talkqa.dataflow.rst as rst_module

    first = load(FIXTURES / "variations.rst")
    load(FIXTURES / "broken.rst")
    parse_text(doc(), "asana-trello.rst")
    assert load(FIXTURES / "variations.rst") == first
    assert rst_module._TOP_MACHINES  # a machine was returned to the pool ...
    assert all(not machine.observers for machine in rst_module._TOP_MACHINES)  # ... clean


def test_parsing_from_several_threads_gives_the_same_specs() -> None:
    from concurrent.futures import ThreadPoolExecutor

    paths = sorted(FIXTURES.glob("*.rst")) * 8
    expected = [load(path) for path in paths]
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(load, paths)) == expected


def test_a_repeated_section_is_one_promise_with_a_note() -> None:
    """Generated checklists repeat sections: judged once, noted, never a reason for
    INCOMPLETE. A section with a row the first lacks is a promise of its own."""
    text = (REPO / "dataflows" / "chargebee-invoiced.rst").read_text(encoding="utf-8")
    lines = text.splitlines()
    orders = lines.index("Chargebee Order to Invoiced Invoices")
    order_section = "\n".join(lines[orders:]) + "\n"
    without_rows = order_section.split("   * - currency_code")[0]
    extra_row = order_section + '   * - total\n     - total\n     - "decimal"\n'
    doubled = text + "\n" + without_rows + "\n" + order_section + "\n" + extra_row
    spec = parse_text(doubled, "chargebee-invoiced.rst")
    headings = [s.heading for s in spec.sections]
    assert headings.count("Chargebee Order to Invoiced Invoices") == 2  # first, and + total
    assert [len(s.properties) for s in spec.sections][-1] == 3
    notes = [i for i in spec.issues if i.kind == "repeated-section"]
    assert len(notes) == 2 and all("repeats section 2" in i.message for i in notes)
    assert not any(i.may_change_promises for i in notes)
