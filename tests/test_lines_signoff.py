"""Sign-offs of the two test checklists of line items and vendor-impossible cells.

- tests/fixtures/dataflows/lines-chargebee-invoiced.rst, with the reference sync in sandbox
  mode: GO on every promise (the catalogue's ``unconverted-line-amount`` gets NO-GO on it,
  see tests/test_defect_catalogue.py).
- tests/fixtures/dataflows/business-entity-invoiced-chargebee.rst: every cell says the vendor
  offers no API to create a Chargebee business entity, with the source; nothing is passed
  nor "not covered", so nothing was judged (INCOMPLETE).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from talkqa.outcome import ExitCode
from talkqa.systems.no_api import CHARGEBEE_BUSINESS_ENTITIES, NO_API_PREFIX
from tests.cli_runner import Ran

Cli = Callable[..., Ran]

REPO = Path(__file__).resolve().parents[1]
LINES = "tests/fixtures/dataflows/lines-chargebee-invoiced.rst"
BUSINESS_ENTITY = "tests/fixtures/dataflows/business-entity-invoiced-chargebee.rst"


def _signoff(checklist: str, reports: Path, cli: Cli) -> tuple[int, dict[str, Any], str]:
    done = cli(["signoff", checklist, "--mode", "sandbox", "--reports", str(reports)], cwd=REPO)
    page = json.loads((reports / "signoff.json").read_text(encoding="utf-8"))
    markdown = (reports / "signoff.md").read_text(encoding="utf-8")
    return done.returncode, page, markdown


def _cells(page: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        cell for m in page["matrices"] for row in m["rows"] for cell in row["cells"].values()
    ]


def test_order_lines_to_invoice_items_sign_off_go_with_the_reference_sync(
    tmp_path: Path, cli: Cli
) -> None:
    code, page, _ = _signoff(LINES, tmp_path, cli)
    assert (code, page["verdict"]) == (ExitCode.OK, "GO"), page["headline"]
    statuses = {cell["status"] for cell in _cells(page)}
    assert statuses <= {"passed", "existence-only", "none"}
    order_row = page["matrices"][0]["rows"][1]
    assert order_row["section"] == "Chargebee Order to Invoiced Invoices"
    assert {p: c["status"] for p, c in order_row["cells"].items()} == {
        p: "passed"
        for p in ("exists", "properties", "references", "edits", "vendor_limits", "idempotence")
    }


def test_a_business_entity_cell_says_the_vendor_offers_no_api(
    tmp_path: Path, cli: Cli
) -> None:
    code, page, markdown = _signoff(BUSINESS_ENTITY, tmp_path, cli)
    cells = [c for c in _cells(page) if c["status"] != "none"]
    assert cells and all(c["status"] == "impossible" for c in cells)
    text = f"{NO_API_PREFIX} create a Chargebee business entity ({CHARGEBEE_BUSINESS_ENTITIES})"
    assert {c["text"] for c in cells} == {text}
    assert text in markdown
    assert page["not_covered"] == []
    # never counted as passed: with nothing else judged, the verdict cannot be GO
    assert (code, page["verdict"]) == (ExitCode.INCOMPLETE, "INCOMPLETE")


def test_shipped_invoiced_to_chargebee_is_go_with_lines_on_the_invoice_order(
    tmp_path: Path, cli: Cli
) -> None:
    """Lineitem rides the Invoices->Order link; the row Chargebee computes is named, not
    compared, not a silent pass; business entities are vendor-impossible."""
    code, page, markdown = _signoff("dataflows/invoiced-chargebee.rst", tmp_path, cli)
    assert (code, page["verdict"]) == (ExitCode.OK, "GO"), page["headline"]
    rows = {row["section"]: row for m in page["matrices"] for row in m["rows"]}
    lines = rows["Invoiced Lineitem to Chargebee Order"]["cells"]
    assert lines["properties"]["status"] == "passed"
    assert (
        f"🚫 items.quantity -> order_line_items.amount: {NO_API_PREFIX} set "
        "order_line_items.amount of a Chargebee order" in lines["properties"]["text"]
    )
    assert NO_API_PREFIX not in lines["exists"]["text"]
    entity = rows["Invoiced Customers (organisation data) to Chargebee Business_entity"]
    assert {c["status"] for c in entity["cells"].values()} <= {"impossible", "none"}
    assert ", 0 not covered," in markdown  # the Address section is judged too
    location = rows["Invoiced Customers (location data) to Chargebee Address"]["cells"]
    assert location["exists"]["status"] == "passed"
