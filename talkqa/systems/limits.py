"""One vendor account's rate limit and concurrency cap, shared by every request of a run.

Vendors count requests per account, not per connection: Chargebee test sites allow 150 a
minute and about 50 in flight, whatever thread or client sends them. So the limiter is keyed
by account (system, base URL, a fingerprint of the key) in a ``Limiters`` registry, and every
method is thread-safe: the sync calls connectors from a thread pool over one httpx client.

Pacing is GCRA (pyrate-limiter's closed-form step): requests leave evenly spaced at
``HEADROOM`` of the configured rate, with a burst of ``burst_for(limit)`` so a thread that
woke late can catch up instead of losing its slot. Any rolling minute then holds at most
``burst + HEADROOM * limit <= limit - 1`` requests: no window a server keeps sees too many.

The server has the last word: a 429 pauses the whole account (``Retry-After`` when given,
else a doubling backoff) and halves the pace; successes add the pace back in small steps
(AIMD), so a limit lower than configured is found and a shared account is not hammered.
``RateLimit-*``/``X-RateLimit-*`` headers saying nothing remains pause the account until the
reset they name (neither vendor documents such headers; they are honoured when present).
After a 429's pause one request goes first and the others wait for its answer, so a refusal
that outlasts the pause costs one more 429, not one per waiting thread.

With no rate configured (a sandbox on 127.0.0.1, or the variable set to 0) the limiter learns
one from the server: when a refusal outlasts a pause (the first request after it is refused
too) and the server accepted at least ``LEARN_MIN`` requests in the trailing minute, those are
the account's limit. The pace is then ``HEADROOM`` of it, replayed over the requests already
accepted, so the next one waits until the server's window has room, and the AIMD above runs on
it. Two conditions keep a stray 429 (a lock timeout, an injected fault) from teaching a tiny
pace: one 429 whose retry gets through teaches nothing, and a refusal after fewer than
``LEARN_MIN`` accepted requests is only backed off. Why not wait for a full minute of the
account's own history before learning: a second burst would meet the limit too, and each
burst that does costs one 429 per request in flight (8 with `talkqa sync`'s 8 threads), so
two of them are more than 2% of a 600-request run at 150 a minute. Learning at the retry of
the first burst cost 9 429s of 610 requests in `benchmarks/bench_sync_rate_limit.py`.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from pyrate_limiter import GCRA, Rate

Sleep = Callable[[float], None]
Clock = Callable[[], float]

# Pace at this share of the configured limit: the margin absorbs clock skew and latency
# jitter between our pacing and the server's window.
HEADROOM = 0.98
# AIMD: a 429 multiplies the pace by DECREASE (at most once per pause); each success adds
# INCREASE x the ceiling back, so recovery from one halving takes 25 successes.
DECREASE = 0.5
INCREASE = 0.02
MIN_REQUESTS_PER_MINUTE = 1.0
# A 429 without Retry-After pauses the account 1, 2, 4, ... seconds, at most this long.
THROTTLE_BASE_PAUSE = 1.0
THROTTLE_MAX_PAUSE = 30.0
REPEATED_STRIKES = 3  # 429s in a row after which Retry-After: 0 no longer means "at once"
# Never let a header park the account longer than this in one go.
MAX_PAUSE = 120.0
# Waits shorter than this are pacing, not news: the progress line is told about longer ones.
NOTICE_AFTER = 1.0
# Learning a limit when none is configured: the window vendors count requests in, and the
# fewest accepted requests a limit is learned from (the lowest documented limit of a vendor
# we talk to is a Chargebee test site's 150 a minute).
WINDOW = 60.0
LEARN_MIN = 100
# After a 429's pause the others wait for the first request's answer: they look again every
# PROBE_POLL seconds, and go anyway PROBE_WAIT seconds after it left (a probe that never
# reports back must not hold the account).
PROBE_POLL = 0.05
PROBE_WAIT = 5.0

_GCRA = GCRA()


@dataclass(frozen=True)
class Wait:
    """A limiter wait worth showing: who waits, and for how many seconds."""

    label: str
    seconds: float


WaitListener = Callable[[Wait], None]


class AccountLimiter:
    """Pacing, pauses and a concurrency cap for one vendor account.

    ``requests_per_minute`` None means no pacing of our own (loopback sandboxes, cassettes)
    until the server's 429s show a limit (see the module's docstring); its 429s and rate
    headers pause the account either way. ``max_concurrent`` None means no cap.
    """

    def __init__(
        self,
        label: str,
        requests_per_minute: int | None,
        *,
        max_concurrent: int | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        if requests_per_minute is not None and requests_per_minute <= 0:
            raise ValueError("requests_per_minute must be positive (None for no pacing)")
        if max_concurrent is not None and max_concurrent <= 0:
            raise ValueError("max_concurrent must be positive (None for no cap)")
        self.label = label
        self.requests_per_minute = requests_per_minute
        self.max_concurrent = max_concurrent
        self._ceiling = requests_per_minute * HEADROOM if requests_per_minute else None
        self._pace = self._ceiling
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_concurrent) if max_concurrent else None
        self._burst = burst_for(requests_per_minute) if requests_per_minute else 1
        self._state = _GCRA.initial([self._rate()]) if self._pace else ()
        self._paused_until = -math.inf
        self._floor = -math.inf  # time known to have passed (see _now)
        self._strikes = 0  # 429s since the last success
        self._prober: int | None = None  # the thread whose request went first after a pause
        self._probe_until = -math.inf  # until then the others wait for that request's answer
        self._learning = requests_per_minute is None
        self._accepted: deque[float] = deque()  # learning: when requests got through, a WINDOW
        self.learned: int | None = None  # learning: the limit the server showed, once it did
        self._listeners: list[WaitListener] = []
        self.waited = 0.0  # seconds spent waiting on this limiter, all threads together
        self.throttled = 0  # 429s the server answered

    @property
    def pace(self) -> float | None:
        """Requests per minute currently allowed (below the ceiling after 429s)."""
        return self._pace

    def listen(self, listener: WaitListener) -> None:
        """Call ``listener`` (from the waiting thread) before each wait of a second or more."""
        with self._lock:
            self._listeners.append(listener)

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the account's concurrent slots, then wait for the pace; release after."""
        if self._slots is not None:
            self._slots.acquire()
        try:
            self.acquire()
            yield
        finally:
            self._answered()
            if self._slots is not None:
                self._slots.release()

    def _answered(self) -> None:
        """This thread's request is over: when it was the probe, the others may go shortly.

        Its 429 or success is reported right after (``throttled_by_server``, ``succeeded``),
        which ends the wait at once; PROBE_POLL is the grace for that report, and ends the
        wait when the answer was neither (a 400, a lost connection).
        """
        me = threading.get_ident()
        if self._prober != me:  # nearly always: no lock taken
            return
        with self._lock:
            if self._prober == me:
                self._prober = None
                self._probe_until = min(self._probe_until, self._now() + PROBE_POLL)

    def acquire(self) -> float:
        """Block until the account may send one request; the seconds waited."""
        total = 0.0
        while True:
            with self._lock:
                now = self._now()
                wait = self._admit(now)
                if wait <= 0:
                    self.waited += total
                    return total
                listeners = list(self._listeners)
            if wait >= NOTICE_AFTER:
                for listener in listeners:
                    listener(Wait(self.label, wait))
            self._sleep(wait)
            total += wait
            with self._lock:
                self._floor = max(self._floor, now + wait)

    def _now(self) -> float:
        """The clock, but never before a finished sleep's end (lock held).

        A clock that stands still (a test's fake) would otherwise make ``acquire`` spin.
        """
        return max(self._clock(), self._floor)

    def _admit(self, now: float) -> float:
        """0 and one request spent, or the seconds to wait first (lock held)."""
        if now < self._paused_until:
            return self._paused_until - now
        probing = self._strikes > 0  # refused since the last success: one request goes first
        if probing and now < self._probe_until and self._prober != threading.get_ident():
            return min(PROBE_POLL, self._probe_until - now)
        if self._pace is not None:
            state, decision = _GCRA.step([self._rate()], self._state, round(now * 1000), 1)
            if not decision.allowed:
                return max(decision.retry_after_ms or 1, 1) / 1000.0
            self._state = state
        if probing:
            self._prober, self._probe_until = threading.get_ident(), now + PROBE_WAIT
        return 0.0

    def _rate(self, burst: int | None = None) -> Rate:
        """The pace as GCRA's Rate (1000 units per interval in ms keeps microseconds)."""
        assert self._pace is not None
        interval = max(1000, round(60_000_000 / self._pace))
        return Rate(1000, interval, burst=self._burst if burst is None else burst)

    def throttled_by_server(self, retry_after: float | None) -> None:
        """A 429: pause the account (Retry-After, or a doubling backoff) and slow the pace.

        Several threads see the same burst of 429s; only the first one of a pause counts
        towards the backoff and the slowdown, so the pace is halved once, not once per thread.
        With no rate configured, a refusal that outlasted a pause may teach one (``_learn``).
        """
        with self._lock:
            now = self._now()
            self.throttled += 1
            if now < self._paused_until and retry_after is None:
                return
            fresh = now >= self._paused_until
            if fresh:
                self._strikes += 1
                self._prober, self._probe_until = None, -math.inf  # the next pause's probe
                learned = self._learning and self._strikes > 1 and self._learn(now)
                if self._pace is not None and not learned:
                    self._pace = max(MIN_REQUESTS_PER_MINUTE, self._pace * DECREASE)
            # the exponent is capped: strikes keep counting while the server keeps refusing
            backoff = min(THROTTLE_BASE_PAUSE * 2 ** min(self._strikes - 1, 16), THROTTLE_MAX_PAUSE)
            if retry_after is None:
                pause = backoff
            else:  # a server that keeps saying "retry now" and refusing gets backed off anyway
                pause = max(retry_after, backoff if self._strikes > REPEATED_STRIKES else 0.0)
            pause = min(pause, MAX_PAUSE)
            self._paused_until = max(self._paused_until, now + pause)

    def _learn(self, now: float) -> bool:
        """Take what the server accepted in the trailing minute as the limit (lock held).

        Called when a refusal outlasted a pause: the server's window is full, and it holds
        (at least) our requests of that minute. Too few of them, and the refusal is not a
        full window (False: only the backoff applies). Else the pace is ``HEADROOM`` of that
        limit and GCRA's state replays those requests at it, so the next one waits until
        the window has room instead of meeting the limit again.
        """
        accepted = self._accepted
        while accepted and accepted[0] <= now - WINDOW:
            accepted.popleft()
        if len(accepted) < LEARN_MIN:
            return False
        self.learned = len(accepted)
        self._ceiling = self._pace = self.learned * HEADROOM
        self._burst = burst_for(self.learned)
        replay = [self._rate(burst=self.learned)]  # a burst that admits every replayed request
        state = _GCRA.initial(replay)
        for at in accepted:
            state, _ = _GCRA.step(replay, state, round(at * 1000), 1)
        self._state = state
        return True

    def succeeded(self) -> None:
        """A request got through: forget the backoff and win back some pace."""
        with self._lock:
            self._strikes = 0
            if self._learning:
                now = self._now()
                self._accepted.append(now)
                while self._accepted[0] <= now - WINDOW:
                    self._accepted.popleft()
            if self._pace is not None and self._ceiling is not None:
                self._pace = min(self._ceiling, self._pace + INCREASE * self._ceiling)

    def observe(self, headers: Mapping[str, str], wall_now: float | None = None) -> None:
        """Pause until the reset a ``RateLimit-Remaining: 0`` (or ``X-`` form) announces."""
        pause = exhausted_for(headers, time.time() if wall_now is None else wall_now)
        if pause is None:
            return
        with self._lock:
            self._paused_until = max(self._paused_until, self._now() + min(pause, MAX_PAUSE))


def burst_for(requests_per_minute: int) -> int:
    """The most requests sent at once that keep any minute at ``limit - 1`` or fewer."""
    return max(1, math.floor((1 - HEADROOM) * requests_per_minute) - 1)


def exhausted_for(headers: Mapping[str, str], wall_now: float) -> float | None:
    """Seconds until the window resets when the headers say none remain; else None.

    ``*-Reset`` is read as seconds from now, or as a Unix time when it is that large.
    """
    for prefix in ("ratelimit-", "x-ratelimit-"):
        remaining = _number(headers.get(prefix + "remaining"))
        if remaining is None or remaining > 0:
            continue
        reset = _number(headers.get(prefix + "reset"))
        if reset is None:
            return THROTTLE_BASE_PAUSE
        return max(0.0, reset - wall_now if reset > 1e9 else reset)
    return None


def _number(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        value = float(raw.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def account_key(system: str, base_url: str, api_key: str) -> tuple[str, str, str]:
    """Who the vendor counts requests against; the key only as a fingerprint."""
    fingerprint = hashlib.sha256(api_key.encode()).hexdigest()[:16]
    return (system, base_url.rstrip("/"), fingerprint)


class Limiters:
    """The limiters of live accounts: one per account while anything still uses it.

    Held weakly, so a test's sandbox account (whose port a later sandbox may reuse) does
    not outlive the clients that used it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_account: weakref.WeakValueDictionary[tuple[str, str, str], AccountLimiter]
        self._by_account = weakref.WeakValueDictionary()

    def get(
        self,
        key: tuple[str, str, str],
        create: Callable[[], AccountLimiter],
    ) -> AccountLimiter:
        """The account's limiter; ``create`` makes it when the account has none yet."""
        with self._lock:
            found = self._by_account.get(key)
            if found is None:
                found = create()
                self._by_account[key] = found
            return found


# Every Systems.connect of the process shares these (real time only: see Systems.connect).
ACCOUNT_LIMITERS = Limiters()
