"""Sesam Talk's datatypes bound to the vendors: which entities each section demands."""

from __future__ import annotations

from typing import Any

import pytest

from talkqa.checks import check_spec
from talkqa.dataflow.spec import DataflowSpec, DatatypeRef, PropertyMap, Section, SectionKind
from talkqa.systems.catalog import (
    Talk,
    bind,
    chargebee_customer_kind,
    invoiced_has_location,
    section_bindings,
)
from tests.test_checks import FakeSystems

Json = dict[str, Any]


@pytest.mark.parametrize(
    ("customer", "kind"),
    [
        ({"first_name": "Ada", "last_name": "Lovelace"}, Talk.PERSON),
        ({"first_name": "Ada", "company": "Acme AS"}, Talk.PERSON),  # a person billing a firm
        ({"last_name": "Lovelace", "company": "Acme AS"}, Talk.PERSON),
        ({"company": "Acme AS"}, Talk.ORGANISATION),
        ({"first_name": "  ", "company": "Acme AS"}, Talk.ORGANISATION),
        ({"email": "x@example.com"}, Talk.PERSON),  # nothing says organisation
        ({"company": " "}, Talk.PERSON),
    ],
)
def test_a_chargebee_customer_is_an_organisation_only_when_it_names_only_a_company(
    customer: Json, kind: Talk
) -> None:
    assert chargebee_customer_kind(customer) is kind


def test_an_invoiced_customer_has_location_data_when_an_address_field_is_filled() -> None:
    assert invoiced_has_location({"city": "Oslo"})
    assert not invoiced_has_location({"name": "Ada", "address1": " ", "city": None})


def _section(index: int, source: tuple[str, str], target: tuple[str, str]) -> Section:
    return Section(
        index=index,
        heading=f"{source[0]} {source[1]} to {target[0]} {target[1]}",
        source=DatatypeRef(system=source[0], datatype=source[1]),
        target=DatatypeRef(system=target[0], datatype=target[1]),
        kind=SectionKind.EVERY,
        file="f.rst",
        line=index * 20 + 1,
    )


ORGS = _section(0, ("Chargebee", "Customer"), ("Invoiced", "Customers (organisation data)"))
PERSONS = _section(1, ("Chargebee", "Customer"), ("Invoiced", "Customers (human data)"))


def test_a_section_narrows_its_source_by_the_target_talk_datatype() -> None:
    org_source, org_target = section_bindings(ORGS)
    person_source, _ = section_bindings(PERSONS)
    assert org_source is not None and org_target is not None and person_source is not None
    assert (org_source.kind, person_source.kind) == (Talk.ORGANISATION, Talk.PERSON)
    assert org_target.fixed == {"type": "company"}
    company, person = {"id": "c1", "company": "Acme AS"}, {"id": "c2", "first_name": "Ada"}
    assert org_source.holds(company) and not org_source.holds(person)
    assert person_source.holds(person) and not person_source.holds(company)
    # the unnarrowed datatype holds both: a datatype is not a Talk datatype
    customer = bind(DatatypeRef(system="Chargebee", datatype="Customer"))
    assert customer is not None and customer.holds(company) and customer.holds(person)
    # the reverse direction narrows the Chargebee target the same way
    reverse = _section(2, ("Invoiced", "Customers (human data)"), ("Chargebee", "Customer"))
    _, target = section_bindings(reverse)
    assert target is not None and target.kind is Talk.PERSON


def _linked(entity_id: int, source_id: str, **fields: Any) -> Json:
    return {"id": entity_id, "metadata": {"chargebee_id": source_id}, **fields}


ORDERS = Section(
    index=2,
    heading="Chargebee Order to Invoiced Invoices",
    source=DatatypeRef(system="Chargebee", datatype="Order"),
    target=DatatypeRef(system="Invoiced", datatype="Invoices"),
    kind=SectionKind.EVERY,
    properties=(
        PropertyMap(source_path="customer_id", target_path="customer", data_type="string", line=50),
    ),
    file="f.rst",
    line=41,
)


def _world(*, org_target_type: str = "company") -> FakeSystems:
    return FakeSystems(
        {
            ("chargebee", "customers"): [
                {"id": "c1", "company": "Acme AS"},
                {"id": "c2", "first_name": "Ada"},
            ],
            ("invoiced", "customers"): [
                _linked(7, "c1", type=org_target_type),
                _linked(8, "c2", type="person"),
            ],
            ("chargebee", "orders"): [
                {"id": "o1", "customer_id": "c1"},
                {"id": "o2", "customer_id": "c2"},
            ],
            ("invoiced", "invoices"): [
                _linked(11, "o1", customer=7),
                _linked(12, "o2", customer=8),
            ],
        }
    )


def test_each_customer_is_demanded_by_its_own_section_and_referenced_through_it() -> None:
    spec = DataflowSpec(
        file="f.rst", source="Chargebee", target="Invoiced", sections=(ORGS, PERSONS, ORDERS)
    )
    report = check_spec(spec, _world())
    assert report.findings == []
    assert [s.source_ids for s in report.sections] == [["c1"], ["c2"], ["o1", "o2"]]


def test_an_organisation_synced_as_a_person_is_the_wrong_type() -> None:
    spec = DataflowSpec(
        file="f.rst", source="Chargebee", target="Invoiced", sections=(ORGS, PERSONS, ORDERS)
    )
    report = check_spec(spec, _world(org_target_type="person"))
    assert [(f.kind.value, f.section_index, f.source_id) for f in report.findings] == [
        ("wrong_type", 0, "c1"),
        ("dangling_reference", 2, "o1"),
    ]


def test_a_customer_no_section_of_the_checklist_holds_is_not_demanded() -> None:
    spec = DataflowSpec(file="f.rst", source="Chargebee", target="Invoiced", sections=(PERSONS,))
    world = _world()
    world.data["invoiced", "customers"] = [_linked(8, "c2", type="person")]
    report = check_spec(spec, world)
    assert report.findings == []
    assert report.sections[0].source_ids == ["c2"]
