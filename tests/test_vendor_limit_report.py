"""The vendor-limits promise judges the syncer's run report: an edit the other vendor forbids
may stay behind, but a syncer that reports nothing about it keeps quiet about lost data (a
finding); a syncer that gives no report at all is not blamed for it."""

from __future__ import annotations

from typing import Any, cast

from reference_sync.testing import FakeSystems
from reference_sync.testing import section as build_section
from talkqa.checks import FindingKind
from talkqa.dataflow.spec import Section
from talkqa.promises.edits import VendorLimits
from talkqa.pytest_plugin import EditState
from talkqa.run_report import RunReport
from talkqa.samples import not_carried_edits
from talkqa.scene import Scene
from talkqa.systems.catalog import binding_of


class _Scene:
    """The parts of a Scene the promise reads, and what it hands to ``judge_edit``."""

    def __init__(self, report: RunReport | None) -> None:
        self.section: Section = build_section(
            2, "Order", "Invoices", (("currency_code", "currency", "string"),)
        )
        self.systems = FakeSystems()
        self.systems.resource(binding_of(("chargebee", "Order"))).seed(
            {"id": "o1", "currency_code": "USD", "customer_id": "c1"}
        )
        person = self.systems.resource(binding_of(("invoiced", "Customers person"))).seed(
            {"type": "person", "name": "Ada"}
        )
        invoice = self.systems.resource(binding_of(("invoiced", "Invoices"))).seed(
            {"customer": person["id"], "currency": "eur", "metadata": {"chargebee_id": "o1"}}
        )
        [(blocked, edit)] = not_carried_edits(self.section, "target")
        tid = str(invoice["id"])
        self.state = EditState(
            edit,
            "target",
            binding_of(("invoiced", "Invoices")),
            {tid: "eur"},
            {"o1": tid},
            blocked,
            {"o1": "USD"},
        )
        self.tid = tid
        self.report = report
        self.extra: list[Any] | None = None

    def edit_state(self) -> EditState:
        return self.state

    def run_report(self) -> RunReport | None:
        return self.report

    def attach_text(self, text: str, name: str) -> None:
        pass

    def judge_edit(self, extra: list[Any], *, skip_pair: tuple[str, str] | None = None) -> None:
        assert skip_pair == ("currency_code", "currency")
        self.extra = extra


def _judged(report: RunReport | None) -> list[Any]:
    fake = _Scene(report)
    VendorLimits().judge(cast(Scene, fake))
    assert fake.extra is not None
    return fake.extra


def _report(not_carried: list[dict[str, str]]) -> RunReport:
    return RunReport.model_validate({"sections": [{"index": 2, "not_carried_over": not_carried}]})


def test_a_report_silent_about_the_edit_is_a_finding() -> None:
    found = _judged(_report([]))
    assert [(f.kind, f.check) for f in found] == [(FindingKind.NOT_REPORTED, "vendor_limits")]


def test_a_report_naming_the_edit_and_no_report_at_all_are_no_finding() -> None:
    tid = _Scene(None).tid
    named = _report(
        [{"entity_id": tid, "property": "currency_code -> currency", "direction": "to_source"}]
    )
    assert _judged(named) == []
    assert _judged(None) == []
