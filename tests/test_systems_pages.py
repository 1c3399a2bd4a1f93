"""A list page is checked whole, and the whole-page check accepts exactly what the per-entity
check accepts: a page with one entity the harness cannot read still fails, naming the field.
"""

from __future__ import annotations

import httpx
import orjson
import pytest

from talkqa.systems import chargebee, invoiced
from talkqa.systems.base import UnexpectedResponse
from talkqa.systems.chargebee import ChargebeeClient
from talkqa.systems.client import page_fits
from talkqa.systems.invoiced import InvoicedClient
from tests.systems_fixtures import Recorder, mock_client

CB_BASE = "https://acme-test.chargebee.com/api/v2"
INV_BASE = "https://api.sandbox.invoiced.com"

GOOD_CUSTOMER = {
    "id": "c1", "object": "customer", "updated_at": 1700000000, "email": "a@b.c",
    "billing_address": {"city": "Oslo"}, "meta_data": {"k": "v"}, "first_name": "Åse",
}  # fmt: skip
# one field the harness reads, broken in a way each model refuses (or, None: accepted)
CB_VARIANTS: list[tuple[dict[str, object], bool]] = [
    ({}, True),
    ({"extra_field": [1, {"x": None}]}, True),
    ({"meta_data": "not an object"}, False),
    ({"id": 7}, False),
    ({"updated_at": "soon"}, False),
    ({"updated_at": "1700000001"}, True),  # lax, as the per-entity model is
    ({"deleted": "maybe"}, False),
    ({"billing_address": None}, True),
    ({"billing_address": ["Oslo"]}, False),  # an object is checked as a dict, not rebuilt
    ({"meta_data": {"deep": {"x": [1]}, "n": None}}, True),
    ({"email": ["a"]}, False),
]
GOOD_PERSON = {"id": 1, "object": "customer", "name": "Åse", "type": "person", "metadata": {}}
INV_VARIANTS: list[tuple[dict[str, object], bool]] = [
    ({}, True),
    ({"anything": {"nested": [1]}}, True),
    ({"id": "1"}, False),  # StrictInt
    ({"id": True}, False),
    ({"metadata": "x"}, False),
    ({"metadata": [{"k": "v"}]}, False),
    ({"updated_at": 1.5}, False),
    ({"name": None}, True),
]


def cb_page(entities: list[dict[str, object]]) -> bytes:
    return orjson.dumps({"list": [{"customer": e, "card": None} for e in entities]})


@pytest.mark.parametrize(("change", "fits"), CB_VARIANTS)
def test_a_chargebee_page_fits_exactly_when_each_entity_does(
    change: dict[str, object], fits: bool
) -> None:
    broken = {**GOOD_CUSTOMER, **change}
    raw = cb_page([GOOD_CUSTOMER, broken])
    assert page_fits(chargebee._page_checker("customer"), orjson.loads(raw)) is fits
    recorder = Recorder({("GET", "/api/v2/customers"): [httpx.Response(200, content=raw)]})
    customers = mock_client(ChargebeeClient, recorder, CB_BASE, "cb-key").customers
    if fits:
        assert [c["id"] for c in customers.list()] == ["c1", broken["id"]]
    else:
        field = next(iter(change))
        with pytest.raises(UnexpectedResponse, match=rf"\(field {field}\)$"):
            list(customers.list())


def test_a_chargebee_entry_without_its_entity_or_of_another_object_is_unexpected() -> None:
    for entries, message in (
        ([{"card": {}}], "response has no 'customer' object"),
        ([{"customer": {**GOOD_CUSTOMER, "object": "item"}}], "expected object 'customer'"),
    ):
        raw = orjson.dumps({"list": entries})
        recorder = Recorder({("GET", "/api/v2/customers"): [httpx.Response(200, content=raw)]})
        customers = mock_client(ChargebeeClient, recorder, CB_BASE, "cb-key").customers
        with pytest.raises(UnexpectedResponse, match=message):
            list(customers.list())


@pytest.mark.parametrize(("change", "fits"), INV_VARIANTS)
def test_an_invoiced_page_fits_exactly_when_each_entity_does(
    change: dict[str, object], fits: bool
) -> None:
    broken = {**GOOD_PERSON, **change}
    raw = orjson.dumps([GOOD_PERSON, broken])
    assert page_fits(invoiced._page_checker("customers"), orjson.loads(raw)) is fits
    recorder = Recorder({("GET", "/customers"): [httpx.Response(200, content=raw)]})
    customers = mock_client(InvoicedClient, recorder, INV_BASE, "inv-key").customers
    if fits:
        assert [c["id"] for c in customers.list()] == [1, broken["id"]]
    else:
        field = next(iter(change))
        with pytest.raises(UnexpectedResponse, match=rf"\(field {field}\)$"):
            list(customers.list())


def test_a_checked_page_yields_the_answer_as_sent_extras_included() -> None:
    raw = cb_page([{**GOOD_CUSTOMER, "extra_field": {"deep": [1, 2]}}])
    recorder = Recorder({("GET", "/api/v2/customers"): [httpx.Response(200, content=raw)]})
    customers = mock_client(ChargebeeClient, recorder, CB_BASE, "cb-key").customers
    assert list(customers.list()) == [{**GOOD_CUSTOMER, "extra_field": {"deep": [1, 2]}}]


# --- a reader that names its fields: the page decoded into them and the typed ones -------


CB_TYPED = {"id", "object", "updated_at", "deleted", "email", "billing_address", "meta_data"}


@pytest.mark.parametrize(("change", "fits"), CB_VARIANTS)
def test_a_chargebee_page_read_for_some_fields_is_checked_as_a_whole_page_is(
    change: dict[str, object], fits: bool
) -> None:
    broken = {**GOOD_CUSTOMER, **change}
    raw = cb_page([GOOD_CUSTOMER, broken])
    recorder = Recorder({("GET", "/api/v2/customers"): [httpx.Response(200, content=raw)]})
    customers = mock_client(ChargebeeClient, recorder, CB_BASE, "cb-key").customers
    if not fits:
        field = next(iter(change))
        with pytest.raises(UnexpectedResponse, match=rf"\(field {field}\)$"):
            list(customers.list(fields={"first_name"}))
        return
    read = list(customers.list(fields={"first_name"}))
    assert [c["id"] for c in read] == ["c1", broken["id"]]
    for entity, sent in zip(read, (GOOD_CUSTOMER, broken), strict=True):
        # every key read is the one sent; a page that only the lax check took is read whole
        assert all(entity[key] == sent[key] for key in entity)
        assert set(sent) & (CB_TYPED | {"first_name"}) <= set(entity)
    if "updated_at" not in change:  # decoded into the fields: nothing else was built
        assert all(set(entity) <= CB_TYPED | {"first_name"} for entity in read)


@pytest.mark.parametrize(("change", "fits"), INV_VARIANTS)
def test_an_invoiced_page_read_for_some_fields_is_checked_as_a_whole_page_is(
    change: dict[str, object], fits: bool
) -> None:
    broken = {**GOOD_PERSON, **change, "currency": "nok", "unread": {"x": 1}}
    raw = orjson.dumps([GOOD_PERSON, broken])
    recorder = Recorder({("GET", "/customers"): [httpx.Response(200, content=raw)]})
    customers = mock_client(InvoicedClient, recorder, INV_BASE, "inv-key").customers
    if not fits:
        field = next(iter(change))
        with pytest.raises(UnexpectedResponse, match=rf"\(field {field}\)$"):
            list(customers.list(fields={"currency"}))
        return
    read = list(customers.list(fields={"currency"}))
    assert read[1]["currency"] == "nok"
    assert read == [
        {k: v for k, v in sent.items() if k not in ("unread", "anything")}
        for sent in (GOOD_PERSON, broken)
    ]


def test_a_page_that_is_not_json_is_unexpected_for_a_reader_of_some_fields_too() -> None:
    recorder = Recorder({("GET", "/customers"): [httpx.Response(200, content=b"<html>")]})
    customers = mock_client(InvoicedClient, recorder, INV_BASE, "inv-key").customers
    with pytest.raises(UnexpectedResponse, match="body is not JSON"):
        list(customers.list(fields={"currency"}))
