"""pytest-bdd wiring for every generated feature: options, hooks, vcr config and fixtures.

The step definitions live in ``given_steps``, ``when_steps`` and ``then_steps`` beside this
file. pytest-bdd turns each step into a fixture in the module that defines it, so they are
star-imported at the end of this conftest: that makes them fixtures of every test module in
``steps/`` (and of any suite that loads ``-p steps.conftest``). What a step does lives in
:mod:`talkqa.scene`.

Steps are generic: a feature's Background names a checklist and a section by position,
and every step reads what it needs from that section's spec. Nothing here knows a
property name. The names in step text are checked against the spec, so a feature file
that drifted from its checklist fails loudly instead of testing the wrong thing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from talkqa.dataflow.gherkin import BACKGROUND_STEP
from talkqa.dataflow.spec import DataflowSpec, Section
from talkqa.outcome import NotJudged
from talkqa.promises import FeatureTag, PromiseId, marker_docs
from talkqa.pytest_plugin import (
    CHARGEBEE_KEY_PLACEHOLDER,
    INVOICED_KEY_PLACEHOLDER,
    ScenarioRecord,
    append_outcome,
    cassette_problem,
    check_mode,
    error_reason,
    last_line,
    outcome_of,
    refuse_recording_in_replay,
    replay_settings,
    run_id_for,
    scenario_slug,
    skip_reason,
)
from talkqa.pytest_plugin import vcr_config as build_vcr_config
from talkqa.redact import Redactor
from talkqa.scene import SPECS, scene_of
from talkqa.systems.catalog import Binding, bind
from talkqa.systems.settings import Settings

REPO = Path(__file__).resolve().parents[1]
CASSETTES = REPO / "cassettes"
RECORD_KEY = pytest.StashKey[ScenarioRecord]()
WRITTEN_KEY = pytest.StashKey[set[str]]()  # node ids whose outcome is written
REDACTOR_KEY = pytest.StashKey[Redactor]()  # the session's redactor, for the hooks


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
    for tag, doc in marker_docs().items():
        config.addinivalue_line("markers", f"{tag}: {doc}")
    refusal = refuse_recording_in_replay(
        str(config.getoption("--talkqa-mode", default="replay")),
        config.getoption("--record-mode", default=None),
    )
    if refusal:  # before anything runs: recording in replay would delete the evidence
        raise pytest.UsageError(refusal)
    config.stash[WRITTEN_KEY] = set()
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


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Replay: a missing or unreadable cassette is one line naming it, before vcrpy loads it
    (a truncated cassette is otherwise a long YAML traceback that names no file)."""
    if item.config.getoption("--talkqa-mode", default="replay") != "replay":
        return
    scenario = _scenario_of_item(item)
    if scenario is None or not item.get_closest_marker("vcr"):
        return
    if item.get_closest_marker(FeatureTag.UNBOUND) or item.get_closest_marker(FeatureTag.NO_API):
        return  # skipped, as not covered or vendor-impossible: no cassette
    problem = cassette_problem(_cassette_path(scenario))
    if problem:
        raise NotJudged(problem)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Every scenario ends as exactly one outcome, written once: passed, failed (the system
    under test broke a promise), error (talk-qa could not judge) or skipped (not covered)."""
    report = yield
    if call.excinfo is not None and isinstance(call.excinfo.value, NotJudged):
        report.longrepr = str(call.excinfo.value)  # one line, not a traceback of the plugin
    outcomes = item.config.getoption("--talkqa-outcomes", default=None)
    scenario = _scenario_of_item(item)
    if scenario is None:
        return report
    ended = report.when == "call" or (report.when == "setup" and report.outcome != "passed")
    if not ended:
        return report
    record = item.stash.get(RECORD_KEY, None) or _record_from_feature(item, scenario)
    where: str | None = None
    reason: str | None = None
    if report.skipped:
        reason = skip_reason(report.longrepr)
    elif report.failed and not record.broken:
        reason, where = error_reason(call.excinfo, _cassette_path(scenario))
        reason = reason or record.reason or last_line(report.longreprtext)
    elif report.failed:
        reason = record.reason if not record.findings else None
    outcome = outcome_of(record, report.outcome, reason, where)
    if outcomes:
        append_outcome(Path(outcomes), outcome, _redactor(item.config))
    item.config.stash[WRITTEN_KEY].add(item.nodeid)
    if report.when == "setup":  # ended before pytest-bdd started it: Allure never saw it
        from talkqa.report.allure_outcome import report_unstarted

        feature = scenario.feature
        report_unstarted(outcome, os.path.normpath(feature.rel_filename), feature.name)
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A scenario that never ended (an interrupted run) is an error, not a missing row."""
    outcomes = session.config.getoption("--talkqa-outcomes", default=None)
    if not outcomes:
        return
    written = session.config.stash.get(WRITTEN_KEY, set())
    for item in session.items:
        scenario = _scenario_of_item(item)
        if scenario is None or item.nodeid in written:
            continue
        record = item.stash.get(RECORD_KEY, None) or _record_from_feature(item, scenario)
        reason = "did not run: the run was interrupted before this scenario ended"
        append_outcome(
            Path(outcomes), outcome_of(record, "error", reason), _redactor(session.config)
        )


def _redactor(config: pytest.Config) -> Redactor:
    """The session's redactor; before any scenario asked for it, the keys in the environment."""
    from talkqa.redact import redactor_from_env

    return config.stash.get(REDACTOR_KEY, None) or redactor_from_env(os.environ)


def _record_from_feature(item: pytest.Item, scenario: Any) -> ScenarioRecord:
    """A record for a scenario that failed before its steps ran: its checklist and section
    from the feature's Background, its promise from its tag."""
    import re

    record = ScenarioRecord(scenario=scenario.name)
    background = getattr(scenario.feature, "background", None)
    for step in getattr(background, "steps", ()) or ():
        found = re.match(BACKGROUND_STEP, step.name)
        if found:
            record.dataflow, record.section_index = found["doc"], int(found["index"])
            record.section = scenario.feature.name
    marks = {m.name for m in item.iter_markers()}
    record.promise = next((p.value for p in PromiseId if p.value in marks), "")
    return record


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
    if talkqa_mode == "sandbox":  # loopback sandboxes get no request budget (Settings)
        return Settings.from_env({**os.environ, **(sandboxes.env if sandboxes else {})})
    return Settings.from_env()


@pytest.fixture(scope="session")
def redactor(pytestconfig: pytest.Config, talkqa_settings: Settings) -> Redactor:
    """Hides the keys in error text (steps see this object, never the keys themselves)."""
    redact = Redactor(
        {
            CHARGEBEE_KEY_PLACEHOLDER: talkqa_settings.chargebee_api_key.get_secret_value(),
            INVOICED_KEY_PLACEHOLDER: talkqa_settings.invoiced_api_key.get_secret_value(),
        }
    )
    pytestconfig.stash[REDACTOR_KEY] = redact
    return redact


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


def _scenario_of_item(item: pytest.Item) -> Any:
    from pytest_bdd.scenario import scenario_wrapper_template_registry

    function = getattr(item, "function", None)
    return scenario_wrapper_template_registry.get(function) if function is not None else None


def _scenario_of(request: pytest.FixtureRequest) -> Any:
    return _scenario_of_item(request.node)


def _cassette_path(scenario: Any) -> Path:
    """cassettes/<checklist>/<feature>/<scenario>.yaml (pytest-recording's name, ours too)."""
    feature = Path(scenario.feature.filename)
    return CASSETTES / feature.parent.name / feature.stem / f"{scenario_slug(scenario.name)}.yaml"


@pytest.fixture
def vcr_cassette_dir(request: pytest.FixtureRequest) -> str:
    scenario = _scenario_of(request)
    if scenario is None:
        return str(CASSETTES / "unsorted")
    return str(_cassette_path(scenario).parent)


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
    for base, key in (
        (talkqa_settings.chargebee_base_url, talkqa_settings.chargebee_api_key),
        (talkqa_settings.invoiced_base_url, talkqa_settings.invoiced_api_key),
    ):
        root = base.removesuffix("/api/v2")
        auth = (key.get_secret_value(), "")
        httpx.post(
            f"{root}/__admin/reset", json={"seed": 0}, timeout=10.0, auth=auth
        ).raise_for_status()


@pytest.fixture
def sandbox_requests(
    talkqa_mode: str, sandboxes: Any, talkqa_settings: Settings
) -> Callable[[], dict[str, int]] | None:
    """The sandboxes' own request counts, evidence no vendor API gives (sandbox mode only)."""
    if talkqa_mode != "sandbox":
        return None
    if sandboxes is not None:
        return lambda: dict(sandboxes.stats()["requests"])
    root = talkqa_settings.chargebee_base_url.removesuffix("/api/v2")
    auth = (talkqa_settings.chargebee_api_key.get_secret_value(), "")

    def read() -> dict[str, int]:
        answer = httpx.get(f"{root}/__admin/stats", auth=auth, timeout=10.0)
        answer.raise_for_status()
        return dict(answer.json()["requests"])

    return read


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
    spec = SPECS[record.dataflow]
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
    scenario = _scenario_of(request)
    rec = ScenarioRecord(scenario=scenario.name if scenario is not None else request.node.name)
    request.node.stash[RECORD_KEY] = rec
    yield rec
    if talkqa_mode == "live" and rec.created.order:
        _live_teardown(request, rec, systems)


def _live_teardown(request: pytest.FixtureRequest, rec: ScenarioRecord, systems: Any) -> None:
    """Delete what the scenario created and what the system under test wrote for it."""
    from talkqa.samples import delete_created, delete_linked_targets

    spec = SPECS.get(rec.dataflow)
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
    spec = SPECS[record.dataflow]
    return next(s for s in spec.sections if s.index == record.section_index)


@pytest.fixture(scope="session")
def sut_label(pytestconfig: pytest.Config, redactor: Redactor) -> str:
    """The system under test as the report names it (a command's secrets hidden)."""
    command = pytestconfig.getoption("--sut-command")
    return redactor(f"command: {command}") if command else "reference-sync"


@pytest.fixture(autouse=True)
def _scene(request: pytest.FixtureRequest) -> Iterator[None]:
    """The scenario the step functions act on (they take no fixtures: see Scene)."""
    with scene_of(request, REPO):
        yield


# --- steps: one module per keyword, star-imported so pytest-bdd sees their step fixtures -------

from steps.given_steps import *  # noqa: E402, F403
from steps.then_steps import *  # noqa: E402, F403
from steps.when_steps import *  # noqa: E402, F403
