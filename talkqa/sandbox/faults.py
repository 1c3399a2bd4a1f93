"""Fault injection: which requests fail, slow down or lose their connection, and how.

SPEC syntax (the `--faults` option, `{"spec": ...}` on `POST /__admin/faults`)::

    SPEC   := RULE (';' RULE)*
    RULE   := TARGET '=' KIND (',' OPTION)*  |  PRESET
    TARGET := SYSTEM ['.' METHOD] [ROUTE]      SYSTEM: chargebee | invoiced | *
                                               METHOD: GET, POST, PATCH, DELETE, WEBHOOK or *
                                               ROUTE: a glob on the path below the vendor base,
                                               matched against the concrete path and the route
                                               template (`/customers/{id}`); default: every route
                                               (WEBHOOK: `/EVENT_TYPE`, e.g. `/customer_*`)
    KIND   := 429 | 500 | 503 | latency | drop_before | drop_after | rpm | concurrency
            | duplicate | lose                 the last two: WEBHOOK deliveries only
    OPTION := retry_after=N|auto    429, 503, rpm, concurrency (auto, rpm only: seconds until
                                    the rolling window frees a slot); absent: no Retry-After
            | times=N               fire at most N times (default: always)
            | skip=N                let the first N matching requests through
            | ms=N                  latency: added delay in milliseconds
            | limit=N               rpm: requests per rolling minute; concurrency: in flight
            | p=F                   fire on each matching request with probability F (0 < F
                                    <= 1), drawn from the rule's own seeded RNG; default 1
            | seed=N                that RNG's seed (default 0): the same requests in the same
                                    order meet the same faults on every run

PRESET: `chargebee-test-site` = `chargebee=rpm,limit=150;chargebee.GET=concurrency,limit=50;
chargebee.POST=concurrency,limit=50` (Chargebee's documented test-site limits; whether its 429s
carry Retry-After is unconfirmed, so the preset sends none and clients must back off anyway).

Examples: `chargebee.POST/customers=429,retry_after=2,times=1`, `invoiced=latency,ms=150`,
`*=503,p=0.1,seed=7,retry_after=1` (one request in ten, at random but repeatably),
`chargebee=rpm,limit=150`, `chargebee.GET=concurrency,limit=50`,
`invoiced.PATCH/items/*=drop_after`.

WEBHOOK targets the sandbox's webhook deliveries (`talkqa.sandbox.webhooks`), not requests:
`latency` delays a delivery by `ms`, `duplicate` delivers it twice, `lose` never delivers it
(no retry: the event stays in the events feed, where a syncer can still catch up), e.g.
`chargebee.WEBHOOK/customer_changed=lose,times=1`, `invoiced.WEBHOOK=duplicate,p=0.5`.
Request kinds never match a WEBHOOK target, nor WEBHOOK kinds a request.

`drop_before` closes the connection before the write is applied, `drop_after` after: the
client cannot tell them apart, which is exactly what makes retries of non-idempotent writes
dangerous. `rpm` and `concurrency` answer 429 like a Chargebee test site (150/min, 50 in flight).
"""

from __future__ import annotations

import fnmatch
import math
import random
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from talkqa.errors import UserError

KINDS = ("429", "500", "503", "latency", "drop_before", "drop_after", "rpm", "concurrency",
         "duplicate", "lose")
WEBHOOK = "WEBHOOK"  # the pseudo-method of webhook deliveries
WEBHOOK_KINDS = ("latency", "duplicate", "lose")
SYSTEMS = ("chargebee", "invoiced", "*")
PRESETS = {
    "chargebee-test-site": (
        "chargebee=rpm,limit=150;chargebee.GET=concurrency,limit=50;"
        "chargebee.POST=concurrency,limit=50"
    ),
}
_TARGET = re.compile(r"^(chargebee|invoiced|\*)(?:\.([A-Za-z]+|\*))?(/\S*)?$")


@dataclass
class FaultRule:
    """One configured fault; `seen`/`fired` count matching requests at run time."""

    system: str = "*"
    method: str = "*"
    route: str = "*"
    kind: str = "500"
    retry_after: int | str | None = None
    times: int | None = None
    skip: int = 0
    ms: int = 0
    limit: int = 0
    p: float = 1.0
    seed: int = 0
    seen: int = field(default=0, compare=False)
    fired: int = field(default=0, compare=False)
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        self.reseed()

    def reseed(self) -> None:
        """Restart the rule's draws (a reset of the sandbox repeats the same faults)."""
        self.rng = random.Random(f"fault:{self.seed}")

    def draw(self) -> bool:
        """Whether this matching request is one of the chosen ones (p=1: always, no draw)."""
        return self.p >= 1.0 or self.rng.random() < self.p

    def matches(self, system: str, method: str, path: str, template: str) -> bool:
        if self.system not in ("*", system):
            return False
        if self.method not in ("*", method):
            return False
        if (method == WEBHOOK) != (self.method == WEBHOOK):
            return False  # `*=latency` slows requests, not deliveries
        if self.route == "*":
            return True
        return fnmatch.fnmatchcase(path, self.route) or fnmatch.fnmatchcase(template, self.route)

    def describe(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "method": self.method,
            "route": self.route,
            "kind": self.kind,
            "retry_after": self.retry_after,
            "times": self.times,
            "skip": self.skip,
            "ms": self.ms,
            "limit": self.limit,
            "p": self.p,
            "seed": self.seed,
            "fired": self.fired,
        }


def rule_from_mapping(data: dict[str, Any], default_system: str = "*") -> FaultRule:
    """The JSON form of a rule (`POST /__admin/faults {"rules": [...]}`)."""
    known = {"system", "method", "route", "kind", "retry_after", "times", "skip", "ms", "limit",
             "p", "seed"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise UserError(f"fault rule: unknown field(s) {', '.join(unknown)}; use {sorted(known)}")
    options = {k: str(v) for k, v in data.items() if k not in ("system", "method", "route", "kind")}
    return _build(
        str(data.get("system", default_system)),
        str(data.get("method", "*")),
        str(data.get("route", "*")),
        str(data.get("kind", "")),
        options,
        where="fault rule",
    )


def parse_spec(spec: str) -> list[FaultRule]:
    """Parse the SPEC syntax above; a bad rule is a one-line UserError naming it."""
    rules: list[FaultRule] = []
    for raw in spec.split(";"):
        text = raw.strip()
        if not text:
            continue
        if text in PRESETS:
            rules += parse_spec(PRESETS[text])
            continue
        if "=" not in text:
            raise UserError(
                f"fault rule {text!r}: expected TARGET=KIND (e.g. chargebee=500) or a preset "
                f"({', '.join(PRESETS)})"
            )
        target, _, rest = text.partition("=")
        match = _TARGET.match(target.strip())
        if match is None:
            raise UserError(
                f"fault rule {text!r}: target must be SYSTEM[.METHOD][/route], "
                "SYSTEM one of chargebee, invoiced, *"
            )
        kind, *option_texts = [part.strip() for part in rest.split(",")]
        options: dict[str, str] = {}
        for option in option_texts:
            name, sep, value = option.partition("=")
            if not sep:
                raise UserError(f"fault rule {text!r}: option {option!r} must be NAME=VALUE")
            options[name.strip()] = value.strip()
        rules.append(
            _build(
                match.group(1),
                (match.group(2) or "*"),
                match.group(3) or "*",
                kind,
                options,
                where=f"fault rule {text!r}",
            )
        )
    return rules


def _build(
    system: str, method: str, route: str, kind: str, options: dict[str, str], where: str
) -> FaultRule:
    if system not in SYSTEMS:
        raise UserError(f"{where}: system {system!r} is not one of {', '.join(SYSTEMS)}")
    if kind not in KINDS:
        raise UserError(f"{where}: kind {kind!r} is not one of {', '.join(KINDS)}")
    rule = FaultRule(system=system, method=method.upper(), route=route, kind=kind)
    if rule.method == WEBHOOK and kind not in WEBHOOK_KINDS:
        raise UserError(f"{where}: a WEBHOOK target takes {', '.join(WEBHOOK_KINDS)} only")
    if kind in ("duplicate", "lose") and rule.method != WEBHOOK:
        raise UserError(f"{where}: kind {kind} needs a WEBHOOK target, e.g. chargebee.WEBHOOK")
    for name, value in options.items():
        if value in ("None", ""):
            continue
        if name == "retry_after":
            if kind not in ("429", "503", "rpm", "concurrency"):
                raise UserError(
                    f"{where}: retry_after applies to 429, 503, rpm and concurrency only"
                )
            if value == "auto" and kind != "rpm":
                raise UserError(f"{where}: retry_after=auto applies to kind rpm only")
            rule.retry_after = "auto" if value == "auto" else _int(value, name, where)
        elif name in ("times", "skip", "ms", "limit", "seed"):
            setattr(rule, name, _int(value, name, where))
        elif name == "p":
            rule.p = _probability(value, where)
        else:
            raise UserError(
                f"{where}: unknown option {name!r} (retry_after, times, skip, ms, limit, p, seed)"
            )
    rule.reseed()
    if kind in ("rpm", "concurrency") and rule.limit <= 0:
        raise UserError(f"{where}: kind {kind} needs limit=N with N >= 1")
    if kind == "latency" and rule.ms <= 0:
        raise UserError(f"{where}: kind latency needs ms=N with N >= 1")
    return rule


def _probability(value: str, where: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise UserError(f"{where}: p must be a number, got {value!r}") from None
    if not 0.0 < number <= 1.0:
        raise UserError(f"{where}: p must be above 0 and at most 1, got {value!r}")
    return number


def _int(value: str, name: str, where: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise UserError(f"{where}: {name} must be an integer, got {value!r}") from None
    if number < 0:
        raise UserError(f"{where}: {name} must not be negative")
    return number


@dataclass
class Decision:
    """What the app must do to one request; `held` must be released when it ends."""

    latency_ms: int = 0
    status: int | None = None
    retry_after: int | None = None
    drop: str | None = None  # "before" | "after"
    copies: int = 1  # webhook deliveries: 2 when duplicated, 0 when lost
    fired: list[str] = field(default_factory=list)
    held: list[FaultRule] = field(default_factory=list)


class FaultEngine:
    """Thread-safe: both uvicorn threads consult it; wall time only for rpm windows."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.rules: list[FaultRule] = []
        self._windows: dict[int, deque[float]] = {}
        self._inflight: dict[int, int] = {}

    def configure(self, rules: list[FaultRule], replace: bool = True) -> None:
        with self._lock:
            if replace:
                self.rules = []
                self._windows.clear()
                self._inflight.clear()
            self.rules.extend(rules)

    def clear(self) -> None:
        self.configure([], replace=True)

    def decide(self, system: str, method: str, path: str, template: str) -> Decision:
        decision = Decision()
        with self._lock:
            for rule in self.rules:
                if not rule.matches(system, method, path, template):
                    continue
                rule.seen += 1
                if rule.seen <= rule.skip:
                    continue
                if rule.times is not None and rule.fired >= rule.times:
                    continue
                if not rule.draw():
                    continue
                if self._apply(rule, decision):
                    rule.fired += 1
                    decision.fired.append(rule.kind)
        return decision

    def _apply(self, rule: FaultRule, decision: Decision) -> bool:
        failing = decision.status is not None or decision.drop is not None
        if rule.kind == "latency":
            decision.latency_ms += rule.ms
            return True
        if rule.kind in ("duplicate", "lose"):
            if decision.copies != 1:
                return False
            decision.copies = 2 if rule.kind == "duplicate" else 0
            return True
        if failing:
            return False
        if rule.kind in ("429", "500", "503"):
            decision.status = int(rule.kind)
            decision.retry_after = rule.retry_after if isinstance(rule.retry_after, int) else None
            return True
        if rule.kind in ("drop_before", "drop_after"):
            decision.drop = rule.kind.removeprefix("drop_")
            return True
        if rule.kind == "rpm":
            return self._rpm(rule, decision)
        return self._concurrency(rule, decision)

    def _rpm(self, rule: FaultRule, decision: Decision) -> bool:
        now = time.monotonic()
        window = self._windows.setdefault(id(rule), deque())
        while window and now - window[0] >= 60.0:
            window.popleft()
        if len(window) < rule.limit:
            window.append(now)
            return False
        decision.status = 429
        if rule.retry_after == "auto":
            decision.retry_after = max(1, math.ceil(60.0 - (now - window[0])))
        elif isinstance(rule.retry_after, int):
            decision.retry_after = rule.retry_after
        return True

    def _concurrency(self, rule: FaultRule, decision: Decision) -> bool:
        key = id(rule)
        if self._inflight.get(key, 0) >= rule.limit:
            decision.status = 429
            decision.retry_after = rule.retry_after if isinstance(rule.retry_after, int) else None
            return True
        self._inflight[key] = self._inflight.get(key, 0) + 1
        decision.held.append(rule)
        return False

    def release(self, decision: Decision) -> None:
        with self._lock:
            for rule in decision.held:
                key = id(rule)
                if key in self._inflight:
                    self._inflight[key] = max(0, self._inflight[key] - 1)

    def describe(self) -> list[dict[str, Any]]:
        with self._lock:
            return [rule.describe() for rule in self.rules]
