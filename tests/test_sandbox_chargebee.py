"""The Chargebee emulator through an in-process httpx client: what a connector relies on."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from talkqa.sandbox.clock import EPOCH
from talkqa.sandbox.server import CHARGEBEE_API_KEY, create_sandbox
from tests.sandbox_fixtures import in_process

T0 = EPOCH - 1  # one write per second here: the n-th write is stamped T0 + n


@pytest.fixture
def cb() -> Iterator[httpx.Client]:
    app = create_sandbox(seed=0, writes_per_second=1).chargebee_app
    client = in_process(app, "http://127.0.0.1/api/v2", CHARGEBEE_API_KEY)
    yield client
    client.close()


def customer(cb: httpx.Client, **fields: str) -> dict[str, object]:
    response = cb.post("/customers", data=fields)
    assert response.status_code == 200, response.text
    return response.json()["customer"]  # type: ignore[no-any-return]


def ids(response: httpx.Response, key: str = "customer") -> list[str]:
    assert response.status_code == 200, response.text
    return [entry[key]["id"] for entry in response.json()["list"]]


def test_create_customer_parses_brackets_and_repr_metadata_with_vendor_defaults(
    cb: httpx.Client,
) -> None:
    made = customer(cb, id="c1", first_name="Ada", email="ada@example.com",
                    **{"billing_address[city]": "Oslo", "billing_address[country]": "NO",
                       "meta_data": "{'tier': 'gold', 'n': 2}"})
    assert made["id"] == "c1"
    assert made["billing_address"] == {"city": "Oslo", "country": "NO",
                                       "validation_status": "not_validated",
                                       "object": "billing_address"}
    assert made["meta_data"] == {"tier": "gold", "n": 2}
    assert (made["auto_collection"], made["net_term_days"], made["allow_direct_debit"]) == (
        "on", 0, False)
    assert made["object"] == "customer" and made["deleted"] is False
    assert made["created_at"] == made["updated_at"] == T0 + 1
    assert made["resource_version"] == (T0 + 1) * 1000 + 1
    assert "last_name" not in made  # absent optional fields are omitted, as the vendor does


def test_generated_ids_are_seeded(cb: httpx.Client) -> None:
    first = customer(cb)["id"]
    second = customer(cb)["id"]
    assert isinstance(first, str) and len(first) == 16 and first != second


def test_update_changes_fields_ticks_clock_and_refuses_billing_address(cb: httpx.Client) -> None:
    customer(cb, id="c1", first_name="Ada")
    updated = cb.post("/customers/c1", data={"last_name": "Lovelace"}).json()["customer"]
    assert updated["first_name"] == "Ada" and updated["last_name"] == "Lovelace"
    assert updated["updated_at"] == T0 + 2 and updated["created_at"] == T0 + 1
    refused = cb.post("/customers/c1", data={"billing_address[city]": "Oslo"})
    assert refused.status_code == 400
    assert refused.json()["api_error_code"] == "param_wrong_value"
    billing = cb.post("/customers/c1/update_billing_info",
                      data={"billing_address[city]": "Oslo", "billing_address[zip]": "0150"})
    assert billing.json()["customer"]["billing_address"]["city"] == "Oslo"
    merged = cb.post("/customers/c1/update_billing_info", data={"billing_address[line1]": "Gate 1"})
    assert merged.json()["customer"]["billing_address"]["zip"] == "0150"


def test_rejected_update_changes_nothing(cb: httpx.Client) -> None:
    customer(cb, id="c1", first_name="Ada")
    bad = cb.post("/customers/c1", data={"first_name": "Eve", "email": "not-an-email"})
    assert bad.status_code == 400 and bad.json()["param"] == "email"
    assert cb.get("/customers/c1").json()["customer"]["first_name"] == "Ada"


def test_errors_use_the_vendor_envelope(cb: httpx.Client) -> None:
    customer(cb, id="c1")
    duplicate = cb.post("/customers", data={"id": "c1"})
    assert duplicate.status_code == 400
    body = duplicate.json()
    assert (body["type"], body["api_error_code"], body["param"]) == (
        "invalid_request", "duplicate_entry", "id")
    missing = cb.get("/customers/nope")
    assert missing.status_code == 404 and missing.json()["api_error_code"] == "resource_not_found"
    unknown = cb.get("/no/such/route")
    assert unknown.status_code == 404 and unknown.json()["type"] == "invalid_request"
    cb.auth = ("wrong", "")
    denied = cb.get("/customers")
    assert denied.status_code == 401
    assert denied.json()["api_error_code"] == "api_authentication_failed"
    assert "type" not in denied.json()


def test_malformed_input_is_a_400_never_a_500(cb: httpx.Client) -> None:
    for data in ({"meta_data": "{not json"}, {"meta_data": "[1, 2]"}, {"net_term_days": "x"},
                 {"x[": "1"}, {"unknown_field": "1"}, {"auto_collection": "sometimes"}):
        response = cb.post("/customers", data=data)
        assert response.status_code == 400, (data, response.text)
        assert response.json()["api_error_code"] == "param_wrong_value"
    as_json = cb.post("/customers", json={"first_name": "Ada"})
    assert as_json.status_code == 400
    for query in ({"limit": "0"}, {"limit": "101"}, {"offset": "garbage"},
                  {"offset": '["0","-3"]'}, {"sort_by[asc]": "email"}, {"email[gt]": "a"},
                  {"nonsense[is]": "a"}, {"first_name[in]": "not a list"}):
        assert cb.get("/customers", params=query).status_code == 400, query


def test_pagination_is_keyset_with_next_offset_only_when_more(cb: httpx.Client) -> None:
    made = [customer(cb, id=f"c{n:02d}")["id"] for n in range(25)]
    assert len(cb.get("/customers").json()["list"]) == 10  # default limit
    seen: list[str] = []
    offset = None
    pages = 0
    while True:
        params = {"limit": "7", **({"offset": offset} if offset else {})}
        body = cb.get("/customers", params=params).json()
        seen += [entry["customer"]["id"] for entry in body["list"]]
        pages += 1
        offset = body.get("next_offset")
        if offset is None:
            break
        assert isinstance(offset, str)
    assert seen == made[::-1] and pages == 4  # no sort_by: newest first, as on Chargebee
    exact = cb.get("/customers", params={"limit": "25"}).json()
    assert "next_offset" not in exact


def test_sort_by_updated_at_desc_and_include_deleted(cb: httpx.Client) -> None:
    for n in range(3):
        customer(cb, id=f"c{n}")
    cb.post("/customers/c0", data={"first_name": "touched"})
    assert ids(cb.get("/customers", params={"sort_by[desc]": "updated_at"})) == ["c0", "c2", "c1"]
    assert ids(cb.get("/customers", params={"sort_by[asc]": "updated_at"})) == ["c1", "c2", "c0"]
    assert ids(cb.get("/customers", params={"sort_by[desc]": "created_at"})) == ["c2", "c1", "c0"]
    page = cb.get("/customers", params={"sort_by[desc]": "created_at", "limit": "2"}).json()
    rest = cb.get("/customers", params={"sort_by[desc]": "created_at",
                                        "offset": page["next_offset"]})
    assert ids(rest) == ["c0"]
    deleted = cb.post("/customers/c1/delete").json()["customer"]
    assert deleted["deleted"] is True
    assert ids(cb.get("/customers")) == ["c2", "c0"]
    assert ids(cb.get("/customers", params={"include_deleted": "true"})) == ["c2", "c1", "c0"]
    assert cb.get("/customers/c1").status_code == 404


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"first_name[is]": "Ada"}, ["a"]),
        ({"first_name[is_not]": "Ada"}, ["b", "c"]),
        ({"email[starts_with]": "bob"}, ["b"]),
        ({"id[in]": '["a","c"]'}, ["a", "c"]),
        ({"id[in]": "['a', 'c']"}, ["a", "c"]),
        ({"id[not_in]": "['a']"}, ["b", "c"]),
        ({"company[is_present]": "true"}, ["a"]),
        ({"company[is_present]": "false"}, ["b", "c"]),
        ({"auto_collection[is]": "off"}, ["b"]),
        ({"auto_collection[is_not]": "off"}, ["a", "c"]),
        ({"auto_collection[in]": "[on]"}, ["a", "c"]),
        ({"taxability[not_in]": "['exempt']"}, ["a", "b"]),
        ({"created_at[after]": str(T0 + 1)}, ["b", "c"]),
        ({"created_at[before]": str(T0 + 3)}, ["a", "b"]),
        ({"created_at[between]": f"[{T0 + 2},{T0 + 3}]"}, ["b", "c"]),
        ({"created_at[on]": str(T0 + 0)}, ["a", "b", "c"]),
        ({"created_at[on]": str(T0 + 86400)}, []),
        ({"first_name[is]": "Ada", "company[starts_with]": "Ac"}, ["a"]),
    ],
)
def test_every_filter_operator(
    cb: httpx.Client, query: dict[str, str], expected: list[str]
) -> None:
    customer(cb, id="a", first_name="Ada", email="ada@example.com", company="Acme")
    customer(cb, id="b", first_name="Bob", email="bob@example.com", auto_collection="off")
    customer(cb, id="c", first_name="Cy", email="cy@example.com", taxability="exempt")
    assert sorted(ids(cb.get("/customers", params=query))) == expected


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ({"net_term_days[is]": "30"}, "net_term_days"),
        ({"preferred_currency_code[is]": "USD"}, "preferred_currency_code"),
        ({"first_name[in]": '["Ada"]'}, "first_name[in]"),
        ({"first_name[not_in]": '["Ada"]'}, "first_name[not_in]"),
        ({"id[is_present]": "true"}, "id[is_present]"),
        ({"created_at[is_present]": "true"}, "created_at[is_present]"),
        ({"auto_collection[is]": "sometimes"}, "auto_collection[is]"),
        ({"relationship[grandparent_id][is]": "x"}, "relationship[grandparent_id]"),
        ({"sort_by[asc]": "first_name"}, "sort_by[asc]"),
    ],
)
def test_filters_the_vendor_does_not_define_are_refused_by_name(
    cb: httpx.Client, query: dict[str, str], param: str
) -> None:
    answer = cb.get("/customers", params=query)
    assert answer.status_code == 400
    assert answer.json()["param"] == param and answer.json()["api_error_code"] == (
        "param_wrong_value")


@pytest.mark.parametrize(
    ("path", "query"),
    [("/orders", {"total[gt]": "1"}), ("/orders", {"currency_code[is]": "USD"})],
)
def test_order_filters_the_vendor_lacks_are_refused(
    cb: httpx.Client, path: str, query: dict[str, str]
) -> None:
    assert cb.get(path, params=query).status_code == 400


def test_number_filters_on_invoices(cb: httpx.Client) -> None:
    customer(cb, id="a")
    for amount in ("100", "300", "500"):
        made = cb.post("/invoices", data={"customer_id": "a", "charges[amount][0]": amount,
                                          "charges[description][0]": "x"})
        assert made.status_code == 200, made.text

    def totals(**query: str) -> list[int]:
        answer = cb.get("/invoices", params=query)
        assert answer.status_code == 200, answer.text
        return sorted(e["invoice"]["total"] for e in answer.json()["list"])

    assert totals(**{"total[gt]": "100"}) == [300, 500]
    assert totals(**{"total[lte]": "300"}) == [100, 300]
    assert totals(**{"total[between]": "[200, 500]"}) == [300, 500]
    assert totals(**{"total[is_not]": "300"}) == [100, 500]


def test_items_required_fields_unique_name_and_soft_delete(cb: httpx.Client) -> None:
    dangling = cb.post("/items", data={"id": "i1", "name": "Gold", "type": "plan",
                                       "item_family_id": "fam"})
    assert dangling.status_code == 404 and dangling.json()["param"] == "item_family_id"
    family = cb.post("/item_families", data={"id": "fam", "name": "Family"})
    assert family.json()["item_family"]["status"] == "active"
    missing = cb.post("/items", data={"id": "i1", "name": "Gold"})
    assert missing.status_code == 400 and missing.json()["param"] == "type"
    base = {"type": "plan", "item_family_id": "fam"}
    made = cb.post("/items", data={"id": "i1", "name": "Gold", **base}).json()["item"]
    assert (made["status"], made["external_name"], made["enabled_for_checkout"]) == (
        "active", "Gold", True)
    assert "created_at" not in made
    same_name = cb.post("/items", data={"id": "i2", "name": "Gold", **base})
    assert same_name.json()["api_error_code"] == "duplicate_entry"
    assert same_name.json()["param"] == "name"
    renamed = cb.post("/items/i1", data={"name": "Platinum", "metadata": '{"a": 1}'})
    assert renamed.json()["item"]["metadata"] == {"a": 1}
    assert cb.post("/items", data={"id": "i2", "name": "Gold", **base}).status_code == 200
    assert cb.post("/items/i1", data={"type": "addon"}).status_code == 400
    deleted = cb.post("/items/i1/delete").json()["item"]
    assert deleted["status"] == "deleted"
    statuses = {e["item"]["id"]: e["item"]["status"] for e in cb.get("/items").json()["list"]}
    assert statuses == {"i1": "deleted", "i2": "active"}
    assert ids(cb.get("/items", params={"status[is_not]": "deleted"}), "item") == ["i2"]


def test_orders_come_from_invoices(cb: httpx.Client) -> None:
    customer(cb, id="c1", preferred_currency_code="EUR",
             **{"billing_address[city]": "Oslo"})
    invoice = cb.post("/invoices", data={
        "customer_id": "c1", "currency_code": "NOK",
        "charges[amount][0]": "1500", "charges[description][0]": "Setup",
        "charges[amount][1]": "500", "charges[description][1]": "Extra",
    }).json()["invoice"]
    assert invoice["total"] == 2000 and len(invoice["line_items"]) == 2
    order = cb.post("/orders", data={"invoice_id": invoice["id"], "id": "o1"}).json()["order"]
    assert (order["customer_id"], order["currency_code"], order["status"]) == ("c1", "NOK", "new")
    assert order["total"] == 2000 and order["billing_address"]["city"] == "Oslo"
    line_id = order["order_line_items"][0]["id"]
    updated = cb.post("/orders/o1", data={"status": "shipped",
                                          "order_line_items[id][0]": line_id,
                                          "order_line_items[status][0]": "shipped"})
    assert updated.json()["order"]["order_line_items"][0]["status"] == "shipped"
    assert cb.post("/orders/o1", data={"currency_code": "USD"}).status_code == 400
    assert cb.post("/orders/o1", data={"status": "teleported"}).status_code == 400
    no_invoice = cb.post("/orders", data={"invoice_id": "999"})
    assert no_invoice.status_code == 404
    assert cb.post("/orders", data={}).json()["param"] == "invoice_id"
    assert cb.get("/orders", params={"customer_id[is]": "c1"}).status_code == 400
    assert ids(cb.get("/orders", params={"status[is]": "shipped"}), "order") == ["o1"]
    cb.post("/orders/o1/delete")
    assert ids(cb.get("/orders", params={"include_deleted": "true"}), "order") == ["o1"]
    assert ids(cb.get("/orders"), "order") == []


def test_idempotency_replays_and_rejects_a_different_payload(cb: httpx.Client) -> None:
    headers = {"chargebee-idempotency-key": "k1"}
    first = cb.post("/customers", data={"first_name": "Ada"}, headers=headers)
    again = cb.post("/customers", data={"first_name": "Ada"}, headers=headers)
    assert again.content == first.content
    assert again.headers["chargebee-idempotency-replayed"] == "true"
    assert "chargebee-idempotency-replayed" not in first.headers
    assert len(cb.get("/customers").json()["list"]) == 1
    other = cb.post("/customers", data={"first_name": "Eve"}, headers=headers)
    assert other.status_code == 422
    assert other.json()["api_error_code"] == "unable_to_process_request"


def test_responses_are_compact_json_without_date_header(cb: httpx.Client) -> None:
    response = cb.post("/customers", data={"id": "c1"})
    assert response.headers["content-type"].startswith("application/json")
    assert "date" not in response.headers
    assert json.loads(response.content)["customer"]["id"] == "c1"


def test_events_record_every_api_write(cb: httpx.Client) -> None:
    customer(cb, id="c1", first_name="Ada")
    cb.post("/customers/c1", data={"first_name": "Eve"})
    cb.post("/customers/c1/delete")
    newest_first = cb.get("/events").json()["list"]
    assert [e["event"]["event_type"] for e in newest_first] == [
        "customer_deleted", "customer_changed", "customer_created"]
    oldest = cb.get("/events", params={"sort_by[asc]": "occurred_at", "limit": "1"}).json()
    created = oldest["list"][0]["event"]
    assert created["content"]["customer"]["first_name"] == "Ada"  # a snapshot, not a live view
    changed = cb.get("/events", params={"event_type[is]": "customer_changed",
                                        "occurred_at[after]": str(created["occurred_at"])})
    assert [e["event"]["content"]["customer"]["first_name"]
            for e in changed.json()["list"]] == ["Eve"]
    assert cb.get(f"/events/{created['id']}").json()["event"]["id"] == created["id"]


def test_write_parameters_and_max_lengths_are_the_vendors(cb: httpx.Client) -> None:
    customer(cb, id="a")

    def refused(path: str, **data: str) -> str:
        answer = cb.post(path, data=data)
        assert answer.status_code == 400, answer.text
        assert answer.json()["api_error_code"] == "param_wrong_value"
        return str(answer.json()["param"])

    assert refused("/customers/a", vat_number="NO1") == "vat_number"  # update_billing_info's
    assert refused("/customers", phone="1" * 51) == "phone"
    assert refused("/customers/a", company="x" * 251) == "company"
    assert refused("/customers", vat_number="x" * 21, id="v") == "vat_number"
    assert refused("/customers", auto_collection="sometimes") == "auto_collection"
    assert refused("/customers", **{"billing_address[planet]": "Mars"}) == (
        "billing_address[planet]")
    # the vendor's own lengths, not lower ones
    updated = cb.post("/customers/a", data={"company": "x" * 250, "invoice_notes": "n" * 2000})
    assert updated.status_code == 200, updated.text
    assert len(updated.json()["customer"]["company"]) == 250
    # documented but not modelled: accepted, not stored
    ignored = cb.post("/customers/a", data={"consolidated_invoicing": "true"})
    assert ignored.status_code == 200 and "consolidated_invoicing" not in ignored.json()["customer"]
    cb.post("/invoices", data={"customer_id": "a", "charges[amount][0]": "100",
                               "charges[description][0]": "x"})
    assert refused("/orders", invoice_id="1", shipped_at="1793606400") == "shipped_at"
    assert refused("/orders", invoice_id="1", status="shipped") == "status"  # create: 5 only
