"""The checklist -> Gherkin generator and the drift check between them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pytest_bdd.parser import FeatureParser

from talkqa.dataflow.gherkin import drift, generate, read_feature_rows, write_features
from talkqa.dataflow.rst import load
from talkqa.dataflow.spec import DataflowSpec, DatatypeRef, PropertyMap, Section, SectionKind

REPO = Path(__file__).resolve().parents[1]
CHECKLIST = REPO / "dataflows" / "chargebee-invoiced.rst"
DOC = "dataflows/chargebee-invoiced.rst"


def _section(index: int, src: str, tgt: str, props: list[tuple[str, str, str | None]]) -> Section:
    return Section(
        index=index,
        heading=f"Chargebee {src} to Invoiced {tgt}",
        source=DatatypeRef(system="Chargebee", datatype=src),
        target=DatatypeRef(system="Invoiced", datatype=tgt),
        kind=SectionKind.EVERY,
        properties=tuple(
            PropertyMap(source_path=a, target_path=b, data_type=t, line=20 + i)
            for i, (a, b, t) in enumerate(props)
        ),
        sentences=(
            f"Every Chargebee {src} will be synchronized with a Invoiced {tgt}.",
            f"Once a link between a Chargebee {src} and a Invoiced {tgt} is established, it "
            "will keep in sync between the two systems, regardless of where it is edited.",
        ),
        file=DOC,
        line=10 * (index + 1),
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
    p for p in (REPO / "dataflows").glob("*.rst") if (REPO / "features" / p.stem).is_dir()
)


@pytest.mark.parametrize("checklist", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_committed_features_are_what_the_checklist_generates(checklist: Path) -> None:
    doc = f"dataflows/{checklist.name}"
    spec = load(checklist)
    assert drift(spec, REPO / "features", doc) == []
    for name, text in generate(spec, doc).items():
        assert (REPO / "features" / name).read_text(encoding="utf-8") == text
    suite = REPO / "steps" / f"test_{checklist.stem.replace('-', '_')}.py"
    assert f'scenarios("{checklist.stem}")' in suite.read_text(encoding="utf-8")


@pytest.mark.skipif(not CHECKLIST.is_file(), reason="the project's checklist is not in this tree")
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
