"""Run one catalogue entry: the reference sync, its fault injected, its memory kept.

The harness runs a syncer as a shell command, possibly twice in one scenario (edits,
idempotence), and resets the sandboxes between scenarios. So the link store persists in a
file, and is thrown away when the systems no longer match it: after a reset the store
would name targets that are gone (or ids reused by new entities) and cursors from the
future. A fresh store is always safe for the reference sync: it reads everything and
adopts the targets that carry ``metadata.chargebee_id``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sqlite3
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

from defects.catalogue import Defect, find, listing
from defects.inject import TappedSystems
from reference_sync.engine import compile_spec
from reference_sync.linkstore import LinkStore
from reference_sync.summary import SyncSummary
from talkqa.dataflow.spec import DataflowSpec
from talkqa.errors import UserError
from talkqa.project import SHIPPED_CHECKLISTS
from talkqa.systems.base import ApiError
from talkqa.systems.catalog import bind

# The syncer's own mapping (what it syncs), not what it is judged against: the contacts
# checklist is a superset of the first one, so one syncer serves both. Shipped with talk-qa,
# so the catalogue runs from an installed wheel too.
DEFAULT_CHECKLIST = SHIPPED_CHECKLISTS / "chargebee-invoiced-contacts.rst"


# --- pure-ish pieces --------------------------------------------------------------------------


def syncer_spec(spec: DataflowSpec, defect: Defect) -> DataflowSpec:
    """The checklist as this syncer follows it: without the sections it never syncs."""
    skip = defect.injection.skip
    if not skip:
        return spec
    kept = [s for s in spec.sections if (b := bind(s.source)) is None or b.key not in skip]
    return spec.model_copy(update={"sections": kept})


def default_state(defect: str, env: Mapping[str, str]) -> Path:
    """A file under the temp dir, one per defect and pair of systems."""
    where = f"{env.get('CHARGEBEE_BASE_URL') or env.get('CHARGEBEE_SITE', '')}|"
    where += env.get("INVOICED_BASE_URL", "")
    digest = hashlib.sha256(where.encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / "talkqa-defects" / f"{defect}-{digest}.sqlite"


def state_path(defect: str, explicit: str | None, env: Mapping[str, str]) -> Path:
    chosen = explicit or env.get("TALKQA_DEFECT_STATE") or None
    return Path(chosen) if chosen else default_state(defect, env)


# --- the link store's freshness ---------------------------------------------------------------


def store_is_current(spec: DataflowSpec, systems: Any, path: Path) -> bool:
    """Whether every linked target the store names still exists and claims its source.

    A store with no link at all is not current either: its cursors and retries cannot be
    verified, and forgetting them costs only a full read.
    """
    if not path.exists():
        return False
    try:
        with LinkStore(path) as store:
            remembered = {
                model.key: (
                    model,
                    [link for link in store.links(model.key).values() if link.linked],
                )
                for model in compile_spec(spec).models
            }
    except sqlite3.DatabaseError:
        return False  # not a link store (or a damaged one): start afresh
    seen_link = False
    for model, links in remembered.values():
        if not links:
            continue
        seen_link = True
        claims = {str(e.get("id")): model.claim(e) for e in systems.resource(model.target).list()}
        expected: dict[str, str | None] = {link.source_id: link.source_id for link in links}
        if model.source_owned is not None:  # an Address: its target claims its owner
            sources = {str(e.get("id")): e for e in systems.resource(model.source).list()}
            expected = {sid: model.link_id(sid, sources.get(sid)) for sid in expected}
        if any(claims.get(str(link.target_id)) != expected[link.source_id] for link in links):
            return False
    return seen_link


def discard_store(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def run_defect(defect: Defect, spec: DataflowSpec, systems: Any, state: Path) -> SyncSummary:
    """One run of the syncer: the reference sync with the defect's fault, over ``systems``."""
    from reference_sync import run_sync

    spec = syncer_spec(spec, defect)
    state.parent.mkdir(parents=True, exist_ok=True)
    if not store_is_current(spec, systems, state):
        discard_store(state)
    injection = defect.injection
    with LinkStore(state) as store:
        full = False
        models = compile_spec(spec).models
        rerun = any(link.linked for m in models for link in store.links(m.key).values())
        if injection.forget:
            for model in models:
                if model.target.key in injection.forget:
                    for source_id in store.links(model.key):
                        store.forget(model.key, source_id)
                    full = True
        summary = run_sync(spec, TappedSystems(systems, injection.taps), store, full=full)
        if rerun and injection.rewrite:
            rewrite_linked(spec, systems, store, injection.rewrite)
        return summary


def rewrite_linked(
    spec: DataflowSpec, systems: Any, store: LinkStore, targets: frozenset[tuple[str, str]]
) -> int:
    """PATCH each linked target of those sections with what it already holds; how many.

    The fault of ``rewrites-unchanged``: the mapped fields the vendor lets change, and the
    metadata, each sent with its current value. The sync's own summary does not count these
    writes (a syncer with this bug believes it wrote nothing), only updated_at shows them.
    """
    from talkqa.samples import forbidden

    written = 0
    for model in compile_spec(spec).models:
        if model.target.key not in targets:
            continue
        resource = systems.resource(model.target)
        tops = {
            rule.target_path.split(".", 1)[0]
            for rule in model.rules
            if rule.referenced_section is None and not forbidden(model.target, rule.target_path)
        }
        for link in store.links(model.key).values():
            if not link.linked or link.target_id is None:
                continue
            held = resource.get(str(link.target_id))
            fields = {top: held[top] for top in sorted(tops) if top in held}
            fields["metadata"] = held.get("metadata") or {}
            resource.update(str(link.target_id), fields)
            written += 1
    return written


# --- the command ------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UserError(f"defects: {message}: run `python -m defects --list` for the names")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m defects",
        description="Run a deliberately broken syncer (the reference sync with one fault).",
    )
    parser.add_argument("name", nargs="?", help="catalogue entry (see --list); 'reference' = none")
    parser.add_argument("--list", action="store_true", help="print the catalogue and exit")
    parser.add_argument("--state", help="link store file (default $TALKQA_DEFECT_STATE or temp)")
    parser.add_argument(
        "--checklist",
        help="what the syncer syncs (default $TALKQA_DEFECT_CHECKLIST or "
        "dataflows/chargebee-invoiced-contacts.rst)",
    )
    return parser


def _summary_line(defect: Defect, summary: SyncSummary) -> str:
    totals = ", ".join(f"{k} {v}" for k, v in summary.totals.items() if v)
    return f"{defect.name}: {totals or 'nothing to do'}"


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Exit 0 synced (brokenly), 1 the sync failed, 2 usage or configuration error."""
    environ = dict(os.environ if env is None else env)
    try:
        args = _parser().parse_args(argv)
        if args.list:
            print(listing())
            return 0
        if not args.name:
            raise UserError("defects: name a catalogue entry: run `python -m defects --list`")
        defect = find(args.name)
        if defect is None:
            raise UserError(
                f"defects: no entry named {args.name!r}: run `python -m defects --list`"
            )
        return _run(defect, args, environ)
    except UserError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except ApiError as exc:
        print(f"defects: the sync failed: {exc}", file=sys.stderr)
        return 1
    except (OSError, sqlite3.Error) as exc:  # the state file, or the network below the client
        print(f"defects: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def _run(defect: Defect, args: argparse.Namespace, environ: dict[str, str]) -> int:
    from talkqa.dataflow.rst import load
    from talkqa.systems.connect import Systems
    from talkqa.systems.settings import Settings
    from talkqa.systems.wire import vendor_client

    checklist = args.checklist or environ.get("TALKQA_DEFECT_CHECKLIST") or DEFAULT_CHECKLIST
    spec = load(checklist)
    settings = Settings.from_env(environ)
    state = state_path(defect.name, args.state, environ)
    with vendor_client(60.0) as client:
        systems = Systems.connect(settings, client)
        summary = run_defect(defect, spec, systems, state)
    print(_summary_line(defect, summary))
    write_run_report(defect, summary, environ)
    return defect.injection.exit_code


def write_run_report(defect: Defect, summary: SyncSummary, environ: Mapping[str, str]) -> None:
    """The run report talk-qa asks every syncer for (``$TALKQA_RUN_REPORT``), as the
    reference sync gives it: a catalogue syncer is judged on what it says, too."""
    from talkqa.run_report import ENV_VAR
    from talkqa.sut import reference_run_report

    path = environ.get(ENV_VAR)
    if not path:
        return
    report = reference_run_report(summary).model_copy(update={"syncer": f"defects {defect.name}"})
    if defect.injection.silent_conflicts:
        quiet = [s.model_copy(update={"conflicts": []}) for s in report.sections]
        report = report.model_copy(update={"sections": quiet})
    Path(path).write_text(report.model_dump_json(indent=2), encoding="utf-8")
