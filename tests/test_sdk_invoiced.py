"""The official Invoiced SDK (3.x) against the sandbox: its typed errors and list metadata."""

from __future__ import annotations

from typing import Any

import pytest

from talkqa.sandbox.faults import parse_spec
from talkqa.sandbox.server import RunningSandboxes
from tests import sandbox_fixtures

invoiced = pytest.importorskip("invoiced")
pytestmark = pytest.mark.sdk

served = sandbox_fixtures.served  # both emulators over sockets, once per module


@pytest.fixture
def inv(served: RunningSandboxes) -> Any:
    served.reset()
    client = invoiced.Client(served.env["INVOICED_API_KEY"])
    client.api_url = served.invoiced_base_url
    return client


def all_pages(resource: Any, **opts: Any) -> tuple[list[Any], int, int]:
    found: list[Any] = []
    page, pages = 1, 0
    while True:
        objects, meta = resource.list(page=page, per_page=2, **opts)
        found += [obj.id for obj in objects]
        pages += 1
        if "next" not in meta.links:
            return found, pages, meta.total_count
        page += 1


def test_customers_full_cycle(inv: Any) -> None:
    ids = [inv.Customer.create(name=f"P{n}", type="person" if n % 2 else "company",
                               metadata={"chargebee_id": f"c{n}"}).id for n in range(5)]
    assert ids == [1, 2, 3, 4, 5]
    assert inv.Customer.retrieve(3).metadata["chargebee_id"] == "c2"
    found, pages, total = all_pages(inv.Customer)
    assert (found, pages, total) == (ids, 3, 5)
    people, _, count = all_pages(inv.Customer, filter={"type": "person"})
    assert (people, count) == ([2, 4], 2)
    customer = inv.Customer.retrieve(2)
    customer.city = "Oslo"
    assert customer.save() is True
    assert inv.Customer.retrieve(2).city == "Oslo"
    assert inv.Customer.retrieve(2).name == "P1"
    assert customer.delete() is True
    with pytest.raises(invoiced.errors.InvalidRequestError) as missing:
        inv.Customer.retrieve(2)
    assert missing.value.status_code == 404
    with pytest.raises(invoiced.errors.InvalidRequestError) as nameless:
        inv.Customer.create(email="x@example.com")
    assert nameless.value.status_code == 400 and nameless.value.error["param"] == "name"


def test_items_full_cycle(inv: Any) -> None:
    for n in range(3):
        inv.Item.create(id=f"item{n}", name=f"Item {n}", unit_cost=10 * (n + 1))
    assert inv.Item.retrieve("item1").unit_cost == 20
    found, pages, total = all_pages(inv.Item)
    assert (found, pages, total) == (["item0", "item1", "item2"], 2, 3)
    item = inv.Item.retrieve("item0")
    item.description = "first"
    assert item.save() is True
    item.unit_cost = 99
    with pytest.raises(invoiced.errors.InvalidRequestError) as refused:
        item.save()
    assert refused.value.status_code == 400
    with pytest.raises(invoiced.errors.InvalidRequestError) as duplicate:
        inv.Item.create(id="item1", name="again")
    assert duplicate.value.error["param"] == "id"
    assert inv.Item.retrieve("item2").delete() is True
    with pytest.raises(invoiced.errors.InvalidRequestError):
        inv.Item.retrieve("item2")


def test_invoices_full_cycle(inv: Any) -> None:
    customer = inv.Customer.create(name="Ada", currency="usd")
    inv.Item.create(id="seat", name="Seat", unit_cost=12.5)
    made = [inv.Invoice.create(customer=customer.id,
                               items=[{"catalog_item": "seat", "quantity": n + 1}])
            for n in range(3)]
    assert [i.total for i in made] == [12.5, 25, 37.5]
    assert inv.Invoice.retrieve(made[1].id)["items"][0]["amount"] == 25
    found, pages, total = all_pages(inv.Invoice)
    assert (found, pages, total) == ([i.id for i in made], 2, 3)
    invoice = inv.Invoice.retrieve(made[0].id)
    invoice.purchase_order = "PO-1"
    assert invoice.save() is True and inv.Invoice.retrieve(made[0].id).purchase_order == "PO-1"
    invoice.customer = 999
    with pytest.raises(invoiced.errors.InvalidRequestError) as refused:
        invoice.save()
    assert refused.value.error["param"] == "customer"
    with pytest.raises(invoiced.errors.InvalidRequestError) as orphan:
        inv.Invoice.create(customer=12345)
    assert orphan.value.status_code == 400
    assert inv.Invoice.retrieve(made[2].id).delete() is True
    with pytest.raises(invoiced.errors.InvalidRequestError) as missing:
        inv.Invoice.retrieve(made[2].id)
    assert missing.value.status_code == 404


@pytest.mark.parametrize("resource", ["Customer", "Item", "Invoice"])
def test_wrong_key_is_an_authentication_error(served: RunningSandboxes, resource: str) -> None:
    bad = invoiced.Client("wrong")
    bad.api_url = served.invoiced_base_url
    with pytest.raises(invoiced.errors.AuthenticationError) as denied:
        getattr(bad, resource).list()
    assert denied.value.status_code == 401
    with pytest.raises(invoiced.errors.AuthenticationError):
        getattr(bad, resource).create(name="x")


def test_rate_limit_fault_is_the_sdks_rate_limit_error(served: RunningSandboxes, inv: Any) -> None:
    served.sandbox.faults.configure(parse_spec("invoiced.GET/customers=429,times=1"))
    try:
        with pytest.raises(invoiced.errors.RateLimitError):
            inv.Customer.list()
        objects, _ = inv.Customer.list()
        assert objects == []
    finally:
        served.sandbox.faults.clear()
