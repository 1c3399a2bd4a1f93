"""A judgement that looked at nothing ends one of two ways, and which one decides the verdict:
the syncer's fault (nothing linked to compare) is its broken promise, NO-GO; talk-qa's (it
lost what it created) is an error, INCOMPLETE, and never blames the system under test."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest

from talkqa.outcome import NotJudged
from talkqa.pytest_plugin import Redactor, ScenarioRecord
from talkqa.scene import Scene


class _Request:
    """The fixtures ``Scene`` asks its pytest request for."""

    def __init__(self) -> None:
        self.fixtures: dict[str, Any] = {
            "record": ScenarioRecord(),
            "redactor": Redactor({"<KEY>": "sk_secret_value"}),
        }

    def getfixturevalue(self, name: str) -> Any:
        return self.fixtures[name]


def _scene() -> tuple[Scene, ScenarioRecord]:
    request = _Request()
    return Scene(cast(pytest.FixtureRequest, request), Path()), request.fixtures["record"]


def test_nothing_to_compare_by_the_syncers_fault_breaks_its_promise() -> None:
    scene, record = _scene()
    with pytest.raises(pytest.fail.Exception, match="nothing could be compared"):
        scene.refuse_vacuous(("missing: no linked target, so nothing could be compared", True))
    assert record.broken


def test_nothing_judged_by_talkqas_fault_is_an_error_not_a_broken_promise() -> None:
    scene, record = _scene()
    with pytest.raises(NotJudged, match="not judged"):
        scene.refuse_vacuous(("not judged: sk_secret_value lost its sources", False))
    assert not record.broken
    assert record.reason == "not judged: <KEY> lost its sources"


def test_a_judgement_that_saw_something_ends_nothing() -> None:
    scene, record = _scene()
    scene.refuse_vacuous(None)
    assert not record.broken and record.reason is None
