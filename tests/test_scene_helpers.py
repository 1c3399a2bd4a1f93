"""The pure helpers the feature steps lean on: names, plans, bindings, failure lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from talkqa.dataflow.rst import load
from talkqa.dataflow.spec import DataflowSpec
from talkqa.promises import PromiseId, plans_of
from talkqa.promises.base import section_names
from talkqa.promises.plan import Side
from talkqa.pytest_plugin import all_bindings, last_line

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def spec() -> DataflowSpec:
    return load(REPO / "dataflows" / "chargebee-invoiced.rst")


def test_section_names_are_the_step_text_names(spec: DataflowSpec) -> None:
    assert section_names(spec.sections[2]) == ("Chargebee Order", "Invoiced Invoices")


def test_every_plan_of_a_section_has_its_own_title(spec: DataflowSpec) -> None:
    """The steps find a scenario's plan by its name: two plans of one section with one title
    would make one of them unreachable."""
    for section in spec.sections:
        titles = [plan.title for plan in plans_of(spec, section)]
        assert titles and len(titles) == len(set(titles)), titles


def test_plans_carry_the_decisions_the_steps_act_on(spec: DataflowSpec) -> None:
    orders = spec.sections[2]
    plans = {plan.promise: plan for plan in plans_of(spec, orders)}
    assert [(p.source_path, p.target_path) for p in plans[PromiseId.PROPERTIES].rows] == [
        ("currency_code", "currency")
    ]
    limit = plans[PromiseId.VENDOR_LIMITS].edit
    assert limit is not None and limit.side is Side.TARGET and limit.path == "currency"
    assert limit.blocked is not None and limit.blocked.source_path == "currency_code"


def test_all_bindings_lists_each_collection_once_in_checklist_order(spec: DataflowSpec) -> None:
    doubled = spec.model_copy(update={"sections": [*spec.sections, spec.sections[0]]})
    assert [b.key for b in all_bindings(doubled)] == [
        ("chargebee", "Customer"),
        ("invoiced", "Customers person"),
        ("chargebee", "Item"),
        ("invoiced", "Items"),
        ("chargebee", "Order"),
        ("invoiced", "Invoices"),
    ]


def test_last_line_is_the_failure_reason() -> None:
    assert last_line("Traceback\n  boom\n\nE   missing: x\n  \n") == "E   missing: x"
    assert last_line("  \n") == "failed"
    assert len(last_line("x" * 900)) == 500


def test_all_bindings_leaves_out_what_no_vendor_api_can_read() -> None:
    """A snapshot reads every collection through the vendors' APIs: a Chargebee business
    entity has no read API, so an idempotence snapshot of a checklist naming one must not try."""
    spec = load(REPO / "tests/fixtures/dataflows/business-entity-invoiced-chargebee.rst")
    keys = [b.key for b in all_bindings(spec)]
    assert ("chargebee", "Business_entity") not in keys
    assert ("invoiced", "Customers company") in keys
