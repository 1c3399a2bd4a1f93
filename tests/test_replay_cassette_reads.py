"""Replay reads each scenario's cassette once: the check that names a broken cassette hands
what it read to vcrpy (``CheckedCassettePersister``) instead of vcrpy parsing the YAML again."""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from vcr.serializers import yamlserializer

from talkqa.pytest_plugin import CheckedCassettePersister, read_cassette
from tests.cli_runner import Ran

REPO = Path(__file__).resolve().parents[1]
CHECKLIST = "chargebee-invoiced"


class _Fallback:
    """A persister that says which path it was asked to load or save."""

    def __init__(self) -> None:
        self.loads: list[str] = []
        self.saves: list[str] = []

    def load_cassette(self, cassette_path: Any, serializer: Any) -> Any:
        self.loads.append(str(cassette_path))
        return ["fallback"], ["fallback"]

    def save_cassette(self, cassette_path: Any, cassette_dict: Any, serializer: Any) -> None:
        self.saves.append(str(cassette_path))


def _a_cassette() -> Path:
    return sorted((REPO / "cassettes").rglob("*.yaml"))[0]


def test_the_checked_read_is_handed_over_once_and_only_for_its_own_path() -> None:
    path = _a_cassette()
    read = read_cassette(path)
    assert read.interactions is not None
    fallback = _Fallback()
    persister = CheckedCassettePersister(fallback, read)
    assert persister.load_cassette(str(path), yamlserializer) is read.interactions
    assert fallback.loads == []
    assert persister.load_cassette(str(path), yamlserializer) == (["fallback"], ["fallback"])
    assert fallback.loads == [str(path)]  # a second load reads the file again

    other = CheckedCassettePersister(fallback, read_cassette(path))
    elsewhere = str(path.with_name("another.yaml"))
    assert other.load_cassette(elsewhere, yamlserializer) == (["fallback"], ["fallback"])
    assert fallback.loads[-1] == elsewhere
    assert other.load_cassette(str(path), yamlserializer) == (["fallback"], ["fallback"])

    other.save_cassette(str(path), {"requests": [], "responses": []}, yamlserializer)
    assert fallback.saves == [str(path)]


def test_a_broken_cassette_is_never_handed_over(tmp_path: Path) -> None:
    cut = tmp_path / "cut.yaml"
    cut.write_text('interactions:\n- request:\n    body: "never closed\n', encoding="utf-8")
    read = read_cassette(cut)
    assert read.problem is not None and read.interactions is None
    fallback = _Fallback()
    CheckedCassettePersister(fallback, read).load_cassette(str(cut), yamlserializer)
    assert fallback.loads == [str(cut)]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """One checklist's suite: what `talkqa signoff` reads from the working directory."""
    root = tmp_path / "project"
    for folder in ("features", "cassettes"):
        shutil.copytree(REPO / folder / CHECKLIST, root / folder / CHECKLIST)
    shutil.copytree(REPO / "dataflows", root / "dataflows")
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


def test_replay_parses_each_scenarios_cassette_once(
    project: Path, cli: Callable[..., Ran], monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed: Counter[str] = Counter()
    deserialize = yamlserializer.deserialize

    def counted(text: str) -> Any:
        parsed[text] += 1
        return deserialize(text)

    monkeypatch.setattr(yamlserializer, "deserialize", counted)
    done = cli(["signoff", f"dataflows/{CHECKLIST}.rst", "--promise", "exists"], cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    texts = {
        path.read_text(encoding="utf-8"): path
        for path in (project / "cassettes" / CHECKLIST).rglob("*.yaml")
    }
    read = {texts[text]: count for text, count in parsed.items()}
    assert read, "the exists scenarios replayed no cassette"
    assert set(read.values()) == {1}, read
