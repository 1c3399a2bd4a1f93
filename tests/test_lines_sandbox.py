"""Order lines into invoice line items, through the connectors and the bundled sandboxes.

The fixture tests/fixtures/dataflows/lines-chargebee-invoiced.rst maps each Chargebee order
line (unit price in minor units) to the Invoiced line item in the same position (amount in
major units). The reference sync writes the lines, the judge finds nothing, a second run
writes nothing, and a line copied without converting its units is a mismatch. The judge
also reads nothing of the business-entity test checklist, which no API can keep.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from reference_sync import LinkStore, run_sync
from talkqa.checks import check_spec
from talkqa.dataflow.rst import load
from talkqa.sandbox.server import running_sandboxes
from talkqa.systems.connect import Systems
from tests.sandbox_fixtures import sandbox_systems

DOC = Path(__file__).resolve().parent / "fixtures" / "dataflows" / "lines-chargebee-invoiced.rst"


@pytest.fixture()
def systems() -> Iterator[Systems]:
    with running_sandboxes(seed=0) as sandbox, httpx.Client() as http:
        yield sandbox_systems(http, sandbox.chargebee_base_url, sandbox.invoiced_base_url)


def _orders(systems: Systems) -> dict[str, str]:
    """Two orders of two lines each: one in cents (USD), one in a currency without (JPY)."""
    chargebee = systems.chargebee
    chargebee.customers.create({"id": "c1", "first_name": "Ada", "last_name": "L"})
    made = {}
    for currency, prices in (("USD", (1050, 99)), ("JPY", (1200, 7))):
        order = chargebee.orders.create(
            {
                "customer_id": "c1",
                "currency_code": currency,
                "order_line_items": [
                    {"amount": price, "description": f"{currency} line {n}"}
                    for n, price in enumerate(prices, 1)
                ],
            }
        )
        made[currency] = str(order["id"])
    return made


def test_lines_reach_invoiced_in_its_units_and_a_rerun_writes_nothing(systems: Systems) -> None:
    spec = load(DOC)
    orders = _orders(systems)
    with LinkStore(":memory:") as store:
        first = run_sync(spec, systems, store)
        assert first.totals["failed"] == 0, first.to_json()
        by_source = {
            str(inv["metadata"]["chargebee_id"]): inv for inv in systems.invoiced.invoices.list()
        }
        usd, jpy = by_source[orders["USD"]], by_source[orders["JPY"]]
        assert [(i["description"], Decimal(str(i["amount"]))) for i in usd["items"]] == [
            ("USD line 1", Decimal("10.5")),
            ("USD line 2", Decimal("0.99")),
        ]
        assert [Decimal(str(i["amount"])) for i in jpy["items"]] == [1200, 7]
        # the odd row, as written: the Invoiced quantity is the Chargebee line amount
        assert [i["quantity"] for i in usd["items"]] == [1050, 99]

        report = check_spec(spec, systems)
        assert report.passed, [f.message for f in report.findings]

        systems.calls.reset()
        assert run_sync(spec, systems, store).writes == 0


def test_a_line_amount_copied_in_minor_units_is_a_mismatch(systems: Systems) -> None:
    spec = load(DOC)
    orders = _orders(systems)
    with LinkStore(":memory:") as store:
        assert run_sync(spec, systems, store).totals["failed"] == 0
    invoice = next(
        inv
        for inv in systems.invoiced.invoices.list()
        if inv["metadata"]["chargebee_id"] == orders["USD"]
    )
    items = [
        {"description": line["description"], "quantity": 1, "unit_cost": cents}
        for line, cents in zip(invoice["items"], (1050, 99), strict=True)
    ]
    systems.invoiced.invoices.update(str(invoice["id"]), {"items": items})
    report = check_spec(spec, systems)
    mismatches = [f for f in report.findings if f.target_path == "items.amount"]
    assert [(f.source_id, f.kind.value) for f in mismatches] == [(orders["USD"], "mismatch")]
    assert "10.5" in (mismatches[0].explanation or "")


def test_the_judge_reads_nothing_of_a_section_no_api_can_keep(systems: Systems) -> None:
    """talkqa check on the business-entity checklist: the section says why, and no request
    goes to a collection Chargebee does not offer."""
    doc = DOC.parent / "business-entity-invoiced-chargebee.rst"
    systems.calls.reset()
    report = check_spec(load(doc), systems, concurrency=2)
    [result] = report.sections
    assert not result.covered
    assert (result.reason or "").startswith("vendor offers no API to create a Chargebee business")
    assert report.findings == [] and systems.call_counts() == {}
