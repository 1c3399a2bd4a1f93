"""The judge pairs entities by what the target system says, never by the syncer's memory."""

from __future__ import annotations

from typing import Any

from talkqa.dataflow.spec import DatatypeRef, MergeRule, Section, SectionKind
from talkqa.links import claim, entity_id, link_key, pair


def _section(*merge: tuple[str, str]) -> Section:
    return Section(
        index=0,
        heading="Chargebee Customer to Invoiced Customers person",
        source=DatatypeRef(system="Chargebee", datatype="Customer"),
        target=DatatypeRef(system="Invoiced", datatype="Customers person"),
        kind=SectionKind.EVERY,
        merges_existing=bool(merge),
        merge_rules=tuple(MergeRule(source_path=s, target_path=t, line=9) for s, t in merge),
        file="x.rst",
        line=1,
    )


def _person(pid: int, source: str | None = None, **fields: Any) -> dict[str, Any]:
    person: dict[str, Any] = {"id": pid, "type": "person", **fields}
    if source is not None:
        person["metadata"] = {"chargebee_id": source}
    return person


def test_claim_reads_metadata_or_chargebee_meta_data() -> None:
    assert claim({"metadata": {"chargebee_id": "c1"}}) == "c1"
    assert claim({"meta_data": {"invoiced_id": 12}}, "Invoiced") == "12"
    assert claim({"metadata": {"chargebee_id": "  "}}) is None
    assert claim({"metadata": None}) is None
    assert claim({"id": 1}) is None
    assert link_key("PowerOffice GO") == "powerofficego_id"


def test_entity_ids_are_strings() -> None:
    assert entity_id({"id": 12}) == "12"
    assert entity_id({"id": "c1"}) == "c1"


def test_pairs_by_claim_and_keeps_every_source() -> None:
    sources = [{"id": "c1"}, {"id": "c2"}, {"id": "c3"}]
    targets = [_person(10, "c1"), _person(11, "c2"), _person(12, "c2")]
    pairing = pair(_section(), sources, targets)
    assert pairing.by_source == {
        "c1": [targets[0]],
        "c2": [targets[1], targets[2]],
        "c3": [],
    }
    assert pairing.linked_id("c1") == "10"
    assert pairing.linked_id("c2") is None  # two targets: no single link
    assert pairing.linked_id("c3") is None
    assert pairing.linked_id("unknown") is None
    assert pairing.orphans == []


def test_targets_claiming_an_absent_source_are_orphans() -> None:
    orphan = _person(13, "c9")
    pairing = pair(_section(), [{"id": "c1"}], [_person(10, "c1"), orphan])
    assert pairing.orphans == [orphan]


def test_unclaimed_targets_are_ignored_without_merge_rules() -> None:
    pairing = pair(_section(), [{"id": "c1", "email": "a@x.io"}], [_person(10, email="a@x.io")])
    assert pairing.by_source == {"c1": []}
    assert pairing.orphans == []
    assert pairing.merged == frozenset()


def test_merge_rules_pair_unclaimed_targets_by_their_properties() -> None:
    section = _section(("email", "email"), ("billing_address.phone", "phone"))
    sources: list[dict[str, Any]] = [
        {"id": "c1", "email": "Ada@X.io "},
        {"id": "c2", "billing_address": {"phone": "555"}},
        {"id": "c3", "email": None},
    ]
    existing_by_email = _person(20, email="ada@x.io")
    existing_by_phone = _person(21, phone="555")
    blank = _person(22, email=None)
    pairing = pair(section, sources, [existing_by_email, existing_by_phone, blank])
    assert pairing.by_source == {"c1": [existing_by_email], "c2": [existing_by_phone], "c3": []}
    assert pairing.merged == frozenset({"20", "21"})


def test_a_claim_wins_over_merge_properties_and_a_second_target_is_visible() -> None:
    section = _section(("email", "email"))
    sources = [{"id": "c1", "email": "a@x.io"}, {"id": "c2", "email": "b@x.io"}]
    claimed_elsewhere = _person(30, "c2", email="a@x.io")
    created_instead_of_merged = _person(31, "c1", email="a@x.io")
    existing = _person(32, email="a@x.io")
    pairing = pair(section, sources, [claimed_elsewhere, created_instead_of_merged, existing])
    assert pairing.targets_of("c2") == [claimed_elsewhere]
    assert pairing.targets_of("c1") == [created_instead_of_merged, existing]
    assert pairing.linked_id("c1") is None


def test_an_unclaimed_target_matching_two_sources_is_seen_by_both() -> None:
    section = _section(("email", "email"), ("phone", "phone"))
    sources: list[dict[str, Any]] = [
        {"id": "c1", "email": "shared@x.io"},
        {"id": "c2", "phone": "555"},
    ]
    ambiguous = _person(50, email="shared@x.io", phone="555")
    pairing = pair(section, sources, [ambiguous])
    assert pairing.targets_of("c1") == [ambiguous]
    assert pairing.targets_of("c2") == [ambiguous]
    assert pairing.merged == frozenset({"50"})


def test_blank_merge_values_never_match() -> None:
    """An empty email on both sides is no evidence that two entities are the same."""
    section = _section(("email", "email"))
    sources: list[dict[str, Any]] = [{"id": "c1", "email": "  "}, {"id": "c2", "email": ""}]
    pairing = pair(section, sources, [_person(60, email=""), _person(61, email=" ")])
    assert pairing.by_source == {"c1": [], "c2": []}
    assert pairing.merged == frozenset()
