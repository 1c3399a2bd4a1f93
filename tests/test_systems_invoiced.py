"""The Invoiced connector speaks JSON REST: POST, PATCH, DELETE and Link pagination."""

from __future__ import annotations

import json

import httpx
import pytest

from talkqa.systems.base import AuthenticationFailed, BadRequest, NotFound, UnexpectedResponse
from talkqa.systems.invoiced import InvoicedClient, next_page_params
from tests.systems_fixtures import Recorder, mock_client, query

BASE = "https://api.sandbox.invoiced.com"


def client(recorder: Recorder) -> InvoicedClient:
    return mock_client(InvoicedClient, recorder, BASE, "inv-key")


def page(entities: list[dict[str, object]], links: dict[str, int], total: int) -> httpx.Response:
    link = ", ".join(
        f'<{BASE}/customers?page={number}&per_page=100>; rel="{rel}"'
        for rel, number in links.items()
    )
    return httpx.Response(200, json=entities, headers={"Link": link, "X-Total-Count": str(total)})


def test_create_sends_json_with_idempotency_key() -> None:
    made = {"id": 11, "object": "customer", "name": "Ada", "type": "person"}
    recorder = Recorder({("POST", "/customers"): [httpx.Response(201, json=made)]})
    fields = {"name": "Ada", "type": "person", "metadata": {"chargebee_id": "c1"}}
    assert client(recorder).customers.create(fields, idempotency_key="run-1-c1") == made
    sent = recorder.requests[0]
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["idempotency-key"] == "run-1-c1"
    assert json.loads(sent.content) == fields


def test_update_patches_only_the_given_fields() -> None:
    recorder = Recorder(
        {("PATCH", "/customers/11"): [httpx.Response(200, json={"id": 11, "city": "Oslo"})]}
    )
    client(recorder).customers.update("11", {"city": "Oslo"})
    assert recorder.calls() == [("PATCH", "/customers/11")]
    assert json.loads(recorder.requests[0].content) == {"city": "Oslo"}
    assert "idempotency-key" not in recorder.requests[0].headers


def test_delete_sends_delete_and_accepts_204() -> None:
    recorder = Recorder({("DELETE", "/invoices/5"): [httpx.Response(204)]})
    client(recorder).invoices.delete("5")
    assert recorder.calls() == [("DELETE", "/invoices/5")]


def test_list_follows_link_next_page_by_page() -> None:
    recorder = Recorder(
        {
            ("GET", "/customers"): [
                page([{"id": 1}, {"id": 2}], {"self": 1, "next": 2, "last": 3}, 5),
                page([{"id": 3}, {"id": 4}], {"self": 2, "previous": 1, "next": 3, "last": 3}, 5),
                page([{"id": 5}], {"self": 3, "previous": 2, "last": 3}, 5),
            ]
        }
    )
    assert [c["id"] for c in client(recorder).customers.list()] == [1, 2, 3, 4, 5]
    assert [query(r)["page"] for r in recorder.requests] == ["1", "2", "3"]
    assert all(query(r)["per_page"] == "100" for r in recorder.requests)
    assert all(str(r.url).startswith(BASE + "/customers?") for r in recorder.requests)


def test_list_updated_after_sorts_by_updated_at() -> None:
    recorder = Recorder({("GET", "/items"): [httpx.Response(200, json=[])]})
    assert list(client(recorder).items.list(1700000000)) == []
    assert query(recorder.requests[0]) == {
        "page": "1",
        "per_page": "100",
        "updated_after": "1700000000",
        "sort": "updated_at asc",
    }


def test_find_spells_filter_and_metadata_lookups() -> None:
    person = {"id": 7, "type": "person", "metadata": {"chargebee_id": "c1"}}
    recorder = Recorder({("GET", "/customers"): [httpx.Response(200, json=[person])]})
    found = client(recorder).customers.find(
        filter={"type": "person"}, metadata={"chargebee_id": "c1"}
    )
    assert found == [person]
    assert query(recorder.requests[0]) == {
        "page": "1",
        "per_page": "100",
        "filter[type]": "person",
        "metadata[chargebee_id]": "c1",
    }


def test_next_page_takes_only_the_query_of_the_link() -> None:
    response = httpx.Response(
        200, headers={"Link": '<http://elsewhere:9/customers?page=4&per_page=100>; rel="next"'}
    )
    assert next_page_params(response) == {"page": "4", "per_page": "100"}
    assert next_page_params(httpx.Response(200)) is None


def test_a_link_that_points_at_the_same_page_ends_the_list() -> None:
    recorder = Recorder(
        {
            ("GET", "/customers"): [
                page([{"id": 1}], {"self": 1, "next": 1}, 1),
                page([{"id": 1}], {"self": 1, "next": 1}, 1),
            ]
        }
    )
    assert [c["id"] for c in client(recorder).customers.list()] == [1]
    assert len(recorder.requests) == 1


def test_items_have_string_ids_and_customers_integer_ids() -> None:
    recorder = Recorder(
        {
            ("GET", "/items/widget"): [httpx.Response(200, json={"id": "widget"})],
            ("GET", "/customers/3"): [httpx.Response(200, json={"id": "3"})],
        }
    )
    inv = client(recorder)
    assert inv.items.get("widget") == {"id": "widget"}
    with pytest.raises(UnexpectedResponse, match=r"invoiced customers 3: .*\(field id\)$"):
        inv.customers.get("3")


def test_a_list_that_is_not_an_array_is_unexpected() -> None:
    recorder = Recorder({("GET", "/invoices"): [httpx.Response(200, json={"data": []})]})
    with pytest.raises(UnexpectedResponse, match="not a JSON array"):
        list(client(recorder).invoices.list())


def test_errors_name_system_resource_id_and_field() -> None:
    recorder = Recorder(
        {
            ("GET", "/customers/99"): [
                httpx.Response(404, json={"type": "invalid_request", "message": "No such customer"})
            ],
            ("POST", "/invoices"): [
                httpx.Response(
                    400,
                    json={
                        "type": "invalid_request",
                        "message": "Customer is required",
                        "param": "customer",
                    },
                )
            ],
            ("GET", "/items"): [httpx.Response(401, json={"type": "invalid_request"})],
        }
    )
    inv = client(recorder)
    with pytest.raises(NotFound) as missing:
        inv.customers.get("99")
    assert str(missing.value) == (
        "invoiced customers 99: HTTP 404 invalid_request: No such customer"
    )
    with pytest.raises(BadRequest) as refused:
        inv.invoices.create({"currency": "usd"})
    assert str(refused.value) == (
        "invoiced invoices: HTTP 400 invalid_request: Customer is required (field customer)"
    )
    with pytest.raises(AuthenticationFailed, match="invoiced items: HTTP 401"):
        list(inv.items.list())


def test_the_limiter_and_counter_are_shared_by_the_collections() -> None:
    recorder = Recorder(
        {
            ("GET", "/customers/1"): [httpx.Response(200, json={"id": 1})],
            ("GET", "/invoices/2"): [httpx.Response(200, json={"id": 2})],
        }
    )
    sleeps: list[float] = []
    inv = InvoicedClient(
        httpx.Client(transport=httpx.MockTransport(recorder)),
        BASE,
        "k",
        sleep=sleeps.append,
        clock=lambda: 0.0,
        requests_per_minute=1,
    )
    inv.customers.get("1")
    inv.invoices.get("2")
    assert sleeps == [pytest.approx(60 / 0.98, abs=0.001)]  # 1/min paced at 98%
    assert inv.counter.counts() == {
        "invoiced GET /customers/{id}": 1,
        "invoiced GET /invoices/{id}": 1,
    }


def test_an_invoice_whose_customer_is_not_an_integer_id_is_unexpected() -> None:
    recorder = Recorder(
        {("GET", "/invoices/4"): [httpx.Response(200, json={"id": 4, "customer": "cust-1"})]}
    )
    with pytest.raises(UnexpectedResponse, match=r"^invoiced invoices 4: .*\(field customer\)$"):
        client(recorder).invoices.get("4")
