"""The idempotence scenario watches the systems around the second run: its two snapshots are
taken before and after that run, so a write made by the run shows between them (the
vendors' own evidence; sandbox mode adds the sandbox's request counts on top)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest

from reference_sync.testing import FakeSystems
from talkqa.dataflow.rst import load
from talkqa.dataflow.spec import DataflowSpec
from talkqa.promises.plan import Action
from talkqa.pytest_plugin import ScenarioRecord
from talkqa.samples import snapshot_diff
from talkqa.scene import SNAPSHOTS, WRITES, Scene, run_sut_again
from talkqa.systems.catalog import bind

REPO = Path(__file__).resolve().parents[1]


class _Plan:
    action = Action.RERUN


class _Scene:
    """The parts of a Scene ``run_sut_again`` uses, over in-memory vendors; its "system
    under test" renames the one linked person on every run."""

    def __init__(self, spec: DataflowSpec, counts: dict[str, int] | None) -> None:
        self.spec = spec
        self.systems = FakeSystems()
        self.record = ScenarioRecord()
        self.plan = _Plan()
        self.stash = pytest.Stash()
        self.counts = counts
        source, target = bind(spec.sections[0].source), bind(spec.sections[0].target)
        assert source is not None and target is not None
        customer = self.systems.resource(source).create({"email": "a@example.com"})
        self.person = self.systems.resource(target).create(
            {"name": "A", "type": "person", "metadata": {"chargebee_id": str(customer["id"])}}
        )
        self.target = target

    @property
    def sandbox_requests(self) -> Any:
        return None if self.counts is None else (lambda: dict(self.counts or {}))

    def source_ids(self) -> None:
        return None

    def run_sut(self) -> None:
        self.systems.resource(self.target).update(str(self.person["id"]), {"name": "A"})
        if self.counts is not None:
            self.counts["invoiced PATCH /customers/{id}"] = 1 + self.counts.get(
                "invoiced PATCH /customers/{id}", 0
            )


@pytest.fixture(scope="module")
def spec() -> DataflowSpec:
    return load(REPO / "dataflows" / "chargebee-invoiced.rst")


def test_the_snapshots_are_taken_before_and_after_the_second_run(spec: DataflowSpec) -> None:
    fake = _Scene(spec, counts=None)
    run_sut_again(cast(Scene, fake))
    before, after = fake.stash[SNAPSHOTS]
    changes = snapshot_diff(before, after)
    assert [(c.resource, c.id, c.what) for c in changes] == [
        ("customers", str(fake.person["id"]), "written")
    ]
    assert WRITES not in fake.stash  # no sandbox to count writes outside sandbox mode


def test_sandbox_mode_also_counts_the_writes_of_the_second_run(spec: DataflowSpec) -> None:
    fake = _Scene(spec, counts={"chargebee GET /customers": 3})
    run_sut_again(cast(Scene, fake))
    assert fake.stash[WRITES] == {"invoiced PATCH /customers/{id}": 1}
