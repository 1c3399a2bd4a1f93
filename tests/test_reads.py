"""A judgement that lists only the fields it reads judges exactly as one that lists all."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from reference_sync import LinkStore, run_sync
from talkqa import checks
from talkqa.checks import bound_sections, check_spec
from talkqa.dataflow.rst import load
from talkqa.dataflow.spec import DataflowSpec
from talkqa.reads import ALWAYS, head, judgement_reads
from talkqa.sandbox.server import running_sandboxes
from talkqa.systems import catalog
from talkqa.systems.connect import Systems
from talkqa.systems.settings import Settings

DATAFLOWS = Path(__file__).resolve().parents[1] / "dataflows"
SPECS = {path.name: load(path) for path in sorted(DATAFLOWS.glob("*.rst"))}


class _Reading(Mapping[str, Any]):
    """An entity whose every field is filled in, noting which fields were read."""

    def __init__(self) -> None:
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return "x"

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


class _Empty(_Reading):
    """An entity with no field at all (a rule may then read others)."""

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        raise KeyError(key)


@pytest.mark.parametrize("filled", [True, False])
def test_each_rule_declares_every_field_it_reads(filled: bool) -> None:
    for binding in catalog._BINDINGS:
        for rule in (binding.classify, binding.only_if):
            if rule is None:
                continue
            entity = _Reading() if filled else _Empty()
            rule(entity)
            assert entity.read <= binding.rule_reads, binding.datatype


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_mapped_path_and_pairing_field_is_read(name: str) -> None:
    spec = SPECS[name]
    reads = judgement_reads(bound_sections(spec))
    for section, source, target in bound_sections(spec):
        for binding, paths in (
            (source, [p.source_path for p in section.properties]),
            (target, [p.target_path for p in section.properties]),
        ):
            kept = reads[(binding.system, binding.resource)]
            assert ALWAYS | {head(path) for path in paths} | set(binding.fixed) <= kept


@pytest.fixture(scope="module")
def planted() -> Iterator[Systems]:
    """A seeded sandbox synced by every shipped checklist, then a few mismatches planted."""
    with (
        running_sandboxes(seed=3) as sandboxes,
        httpx.Client(timeout=60) as http,
        tempfile.TemporaryDirectory() as tmp,
    ):
        sandboxes.seed(customers=14, items=3, orders=16)
        systems = Systems.connect(Settings.from_env(sandboxes.env), http)
        for name, spec in SPECS.items():
            with LinkStore(Path(tmp) / f"{name}.sqlite") as store:
                run_sync(spec, systems, store, concurrency=2)
        invoices = list(systems.invoiced.invoices.list())
        systems.invoiced.invoices.update(str(invoices[0]["id"]), {"currency": "nok"})
        systems.invoiced.invoices.delete(str(invoices[1]["id"]))
        customers = list(systems.invoiced.customers.list())
        person = next(c for c in customers if c["type"] == "person")
        systems.invoiced.customers.update(str(person["id"]), {"metadata": {"chargebee_id": "gone"}})
        other = next(c for c in customers if c["id"] != person["id"])
        systems.invoiced.customers.update(str(other["id"]), {"email": "changed@example.com"})
        yield systems


def _judged(spec: DataflowSpec, systems: Systems) -> tuple[list[str], list[Any]]:
    report = check_spec(spec, systems)
    return [f.message for f in report.findings], report.sections


@pytest.mark.parametrize("name", sorted(SPECS))
def test_a_judgement_of_some_fields_finds_what_one_of_all_fields_finds(
    name: str, planted: Systems, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept = _judged(SPECS[name], planted)
    monkeypatch.setattr(checks, "judgement_reads", lambda sections: None)
    whole = _judged(SPECS[name], planted)
    assert kept == whole
    assert name != "chargebee-invoiced.rst" or len(kept[0]) >= 3  # the planted ones at least
