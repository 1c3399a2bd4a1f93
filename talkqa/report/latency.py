"""Propagation latency as evidence: how long a service took to make each promise hold.

A service-driven sign-off (`--sut-service`) records, per passed scenario, the seconds from
talk-qa's change to the first observation where the promise held (`latency_s`), and the same
per source entity the scenario changed (`entity_latency_s`: the first observation where no
finding named it). This module turns those into the figures the page shows per section (p50,
p95, max over entities, the slowest entities with their scenarios; a scenario with no entity
of its own counts once) and, with a budget, the sections whose p95 exceeds it: a finding that
makes the sign-off NO-GO. Scenarios that prove less
than their promise (link survival of an unmapped edit) are left out: nothing had to travel.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from talkqa.outcome import ScenarioOutcome

SLOWEST = 3  # entities named per section


@dataclass(frozen=True)
class SectionLatency:
    dataflow: str
    index: int
    section: str
    count: int  # entities timed (a scenario without entities of its own counts once)
    p50: float
    p95: float
    max: float
    slowest: tuple[tuple[str, float], ...]  # ('entity id (scenario)', seconds), slowest first


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank percentile (a value that was observed, never an interpolation)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def by_section(outcomes: Sequence[ScenarioOutcome]) -> list[SectionLatency]:
    """The latency figures of each section that has any, in checklist order."""
    timed: dict[tuple[str, int, str], list[tuple[str, float]]] = defaultdict(list)
    for outcome in outcomes:
        # a passed scenario with a reason proves less than its promise (e.g. "link survival
        # only": an unmapped edit holds at once, nothing had to travel): not a propagation
        if outcome.latency_s is not None and not outcome.reason:
            key = (outcome.dataflow, outcome.section_index, " ".join(outcome.section.split()))
            if outcome.entity_latency_s:
                timed[key].extend(
                    (f"{entity} ({outcome.scenario})", value)
                    for entity, value in sorted(outcome.entity_latency_s.items())
                )
            else:
                timed[key].append((outcome.scenario, outcome.latency_s))
    figures = []
    for (dataflow, index, section), scenarios in sorted(timed.items()):
        values = [seconds for _, seconds in scenarios]
        slowest = sorted(scenarios, key=lambda item: -item[1])[:SLOWEST]
        figures.append(SectionLatency(
            dataflow, index, section, len(values), percentile(values, 0.5),
            percentile(values, 0.95), max(values), tuple(slowest)))
    return figures


def over_budget(figures: Sequence[SectionLatency], budget: float) -> list[SectionLatency]:
    """The sections whose p95 latency exceeds ``budget`` seconds."""
    return [figure for figure in figures if figure.p95 > budget]


def seconds(value: float) -> str:
    """A latency as the page shows it: 0.25s, 12.3s."""
    return f"{value:.2f}s" if value < 10 else f"{value:.1f}s"
