"""What the feature suite needs from talk-qa, kept out of the step glue so it is typed and tested.

The plugin (``talkqa/steps/plugin.py``) stays thin: hooks, fixtures and step text. Here live
the pieces with rules in them: the three modes and their settings, the vcrpy configuration
(matching, secrets, volatile headers), cassette names, the outcome records the sign-off
reads, and the one call that judges a section.
"""

from __future__ import annotations

import contextlib
import functools
import re
import secrets
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from talkqa.dataflow.gherkin import slug
from talkqa.dataflow.spec import DataflowSpec, PropertyMap, Section
from talkqa.errors import UserError
from talkqa.outcome import ScenarioOutcome, Status
from talkqa.promises.base import section_names
from talkqa.promises.ids import PromiseId
from talkqa.redact import Redactor
from talkqa.run_report import RunReport
from talkqa.samples import Change, Created, Edit
from talkqa.systems.catalog import Binding
from talkqa.systems.settings import Settings

MODES: tuple[str, ...] = ("replay", "sandbox", "live")

# Replay never touches the network: any host works because cassettes match without host/port.
REPLAY_CHARGEBEE_URL = "http://chargebee.replay.invalid/api/v2"
REPLAY_INVOICED_URL = "http://invoiced.replay.invalid"
REPLAY_KEY = "replay-key"

# Placeholders written into cassettes instead of the keys (vcrpy filter_sensitive_data).
CHARGEBEE_KEY_PLACEHOLDER = "<CHARGEBEE_API_KEY>"
INVOICED_KEY_PLACEHOLDER = "<INVOICED_API_KEY>"

# Response headers that change between two recordings of the same exchange.
VOLATILE_RESPONSE_HEADERS = frozenset(
    {
        "date",
        "server",
        "x-request-id",
        "x-runtime",
        "request-id",
        "cf-ray",
        "set-cookie",
        "etag",
        "age",
        "via",
        "x-amzn-trace-id",
        "report-to",
        "nel",
    }
)
# Request headers that are secret (authorization) or say nothing about the exchange.
FILTERED_REQUEST_HEADERS: tuple[str, ...] = ("authorization", "user-agent", "cookie", "host")

# Origins written into cassettes instead of the real ones (sandbox ports change every run).
RECORDED_CHARGEBEE_ORIGIN = "http://chargebee.recorded.invalid"
RECORDED_INVOICED_ORIGIN = "http://invoiced.recorded.invalid"

# The run id of replay and sandbox runs is fixed: sample data (and so request bodies) must be
# the same when a cassette is recorded and when it is replayed.
DETERMINISTIC_RUN_ID = "t0"


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise UserError(f"--talkqa-mode {mode!r} is not a mode: use one of {', '.join(MODES)}")
    return mode


def run_id_for(mode: str) -> str:
    """A run id every created entity carries: fixed unless live (live runs must not collide)."""
    if mode != "live":
        return DETERMINISTIC_RUN_ID
    return f"{time.strftime('%m%d%H%M', time.gmtime())}{secrets.token_hex(2)}"


def replay_settings() -> Settings:
    return Settings.for_sandbox(
        REPLAY_CHARGEBEE_URL,
        REPLAY_INVOICED_URL,
        chargebee_api_key=REPLAY_KEY,
        invoiced_api_key=REPLAY_KEY,
    )


# --- vcrpy ----------------------------------------------------------------------------------


def is_admin_path(path: str) -> bool:
    return path == "/__admin" or path.startswith("/__admin/") or "/__admin/" in path


def drop_admin_requests(request: Any) -> Any:
    """before_record_request: sandbox resets are harness plumbing, never part of a cassette."""
    return None if is_admin_path(str(request.path)) else request


def origin_of(url: str) -> str:
    """'http://127.0.0.1:5000/api/v2' -> 'http://127.0.0.1:5000'."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def strip_volatile_headers(response: dict[str, Any]) -> dict[str, Any]:
    """before_record_response: drop headers that differ between two identical exchanges."""
    headers = response.get("headers") or {}
    response["headers"] = {
        name: value
        for name, value in sorted(headers.items())
        if name.lower() not in VOLATILE_RESPONSE_HEADERS
    }
    return response


# The one matcher replay uses (registered on each vcrpy VCR: `with_request_matcher`).
REQUEST_MATCHER = "method_path_query_body"


def same_request(new: Any, recorded: Any) -> None:
    """vcrpy's method, path, query and body matchers, in that order, stopping at the first
    that fails (its AssertionError says how the two requests differ).

    vcrpy runs every matcher of ``match_on`` against every recorded request of the cassette,
    for each request played (twice: is it there, then play it), and its body matcher parses
    both bodies and diffs them whenever they differ: quadratic in the cassette's length, and
    ~40% of the replay's CPU. One matcher that stops at the first difference decides exactly
    the same, and the cheap comparisons (method, path) rule out nearly every recorded request
    before a body is read. (vcrpy's "similar requests" hint on a request the cassette lacks
    counts passed matchers, so it has none to show; `error_reason` names the request.)

    Method and path are compared here as vcrpy's matchers compare them (an empty path is
    "/"), without a call into vcrpy for the five in six recorded requests they rule out; the
    query as vcrpy's ``Request.query``, sorted ``parse_qsl``, parsed once per query string
    (:func:`_sorted_query`) rather than twice per comparison.
    """
    if new.method != recorded.method:
        raise AssertionError(f"{new.method} != {recorded.method}")
    new_uri, recorded_uri = new.parsed_uri, recorded.parsed_uri
    if (new_uri.path or "/") != (recorded_uri.path or "/"):
        raise AssertionError(f"{new_uri.path} != {recorded_uri.path}")
    new_query, recorded_query = _sorted_query(new_uri.query), _sorted_query(recorded_uri.query)
    if new_query != recorded_query:
        raise AssertionError(f"{list(new_query)} != {list(recorded_query)}")
    from vcr import matchers

    matchers.body(new, recorded)


@functools.lru_cache(maxsize=4096)
def _sorted_query(query: str) -> tuple[tuple[str, str], ...]:
    """vcrpy's ``Request.query`` of a URL whose query string is ``query``: a pure function of
    that string, so it is parsed once, not on every comparison."""
    return tuple(sorted(parse_qsl(query)))


def with_request_matcher(recorder: Any) -> Any:
    """``recorder`` (a vcrpy VCR) able to use :func:`vcr_config`'s ``match_on``."""
    recorder.register_matcher(REQUEST_MATCHER, same_request)
    return recorder


def sensitive_pairs(settings: Settings) -> list[tuple[str, str]]:
    """(placeholder, value) for everything a cassette must not hold: every form of each key,
    and the origins (sandbox ports change every run, and Link headers repeat them)."""
    keys = Redactor(
        {
            CHARGEBEE_KEY_PLACEHOLDER: settings.chargebee_api_key.get_secret_value(),
            INVOICED_KEY_PLACEHOLDER: settings.invoiced_api_key.get_secret_value(),
        }
    )
    sensitive = [
        *keys.sensitive_data(),  # every form of each key: plain, URL-encoded, base64 Basic
        (RECORDED_CHARGEBEE_ORIGIN, origin_of(settings.chargebee_base_url)),
        (RECORDED_INVOICED_ORIGIN, origin_of(settings.invoiced_base_url)),
    ]
    return [(p, v) for p, v in sensitive if len(v) >= 4]


def _replace_in(value: Any, pairs: Sequence[tuple[str, str]]) -> Any:
    """``value`` with each pair's text replaced, pair after pair, in every str and bytes, dict
    key and value, list and tuple item at any depth: vcrpy's ``replace_text`` for all the pairs
    in one walk (``vcr.filters.replace_text`` walks the whole interaction once per pair)."""
    if isinstance(value, str):
        for text, replacement in pairs:
            value = value.replace(text, replacement)
        return value
    if isinstance(value, (bytes, bytearray)):
        data = bytes(value)
        for text, replacement in pairs:
            data = data.replace(text.encode("utf-8"), replacement.encode("utf-8"))
        return data
    if isinstance(value, BytesIO):
        return BytesIO(_replace_in(value.getvalue(), pairs))
    if isinstance(value, dict):
        return {_replace_in(k, pairs): _replace_in(v, pairs) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_replace_in(item, pairs) for item in value)
    return value


def restore_sensitive_data(
    sensitive: Sequence[tuple[str, str]],
) -> Callable[[Any, Any], tuple[Any, Any]]:
    """vcrpy's ``after_load_interaction`` hook that puts each value back for its placeholder in
    a loaded interaction: what ``filter_sensitive_data``'s restore does, in one walk over the
    request and one over the response instead of one per pair (its restore rebuilt each request
    and walked each response 12 times: ~a sixth of the replay's CPU). It rebuilds the request
    with vcrpy's private ``Request._to_dict``/``_from_dict``, as vcrpy's restore does: vcrpy
    is pinned below 9.5 in pyproject.toml for that."""
    pairs = [(placeholder, value) for placeholder, value in sensitive if placeholder and value]

    def restore(request: Any, response: Any) -> tuple[Any, Any]:
        from vcr.request import Request

        return Request._from_dict(_replace_in(request._to_dict(), pairs)), _replace_in(
            response, pairs
        )

    return restore


def hide_sensitive_data(
    sensitive: Sequence[tuple[str, str]],
) -> Callable[[Any, Any], tuple[Any, Any]]:
    """vcrpy's own ``before_save_interaction`` hook for ``sensitive`` (recording is exactly
    vcrpy's scrubbing), made when the first interaction is saved: a sign-off in sandbox or live
    mode, which records nothing, does not import vcrpy for it (~0.3 s of CPU)."""

    def hide(request: Any, response: Any) -> tuple[Any, Any]:
        from vcr.filters import sensitive_data_hooks

        hidden: tuple[Any, Any] = sensitive_data_hooks(sensitive)[0](request, response)
        return hidden

    return hide


def vcr_config(settings: Settings) -> dict[str, Any]:
    """One vcrpy configuration for every scenario (see DESIGN.md, Conventions: Cassettes).

    Placeholders are written by vcrpy's own ``filter_sensitive_data`` hide hook (recording is
    exactly vcrpy's scrubbing) and put back by :func:`restore_sensitive_data`, the same
    replacement done in one walk."""
    sensitive = sensitive_pairs(settings)
    return {
        "match_on": [REQUEST_MATCHER],  # method, path, query and body: `same_request`
        "filter_headers": [(h, None) for h in FILTERED_REQUEST_HEADERS],
        "before_save_interaction": hide_sensitive_data(sensitive),
        "after_load_interaction": restore_sensitive_data(sensitive),
        "before_record_request": drop_admin_requests,
        "before_record_response": strip_volatile_headers,
        "decode_compressed_response": True,
        "record_on_exception": False,
    }


def scenario_slug(name: str) -> str:
    return slug(name)


def refuse_recording_in_replay(mode: str, record_mode: str | None) -> str | None:
    """Why a run must not start: replay mode with a recording mode would rewrite (and so
    delete) the committed cassettes and then fail on the blocked network."""
    if mode == "replay" and record_mode not in (None, "none"):
        return (
            f"--record-mode={record_mode} cannot be used in replay mode (it would overwrite the "
            "committed cassettes): re-record with `make cassettes` (or --talkqa-mode=sandbox "
            f"--record-mode={record_mode})"
        )
    return None


def _display_path(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    return str(path)


@dataclass(frozen=True)
class CassetteRead:
    """One cassette as vcrpy's own loader read it: its requests and responses, or why it cannot
    be replayed (missing, unreadable, not a cassette)."""

    path: Path  # resolved, as :class:`CheckedCassettePersister` compares it
    interactions: tuple[list[Any], list[Any]] | None = None  # (requests, responses)
    problem: str | None = None


def read_cassette(path: Path) -> CassetteRead:
    """The cassette at ``path``, read with vcrpy's own loader, so what passes here is what vcrpy
    would load; replay hands this very read to vcrpy (:class:`CheckedCassettePersister`)
    instead of parsing the YAML a second time."""
    from vcr.persisters.filesystem import (
        CassetteDecodeError,
        CassetteNotFoundError,
        FilesystemPersister,
    )
    from vcr.serializers import yamlserializer

    resolved = path.resolve()
    shown = _display_path(path)
    fix = "re-record it with `make cassettes`"
    if not path.is_file():
        return CassetteRead(resolved, problem=f"{shown}: cassette missing: {fix}")
    try:
        requests, responses = FilesystemPersister.load_cassette(path, yamlserializer)
    except (CassetteNotFoundError, CassetteDecodeError, ValueError) as exc:
        problem = f"{shown}: not a readable cassette ({_first(exc)}): {fix}"
        return CassetteRead(resolved, problem=problem)
    except Exception as exc:  # YAML errors of every kind: the file is damaged
        problem = f"{shown}: not a readable cassette ({type(exc).__name__}: {_first(exc)}): {fix}"
        return CassetteRead(resolved, problem=problem)
    if not requests:
        return CassetteRead(resolved, problem=f"{shown}: cassette holds no interaction: {fix}")
    return CassetteRead(resolved, interactions=(requests, responses))


class CheckedCassettePersister:
    """A vcrpy persister (``VCR.register_persister``) that hands vcrpy, once, the cassette replay's
    check (:func:`read_cassette`) has just read, so each cassette's YAML is parsed once per
    scenario, not twice (a cassette parse is ~a tenth of the replay's CPU).

    Any other load (another path, another serializer, a second load) and every save go to
    ``fallback``, the persister pytest-recording registered. What vcrpy gets is what
    pytest-recording's persister returns for a cassette of ours: (requests, responses).
    """

    def __init__(self, fallback: Any, checked: CassetteRead | None) -> None:
        self._fallback = fallback
        self._checked = checked

    def load_cassette(self, cassette_path: Any, serializer: Any) -> Any:
        from vcr.serializers import yamlserializer

        checked, self._checked = self._checked, None
        if (
            checked is not None
            and checked.interactions is not None
            and serializer is yamlserializer
            and Path(cassette_path).resolve() == checked.path
        ):
            return checked.interactions
        return self._fallback.load_cassette(cassette_path, serializer)

    def save_cassette(self, cassette_path: Any, cassette_dict: Any, serializer: Any) -> None:
        self._fallback.save_cassette(cassette_path, cassette_dict, serializer=serializer)


def _first(exc: BaseException) -> str:
    text = str(exc).strip()
    return " ".join(text.splitlines()[0].split()) if text else type(exc).__name__


def evidence_failure(exc: BaseException) -> BaseException | None:
    """The replay machinery's own failure behind ``exc``, if any: a request the cassette has
    no answer for, or a connection replay mode blocked. Such a failure is talk-qa's evidence
    failing, never the system under test's, wherever in the chain it was raised."""
    from vcr.errors import CannotOverwriteExistingCassetteException

    seen: set[int] = set()
    error: BaseException | None = exc
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, CannotOverwriteExistingCassetteException):
            return error  # type: ignore[no-any-return]  # vcrpy is untyped
        if isinstance(error, RuntimeError) and str(error).startswith("Network is disabled"):
            return error  # pytest-recording's --block-network
        error = error.__cause__ or error.__context__
    return None


def error_reason(excinfo: Any, cassette: Path) -> tuple[str | None, str | None]:
    """(reason, where) of a scenario that talk-qa could not judge, when the exception says
    more than the test's last line: a request the cassette has no answer for."""
    if excinfo is None:
        return None, None
    from vcr.errors import CannotOverwriteExistingCassetteException

    error = evidence_failure(excinfo.value)
    shown = _display_path(cassette)
    if error is None:
        return None, None
    if not isinstance(error, CannotOverwriteExistingCassetteException):
        return (
            f"{shown}: replay needed the network ({_first(error)}): the cassette does not hold "
            "this scenario's traffic; re-record with `make cassettes`",
            shown,
        )
    request = getattr(error, "failed_request", None)
    what = f"{request.method} {urlsplit(request.uri).path}" if request is not None else "a request"
    return (
        f"{shown}: the cassette has no recorded answer for {what}: the code's traffic changed "
        "since it was recorded; re-record with `make cassettes`",
        shown,
    )


# --- judging ----------------------------------------------------------------------------------


@dataclass
class Judged:
    """The judge's view of one section after a run."""

    findings: list[Any]
    entities_checked: int
    pairs_checked: int = 0
    covered: bool = True
    reason: str | None = None
    source_ids: frozenset[str] = frozenset()  # the sources the judge read and judged
    uncompared: tuple[str, ...] = ()  # "source -> target" rows empty on both sides of every pair
    undemanded: tuple[str, ...] = ()  # sources the Talk rule does not demand, and why


def judge_section(
    spec: DataflowSpec,
    section: Section,
    systems: Any,
    *,
    checks: Collection[str],
    source_ids: Collection[str] | None = None,
    unlinked_sources: Collection[str] = (),
) -> Judged:
    """Check the whole spec through the systems' APIs; keep this section's findings of ``checks``.

    The whole spec is read because a reference is judged against the pairing of the section
    it refers to; reading it costs a few list calls.
    """
    from talkqa.checks import check_spec

    report = check_spec(spec, systems, source_ids=source_ids, unlinked_sources=unlinked_sources)
    findings = [
        f for f in report.findings if f.section_index == section.index and f.check in checks
    ]
    for result in report.sections:
        if result.index == section.index:
            return Judged(
                findings,
                result.sources_checked,
                result.pairs_checked,
                result.covered,
                result.reason,
                frozenset(result.source_ids),
                tuple(result.uncompared),
                tuple(result.undemanded),
            )
    return Judged(findings, 0)


def vacuity(
    judged: Judged,
    created: Collection[str],
    names: tuple[str, str],
    *,
    pairs: bool = False,
    rows: Collection[tuple[str, str]] | None = None,
) -> tuple[str, bool] | None:
    """Why a judgement without findings still proves nothing, and whether that is the system
    under test's fault; None when it proves something.

    No finding is a pass only if the judge looked at what the scenario made: every source it
    created was read and judged (a listing that lost them, a syncer that deleted them, a
    wrong live-mode filter would otherwise pass unseen); with ``pairs``, at least one linked
    pair was compared; with ``rows``, each table row held a value on some pair (a row empty
    on both sides reads as equal without any comparison).
    """
    src, tgt = names
    unseen = [i for i in created if i not in judged.source_ids]
    if unseen:  # the syncer may have deleted them, or talk-qa's reading lost them: unjudged
        return (
            f"not judged: {len(unseen)} of the {len(created)} {src} entities this scenario "
            f"created ({', '.join(unseen)}) are not among the {judged.entities_checked} the "
            "judge read, so nothing about them was checked",
            False,
        )
    if pairs and not judged.pairs_checked:
        return (
            f"missing: none of {judged.entities_checked} {src} entities has a linked {tgt}, "
            "so nothing could be compared",
            True,
        )
    if rows is not None:
        wanted = {f"{s} -> {t}" for s, t in rows}
        empty = [row for row in judged.uncompared if row in wanted]
        if empty:
            return (
                f"not compared: {', '.join(empty)} empty on both sides of all "
                f"{judged.pairs_checked} linked pairs, so equal without any comparison",
                False,
            )
    return None


@dataclass
class EditState:
    """What the edit step changed, for the step that checks the edit arrived."""

    edit: Edit
    side: str  # "source" | "target": where the edit was made
    binding: Binding  # the datatype of the edited entities
    written: dict[str, Any]  # edited entity id -> value written
    by_source: dict[str, str]  # source id -> edited entity id
    # a vendor-limit edit: the property row the other side cannot change, and (source id ->)
    # what the other side held before the edit
    blocked: PropertyMap | None = None
    other_before: dict[str, Any] = field(default_factory=dict)


def verify_edits(section: Section, state: EditState, systems: Any) -> list[Any]:
    """Findings for edits that were lost: overwritten where made, or (if mapped) not carried.

    Black box: reads both sides through the vendors' APIs after the system under test ran.
    """
    from talkqa.checks import read_snapshot
    from talkqa.compare import read_path, same

    snap = read_snapshot(section, systems, source_ids=list(state.by_source))
    pairing = snap.pairing()
    sources = {str(s["id"]): s for s in snap.sources}
    prop = next(
        (
            p
            for p in section.properties
            if (p.source_path if state.side == "source" else p.target_path) == state.edit.path
        ),
        None,
    )
    findings: list[Any] = []

    for source_id, edited_id in state.by_source.items():
        value = state.written[edited_id]
        here = sources.get(source_id) if state.side == "source" else pairing.linked(source_id)
        moved = _moved_link(section, pairing, source_id, edited_id, state.side)
        if moved is not None:
            findings.append(moved)
            continue
        if here is not None and read_path(here, state.edit.path) != value:
            note = f"the edit made in the {state.side} system was overwritten"
            paths = (state.edit.path, state.edit.path)
            now = read_path(here, state.edit.path)
            findings.append(_lost_edit(section, pairing, source_id, paths, value, now, note))
        if prop is None:
            continue
        there = pairing.linked(source_id) if state.side == "source" else sources.get(source_id)
        if there is None:
            continue  # the exists check reports it
        other_path = prop.target_path if state.side == "source" else prop.source_path
        actual = read_path(there, other_path)
        pair = (value, actual) if state.side == "source" else (actual, value)
        if not same(
            *pair, prop.data_type, source_path=prop.source_path, target_path=prop.target_path
        ):
            note = f"an edit in the {state.side} system did not reach the other side"
            findings.append(
                _lost_edit(
                    section, pairing, source_id, prop, value, actual, note, not_propagated=True
                )
            )
    return findings


def _moved_link(
    section: Section, pairing: Any, source_id: str, edited_id: str, side: str
) -> Any | None:
    """A target edit must leave its link in place: the source still linked to *that* target.

    A syncer that answers an edit by making a new target (and dropping the old one's claim)
    passes every other check, since the new target holds the current values.
    """
    from talkqa.checks import FindingKind

    now = pairing.linked_id(source_id)
    if side != "target" or now is None or now == edited_id:
        return None  # a source edit keeps its own id; no single target is the exists check's
    _src, tgt = section_names(section)
    return _edit_finding(
        section,
        kind=FindingKind.MISSING,
        source_id=source_id,
        target_id=edited_id,
        note=f"the edited {tgt} is no longer linked to it: {now} took its place",
    )


def _edit_finding(section: Section, *, check: str = PromiseId.EDITS, **fields: Any) -> Any:
    from talkqa.checks import Finding

    src, tgt = section_names(section)
    return Finding(
        section=" ".join(section.heading.split()),
        section_index=section.index,
        check=check,
        **{"source_label": src, "target_label": tgt, **fields},
    )


def _lost_edit(
    section: Section,
    pairing: Any,
    source_id: str,
    paths: PropertyMap | tuple[str, str],
    expected: Any,
    actual: Any,
    note: str,
    *,
    check: str = PromiseId.EDITS,
    not_propagated: bool = False,
) -> Any:
    """An edit that did not end where the rules say: a mismatch on the linked pair, or with
    ``not_propagated`` an edit that never reached the other side.

    ``paths`` is the property row the edit concerns, or (source path, target path).
    """
    from talkqa.checks import FindingKind

    if isinstance(paths, PropertyMap):
        paths = (paths.source_path, paths.target_path)
    return _edit_finding(
        section,
        check=check,
        kind=FindingKind.NOT_PROPAGATED if not_propagated else FindingKind.MISMATCH,
        source_id=source_id,
        target_id=pairing.linked_id(source_id),
        source_path=paths[0],
        target_path=paths[1],
        expected=expected,
        actual=actual,
        note=note,
    )


def verify_kept(section: Section, state: EditState, systems: Any) -> list[Any]:
    """A vendor-limit edit: the other side must still hold what it held before the edit.

    Black box: the side that cannot change the property is read back through its API.
    """
    from talkqa.checks import read_snapshot
    from talkqa.compare import read_path

    prop = state.blocked
    if prop is None:
        return []
    snap = read_snapshot(section, systems, source_ids=list(state.by_source))
    pairing = snap.pairing()
    sources = {str(s["id"]): s for s in snap.sources}
    there_path = prop.target_path if state.side == "source" else prop.source_path
    findings: list[Any] = []
    for source_id, before in state.other_before.items():
        there = pairing.linked(source_id) if state.side == "source" else sources.get(source_id)
        if there is None:
            continue  # the exists check reports it
        now = read_path(there, there_path)
        if now != before:
            note = f"{there_path} changed although its vendor forbids changing it"
            findings.append(
                _lost_edit(
                    section,
                    pairing,
                    source_id,
                    prop,
                    before,
                    now,
                    note,
                    check=PromiseId.VENDOR_LIMITS,
                )
            )
    return findings


@dataclass
class ConflictState:
    """Both sides of each linked pair edited since the last sync: what each wrote, and when."""

    prop: PropertyMap
    by_source: dict[str, str]  # source id -> target id
    source_written: dict[str, Any]  # source id -> value written in the source system
    target_written: dict[str, Any]  # source id -> value written in the target system
    source_at: dict[str, int | None]  # source id -> the source's updated_at after its edit
    target_at: dict[str, int | None]  # source id -> the target's updated_at after its edit


def winner(source_at: int | None, target_at: int | None) -> str:
    """The documented rule: the newest change wins; a tie (or unknown time) goes to the source."""
    if source_at is not None and target_at is not None and target_at > source_at:
        return "target"
    return "source"


def stamp(entity: Mapping[str, Any]) -> int | None:
    value = entity.get("updated_at")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def verify_conflict(section: Section, state: ConflictState, systems: Any) -> list[Any]:
    """Both sides must hold the winning edit of each pair (read through both APIs)."""
    from talkqa.checks import read_snapshot
    from talkqa.compare import read_path, same

    prop = state.prop
    snap = read_snapshot(section, systems, source_ids=list(state.by_source))
    pairing = snap.pairing()
    sources = {str(s["id"]): s for s in snap.sources}
    findings: list[Any] = []
    for source_id in state.by_source:
        side = winner(state.source_at.get(source_id), state.target_at.get(source_id))
        value = (state.source_written if side == "source" else state.target_written)[source_id]
        win_path = prop.source_path if side == "source" else prop.target_path
        moved = _moved_link(section, pairing, source_id, state.by_source[source_id], "target")
        if moved is not None:
            findings.append(moved)
            continue
        source, target = sources.get(source_id), pairing.linked(source_id)
        if source is None or target is None:
            continue  # the exists check reports it
        checks = (
            ("source", read_path(source, prop.source_path), prop.source_path),
            ("target", read_path(target, prop.target_path), prop.target_path),
        )
        for where, actual, path in checks:
            if not same(value, actual, prop.data_type, source_path=win_path, target_path=path):
                note = (
                    f"both sides were edited; the {side}'s edit is the newest "
                    f"(ties go to the source) but the {where} holds another value"
                )
                findings.append(
                    _lost_edit(
                        section,
                        pairing,
                        source_id,
                        prop,
                        value,
                        actual,
                        note,
                        check=PromiseId.CONFLICTS,
                    )
                )
    return findings


def unreported_conflicts(
    report: RunReport, section_index: int, source_ids: Collection[str]
) -> list[str]:
    """Source ids whose conflict the run report does not name."""
    section = report.section(section_index)
    named = {c.source_id for c in section.conflicts} if section is not None else set()
    return [sid for sid in source_ids if sid not in named]


def unreported_not_carried(section: Section, state: EditState, report: RunReport) -> list[Any]:
    """A vendor-limit edit the run report does not name as not carried over: the syncer kept
    quiet about an edit it could not carry (a finding of the vendor-limits promise)."""
    from talkqa.checks import FindingKind

    reported = report.section(section.index)
    named = {n.entity_id for n in reported.not_carried_over} if reported is not None else set()
    prop = state.blocked
    findings = []
    for source_id, edited_id in state.by_source.items():
        if edited_id in named:
            continue
        findings.append(
            _edit_finding(
                section,
                check=PromiseId.VENDOR_LIMITS,
                kind=FindingKind.NOT_REPORTED,
                source_id=source_id,
                target_id=None if state.side == "source" else edited_id,
                note=(
                    f"the {state.side} edit of {state.edit.path} cannot be carried over "
                    f"({prop.source_path if prop else '?'} -> {prop.target_path if prop else '?'})"
                    " but the run report does not name it as not carried over"
                ),
            )
        )
    return findings


def verify_merged(section: Section, existing: Mapping[str, str], systems: Any) -> list[Any]:
    """Each source must be linked to the target that existed before the sync, and to no other.

    The judge pairs by link claim and by the section's merge properties, so a syncer that
    created a second target (claiming the source or not) shows up here as a duplicate.
    """
    from talkqa.checks import FindingKind, read_snapshot
    from talkqa.links import entity_id

    snap = read_snapshot(section, systems, source_ids=list(existing))
    pairing = snap.pairing()
    _src, tgt = section_names(section)
    findings: list[Any] = []
    for source_id, target_id in existing.items():
        typed = [t for t in pairing.targets_of(source_id) if snap.target.holds(t)]
        ids = [entity_id(t) for t in typed]
        if ids == [target_id]:
            continue
        others = [i for i in ids if i != target_id]
        findings.append(
            _edit_finding(
                section,
                check=PromiseId.MERGE,
                kind=FindingKind.DUPLICATE if others else FindingKind.MISSING,
                source_id=source_id,
                target_id=target_id,
                note=(
                    f"linked to {', '.join(others)} besides the existing {tgt} it matches"
                    if others and target_id in ids
                    else f"linked to {', '.join(others)} instead of the existing {tgt} it matches"
                    if others
                    else f"not linked to the existing {tgt} it matches"
                ),
            )
        )
    return findings


def rerun_findings(section: Section, changes: Iterable[Change]) -> list[Any]:
    """written_on_rerun findings: one per entity the second run created, deleted or wrote.

    An entity of the section's source system is named as a source, any other as a target,
    each with its own resource as label (the second run may write outside the section).
    """
    from talkqa.checks import FindingKind

    source_system = section.source.system.strip()
    findings: list[Any] = []
    for change in changes:
        is_source = change.system.casefold() == source_system.casefold()
        system = source_system if is_source else section.target.system.strip()
        label = f"{system or change.system} {change.resource}"
        written = change.what == "written"
        findings.append(
            _edit_finding(
                section,
                check=PromiseId.IDEMPOTENCE,
                kind=FindingKind.WRITTEN_ON_RERUN,
                source_label=label if is_source else "",
                target_label="" if is_source else label,
                source_id=change.id if is_source else None,
                target_id=None if is_source else change.id,
                target_path="updated_at" if written else None,
                expected=change.before[0] if written and change.before else None,
                actual=change.after[0] if written and change.after else None,
                note=f"{change.what} by the second run",
            )
        )
    return findings


_READS = frozenset({"GET", "HEAD"})


def counted_writes(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    """'system METHOD /route' -> writes the sandbox counted between two of its request counts
    (keys as the sandbox's ``/__admin/stats`` names them)."""
    writes: dict[str, int] = {}
    for key, count in sorted(after.items()):
        parts = key.split(" ", 2)
        if len(parts) == 3 and parts[1].upper() not in _READS and count > before.get(key, 0):
            writes[key] = count - before.get(key, 0)
    return writes


def written_findings(section: Section, writes: Mapping[str, int]) -> list[Any]:
    """written_on_rerun findings from the sandbox's own request counts: a second run's write
    that changed nothing visible (same values, in the same second as the entity's last write:
    the vendors' second-granular ``updated_at`` cannot show it, the sandbox can)."""
    from talkqa.checks import FindingKind

    return [
        _edit_finding(
            section,
            check=PromiseId.IDEMPOTENCE,
            kind=FindingKind.WRITTEN_ON_RERUN,
            note=f"the sandbox answered {count} {route} request(s) during the second run",
        )
        for route, count in writes.items()
    ]


def unwatched(
    source: Binding,
    created: Collection[str],
    target: Binding,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
) -> str | None:
    """Why two idempotence snapshots prove nothing, or None.

    Equal snapshots are a pass only if they watched the scenario's entities: each source it
    created and at least one entity of the section's target resource, in both snapshots
    (keys are 'system resource id', as ``talkqa.samples.snapshot`` writes them).
    """
    keys = (f"{source.system} {source.resource} {i}" for i in created)
    unseen = [key for key in keys if key not in before or key not in after]
    if unseen or not created:
        return (
            f"not judged: the snapshots of the second run miss {len(unseen)} of the "
            f"{len(created)} entities this scenario created ({', '.join(unseen)})"
        )
    prefix = f"{target.system} {target.resource} "
    if not any(k.startswith(prefix) for k in before) or not any(
        k.startswith(prefix) for k in after
    ):
        return (
            f"not judged: the snapshots of the second run hold no {target.system} "
            f"{target.resource}, so a write there could not be seen"
        )
    return None


def failure_text(findings: Iterable[Any], limit: int = 20) -> str:
    """The one-line messages of the findings, a scenario's failure text."""
    items = list(findings)
    lines = [str(f.message) for f in items[:limit]]
    if len(items) > limit:
        lines.append(f"... and {len(items) - limit} more findings (see the Allure attachment)")
    return "\n".join(lines)


# --- outcomes (read by the sign-off) -----------------------------------------------------------


@dataclass
class ScenarioRecord:
    """What a scenario tells its outcome: built up by the steps, written once after the test."""

    dataflow: str = ""
    scenario: str = ""
    section_index: int = 0
    section: str = ""
    promise: str = ""
    entities_checked: int = 0
    findings: list[Any] = field(default_factory=list, repr=False)
    reason: str | None = None
    # set only by Scene.broken: the system under test broke the promise (any other failure
    # of a scenario is talk-qa's, an error)
    broken: bool = False
    qualifier: str | None = None  # what a passing scenario proves less than its promise
    vendor_impossible: list[str] = field(default_factory=list)  # no_api texts, see outcome
    created: Created = field(default_factory=Created, repr=False)
    last_run: Any = field(default=None, repr=False)  # the latest RunSummary of the sut
    latency_s: float | None = None  # a service: change to first observation that held
    # a service: each changed source entity's id -> seconds until no finding named it
    entity_latency_s: dict[str, float] = field(default_factory=dict)
    # a service whose promise never held: "did not hold within 60s" (kept beside its findings)
    over_time: str | None = None


def outcome_of(
    record: ScenarioRecord, outcome: str, reason: str | None, where: str | None = None
) -> ScenarioOutcome:
    """A finished test as the one typed outcome (``outcome`` is pytest's: passed, failed or
    skipped; a failure is the system under test's only when a step said it broke a promise)."""
    if outcome == "passed":
        status = Status.PASSED
    elif outcome == "skipped":
        status = Status.SKIPPED
    else:
        status = Status.FAILED if record.broken else Status.ERROR
    if status is Status.PASSED:
        reason = record.qualifier
    elif status is Status.FAILED and reason is None:
        reason = record.over_time
    return ScenarioOutcome(
        dataflow=record.dataflow,
        section_index=record.section_index,
        section=record.section,
        promise=record.promise,
        scenario=record.scenario,
        status=status,
        entities_checked=record.entities_checked,
        findings=record.findings if status is Status.FAILED else [],
        reason=reason,
        where=where,
        latency_s=record.latency_s if status is Status.PASSED else None,
        entity_latency_s=record.entity_latency_s if status is Status.PASSED else {},
        vendor_impossible=record.vendor_impossible
        if status in (Status.PASSED, Status.SKIPPED)
        else [],
    )


_SKIP_PREFIX = re.compile(r"^Skipped:\s*")


def skip_reason(longrepr: Any) -> str | None:
    """The reason text of a skipped test's report (pytest keeps it as (file, line, text))."""
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return _SKIP_PREFIX.sub("", str(longrepr[2]))
    return None


def append_outcome(
    path: Path, outcome: ScenarioOutcome, redact: Callable[[str], str] = str
) -> None:
    """One JSON line per outcome; ``redact`` hides every form of a key (a syncer's output
    quoted in a reason may hold its Authorization header)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(redact(outcome.model_dump_json()) + "\n")


class Shown:
    """A value Allure shows as written: allure-commons quotes every str ('replay')."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def all_bindings(spec: DataflowSpec) -> list[Binding]:
    """Every vendor collection a checklist touches that its vendor's API can read, once each,
    in checklist order (a Chargebee business entity cannot be read: its sections are
    vendor-impossible, and a snapshot cannot include it)."""
    from talkqa.systems.catalog import bind
    from talkqa.systems.no_api import Operation, no_api

    found: list[Binding] = []
    for sec in spec.sections:
        for ref in (sec.source, sec.target):
            binding = bind(ref)
            if binding is None or binding in found:
                continue
            if no_api(binding.system, binding.resource, Operation.READ) is None:
                found.append(binding)
    return found


def last_line(text: str) -> str:
    """A failure's last non-blank line: the reason an outcome gives when no finding does."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:500] if lines else "failed"
