"""Each defect does what its catalogue entry says, judged by talkqa.checks.check_spec.

The systems are the bundled sandboxes in process (one httpx client, routed by host); the
data is what the feature scenarios create (talkqa.samples), so a defect caught here is a
defect the scenarios can catch.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from defects.catalogue import (
    CATALOGUE,
    CONTROL,
    EVERYTHING,
    SHIPPED,
    find,
    other_currency,
    strictly_after,
)
from defects.run import (
    default_state,
    main,
    run_defect,
    state_path,
    store_is_current,
)
from talkqa.checks import CheckReport, check_spec
from talkqa.dataflow.rst import load
from talkqa.dataflow.spec import DataflowSpec
from talkqa.promises import PromiseId
from talkqa.pytest_plugin import rerun_findings
from talkqa.samples import create_for_section, snapshot, snapshot_changes, snapshot_diff
from talkqa.sandbox.server import (
    create_sandbox,
    running_sandboxes,
)
from talkqa.systems.catalog import binding_of
from talkqa.systems.connect import Systems
from talkqa.systems.settings import Settings
from tests.sandbox_fixtures import both_in_process, sandbox_systems

REPO = Path(__file__).resolve().parents[1]
PROMISES = tuple(p.value for p in PromiseId)
FIRST = load(REPO / "dataflows" / "chargebee-invoiced.rst")
CONTACTS = load(REPO / "dataflows" / "chargebee-invoiced-contacts.rst")
PERSON = binding_of(("invoiced", "Customers person"))
CUSTOMER = binding_of(("chargebee", "Customer"))


class Bench:
    """Both sandboxes behind one in-process client, plus the systems over it."""

    def __init__(self, sandbox: Any, client: Any, systems: Systems) -> None:
        self.sandbox, self.client, self.systems = sandbox, client, systems

    def seed(self, run_id: str = "t") -> dict[str, list[str]]:
        """3 customers, 3 items, 3 orders (on 2 more customers): the scenarios' own data."""
        created: dict[str, list[str]] = {}
        for index, count in ((0, 3), (1, 3), (2, 3)):
            made = create_for_section(
                FIRST.sections[index], count, self.systems, f"{run_id}{index}"
            )
            for key, entities in made.by_datatype.items():
                created.setdefault(key[1], []).extend(str(e["id"]) for e in entities)
        return created


@pytest.fixture
def bench() -> Iterator[Bench]:
    sandbox = create_sandbox(seed=0)
    with both_in_process(sandbox) as client:
        yield Bench(sandbox, client, sandbox_systems(client, sleep=lambda _s: None))


def judged(spec: DataflowSpec, bench: Bench) -> CheckReport:
    return check_spec(spec, bench.systems)


def kinds(report: CheckReport, section: int | None = None) -> set[str]:
    return {str(f.kind) for f in report.findings if section is None or f.section_index == section}


def run(name: str, bench: Bench, state: Path, spec: DataflowSpec = CONTACTS) -> Any:
    defect = find(name)
    assert defect is not None
    return run_defect(defect, spec, bench.systems, state)


# --- the control --------------------------------------------------------------------------------


def test_reference_leaves_no_finding_and_a_second_run_writes_nothing(
    bench: Bench, tmp_path: Path
) -> None:
    bench.seed()
    first = run("reference", bench, tmp_path / "s.sqlite")
    assert first.totals["created"] == 9 + 2  # 5 persons, 3 items, 3 invoices
    assert judged(FIRST, bench).findings == []
    assert judged(CONTACTS, bench).findings == []
    second = run("reference", bench, tmp_path / "s.sqlite")
    assert second.writes == 0


# --- exists -------------------------------------------------------------------------------------


def test_drops_customers_hides_every_third_customer_and_its_orders(
    bench: Bench, tmp_path: Path
) -> None:
    created = bench.seed()
    run("drops-customers", bench, tmp_path / "s.sqlite")
    report = judged(FIRST, bench)
    missing = {f.source_id for f in report.findings if f.kind == "missing" and f.section_index == 0}
    customers = sorted(
        bench.systems.resource(CUSTOMER).list(), key=lambda e: (e["created_at"], e["id"])
    )
    assert missing == {str(c["id"]) for i, c in enumerate(customers) if i % 3 == 0}
    assert len(missing) == 2 and len(created["Customer"]) == 5
    assert kinds(report, 1) == set()  # items untouched
    assert kinds(report) == {"missing"}


def test_companies_not_persons_creates_companies(bench: Bench, tmp_path: Path) -> None:
    bench.seed()
    run("companies-not-persons", bench, tmp_path / "s.sqlite")
    report = judged(FIRST, bench)
    assert kinds(report, 0) == {"wrong_type"}
    assert len(report.findings_for(0)) == 5
    types = {e.get("type") for e in bench.systems.resource(PERSON).list()}
    assert types == {"company"}


def test_skips_items_never_syncs_items(bench: Bench, tmp_path: Path) -> None:
    bench.seed()
    summary = run("skips-items", bench, tmp_path / "s.sqlite")
    report = judged(FIRST, bench)
    assert kinds(report) == {"missing"}
    assert {f.section_index for f in report.findings} == {1}
    assert len(report.findings) == 3
    assert all("Item" not in s.heading for s in summary.sections)


# --- duplicates / idempotence -------------------------------------------------------------------


def test_duplicates_persons_creates_another_person_on_every_run(
    bench: Bench, tmp_path: Path
) -> None:
    bench.seed()
    state = tmp_path / "s.sqlite"
    run("duplicates-persons", bench, state)
    assert judged(FIRST, bench).findings == []  # one run looks right
    second = run("duplicates-persons", bench, state)
    assert second.writes > 0  # the idempotence promise is broken
    report = judged(FIRST, bench)
    assert kinds(report, 0) == {"duplicate"}
    assert len(report.findings_for(0)) == 5
    persons = [e for e in bench.systems.resource(PERSON).list() if PERSON.holds(e)]
    assert len(persons) == 10


def _invoiced_targets(bench: Bench) -> dict[str, dict[str, Any]]:
    """Every linked Invoiced entity, by 'resource id', without updated_at."""
    held: dict[str, dict[str, Any]] = {}
    for key in (("invoiced", "Customers person"), ("invoiced", "Items"), ("invoiced", "Invoices")):
        binding = binding_of(key)
        for entity in bench.systems.resource(binding).list():
            held[f"{binding.resource} {entity['id']}"] = {
                k: v for k, v in entity.items() if k != "updated_at"
            }
    return held


def test_rewrites_unchanged_patches_every_linked_target_with_what_it_holds(
    bench: Bench, tmp_path: Path
) -> None:
    bench.seed()
    state = tmp_path / "s.sqlite"
    bindings = [binding_of(k) for k in (("chargebee", "Customer"), ("chargebee", "Item"))]
    bindings += [binding_of(k) for k in (("chargebee", "Order"), ("invoiced", "Items"))]
    bindings += [PERSON, binding_of(("invoiced", "Invoices"))]
    first = snapshot(bench.systems, bindings)
    assert run("rewrites-unchanged", bench, state).totals["created"] == 11
    after_first = snapshot(bench.systems, bindings)
    # the first run only creates: no target is written after its creation
    assert {c.what for c in snapshot_diff(first, after_first)} == {"created"}
    held = _invoiced_targets(bench)
    second = run("rewrites-unchanged", bench, state)
    assert second.writes == 0  # the syncer believes it wrote nothing
    changes = snapshot_diff(after_first, snapshot(bench.systems, bindings))
    assert {(c.system, c.what) for c in changes} == {("invoiced", "written")}
    assert sorted(f"{c.resource} {c.id}" for c in changes) == sorted(held)
    assert len(changes) == 5 + 3 + 3  # persons, items, invoices
    assert _invoiced_targets(bench) == held  # nothing visible changed but updated_at
    assert judged(FIRST, bench).findings == [] and judged(CONTACTS, bench).findings == []
    order_section = FIRST.sections[2]
    found = rerun_findings(order_section, changes)
    assert {str(f.kind) for f in found} == {"written_on_rerun"} and len(found) == 11


# --- properties / references --------------------------------------------------------------------


def test_wrong_currency_writes_another_iso_code(bench: Bench, tmp_path: Path) -> None:
    bench.seed()
    run("wrong-currency", bench, tmp_path / "s.sqlite")
    report = judged(FIRST, bench)
    assert kinds(report) == {"mismatch"}
    assert {(f.section_index, f.source_path) for f in report.findings} == {(2, "currency_code")}
    assert len(report.findings) == 3


@pytest.mark.parametrize(("code", "other"), [("USD", "eur"), ("eur", "usd"), ("NOK", "usd")])
def test_other_currency_is_never_the_same_code(code: str, other: str) -> None:
    assert other_currency(None, code) == other


def test_wrong_invoice_customer_breaks_only_references(bench: Bench, tmp_path: Path) -> None:
    bench.seed()
    run("wrong-invoice-customer", bench, tmp_path / "s.sqlite")
    report = judged(FIRST, bench)
    assert report.findings
    assert {(f.section_index, f.check) for f in report.findings} == {(2, "references")}
    assert len(report.findings) == 3


def test_wrong_invoice_customer_uses_a_stale_copy_when_no_other_person(
    bench: Bench, tmp_path: Path
) -> None:
    order_section = FIRST.sections[2]
    one_customer = create_for_section(FIRST.sections[0], 1, bench.systems, "solo")
    (customer,) = one_customer.ids(("chargebee", "Customer"))
    bench.systems.chargebee.orders.create(
        {
            "customer_id": customer,
            "currency_code": "USD",
            "order_line_items": [{"amount": 100, "description": "x"}],
        }
    )
    run("wrong-invoice-customer", bench, tmp_path / "s.sqlite")
    report = judged(FIRST, bench)
    assert {(f.section_index, f.check) for f in report.findings} == {
        (order_section.index, "references")
    }
    copies = [
        e
        for e in bench.systems.resource(PERSON).list()
        if "stale_copy_of" in (e.get("metadata") or {})
    ]
    assert len(copies) == 1


# --- edits --------------------------------------------------------------------------------------


def _edit_emails(bench: Bench, side: str) -> None:
    if side == "target":
        for person in bench.systems.resource(PERSON).list():
            bench.systems.invoiced.customers.update(
                str(person["id"]), {"email": f"edited.{person['email']}"}
            )
    else:
        for customer in bench.systems.resource(CUSTOMER).list():
            bench.systems.chargebee.customers.update(
                str(customer["id"]), {"email": f"edited.{customer['email']}"}
            )


@pytest.mark.parametrize(
    ("name", "side", "caught"),
    [
        ("reference", "target", False),
        ("reference", "source", False),
        ("one-way", "target", True),
        ("one-way", "source", False),  # Chargebee -> Invoiced still flows
        ("forgets-edits", "target", True),
        ("forgets-edits", "source", True),
    ],
)
def test_edits_after_the_first_run(
    bench: Bench, tmp_path: Path, name: str, side: str, caught: bool
) -> None:
    created = bench.seed()
    state = tmp_path / "s.sqlite"
    run(name, bench, state)
    assert judged(CONTACTS, bench).findings == []
    _edit_emails(bench, side)
    run(name, bench, state)
    report = judged(CONTACTS, bench)
    if not caught:
        assert report.findings == []
        return
    assert kinds(report) == {"mismatch"}
    assert {(f.section_index, f.source_path) for f in report.findings} == {(0, "email")}
    assert len(report.findings) == len(created["Customer"])


@pytest.mark.parametrize(("name", "caught"), [("reference", False), ("strict-cursor", True)])
@pytest.mark.parametrize("side", ["target", "source"])
def test_edits_in_the_second_of_the_last_sync_write(
    tmp_path: Path, name: str, caught: bool, side: str
) -> None:
    """A burst: every write shares one second (the seeded quota of a 10**6-per-second clock),
    so the edits land in the second the first run's cursor stopped at."""
    sandbox = create_sandbox(seed=0, writes_per_second=10**6)
    with both_in_process(sandbox) as client:
        bench = Bench(sandbox, client, sandbox_systems(client, sleep=lambda _s: None))
        created = bench.seed()
        state = tmp_path / "s.sqlite"
        run(name, bench, state)
        _edit_emails(bench, side)
        run(name, bench, state)
        report = judged(CONTACTS, bench)
        assert len({c["updated_at"] for c in bench.systems.resource(CUSTOMER).list()}) == 1
    if not caught:
        assert report.findings == []
        return
    assert kinds(report) == {"mismatch"}
    assert len(report.findings) == len(created["Customer"])


def test_strictly_after_moves_only_a_given_cursor() -> None:
    assert strictly_after(None) is None
    assert strictly_after(1793606400) == 1793606401


# --- state between runs -------------------------------------------------------------------------


def test_a_reset_of_the_sandboxes_discards_the_stale_store(bench: Bench, tmp_path: Path) -> None:
    state = tmp_path / "s.sqlite"
    assert not store_is_current(CONTACTS, bench.systems, state)
    bench.seed("a")
    run("reference", bench, state)
    assert store_is_current(CONTACTS, bench.systems, state)
    bench.sandbox.reset(seed=0)  # what the features do between scenarios
    assert not store_is_current(CONTACTS, bench.systems, state)
    bench.seed("b")
    summary = run("reference", bench, state)
    assert summary.totals["created"] == 11
    assert judged(FIRST, bench).findings == []


def test_state_path_prefers_the_option_then_the_environment(tmp_path: Path) -> None:
    env = {"TALKQA_DEFECT_STATE": str(tmp_path / "env.sqlite")}
    assert state_path("reference", str(tmp_path / "opt.sqlite"), env) == tmp_path / "opt.sqlite"
    assert state_path("reference", None, env) == tmp_path / "env.sqlite"
    assert state_path("reference", None, {}) == default_state("reference", {})


def test_default_state_is_keyed_by_defect_and_systems() -> None:
    one = default_state("reference", {"CHARGEBEE_BASE_URL": "http://127.0.0.1:1/api/v2"})
    other = default_state("reference", {"CHARGEBEE_BASE_URL": "http://127.0.0.1:2/api/v2"})
    assert one != other
    assert one != default_state("one-way", {"CHARGEBEE_BASE_URL": "http://127.0.0.1:1/api/v2"})
    assert one == default_state("reference", {"CHARGEBEE_BASE_URL": "http://127.0.0.1:1/api/v2"})


# --- the catalogue as data and the command ------------------------------------------------------


def test_catalogue_entries_name_a_known_promise_and_a_command() -> None:
    names = [d.name for d in EVERYTHING]
    assert len(names) == len(set(names)) == 18
    assert CONTROL.promise is None and CONTROL not in CATALOGUE
    for defect in CATALOGUE:
        assert defect.promise in PROMISES
        assert defect.also <= set(PROMISES) - {defect.promise}
        assert defect.sections and defect.description
        assert defect.findings or defect.failure  # how the sign-off shows it broke
        assert f"-m defects {defect.name}" in defect.command
        assert defect.command.endswith(defect.name) == (defect.checklist in SHIPPED)
        assert (REPO / defect.checklist).is_file()


def test_unknown_name_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["no-such-defect"], env={}) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no-such-defect" in err and "--list" in err


def test_missing_settings_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reference"], env={}) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "CHARGEBEE" in err


def test_list_prints_every_entry() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "defects", "--list"],
        cwd=REPO, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0
    for defect in EVERYTHING:
        assert defect.name in done.stdout


def test_the_command_syncs_over_sockets_and_keeps_its_state(tmp_path: Path) -> None:
    with running_sandboxes(seed=0) as sb:
        env = {**sb.env, "TALKQA_DEFECT_STATE": str(tmp_path / "s.sqlite")}
        assert main(["drops-customers"], env=env) == 0  # nothing to sync yet
        settings = Settings.from_env(sb.env)
        import httpx

        with httpx.Client() as client:
            systems = Systems.connect(settings, client)
            create_for_section(FIRST.sections[0], 3, systems, "cli")
            assert main(["drops-customers"], env=env) == 0
            report = check_spec(FIRST, systems)
            assert kinds(report) == {"missing"} and len(report.findings) == 1
            assert main(["drops-customers"], env=env) == 0
            assert len(check_spec(FIRST, systems).findings) == 1


def test_a_lost_store_is_recovered_from_the_targets_metadata(bench: Bench, tmp_path: Path) -> None:
    bench.seed()
    state = tmp_path / "s.sqlite"
    run("reference", bench, state)
    state.unlink()
    again = run("reference", bench, state)
    assert again.writes == 0  # every target adopted by metadata.chargebee_id, none re-created
    assert judged(FIRST, bench).findings == []


def test_a_damaged_state_file_is_replaced(bench: Bench, tmp_path: Path) -> None:
    bench.seed()
    state = tmp_path / "s.sqlite"
    state.write_text("not a database" * 100)
    assert not store_is_current(CONTACTS, bench.systems, state)
    assert run("reference", bench, state).totals["created"] == 11
    assert store_is_current(CONTACTS, bench.systems, state)


@pytest.mark.parametrize(
    "name", [d.name for d in EVERYTHING if d.promise not in {"idempotence", "edits"}]
)
def test_a_second_run_changes_nothing_unless_idempotence_is_the_promise(
    bench: Bench, tmp_path: Path, name: str
) -> None:
    """A defect breaks its own promise, not idempotence as a side effect."""
    bench.seed()
    bindings = [binding_of(k) for k in (("chargebee", "Customer"), ("chargebee", "Item"))]
    bindings += [binding_of(k) for k in (("chargebee", "Order"), ("invoiced", "Items"))]
    bindings += [PERSON, binding_of(("invoiced", "Invoices"))]
    run(name, bench, tmp_path / "s.sqlite")
    before = snapshot(bench.systems, bindings)
    run(name, bench, tmp_path / "s.sqlite")
    assert snapshot_changes(before, snapshot(bench.systems, bindings)) == []
