"""Propagation latency in the sign-off: p50, p95 and max per section, the slowest scenarios,
and `--latency-budget` turning a slow section into a NO-GO."""

from __future__ import annotations

import json
from pathlib import Path

from talkqa.report.latency import by_section, over_budget, percentile
from talkqa.report.signoff import Outcome, SignoffInput, write_signoff
from tests.signoff_inputs import CUSTOMERS, ORDERS, outcome


def timed(index: int, section: str, promise: str, seconds: float, name: str) -> Outcome:
    return outcome(index, section, promise, "passed", entities_checked=2, latency_s=seconds,
                   scenario=name)


def service_run() -> list[Outcome]:
    customers = [timed(0, CUSTOMERS, "exists", s, f"customers {n}")
                 for n, s in enumerate([0.4, 2.5, 1.0, 0.6])]
    orders = [timed(1, ORDERS, "exists", 0.3, "orders 0"), timed(1, ORDERS, "edits", 9.0,
                                                                  "orders edit")]
    untimed = outcome(1, ORDERS, "idempotence", "passed", entities_checked=2)
    survival = outcome(1, ORDERS, "edits", "passed", entities_checked=2, latency_s=0.01,
                       reason="link survival only: the checklist maps no property")
    return [*customers, *orders, untimed, survival]


def test_nearest_rank_percentiles_are_observed_values() -> None:
    values = [0.4, 2.5, 1.0, 0.6]
    assert (percentile(values, 0.5), percentile(values, 0.95)) == (0.6, 2.5)
    assert percentile([7.0], 0.5) == 7.0


def test_figures_per_section_name_the_slowest_scenarios() -> None:
    customers, orders = by_section(service_run())
    assert (customers.index, customers.count, customers.p50, customers.p95, customers.max) == (
        0, 4, 0.6, 2.5, 2.5)
    assert [name for name, _ in customers.slowest] == ["customers 1", "customers 2",
                                                       "customers 3"]
    # neither the untimed idempotence nor a link survival (nothing travelled) is a figure
    assert (orders.count, orders.max) == (2, 9.0)
    assert over_budget([customers, orders], 5.0) == [orders]


def page(tmp_path: Path, budget: float | None) -> tuple[object, str, dict[str, object]]:
    verdict = write_signoff(SignoffInput(outcomes=service_run(), mode="sandbox", sut="svc",
                                         revision="r", latency_budget=budget), tmp_path)
    return (verdict, verdict.markdown.read_text(encoding="utf-8"),
            json.loads((tmp_path / "signoff.json").read_text(encoding="utf-8")))


def test_the_sign_off_shows_the_figures(tmp_path: Path) -> None:
    verdict, text, data = page(tmp_path, None)
    assert verdict.go  # type: ignore[attr-defined]
    assert "## Propagation latency" in text
    assert (f"| 1 | {ORDERS} | 2 | 0.30s | 9.00s | 9.00s | orders edit (9.00s); orders 0 (0.30s) |"
            in text)
    assert "Propagation latency" in (tmp_path / "signoff.html").read_text(encoding="utf-8")
    sections = data["latency"]["sections"]  # type: ignore[index]
    assert [s["p95_s"] for s in sections] == [2.5, 9.0]


def test_a_section_over_the_budget_is_no_go(tmp_path: Path) -> None:
    verdict, text, data = page(tmp_path, 5.0)
    assert verdict.label == "NO-GO"  # type: ignore[attr-defined]
    assert f"- {ORDERS} — propagation latency (p95 9.00s over the budget of 5.00s)" in text
    assert data["broken_sections"] == [{  # type: ignore[comparison-overlap]
        "dataflow": "dataflows/chargebee-invoiced.rst", "index": 1, "section": ORDERS,
        "promises": ["latency"]}]


def test_no_figures_no_section(tmp_path: Path) -> None:
    verdict = write_signoff(SignoffInput(outcomes=[outcome(0, CUSTOMERS, "exists", "passed",
                                                           entities_checked=1)],
                                         revision="r", latency_budget=0.1), tmp_path)
    assert verdict.go
    assert "Propagation latency" not in verdict.markdown.read_text(encoding="utf-8")


def test_figures_are_per_entity_when_the_scenario_timed_its_entities() -> None:
    """Each source entity counts once, with the first observation where no finding named it:
    one slow entity of three shows as the max and as the slowest, not hidden in an average."""
    fast = outcome(0, CUSTOMERS, "exists", "passed", entities_checked=3, latency_s=4.0,
                   scenario="customers exist", entity_latency_s={"c1": 0.5, "c2": 0.7, "c3": 4.0})
    edit = outcome(0, CUSTOMERS, "edits", "passed", entities_checked=1, latency_s=1.0,
                   scenario="customers edit", entity_latency_s={"c9": 1.0})
    (customers,) = by_section([fast, edit])
    assert (customers.count, customers.p50, customers.max) == (4, 0.7, 4.0)
    assert customers.slowest[0] == ("c3 (customers exist)", 4.0)
    assert customers.slowest[1] == ("c9 (customers edit)", 1.0)
