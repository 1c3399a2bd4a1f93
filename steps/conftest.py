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
from typing import Any, cast

import httpx
import pytest
from pytest_bdd import given, parsers, then, when

from talkqa.dataflow.gherkin import PROMISES, TAGS, sentence_for
from talkqa.dataflow.spec import DataflowSpec, Section
from talkqa.pytest_plugin import (
    CHARGEBEE_KEY_PLACEHOLDER,
    INVOICED_KEY_PLACEHOLDER,
    ConflictState,
    EditState,
    Redactor,
    ScenarioRecord,
    Shown,
    append_outcome,
    check_mode,
    failure_text,
    judge_section,
    outcome_line,
    replay_settings,
    rerun_findings,
    run_id_for,
    scenario_slug,
    skip_reason,
    stamp,
    unreported_conflicts,
    unwatched,
    vacuity,
    verify_conflict,
    verify_edits,
    verify_kept,
    verify_merged,
)
from talkqa.pytest_plugin import vcr_config as build_vcr_config
from talkqa.systems.catalog import Binding, bind, binding_of
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
    scenario = _scenario_of(request)
    rec.scenario = scenario.name if scenario is not None else request.node.name
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


# --- the scene: what a step needs besides its words -------------------------------------------


class Scene:
    """The scenario's fixtures, each fetched when a step first asks for it.

    Step functions take only the arguments parsed from their text (and a datatable):
    allure-pytest-bdd shows every argument of a step function as a step parameter, and a
    fixture's repr there is noise. Fetching lazily also keeps ``section`` after the Given
    step that names the checklist, as before.
    """

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self.request = request

    def _get(self, name: str) -> Any:
        return self.request.getfixturevalue(name)

    @property
    def record(self) -> ScenarioRecord:
        return cast(ScenarioRecord, self._get("record"))

    @property
    def section(self) -> Section:
        return cast(Section, self._get("section"))

    @property
    def systems(self) -> Any:
        return self._get("systems")

    @property
    def mode(self) -> str:
        return cast(str, self._get("talkqa_mode"))

    @property
    def run_id(self) -> str:
        return cast(str, self._get("scenario_run_id"))

    @property
    def redactor(self) -> Redactor:
        return cast(Redactor, self._get("redactor"))

    @property
    def sut_label(self) -> str:
        return cast(str, self._get("sut_label"))

    @property
    def stash(self) -> pytest.Stash:
        return cast(pytest.Stash, self.request.node.stash)

    @property
    def spec(self) -> DataflowSpec:
        return _SPECS[self.record.dataflow]

    def source_ids(self) -> set[str] | None:
        """Live mode judges only what the scenario created (the account is shared)."""
        return self.record.created.all_source_ids() if self.mode == "live" else None

    def run_sut(self) -> None:
        """Run the system under test; its own report goes to Allure as evidence, keys hidden."""
        from talkqa.sut import SutError

        record, redactor = self.record, self.redactor
        try:
            summary = self._get("sut").run(self.spec)
        except SutError as exc:
            failure = redactor(str(exc))
        else:
            failure = None
        if failure is not None:
            # Failed outside the except block, so the report holds one message, not the
            # SutError chained to pytest's own Failed ("During handling of ...").
            pytest.fail(failure, pytrace=False)
        record.last_run = summary
        with contextlib.suppress(Exception):
            import allure

            allure.attach(
                redactor(
                    json.dumps({"sut": summary.sut, **summary.details}, indent=2, default=str)
                ),
                name=f"{summary.sut} run",
                attachment_type=allure.attachment_type.JSON,
            )


_SCENES: list[Scene] = []


@pytest.fixture(autouse=True)
def _scene(request: pytest.FixtureRequest) -> Iterator[None]:
    _SCENES.append(Scene(request))
    yield
    _SCENES.pop()


def scene() -> Scene:
    """The running scenario's scene (set by the autouse ``_scene`` fixture)."""
    return _SCENES[-1]


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


@pytest.fixture(scope="session")
def sut_label(pytestconfig: pytest.Config, redactor: Redactor) -> str:
    """The system under test as the report names it (a command's secrets hidden)."""
    command = pytestconfig.getoption("--sut-command")
    return redactor(f"command: {command}") if command else "reference-sync"


@given(parsers.re(r'the checklist "(?P<doc>[^"]+)" section (?P<index>\d+)'))
def the_checklist_section(doc: str, index: str) -> None:
    from talkqa.checks import NotCovered, bindings_of

    sc = scene()
    record = sc.record
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
    _allure_labels(spec, sec, record.promise, sc.mode, sc.sut_label)
    try:
        bindings_of(sec)
    except NotCovered as exc:
        # not covered, never passed: the sign-off counts a skipped promise as not covered
        record.reason = f"not covered: {exc.reason}"
        pytest.skip(record.reason)


def _allure_labels(
    spec: DataflowSpec, sec: Section, promise: str, mode: str, sut_label: str
) -> None:
    with contextlib.suppress(Exception):
        import allure

        allure.dynamic.epic(f"{spec.source} to {spec.target} Dataflow")
        allure.dynamic.feature(" ".join(sec.heading.split()))
        if promise:
            allure.dynamic.story(sentence_for(sec, promise))
        allure.dynamic.parameter("mode", Shown(mode))
        allure.dynamic.parameter("system under test", Shown(sut_label))


@given(parsers.re(r"(?P<count>\d+) (?P<names>.+) entities created through the (?P<system>.+) API"))
def entities_created(count: str, names: str) -> None:
    from talkqa.samples import create_for_section

    sc = scene()
    _expect_names(sc.section, source=names)
    sc.record.created = create_for_section(sc.section, int(count), sc.systems, sc.run_id)


@given("the system under test has run")
@when("the system under test runs")
def sut_runs() -> None:
    scene().run_sut()


@when("the system under test runs again")
def sut_runs_again() -> None:
    from talkqa.samples import snapshot

    sc = scene()
    if sc.record.promise == "idempotence":
        bindings = _all_bindings(sc.spec)
        only = sc.source_ids()
        also = sc.record.created.by_products  # e.g. the Chargebee invoices of its orders
        before = snapshot(sc.systems, bindings, only, also=also)
        sc.run_sut()
        sc.stash[_SNAPSHOTS] = (before, snapshot(sc.systems, bindings, only, also=also))
        return
    sc.run_sut()


_SNAPSHOTS = pytest.StashKey[tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]]()


def _all_bindings(spec: DataflowSpec) -> list[Binding]:
    found: list[Binding] = []
    for sec in spec.sections:
        for ref in (sec.source, sec.target):
            binding = bind(ref)
            if binding is not None and binding not in found:
                found.append(binding)
    return found


def _report(sc: Scene, findings: list[Any], name: str) -> None:
    """Every Then step ends here: findings go to the outcome, to Allure, and fail the step."""
    from talkqa.report.allure_findings import attach_findings

    sc.record.findings = findings
    if findings:
        attach_findings(findings, f"findings: {name}")
        pytest.fail(failure_text(findings), pytrace=False)


def _created_sources(sc: Scene) -> list[str]:
    """The ids of the section's source entities this scenario created."""
    binding = bind(sc.section.source)
    return sc.record.created.ids(binding.key) if binding is not None else []


def _refuse_vacuous(sc: Scene, reason: str | None) -> None:
    """A judgement that looked at nothing fails: no findings is not a kept promise."""
    if reason:
        sc.record.reason = reason
        pytest.fail(reason, pytrace=False)


def _judge(
    checks: set[str],
    *,
    keep: Any = None,
    pairs: bool = False,
    unlinked_sources: Collection[str] = (),
    rows: Collection[tuple[str, str]] | None = None,
) -> None:
    """Judge the section and refuse a vacuous pass: every source the scenario created must
    have been judged; with ``pairs`` at least one linked pair compared, on each of ``rows``."""
    sc = scene()
    record, section = sc.record, sc.section
    judged = judge_section(
        sc.spec,
        section,
        sc.systems,
        checks=checks,
        source_ids=sc.source_ids(),
        unlinked_sources=unlinked_sources,
    )
    findings = [f for f in judged.findings if keep is None or keep(f)]
    record.entities_checked = judged.pairs_checked if pairs else judged.entities_checked
    record.findings = findings
    if not judged.covered:
        record.reason = f"not covered: {judged.reason}"
        pytest.skip(record.reason)
    _report(sc, findings, ", ".join(sorted(checks)))
    _refuse_vacuous(
        sc, vacuity(judged, _created_sources(sc), _names(section), pairs=pairs, rows=rows)
    )


@then(
    parsers.re(
        r"every (?P<source>.+) has exactly one linked (?P<target>.+?)(?: with (?P<fixed>.+))?"
    )
)
@then(
    parsers.re(
        r"every (?P<source>.+) has at most one linked (?P<target>.+?)(?: with (?P<fixed>.+))?"
    )
)
def linked_once(source: str, target: str) -> None:
    """Exactly one (every) or at most one (conditional sections: the condition is prose) linked
    target: the exists check judges both, as it asserts missing only for "every" sections."""
    _expect_names(scene().section, source=source, target=target)
    _judge({"exists"})


@then(parsers.re(r"no (?P<target>.+) is created for an unlinked (?P<source>.+)"))
def nothing_created_unlinked(source: str, target: str) -> None:
    """Link-first sections: the samples were never linked, so nothing may appear for them."""
    sc = scene()
    _expect_names(sc.section, source=source, target=target)
    binding = bind(sc.section.source)
    created = sc.record.created.ids(binding.key) if binding is not None else []
    _judge({"exists", "link-first"}, unlinked_sources=created)


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


def _judge_rows(datatable: list[list[str]], check: str) -> None:
    """Judge ``check`` on the pairs, for the table's property rows only."""
    rows = _table_rows(scene().section, datatable)
    _judge(
        {check},
        pairs=True,
        keep=lambda f: f.source_path is None or (f.source_path, f.target_path) in rows,
        rows=rows,
    )


@then("every linked pair has these properties equal under their declared types:")
def properties_equal(datatable: list[list[str]]) -> None:
    _judge_rows(datatable, "properties")


@then("every reference points at the target linked to the referenced source:")
def references_point_at_links(datatable: list[list[str]]) -> None:
    _judge_rows(datatable, "references")


_EDITS = pytest.StashKey[EditState]()
_CONFLICT = pytest.StashKey[ConflictState]()


def _linked_ids(section: Section, systems: Any, source_ids: list[str]) -> list[str]:
    """The single linked target of each source, in order (fails the scenario when one has none)."""
    from talkqa.checks import read_snapshot

    pairing = read_snapshot(section, systems, source_ids=source_ids).pairing()
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
    return ids


def _expect_link_wording(section: Section, rule: str | None, claim: str | None) -> None:
    """The merge property (or link claim) in the step text must be the checklist's."""
    from talkqa.samples import link_wording

    said = f"matching it by {rule}" if rule is not None else f"that claims it by {claim}"
    if said != link_wording(section):
        pytest.fail(
            f"feature out of date: it links '{said}' where section {section.index} of the "
            f"checklist says '{link_wording(section)}': regenerate with `talkqa features generate`",
            pytrace=False,
        )


@given(
    parsers.re(
        r"each of them has an existing (?P<target>.+?) "
        r"(?:matching it by (?P<rule>.+)|that claims it by (?P<claim>.+))"
    )
)
def each_has_existing_target(target: str, rule: str | None, claim: str | None) -> None:
    """Link-first and merge sections: the target exists before the system under test runs."""
    from talkqa.samples import link_first

    sc = scene()
    section, record = sc.section, sc.record
    _expect_names(section, target=target)
    _expect_link_wording(section, rule, claim)
    source = bind(section.source)
    assert source is not None
    link_first(section, record.created.ids(source.key), sc.systems, sc.run_id, record.created)


@given(
    parsers.re(
        r"each (?P<source>.+?) they reference has an existing (?P<target>.+?) "
        r"(?:matching it by (?P<rule>.+)|that claims it by (?P<claim>.+))"
    )
)
def each_referenced_has_existing_target(
    source: str, target: str, rule: str | None, claim: str | None
) -> None:
    """The referenced datatype's section is link-first: link the referenced entities first."""
    from talkqa.samples import link_first

    sc = scene()
    record = sc.record
    for other in sc.spec.sections:
        if _names(other) == (" ".join(source.split()), " ".join(target.split())):
            _expect_link_wording(other, rule, claim)
            binding = bind(other.source)
            assert binding is not None
            ids = [i for i in record.created.ids(binding.key) if i not in record.created.existing]
            link_first(other, ids, sc.systems, sc.run_id, record.created)
            return
    pytest.fail(
        f"feature out of date: no section links {source} to {target}: regenerate the features",
        pytrace=False,
    )


@when(
    parsers.re(
        r"(?:(?P<path>\S+) of )?each linked (?P<side>source|target) entity is edited "
        r"through the (?P<system>.+) API"
    )
)
def edit_each_linked(side: str, path: str | None) -> None:
    from talkqa.compare import read_path
    from talkqa.samples import apply_edit, not_carried_edits, plan_edit

    sc = scene()
    section, systems, record = sc.section, sc.systems, sc.record
    edit = plan_edit(section, side)
    blocked = None
    if path is not None and (edit is None or edit.path != path):
        found = [(p, e) for p, e in not_carried_edits(section, side) if e.path == path]
        if not found:
            pytest.fail(
                f"feature out of date: talk-qa no longer edits {path} on the {side} side of "
                f"section {section.index}: regenerate the features",
                pytrace=False,
            )
        blocked, edit = found[0]
    if edit is None:
        record.reason = (
            f"not covered: neither the checklist nor talk-qa knows a field the {side} "
            f"system's API lets us edit on a {_names(section)[0 if side == 'source' else 1]}"
        )
        pytest.skip(record.reason)
    source, target = bind(section.source), bind(section.target)
    assert source is not None and target is not None
    source_ids = record.created.ids(source.key)
    targets = _linked_ids(section, systems, source_ids)
    before: dict[str, Any] = {}
    if blocked is not None:  # what the side that cannot change holds now
        there = source if side == "target" else target
        there_path = blocked.source_path if side == "target" else blocked.target_path
        there_ids = source_ids if side == "target" else targets
        resource = systems.resource(there)
        before = {
            sid: read_path(resource.get(eid), there_path)
            for sid, eid in zip(source_ids, there_ids, strict=True)
        }
    binding, ids = (source, source_ids) if side == "source" else (target, targets)
    written = apply_edit(edit, binding, ids, systems)
    by_source = dict(zip(source_ids, ids, strict=True))
    sc.stash[_EDITS] = EditState(edit, side, binding, written, by_source, blocked, before)


def _judge_edit(extra: list[Any], *, skip_pair: tuple[str, str] | None = None) -> None:
    sc = scene()
    judged = judge_section(
        sc.spec,
        sc.section,
        sc.systems,
        checks={"exists", "properties", "references"},
        source_ids=sc.source_ids(),
    )
    sc.record.entities_checked = judged.entities_checked
    kept = [
        f
        for f in judged.findings
        if skip_pair is None or (f.source_path, f.target_path) != skip_pair
    ]
    _report(sc, [*kept, *extra], "edits")
    _refuse_vacuous(sc, vacuity(judged, _created_sources(sc), _names(sc.section)))


@then(
    parsers.re(
        r"the (?:edits reached (?P<system>.+)|edit stays in (?P<here>.+)) and every link "
        r"still holds"
    )
)
def edits_reached() -> None:
    sc = scene()
    _judge_edit(verify_edits(sc.section, sc.stash[_EDITS], sc.systems))


@then(parsers.re(r"(?P<system>.+) keeps (?P<path>\S+) as it was and every link still holds"))
def other_side_kept(path: str) -> None:
    """A vendor-limit edit: not carried over, the other side keeps its value, links hold.

    The edited property may now differ between the two sides: that is the vendor's limit,
    not the syncer's fault, so the properties check leaves that one row out.
    """
    sc = scene()
    state = sc.stash[_EDITS]
    blocked = state.blocked
    assert blocked is not None
    if path not in (blocked.source_path, blocked.target_path):
        pytest.fail(f"feature out of date: {path} is not the blocked property", pytrace=False)
    with contextlib.suppress(Exception):
        import allure

        allure.attach(
            f"{blocked.source_path} -> {blocked.target_path}: the {state.side} edit is expected "
            "NOT to propagate (the other vendor's API refuses the change); not a finding.",
            name="vendor limit",
            attachment_type=allure.attachment_type.TEXT,
        )
    _judge_edit(
        verify_kept(sc.section, state, sc.systems),
        skip_pair=(blocked.source_path, blocked.target_path),
    )


@when(
    parsers.re(
        r"(?P<path>\S+) of each linked pair is edited in (?P<first>.+) and then in (?P<second>.+)"
    )
)
def edit_both_sides(path: str, first: str, second: str) -> None:
    """The same mapped property changed on both sides since the last sync, in a known order."""
    from talkqa.samples import apply_edit, conflict_edits, conflict_property

    sc = scene()
    section, systems, record = sc.section, sc.systems, sc.record
    prop = conflict_property(section)
    if prop is None or prop.source_path != path:
        pytest.fail(
            f"feature out of date: {path} is not the property both sides can edit in section "
            f"{section.index}: regenerate the features",
            pytrace=False,
        )
    source, target = bind(section.source), bind(section.target)
    assert source is not None and target is not None
    source_ids = record.created.ids(source.key)
    target_ids = _linked_ids(section, systems, source_ids)
    source_edit, target_edit = conflict_edits(section, prop)
    src_system = " ".join(section.source.system.split())
    order = ("source", "target") if " ".join(first.split()) == src_system else ("target", "source")
    written: dict[str, dict[str, Any]] = {}
    for side in order:
        if side == "source":
            written[side] = apply_edit(source_edit, source, source_ids, systems)
        else:
            written[side] = apply_edit(target_edit, target, target_ids, systems)
    by_source = dict(zip(source_ids, target_ids, strict=True))
    src_res, tgt_res = systems.resource(source), systems.resource(target)
    sc.stash[_CONFLICT] = ConflictState(
        prop,
        by_source,
        {sid: written["source"][sid] for sid in source_ids},
        {sid: written["target"][tid] for sid, tid in by_source.items()},
        {sid: stamp(src_res.get(sid)) for sid in source_ids},
        {sid: stamp(tgt_res.get(tid)) for sid, tid in by_source.items()},
    )


@then(parsers.re(r"both systems hold the newest edit of each pair, (?P<system>.+)'s on a tie"))
def newest_edit_won() -> None:
    sc = scene()
    _judge_edit(verify_conflict(sc.section, sc.stash[_CONFLICT], sc.systems))


@then("the system under test reported each conflict")
def conflicts_reported() -> None:
    """The reference sync names every conflict it resolved; other syncers' reports are opaque."""
    sc = scene()
    record = sc.record
    state = sc.stash[_CONFLICT]
    details = getattr(record.last_run, "details", None) or {}
    missing = unreported_conflicts(details, record.section_index, list(state.by_source))
    if missing is None and sc.sut_label == "reference-sync":
        record.reason = (
            "conflict not reported: the reference sync's report has no conflicts for "
            f"section {record.section_index}"
        )
        pytest.fail(record.reason, pytrace=False)
    if missing is None:
        with contextlib.suppress(Exception):
            import allure

            allure.attach(
                "the system under test's report names no conflicts talk-qa can read",
                name="conflicts not reported",
                attachment_type=allure.attachment_type.TEXT,
            )
        return
    if missing:
        record.reason = (
            f"conflict not reported: the system under test resolved {len(missing)} conflicts "
            f"without naming them ({', '.join(missing)})"
        )
        pytest.fail(record.reason, pytrace=False)


@when(
    parsers.re(
        r"(?P<path>\S+) of each referenced (?P<names>.+) is edited through the (?P<system>.+) API"
    )
)
def edit_each_referenced(path: str, names: str) -> None:
    """Edit (rename) the entities the section's sources reference, after their links exist."""
    from talkqa.samples import apply_edit, rename_edit

    sc = scene()
    source = bind(sc.section.source)
    assert source is not None
    for key in source.references.values():
        referenced = binding_of(key)
        if " ".join(names.split()).lower() != f"{referenced.system} {referenced.datatype}".lower():
            continue
        edit = rename_edit(referenced)
        if edit is None or edit.path != path:
            break
        apply_edit(edit, referenced, sc.record.created.ids(key), sc.systems)
        return
    pytest.fail(
        f"feature out of date: talk-qa does not edit {path} of {names}: regenerate the features",
        pytrace=False,
    )


@then(parsers.re(r"each (?P<source>.+) is linked to its existing (?P<target>.+) and to no other"))
def merged_not_duplicated(source: str, target: str) -> None:
    sc = scene()
    section, record = sc.section, sc.record
    _expect_names(section, source=source, target=target)
    src = bind(section.source)
    assert src is not None
    existing = {
        sid: tid
        for sid, tid in record.created.existing.items()
        if sid in record.created.ids(src.key)
    }
    record.entities_checked = len(existing)
    _report(sc, verify_merged(section, existing, sc.systems), "merge")
    created = record.created.ids(src.key)
    without = [sid for sid in created if sid not in existing]
    if not created or without:
        _refuse_vacuous(
            sc,
            f"not judged: {len(without)} of the {len(created)} {_names(section)[0]} entities "
            f"this scenario created had no existing {target} to merge with "
            f"({', '.join(without)}), so no merge was judged for them",
        )


@then(parsers.re(r"no entity changed in (?P<first>.+) or (?P<second>.+)"))
def nothing_changed() -> None:
    """Idempotence: every entity the second run created, deleted or wrote is a finding."""
    from talkqa.samples import snapshot_diff

    sc = scene()
    before, after = sc.stash[_SNAPSHOTS]
    sc.record.entities_checked = len(after)
    _report(sc, rerun_findings(sc.section, snapshot_diff(before, after)), "idempotence")
    source, target = bind(sc.section.source), bind(sc.section.target)
    assert source is not None and target is not None
    _refuse_vacuous(sc, unwatched(source, _created_sources(sc), target, before, after))
