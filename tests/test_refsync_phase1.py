"""The walking skeleton: one way, Chargebee -> Invoiced, driven by the checklist."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reference_sync import LinkStore, run_sync
from reference_sync.linkstore import CREATING, Link, fingerprint
from reference_sync.plan import idempotency_key
from reference_sync.testing import (
    ORDER_PROPERTIES,
    FakeSystems,
    checklist_spec,
    section,
)


@pytest.fixture
def store() -> Iterator[LinkStore]:
    with LinkStore(":memory:") as link_store:
        yield link_store


@pytest.fixture
def vendors() -> FakeSystems:
    fake = FakeSystems()
    customers = fake["chargebee", "customers"]
    customers.seed({"id": "c1", "first_name": "Ada", "last_name": "Lovelace", "email": "a@x"})
    customers.seed({"id": "c2", "last_name": "Babbage", "company": "Analytical Ltd"})
    customers.seed({"id": "c3", "email": "grace@x"})
    fake["chargebee", "items"].seed({"id": "i1", "name": "Widget", "type": "charge"})
    fake["chargebee", "orders"].seed({"id": "o1", "customer_id": "c2", "currency_code": "USD"})
    fake["chargebee", "orders"].seed({"id": "o2", "customer_id": "c1", "currency_code": "EUR"})
    return fake


def _by_source(fake: FakeSystems, resource: str) -> dict[str, dict[str, object]]:
    rows = fake["invoiced", resource].entities.values()
    return {row["metadata"]["chargebee_id"]: row for row in rows}


def test_every_customer_becomes_a_person_with_a_name_and_its_source_id(
    vendors: FakeSystems, store: LinkStore
) -> None:
    summary = run_sync(checklist_spec(), vendors, store)
    people = _by_source(vendors, "customers")
    assert set(people) == {"c1", "c2", "c3"}
    assert {p["type"] for p in people.values()} == {"person"}
    assert people["c1"]["name"] == "Ada Lovelace"
    assert people["c2"]["name"] == "Babbage"  # a person (named), billing for a company
    assert people["c3"]["name"] == "grace@x"
    customers = next(s for s in summary.sections if s.heading.endswith("Customers person"))
    assert customers.created == 3


def test_items_are_named_after_the_chargebee_item(vendors: FakeSystems, store: LinkStore) -> None:
    run_sync(checklist_spec(), vendors, store)
    items = _by_source(vendors, "items")
    assert items["i1"]["name"] == "Widget"


def test_orders_become_invoices_with_lower_case_currency_and_the_linked_person(
    vendors: FakeSystems, store: LinkStore
) -> None:
    run_sync(checklist_spec(), vendors, store)
    people = _by_source(vendors, "customers")
    invoices = _by_source(vendors, "invoices")
    assert invoices["o1"]["currency"] == "usd"
    assert invoices["o1"]["customer"] == people["c2"]["id"]
    assert invoices["o2"]["customer"] == people["c1"]["id"]
    assert isinstance(invoices["o1"]["customer"], int)  # Invoiced ids keep their own type


def test_referenced_sections_run_first_whatever_the_document_order(
    vendors: FakeSystems, store: LinkStore
) -> None:
    seen: list[str] = []
    spec = checklist_spec(
        section(0, "Order", "Invoices", ORDER_PROPERTIES),
        section(1, "Customer", "Customers person"),
    )
    summary = run_sync(spec, vendors, store, progress=lambda heading, _d, _t: seen.append(heading))
    assert seen.index("Chargebee Customer to Invoiced Customers person") < seen.index(
        "Chargebee Order to Invoiced Invoices"
    )
    assert summary.totals["failed"] == 0
    assert [s.index for s in summary.sections] == [0, 1]  # the summary keeps document order


def test_invoice_reference_is_added_when_no_row_maps_it(
    vendors: FakeSystems, store: LinkStore
) -> None:
    spec = checklist_spec(
        section(0, "Customer", "Customers person"),
        section(1, "Order", "Invoices", (("currency_code", "currency", "string"),)),
    )
    run_sync(spec, vendors, store)
    people = _by_source(vendors, "customers")
    assert _by_source(vendors, "invoices")["o2"]["customer"] == people["c1"]["id"]


def test_orders_without_their_customer_section_fail_per_entity_not_the_run(
    vendors: FakeSystems, store: LinkStore
) -> None:
    spec = checklist_spec(section(0, "Order", "Invoices", ORDER_PROPERTIES))
    summary = run_sync(spec, vendors, store)
    orders = summary.sections[0]
    assert orders.created == 0
    assert {note.source_id for note in orders.failed} == {"o1", "o2"}
    assert vendors["invoiced", "invoices"].entities == {}


def test_mapped_properties_follow_the_checklist_paths_and_types(store: LinkStore) -> None:
    fake = FakeSystems()
    fake["chargebee", "customers"].seed(
        {
            "id": "c1",
            "first_name": "Ada",
            "billing_address": {"city": "Oslo", "zip": 150},
            "net_term_days": 30,
        }
    )
    spec = checklist_spec(
        section(
            0,
            "Customer",
            "Customers person",
            (
                ("billing_address.city", "city", "string"),
                ("billing_address.zip", "postal_code", "string"),
                ("net_term_days", "payment_terms", "string"),
                ("billing_address.state", "state", "string"),
            ),
        )
    )
    run_sync(spec, fake, store)
    person = _by_source(fake, "customers")["c1"]
    assert person["city"] == "Oslo"
    assert person["postal_code"] == "150"
    assert person["payment_terms"] == "30"
    assert "state" not in person  # nothing to send: no nulls on create


def test_unbound_sections_are_skipped_and_reported(vendors: FakeSystems, store: LinkStore) -> None:
    spec = checklist_spec(
        section(0, "Quote", "Customers (organisation data)", (("city", "city", "string"),)),
        section(1, "Customer", "Customers person"),
        section(2, "Customer", "Contacts", target_system="Hubspot"),
    )
    summary = run_sync(spec, vendors, store)
    skipped = {s.index: s.skipped for s in summary.sections if s.skipped}
    assert set(skipped) == {0, 2}
    assert "Quote" in (skipped[0] or "")
    assert summary.totals["skipped_sections"] == 2
    assert summary.sections[1].created == 3


def test_second_run_with_nothing_changed_makes_no_writes(
    vendors: FakeSystems, store: LinkStore
) -> None:
    first = run_sync(checklist_spec(), vendors, store)
    assert first.totals["created"] == 6
    vendors.calls.clear()
    second = run_sync(checklist_spec(), vendors, store)
    assert vendors.writes() == 0
    assert second.writes == 0
    assert second.totals["unchanged"] == 6
    assert second.totals["created"] == 0


def test_full_rerun_also_makes_no_writes(vendors: FakeSystems, store: LinkStore) -> None:
    run_sync(checklist_spec(), vendors, store)
    vendors.calls.clear()
    run_sync(checklist_spec(), vendors, store, full=True)
    assert vendors.writes() == 0


def test_idempotency_keys_are_deterministic_per_section_source_and_generation() -> None:
    key = idempotency_key("chargebee:Customer->invoiced:Customers person", "c1", 0)
    assert key == idempotency_key("chargebee:Customer->invoiced:Customers person", "c1", 0)
    assert key != idempotency_key("chargebee:Customer->invoiced:Customers person", "c2", 0)
    assert key != idempotency_key("chargebee:Customer->invoiced:Customers person", "c1", 1)
    assert key != idempotency_key("chargebee:Item->invoiced:Items", "c1", 0)


def test_a_retried_create_after_a_lost_store_never_duplicates(
    vendors: FakeSystems, tmp_path: Path
) -> None:
    # the first attempt reached the vendor but the answer never came back (store lost)
    with LinkStore(tmp_path / "a.sqlite") as lost:
        run_sync(checklist_spec(section(0, "Customer", "Customers person")), vendors, lost)
    with LinkStore(tmp_path / "b.sqlite") as fresh:
        summary = run_sync(
            checklist_spec(section(0, "Customer", "Customers person")), vendors, fresh
        )
    assert len(vendors["invoiced", "customers"].entities) == 3
    assert summary.sections[0].created == 0  # adopted by metadata.chargebee_id instead


class _Killed(BaseException):
    """The process died (nothing in the sync catches it, as nothing catches a SIGKILL)."""


class _DiesAtTheNextCommit(LinkStore):
    """A store that dies just before the commit that would carry a deferred row: what a
    SIGKILL between a create's answer and the next commit leaves on disk."""

    def _write(self, *statements: tuple[str, tuple[Any, ...]]) -> None:
        if self._deferred:
            self._deferred.clear()
            raise _Killed
        super()._write(*statements)


def test_a_create_whose_outcome_a_crash_lost_is_adopted_as_the_syncs_own(
    vendors: FakeSystems, tmp_path: Path
) -> None:
    spec = checklist_spec(section(0, "Customer", "Customers person"))
    key = "chargebee:Customer->invoiced:Customers person"
    with pytest.raises(_Killed), _DiesAtTheNextCommit(tmp_path / "links.sqlite") as crashed:
        run_sync(spec, vendors, crashed)
    # the three intents shared one commit before the first create; the creates' outcomes
    # were to ride the next commit, which the crash never made
    assert len(vendors["invoiced", "customers"].entities) == 3
    with LinkStore(tmp_path / "links.sqlite") as store:
        assert [(link.source_id, link.state) for link in store.links(key).values()] == [
            ("c1", CREATING),
            ("c2", CREATING),
            ("c3", CREATING),
        ]
        summary = run_sync(spec, vendors, store)
        links = store.links(key)
    assert len(vendors["invoiced", "customers"].entities) == 3  # no duplicate
    assert (summary.sections[0].readopted, summary.sections[0].created) == (3, 0)
    assert all(link.linked and link.created_by_sync for link in links.values())


def test_a_crash_between_a_batchs_creates_leaves_every_intent_and_no_duplicate(
    vendors: FakeSystems, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch's intents are on disk before its first create is sent: a process that dies
    during the second create leaves c1 made and c2, c3 intended; the rerun adopts c1 and
    creates the other two, each once."""
    spec = checklist_spec(section(0, "Customer", "Customers person"))
    key = "chargebee:Customer->invoiced:Customers person"
    people = vendors["invoiced", "customers"]
    create = people.create

    def dies_at_the_second(fields: Any, idempotency_key: str | None = None) -> Any:
        if people.entities:
            raise _Killed
        return create(fields, idempotency_key=idempotency_key)

    with LinkStore(tmp_path / "links.sqlite") as crashed:
        monkeypatch.setattr(people, "create", dies_at_the_second)
        monkeypatch.setattr(crashed, "flush", lambda: None)  # a killed process flushes nothing
        monkeypatch.setattr(crashed, "close", lambda: None)
        with pytest.raises(_Killed):
            run_sync(spec, vendors, crashed)
    monkeypatch.undo()
    assert len(people.entities) == 1
    with LinkStore(tmp_path / "links.sqlite") as store:
        assert {link.state for link in store.links(key).values()} == {CREATING}
        assert len(store.links(key)) == 3
        summary = run_sync(spec, vendors, store)
    assert (summary.sections[0].readopted, summary.sections[0].created) == (1, 2)
    assert sorted(p["metadata"]["chargebee_id"] for p in people.entities.values()) == [
        "c1",
        "c2",
        "c3",
    ]


def test_create_replays_with_the_same_key(vendors: FakeSystems, store: LinkStore) -> None:
    run_sync(checklist_spec(section(0, "Customer", "Customers person")), vendors, store)
    keys = set(vendors["invoiced", "customers"].replays)
    section_key = "chargebee:Customer->invoiced:Customers person"
    assert keys == {idempotency_key(section_key, cid, 0) for cid in ("c1", "c2", "c3")}


def test_a_failed_create_is_reported_and_retried_next_run(
    vendors: FakeSystems, store: LinkStore
) -> None:
    spec = checklist_spec(section(0, "Customer", "Customers person"))
    vendors["invoiced", "customers"].fail_create_for.add("c2")
    first = run_sync(spec, vendors, store)
    assert [n.source_id for n in first.sections[0].failed] == ["c2"]
    vendors["invoiced", "customers"].fail_create_for.clear()
    second = run_sync(spec, vendors, store)
    assert second.sections[0].created == 1
    assert set(_by_source(vendors, "customers")) == {"c1", "c2", "c3"}


def test_link_store_persists_on_disk(vendors: FakeSystems, tmp_path: Path) -> None:
    path = tmp_path / "links.sqlite"
    with LinkStore(path) as first:
        run_sync(checklist_spec(), vendors, first)
    vendors.calls.clear()
    with LinkStore(path) as again:
        assert len(again.links("chargebee:Customer->invoiced:Customers person")) == 3
        run_sync(checklist_spec(), vendors, again)
    assert vendors.writes() == 0


def test_link_values_round_trip_through_the_store_whatever_they_hold(tmp_path: Path) -> None:
    values = {"name": "Zoë Ørsted", "n": 2**70, "x": 1.5, "none": None, "m": {"b": [1], "a": {}}}
    link = Link(
        section="s",
        source_id="c1",
        target_id="7",
        target_native=7,
        source_values=values,
        target_values={"metadata": {"chargebee_id": "c1"}},
        derived={"k": True},
    )
    with LinkStore(tmp_path / "links.sqlite") as written:
        written.put(link)
    with LinkStore(tmp_path / "links.sqlite") as read:
        assert read.get("s", "c1") == link
    # equal values are equal text whatever the order of their keys
    assert fingerprint({"a": 1, "b": 2}, {}) == fingerprint({"b": 2, "a": 1}, {})
    assert fingerprint({"a": 1}, {}) != fingerprint({"a": 2}, {})


def test_a_deferred_link_is_read_at_once_and_committed_with_the_next_write(
    tmp_path: Path,
) -> None:
    path = tmp_path / "links.sqlite"

    def on_disk() -> set[str]:
        with sqlite3.connect(path) as other:  # what a crash now would leave
            return {row[0] for row in other.execute("SELECT source_id FROM links")}

    with LinkStore(path) as store:
        store.put(Link(section="s", source_id="c1", state=CREATING), defer=True)
        assert on_disk() == set()
        store.put(Link(section="s", source_id="c2", state=CREATING))
        assert on_disk() == {"c1", "c2"}
        store.put(Link(section="s", source_id="c3", target_id="9"), defer=True)
        assert store.get("s", "c3") == Link(section="s", source_id="c3", target_id="9")
        assert on_disk() == {"c1", "c2", "c3"}  # the read committed it first
        store.put(Link(section="s", source_id="c4", target_id="8"), defer=True)
    assert on_disk() == {"c1", "c2", "c3", "c4"}  # close commits what is left


def test_summary_serialises_with_totals(vendors: FakeSystems, store: LinkStore) -> None:
    import json

    data = json.loads(run_sync(checklist_spec(), vendors, store).to_json())
    assert data["totals"]["created"] == 6
    assert {s["heading"] for s in data["sections"]} == {
        "Chargebee Order to Invoiced Invoices",
        "Chargebee Customer to Invoiced Customers person",
        "Chargebee Item to Invoiced Items",
    }


def test_progress_reports_done_out_of_total_per_section(
    vendors: FakeSystems, store: LinkStore
) -> None:
    calls: list[tuple[str, int, int]] = []
    run_sync(checklist_spec(), vendors, store, progress=lambda *a: calls.append(a))
    customers = [c for c in calls if c[0].endswith("Customers person")]
    assert customers[0][1] == 0 and customers[-1] == (customers[-1][0], 3, 3)
