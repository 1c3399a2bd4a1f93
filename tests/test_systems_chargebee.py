"""The Chargebee connector sends exactly Chargebee's wire format and unwraps its answers."""

from __future__ import annotations

from urllib.parse import parse_qsl

import httpx
import pytest

from talkqa.systems.base import BadRequest, NotFound, Resource, UnexpectedResponse
from talkqa.systems.chargebee import ChargebeeClient, encode_form, invoice_fields_for_order
from tests.systems_fixtures import Recorder, mock_client, query

BASE = "https://acme-test.chargebee.com/api/v2"


def form(request: httpx.Request) -> list[tuple[str, str]]:
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    return parse_qsl(request.content.decode(), keep_blank_values=True)


def client(recorder: Recorder) -> ChargebeeClient:
    return mock_client(ChargebeeClient, recorder, BASE, "cb-key")


def customer(cid: str, **fields: object) -> dict[str, object]:
    return {"id": cid, "object": "customer", "updated_at": 1700000000, **fields}


# --- encoding -------------------------------------------------------------------------------


def test_form_encoding_uses_brackets_columns_and_indexes() -> None:
    pairs = encode_form(
        {
            "id": "o1",
            "billing_address": {"city": "Oslo", "country": "NO", "line2": None},
            "order_line_items": [
                {"id": "li1", "status": "shipped"},
                {"id": "li2", "amount": 250},
            ],
            "applicable_items": ["a", "b"],
            "auto_collection": False,
            "note": None,
            "net_term_days": 30,
        }
    )
    assert pairs == [
        ("id", "o1"),
        ("billing_address[city]", "Oslo"),
        ("billing_address[country]", "NO"),
        ("order_line_items[id][0]", "li1"),
        ("order_line_items[status][0]", "shipped"),
        ("order_line_items[id][1]", "li2"),
        ("order_line_items[amount][1]", "250"),
        ("applicable_items[0]", "a"),
        ("applicable_items[1]", "b"),
        ("auto_collection", "false"),
        ("net_term_days", "30"),
    ]


def test_json_fields_travel_as_compact_json_text() -> None:
    pairs = encode_form(
        {"meta_data": {"b": 1, "a": ["x"]}, "other": {"k": "v"}}, frozenset({"meta_data"})
    )
    assert pairs == [("meta_data", '{"a":["x"],"b":1}'), ("other[k]", "v")]
    # a value already given as text is sent as it is
    assert encode_form({"meta_data": '{"a":1}'}, frozenset({"meta_data"})) == [
        ("meta_data", '{"a":1}')
    ]


# --- customers ------------------------------------------------------------------------------


def test_create_posts_a_form_with_idempotency_key_and_returns_the_customer() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"customer": customer("c1"), "card": {"id": "x"}})

    recorder = Recorder({("POST", "/api/v2/customers"): answer})
    created = client(recorder).customers.create(
        {
            "id": "c1",
            "first_name": "Ada",
            "billing_address": {"city": "Oslo"},
            "meta_data": {"source": "qa"},
        },
        idempotency_key="run-1-c1",
    )
    assert created == customer("c1")
    sent = recorder.requests[0]
    assert sent.headers["chargebee-idempotency-key"] == "run-1-c1"
    assert sent.headers["authorization"].startswith("Basic ")
    assert form(sent) == [
        ("id", "c1"),
        ("first_name", "Ada"),
        ("billing_address[city]", "Oslo"),
        ("meta_data", '{"source":"qa"}'),
    ]


def test_no_idempotency_header_without_a_key() -> None:
    recorder = Recorder(
        {("POST", "/api/v2/customers"): [httpx.Response(200, json={"customer": customer("c2")})]}
    )
    client(recorder).customers.create({"first_name": "Bo"})
    assert "chargebee-idempotency-key" not in recorder.requests[0].headers


def test_list_follows_next_offset_and_unwraps_entries() -> None:
    pages = [
        httpx.Response(
            200,
            json={
                "list": [{"customer": customer("c1")}, {"customer": customer("c2")}],
                "next_offset": '["1700000000","2"]',
            },
        ),
        httpx.Response(200, json={"list": [{"customer": customer("c3")}]}),
    ]
    recorder = Recorder({("GET", "/api/v2/customers"): pages})
    ids = [c["id"] for c in client(recorder).customers.list()]
    assert ids == ["c1", "c2", "c3"]
    assert [query(r) for r in recorder.requests] == [
        {"limit": "100"},
        {"limit": "100", "offset": '["1700000000","2"]'},
    ]


def test_list_updated_after_filters_and_sorts_by_updated_at() -> None:
    recorder = Recorder({("GET", "/api/v2/items"): [httpx.Response(200, json={"list": []})]})
    assert list(client(recorder).items.list(1700000123)) == []
    assert query(recorder.requests[0]) == {
        "limit": "100",
        "updated_at[after]": "1700000123",
        "sort_by[asc]": "updated_at",
    }


def test_list_passes_raw_filters() -> None:
    recorder = Recorder({("GET", "/api/v2/customers"): [httpx.Response(200, json={"list": []})]})
    list(client(recorder).customers.list(filters={"include_deleted": "true"}))
    assert query(recorder.requests[0]) == {"limit": "100", "include_deleted": "true"}


def test_list_refuses_an_offset_that_repeats() -> None:
    page = {"list": [{"customer": customer("c1")}], "next_offset": "same"}
    recorder = Recorder(
        {("GET", "/api/v2/customers"): [httpx.Response(200, json=page) for _ in range(3)]}
    )
    with pytest.raises(UnexpectedResponse, match="pagination loops"):
        list(client(recorder).customers.list())


def test_update_with_only_plain_fields_makes_one_call() -> None:
    recorder = Recorder(
        {("POST", "/api/v2/customers/c1"): [httpx.Response(200, json={"customer": customer("c1")})]}
    )
    client(recorder).customers.update("c1", {"email": "a@example.com"})
    assert recorder.calls() == [("POST", "/api/v2/customers/c1")]
    assert form(recorder.requests[0]) == [("email", "a@example.com")]


def test_update_with_only_a_billing_address_uses_update_billing_info() -> None:
    path = "/api/v2/customers/c1/update_billing_info"
    recorder = Recorder({("POST", path): [httpx.Response(200, json={"customer": customer("c1")})]})
    client(recorder).customers.update("c1", {"billing_address": {"city": "Bergen", "zip": "5003"}})
    assert recorder.calls() == [("POST", path)]
    assert form(recorder.requests[0]) == [
        ("billing_address[city]", "Bergen"),
        ("billing_address[zip]", "5003"),
    ]


def test_update_with_both_makes_both_calls_and_returns_the_latest_state() -> None:
    recorder = Recorder(
        {
            ("POST", "/api/v2/customers/c1"): [
                httpx.Response(200, json={"customer": customer("c1", email="new@example.com")})
            ],
            ("POST", "/api/v2/customers/c1/update_billing_info"): [
                httpx.Response(
                    200,
                    json={
                        "customer": customer(
                            "c1", email="new@example.com", billing_address={"city": "Oslo"}
                        )
                    },
                )
            ],
        }
    )
    updated = client(recorder).customers.update(
        "c1", {"email": "new@example.com", "billing_address": {"city": "Oslo"}}
    )
    assert recorder.calls() == [
        ("POST", "/api/v2/customers/c1"),
        ("POST", "/api/v2/customers/c1/update_billing_info"),
    ]
    assert updated["billing_address"] == {"city": "Oslo"}


def test_delete_posts_to_the_delete_route() -> None:
    recorder = Recorder(
        {
            ("POST", "/api/v2/customers/c1/delete"): [
                httpx.Response(200, json={"customer": customer("c1", deleted=True)})
            ]
        }
    )
    client(recorder).customers.delete("c1")
    assert recorder.calls() == [("POST", "/api/v2/customers/c1/delete")]
    assert recorder.requests[0].content == b""


def test_get_unknown_customer_raises_not_found_naming_it() -> None:
    body = {
        "message": "Sorry, we couldn't find that resource",
        "type": "invalid_request",
        "api_error_code": "resource_not_found",
    }
    recorder = Recorder({("GET", "/api/v2/customers/nope"): [httpx.Response(404, json=body)]})
    with pytest.raises(NotFound) as caught:
        client(recorder).customers.get("nope")
    assert str(caught.value).startswith("chargebee customers nope: HTTP 404 resource_not_found")


def test_a_refused_create_names_the_field() -> None:
    body = {
        "message": "email : invalid email",
        "type": "invalid_request",
        "api_error_code": "param_wrong_value",
        "param": "email",
    }
    recorder = Recorder({("POST", "/api/v2/customers"): [httpx.Response(400, json=body)]})
    with pytest.raises(BadRequest, match=r"chargebee customers c7: .*\(field email\)$"):
        client(recorder).customers.create({"id": "c7", "email": "bad"})


def test_an_answer_without_the_wrapped_entity_is_unexpected() -> None:
    recorder = Recorder({("GET", "/api/v2/items/i1"): [httpx.Response(200, json={"id": "i1"})]})
    with pytest.raises(UnexpectedResponse, match="chargebee items i1: response has no 'item'"):
        client(recorder).items.get("i1")


def test_an_entity_without_an_id_is_unexpected_and_names_the_field() -> None:
    recorder = Recorder(
        {("GET", "/api/v2/items/i1"): [httpx.Response(200, json={"item": {"name": "x"}})]}
    )
    with pytest.raises(UnexpectedResponse, match=r"\(field id\)$"):
        client(recorder).items.get("i1")


# --- items ----------------------------------------------------------------------------------


def test_item_metadata_is_json_encoded_and_update_posts_to_the_item() -> None:
    item = {"id": "i1", "object": "item", "name": "Widget", "type": "charge"}
    recorder = Recorder(
        {
            ("POST", "/api/v2/items"): [httpx.Response(200, json={"item": item})],
            ("POST", "/api/v2/items/i1"): [httpx.Response(200, json={"item": item})],
        }
    )
    items = client(recorder).items
    items.create(
        {
            "id": "i1",
            "name": "Widget",
            "type": "charge",
            "item_family_id": "fam",
            "metadata": {"sku": "W-1"},
        }
    )
    items.update("i1", {"description": "Blue"})
    assert dict(form(recorder.requests[0]))["metadata"] == '{"sku":"W-1"}'
    assert form(recorder.requests[1]) == [("description", "Blue")]


# --- orders ---------------------------------------------------------------------------------


def test_order_without_invoice_is_created_through_an_invoice() -> None:
    invoice = {"id": "inv_1", "object": "invoice", "customer_id": "c1"}
    order = {"id": "o1", "object": "order", "invoice_id": "inv_1", "customer_id": "c1"}
    recorder = Recorder(
        {
            ("POST", "/api/v2/invoices"): [httpx.Response(200, json={"invoice": invoice})],
            ("POST", "/api/v2/orders"): [httpx.Response(200, json={"order": order})],
        }
    )
    created = client(recorder).orders.create(
        {
            "id": "o1",
            "customer_id": "c1",
            "currency_code": "EUR",
            "status": "new",
            "order_line_items": [
                {"description": "Widget", "amount": 1500},
                {"description": "Gadget", "unit_price": 200, "quantity": 3},
            ],
        },
        idempotency_key="k1",
    )
    assert created == order
    assert recorder.calls() == [("POST", "/api/v2/invoices"), ("POST", "/api/v2/orders")]
    invoice_request, order_request = recorder.requests
    assert form(invoice_request) == [
        ("customer_id", "c1"),
        ("currency_code", "EUR"),
        ("charges[amount][0]", "1500"),
        ("charges[description][0]", "Widget"),
        ("charges[amount][1]", "600"),
        ("charges[description][1]", "Gadget"),
    ]
    assert invoice_request.headers["chargebee-idempotency-key"] == "k1-invoice"
    assert form(order_request) == [("id", "o1"), ("status", "new"), ("invoice_id", "inv_1")]
    assert order_request.headers["chargebee-idempotency-key"] == "k1"


def test_order_with_an_invoice_id_is_posted_directly() -> None:
    order = {"id": "o2", "object": "order", "invoice_id": "inv_9"}
    recorder = Recorder({("POST", "/api/v2/orders"): [httpx.Response(200, json={"order": order})]})
    client(recorder).orders.create({"invoice_id": "inv_9"})
    assert recorder.calls() == [("POST", "/api/v2/orders")]
    assert form(recorder.requests[0]) == [("invoice_id", "inv_9")]


def test_order_invoice_defaults_to_one_charge_and_needs_a_customer() -> None:
    assert invoice_fields_for_order({"customer_id": "c1", "amount": 990}) == {
        "customer_id": "c1",
        "charges": [{"amount": 990, "description": "Order"}],
    }
    with pytest.raises(
        BadRequest, match=r"chargebee orders: .*set customer_id \(field customer_id\)"
    ):
        invoice_fields_for_order({"currency_code": "USD"})


def test_resources_honour_the_protocol() -> None:
    cb = client(Recorder({}))
    resources: list[Resource] = [
        cb.customers, cb.items, cb.orders, cb.invoices, cb.subscriptions, cb.addresses
    ]
    assert [(r.system, r.name) for r in resources] == [
        ("chargebee", "customers"),
        ("chargebee", "items"),
        ("chargebee", "orders"),
        ("chargebee", "invoices"),
        ("chargebee", "subscriptions"),
        ("chargebee", "addresses"),
    ]
    assert cb.collection("orders") is cb.orders
    with pytest.raises(KeyError):
        cb.collection("quotes")


def test_calls_are_counted_per_template() -> None:
    recorder = Recorder(
        {
            ("GET", "/api/v2/customers/c1"): [
                httpx.Response(200, json={"customer": customer("c1")})
            ],
            ("GET", "/api/v2/customers/c2"): [
                httpx.Response(200, json={"customer": customer("c2")})
            ],
        }
    )
    cb = client(recorder)
    cb.customers.get("c1")
    cb.customers.get("c2")
    assert cb.counter.counts() == {"chargebee GET /customers/{id}": 2}
    assert recorder.requests[0].content == b""


def test_a_field_the_harness_reads_with_the_wrong_type_is_unexpected() -> None:
    broken = customer("c1", meta_data="not an object")
    recorder = Recorder(
        {("GET", "/api/v2/customers/c1"): [httpx.Response(200, json={"customer": broken})]}
    )
    with pytest.raises(
        UnexpectedResponse, match=r"^chargebee customers c1: .*\(field meta_data\)$"
    ):
        client(recorder).customers.get("c1")
