"""Cassette hygiene (secrets, volatile headers, admin calls) and the outcome records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from vcr.request import Request

from talkqa.errors import UserError
from talkqa.pytest_plugin import (
    REQUEST_MATCHER,
    Redactor,
    ScenarioRecord,
    append_outcome,
    check_mode,
    drop_admin_requests,
    origin_of,
    outcome_of,
    read_cassette,
    refuse_recording_in_replay,
    run_id_for,
    same_request,
    sensitive_pairs,
    skip_reason,
    strip_volatile_headers,
    vcr_config,
    with_request_matcher,
)
from talkqa.systems.settings import Settings

REPO = Path(__file__).resolve().parents[1]


def _settings() -> Settings:
    return Settings.for_sandbox(
        "http://127.0.0.1:4321/api/v2",
        "http://127.0.0.1:5432",
        chargebee_api_key="cb_live_secret",
        invoiced_api_key="inv_live_secret",
    )


def test_admin_requests_never_reach_a_cassette() -> None:
    reset = Request("POST", "http://127.0.0.1:4321/__admin/reset", b"{}", {})
    listing = Request("GET", "http://127.0.0.1:4321/api/v2/customers", None, {})
    assert drop_admin_requests(reset) is None
    assert drop_admin_requests(listing) is listing


def test_volatile_response_headers_are_dropped_and_the_rest_sorted() -> None:
    response = {
        "headers": {"Server": ["uvicorn"], "date": ["Thu"], "link": ["<x>"], "Content-Type": ["j"]},
        "body": {"string": b"{}"},
    }
    assert list(strip_volatile_headers(response)["headers"]) == ["Content-Type", "link"]


def test_vcr_config_matches_without_host_and_hides_keys_and_origins() -> None:
    config = vcr_config(_settings())
    assert config["match_on"] == [REQUEST_MATCHER]
    assert ("authorization", None) in config["filter_headers"]
    hidden = dict(sensitive_pairs(_settings()))
    assert hidden["<CHARGEBEE_API_KEY>"] == "cb_live_secret"
    assert hidden["<INVOICED_API_KEY>"] == "inv_live_secret"
    assert "http://127.0.0.1:4321" in hidden.values() and "http://127.0.0.1:5432" in hidden.values()


def test_replay_restores_exactly_what_vcrpys_filter_sensitive_data_restores() -> None:
    """The one-walk restore puts back what vcrpy's own restore puts back, in every place a
    placeholder can sit: the URL, a str or bytes body, header names and values, nested lists.
    (Neither gives back the exact original: a key's forms share one placeholder.)"""
    from vcr.filters import sensitive_data_hooks

    pairs = sensitive_pairs(_settings())
    config = vcr_config(_settings())
    hide, vcrpy_restore = sensitive_data_hooks(pairs)
    request = Request(
        "POST",
        "http://127.0.0.1:4321/api/v2/customers?key=cb_live_secret&next=http%3A%2F%2F127.0.0.1",
        b"api_key=cb_live_secret&link=http://127.0.0.1:5432/x",
        {"X-Key": "inv_live_secret", "Referer": "http://127.0.0.1:5432/"},
    )
    response = {
        "status": {"code": 200, "message": "OK"},
        "headers": {"link": ["<http://127.0.0.1:5432/invoices?page=2>; rel=next"]},
        "body": {"string": b'{"url":"http://127.0.0.1:4321/api/v2","k":"cb_live_secret"}'},
        "nested": [("http://127.0.0.1:4321", ["inv_live_secret", 3, None])],
    }
    saved_request, saved_response = config["before_save_interaction"](request, response)
    assert (saved_request._to_dict(), saved_response) == (
        hide(request, response)[0]._to_dict(),
        hide(request, response)[1],
    )  # recording scrubs with vcrpy's own filter_sensitive_data
    assert "cb_live_secret" not in str(saved_request._to_dict()) + str(saved_response)
    ours = config["after_load_interaction"](saved_request, saved_response)
    theirs = vcrpy_restore(saved_request, saved_response)
    assert ours[0]._to_dict() == theirs[0]._to_dict()
    assert ours[1] == theirs[1]
    assert "127.0.0.1:5432" in ours[1]["headers"]["link"][0]  # the origins are back


def _matches(new: Request, recorded: Request) -> bool:
    try:
        same_request(new, recorded)
    except AssertionError:
        return False
    return True


def test_the_request_matcher_decides_as_vcrpys_method_path_query_and_body() -> None:
    """Replay's one matcher is vcrpy's method, path, query and body, nothing more or less:
    the host never counts, query order and a JSON body's key order never count."""
    from vcr import matchers

    json_type = {"content-type": "application/json"}
    recorded = Request(
        "POST", "http://chargebee.recorded.invalid/api/v2/customers?a=1&b=2",
        b'{"id": "c1", "n": 1}', json_type,
    )  # fmt: skip
    candidates = {
        "other host, query and key order": Request(
            "POST", "http://127.0.0.1:4321/api/v2/customers?b=2&a=1",
            b'{"n": 1, "id": "c1"}', json_type,
        ),
        "method": Request("PUT", recorded.uri, recorded.body, json_type),
        "path": Request(
            "POST", recorded.uri.replace("customers", "items"), recorded.body, json_type
        ),
        "query": Request("POST", recorded.uri.replace("b=2", "b=3"), recorded.body, json_type),
        "body": Request("POST", recorded.uri, b'{"id": "c2", "n": 1}', json_type),
    }  # fmt: skip
    vcrpys = [matchers.method, matchers.path, matchers.query, matchers.body]
    for what, new in candidates.items():
        assert _matches(new, recorded) == matchers.requests_match(new, recorded, vcrpys), what
        assert _matches(new, recorded) == (what == "other host, query and key order"), what


def test_the_request_matcher_decides_paths_and_queries_as_vcrpy() -> None:
    """Where the matcher compares path and query itself, it decides as vcrpy's matchers: an
    empty path is "/", repeated keys and blank values count, a query parsed earlier (cached)
    decides the same again."""
    from vcr import matchers

    vcrpys = [matchers.method, matchers.path, matchers.query, matchers.body]
    uris = [
        "http://a.invalid",
        "http://a.invalid/",
        "http://a.invalid/x?a=1&a=2",
        "http://a.invalid/x?a=2&a=1",
        "http://a.invalid/x?a=1",
        "http://a.invalid/x?a=&b=1",
        "http://a.invalid/x?b=1",
        "http://a.invalid/x?b=1&a",
        "http://a.invalid/x?q=a%20b",
        "http://a.invalid/x?q=a+b",
    ]
    for _ in range(2):
        for new_uri in uris:
            for recorded_uri in uris:
                new = Request("GET", new_uri, b"", {})
                recorded = Request("GET", recorded_uri, b"", {})
                expected = matchers.requests_match(new, recorded, vcrpys)
                assert _matches(new, recorded) == expected, (new_uri, recorded_uri)


def test_a_recorded_cassette_holds_no_key_and_no_port(tmp_path: Path) -> None:
    import httpx
    import vcr

    def app(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json={"ok": True}, headers={"date": "now", "link": str(request.url)}
        )

    settings = _settings()
    recorder = with_request_matcher(vcr.VCR(record_mode="all", **vcr_config(settings)))
    path = tmp_path / "c.yaml"
    with recorder.use_cassette(str(path)), httpx.Client() as client:
        # vcrpy stubs httpx's transport: let the real one answer from a mock app
        transport = httpx.MockTransport(app)
        client._transport = transport
        client.get(
            "http://127.0.0.1:4321/api/v2/customers",
            auth=(settings.chargebee_api_key.get_secret_value(), ""),
        )
    text = path.read_text()
    assert "cb_live_secret" not in text and "4321" not in text
    assert "chargebee.recorded.invalid/api/v2/customers" in text
    assert "date:" not in text


def test_each_scenario_ends_as_one_typed_outcome(tmp_path: Path) -> None:
    record = ScenarioRecord(
        dataflow="dataflows/x.rst",
        section_index=2,
        section="A to B",
        promise="exists",
        entities_checked=3,
        scenario="An edit of x keeps its link",
        qualifier="link survival only: not mapped",
    )
    path = tmp_path / "reports" / "outcomes.jsonl"
    append_outcome(path, outcome_of(record, "skipped", "not covered: no connector"))
    append_outcome(path, outcome_of(record, "passed", None))
    append_outcome(path, outcome_of(record, "failed", "boom", "cassettes/x.yaml"))
    record.broken = True
    append_outcome(path, outcome_of(record, "failed", "mismatch: ..."))
    first, second, third, fourth = (json.loads(line) for line in path.read_text().splitlines())
    assert first == {
        "dataflow": "dataflows/x.rst",
        "section_index": 2,
        "section": "A to B",
        "promise": "exists",
        "status": "skipped",
        "entities_checked": 3,
        "findings": [],
        "reason": "not covered: no connector",
        "scenario": "An edit of x keeps its link",
        "where": None,
        "latency_s": None,
        "entity_latency_s": {},
        "vendor_impossible": [],
    }
    # a passed scenario says what it proved less than its promise
    assert second["status"] == "passed" and second["reason"] == "link survival only: not mapped"
    # a failure no step called broken is talk-qa's: an error, never the syncer's NO-GO
    assert third["status"] == "error" and third["where"] == "cassettes/x.yaml"
    assert fourth["status"] == "failed"


def test_a_service_outcome_carries_its_latency_or_its_deadline() -> None:
    record = ScenarioRecord(dataflow="d.rst", scenario="s", promise="exists", latency_s=1.5)
    assert outcome_of(record, "passed", None).latency_s == 1.5
    record.entity_latency_s = {"c1": 0.5, "c2": 1.5}
    assert outcome_of(record, "passed", None).entity_latency_s == {"c1": 0.5, "c2": 1.5}
    record.broken, record.over_time = True, "did not hold within 60s"
    late = outcome_of(record, "failed", None)
    assert (late.latency_s, late.reason) == (None, "did not hold within 60s")
    assert outcome_of(record, "failed", "mismatch: x").reason == "mismatch: x"


def test_recording_in_replay_mode_is_refused_before_anything_runs() -> None:
    assert refuse_recording_in_replay("replay", None) is None
    assert refuse_recording_in_replay("replay", "none") is None
    assert refuse_recording_in_replay("sandbox", "rewrite") is None
    refusal = refuse_recording_in_replay("replay", "rewrite")
    assert refusal is not None and "--record-mode=rewrite" in refusal and "\n" not in refusal


def test_a_cassette_that_cannot_be_replayed_is_named_in_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "gone.yaml"
    assert "cassette missing" in (read_cassette(missing).problem or "")
    cut = tmp_path / "cut.yaml"
    cut.write_text('interactions:\n- request:\n    body: "never closed\n', encoding="utf-8")
    problem = read_cassette(cut).problem
    assert problem is not None and "cut.yaml" in problem and "not a readable cassette" in problem
    assert "\n" not in problem
    empty = tmp_path / "empty.yaml"
    empty.write_text("interactions: []\nversion: 1\n", encoding="utf-8")
    assert "no interaction" in (read_cassette(empty).problem or "")
    good = sorted((REPO / "cassettes").rglob("*.yaml"))[0]
    assert read_cassette(good).problem is None


def test_skip_reason_reads_pytest_longrepr() -> None:
    assert skip_reason(("f.py", 3, "Skipped: not covered: x")) == "not covered: x"
    assert skip_reason("boom") is None


def test_redactor_hides_keys_and_never_shows_them_in_its_repr() -> None:
    redact = Redactor({"<K>": "supersecret", "<SHORT>": "ab"})
    assert redact("401 for supersecret") == "401 for <K>"
    assert "supersecret" not in repr(redact)


def test_modes_and_run_ids() -> None:
    assert check_mode("sandbox") == "sandbox"
    with pytest.raises(UserError, match="not a mode"):
        check_mode("cloud")
    assert run_id_for("replay") == run_id_for("sandbox")  # cassettes need the same bodies
    assert run_id_for("live") != run_id_for("replay")
    assert origin_of("http://h:1/api/v2") == "http://h:1"


def test_newest_edit_wins_and_ties_go_to_the_source() -> None:
    from talkqa.pytest_plugin import winner

    assert winner(10, 11) == "target"
    assert winner(11, 10) == "source"
    assert winner(10, 10) == "source"
    assert winner(None, 10) == "source"


def test_unreported_conflicts_reads_the_run_report() -> None:
    from talkqa.pytest_plugin import unreported_conflicts
    from talkqa.run_report import RunReport

    report = RunReport.model_validate(
        {
            "sections": [
                {
                    "index": 0,
                    "conflicts": [{"source_id": "c1", "property": "a -> b", "winner": "target"}],
                },
                {"index": 1},
            ]
        }
    )
    assert unreported_conflicts(report, 0, ["c1", "c2"]) == ["c2"]
    assert unreported_conflicts(report, 0, ["c1"]) == []
    assert unreported_conflicts(report, 3, ["c1"]) == ["c1"]  # a section it does not mention


def _pair_systems(source_email: str, target_email: str) -> Any:
    from reference_sync.testing import FakeSystems
    from talkqa.systems.catalog import binding_of

    systems = FakeSystems()
    systems.resource(binding_of(("chargebee", "Customer"))).seed(
        {"id": "c1", "email": source_email}
    )
    systems.resource(binding_of(("invoiced", "Customers person"))).seed(
        {
            "type": "person",
            "name": "Ada",
            "email": target_email,
            "metadata": {"chargebee_id": "c1"},
        }
    )
    return systems


def test_verify_conflict_wants_the_newest_edit_on_both_sides() -> None:
    from reference_sync.testing import section as build_section
    from talkqa.pytest_plugin import ConflictState, verify_conflict

    section = build_section(0, "Customer", "Customers person", (("email", "email", "string"),))
    prop = section.properties[0]
    systems = _pair_systems("invoiced@x.io", "invoiced@x.io")
    from talkqa.systems.catalog import binding_of

    people = list(systems.resource(binding_of(("invoiced", "Customers person"))).list())
    target_id = str(people[0]["id"])
    state = ConflictState(
        prop,
        {"c1": target_id},
        {"c1": "chargebee@x.io"},
        {"c1": "invoiced@x.io"},
        {"c1": 10},
        {"c1": 11},
    )
    assert verify_conflict(section, state, systems) == []  # Invoiced edited last: it won
    # the same end state is wrong when Chargebee's edit was the newest
    tie = ConflictState(
        prop,
        {"c1": target_id},
        {"c1": "chargebee@x.io"},
        {"c1": "invoiced@x.io"},
        {"c1": 11},
        {"c1": 11},
    )
    found = verify_conflict(section, tie, systems)
    assert [(f.kind, f.check, f.expected) for f in found] == [
        ("mismatch", "conflicts", "chargebee@x.io"),
        ("mismatch", "conflicts", "chargebee@x.io"),
    ]
    assert "the source's edit is the newest" in found[0].message
    # both sides right, but on a new person: the pair's link did not hold
    people_res = systems.resource(binding_of(("invoiced", "Customers person")))
    people_res.edit(target_id, {"metadata": {}})
    people_res.seed(
        {
            "type": "person",
            "name": "Ada",
            "email": "invoiced@x.io",
            "metadata": {"chargebee_id": "c1"},
        }
    )
    moved = verify_conflict(section, state, systems)
    assert [(f.kind, f.target_id) for f in moved] == [("missing", target_id)]


def test_verify_kept_accepts_the_vendor_limit_and_names_a_forbidden_change() -> None:
    from reference_sync.testing import FakeSystems
    from reference_sync.testing import section as build_section
    from talkqa.pytest_plugin import EditState, verify_kept
    from talkqa.samples import not_carried_edits
    from talkqa.systems.catalog import binding_of

    section = build_section(2, "Order", "Invoices", (("currency_code", "currency", "string"),))
    systems = FakeSystems()
    orders = systems.resource(binding_of(("chargebee", "Order")))
    orders.seed({"id": "o1", "currency_code": "USD", "customer_id": "c1"})
    person = systems.resource(binding_of(("invoiced", "Customers person"))).seed(
        {"type": "person", "name": "Ada"}
    )
    invoices = systems.resource(binding_of(("invoiced", "Invoices")))
    invoice = invoices.seed(
        {"customer": person["id"], "currency": "eur", "metadata": {"chargebee_id": "o1"}}
    )
    [(blocked, edit)] = not_carried_edits(section, "target")
    target = binding_of(("invoiced", "Invoices"))
    tid = str(invoice["id"])
    state = EditState(edit, "target", target, {tid: "eur"}, {"o1": tid}, blocked, {"o1": "USD"})
    # Invoiced holds the edit, Chargebee kept its currency: the vendor's limit, no finding
    assert verify_kept(section, state, systems) == []
    orders.edit("o1", {"currency_code": "EUR"})  # something changed what Chargebee forbids
    found = verify_kept(section, state, systems)
    assert [(f.kind, f.check, f.expected, f.actual) for f in found] == [
        ("mismatch", "vendor_limits", "USD", "EUR")
    ]
    assert "forbids changing it" in found[0].message


def test_rerun_findings_name_each_entity_the_second_run_touched() -> None:
    from reference_sync.testing import section as build_section
    from talkqa.checks import FindingKind
    from talkqa.pytest_plugin import rerun_findings
    from talkqa.samples import snapshot_diff

    section = build_section(1, "Customer", "Customers person")
    before = {"chargebee customers c1": ("10", "5"), "invoiced customers 7": ("11", "")}
    after = {"chargebee customers c1": ("12", "6"), "invoiced customers 8": ("13", "")}
    found = rerun_findings(section, snapshot_diff(before, after))
    assert all(f.kind == FindingKind.WRITTEN_ON_RERUN and f.check == "idempotence" for f in found)
    assert [(f.source_id, f.target_id, f.section_index) for f in found] == [
        ("c1", None, 1),
        (None, "7", 1),
        (None, "8", 1),
    ]
    assert [f.message for f in found] == [
        "written_on_rerun: Chargebee customers 'c1': updated_at expected '10' got '12' "
        "(written by the second run)",
        "written_on_rerun: Invoiced customers 7: deleted by the second run",
        "written_on_rerun: Invoiced customers 8: created by the second run",
    ]
    assert rerun_findings(section, snapshot_diff(before, before)) == []


# --- a judgement that looked at nothing is no pass ------------------------------------------


def _judged(**fields: Any) -> Any:
    from talkqa.pytest_plugin import Judged

    return Judged(
        **{
            "findings": [],
            "entities_checked": 3,
            "pairs_checked": 3,
            "source_ids": frozenset({"o1", "o2", "o3"}),
            **fields,
        }
    )


NAMES = ("Chargebee Order", "Invoiced Invoices")


def test_vacuity_accepts_a_judgement_of_every_created_source() -> None:
    from talkqa.pytest_plugin import vacuity

    rows = {("currency_code", "currency")}
    assert vacuity(_judged(), ["o1", "o3"], NAMES, pairs=True, rows=rows) is None


def test_vacuity_refuses_sources_the_judge_never_read() -> None:
    from talkqa.pytest_plugin import vacuity

    reason = vacuity(_judged(entities_checked=0, source_ids=frozenset()), ["o1", "o2"], NAMES)
    assert reason is not None and reason[0].startswith(
        "not judged: 2 of the 2 Chargebee Order entities this scenario created (o1, o2)"
    )
    assert reason[1] is False  # the judge may have lost them: not the syncer's fault
    assert vacuity(_judged(), ["o1", "o9"], NAMES) is not None  # one lost is enough


def test_vacuity_refuses_zero_pairs_and_rows_empty_on_both_sides() -> None:
    from talkqa.pytest_plugin import vacuity

    none = _judged(pairs_checked=0)
    assert vacuity(none, ["o1"], NAMES) is None  # the exists promise needs no pair
    reason = vacuity(none, ["o1"], NAMES, pairs=True)
    assert reason == (
        "missing: none of 3 Chargebee Order entities has a linked Invoiced Invoices, "
        "so nothing could be compared",
        True,  # no target for any source: the syncer broke the promise
    )
    empty = _judged(uncompared=("currency_code -> currency", "memo -> notes"))
    reason = vacuity(empty, ["o1"], NAMES, pairs=True, rows={("currency_code", "currency")})
    assert reason is not None and reason[0].startswith("not compared: currency_code -> currency ")
    assert reason[1] is False
    # a row the scenario's table does not hold is another scenario's business
    assert vacuity(empty, ["o1"], NAMES, pairs=True, rows={("customer_id", "customer")}) is None


def test_judge_section_says_which_sources_it_judged_and_which_rows_it_compared() -> None:
    from reference_sync.testing import FakeSystems, checklist_spec
    from reference_sync.testing import section as build_section
    from talkqa.pytest_plugin import judge_section
    from talkqa.systems.catalog import binding_of

    section = build_section(
        0, "Customer", "Customers person", (("email", "email", "string"), ("fax", "fax", None))
    )
    spec = checklist_spec(section)
    systems = FakeSystems()
    systems.resource(binding_of(("chargebee", "Customer"))).seed({"id": "c1", "email": "a@x"})
    systems.resource(binding_of(("chargebee", "Customer"))).seed({"id": "c2", "email": "b@x"})
    systems.resource(binding_of(("invoiced", "Customers person"))).seed(
        {"type": "person", "name": "A", "email": "a@x", "metadata": {"chargebee_id": "c1"}}
    )
    judged = judge_section(spec, section, systems, checks={"properties"})
    assert judged.findings == []  # c2's missing person is an exists finding, filtered out
    assert (judged.entities_checked, judged.pairs_checked) == (2, 1)
    assert judged.source_ids == {"c1", "c2"}
    assert judged.uncompared == ("fax -> fax",)
    live = judge_section(spec, section, systems, checks={"exists"}, source_ids={"c2"})
    assert live.source_ids == {"c2"} and [f.kind for f in live.findings] == ["missing"]


def test_unwatched_wants_the_created_sources_and_the_target_side_in_both_snapshots() -> None:
    from talkqa.pytest_plugin import unwatched
    from talkqa.systems.catalog import binding_of

    source, target = binding_of(("chargebee", "Customer")), binding_of(("invoiced", "Items"))
    both = {"chargebee customers c1": ("1", "1"), "invoiced items 7": ("2", "")}
    assert unwatched(source, ["c1"], target, both, both) is None
    blind = {"chargebee customers c1": ("1", "1")}  # no Invoiced item was watched
    reason = unwatched(source, ["c1"], target, both, blind)
    assert reason is not None and "hold no invoiced items" in reason
    reason = unwatched(source, ["c1", "c2"], target, both, both)
    assert reason is not None and "miss 1 of the 2" in reason and "chargebee customers c2" in reason
    assert unwatched(source, [], target, both, both) is not None  # nothing created: no proof


def test_a_rerun_write_the_apis_cannot_show_is_counted_by_the_sandbox() -> None:
    """Same values, same second as the entity's last write: updated_at cannot show the write,
    the sandbox's own request counts can (sandbox mode's extra evidence for idempotence)."""
    from talkqa.dataflow.rst import load
    from talkqa.pytest_plugin import counted_writes, written_findings

    before = {"chargebee GET /customers": 4, "invoiced PATCH /customers/{id}": 2}
    after = {
        "chargebee GET /customers": 9,  # the snapshots' reads are not writes
        "invoiced PATCH /customers/{id}": 3,
        "invoiced POST /invoices": 1,
    }
    writes = counted_writes(before, after)
    assert writes == {"invoiced PATCH /customers/{id}": 1, "invoiced POST /invoices": 1}
    assert counted_writes(after, after) == {}
    section = load(REPO / "dataflows" / "chargebee-invoiced.rst").sections[0]
    found = written_findings(section, writes)
    assert [(f.kind, f.check) for f in found] == [("written_on_rerun", "idempotence")] * 2
    assert "1 invoiced PATCH /customers/{id} request(s)" in found[0].message
