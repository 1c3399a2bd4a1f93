"""The checklist -> Gherkin generator and the drift check between them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pytest_bdd.parser import FeatureParser

from reference_sync.testing import section
from talkqa.dataflow.gherkin import drift, generate, read_feature_rows, write_features
from talkqa.dataflow.rst import load
from talkqa.dataflow.spec import DataflowSpec, PropertyMap, Section, SectionKind
from tests.cli_runner import run_cli

REPO = Path(__file__).resolve().parents[1]
CHECKLIST = REPO / "dataflows" / "chargebee-invoiced.rst"
DOC = "dataflows/chargebee-invoiced.rst"


def _section(index: int, src: str, tgt: str, props: list[tuple[str, str, str | None]]) -> Section:
    """A section of ``DOC`` with the checklist's two usual sentences (they become promises)."""
    return section(index, src, tgt, tuple(props)).model_copy(
        update={
            "sentences": (
                f"Every Chargebee {src} will be synchronized with a Invoiced {tgt}.",
                f"Once a link between a Chargebee {src} and a Invoiced {tgt} is established, it "
                "will keep in sync between the two systems, regardless of where it is edited.",
            ),
            "file": DOC,
        }
    )


def _spec(order_props: list[tuple[str, str, str | None]] | None = None) -> DataflowSpec:
    default: list[tuple[str, str, str | None]] = [
        ("currency_code", "currency", "string"),
        ("customer_id", "customer", "string"),
    ]
    props = order_props if order_props is not None else default
    return DataflowSpec(
        file=DOC,
        source="Chargebee",
        target="Invoiced",
        sections=(
            _section(0, "Customer", "Customers person", []),
            _section(1, "Order", "Invoices", props),
            _section(2, "Subscription", "Payments", [("id", "id", None)]),
        ),
    )


def test_generate_is_deterministic_and_one_feature_per_section() -> None:
    first = generate(_spec(), DOC)
    assert first == generate(_spec(), DOC)
    assert list(first) == [
        "chargebee-invoiced/01-chargebee-customer-to-invoiced-customers-person.feature",
        "chargebee-invoiced/02-chargebee-order-to-invoiced-invoices.feature",
        "chargebee-invoiced/03-chargebee-subscription-to-invoiced-payments.feature",
    ]


def test_features_carry_the_promises_as_tagged_scenarios() -> None:
    files = list(generate(_spec(), DOC).values())
    customer, order, unbound = files
    assert 'Given the checklist "dataflows/chargebee-invoiced.rst" section 0' in customer
    assert "@existence_only" in customer
    assert "@properties" not in customer  # an empty table promises existence only
    assert "linked Invoiced Customers person with type person" in customer
    assert customer.count("@edits @vcr") == 2  # one edit on each side
    assert "@idempotence @vcr" in customer
    assert "Promise: Every Chargebee Customer will be synchronized" in customer
    # the plain property goes to the properties table, the reference to the references table
    assert "| currency_code | currency    | string    |" in order
    assert "| customer_id | customer    | string    | Chargebee Customer |" in order
    assert order.index("@properties") < order.index("@references")
    assert "@unbound" in unbound and "| id          | id          | N/A       |" in unbound


def test_exists_scenario_is_worded_by_the_section_kind() -> None:
    base = _spec()
    link_first = base.sections[0].model_copy(update={"kind": SectionKind.LINK_FIRST})
    conditional = base.sections[1].model_copy(
        update={"kind": SectionKind.CONDITIONAL, "condition": "it is paid"}
    )
    spec = base.model_copy(update={"sections": (link_first, conditional)})
    first, second = generate(spec, DOC).values()
    assert (
        "Then no Invoiced Customers person is created for an unlinked Chargebee Customer" in first
    )
    assert "exactly one" not in first
    assert "Then every Chargebee Order has at most one linked Invoiced Invoices" in second


def _scenario(text: str, title_start: str) -> str:
    """The block of one scenario (from its tags to the next blank line before a tag)."""
    blocks = text.split("\n\n  @")
    found = [b for b in blocks if f"Scenario: {title_start}" in b]
    assert len(found) == 1, title_start
    return found[0]


def test_edit_scenarios_say_what_the_vendors_forbid() -> None:
    order = generate(_spec(), DOC)[
        "chargebee-invoiced/02-chargebee-order-to-invoiced-invoices.feature"
    ]
    assert (
        "Vendor limit: Chargebee does not let a Chargebee Order change currency_code, customer_id"
        in order
    )
    assert "Vendor limit: Invoiced does not let a Invoiced Invoices change customer" in order
    survival = _scenario(order, "An edit in Chargebee of the unmapped status")
    assert "link survival only: Chargebee forbids changing currency_code, customer_id" in survival
    assert "When status of each linked source entity is edited through the Chargebee API" in (
        survival
    )
    assert "Then the edit stays in Chargebee and every link still holds" in survival
    blocked = _scenario(order, "An edit in Invoiced of currency on a linked Invoiced Invoices")
    assert blocked.startswith("vendor_limits @vcr")
    assert "is not carried over, as Chargebee forbids changing currency_code" in blocked
    assert "Then Chargebee keeps currency_code as it was and every link still holds" in blocked
    assert "@conflicts" not in order  # nothing mapped can be edited on both sides


def test_a_customer_edit_after_its_orders_exist_is_a_references_scenario() -> None:
    order = generate(_spec(), DOC)[
        "chargebee-invoiced/02-chargebee-order-to-invoiced-invoices.feature"
    ]
    block = _scenario(order, "The references of each linked Invoiced Invoices still point")
    assert block.startswith("references @vcr")
    lines = [line.strip() for line in block.splitlines()]
    assert lines.index("And the system under test has run") < lines.index(
        "When first_name of each referenced Chargebee Customer is edited through the Chargebee API"
    )
    assert "| customer_id | customer    | string    | Chargebee Customer |" in block


def test_both_sides_edited_only_where_both_vendors_can_edit_a_mapped_property() -> None:
    spec = _spec()
    customer = spec.sections[0].model_copy(
        update={
            "properties": (
                PropertyMap(source_path="email", target_path="email", data_type="string", line=3),
            )
        }
    )
    text = generate(spec.model_copy(update={"sections": (customer,)}), DOC)
    feature = next(iter(text.values()))
    first = _scenario(feature, "email edited in Chargebee and then in Invoiced")
    second = _scenario(feature, "email edited in Invoiced and then in Chargebee")
    for block in (first, second):
        assert block.startswith("conflicts @vcr")
        assert "Then both systems hold the newest edit of each pair, Chargebee's on a tie" in block
        assert "And the system under test reported each conflict" in block
    assert "the newest edit (Invoiced) wins" in first and "(Chargebee) wins" in second
    assert (
        "An edit in Chargebee of email on a linked Chargebee Customer reaches Invoiced" in feature
    )
    # no mapped property: both edits are link survival, said so, and no conflict scenario
    bare = generate(_spec(), DOC)[
        "chargebee-invoiced/01-chargebee-customer-to-invoiced-customers-person.feature"
    ]
    assert bare.count("(link survival only: the checklist maps no property)") == 2
    assert "@conflicts" not in bare


def test_merge_rules_and_link_first_sections_make_their_links_first() -> None:
    from talkqa.dataflow.spec import MergeRule

    spec = _spec()
    customer = spec.sections[0].model_copy(
        update={
            "kind": SectionKind.LINK_FIRST,
            "merge_rules": (MergeRule(source_path="email", target_path="email", line=5),),
        }
    )
    order = spec.sections[1]
    files = list(generate(spec.model_copy(update={"sections": (customer, order)}), DOC).values())
    merge = _scenario(files[0], "A Chargebee Customer whose email matches an existing")
    assert merge.startswith("merge @vcr")
    assert (
        "And each of them has an existing Invoiced Customers person matching it by email" in merge
    )
    assert (
        "Then each Chargebee Customer is linked to its existing Invoiced Customers person and to "
        "no other" in merge
    )
    idem = _scenario(files[0], "A second run changes nothing")
    assert "And each of them has an existing Invoiced Customers person matching it by email" in idem
    assert (
        "And each Chargebee Customer they reference has an existing Invoiced Customers person "
        "matching it by email" in files[1]
    )
    # without merge rules a link-first target claims its source (the judge's link convention)
    plain = customer.model_copy(update={"merge_rules": ()})
    text = next(iter(generate(spec.model_copy(update={"sections": (plain,)}), DOC).values()))
    assert "that claims it by metadata.chargebee_id" in text
    assert "@merge" not in text


def test_generated_features_parse_as_gherkin_with_unique_scenarios(tmp_path: Path) -> None:
    written = write_features(generate(_spec(), DOC), tmp_path)
    for path in written:
        feature = FeatureParser(str(tmp_path), path.relative_to(tmp_path).as_posix()).parse()
        names = list(feature.scenarios)
        assert len(names) == len(set(names)) >= 4
        assert all("vcr" in s.tags for s in feature.scenarios.values())


def test_no_drift_right_after_generating(tmp_path: Path) -> None:
    write_features(generate(_spec(), DOC), tmp_path)
    assert drift(_spec(), tmp_path, DOC) == []


def test_drift_names_missing_stale_and_changed_rows(tmp_path: Path) -> None:
    write_features(generate(_spec(), DOC), tmp_path)
    changed = _spec([("currency_code", "currency", "integer"), ("status", "status", "string")])
    found = {(d.kind, d.detail.split(" ")[0]) for d in drift(changed, tmp_path, DOC)}
    assert ("changed-row", "currency_code") in found
    assert ("missing-row", "status") in found
    assert ("stale-row", "customer_id") in found


def test_drift_names_sections_gone_and_sections_without_features(tmp_path: Path) -> None:
    write_features(generate(_spec(), DOC), tmp_path)
    spec = _spec()
    fewer = spec.model_copy(update={"sections": spec.sections[:2]})
    assert [(d.kind, d.section_index) for d in drift(fewer, tmp_path, DOC)] == [
        ("stale-section", 2)
    ]
    (tmp_path / "chargebee-invoiced" / "02-chargebee-order-to-invoiced-invoices.feature").unlink()
    assert ("missing-section", 1) in {(d.kind, d.section_index) for d in drift(spec, tmp_path, DOC)}


def test_hand_edited_feature_is_outdated(tmp_path: Path) -> None:
    write_features(generate(_spec(), DOC), tmp_path)
    path = (
        tmp_path
        / "chargebee-invoiced"
        / "01-chargebee-customer-to-invoiced-customers-person.feature"
    )
    path.write_text(path.read_text().replace("Given 3 ", "Given 1 "))
    assert [d.kind for d in drift(_spec(), tmp_path, DOC)] == ["outdated"]


def test_table_cells_with_pipes_round_trip() -> None:
    spec = _spec([("a|b", "c", "string")])
    text = generate(spec, DOC)["chargebee-invoiced/02-chargebee-order-to-invoiced-invoices.feature"]
    assert read_feature_rows(text).rows == frozenset({("a|b", "c", "string")})


SHIPPED = sorted(
    p
    for p in [
        *(REPO / "dataflows").glob("*.rst"),
        *(REPO / "tests" / "fixtures" / "dataflows").glob("merge-*.rst"),
    ]
    if (REPO / "features" / p.stem).is_dir()
)


def test_every_shipped_checklist_is_checked() -> None:
    assert {p.stem for p in SHIPPED} >= {
        "chargebee-invoiced",
        "chargebee-invoiced-contacts",
        "merge-chargebee-invoiced",
    }


@pytest.mark.parametrize("checklist", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_committed_features_are_what_the_checklist_generates(checklist: Path) -> None:
    doc = checklist.relative_to(REPO).as_posix()
    spec = load(checklist)
    assert drift(spec, REPO / "features", doc) == []
    for name, text in generate(spec, doc).items():
        assert (REPO / "features" / name).read_text(encoding="utf-8") == text


def test_a_row_deleted_from_a_copy_of_the_checklist_is_drift(tmp_path: Path) -> None:
    copy = tmp_path / "chargebee-invoiced.rst"
    shutil.copy(CHECKLIST, copy)
    text = copy.read_text(encoding="utf-8")
    row = '   * - customer_id\n     - customer\n     - "string"\n'
    assert row in text
    copy.write_text(text.replace(row, ""), encoding="utf-8")
    found = drift(load(copy), REPO / "features", DOC)
    assert [(d.kind, d.detail.split(" ")[0]) for d in found] == [("stale-row", "customer_id")]


def test_regenerating_removes_features_of_sections_gone(tmp_path: Path) -> None:
    write_features(generate(_spec(), DOC), tmp_path)
    spec = _spec()
    fewer = spec.model_copy(update={"sections": spec.sections[:1]})
    write_features(generate(fewer, DOC), tmp_path)
    assert [p.name for p in (tmp_path / "chargebee-invoiced").iterdir()] == [
        "01-chargebee-customer-to-invoiced-customers-person.feature"
    ]
    assert drift(fewer, tmp_path, DOC) == []


def test_a_merge_rule_deleted_from_a_copy_of_the_merge_checklist_is_drift(tmp_path: Path) -> None:
    source = REPO / "tests" / "fixtures" / "dataflows" / "merge-chargebee-invoiced.rst"
    doc = "tests/fixtures/dataflows/merge-chargebee-invoiced.rst"
    copy = tmp_path / source.name
    text = source.read_text(encoding="utf-8")
    rule = "   * - email\n     - email\n\n"
    assert rule in text
    copy.write_text(text.replace(rule, "\n", 1), encoding="utf-8")
    spec = load(copy)
    assert spec.sections[0].merge_rules == ()
    found = drift(spec, REPO / "features", doc)
    # the orders' Given links their customers by the rule too, so both features are outdated
    assert [(d.kind, d.section_index) for d in found] == [("outdated", 0), ("outdated", 1)]


def _unnamed_target(spec: DataflowSpec) -> DataflowSpec:
    """The spec as a checklist with a blank target system name would give it."""
    sections = tuple(
        s.model_copy(update={"target": s.target.model_copy(update={"system": ""})})
        for s in spec.sections
    )
    return spec.model_copy(update={"sections": sections})


def test_a_blank_target_system_is_named_as_unnamed_not_left_as_a_gap(tmp_path: Path) -> None:
    spec = _unnamed_target(_spec())
    written = write_features(generate(spec, DOC), tmp_path)
    for path in written:
        text = path.read_text(encoding="utf-8")
        assert "@unbound" in text.splitlines()[2]
        for line in text.splitlines():
            assert line == line.rstrip(), f"{path.name}: trailing space in {line!r}"
            if not line.lstrip().startswith(("#", "|")):
                assert "  " not in line.strip(), f"{path.name}: a gap in {line!r}"
        feature = FeatureParser(str(tmp_path), path.relative_to(tmp_path).as_posix()).parse()
        titles = list(feature.scenarios)
        assert len(titles) == len(set(titles))
        assert not any(title.endswith((" reaches", " or", " in")) for title in titles)
    orders = next(p for p in written if "order" in p.name).read_text(encoding="utf-8")
    assert (
        "Scenario: An edit in Chargebee of a linked Chargebee Order reaches the unnamed Invoices "
        "system\n" in orders
    )
    assert "When each linked target entity is edited through the unnamed Invoices system's API" in (
        orders
    )
    assert "Then no entity changed in Chargebee or the unnamed Invoices system\n" in orders
    assert drift(spec, tmp_path, DOC) == []


def _regenerate_args(feature: Path) -> list[str]:
    import shlex

    second = feature.read_text(encoding="utf-8").splitlines()[1]
    assert second.startswith("#   talkqa features generate ")
    return shlex.split(second.removeprefix("#   talkqa "))


@pytest.mark.parametrize("where", ["in-project", "elsewhere"])
def test_the_header_command_regenerates_into_the_folder_it_was_written_to(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    (project / "dataflows").mkdir(parents=True)
    shutil.copy(CHECKLIST, project / "dataflows" / CHECKLIST.name)
    out = project / "specs" if where == "in-project" else tmp_path / "elsewhere" / "feats"
    monkeypatch.chdir(project)
    assert (
        run_cli(
            ["features", "generate", "dataflows/" + CHECKLIST.name, "--out", str(out)], monkeypatch
        )
        == 0
    )
    first = sorted(out.rglob("*.feature"))
    assert first
    texts = {p: p.read_text(encoding="utf-8") for p in first}
    args = _regenerate_args(first[0])
    if where == "in-project":
        assert args[-2:] == ["--out", "specs/"]
    else:
        assert args[-2:] == ["--out", f"{out.resolve().as_posix()}/"]
    shutil.rmtree(out)
    monkeypatch.chdir(project)  # the folder the checklist path in the header is relative to
    assert run_cli(args, monkeypatch) == 0
    assert {p: p.read_text(encoding="utf-8") for p in sorted(out.rglob("*.feature"))} == texts
    assert (
        run_cli(["features", "check", "dataflows/" + CHECKLIST.name, str(out)], monkeypatch) == 0
    )


def test_the_shipped_features_keep_the_short_regenerate_command() -> None:
    for feature in sorted((REPO / "features").rglob("*.feature")):
        args = _regenerate_args(feature)
        assert args[-2:] == ["--out", "features/"], feature
        assert (REPO / args[2]).is_file(), feature
