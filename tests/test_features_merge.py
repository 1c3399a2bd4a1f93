"""Merge rules and link-first sections: the generated promise, the judge, and the sync.

The merge fixture checklist (tests/fixtures/dataflows/merge-chargebee-invoiced.rst) puts a
merge rule on Chargebee Customer -> Invoiced Customers person by email in a link-first
section; its features live in features/merge-chargebee-invoiced/ and run through the talk-qa
pytest plugin.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reference_sync import LinkStore, run_sync
from reference_sync.testing import FakeSystems
from talkqa.dataflow.gherkin import drift, generate
from talkqa.dataflow.rst import load
from talkqa.dataflow.spec import DataflowSpec, SectionKind
from talkqa.pytest_plugin import verify_merged
from talkqa.samples import Created, link_first, link_wording
from talkqa.systems.catalog import binding_of

REPO = Path(__file__).resolve().parents[1]
DOC = "tests/fixtures/dataflows/merge-chargebee-invoiced.rst"
CUSTOMER = binding_of(("chargebee", "Customer"))
PERSON = binding_of(("invoiced", "Customers person"))


def _spec() -> DataflowSpec:
    return load(REPO / DOC)


def test_the_fixture_is_a_link_first_section_merged_by_email() -> None:
    spec = _spec()
    assert not spec.issues
    customers, orders = spec.sections
    assert customers.kind is SectionKind.LINK_FIRST
    assert [(r.source_path, r.target_path) for r in customers.merge_rules] == [("email", "email")]
    assert orders.kind is SectionKind.EVERY
    assert link_wording(customers) == "matching it by email"


def test_generated_merge_features_are_shipped_without_drift() -> None:
    spec = _spec()
    assert drift(spec, REPO / "features", DOC) == []
    customer, order = generate(spec, DOC).values()
    assert "@merge @vcr" in customer
    assert "And each of them has an existing Invoiced Customers person matching it by email" in (
        customer
    )
    # the unlinked-source promise creates no link first: that is what it tests
    unlinked = customer.split("@merge @vcr")[0]
    assert "has an existing" not in unlinked
    # orders need their customers linked first, because the customer section is link-first
    assert (
        "And each Chargebee Customer they reference has an existing Invoiced Customers person "
        "matching it by email" in order
    )


def _customers(systems: FakeSystems, n: int) -> list[str]:
    for i in range(1, n + 1):
        systems.resource(CUSTOMER).create({"id": f"c{i}", "email": f"p{i}@example.com"})
    return [f"c{i}" for i in range(1, n + 1)]


def test_link_first_makes_the_matching_target_before_the_sync() -> None:
    spec = _spec()
    systems = FakeSystems()
    ids = _customers(systems, 2)
    created = Created()
    made = link_first(spec.sections[0], ids, systems, "t0", created)  # type: ignore[arg-type]
    people = systems.resource(PERSON).list()
    by_id = {str(p["id"]): p for p in people}
    assert [by_id[made[i]]["email"] for i in ids] == ["p1@example.com", "p2@example.com"]
    assert all(p["type"] == "person" and not p.get("metadata") for p in people)
    assert created.existing == made
    assert [o[:2] for o in created.order] == [("invoiced", "customers")] * 2


def test_the_reference_sync_merges_and_creates_nothing_for_unlinked_sources(
    tmp_path: Path,
) -> None:
    spec = _spec()
    systems = FakeSystems()
    ids = _customers(systems, 3)
    made = link_first(spec.sections[0], ids[:2], systems, "t0", Created())  # type: ignore[arg-type]
    with LinkStore(tmp_path / "links.sqlite") as store:
        run_sync(spec, systems, store)
        again = run_sync(spec, systems, store)
    people = list(systems.resource(PERSON).list())
    assert sorted(str(p["id"]) for p in people) == sorted(made.values())  # c3: nothing created
    assert verify_merged(spec.sections[0], made, systems) == []
    assert again.writes == 0


def test_verify_merged_names_a_duplicate_and_a_target_left_alone() -> None:
    spec = _spec()
    systems = FakeSystems()
    ids = _customers(systems, 2)
    made = link_first(spec.sections[0], ids, systems, "t0", Created())  # type: ignore[arg-type]
    # a syncer that ignored the merge rule: a new person for c1, claiming it
    people: Any = systems.resource(PERSON)
    people.create(
        {
            "type": "person",
            "name": "New",
            "email": "other@example.com",
            "metadata": {"chargebee_id": "c1"},
        }
    )
    # and c2's existing person no longer matches (its email was changed)
    people.update(made["c2"], {"email": "changed@example.com"})
    found = verify_merged(spec.sections[0], made, systems)
    assert [(f.kind, f.check, f.source_id) for f in found] == [
        ("duplicate", "merge", "c1"),
        ("missing", "merge", "c2"),
    ]
    assert "besides the existing" in found[0].message
    assert "not linked to the existing" in found[1].message


def test_a_syncer_ignoring_link_first_and_merge_rules_is_caught(tmp_path: Path) -> None:
    from talkqa.checks import check_spec

    spec = _spec()
    careless = spec.model_copy(
        update={
            "sections": (
                spec.sections[0].model_copy(update={"kind": SectionKind.EVERY, "merge_rules": ()}),
                spec.sections[1],
            )
        }
    )
    systems = FakeSystems()
    ids = _customers(systems, 3)
    made = link_first(spec.sections[0], ids[:2], systems, "t0", Created())  # type: ignore[arg-type]
    with LinkStore(tmp_path / "links.sqlite") as store:
        run_sync(careless, systems, store)  # creates a person for every customer
    merged = verify_merged(spec.sections[0], made, systems)
    assert [(f.kind, f.source_id) for f in merged] == [("duplicate", "c1"), ("duplicate", "c2")]
    report = check_spec(spec, systems, unlinked_sources=["c3"])
    assert [(f.kind, f.source_id) for f in report.findings if f.check == "link_first"] == [
        ("created_unlinked", "c3")
    ]
