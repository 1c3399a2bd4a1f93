"""pytest-bdd glue for every generated feature: options, fixtures, and the generic steps.

Steps are generic: a feature's Background names a checklist and a section by position,
and every step reads what it needs from that section's spec. Nothing here knows a
property name. The names in step text are checked against the spec, so a feature file
that drifted from its checklist fails loudly instead of testing the wrong thing.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pytest_bdd import given, parsers, then, when

from talkqa.dataflow.gherkin import PROMISES, TAGS, sentence_for
from talkqa.dataflow.spec import DataflowSpec, Section
from talkqa.pytest_plugin import (
    CHARGEBEE_KEY_PLACEHOLDER,
    INVOICED_KEY_PLACEHOLDER,
    EditState,
    Redactor,
    ScenarioRecord,
    append_outcome,
    check_mode,
    failure_text,
    judge_section,
    outcome_line,
    replay_settings,
    run_id_for,
    scenario_slug,
    skip_reason,
    verify_edits,
)
from talkqa.pytest_plugin import vcr_config as build_vcr_config
from talkqa.systems.catalog import Binding, bind
from talkqa.systems.settings import Settings

REPO = Path(__file__).resolve().parents[1]
CASSETTES = REPO / "cassettes"
RECORD_KEY = pytest.StashKey[ScenarioRecord]()
_SPECS: dict[str, DataflowSpec] = {}


# --- options and markers ----------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("talkqa")
    group.addoption(
        "--talkqa-mode",
        default="replay",
        choices=("replay", "sandbox", "live"),
        help="replay: cassettes, network blocked; sandbox: bundled emulators; live: vendor "
        "sandboxes from CHARGEBEE_*/INVOICED_* environment variables",
    )
    group.addoption(
        "--sut-command",
        default=None,
        help="shell command running the system under test (default: the in-process reference sync)",
    )
    group.addoption(
        "--talkqa-outcomes",
        default=None,
        help="write one JSON line per scenario outcome here (read by `talkqa signoff`)",
    )


def pytest_configure(config: pytest.Config) -> None:
    for tag, doc in TAGS.items():
        config.addinivalue_line("markers", f"{tag}: {doc}")
    outcomes = config.getoption("--talkqa-outcomes", default=None)
    if outcomes:
        path = Path(outcomes)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("", encoding="utf-8")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Replay means no network, even without --block-network: cassettes only."""
    if config.getoption("--talkqa-mode", default="replay") != "replay":
        return
    here = Path(__file__).resolve().parent
    for item in items:
        if item.path.resolve().is_relative_to(here) and item.get_closest_marker("vcr"):
            item.add_marker(pytest.mark.block_network)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    outcomes = item.config.getoption("--talkqa-outcomes", default=None)
    record = item.stash.get(RECORD_KEY, None)
    if not outcomes or record is None or not record.promise:
        return report
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        reason = skip_reason(report.longrepr) if report.skipped else None
        if report.failed and not record.findings:
            reason = reason or _last_line(report.longreprtext)
        append_outcome(Path(outcomes), outcome_line(record, report.outcome, reason))
    return report


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:500] if lines else "failed"


# --- session: mode, settings, sandboxes -------------------------------------------------------


@pytest.fixture(scope="session")
def talkqa_mode(pytestconfig: pytest.Config) -> str:
    return check_mode(str(pytestconfig.getoption("--talkqa-mode")))


@pytest.fixture(scope="session")
def run_id(talkqa_mode: str) -> str:
    return run_id_for(talkqa_mode)


_SCENARIO_COUNT = [0]


@pytest.fixture
def scenario_run_id(run_id: str, talkqa_mode: str) -> str:
    """The id every entity of this scenario carries: unique per scenario in live mode, where
    nothing is reset between scenarios (a vendor may keep a deleted id reserved)."""
    if talkqa_mode != "live":
        return run_id
    _SCENARIO_COUNT[0] += 1
    return f"{run_id}s{_SCENARIO_COUNT[0]}"


@pytest.fixture(scope="session")
def sandboxes(talkqa_mode: str) -> Iterator[Any]:
    """The bundled emulators, once per session (sandbox mode without external base URLs)."""
    if talkqa_mode != "sandbox" or (
        os.environ.get("CHARGEBEE_BASE_URL") and os.environ.get("INVOICED_BASE_URL")
    ):
        yield None
        return
    from talkqa.sandbox.server import running_sandboxes

    with running_sandboxes(seed=0) as running:
        yield running


@pytest.fixture(scope="session")
def talkqa_settings(talkqa_mode: str, sandboxes: Any) -> Settings:
    if talkqa_mode == "replay":
        return replay_settings()
    if talkqa_mode == "sandbox":
        # the emulators never throttle unasked: no request budget, unlike the vendors
        env = Settings.from_env({**os.environ, **(sandboxes.env if sandboxes else {})})
        return Settings.for_sandbox(
            env.chargebee_base_url,
            env.invoiced_base_url,
            chargebee_api_key=env.chargebee_api_key.get_secret_value(),
            invoiced_api_key=env.invoiced_api_key.get_secret_value(),
        )
    return Settings.from_env()


@pytest.fixture(scope="session")
def redactor(talkqa_settings: Settings) -> Redactor:
    """Hides the keys in error text (steps see this object, never the keys themselves)."""
    return Redactor(
        {
            CHARGEBEE_KEY_PLACEHOLDER: talkqa_settings.chargebee_api_key.get_secret_value(),
            INVOICED_KEY_PLACEHOLDER: talkqa_settings.invoiced_api_key.get_secret_value(),
        }
    )


# --- pytest-recording: one cassette per scenario ----------------------------------------------


@pytest.fixture(scope="session")
def record_mode(pytestconfig: pytest.Config) -> str:
    return str(pytestconfig.getoption("--record-mode") or "none")


@pytest.fixture(scope="session")
def disable_recording(pytestconfig: pytest.Config, talkqa_mode: str) -> bool:
    """Sandbox and live runs talk to real servers unless asked to record (--record-mode)."""
    if pytestconfig.getoption("--disable-recording"):
        return True
    return talkqa_mode != "replay" and pytestconfig.getoption("--record-mode") is None


@pytest.fixture
def vcr_config(talkqa_settings: Settings) -> dict[str, Any]:
    return build_vcr_config(talkqa_settings)


def _scenario_of(request: pytest.FixtureRequest) -> Any:
    from pytest_bdd.scenario import scenario_wrapper_template_registry

    function = getattr(request.node, "function", None)
    return scenario_wrapper_template_registry.get(function) if function is not None else None


@pytest.fixture
def vcr_cassette_dir(request: pytest.FixtureRequest) -> str:
    scenario = _scenario_of(request)
    if scenario is None:
        return str(CASSETTES / "unsorted")
    feature = Path(scenario.feature.filename)
    return str(CASSETTES / feature.parent.name / feature.stem)


@pytest.fixture
def default_cassette_name(request: pytest.FixtureRequest) -> str:
    scenario = _scenario_of(request)
    return scenario_slug(scenario.name if scenario is not None else request.node.name)


# --- per scenario: client, systems, sut, record -----------------------------------------------


@pytest.fixture
def http_client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30.0) as client:
        yield client


@pytest.fixture
def systems(talkqa_settings: Settings, http_client: httpx.Client, talkqa_mode: str) -> Any:
    from talkqa.systems.connect import Systems

    if talkqa_mode == "replay":
        return Systems.connect(talkqa_settings, http_client, sleep=lambda _s: None)
    return Systems.connect(talkqa_settings, http_client)


@pytest.fixture(autouse=True)
def _fresh_sandbox(talkqa_mode: str, sandboxes: Any, talkqa_settings: Settings) -> None:
    """Every scenario starts from the same seeded state (so re-recording is byte-identical)."""
    if talkqa_mode != "sandbox":
        return
    if sandboxes is not None:
        sandboxes.reset(seed=0)
        return
    for base in (talkqa_settings.chargebee_base_url, talkqa_settings.invoiced_base_url):
        root = base.removesuffix("/api/v2")
        httpx.post(f"{root}/__admin/reset", json={"seed": 0}, timeout=10.0).raise_for_status()


@pytest.fixture
def sut(
    pytestconfig: pytest.Config,
    talkqa_mode: str,
    talkqa_settings: Settings,
    systems: Any,
    tmp_path: Path,
    record: ScenarioRecord,
) -> Any:
    from talkqa import sut as drivers

    command = pytestconfig.getoption("--sut-command")
    if not command:
        return drivers.ReferenceDriver(systems, tmp_path / "links.sqlite")
    if talkqa_mode == "replay":
        return drivers.ReplayCommandDriver(str(command))
    spec = _SPECS[record.dataflow]
    source_ids = record.created.all_source_ids() if talkqa_mode == "live" else None

    def probe(_spec: DataflowSpec) -> tuple[str, ...]:
        from talkqa.checks import check_spec

        report = check_spec(spec, systems, source_ids=source_ids)
        return tuple(sorted(f.message for f in report.findings))

    return drivers.CommandDriver(str(command), talkqa_settings.as_env(), probe=probe)


@pytest.fixture
def record(
    request: pytest.FixtureRequest, talkqa_mode: str, systems: Any
) -> Iterator[ScenarioRecord]:
    rec = ScenarioRecord()
    marks = {m.name for m in request.node.iter_markers()}
    rec.promise = next((p for p in PROMISES if p in marks), "")
    request.node.stash[RECORD_KEY] = rec
    yield rec
    if talkqa_mode == "live" and rec.created.order:
        _live_teardown(request, rec, systems)


def _live_teardown(request: pytest.FixtureRequest, rec: ScenarioRecord, systems: Any) -> None:
    """Delete what the scenario created and what the system under test wrote for it."""
    from talkqa.samples import delete_created, delete_linked_targets

    spec = _SPECS.get(rec.dataflow)
    targets: list[Binding] = []
    if spec is not None:
        targets = [b for s in spec.sections if (b := bind(s.target)) is not None]
    failures = delete_linked_targets(rec.created.all_source_ids(), systems, targets)
    failures += delete_created(rec.created, systems)
    if failures:
        request.node.warn(
            pytest.PytestWarning("live teardown left entities: " + "; ".join(failures))
        )


@pytest.fixture
def section(record: ScenarioRecord) -> Section:
    spec = _SPECS[record.dataflow]
    return next(s for s in spec.sections if s.index == record.section_index)


# --- steps ------------------------------------------------------------------------------------


def _load_spec(doc: str) -> DataflowSpec:
    if doc not in _SPECS:
        from talkqa.dataflow.rst import load

        path = Path(doc) if Path(doc).is_absolute() else REPO / doc
        _SPECS[doc] = load(path)
    return _SPECS[doc]


def _names(section: Section) -> tuple[str, str]:
    src = " ".join(f"{section.source.system} {section.source.datatype}".split())
    tgt = " ".join(f"{section.target.system} {section.target.datatype}".split())
    return src, tgt


def _expect_names(
    section: Section, *, source: str | None = None, target: str | None = None
) -> None:
    src, tgt = _names(section)
    for said, meant in ((source, src), (target, tgt)):
        if said is not None and " ".join(said.split()) != meant:
            pytest.fail(
                f"feature out of date: it says '{said}' where section {section.index} of the "
                f"checklist says '{meant}': regenerate with `talkqa features generate`",
                pytrace=False,
            )


@given(parsers.re(r'the checklist "(?P<doc>[^"]+)" section (?P<index>\d+)'))
def the_checklist_section(doc: str, index: str, record: ScenarioRecord) -> None:
    spec = _load_spec(doc)
    wanted = int(index)
    found = [s for s in spec.sections if s.index == wanted]
    if not found:
        pytest.fail(
            f"feature out of date: {doc} has no section {wanted}: regenerate the features",
            pytrace=False,
        )
    sec = found[0]
    record.dataflow = doc
    record.section_index = sec.index
    record.section = sec.heading
    _allure_labels(spec, sec, record.promise)
    if bind(sec.source) is None or bind(sec.target) is None:
        record.reason = (
            f"not covered: talk-qa has no connector for {_names(sec)[0]} or {_names(sec)[1]}"
        )
        pytest.skip(record.reason)


def _allure_labels(spec: DataflowSpec, sec: Section, promise: str) -> None:
    with contextlib.suppress(Exception):
        import allure

        allure.dynamic.epic(f"{spec.source} to {spec.target} Dataflow")
        allure.dynamic.feature(" ".join(sec.heading.split()))
        if promise:
            allure.dynamic.story(sentence_for(sec, promise))


@given(parsers.re(r"(?P<count>\d+) (?P<names>.+) entities created through the (?P<system>.+) API"))
def entities_created(
    count: str,
    names: str,
    section: Section,
    systems: Any,
    scenario_run_id: str,
    record: ScenarioRecord,
) -> None:
    from talkqa.samples import create_for_section

    _expect_names(section, source=names)
    record.created = create_for_section(section, int(count), systems, scenario_run_id)


def _run(sut: Any, record: ScenarioRecord, redactor: Redactor) -> None:
    """Run the system under test; its own report goes to Allure as evidence, keys hidden."""
    from talkqa.sut import SutError

    try:
        summary = sut.run(_SPECS[record.dataflow])
    except SutError as exc:
        pytest.fail(redactor(str(exc)), pytrace=False)
    with contextlib.suppress(Exception):
        import allure

        allure.attach(
            redactor(json.dumps({"sut": summary.sut, **summary.details}, indent=2, default=str)),
            name=f"{summary.sut} run",
            attachment_type=allure.attachment_type.JSON,
        )


@given("the system under test has run")
def sut_has_run(sut: Any, record: ScenarioRecord, redactor: Redactor) -> None:
    _run(sut, record, redactor)


@when("the system under test runs")
def sut_runs(sut: Any, record: ScenarioRecord, redactor: Redactor) -> None:
    _run(sut, record, redactor)


@when("the system under test runs again")
def sut_runs_again(
    request: pytest.FixtureRequest,
    talkqa_mode: str,
    sut: Any,
    systems: Any,
    record: ScenarioRecord,
    redactor: Redactor,
) -> None:
    from talkqa.samples import snapshot

    if record.promise == "idempotence":
        bindings = _all_bindings(_SPECS[record.dataflow])
        only = record.created.all_source_ids() if talkqa_mode == "live" else None
        before = snapshot(systems, bindings, only)
        _run(sut, record, redactor)
        request.node.stash[_SNAPSHOTS] = (before, snapshot(systems, bindings, only))
        return
    _run(sut, record, redactor)


_SNAPSHOTS = pytest.StashKey[tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]]()


def _all_bindings(spec: DataflowSpec) -> list[Binding]:
    found: list[Binding] = []
    for sec in spec.sections:
        for ref in (sec.source, sec.target):
            binding = bind(ref)
            if binding is not None and binding not in found:
                found.append(binding)
    return found


def _source_ids(record: ScenarioRecord, talkqa_mode: str) -> set[str] | None:
    return record.created.all_source_ids() if talkqa_mode == "live" else None


def _judge(
    record: ScenarioRecord,
    section: Section,
    systems: Any,
    talkqa_mode: str,
    checks: set[str],
    *,
    keep: Any = None,
    pairs: bool = False,
    unlinked_sources: Collection[str] = (),
) -> None:
    """Judge the section; with ``pairs``, count linked pairs and refuse a vacuous pass."""
    from talkqa.report.allure_findings import attach_findings

    judged = judge_section(
        _SPECS[record.dataflow],
        section,
        systems,
        checks=checks,
        source_ids=_source_ids(record, talkqa_mode),
        unlinked_sources=unlinked_sources,
    )
    findings = [f for f in judged.findings if keep is None or keep(f)]
    record.entities_checked = judged.pairs_checked if pairs else judged.entities_checked
    record.findings = findings
    if not judged.covered:
        record.reason = f"not covered: {judged.reason}"
        pytest.skip(record.reason)
    if findings:
        attach_findings(findings, f"findings: {', '.join(sorted(checks))}")
        pytest.fail(failure_text(findings), pytrace=False)
    if pairs and judged.entities_checked and not judged.pairs_checked:
        src, tgt = _names(section)
        record.reason = (
            f"missing: none of {judged.entities_checked} {src} entities has a linked {tgt}, "
            "so nothing could be compared"
        )
        pytest.fail(record.reason, pytrace=False)


@then(
    parsers.re(
        r"every (?P<source>.+) has exactly one linked (?P<target>.+?)(?: with (?P<fixed>.+))?"
    )
)
def exactly_one_linked(
    source: str,
    target: str,
    section: Section,
    systems: Any,
    talkqa_mode: str,
    record: ScenarioRecord,
) -> None:
    _expect_names(section, source=source, target=target)
    _judge(record, section, systems, talkqa_mode, {"exists"})


@then(
    parsers.re(
        r"every (?P<source>.+) has at most one linked (?P<target>.+?)(?: with (?P<fixed>.+))?"
    )
)
def at_most_one_linked(
    source: str,
    target: str,
    section: Section,
    systems: Any,
    talkqa_mode: str,
    record: ScenarioRecord,
) -> None:
    """Conditional sections: the condition is prose, so only duplicates and types are judged."""
    _expect_names(section, source=source, target=target)
    _judge(record, section, systems, talkqa_mode, {"exists"})


@then(parsers.re(r"no (?P<target>.+) is created for an unlinked (?P<source>.+)"))
def nothing_created_unlinked(
    source: str,
    target: str,
    section: Section,
    systems: Any,
    talkqa_mode: str,
    record: ScenarioRecord,
) -> None:
    """Link-first sections: the samples were never linked, so nothing may appear for them."""
    _expect_names(section, source=source, target=target)
    binding = bind(section.source)
    created = record.created.ids(binding.key) if binding is not None else []
    _judge(
        record, section, systems, talkqa_mode, {"exists", "link-first"}, unlinked_sources=created
    )


def _table_rows(section: Section, datatable: list[list[str]]) -> set[tuple[str, str]]:
    header, *rows = datatable
    col = {name: i for i, name in enumerate(header)}
    wanted = {(r[col["source_path"]], r[col["target_path"]]) for r in rows}
    known = {(p.source_path, p.target_path) for p in section.properties}
    stale = sorted(wanted - known)
    if stale:
        pytest.fail(
            "feature out of date: rows "
            + ", ".join(f"{s} -> {t}" for s, t in stale)
            + f" are not in section {section.index} of the checklist: regenerate the features",
            pytrace=False,
        )
    return wanted


@then("every linked pair has these properties equal under their declared types:")
def properties_equal(
    datatable: list[list[str]],
    section: Section,
    systems: Any,
    talkqa_mode: str,
    record: ScenarioRecord,
) -> None:
    rows = _table_rows(section, datatable)
    _judge(
        record,
        section,
        systems,
        talkqa_mode,
        {"properties"},
        pairs=True,
        keep=lambda f: f.source_path is None or (f.source_path, f.target_path) in rows,
    )


@then("every reference points at the target linked to the referenced source:")
def references_point_at_links(
    datatable: list[list[str]],
    section: Section,
    systems: Any,
    talkqa_mode: str,
    record: ScenarioRecord,
) -> None:
    rows = _table_rows(section, datatable)
    _judge(
        record,
        section,
        systems,
        talkqa_mode,
        {"references"},
        pairs=True,
        keep=lambda f: f.source_path is None or (f.source_path, f.target_path) in rows,
    )


_EDITS = pytest.StashKey[EditState]()


@when(
    parsers.re(
        r"each linked (?P<side>source|target) entity is edited through the (?P<system>.+) API"
    )
)
def edit_each_linked(
    request: pytest.FixtureRequest,
    side: str,
    section: Section,
    systems: Any,
    talkqa_mode: str,
    record: ScenarioRecord,
) -> None:
    from talkqa.checks import read_snapshot
    from talkqa.samples import apply_edit, plan_edit

    edit = plan_edit(section, side)
    if edit is None:
        record.reason = (
            f"not covered: neither the checklist nor talk-qa knows a field the {side} "
            f"system's API lets us edit on a {_names(section)[0 if side == 'source' else 1]}"
        )
        pytest.skip(record.reason)
    if not edit.mapped and section.properties:
        paths = [p.source_path if side == "source" else p.target_path for p in section.properties]
        record.reason = (
            f"link survival only: the {side} system's API cannot change a mapped property "
            f"({', '.join(paths)}) in a way the other side can take, so {edit.path} "
            "(unmapped) was edited"
        )
    source, target = bind(section.source), bind(section.target)
    assert source is not None and target is not None
    source_ids = record.created.ids(source.key)
    if side == "source":
        binding, ids = source, source_ids
    else:
        snap = read_snapshot(section, systems, source_ids=source_ids)
        pairing = snap.pairing()
        ids = []
        for sid in source_ids:
            linked = pairing.linked_id(sid)
            if linked is None:
                pytest.fail(
                    f"missing: {_names(section)[0]} '{sid}' has no single linked "
                    f"{_names(section)[1]} to edit",
                    pytrace=False,
                )
            ids.append(linked)
        binding = target
    written = apply_edit(edit, binding, ids, systems)
    by_source = dict(zip(source_ids, ids, strict=True))
    request.node.stash[_EDITS] = EditState(edit, side, binding, written, by_source)


@then(parsers.re(r"the edits reached (?P<system>.+) and every link still holds"))
def edits_reached(
    request: pytest.FixtureRequest,
    section: Section,
    systems: Any,
    talkqa_mode: str,
    record: ScenarioRecord,
) -> None:
    from talkqa.report.allure_findings import attach_findings

    state = request.node.stash[_EDITS]
    judged = judge_section(
        _SPECS[record.dataflow],
        section,
        systems,
        checks={"exists", "properties", "references"},
        source_ids=_source_ids(record, talkqa_mode),
    )
    record.entities_checked = judged.entities_checked
    findings = [*judged.findings, *verify_edits(section, state, systems)]
    record.findings = findings
    if findings:
        attach_findings(findings, "findings: edits")
        pytest.fail(failure_text(findings), pytrace=False)


@then(parsers.re(r"no entity changed in (?P<first>.+) or (?P<second>.+)"))
def nothing_changed(request: pytest.FixtureRequest, record: ScenarioRecord) -> None:
    from talkqa.samples import snapshot_changes

    before, after = request.node.stash[_SNAPSHOTS]
    changes = snapshot_changes(before, after)
    record.entities_checked = len(after)
    if changes:
        record.reason = f"written_on_rerun: {len(changes)} entities changed by the second run"
        with contextlib.suppress(Exception):
            import allure

            allure.attach(
                "\n".join(changes),
                name="changed by the second run",
                attachment_type=allure.attachment_type.TEXT,
            )
        pytest.fail("written_on_rerun: " + "\nwritten_on_rerun: ".join(changes[:20]), pytrace=False)
