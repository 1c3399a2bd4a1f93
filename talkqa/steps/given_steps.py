"""The Given steps: which checklist section, and the entities a scenario starts from.

Only the Background's checklist and section are read from the text (they name the plan's
section); everything else comes from the scenario's plan.
"""

from __future__ import annotations

from pytest_bdd import given, parsers

from talkqa.dataflow.gherkin import BACKGROUND_STEP
from talkqa.scene import (
    create_sources,
    link_referenced_first,
    link_sources_first,
    open_section,
    scene,
)


@given(parsers.re(BACKGROUND_STEP))
def the_checklist_section(doc: str, index: str) -> None:
    open_section(scene(), doc, int(index))


@given(parsers.re(r"\d+ .+ entities created through .+"))
def entities_created() -> None:
    create_sources(scene())


@given(parsers.re(r"each of them has an existing .+"))
def each_has_existing_target() -> None:
    link_sources_first(scene())


@given(parsers.re(r"each .+ they reference has an existing .+"))
def each_referenced_has_existing_target() -> None:
    link_referenced_first(scene())
