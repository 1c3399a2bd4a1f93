"""Malformed input on every route is a vendor-shaped 4xx, never a 500 or a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from talkqa.sandbox import chargebee, invoiced
from talkqa.sandbox.dispatch import MAX_BODY_BYTES
from talkqa.sandbox.server import CHARGEBEE_API_KEY, INVOICED_API_KEY, create_sandbox
from tests.sandbox_fixtures import in_process

FORMS = [
    b"", b"\xff\xfe", b"a[=1", b"id[0]=x", b"id[a]=x", b"meta_data=%5B1%5D",
    b"meta_data={'a':{1,2}}", b"metadata=NaN", b"billing_address=x", b"charges=1",
    b"charges[amount][0]=x", b"order_line_items=1", b"order_line_items[id][0]=zz", b"name[a]=1",
    b"net_term_days=99999999999999999999999", b"meta_data=" + b"[" * 400 + b"]" * 400,
    b"a" + b"[b]" * 1000 + b"=1", b"charges[amount][0]=" + b"9" * 5000, b"id[\xc2\xb2]=x",
    b"net_term_days=" + b"9" * 5000, b"meta_data=" + b"9" * 5000,
    b"first_name=%ED%A0%80", b"meta_data={%22a%22:%22\\ud800%22}",
]
JSONS = [
    b"\xff", b"[]", b"null", b'{"name": {}}', b'{"items": [1]}', b'{"items": {"a": 1}}',
    b'{"customer": "abc"}', b'{"customer": 1.5}', b'{"metadata": [1]}', b'{"unit_cost": NaN}',
    b'{"unit_cost": 1e400}', b'{"items": [{"unit_cost": 1e308, "quantity": 1e308}]}',
    b'{"id": 5}', b'{"items": [{"id": 99}]}', b'{"date": "x"}', b"[" * 400 + b"]" * 400,
    b'{"name": "\\ud800"}', b'{"\\udfff": 1}', b'{"quantity": ' + b"9" * 5000 + b"}",
    b'{"metadata": {"a": "\\ud83d"}}', b'{"payment_terms": ' + b"1" * 30 + b"}",
]
QUERIES = [
    "limit=abc", "offset=%5B", "sort_by=1", "id[is][0]=1", "id=1", "created_at[on]=1e400",
    "created_at[after]=nan", "created_at[between]=[1]", "first_name[in]=%5B%5B1%5D%5D",
    "page=x", "per_page=-1", "filter=1", "filter[id][x]=1", "metadata=1", "updated_after=x",
    "sort=id%20up", "sort_by[asc]=name", "sort_by[desc]=name", "limit=%C2%B2",
    "a" + "[b]" * 1000 + "=1", "offset=[1,1e999,1]", "offset=[2,%22x%22,1]",
    "created_at[after]=" + "9" * 5000, "page=" + "9" * 5000,
]


@contextmanager
def clients() -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """In-process clients on a fresh sandbox that holds one record of each kind."""
    sandbox = create_sandbox()
    cb = in_process(sandbox.chargebee_app, "http://127.0.0.1/api/v2", CHARGEBEE_API_KEY)
    inv = in_process(sandbox.invoiced_app, "http://127.0.0.1", INVOICED_API_KEY)
    with cb, inv:
        _seed(cb, inv)
        yield cb, inv


def _seed(cb: httpx.Client, inv: httpx.Client) -> None:
    cb.post("/customers", data={"id": "x1"})
    cb.post("/item_families", data={"id": "x1", "name": "F"})
    cb.post("/items", data={"id": "x1", "name": "n", "type": "plan", "item_family_id": "x1"})
    cb.post("/invoices", data={"customer_id": "x1", "charges[amount][0]": "1",
                               "charges[description][0]": "d"})
    cb.post("/orders", data={"invoice_id": "1", "id": "x1"})
    inv.post("/customers", json={"name": "a"})
    inv.post("/items", json={"id": "1", "name": "a"})
    inv.post("/invoices", json={"customer": 1})


@pytest.mark.parametrize("vendor", [chargebee.VENDOR, invoiced.VENDOR], ids=lambda v: v.name)
def test_no_route_answers_malformed_input_with_a_500(vendor: object) -> None:
    with clients() as (cb, inv):
        _probe(vendor, cb, inv)


def _probe(vendor: object, cb: httpx.Client, inv: httpx.Client) -> None:
    is_cb = vendor is chargebee.VENDOR
    client = cb if is_cb else inv
    content_type = "application/x-www-form-urlencoded" if is_cb else "application/json"
    failures: list[str] = []
    answered = 0
    for route in (chargebee.ROUTES if is_cb else invoiced.ROUTES):
        for ident in ("x1" if is_cb else "1", "%00"):
            path = route.template.replace("{id}", ident)
            if route.method == "GET":
                calls = [client.get(f"{path}?{query}") for query in QUERIES]
            else:
                calls = [client.request(route.method, path, content=body,
                                        headers={"content-type": content_type})
                         for body in (FORMS if is_cb else JSONS)]
            for response in calls:
                answered += 1
                body = response.json() if response.content else None
                vendor_error = isinstance(body, dict) and isinstance(body.get("message"), str)
                if response.status_code >= 500 or (
                    response.status_code >= 400 and not vendor_error
                ):
                    failures.append(f"{route.method} {path}: {response.status_code} "
                                    f"{response.text[:120]}")
    assert answered > 250 and failures == []


def test_a_lone_surrogate_is_refused_and_leaves_no_record_behind() -> None:
    with clients() as (cb, inv):
        before = inv.get("/customers").json()
        refused = inv.post("/customers", content=b'{"name": "\\ud800"}',
                           headers={"content-type": "application/json"})
        assert refused.status_code == 400 and "surrogate" in refused.json()["message"]
        assert inv.get("/customers").json() == before  # nothing stored, every read still 200
        # a form cannot carry one: %ED%A0%80 is no UTF-8 and decodes to replacement characters
        form = cb.post("/customers", content=b"id=s1&first_name=%ED%A0%80",
                       headers={"content-type": "application/x-www-form-urlencoded"})
        assert form.status_code == 200
        assert cb.get("/customers/s1").json()["customer"]["first_name"] == "\ufffd" * 3


def test_a_body_over_the_limit_is_413_at_once_and_the_server_keeps_serving() -> None:
    huge = b"a=" + b"x" * (MAX_BODY_BYTES + 1)
    with clients() as (cb, inv):
        for client, content_type in ((cb, "application/x-www-form-urlencoded"),
                                     (inv, "application/json")):
            answer = client.post("/customers", content=huge, headers={"content-type": content_type})
            assert answer.status_code == 413 and isinstance(answer.json()["message"], str)
        assert cb.get("/customers").status_code == 200
        assert inv.get("/customers").status_code == 200


def test_items_sort_by_name_both_ways_with_paging() -> None:
    with clients() as (cb, _):
        for name in ("pear", "apple", "fig"):
            made = cb.post("/items", data={"id": name, "name": name, "type": "plan",
                                           "item_family_id": "x1"})
            assert made.status_code == 200, made.text
        names: list[str] = []
        offset = None
        while True:
            query = {"sort_by[asc]": "name", "limit": "2", **({"offset": offset} if offset else {})}
            page = cb.get("/items", params=query).json()
            names += [entry["item"]["name"] for entry in page["list"]]
            offset = page.get("next_offset")
            if offset is None:
                break
        assert names == ["apple", "fig", "n", "pear"]
        down = cb.get("/items", params={"sort_by[desc]": "name"}).json()
        assert [e["item"]["name"] for e in down["list"]] == ["pear", "n", "fig", "apple"]
