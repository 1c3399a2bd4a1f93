"""Systems: one client, both vendors, a resource per catalog binding, one call counter."""

from __future__ import annotations

import base64

import httpx
import pytest

from talkqa.dataflow.spec import DatatypeRef
from talkqa.errors import UserError
from talkqa.systems.base import ServerError
from talkqa.systems.catalog import Binding, bind
from talkqa.systems.chargebee import ChargebeeClient
from talkqa.systems.connect import Systems
from talkqa.systems.invoiced import InvoicedClient
from talkqa.systems.settings import Settings

SETTINGS = Settings.from_env(
    {
        "CHARGEBEE_SITE": "acme-test",
        "CHARGEBEE_API_KEY": "cb_key",
        "CHARGEBEE_BASE_URL": "http://chargebee.local/api/v2",
        "INVOICED_API_KEY": "inv_key",
        "INVOICED_BASE_URL": "http://invoiced.local",
        "CHARGEBEE_REQUESTS_PER_MINUTE": "0",
        "INVOICED_REQUESTS_PER_MINUTE": "0",
    }
)


def basic(key: str) -> str:
    return "Basic " + base64.b64encode(f"{key}:".encode()).decode()


def routed(seen: list[httpx.Request]) -> httpx.Client:
    """One client for both vendors, answering by host as the real services would."""

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "chargebee.local":
            return httpx.Response(200, json={"list": [{"customer": {"id": "c1"}}]})
        return httpx.Response(200, json=[{"id": 1, "type": "person"}])

    return httpx.Client(transport=httpx.MockTransport(handle))


@pytest.mark.parametrize(
    ("system", "datatype", "collection"),
    [
        ("Chargebee", "Customer", "customers"),
        ("Chargebee", "Item", "items"),
        ("Chargebee", "Order", "orders"),
        ("Invoiced", "Customers person", "customers"),
        ("Invoiced", "Customers company", "customers"),
        ("Invoiced", "Items", "items"),
        ("Invoiced", "Invoices", "invoices"),
    ],
)
def test_every_catalog_binding_has_a_resource(system: str, datatype: str, collection: str) -> None:
    binding = bind(DatatypeRef(system=system, datatype=datatype))
    assert binding is not None
    resource = Systems.connect(SETTINGS, routed([])).resource(binding)
    assert (resource.system, resource.name) == (binding.system, collection)


def test_an_unknown_binding_is_a_user_error() -> None:
    systems = Systems.connect(SETTINGS, routed([]))
    with pytest.raises(UserError, match="no connector for invoiced payments"):
        systems.resource(Binding("invoiced", "Payments", "payments"))
    with pytest.raises(UserError, match="no connector for hubspot contacts"):
        systems.resource(Binding("hubspot", "Contact", "contacts"))


def test_both_vendors_share_the_client_and_the_counter_with_their_own_keys() -> None:
    seen: list[httpx.Request] = []
    systems = Systems.connect(SETTINGS, routed(seen))
    assert [c["id"] for c in systems.chargebee.customers.list()] == ["c1"]
    assert [c["id"] for c in systems.invoiced.customers.list()] == [1]
    assert [c["id"] for c in systems.invoiced.customers.list()] == [1]
    assert [str(r.url).split("?")[0] for r in seen] == [
        "http://chargebee.local/api/v2/customers",
        "http://invoiced.local/customers",
        "http://invoiced.local/customers",
    ]
    assert seen[0].headers["authorization"] == basic("cb_key")
    assert seen[1].headers["authorization"] == basic("inv_key")
    assert systems.call_counts() == {
        "chargebee GET /customers": 1,
        "invoiced GET /customers": 2,
    }
    assert systems.calls.total == 3


def test_connect_passes_sleep_and_attempts_to_both_clients() -> None:
    sleeps: list[float] = []

    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, headers={"Retry-After": "2"}, json={"message": "down"})

    systems = Systems.connect(
        SETTINGS,
        httpx.Client(transport=httpx.MockTransport(handle)),
        sleep=sleeps.append,
        max_attempts=2,
    )
    for resource in (systems.chargebee.items, systems.invoiced.items):
        with pytest.raises(ServerError, match="HTTP 503"):
            resource.get("i1")
    assert sleeps == [2.0, 2.0]
    assert systems.calls.retries == 2


@pytest.mark.parametrize(
    ("vendor", "default", "names"),
    [
        (ChargebeeClient, 150, ("customers", "items", "item_families", "orders", "invoices")),
        (InvoicedClient, 600, ("customers", "items", "invoices")),
    ],
)
def test_each_client_has_its_vendors_limits_and_collections(
    vendor: type[ChargebeeClient] | type[InvoicedClient], default: int, names: tuple[str, ...]
) -> None:
    plain = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(500)))
    budgeted = vendor(plain, "http://x.local", "k")
    assert budgeted.limiter.requests_per_minute == default
    assert budgeted.limiter.max_concurrent == vendor.DEFAULT_MAX_CONCURRENT
    assert vendor(plain, "http://x.local", "k", requests_per_minute=7).limiter.pace is not None
    assert vendor(plain, "http://x.local", "k", requests_per_minute=None).limiter.pace is None
    assert vendor(plain, "http://x.local", "k", requests_per_minute=0).limiter.pace is None
    assert vendor(plain, "http://x.local", "k", max_concurrent=0).limiter.max_concurrent is None
    assert [budgeted.collection(name).name for name in names] == list(names)
    assert budgeted.collection("customers") is budgeted.customers
    with pytest.raises(KeyError, match=f"{vendor.system} has no collection 'quotes'"):
        budgeted.collection("quotes")
