"""Every finding kind, on plain dicts; read_snapshot and check_spec with a fake Systems."""

from __future__ import annotations

import gc
import json
from collections.abc import Collection, Iterator, Mapping
from typing import Any

import pytest

from reference_sync.testing import checklist_spec
from talkqa.checks import (
    CheckReport,
    Finding,
    FindingKind,
    NotCovered,
    SectionSnapshot,
    bindings_of,
    check_section,
    check_spec,
    read_snapshot,
    snapshot_from,
)
from talkqa.dataflow.spec import (
    DataflowSpec,
    DatatypeRef,
    MergeRule,
    PropertyMap,
    Section,
    SectionKind,
)
from talkqa.links import Pairing, pair
from talkqa.systems import catalog
from talkqa.systems.catalog import Binding

Json = dict[str, Any]
PERSON = ("invoiced", "Customers person")
CUSTOMER_REF = ("invoiced", "Customers")  # an invoice's customer: a person or a company


def _section(
    index: int,
    source: str,
    target: str,
    props: tuple[tuple[str, str, str | None], ...] = (),
    *,
    kind: SectionKind = SectionKind.EVERY,
    merge: tuple[tuple[str, str], ...] = (),
    target_system: str = "Invoiced",
) -> Section:
    return Section(
        index=index,
        heading=f"Chargebee {source} to {target_system} {target}",
        source=DatatypeRef(system="Chargebee", datatype=source),
        target=DatatypeRef(system=target_system, datatype=target),
        kind=kind,
        merge_rules=tuple(MergeRule(source_path=s, target_path=t, line=5) for s, t in merge),
        properties=tuple(
            PropertyMap(source_path=s, target_path=t, data_type=d, line=10 + i)
            for i, (s, t, d) in enumerate(props)
        ),
        file="chargebee-invoiced.rst",
        line=index * 20 + 1,
    )


CUSTOMERS = _section(0, "Customer", "Customers person")
ORDERS = _section(
    1,
    "Order",
    "Invoices",
    (("currency_code", "currency", "string"), ("customer_id", "customer", "string")),
)


def _snap(section: Section, sources: list[Json], targets: list[Json]) -> SectionSnapshot:
    source, target = bindings_of(section)
    return snapshot_from(section, source, target, sources, targets)


def _linked(entity_id: int | str, source_id: str, **fields: Any) -> Json:
    return {"id": entity_id, "metadata": {"chargebee_id": source_id}, **fields}


def _customer_pairing(links: dict[str, int]) -> dict[tuple[str, str], Pairing]:
    sources = [{"id": cid} for cid in links]
    persons = [_linked(pid, cid, type="person") for cid, pid in links.items()]
    return {CUSTOMER_REF: pair(CUSTOMERS, sources, persons)}


def _kinds(findings: list[Finding]) -> list[str]:
    return [f.kind.value for f in findings]


# --- exists ---------------------------------------------------------------------------


def test_a_correct_pair_yields_no_finding() -> None:
    snap = _snap(
        ORDERS,
        [{"id": "ord_1", "currency_code": "USD", "customer_id": "c1"}],
        [_linked(12, "ord_1", currency="usd", customer=7)],
    )
    assert check_section(snap, _customer_pairing({"c1": 7})) == []


_C1 = [{"id": "c1"}]
_PERSON_7 = _linked(7, "c1", type="person")


@pytest.mark.parametrize(
    ("sources", "targets", "expected"),
    [
        pytest.param(
            [{"id": "c1"}, {"id": "c2"}],
            [_PERSON_7],
            ["missing: Chargebee Customer 'c2': no Invoiced Customers person is linked to it"],
            id="a source without target is missing",
        ),
        pytest.param(
            _C1,
            [_PERSON_7, _linked(8, "c1", type="person")],
            ["duplicate: Chargebee Customer 'c1': linked to 2 Invoiced Customers person: 7, 8"],
            id="two targets for one source are a duplicate",
        ),
        pytest.param(
            _C1,
            [_PERSON_7, _linked(9, "gone", type="person")],
            [
                "orphan: Chargebee Customer 'gone' -> Invoiced Customers person 9: "
                "claims a Chargebee Customer that does not exist"
            ],
            id="a target claiming an absent source is an orphan",
        ),
        pytest.param(
            _C1,
            [_linked(7, "c1", type="company")],
            [
                "wrong_type: Chargebee Customer 'c1' -> Invoiced Customers person 7: "
                "type expected 'person' got 'company'"
            ],
            id="a company where a person is due is wrong_type, not missing",
        ),
        # The corpus syncs a Chargebee Customer to both a person and a company.
        pytest.param(
            _C1,
            [_linked(7, "c1", type="company"), _linked(8, "c1", type="person")],
            [],
            id="a linked target of another type is ignored when the right one exists",
        ),
        pytest.param(
            [],
            [_linked(7, "gone", type="company")],
            [],
            id="orphans of another type belong to another section",
        ),
    ],
)
def test_existence_findings(sources: list[Json], targets: list[Json], expected: list[str]) -> None:
    """Each message names the kind and both ids (the message is built from those fields)."""
    findings = check_section(_snap(CUSTOMERS, sources, targets), {})
    assert [f.message for f in findings] == expected
    assert {f.check for f in findings} <= {"exists"}


def test_deleted_sources_owe_no_target_and_their_targets_are_orphans() -> None:
    snap = _snap(
        CUSTOMERS,
        [{"id": "c1", "deleted": True}],
        [_linked(7, "c1", type="person")],
    )
    assert snap.sources == []
    assert _kinds(check_section(snap, {})) == ["orphan"]


# --- properties -----------------------------------------------------------------------


def test_a_property_that_differs_is_a_mismatch_explained_by_deepdiff() -> None:
    snap = _snap(
        ORDERS,
        [{"id": "ord_3", "currency_code": "EUR", "customer_id": "c1"}],
        [_linked(12, "ord_3", currency="usd", customer=7)],
    )
    findings = check_section(snap, _customer_pairing({"c1": 7}))
    assert _kinds(findings) == ["mismatch"]
    found = findings[0]
    assert (found.source_path, found.target_path) == ("currency_code", "currency")
    assert (found.expected, found.actual) == ("EUR", "usd")
    assert found.check == "properties"
    assert found.message == (
        "mismatch: Chargebee Order 'ord_3' -> Invoiced Invoices 12: currency_code -> currency "
        "expected 'EUR' got 'usd' [as string: currency: 'EUR' -> 'USD']"
    )


def test_currency_case_is_not_a_mismatch() -> None:
    snap = _snap(
        ORDERS,
        [{"id": "o", "currency_code": "NOK", "customer_id": None}],
        [_linked(1, "o", currency="nok")],
    )
    assert check_section(snap, {}) == []


def test_nested_and_list_paths_are_compared_under_the_declared_type() -> None:
    section = _section(
        2,
        "Customer",
        "Customers person",
        (("billing_address.city", "city", "string"), ("meta_data.tags", "metadata.tags", None)),
    )
    source = {"id": "c1", "billing_address": {"city": "Oslo"}, "meta_data": {"tags": [1, 2]}}
    good = _linked(7, "c1", type="person", city="Oslo")
    good["metadata"]["tags"] = [1, 2]
    assert check_section(_snap(section, [source], [good]), {}) == []
    bad = _linked(7, "c1", type="person", city="Bergen")
    bad["metadata"]["tags"] = [1, 3]
    findings = check_section(_snap(section, [source], [bad]), {})
    assert [f.target_path for f in findings] == ["city", "metadata.tags"]
    assert findings[1].explanation == "metadata.tags[1]: 2 -> 3"


def test_line_item_lists_compare_element_wise() -> None:
    section = _section(
        3, "Order", "Invoices", (("order_line_items.unit_price", "items.unit_cost", "decimal"),)
    )
    source = {"id": "o1", "order_line_items": [{"unit_price": "1.50"}, {"unit_price": 2}]}
    ok = _linked(1, "o1", items=[{"unit_cost": 1.5}, {"unit_cost": 2.0}])
    assert check_section(_snap(section, [source], [ok]), {}) == []
    short = _linked(1, "o1", items=[{"unit_cost": 1.5}])
    findings = check_section(_snap(section, [source], [short]), {})
    assert _kinds(findings) == ["mismatch"]
    assert "missing on the target" in findings[0].explanation


def test_existence_only_sections_check_no_properties() -> None:
    snap = _snap(CUSTOMERS, [{"id": "c1", "email": "x"}], [_linked(7, "c1", type="person")])
    assert CUSTOMERS.existence_only
    assert check_section(snap, {}) == []


# --- references -----------------------------------------------------------------------


def test_a_reference_must_name_the_person_linked_to_the_referenced_customer() -> None:
    snap = _snap(
        ORDERS,
        [{"id": "ord_1", "currency_code": "USD", "customer_id": "c1"}],
        [_linked(12, "ord_1", currency="usd", customer=8)],
    )
    findings = check_section(snap, _customer_pairing({"c1": 7, "c2": 8}))
    assert _kinds(findings) == ["dangling_reference"]
    found = findings[0]
    assert found.check == "references"
    assert (found.expected, found.actual) == (7, 8)
    assert found.message == (
        "dangling_reference: Chargebee Order 'ord_1' -> Invoiced Invoices 12: customer_id -> "
        "customer expected 7 got 8 (the Invoiced Customers linked to Chargebee "
        "Customer 'c1')"
    )


def test_a_reference_to_an_unlinked_customer_is_dangling() -> None:
    snap = _snap(
        ORDERS,
        [{"id": "ord_1", "currency_code": "USD", "customer_id": "c5"}],
        [_linked(12, "ord_1", currency="usd", customer=8)],
    )
    findings = check_section(snap, _customer_pairing({"c1": 7}))
    assert _kinds(findings) == ["dangling_reference"]
    assert findings[0].expected is None
    assert "no single Invoiced Customers is linked to Chargebee Customer 'c5'" in (
        findings[0].message
    )


def test_references_are_not_plain_compared_when_no_pairing_is_known() -> None:
    snap = _snap(
        ORDERS,
        [{"id": "ord_1", "currency_code": "USD", "customer_id": "c1"}],
        [_linked(12, "ord_1", currency="usd", customer=7)],
    )
    assert check_section(snap, {}) == []


# --- link-first and merge ---------------------------------------------------------------


def test_link_first_sections_do_not_require_a_target() -> None:
    section = _section(4, "Customer", "Customers person", kind=SectionKind.LINK_FIRST)
    snap = _snap(section, [{"id": "c1"}], [])
    assert check_section(snap, {}) == []


def test_link_first_sections_create_nothing_for_an_unlinked_source() -> None:
    section = _section(4, "Customer", "Customers person", kind=SectionKind.LINK_FIRST)
    snap = _snap(
        section,
        [{"id": "c1"}, {"id": "c2"}],
        [_linked(7, "c1", type="person"), _linked(8, "c2", type="person")],
    )
    findings = check_section(snap, {}, unlinked_sources={"c2"})
    assert _kinds(findings) == ["created_unlinked"]
    assert (findings[0].source_id, findings[0].target_id) == ("c2", "8")
    assert findings[0].check == "link_first"


def test_conditional_sections_do_not_report_missing_targets() -> None:
    section = _section(5, "Customer", "Customers person", kind=SectionKind.CONDITIONAL)
    assert check_section(_snap(section, [{"id": "c1"}], []), {}) == []


def test_merge_sections_pair_an_existing_target_by_merge_properties() -> None:
    section = _section(
        6,
        "Customer",
        "Customers person",
        (("email", "email", "string"),),
        merge=(("email", "email"),),
    )
    existing = {"id": 40, "type": "person", "email": "ada@x.io"}
    source = {"id": "c1", "email": "ada@x.io"}
    assert check_section(_snap(section, [source], [existing]), {}) == []
    # a syncer that created a second person instead of merging
    created = _linked(41, "c1", type="person", email="ada@x.io")
    findings = check_section(_snap(section, [source], [existing, created]), {})
    assert _kinds(findings) == ["duplicate"]


def test_the_typed_pairing_is_the_pairing_of_the_typed_targets_alone() -> None:
    """Taken from the snapshot's own pairing, it must equal pairing the targets of the bound
    type afresh: claimed, merged, duplicated and orphaned, persons and companies mixed."""
    email = ("email", "email")
    section = _section(6, "Customer", "Customers person", ((*email, "string"),), merge=(email,))
    sources = [{"id": f"c{n}", "email": f"p{n}@x.io"} for n in range(6)]
    targets = [
        _linked(1, "c0", type="person"),
        _linked(2, "c1", type="company"),  # wrong type: not a person's link
        _linked(3, "c2", type="person"),
        _linked(4, "c2", type="person"),  # duplicate
        _linked(5, "gone", type="person"),  # orphan
        _linked(6, "gone", type="company"),  # orphan of another type
        {"id": 7, "type": "person", "email": "P3@x.io"},  # merged by email
        {"id": 8, "type": "company", "email": "p4@x.io"},  # unclaimed company: not in it
    ]
    snap = _snap(section, sources, targets)
    typed = [t for t in snap.targets if snap.target.holds(t)]
    fresh = pair(section, snap.sources, typed, source_system="chargebee")
    taken = snap.typed_pairing()
    assert taken.by_source == fresh.by_source
    assert taken.orphans == fresh.orphans
    assert taken.merged == fresh.merged == frozenset({"7"})
    assert [t["id"] for t in taken.targets_of("c2")] == [3, 4]
    assert taken.targets_of("c1") == []


def test_unclaimed_targets_do_not_enter_snapshots_of_non_merge_sections() -> None:
    snap = _snap(CUSTOMERS, [{"id": "c1"}], [{"id": 40, "type": "person"}])
    assert snap.targets == []
    assert _kinds(check_section(snap, {})) == ["missing"]


# --- finding model ------------------------------------------------------------------------


def test_findings_serialise_with_their_message_and_read_back() -> None:
    finding = Finding(
        kind=FindingKind.MISMATCH,
        section="S",
        section_index=1,
        check="properties",
        source_id="a",
        target_id="1",
        source_path="x",
        target_path="y",
        expected="E",
        actual="A",
    )
    body = json.loads(finding.model_dump_json())
    assert body["message"].startswith("mismatch: source 'a' -> target 1: x -> y expected 'E'")
    assert Finding.model_validate(body) == finding


# --- snapshots and whole spec with a fake Systems -----------------------------------------


class FakeResource:
    def __init__(self, system: str, name: str, rows: list[Json], calls: list[str]) -> None:
        self.system, self.name, self.rows, self.calls = system, name, rows, calls

    def list(
        self, updated_after: int | None = None, *, fields: Collection[str] | None = None
    ) -> Iterator[Json]:
        self.calls.append(f"{self.system} {self.name}")
        return iter(self.rows)

    def get(self, entity_id: str) -> Json:
        raise NotImplementedError

    def create(self, fields: Mapping[str, Any], idempotency_key: str | None = None) -> Json:
        raise NotImplementedError

    def update(self, entity_id: str, fields: Mapping[str, Any]) -> Json:
        raise NotImplementedError

    def delete(self, entity_id: str) -> None:
        raise NotImplementedError


class FakeSystems:
    def __init__(self, data: dict[tuple[str, str], list[Json]]) -> None:
        self.data = data
        self.calls: list[str] = []

    def resource(self, binding: Binding) -> FakeResource:
        rows = self.data.get((binding.system, binding.resource), [])
        return FakeResource(binding.system, binding.resource, rows, self.calls)


def _world() -> FakeSystems:
    return FakeSystems(
        {
            ("chargebee", "customers"): [{"id": "c1"}, {"id": "c2"}],
            ("chargebee", "orders"): [
                {"id": "o1", "currency_code": "USD", "customer_id": "c1"},
                {"id": "o2", "currency_code": "EUR", "customer_id": "c2"},
            ],
            ("invoiced", "customers"): [
                _linked(7, "c1", type="person"),
                _linked(8, "c2", type="person"),
                {"id": 99, "type": "person"},  # someone else's customer
            ],
            ("invoiced", "invoices"): [
                _linked(12, "o1", currency="usd", customer=7),
                _linked(13, "o2", currency="usd", customer=7),
            ],
        }
    )


def test_read_snapshot_lists_both_sides_and_restricts_to_source_ids() -> None:
    systems = _world()
    snap = read_snapshot(ORDERS, systems)
    assert [s["id"] for s in snap.sources] == ["o1", "o2"]
    assert [t["id"] for t in snap.targets] == [12, 13]
    live = read_snapshot(ORDERS, systems, source_ids=["o2"])
    assert [s["id"] for s in live.sources] == ["o2"]
    assert [t["id"] for t in live.targets] == [13]


def test_read_snapshot_of_an_unbound_section_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        catalog, "UNJUDGEABLE", {("chargebee", "quote"): "quotes need a connector first"}
    )
    section = _section(7, "Quote", "Customers (organisation data)")
    with pytest.raises(NotCovered, match="no connector for 'Chargebee Quote'") as caught:
        read_snapshot(section, _world())
    # The cell says exactly what stands in the way, not only that something does.
    assert caught.value.reason == (
        "no connector for 'Chargebee Quote': quotes need a connector first"
    )
    assert str(caught.value).startswith(
        "section 7 'Chargebee Quote to Invoiced Customers (organisation data)' "
        "(chargebee-invoiced.rst:141): no connector"
    )


def test_check_spec_judges_every_section_and_reads_each_collection_once() -> None:
    spec = checklist_spec(
        _section(0, "Quote", "Customers (human data)"),
        CUSTOMERS.model_copy(update={"index": 1}),
        ORDERS.model_copy(update={"index": 2}),
    )
    systems = _world()
    report = check_spec(spec, systems)
    assert isinstance(report, CheckReport)
    assert not report.passed
    assert [(f.kind.value, f.source_id, f.source_path) for f in report.findings] == [
        ("mismatch", "o2", "currency_code"),
        ("dangling_reference", "o2", "customer_id"),
    ]
    assert sorted(systems.calls) == sorted(
        ["chargebee customers", "invoiced customers", "chargebee orders", "invoiced invoices"]
    )
    uncovered, customers, orders = report.sections
    assert not uncovered.covered and "Chargebee Quote" in (uncovered.reason or "")
    assert (customers.sources_checked, customers.pairs_checked, customers.existence_only) == (
        2,
        2,
        True,
    )
    assert (orders.sources_checked, orders.targets_seen, orders.pairs_checked) == (2, 2, 2)
    body = json.loads(report.to_json())
    assert body["passed"] is False
    assert body["counts"] == {"mismatch": 1, "dangling_reference": 1}
    assert report.findings_for(2, "references")[0].target_id == "13"


def test_check_spec_pairs_references_even_without_the_referenced_section() -> None:
    spec = DataflowSpec(file="f.rst", source="Chargebee", target="Invoiced", sections=(ORDERS,))
    report = check_spec(spec, _world())
    assert _kinds(report.findings) == ["mismatch", "dangling_reference"]


def test_check_spec_in_live_mode_judges_only_this_runs_sources() -> None:
    spec = DataflowSpec(
        file="f.rst", source="Chargebee", target="Invoiced", sections=(CUSTOMERS, ORDERS)
    )
    report = check_spec(spec, _world(), source_ids={"c1", "o1"})
    assert report.passed
    assert [s.sources_checked for s in report.sections] == [1, 1]


def test_a_blank_system_name_is_not_covered_and_says_how_to_bind_it() -> None:
    section = _section(0, "Customer", "Customers person", target_system="")
    with pytest.raises(NotCovered, match="leaves a system name blank; bind it with --bind-blank"):
        bindings_of(section)


def test_check_spec_through_the_real_connectors_against_the_sandbox() -> None:
    """The judge's only I/O, end to end: vendor clients over HTTP to the bundled emulators."""
    import httpx

    from talkqa.sandbox.server import running_sandboxes
    from talkqa.systems.connect import Systems
    from talkqa.systems.settings import Settings

    spec = DataflowSpec(
        file="f.rst", source="Chargebee", target="Invoiced", sections=(CUSTOMERS, ORDERS)
    )
    with running_sandboxes() as sandboxes, httpx.Client() as http:
        systems = Systems.connect(Settings.from_env(sandboxes.env), http)
        systems.chargebee.customers.create({"id": "c1", "first_name": "Ada"})
        systems.chargebee.customers.create({"id": "c2", "first_name": "Bob"})
        order = systems.chargebee.orders.create(
            {"customer_id": "c1", "currency_code": "USD", "amount": 1000, "description": "x"}
        )
        ada = systems.invoiced.customers.create(
            {"name": "Ada", "type": "person", "metadata": {"chargebee_id": "c1"}}
        )
        systems.invoiced.customers.create(
            {"name": "Bob", "type": "company", "metadata": {"chargebee_id": "c2"}}
        )
        systems.invoiced.invoices.create(
            {"customer": ada["id"], "currency": "usd", "metadata": {"chargebee_id": order["id"]}}
        )
        report = check_spec(spec, systems)
        reads = {k: v for k, v in systems.call_counts().items() if " GET " in k}
    assert [(f.kind.value, f.source_id) for f in report.findings] == [("wrong_type", "c2")]
    assert [s.pairs_checked for s in report.sections] == [1, 1]
    assert set(reads.values()) == {1}  # each collection listed once (one page each)
    assert len(reads) == 4


# --- what a judgement covered (the scenarios refuse a vacuous pass with it) ------------------


def test_a_reference_to_an_unlinked_customer_is_dangling_even_when_the_target_names_none() -> None:
    """No person is linked to c5, so no value of ``customer`` can be right: an empty one is
    not "equal" to the missing link."""
    snap = _snap(
        ORDERS,
        [{"id": "ord_1", "currency_code": "USD", "customer_id": "c5"}],
        [_linked(12, "ord_1", currency="usd", customer=None)],
    )
    findings = check_section(snap, _customer_pairing({"c1": 7}))
    assert [(f.kind.value, f.expected, f.actual) for f in findings] == [
        ("dangling_reference", None, None)
    ]
    assert "no single Invoiced Customers is linked to Chargebee Customer 'c5'" in (
        findings[0].message
    )
    # no reference on either side stays no finding
    empty = _snap(ORDERS, [{"id": "o", "currency_code": "USD"}], [_linked(1, "o", currency="usd")])
    assert check_section(empty, _customer_pairing({"c1": 7})) == []


def test_a_reference_must_point_at_a_target_of_the_referenced_type() -> None:
    """c2 is linked to a company only: an invoice naming that company names no person."""
    world = _world()
    world.data["invoiced", "customers"][1]["type"] = "company"  # c2's target: person 8
    world.data["invoiced", "invoices"][1]["customer"] = 8  # o2 -> c2 -> company 8
    world.data["chargebee", "orders"][1]["currency_code"] = "USD"
    spec = DataflowSpec(
        file="f.rst", source="Chargebee", target="Invoiced", sections=(CUSTOMERS, ORDERS)
    )
    report = check_spec(spec, world)
    assert [(f.kind.value, f.source_id) for f in report.findings] == [
        ("wrong_type", "c2"),
        ("dangling_reference", "o2"),
    ]


def test_pairs_checked_counts_sources_with_exactly_one_target_of_the_bound_type() -> None:
    world = FakeSystems(
        {
            ("chargebee", "customers"): [{"id": "c1"}, {"id": "c2"}, {"id": "c3"}, {"id": "c4"}],
            ("invoiced", "customers"): [
                _linked(7, "c1", type="person"),
                _linked(8, "c2", type="person"),
                _linked(9, "c2", type="person"),  # c2: duplicate, not a pair
                _linked(10, "c3", type="company"),  # c3: wrong type, not a pair
            ],
        }
    )
    spec = DataflowSpec(file="f.rst", source="Chargebee", target="Invoiced", sections=(CUSTOMERS,))
    [result] = check_spec(spec, world).sections
    assert (result.sources_checked, result.pairs_checked) == (4, 1)
    assert result.source_ids == ["c1", "c2", "c3", "c4"]
    assert "source_ids" not in json.loads(check_spec(spec, world).to_json())["sections"][0]


def test_rows_empty_on_both_sides_of_every_pair_are_named_as_not_compared() -> None:
    section = _section(
        8,
        "Customer",
        "Customers person",
        (("email", "email", "string"), ("phone", "phone", "string"), ("fax", "fax", None)),
    )
    world = FakeSystems(
        {
            ("chargebee", "customers"): [
                {"id": "c1", "email": "a@x", "phone": ""},
                {"id": "c2", "email": "b@x"},
                {"id": "c3", "fax": "12"},  # no target: not a pair, its fax does not count
            ],
            ("invoiced", "customers"): [
                _linked(7, "c1", type="person", email="a@x", phone=None),
                _linked(8, "c2", type="person", email="b@x", phone="+47"),
            ],
        }
    )
    spec = DataflowSpec(file="f.rst", source="Chargebee", target="Invoiced", sections=(section,))
    report = check_spec(spec, world)
    # phone differs on c2 (a mismatch, so compared); fax is empty on both sides of both pairs
    assert report.sections[0].uncompared == ["fax -> fax"]
    assert [(f.kind.value, f.source_id, f.target_path) for f in report.findings] == [
        ("mismatch", "c2", "phone"),
        ("missing", "c3", None),
    ]
    nothing = FakeSystems({("chargebee", "customers"): [{"id": "c1"}]})
    assert check_spec(spec, nothing).sections[0].uncompared == []  # no pair: not this check's


def test_check_spec_reads_and_judges_with_the_collector_paused() -> None:
    seen: list[bool] = []

    class Watching(FakeSystems):
        def resource(self, binding: Binding) -> FakeResource:
            seen.append(gc.isenabled())
            return super().resource(binding)

    was = gc.isenabled()
    gc.enable()
    try:
        report = check_spec(checklist_spec(ORDERS), Watching(_world().data))
        assert gc.isenabled()
    finally:
        (gc.enable if was else gc.disable)()
    assert seen and not any(seen)
    assert report.sections[0].covered
