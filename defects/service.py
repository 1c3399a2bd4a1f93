"""Service defects: webhook-driven syncers with one fault in how they take deliveries.

A harness for services must catch the faults only services have. Each entry is an
event-by-event syncer built from the reference sync: a delivery names one entity, and
processing it is one reference-sync run over that entity's section that sees only that
entity (every other source hidden by a `defects.inject.Tap`) with a link store of its own
(targets are found again by their `metadata.chargebee_id`). The fault is in how deliveries
are taken: how many times each is processed (0: dropped; 2: processed twice), and whether
processing looks at existing links at all. None of them reads the events feeds, so nothing
dropped is ever caught up. Run with `python -m defects.service NAME` against the bundled
sandboxes: it listens on 127.0.0.1 (a free port), registers itself as both sandboxes'
webhook endpoint, and serves until Ctrl-C; `talkqa signoff --sut-service` must say NO-GO
naming the entry's promise.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from defects.catalogue import CONTACTS, FIRST, PERSON, hide_claimed
from defects.inject import Here, Tap, TappedSystems
from talkqa.promises.ids import PromiseId
from talkqa.systems.base import Json
from talkqa.systems.catalog import bind

# Processings of a delivery: (event type, its number among that type this generation) -> n.
Takes = Callable[[str, int], int]


def _created(kind: str) -> bool:
    return kind.endswith(("_created", ".created"))


@dataclass(frozen=True)
class ServiceDefect:
    name: str
    promise: PromiseId
    checklist: str  # a shipped checklist whose scenarios catch it
    scenarios: str  # the `-k` expression of those scenarios
    description: str
    takes: Takes
    blind: bool = False  # processing never looks at links: it creates a person every time
    # a taken delivery wakes a pass of the reference service (one store, every section)
    # instead of processing the one entity it names
    passes: bool = False

    @property
    def command(self) -> list[str]:
        return [sys.executable, "-m", "defects.service", self.name]


# The same event-by-event syncer without a fault: GO on every entry's scenarios, so a
# catch is never the event-by-event design's own doing.
SERVICE_CONTROL = ServiceDefect(
    name="control",
    promise=PromiseId.EXISTS,
    checklist=FIRST,
    scenarios="",
    description="the event-by-event syncer without a fault: the control, must get GO",
    takes=lambda _kind, _nth: 1,
)

SERVICE_CATALOGUE: tuple[ServiceDefect, ...] = (
    ServiceDefect(
        name="drops-a-webhook",
        promise=PromiseId.EXISTS,
        checklist=FIRST,
        scenarios="Customer and exactly",
        description="drops the first customer_created delivery after each reset and never "
        "catches up from the events feed: that customer never reaches Invoiced",
        takes=lambda kind, nth: 0 if kind == "customer_created" and nth == 1 else 1,
    ),
    ServiceDefect(
        name="processes-twice",
        promise=PromiseId.EXISTS,
        checklist=FIRST,
        scenarios="Customer and exactly",
        description="processes each customer_created delivery twice without deduplicating "
        "on the event id, and creates a person each time: two persons per customer",
        # it listens to Chargebee only: its own persons' Invoiced events would feed it forever
        takes=lambda kind, _nth: 2 if kind == "customer_created" else 0 if "." in kind else 1,
        blind=True,
    ),
    ServiceDefect(
        name="only-created",
        promise=PromiseId.EDITS,
        checklist=CONTACTS,
        scenarios="edit and email and reaches",
        description="the reference service, but it reacts only to *_created deliveries "
        "(and never reads the events feeds): an edit on either side never travels",
        takes=lambda kind, _nth: 1 if _created(kind) else 0,
        passes=True,
    ),
)


def find_service(name: str) -> ServiceDefect | None:
    return next((d for d in (SERVICE_CONTROL, *SERVICE_CATALOGUE) if d.name == name), None)


# --- what a delivery names ----------------------------------------------------------------------

# Chargebee's event content key, or Invoiced's object type -> the checklist's source datatype
_SOURCES = {"customer": "Customer", "item": "Item", "order": "Order", "invoice": "Order"}
_COLLECTIONS = {"Customer": "customers", "Item": "items", "Order": "orders"}


def subject(system: str, event: dict[str, Any]) -> tuple[str, str] | None:
    """(source datatype, Chargebee source id) a delivery is about; None: nothing synced."""
    if system == "chargebee":
        content = event.get("content") or {}
        for key, datatype in _SOURCES.items():
            if key in content and key != "invoice":
                return datatype, str(content[key]["id"])
        return None
    record = (event.get("data") or {}).get("object") or {}
    target = _SOURCES.get(str(record.get("object")))
    claimed = (record.get("metadata") or {}).get("chargebee_id")
    return (target, str(claimed)) if target and claimed else None


def only(source_id: str) -> Callable[[Here, list[Json]], list[Json]]:
    def hide(_here: Here, found: list[Json]) -> list[Json]:
        return [e for e in found if str(e.get("id")) == source_id]
    return hide


# --- the syncer ----------------------------------------------------------------------------------


class EventSyncer:
    """Processes deliveries one at a time, as its defect takes them."""

    def __init__(self, defect: ServiceDefect, spec: Any, systems: Callable[[str], Any],
                 folder: Path, generation: Callable[[], int | None]) -> None:
        self.defect = defect
        self.spec = spec
        self.systems = systems
        self.folder = folder
        self.generation = generation
        self.lock = threading.Lock()
        self.seen: Counter[str] = Counter()
        self.current: int | None = None
        self.runs = 0

    def __call__(self, system: str, event: dict[str, Any]) -> None:
        kind = str(event.get("event_type") if system == "chargebee" else event.get("type"))
        with self.lock:
            generation = self.generation()
            if generation != self.current:  # a reset: nothing it knew exists any more
                self.current, self.seen = generation, Counter()
            self.seen[kind] += 1
            about = subject(system, event)
            if about is None:
                return
            for _ in range(self.defect.takes(kind, self.seen[kind])):
                self._process(*about)

    def _process(self, datatype: str, source_id: str) -> None:
        from reference_sync import run_sync
        from reference_sync.linkstore import LinkStore

        sections = [s for s in self.spec.sections
                    if (b := bind(s.source)) is not None and b.key == ("chargebee", datatype)]
        if not sections:
            return
        taps = [Tap("chargebee", _COLLECTIONS[datatype], hide=only(source_id))]
        if self.defect.blind:
            taps.append(Tap(PERSON[0], "customers", hide=hide_claimed, keyless=True))
        self.runs += 1
        store = self.folder / f"{self.current}-{self.runs}.sqlite"  # its own, every time
        # each processing writes with keys of its own: a processing run twice is two writes
        systems = self.systems(secrets.token_hex(8))
        with LinkStore(store) as links:
            run_sync(self.spec.model_copy(update={"sections": sections}),
                     TappedSystems(systems, tuple(taps)), links)


def main(argv: Sequence[str] | None = None) -> int:
    """Exit 130 on Ctrl-C (it serves until then), 2 on a usage or configuration error."""
    from reference_sync import service as svc
    from talkqa.dataflow.rst import load
    from talkqa.errors import UserError
    from talkqa.systems.connect import Systems
    from talkqa.systems.settings import Settings
    from talkqa.systems.wire import vendor_client

    parser = argparse.ArgumentParser(prog="python -m defects.service")
    parser.add_argument("name", help=", ".join(
        d.name for d in (SERVICE_CONTROL, *SERVICE_CATALOGUE)))
    args = parser.parse_args(argv)
    defect = find_service(args.name)
    try:
        if defect is None:
            raise UserError(f"defects.service: no entry named {args.name!r}")
        settings = Settings.from_env()
        admin = svc.sandbox_admin(settings.chargebee_base_url)
        if admin is None:
            raise UserError("defects.service: runs against the bundled sandboxes only")
    except UserError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    key = settings.chargebee_api_key.get_secret_value()
    spec = load(Path(__file__).resolve().parents[1] / defect.checklist)
    auth = svc.WebhookAuth("defect", secrets.token_hex(8), secrets.token_hex(8))
    with (vendor_client(60.0) as client,
          tempfile.TemporaryDirectory(prefix="talkqa-service-defect-") as folder):
        def systems(seed: str) -> Any:
            return Systems.connect(settings, client, idempotency_seed=seed)

        def generation() -> int | None:
            return svc.sandbox_generation(client, admin, key)

        wakeups = svc.Wakeups()
        on_event: Callable[[str, dict[str, Any]], None]
        if defect.passes:
            def on_event(system: str, event: dict[str, Any]) -> None:
                kind = str(event.get("event_type") if system == "chargebee" else event.get("type"))
                if defect.takes(kind, 1):
                    wakeups.poke(kind)
        else:
            on_event = EventSyncer(defect, spec, systems, Path(folder), generation)
        with svc.WebhookListener(0, auth, wakeups, on_event=on_event) as listener:
            svc.register_sandbox_webhooks(client, admin, key, listener)
            print(f"{defect.name}: listening on {listener.url('chargebee')}", file=sys.stderr,
                  flush=True)
            try:
                if defect.passes:
                    _serve_passes(spec, systems(secrets.token_hex(8)), Path(folder), wakeups,
                                  generation)
                else:
                    wakeups.wait(None)
            except KeyboardInterrupt:
                return 130
    return 0


def _serve_passes(spec: Any, systems: Any, folder: Path, wakeups: Any,
                  generation: Callable[[], int | None]) -> None:
    """The reference service's loop on the deliveries the defect takes (no feeds check)."""
    from reference_sync import run_sync
    from reference_sync.linkstore import LinkStore
    from reference_sync.service import Service

    def run_pass(fresh: bool) -> Any:
        store = folder / f"passes-{generation()}.sqlite"  # a reset: a store of its own
        with LinkStore(store) as links:
            return run_sync(spec, systems, links)

    Service(run_pass, wakeups, interval=3600.0, webhooks=True, generation=generation).serve()


if __name__ == "__main__":
    sys.exit(main())
