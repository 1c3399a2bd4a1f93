"""The talk-qa pytest plugin (the ``pytest11`` entry point ``talkqa``): options, hooks,
vcr config, fixtures, and the collection of a project's feature files.

It loads in every pytest run of an environment that has talk-qa installed, so it acts only
in a talk-qa project (:mod:`talkqa.project`: a ``talkqa.toml`` or ``[tool.talkqa]``) and only
on that project's scenarios: each ``.feature`` file under its features folder is collected
as one test module (no hand-written ``scenarios(...)`` module per checklist), and every
hook and autouse fixture leaves other tests alone.

The step definitions live in ``given_steps``, ``when_steps`` and ``then_steps`` beside this
file. pytest-bdd turns each step into a fixture in the module that defines it, so they are
star-imported at the end of this module: that makes them fixtures of the plugin, seen by
every scenario. What a step does lives in :mod:`talkqa.scene`.

Steps are generic: a feature's Background names a checklist and a section by position,
and every step reads what it needs from that section's spec. Nothing here knows a
property name. The names in step text are checked against the spec, so a feature file
that drifted from its checklist fails loudly instead of testing the wrong thing.
"""

from __future__ import annotations

import os
import subprocess
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from talkqa.dataflow.gherkin import BACKGROUND_STEP
from talkqa.dataflow.spec import DataflowSpec, Section
from talkqa.errors import UserError
from talkqa.outcome import NotJudged
from talkqa.project import Project, find_project
from talkqa.promises import FeatureTag, PromiseId, marker_docs
from talkqa.pytest_plugin import (
    CHARGEBEE_KEY_PLACEHOLDER,
    INVOICED_KEY_PLACEHOLDER,
    CassetteRead,
    ScenarioRecord,
    append_outcome,
    check_mode,
    error_reason,
    last_line,
    outcome_of,
    read_cassette,
    refuse_recording_in_replay,
    replay_settings,
    run_id_for,
    scenario_slug,
    skip_reason,
)
from talkqa.redact import Redactor
from talkqa.scene import SPECS, scene_of
from talkqa.systems.catalog import Binding, bind
from talkqa.systems.settings import Settings

PROJECT_KEY = pytest.StashKey[Project | None]()  # the talk-qa project of the run, if any
RECORD_KEY = pytest.StashKey[ScenarioRecord]()
WRITTEN_KEY = pytest.StashKey[set[str]]()  # node ids whose outcome is written
REDACTOR_KEY = pytest.StashKey[Redactor]()  # the session's redactor, for the hooks
# The cassette replay's check just read, until the scenario's VCR takes it (one parse each).
CHECKED_KEY = pytest.StashKey[CassetteRead | None]()


# --- options and markers ----------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("talkqa")
    group.addoption(
        "--talkqa-mode",
        default=None,
        choices=("replay", "sandbox", "live"),
        help="replay: cassettes, network blocked; sandbox: bundled emulators; live: vendor "
        "sandboxes from CHARGEBEE_*/INVOICED_* environment variables (default: the "
        "project's `mode`, else replay)",
    )
    group.addoption(
        "--sut-command",
        default=None,
        help="shell command running the system under test (default: the project's "
        "`sut_command`, else the in-process reference sync)",
    )
    group.addoption("--sut-service", action="store_true", default=False,
                    help="the system under test is a running service: judge promises over time")
    group.addoption("--within", type=float, default=60.0, help="--sut-service: seconds to hold")
    group.addoption("--poll", type=float, default=1.0, help="--sut-service: first poll wait")
    group.addoption("--quiet-window", type=float, default=10.0,
                    help="--sut-service: seconds a service must write nothing")
    group.addoption(
        "--talkqa-outcomes",
        default=None,
        help="write one JSON line per scenario outcome here (read by `talkqa signoff`)",
    )


def _project(config: pytest.Config) -> Project | None:
    return config.stash.get(PROJECT_KEY, None)


def suite_mode(config: pytest.Config) -> str:
    """--talkqa-mode, else the project's mode, else replay."""
    chosen = config.getoption("--talkqa-mode", default=None)
    project = _project(config)
    return str(chosen or (project.settings.mode if project else "replay"))


def _sut_command(config: pytest.Config) -> str | None:
    """--sut-command, else the project's sut_command (None: the reference sync)."""
    project = _project(config)
    chosen = config.getoption("--sut-command", default=None)
    return chosen or (project.settings.sut_command if project else None) or None


def pytest_configure(config: pytest.Config) -> None:
    try:
        config.stash[PROJECT_KEY] = find_project(config.rootpath)
    except UserError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[WRITTEN_KEY] = set()
    if _project(config) is None:  # not a talk-qa project: the plugin stays out of the way
        return
    # checklists are parsed once per run: a process that runs the suite twice (a test of
    # `talkqa signoff`, which runs it in its own process) reads them afresh each time
    SPECS.clear()
    from talkqa.steps import recording

    # registered now, after every entry-point plugin: its fixtures override pytest-recording's
    config.pluginmanager.register(recording, "talkqa-recording")
    for tag, doc in marker_docs().items():
        config.addinivalue_line("markers", f"{tag}: {doc}")
    refusal = refuse_recording_in_replay(
        suite_mode(config), config.getoption("--record-mode", default=None)
    )
    if refusal:  # before anything runs: recording in replay would delete the evidence
        raise pytest.UsageError(refusal)
    outcomes = config.getoption("--talkqa-outcomes", default=None)
    if outcomes:
        path = Path(outcomes)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("", encoding="utf-8")


class FeatureModule(pytest.Module):
    """One feature file as a test module: its scenarios bound by pytest-bdd's ``scenarios``
    in a fresh namespace, as a hand-written ``test_<checklist>.py`` would bind them."""

    def _getobj(self) -> types.ModuleType:
        from pytest_bdd import scenarios

        module = types.ModuleType(self.path.stem)
        module.__file__ = str(self.path)
        namespace = vars(module)
        namespace["_bind"] = scenarios
        # scenarios() puts the tests into its caller's locals: run it as module-level code
        code = compile(
            f"_bind({str(self.path)!r}, features_base_dir={str(self.path.parent)!r})",
            str(self.path),
            "exec",
        )
        exec(code, namespace)
        return module


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """The project's feature files are its tests (nothing else is collected here)."""
    project = _project(parent.config)
    if project is None or not project.holds_feature(file_path):
        return None
    return FeatureModule.from_parent(parent, path=file_path)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Replay means no network, even without --block-network: cassettes only."""
    if _project(config) is None or suite_mode(config) != "replay":
        return
    for item in items:
        if scenario_of_item(item) is not None and item.get_closest_marker("vcr"):
            item.add_marker(pytest.mark.block_network)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Replay: a missing or unreadable cassette is one line naming it, before vcrpy loads it
    (a truncated cassette is otherwise a long YAML traceback that names no file). The cassette
    read here is the one vcrpy then replays (:func:`take_checked_cassette`), unless the
    scenario's vcr marker names extra cassettes, which pytest-recording loads with it."""
    item.config.stash[CHECKED_KEY] = None
    scenario = scenario_of_item(item)
    if scenario is None or suite_mode(item.config) != "replay":
        return
    if not item.get_closest_marker("vcr"):
        return
    if item.get_closest_marker(FeatureTag.UNBOUND) or item.get_closest_marker(FeatureTag.NO_API):
        return  # skipped, as not covered or vendor-impossible: no cassette
    read = read_cassette(cassette_path(item.config, scenario))
    if read.problem:
        raise NotJudged(read.problem)
    if not any(marker.args for marker in item.iter_markers("vcr")):
        item.config.stash[CHECKED_KEY] = read


def take_checked_cassette(config: pytest.Config) -> CassetteRead | None:
    """The cassette replay's check read for the scenario being set up, once: the next VCR
    configured gets nothing (a stale read is never handed to another scenario's VCR)."""
    read = config.stash.get(CHECKED_KEY, None)
    config.stash[CHECKED_KEY] = None
    return read


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Every scenario ends as exactly one outcome, written once: passed, failed (the system
    under test broke a promise), error (talk-qa could not judge) or skipped (not covered)."""
    report = yield
    if call.excinfo is not None and isinstance(call.excinfo.value, NotJudged):
        report.longrepr = str(call.excinfo.value)  # one line, not a traceback of the plugin
    outcomes = item.config.getoption("--talkqa-outcomes", default=None)
    scenario = scenario_of_item(item)
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
        reason, where = error_reason(call.excinfo, cassette_path(item.config, scenario))
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
        scenario = scenario_of_item(item)
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
    return check_mode(suite_mode(pytestconfig))


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


# --- which tests are ours --------------------------------------------------------------------


def scenario_of_item(item: pytest.Item) -> Any:
    """The pytest-bdd scenario of one of the project's features, or None for any other test
    (the plugin's hooks and autouse fixtures act on these scenarios only)."""
    from pytest_bdd.scenario import scenario_wrapper_template_registry

    project = _project(item.config)
    function = getattr(item, "function", None)
    if project is None or function is None:
        return None
    scenario = scenario_wrapper_template_registry.get(function)
    if scenario is None or not project.holds_feature(Path(scenario.feature.filename)):
        return None
    return scenario


def scenario_of(request: pytest.FixtureRequest) -> Any:
    return scenario_of_item(request.node)


def cassette_path(config: pytest.Config, scenario: Any) -> Path:
    """<cassettes>/<checklist>/<feature>/<scenario>.yaml (pytest-recording's name, ours too)."""
    project = _project(config)
    assert project is not None  # only the project's own scenarios have a cassette
    feature = Path(scenario.feature.filename)
    folder = project.cassettes / feature.parent.name / feature.stem
    return folder / f"{scenario_slug(scenario.name)}.yaml"


# --- per scenario: client, systems, sut, record -----------------------------------------------


@pytest.fixture
def http_client() -> Iterator[httpx.Client]:
    from talkqa.systems.wire import vendor_client

    with vendor_client(30.0) as client:
        yield client


@pytest.fixture
def systems(talkqa_settings: Settings, http_client: httpx.Client, talkqa_mode: str) -> Any:
    from talkqa.systems.connect import Systems

    if talkqa_mode == "replay":
        return Systems.connect(talkqa_settings, http_client, sleep=lambda _s: None)
    return Systems.connect(talkqa_settings, http_client)


@pytest.fixture(autouse=True)
def _fresh_sandbox(request: pytest.FixtureRequest) -> None:
    """Every scenario starts from the same seeded state (so re-recording is byte-identical)."""
    if scenario_of(request) is None or suite_mode(request.config) != "sandbox":
        return
    sandboxes = request.getfixturevalue("sandboxes")
    talkqa_settings: Settings = request.getfixturevalue("talkqa_settings")
    if sandboxes is not None:
        sandboxes.reset(seed=0)
        return
    from talkqa.sandbox.cli import admin_root
    from talkqa.systems.wire import vendor_client

    with vendor_client(10.0) as client:
        for base, key in (
            (talkqa_settings.chargebee_base_url, talkqa_settings.chargebee_api_key),
            (talkqa_settings.invoiced_base_url, talkqa_settings.invoiced_api_key),
        ):
            auth = (key.get_secret_value(), "")
            client.post(
                f"{admin_root(base)}/__admin/reset", json={"seed": 0}, auth=auth
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
    from talkqa.sandbox.cli import admin_root

    root = admin_root(talkqa_settings.chargebee_base_url)
    auth = (talkqa_settings.chargebee_api_key.get_secret_value(), "")

    def read() -> dict[str, int]:
        from talkqa.systems.wire import vendor_client

        with vendor_client(10.0) as client:
            answer = client.get(f"{root}/__admin/stats", auth=auth)
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

    if pytestconfig.getoption("--sut-service"):
        return drivers.ServiceDriver(within=pytestconfig.getoption("--within"),
                                     poll=pytestconfig.getoption("--poll"),
                                     quiet=pytestconfig.getoption("--quiet-window"))
    command = _sut_command(pytestconfig)
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

    runner = _in_process_defect(command)
    # A syncer run in this process has done all it will ever do when it returns (it leaves no
    # thread running): the two probes still must agree, with no second's wait for late writes.
    return drivers.CommandDriver(
        str(command), talkqa_settings.as_env(), probe=probe, runner=runner,
        interval=drivers.SETTLE_INTERVAL_S if runner is None else 0.0,
    )  # fmt: skip


# Set by the defect catalogue's test (tests/defect_signoffs.py) for its own sign-offs only.
IN_PROCESS_DEFECTS = "TALKQA_IN_PROCESS_DEFECTS"


def _in_process_defect(command: str) -> Any:
    """With ``$TALKQA_IN_PROCESS_DEFECTS=1``, a catalogue syncer's command (``python -m
    defects NAME [OPTIONS]``, as the catalogue spells it) runs in this process: the same
    ``defects.run.main``, environment and exit code, its output captured, without the
    0.6 s of CPU a fresh interpreter spends importing it, and without the driver's second of
    waiting for late writes after each run (`sut`: none can come). The catalogue starts about
    sixty of them; what it tests is the judging, while the command driver's own process
    handling and settling have their own tests. Any other command, or without the variable:
    None (a shell runs it).
    """
    if os.environ.get(IN_PROCESS_DEFECTS) != "1":
        return None
    import shlex
    import sys

    from defects.catalogue import CATALOGUE, CONTROL

    words = shlex.split(command)
    names = {d.name for d in (*CATALOGUE, CONTROL)}
    if words[:3] != [sys.executable, "-m", "defects"] or words[3:4] == [] or words[3] not in names:
        return None
    args = words[3:]  # the syncer's name and its options (--checklist), as its shell would pass

    def run(
        command: str, *, env: dict[str, str], cwd: Path | None, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        import io
        import traceback
        from contextlib import redirect_stderr, redirect_stdout

        from defects.run import main

        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = main(args, env=env)
            except Exception:  # what a crashed interpreter would print, and its exit code
                traceback.print_exc()
                code = 1
        return subprocess.CompletedProcess(command, code, out.getvalue(), err.getvalue())

    return run


@pytest.fixture
def record(
    request: pytest.FixtureRequest, talkqa_mode: str, systems: Any
) -> Iterator[ScenarioRecord]:
    scenario = scenario_of(request)
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
    if pytestconfig.getoption("--sut-service"):
        return "service"
    command = _sut_command(pytestconfig)
    return redactor(f"command: {command}") if command else "reference-sync"


@pytest.fixture(autouse=True)
def _scene(request: pytest.FixtureRequest) -> Iterator[None]:
    """The scenario the step functions act on (they take no fixtures: see Scene); checklist
    paths in features are relative to the project's root."""
    project = _project(request.config)
    if project is None or scenario_of(request) is None:
        yield
        return
    with scene_of(request, project.root):
        yield


# --- steps: one module per keyword, star-imported so pytest-bdd sees their step fixtures -------

from talkqa.steps.given_steps import *  # noqa: E402, F403
from talkqa.steps.then_steps import *  # noqa: E402, F403
from talkqa.steps.when_steps import *  # noqa: E402, F403
