"""Sign-off inputs shared by the sign-off tests and the browser tests (not a test module)."""

from __future__ import annotations

from typing import Any

from talkqa.checks import Finding, FindingKind
from talkqa.report.signoff import Outcome

DOC = "dataflows/chargebee-invoiced.rst"
CUSTOMERS = "Chargebee Customer to Invoiced Customers person"
ORDERS = "Chargebee Order to Invoiced Invoices"


def mismatch(source_id: str, **kw: Any) -> Finding:
    """An order whose currency did not arrive: the finding every sign-off test breaks with."""
    return Finding(
        kind=FindingKind.MISMATCH,
        section=ORDERS,
        section_index=1,
        check="properties",
        source_label="Chargebee Order",
        target_label="Invoiced Invoices",
        source_id=source_id,
        target_id="12",
        source_path="currency_code",
        target_path="currency",
        expected="EUR",
        actual="usd",
        **kw,
    )


def outcome(index: int, section: str, promise: str, result: str, **kw: Any) -> Outcome:
    """One scenario outcome of the checklist ``DOC`` (``kw`` as read from outcomes.jsonl)."""
    return Outcome.model_validate(
        {
            "dataflow": DOC,
            "section_index": index,
            "section": section,
            "promise": promise,
            "scenario": kw.pop("scenario", f"a {promise} scenario"),
            "status": result,
            **kw,
        }
    )
