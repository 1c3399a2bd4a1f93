"""A both-sides edit writes its plan's ``first`` side first: the conflict promise's newest-wins
rule is only tested when the later write really is the later one (cassette replay matches
requests in any order, so only the writes themselves can show the order)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest

from reference_sync.testing import FakeSystems
from talkqa.dataflow.rst import load
from talkqa.dataflow.spec import Section
from talkqa.promises.plan import ConflictPlan, Side
from talkqa.pytest_plugin import ScenarioRecord, winner
from talkqa.samples import conflict_property
from talkqa.scene import CONFLICT, Scene, edit_both_sides
from talkqa.systems.catalog import Binding, bind

REPO = Path(__file__).resolve().parents[1]


class _Plan:
    def __init__(self, conflict: ConflictPlan) -> None:
        self.conflict = conflict


class _Scene:
    """The parts of a Scene ``edit_both_sides`` uses, over in-memory vendors."""

    def __init__(self, section: Section, first: Side) -> None:
        prop = conflict_property(section)
        assert prop is not None
        self.section = section
        self.systems = FakeSystems()
        self.record = ScenarioRecord()
        self.plan = _Plan(ConflictPlan(prop=prop, first=first))
        self.stash = pytest.Stash()
        source, target = self.bindings()
        customer = self.systems.resource(source).create({"email": "a@example.com"})
        person = self.systems.resource(target).create(
            {"name": "A", "type": "person", "email": "a@example.com"}
        )
        self.record.created.by_datatype[source.key] = [customer]
        self.targets = {str(customer["id"]): str(person["id"])}

    def bindings(self) -> tuple[Binding, Binding]:
        source, target = bind(self.section.source), bind(self.section.target)
        assert source is not None and target is not None
        return source, target

    def linked_ids(self, source_ids: list[str]) -> list[str]:
        return [self.targets[sid] for sid in source_ids]


@pytest.fixture(scope="module")
def customers() -> Section:
    return load(REPO / "dataflows" / "chargebee-invoiced-contacts.rst").sections[0]


@pytest.mark.parametrize("first", list(Side))
def test_the_plans_first_side_is_edited_first(customers: Section, first: Side) -> None:
    fake = _Scene(customers, first)
    edit_both_sides(cast(Scene, fake))
    state = fake.stash[CONFLICT]
    (sid,) = state.by_source
    stamps = {Side.SOURCE: state.source_at[sid], Side.TARGET: state.target_at[sid]}
    assert stamps[first] is not None and stamps[first.other] is not None
    assert stamps[first] < stamps[first.other]
    # so the newest-wins rule picks the side edited second
    assert winner(state.source_at[sid], state.target_at[sid]) == first.other.value


def test_each_side_holds_what_the_state_says_it_wrote(customers: Section) -> None:
    fake = _Scene(customers, Side.TARGET)
    edit_both_sides(cast(Scene, fake))
    state = fake.stash[CONFLICT]
    source, target = fake.bindings()
    for sid, tid in state.by_source.items():
        held: dict[str, Any] = fake.systems.resource(source).get(sid)
        there: dict[str, Any] = fake.systems.resource(target).get(tid)
        assert held["email"] == state.source_written[sid] != "a@example.com"
        assert there["email"] == state.target_written[sid] != "a@example.com"
        assert state.source_written[sid] != state.target_written[sid]
