"""``make mutants``: the judge's hand-planted faults, and whether the test suite kills each.

Every mutant is one line of the judge or its glue turned into a plausible bug, with the few
tests that must notice it. The list is the judge's contract with its tests: a survivor means
a promise talk-qa can break without any test saying so; an invalid mutant means the code it
was written against moved, and the mutant must be rewritten, not dropped.

Run ``python -m tools.mutants`` (``--only ID`` to run some, ``--list`` to print them).
The selected tests first run once on the clean copy and must pass (else a "killed" would
mean nothing). Exit 0 when every mutant was killed, 1 when one survived or is invalid (or
the clean run failed), 2 on bad usage.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as `python tools/mutants.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools.mutation import (
    BaselineFailed,
    Mutant,
    Result,
    Verdict,
    check_baseline,
    copy_tree,
    run_mutant,
    summary_line,
)

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 300.0  # seconds per mutant: a fault that hangs its tests is killed by the clock

_PLUGIN = "talkqa/pytest_plugin.py"
_CATALOGUE = (
    "tests/test_defect_catalogue.py::test_each_broken_syncer_gets_a_no_go_naming_its_promise"
)
_CONTACTS = (
    "features/chargebee-invoiced-contacts/01-chargebee-customer-to-invoiced-customers-person.feature"
)
_FEATURE_CONFLICT = (
    f"{_CONTACTS}::test_email_edited_in_chargebee_and_then_in_invoiced_the_newest_edit_invoiced"
    "_wins_on_both_sides"
)
_FEATURE_IDEMPOTENCE = f"{_CONTACTS}::test_a_second_run_changes_nothing_in_chargebee_or_invoiced"
_FEATURE_EDIT = (
    f"{_CONTACTS}::test_an_edit_in_chargebee_of_email_on_a_linked_chargebee_customer_reaches"
    "_invoiced"
)

MUTANTS: tuple[Mutant, ...] = (
    # --- the system under test: talkqa/sut.py ----------------------------------------------
    Mutant(
        "sut-nonzero-exit-is-success",
        "talkqa/sut.py",
        "        if done.returncode != 0:\n",
        "        if done.returncode < 0:\n",
        "CommandDriver counts a syncer's non-zero exit as a successful run",
        ("tests/test_sut_failure.py", f"{_CATALOGUE}[exits-nonzero]"),
    ),
    Mutant(
        "service-holds-at-once",
        "talkqa/sut.py",
        "        if failure is None:\n            return Eventual(True,",
        "        if True:\n            return Eventual(True,",
        "a service's promise holds at the first observation, whatever it observed",
        ("tests/test_service_driver.py::test_eventually_gives_the_last_failure_at_the_deadline",),
    ),
    Mutant(
        "service-deadline-ignored",
        "talkqa/scene.py",
        "        if ended.held:\n",
        "        if True:\n",
        "a service's promise that never held within the deadline passes",
        ("tests/test_service_driver.py::test_a_service_slower_than_within_is_no_go_saying_so",),
    ),
    Mutant(
        "sut-report-path-not-given",
        "talkqa/sut.py",
        "env={**self.environment(), ENV_VAR: str(report_path)},",
        "env=self.environment(),",
        "CommandDriver never tells the syncer where to write its run report",
        ("tests/test_command_run_report.py",),
    ),
    Mutant(
        "sut-report-ignored",
        "talkqa/sut.py",
        "summary.report = read_run_report(report_path)",
        "summary.report = None",
        "CommandDriver drops the run report the syncer wrote",
        ("tests/test_command_run_report.py",),
    ),
    # --- the conflicts promise --------------------------------------------------------------
    Mutant(
        "conflicts-report-unchecked",
        "talkqa/promises/edits.py",
        "missing = unreported_conflicts(report, record.section_index, list(state.by_source))",
        "missing: list[str] = []",
        "the conflicts promise never checks the run report: conflicts resolved silently pass",
        (f"{_CATALOGUE}[silent-conflicts]",),
    ),
    Mutant(
        "unreported-conflicts-names-none",
        _PLUGIN,
        "    return [sid for sid in source_ids if sid not in named]\n",
        "    return []\n",
        "unreported_conflicts names no conflict, whatever the report says",
        (f"{_CATALOGUE}[silent-conflicts]",),
    ),
    Mutant(
        "conflict-edit-order-ignored",
        "talkqa/scene.py",
        "for side in (plan.first, plan.first.other):",
        "for side in (Side.SOURCE, Side.TARGET):",
        "edit_both_sides edits the source first whatever the plan's first side",
        ("tests/test_conflict_edit_order.py",),
    ),
    Mutant(
        "conflict-tie-goes-to-target",
        _PLUGIN,
        "if source_at is not None and target_at is not None and target_at > source_at:",
        "if source_at is not None and target_at is not None and target_at >= source_at:",
        "a same-second conflict is won by the target, not the source as documented",
        ("tests/test_samples.py", "tests/test_pytest_plugin.py"),
    ),
    # --- idempotence ------------------------------------------------------------------------
    Mutant(
        "idempotence-compared-with-itself",
        "talkqa/scene.py",
        "sc.stash[SNAPSHOTS] = (before, snapshot(sc.systems, bindings, only, also=also))",
        "sc.stash[SNAPSHOTS] = (before, before)",
        "the after-rerun snapshot is the before snapshot: a second run can write anything",
        ("tests/test_rerun_snapshots.py",),
    ),
    Mutant(
        "idempotence-findings-dropped",
        "talkqa/promises/edits.py",
        "        sc.report(findings, self.id)\n",
        "        sc.report([], self.id)\n",
        "the idempotence promise reports no finding for what a second run wrote",
        (f"{_CATALOGUE}[rewrites-unchanged]",),
    ),
    # --- edits and vendor limits ------------------------------------------------------------
    Mutant(
        "edits-overwrite-unseen",
        _PLUGIN,
        "        if here is not None and read_path(here, state.edit.path) != value:\n",
        "        if here is None and read_path(here, state.edit.path) != value:\n",
        "an edit overwritten where it was made is not a finding",
        ("tests/test_samples.py::test_verify_edits_finds_an_edit_overwritten_where_it_was_made",),
    ),
    Mutant(
        "vendor-limit-report-unchecked",
        "talkqa/promises/edits.py",
        "            extra += unreported_not_carried(sc.section, state, report)\n",
        "            extra += []\n",
        "the vendor-limits promise ignores a run report silent about an edit it could not carry",
        ("tests/test_vendor_limit_report.py",),
    ),
    # --- the steps: a plan's promise judges ---------------------------------------------------
    Mutant(
        "then-step-judges-nothing",
        "talkqa/steps/then_steps.py",
        "    judge_promise(scene())\n",
        "    pass\n",
        "the Then step of every promise passes without judging",
        (f"{_CATALOGUE}[wrong-currency]",),
    ),
    Mutant(
        "then-step-conflict-report-skipped",
        "talkqa/steps/then_steps.py",
        "    judge_conflicts_reported(scene())\n",
        "    pass\n",
        "the 'reported each conflict' step never looks at the run report",
        (f"{_CATALOGUE}[silent-conflicts]",),
    ),
    Mutant(
        "when-step-edits-nothing",
        "talkqa/steps/when_steps.py",
        "    change(scene())\n",
        "    pass\n",
        "the When step of an edit scenario changes nothing before the second run",
        (_FEATURE_EDIT, _FEATURE_CONFLICT),
    ),
    # --- the Talk datatypes: which entities a section demands ------------------------------
    Mutant(
        "talk-datatype-not-narrowed",
        "talkqa/systems/catalog.py",
        "    return source.narrowed(target.talk), target.narrowed(source.talk)\n",
        "    return source, target\n",
        "a section demands every entity of its datatype, whatever Talk datatype the rule gives it",
        ("tests/test_catalog_talk.py",),
    ),
    Mutant(
        "talk-other-section-target-orphan",
        "talkqa/checks.py",
        "            elif (wanted is None or owner in wanted) and owner not in elsewhere:\n",
        "            elif wanted is None or owner in wanted:\n",
        "a target of a source of another Talk datatype counts as this section's (an orphan here)",
        ("tests/test_catalog_talk.py",),
    ),
    # --- the checks ---------------------------------------------------------------------------
    Mutant(
        "checks-duplicate-unseen",
        "talkqa/checks.py",
        "        if len(typed) > 1:\n",
        "        if len(typed) > 2:\n",
        "a source linked to two targets is not a duplicate",
        ("tests/test_checks.py",),
    ),
    Mutant(
        "checks-missing-unseen",
        "talkqa/checks.py",
        "    if ctx.snap.section.kind is not SectionKind.EVERY:\n",
        "    if ctx.snap.section.kind is SectionKind.EVERY:\n",
        "an 'every' section's source with no target is not missing",
        ("tests/test_checks.py",),
    ),
    Mutant(
        "checks-orphan-unseen",
        "talkqa/checks.py",
        "        if snap.target.holds(orphan):\n",
        "        if not snap.target.holds(orphan):\n",
        "a target claiming a source that does not exist is not an orphan",
        ("tests/test_checks.py",),
    ),
    Mutant(
        "checks-link-first-inverted",
        "talkqa/checks.py",
        "if section.kind is SectionKind.LINK_FIRST and sid in unlinked:",
        "if section.kind is SectionKind.LINK_FIRST and sid not in unlinked:",
        "link-first judges the linked sources as if they had been unlinked",
        ("tests/test_checks.py",),
    ),
    # --- the comparison -----------------------------------------------------------------------
    Mutant(
        "compare-numbers-always-close",
        "talkqa/compare.py",
        "        return math.isclose(left, right, rel_tol=1e-9, abs_tol=1e-12)\n",
        "        return True\n",
        "any two floats compare equal",
        ("tests/test_compare.py", "tests/test_float_tolerance.py"),
    ),
    Mutant(
        "compare-list-length-ignored",
        "talkqa/compare.py",
        "        return len(left) == len(right) and all(\n",
        "        return all(\n",
        "a list compares equal to a longer one it is a prefix of",
        ("tests/test_compare.py",),
    ),
    Mutant(
        "compare-codes-not-normalised",
        "talkqa/compare.py",
        "    return value.strip().upper() if isinstance(value, str) else value\n",
        "    return value\n",
        "'usd' and 'USD' differ: vendors' case conventions become mismatches",
        ("tests/test_compare.py",),
    ),
    Mutant(
        "units-minor-not-converted",
        "talkqa/units.py",
        "    return _canonical(number.scaleb(-digits) if fields.minor else number)\n",
        "    return _canonical(number)\n",
        "Chargebee cents compare with Invoiced's major units as they are: 1050 vs 10.5",
        ("tests/test_units.py", "tests/test_lines_sandbox.py"),
    ),
    Mutant(
        "units-count-converted-as-money",
        "talkqa/units.py",
        "    if left is None or right is None:\n",
        "    if left is None and right is None:\n",
        "an amount mapped to a count (items.quantity) is converted as if both were money",
        ("tests/test_units.py",),
    ),
    # --- cassettes: secrets and redaction (today's Redactor and vcr_config) -------------------
    Mutant(
        "cassette-authorization-kept",
        _PLUGIN,
        'FILTERED_REQUEST_HEADERS: tuple[str, ...] = ("authorization", "user-agent", "cookie", '
        '"host")',
        'FILTERED_REQUEST_HEADERS: tuple[str, ...] = ("user-agent", "cookie", "host")',
        "the Authorization header (plain or Basic base64) is written into cassettes",
        ("tests/test_cassette_secrets.py",),
    ),
    Mutant(
        "cassette-keys-unfiltered",
        _PLUGIN,
        "    return [(p, v) for p, v in sensitive if len(v) >= 4]\n",
        "    return [(p, v) for p, v in sensitive[-2:] if len(v) >= 4]\n",
        "only the origins are scrubbed: vendor keys in a URL or body reach cassettes",
        ("tests/test_cassette_secrets.py",),
    ),
    Mutant(
        "redactor-keeps-secrets",
        "talkqa/redact.py",
        "            text = text.replace(form, placeholder)\n",
        "            text = text.replace(placeholder, form)\n",
        "the redactor leaves every known form of a key in reports, outcomes and Allure",
        ("tests/test_redact.py",),
    ),
    # --- the scene: how a judgement ends ----------------------------------------------------
    Mutant(
        "scene-findings-do-not-fail",
        "talkqa/scene.py",
        '        if findings:\n            attach_findings(findings, f"findings: {name}")\n',
        '        if False:\n            attach_findings(findings, f"findings: {name}")\n',
        "a judgement with findings passes: every finding is recorded but nothing breaks",
        (f"{_CATALOGUE}[wrong-currency]",),
    ),
    Mutant(
        "scene-vacuous-syncer-fault-unblamed",
        "talkqa/scene.py",
        "        if syncer_fault:\n            self.broken(why)\n",
        "        if False:\n            self.broken(why)\n",
        "a syncer that linked nothing to compare gets INCOMPLETE, not its broken promise",
        ("tests/test_vacuous_judgement.py",),
    ),
    # --- the other promises -----------------------------------------------------------------
    Mutant(
        "exists-judges-nothing",
        "talkqa/promises/existence.py",
        "        sc.judge({PromiseId.EXISTS})\n",
        "        sc.judge(set())\n",
        "the exists promise runs no check",
        (f"{_CATALOGUE}[companies-not-persons]",),
    ),
    Mutant(
        "properties-judge-no-row",
        "talkqa/promises/values.py",
        "        sc.judge_rows(sc.plan.rows, self.id)\n\n\nclass References",
        "        sc.judge_rows((), self.id)\n\n\nclass References",
        "the properties promise compares none of its rows",
        (f"{_CATALOGUE}[wrong-currency]",),
    ),
    Mutant(
        "checks-reference-unchecked",
        "talkqa/checks.py",
        "    if _as_ids(expected) == _as_ids(actual) and not _unresolved(source_value, expected):",
        "    if not _unresolved(source_value, expected):",
        "a reference to the wrong (but linked) target is not a finding",
        ("tests/test_checks.py",),
    ),
    # --- evidence: cassettes and recording ----------------------------------------------------
    Mutant(
        "replay-recording-allowed",
        _PLUGIN,
        'if mode == "replay" and record_mode not in (None, "none"):',
        'if mode == "replay" and record_mode not in (None, "none", "rewrite"):',
        "replay mode lets --record-mode rewrite (and so delete) the committed cassettes",
        (
            "tests/test_pytest_plugin.py::test_recording_in_replay_mode_is_refused_before_anything_runs",
        ),
    ),
    Mutant(
        "cassette-empty-accepted",
        _PLUGIN,
        "    if not requests:\n",
        "    if False:\n",
        "a cassette with no interaction is replayed as if it were evidence",
        ("tests/test_pytest_plugin.py",),
    ),
    Mutant(
        "signoff-skipped-counts-as-judged",
        "talkqa/report/signoff.py",
        'judged = sum(1 for s in statuses if s in ("passed", "failed"))',
        'judged = sum(1 for s in statuses if s in ("passed", "failed", "skipped"))',
        "the sign-off counts a scenario not covered as judged: nothing checked can be GO",
        ("tests/test_report_signoff.py",),
    ),
    # --- outcomes and the verdict -------------------------------------------------------------
    Mutant(
        "impossible-cell-not-covered",
        "talkqa/report/signoff.py",
        '        return Cell("impossible", cannot)\n',
        '        return Cell("skipped", "not covered")\n',
        "a promise the vendor's API cannot keep reads as not covered, without its source",
        ("tests/test_report_signoff.py",),
    ),
    Mutant(
        "outcome-error-as-failed",
        _PLUGIN,
        "        status = Status.FAILED if record.broken else Status.ERROR\n",
        "        status = Status.FAILED\n",
        "talk-qa's own error is counted as the system under test's broken promise",
        ("tests/test_pytest_plugin.py",),
    ),
    Mutant(
        "outcome-error-as-passed",
        _PLUGIN,
        "        status = Status.FAILED if record.broken else Status.ERROR\n",
        "        status = Status.FAILED if record.broken else Status.PASSED\n",
        "a scenario talk-qa could not judge is counted as passed",
        ("tests/test_pytest_plugin.py",),
    ),
    Mutant(
        "decide-incomplete-is-go",
        "talkqa/outcome.py",
        "    if unjudged or not judged:\n",
        "    if not judged:\n",
        "decide: something not judged still gives GO",
        ("tests/test_verdict_rule.py", "tests/test_report_signoff.py"),
    ),
    Mutant(
        "decide-broken-ignored",
        "talkqa/outcome.py",
        "    if broken:\n",
        "    if False:\n",
        "decide: a broken promise does not make the verdict NO-GO",
        ("tests/test_verdict_rule.py", "tests/test_report_signoff.py"),
    ),
    Mutant(
        "signoff-errors-not-unjudged",
        "talkqa/report/signoff.py",
        "_unjudged_line(o) for o in results.outcomes if o.status is Status.ERROR",
        "_unjudged_line(o) for o in results.outcomes if o.status is Status.SKIPPED",
        "the sign-off does not count a scenario in error as not judged",
        ("tests/test_report_signoff.py",),
    ),
)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.mutants", description=__doc__)
    parser.add_argument("--only", action="append", default=[], metavar="ID")
    parser.add_argument("--list", action="store_true", help="print the mutants and exit")
    return parser.parse_args(argv)


def _line(result: Result) -> str:
    m = result.mutant
    return (
        f"{result.verdict.value:<8} {m.id:<36} {m.file}  ({result.detail}, "
        f"{result.seconds:.0f}s): {m.description}"
    )


def run(mutants: tuple[Mutant, ...], repo: Path = REPO) -> list[Result]:
    """Each mutant against its tests in one private copy of ``repo``; prints as it goes.
    Raises BaselineFailed when those tests fail before any fault is planted."""
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="talkqa-mutants-") as folder:
        copy = Path(folder)
        copy_tree(repo, copy)
        check_baseline(copy, mutants, TIMEOUT)
        for mutant in mutants:
            result = run_mutant(copy, mutant, TIMEOUT, time.monotonic)
            print(_line(result), flush=True)
            results.append(result)
    return results


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    chosen = tuple(m for m in MUTANTS if not args.only or m.id in args.only)
    unknown = sorted(set(args.only) - {m.id for m in MUTANTS})
    if unknown:
        print(f"mutants: no mutant {', '.join(unknown)}: see --list", file=sys.stderr)
        return 2
    if args.list:
        for m in chosen:
            print(f"{m.id:<36} {m.file}: {m.description}")
        return 0
    try:
        results = run(chosen)
    except BaselineFailed as exc:
        print(f"mutants: {exc}", file=sys.stderr)
        return 1
    print(summary_line(results))
    return 0 if all(r.verdict is Verdict.KILLED for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
