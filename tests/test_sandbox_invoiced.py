"""The Invoiced emulator through an in-process httpx client: what a connector relies on."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from talkqa.sandbox.clock import EPOCH
from talkqa.sandbox.server import INVOICED_API_KEY, create_sandbox
from tests.sandbox_fixtures import in_process

T0 = EPOCH - 1  # one write per second here: the n-th write is stamped T0 + n


@pytest.fixture
def inv() -> Iterator[httpx.Client]:
    app = create_sandbox(seed=0, writes_per_second=1).invoiced_app
    client = in_process(app, "http://127.0.0.1", INVOICED_API_KEY)
    yield client
    client.close()


def links(response: httpx.Response) -> dict[str, str]:
    found = re.findall(r'<([^>]*)>; rel="(\w+)"', response.headers["link"])
    return {rel: url for url, rel in found}


def test_customer_create_defaults_and_required_name(inv: httpx.Client) -> None:
    made = inv.post("/customers", json={"name": "Ada", "type": "person", "currency": "NOK",
                                        "metadata": {"chargebee_id": "c1"}})
    assert made.status_code == 201
    body = made.json()
    assert body["id"] == 1 and body["object"] == "customer" and body["number"] == "CUST-00001"
    assert body["currency"] == "nok"  # Invoiced stores currency codes in lower case
    assert body["metadata"] == {"chargebee_id": "c1"} and body["address1"] is None
    assert body["created_at"] == body["updated_at"] == T0 + 1
    missing = inv.post("/customers", json={"email": "a@example.com"})
    assert missing.status_code == 400
    assert missing.json() == {"type": "invalid_request", "message": "Name missing", "param": "name"}
    assert inv.post("/customers", json={"name": "X", "type": "robot"}).status_code == 400
    assert inv.post("/customers", json={"name": "X", "country": "Norway"}).status_code == 400
    too_many = {f"k{n}": "v" for n in range(11)}
    assert inv.post("/customers", json={"name": "X", "metadata": too_many}).status_code == 400


def test_form_bodies_are_accepted(inv: httpx.Client) -> None:
    made = inv.post("/customers", data={"name": "Ada", "metadata[chargebee_id]": "c1",
                                        "autopay": "true"})
    assert made.status_code == 201
    assert made.json()["metadata"] == {"chargebee_id": "c1"} and made.json()["autopay"] is True


def test_patch_changes_only_the_fields_sent(inv: httpx.Client) -> None:
    inv.post("/customers", json={"name": "Ada", "email": "ada@example.com", "city": "Oslo"})
    patched = inv.patch("/customers/1", json={"city": "Bergen"})
    assert patched.status_code == 200
    body = patched.json()
    assert (body["name"], body["email"], body["city"]) == ("Ada", "ada@example.com", "Bergen")
    assert body["updated_at"] == T0 + 2 and body["created_at"] == T0 + 1
    assert inv.patch("/customers/1", json={"nonsense": 1}).status_code == 400
    assert inv.get("/customers/1").json()["city"] == "Bergen"


def test_delete_is_204_then_404(inv: httpx.Client) -> None:
    inv.post("/customers", json={"name": "Ada"})
    deleted = inv.delete("/customers/1")
    assert deleted.status_code == 204 and deleted.content == b""
    missing = inv.get("/customers/1")
    assert missing.status_code == 404 and missing.json()["type"] == "invalid_request"
    assert inv.get("/customers/abc").status_code == 404


def test_a_list_leaves_out_what_was_deleted_and_pages_the_rest(inv: httpx.Client) -> None:
    for n in range(5):
        inv.post("/customers", json={"name": f"C{n}"})
    names = [c["name"] for c in inv.get("/customers", params={"per_page": "2"}).json()]
    assert names == ["C0", "C1"]  # before any delete (the tables' fast path)
    assert inv.delete("/customers/2").status_code == 204
    first = inv.get("/customers", params={"per_page": "2"})
    second = inv.get("/customers", params={"per_page": "2", "page": "2"})
    assert [c["name"] for c in first.json() + second.json()] == ["C0", "C2", "C3", "C4"]
    assert first.headers["x-total-count"] == "4"


def test_list_pages_links_and_total(inv: httpx.Client) -> None:
    for n in range(7):
        inv.post("/customers", json={"name": f"C{n}", "type": "person" if n % 2 else "company"})
    first = inv.get("/customers", params={"per_page": "3"})
    assert first.status_code == 200 and isinstance(first.json(), list)
    assert [c["name"] for c in first.json()] == ["C0", "C1", "C2"]
    assert first.headers["x-total-count"] == "7"
    rels = links(first)
    assert set(rels) == {"self", "first", "next", "last"}
    assert "page=3" in rels["last"] and "per_page=3" in rels["next"]
    middle = inv.get("/customers", params={"per_page": "3", "page": "2"})
    assert set(links(middle)) == {"self", "first", "previous", "next", "last"}
    names: list[str] = []
    url: str | None = "/customers?per_page=3"
    while url:
        page = inv.get(url)
        names += [c["name"] for c in page.json()]
        url = links(page).get("next")
    assert names == [f"C{n}" for n in range(7)]
    assert len(inv.get("/customers").json()) == 7  # default 25
    assert inv.get("/customers", params={"per_page": "500"}).status_code == 200
    people = inv.get("/customers", params={"filter[type]": "person"})
    assert [c["name"] for c in people.json()] == ["C1", "C3", "C5"]
    assert people.headers["x-total-count"] == "3"
    assert inv.get("/customers", params={"page": "0"}).status_code == 400
    assert inv.get("/customers", params={"filter[bogus]": "x"}).status_code == 400


def test_metadata_filter_updated_after_and_sort(inv: httpx.Client) -> None:
    inv.post("/customers", json={"name": "A", "metadata": {"chargebee_id": "c1"}})
    inv.post("/customers", json={"name": "B", "metadata": {"chargebee_id": "c2"}})
    inv.post("/customers", json={"name": "C"})
    inv.patch("/customers/1", json={"email": "a@example.com"})
    found = inv.get("/customers", params={"metadata[chargebee_id]": "c2"}).json()
    assert [c["name"] for c in found] == ["B"]
    after = inv.get("/customers", params={"updated_after": str(T0 + 2)}).json()
    assert [c["name"] for c in after] == ["A", "C"]  # strictly greater: B (...602) excluded
    ordered = inv.get("/customers", params={"sort": "updated_at asc"}).json()
    assert [c["name"] for c in ordered] == ["B", "C", "A"]
    reverse = inv.get("/customers", params={"sort": "updated_at desc"}).json()
    assert [c["name"] for c in reverse] == ["A", "C", "B"]
    assert inv.get("/customers", params={"sort": "email sideways"}).status_code == 400


def test_items_string_ids_and_limited_patch(inv: httpx.Client) -> None:
    made = inv.post("/items", json={"id": "widget", "name": "Widget", "unit_cost": 12.5,
                                    "currency": "USD"})
    assert made.status_code == 201 and made.json()["id"] == "widget"
    generated = inv.post("/items", json={"name": "Gadget"}).json()
    assert isinstance(generated["id"], str) and generated["id"]
    assert inv.post("/items", json={"id": "widget", "name": "Again"}).json()["param"] == "id"
    renamed = inv.patch("/items/widget", json={"name": "Widget 2", "metadata": {"a": "b"}})
    assert renamed.status_code == 200 and renamed.json()["unit_cost"] == 12.5
    refused = inv.patch("/items/widget", json={"unit_cost": 5})
    assert refused.status_code == 400 and refused.json()["param"] == "unit_cost"
    assert inv.get("/items/widget").json()["name"] == "Widget 2"
    assert inv.delete("/items/widget").status_code == 204
    assert inv.get("/items/widget").status_code == 404


def test_invoices_compute_amounts_and_protect_customer(inv: httpx.Client) -> None:
    inv.post("/customers", json={"name": "Ada", "currency": "eur"})
    inv.post("/items", json={"id": "seat", "name": "Seat", "unit_cost": 9.99})
    assert inv.post("/invoices", json={"items": []}).json()["param"] == "customer"
    assert inv.post("/invoices", json={"customer": 42}).status_code == 400
    made = inv.post("/invoices", json={"customer": 1, "items": [
        {"catalog_item": "seat", "quantity": 3},
        {"name": "Setup", "quantity": 1, "unit_cost": 100, "amount": 1},
    ]})
    assert made.status_code == 201
    body = made.json()
    assert [line["amount"] for line in body["items"]] == [29.97, 100]
    assert (body["subtotal"], body["total"], body["balance"]) == (129.97, 129.97, 129.97)
    assert body["currency"] == "eur" and body["status"] == "not_sent"
    assert inv.patch("/invoices/1", json={"customer": 2}).status_code == 400
    expanded = inv.get("/invoices", params={"expand": "customer"}).json()[0]["customer"]
    assert expanded["name"] == "Ada" and inv.get("/invoices/1").json()["customer"] == 1
    line_id = body["items"][0]["id"]
    repriced = inv.patch("/invoices/1", json={"items": [{"id": line_id, "quantity": 1}]}).json()
    assert repriced["total"] == 9.99 and repriced["items"][0]["id"] == line_id
    bad = inv.patch("/invoices/1", json={"items": [{"catalog_item": "nope"}]})
    assert bad.status_code == 400
    assert inv.get("/invoices/1").json()["total"] == 9.99
    assert inv.delete("/customers/1").status_code == 400  # it still has an invoice
    assert inv.delete("/invoices/1").status_code == 204


def test_errors_auth_unknown_route_and_malformed_json(inv: httpx.Client) -> None:
    unknown = inv.get("/nope")
    assert unknown.status_code == 404 and set(unknown.json()) == {"type", "message"}
    broken = inv.post("/customers", content=b"{nope", headers={"content-type": "application/json"})
    assert broken.status_code == 400 and broken.json()["type"] == "invalid_request"
    array = inv.post("/customers", json=[1, 2])
    assert array.status_code == 400
    wrong_type = inv.post("/customers", json={"name": ["a"]})
    assert wrong_type.status_code == 400 and wrong_type.json()["param"] == "name"
    inv.auth = ("wrong", "")
    assert inv.get("/customers").status_code == 401
    assert inv.get("/customers", headers={"authorization": "Token nope"}).status_code == 401


def test_idempotency_key_replays_the_first_answer(inv: httpx.Client) -> None:
    first = inv.post("/customers", json={"name": "Ada"}, headers={"idempotency-key": "k"})
    again = inv.post("/customers", json={"name": "Ada"}, headers={"idempotency-key": "k"})
    assert (again.status_code, again.content) == (first.status_code, first.content)
    assert inv.get("/customers").headers["x-total-count"] == "1"
    other = inv.post("/customers", json={"name": "Eve"}, headers={"idempotency-key": "k"})
    assert other.status_code == 400


def test_documented_list_parameters_act_and_unknown_ones_are_refused(inv: httpx.Client) -> None:
    owing = inv.post("/customers", json={"name": "Owing"}).json()["id"]
    settled = inv.post("/customers", json={"name": "Settled"}).json()["id"]
    early = inv.post("/invoices", json={"customer": owing, "date": 1793600000, "items": [
        {"name": "x", "unit_cost": 10}]}).json()
    inv.post("/invoices", json={"customer": settled, "date": 1793700000, "draft": True,
                                "items": [{"name": "y", "unit_cost": 5}]})

    def names(path: str, **query: str) -> list[object]:
        answer = inv.get(path, params=query)
        assert answer.status_code == 200, answer.text
        return [row.get("name") if path == "/customers" else row["id"] for row in answer.json()]

    assert names("/customers", open_balance="true") == ["Owing"]
    assert names("/customers", open_balance="false") == ["Settled"]
    assert names("/customers", payment_source="true") == []
    assert names("/customers", payment_source="false") == ["Owing", "Settled"]
    assert names("/invoices", end_date="1793650000") == [early["id"]]
    assert names("/invoices", start_date="1793650000") == [early["id"] + 1]
    for path, query in (("/customers", {"colour": "red"}), ("/items", {"open_balance": "1"}),
                        ("/invoices", {"created_after": "1"})):
        refused = inv.get(path, params=query)
        assert refused.status_code == 400 and refused.json()["param"] == next(iter(query))


def test_void_is_its_own_call_and_closed_means_bad_debt(inv: httpx.Client) -> None:
    person = inv.post("/customers", json={"name": "A"}).json()["id"]
    made = [inv.post("/invoices", json={"customer": person, "items": [
        {"name": "x", "unit_cost": 10}]}).json() for _ in range(2)]
    closed = inv.patch(f"/invoices/{made[0]['id']}", json={"closed": True}).json()
    assert (closed["status"], closed["closed"]) == ("bad_debt", True)
    voided = inv.post(f"/invoices/{made[1]['id']}/void")
    assert voided.status_code == 200, voided.text
    body = voided.json()
    assert (body["status"], body["closed"], body["balance"]) == ("voided", False, 10)
    assert inv.get(f"/invoices/{made[1]['id']}").json()["status"] == "voided"
    again = inv.post(f"/invoices/{made[1]['id']}/void")
    assert again.status_code == 400
    edit = inv.patch(f"/invoices/{made[1]['id']}", json={"notes": "late"})
    assert edit.status_code == 400
    assert inv.get(f"/invoices/{made[1]['id']}").json()["notes"] is None


def test_write_fields_are_the_vendors(inv: httpx.Client) -> None:
    made = inv.post("/customers", json={"name": "A", "sign_up_page": 7})  # documented
    assert made.status_code == 201, made.text
    ident = made.json()["id"]
    for path, body, param in (
        ("/customers", {"name": "B", "colour": "red"}, "colour"),
        (f"/customers/{ident}", {"autopay_delay_days": 3}, "autopay_delay_days"),  # create only
        ("/items", {"id": "x", "name": "X", "taxes": []}, "taxes"),
    ):
        refused = inv.request("PATCH" if path.count("/") == 2 else "POST", path, json=body)
        assert refused.status_code == 400, (path, refused.text)
        assert refused.json()["param"] == param
