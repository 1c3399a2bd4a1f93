"""The judge on Chargebee Addresses (catalog rule): an Address lands on the Invoiced customer
linked to its subscription's customer, in the section of that customer's Talk datatype; the
reverse demands an Address only where the linked Chargebee customer has a subscription."""

from __future__ import annotations

from typing import Any

from talkqa.checks import FindingKind, bindings_of, check_section, demanded, snapshot_from
from talkqa.dataflow.spec import DatatypeRef, PropertyMap, Section, SectionKind

Json = dict[str, Any]
ROWS = (("addr", "address1"), ("city", "city"), ("subscription_id", "id"), ("zip", "postal_code"))


def _section(source: tuple[str, str], target: tuple[str, str], rows: Any = ()) -> Section:
    return Section(
        index=0,
        heading=f"{source[0]} {source[1]} to {target[0]} {target[1]}",
        source=DatatypeRef(system=source[0], datatype=source[1]),
        target=DatatypeRef(system=target[0], datatype=target[1]),
        kind=SectionKind.EVERY,
        properties=tuple(
            PropertyMap(source_path=s, target_path=t, data_type="string", line=10 + i)
            for i, (s, t) in enumerate(rows)
        ),
        file="f.rst",
        line=1,
    )


ORGS = _section(("Chargebee", "Address"), ("Invoiced", "Customers (organisation data)"), ROWS)
PERSONS = _section(("Chargebee", "Address"), ("Invoiced", "Customers (human data)"), ROWS)
REVERSE = _section(("Invoiced", "Customers (location data)"), ("Chargebee", "Address"))
ACME = {"id": "c1", "company": "Acme AS"}
ADA = {"id": "c2", "first_name": "Ada"}


def _address(sub: str, customer: Json, city: str) -> Json:
    return {"id": sub, "subscription_id": sub, "label": "billing", "addr": f"Gate {sub}",
            "city": city, "zip": "0150", "customer_id": customer["id"], "customer": customer}


def _invoiced(ident: int, claims: str, kind: str, city: str, sub: str) -> Json:
    return {"id": ident, "type": kind, "metadata": {"chargebee_id": claims},
            "address1": f"Gate {sub}", "city": city, "postal_code": "0150"}


def _findings(section: Section, sources: list[Json], targets: list[Json]) -> list[Any]:
    source, target = bindings_of(section)
    snap = snapshot_from(section, source, target, sources, targets)
    return [(f.kind, f.source_id, f.target_path) for f in check_section(snap, {})], snap


ADDRESSES = [_address("s1", ACME, "Oslo"), _address("s2", ADA, "Bergen")]


def test_each_address_is_judged_on_its_customers_target_in_its_customers_section() -> None:
    targets = [_invoiced(7, "c1", "company", "Oslo", "s1"), _invoiced(8, "c2", "person", "Bergen",
                                                                      "s2")]
    found, snap = _findings(ORGS, ADDRESSES, targets)
    assert found == []
    assert [s["id"] for s in snap.sources] == ["s1"] and [t["id"] for t in snap.targets] == [7]
    found, snap = _findings(PERSONS, ADDRESSES, targets)
    assert found == [] and [s["id"] for s in snap.sources] == ["s2"]
    # the customer sections' other targets are not orphans of an Address section
    extra = [*targets, _invoiced(9, "c9", "company", "", "")]
    assert _findings(ORGS, ADDRESSES, extra)[0] == []


def test_an_address_on_the_wrong_customer_is_a_mismatch_and_a_missing_one_is_missing() -> None:
    swapped = [_invoiced(7, "c1", "company", "Bergen", "s2"),
               _invoiced(8, "c2", "person", "Oslo", "s1")]
    found, _ = _findings(ORGS, ADDRESSES, swapped)
    assert found == [(FindingKind.MISMATCH, "s1", "address1"), (FindingKind.MISMATCH, "s1", "city")]
    found, _ = _findings(ORGS, ADDRESSES, [])
    assert found == [(FindingKind.MISSING, "s1", None)]


def test_reverse_demands_an_address_only_where_the_linked_customer_has_a_subscription() -> None:
    sources = [{"id": 7, "type": "person", "city": "Oslo"}, {"id": 8, "type": "person",
                                                             "city": "Bergen"},
               {"id": 9, "type": "person"}]  # no address: not location data
    linked = {"id": "c1", "first_name": "Ada", "meta_data": {"invoiced_id": "7"}}
    unsubscribed = {"id": "c2", "first_name": "Bob", "meta_data": {"invoiced_id": "8"}}
    address = {**_address("s1", linked, "Oslo")}
    source, target = bindings_of(REVERSE)
    snap = snapshot_from(REVERSE, source, target, sources, [address])
    assert [s["id"] for s in snap.sources] == [7, 8]
    kept = demanded(snap, [{"id": "s1", "customer_id": "c1"}], "customer_id",
                    [linked, unsubscribed])
    assert [s["id"] for s in kept.sources] == [7]
    assert kept.undemanded == (
        "1 of 2 Invoiced Customers (location data) not demanded: no linked Chargebee customer "
        "with a live subscription to carry its Chargebee Address (one exists only on a "
        "subscription)",)
    assert check_section(kept, {}) == []
    alone = demanded(snap, [{"id": "s1", "customer_id": "c1"}, {"id": "s2", "customer_id": "c2"}],
                     "customer_id", [linked, unsubscribed])
    assert [(f.kind, f.source_id) for f in check_section(alone, {})] == [
        (FindingKind.MISSING, "8")]
