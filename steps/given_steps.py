"""The Given steps: which checklist section, and the entities a scenario starts from."""

from __future__ import annotations

from pytest_bdd import given, parsers

from talkqa.scene import (
    create_sources,
    link_referenced_first,
    link_sources_first,
    open_section,
    scene,
)


@given(parsers.re(r'the checklist "(?P<doc>[^"]+)" section (?P<index>\d+)'))
def the_checklist_section(doc: str, index: str) -> None:
    open_section(scene(), doc, int(index))


@given(parsers.re(r"(?P<count>\d+) (?P<names>.+) entities created through the (?P<system>.+) API"))
def entities_created(count: str, names: str) -> None:
    create_sources(scene(), int(count), names)


@given(
    parsers.re(
        r"each of them has an existing (?P<target>.+?) "
        r"(?:matching it by (?P<rule>.+)|that claims it by (?P<claim>.+))"
    )
)
def each_has_existing_target(target: str, rule: str | None, claim: str | None) -> None:
    link_sources_first(scene(), target, rule, claim)


@given(
    parsers.re(
        r"each (?P<source>.+?) they reference has an existing (?P<target>.+?) "
        r"(?:matching it by (?P<rule>.+)|that claims it by (?P<claim>.+))"
    )
)
def each_referenced_has_existing_target(
    source: str, target: str, rule: str | None, claim: str | None
) -> None:
    link_referenced_first(scene(), source, target, rule, claim)
