"""The account limiter: pacing, server-fed pauses, AIMD, the concurrency cap, sharing."""

from __future__ import annotations

import gc
import threading
import time as real_time
from collections.abc import Callable

import httpx
import pytest

from talkqa.systems.connect import Systems
from talkqa.systems.limits import (
    ACCOUNT_LIMITERS,
    LEARN_MIN,
    PROBE_POLL,
    PROBE_WAIT,
    AccountLimiter,
    Limiters,
    Wait,
    account_key,
    burst_for,
    exhausted_for,
)
from talkqa.systems.settings import Settings
from tests.test_systems_http import FakeTime


def limiter(rpm: int | None, time: FakeTime, **options: int) -> AccountLimiter:
    return AccountLimiter("Chargebee", rpm, clock=time.clock, sleep=time.sleep, **options)


def test_requests_leave_evenly_spaced_at_98_percent_of_the_limit_after_a_small_burst() -> None:
    time = FakeTime()
    paced = limiter(150, time)
    assert burst_for(150) == 2
    for _ in range(2 + 147):
        paced.acquire()
    # 147/min: 0.408 s apart (whole ms, rounded up: never early) after 2 at once, so no
    # rolling minute ever holds more than 2 + 147 = 149 < 150
    assert time.sleeps == [pytest.approx(60 / 147, abs=0.001)] * 147
    assert paced.waited == pytest.approx(60, abs=0.15)


@pytest.mark.parametrize(("limit", "burst"), [(100, 1), (150, 2), (600, 11), (1200, 23)])
def test_the_burst_keeps_any_minute_below_the_limit(limit: int, burst: int) -> None:
    assert burst_for(limit) == burst
    assert burst + 0.98 * limit <= limit - 1
    assert burst_for(1) == 1  # never zero


def test_no_pace_means_no_wait_until_the_server_says_so() -> None:
    time = FakeTime()
    free = limiter(None, time)
    for _ in range(1000):
        free.acquire()
    assert time.sleeps == []
    free.throttled_by_server(3.0)
    free.acquire()
    assert time.sleeps == [3.0]


def test_a_429_pauses_the_account_halves_the_pace_once_and_successes_win_it_back() -> None:
    time = FakeTime()
    paced = limiter(100, time)
    paced.acquire()
    for _ in range(5):  # five threads saw the same burst of 429s
        paced.throttled_by_server(None)
    assert paced.pace == pytest.approx(49.0)
    assert paced.throttled == 5
    paced.acquire()
    assert time.sleeps == [1.0]  # one backoff step, not five
    paced.throttled_by_server(None)  # still 429 after the pause: the next step is longer
    paced.acquire()
    assert time.sleeps[-1] == 2.0
    assert paced.pace == pytest.approx(24.5)
    for _ in range(100):
        paced.succeeded()
    assert paced.pace == pytest.approx(98.0)  # back at the ceiling, not above
    paced.throttled_by_server(None)
    paced.acquire()
    assert time.sleeps[-2] == 1.0  # successes reset the backoff (then the pace's own wait)


def test_retry_after_sets_the_pause_and_a_longer_one_extends_it() -> None:
    time = FakeTime()
    paced = limiter(None, time)
    paced.throttled_by_server(5.0)
    paced.throttled_by_server(8.0)
    paced.throttled_by_server(2.0)
    paced.acquire()
    assert time.sleeps == [8.0]
    paced.throttled_by_server(10_000.0)  # a server asking for hours is capped
    paced.acquire()
    assert time.sleeps[-1] == 120.0


def test_a_server_that_keeps_saying_retry_now_is_backed_off_and_never_overflows() -> None:
    """Retry-After: 0 is honoured a few times; a server that keeps refusing gets the doubling
    backoff (capped) anyway, however many 429s come: never a tight loop, never an overflow."""
    time = FakeTime()
    paced = limiter(None, time)
    for _ in range(3):
        paced.throttled_by_server(0.0)
        paced.acquire()
    assert time.sleeps == []  # "at once", as the server said
    for _ in range(2000):  # far past 2**1024: the exponent must be capped
        paced.throttled_by_server(0.0)
        paced.acquire()
    assert time.sleeps[0] == 8.0 and max(time.sleeps) == 30.0


@pytest.mark.parametrize(
    ("headers", "pause"),
    [
        ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "12"}, 12.0),
        ({"RateLimit-Remaining": "0", "RateLimit-Reset": "1700000030"}, 30.0),  # a Unix time
        ({"RateLimit-Remaining": "0"}, 1.0),
        ({"X-RateLimit-Remaining": "3", "X-RateLimit-Reset": "12"}, None),
        ({"X-RateLimit-Remaining": "many"}, None),
        ({}, None),
    ],
)
def test_rate_headers_saying_nothing_remains_pause_until_the_reset(
    headers: dict[str, str], pause: float | None
) -> None:
    lowered = {k.lower(): v for k, v in headers.items()}
    assert exhausted_for(lowered, wall_now=1_700_000_000.0) == pause


def test_observed_rate_headers_pause_the_account() -> None:
    time = FakeTime()
    paced = limiter(None, time)
    paced.observe(httpx.Headers({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "4"}))
    paced.acquire()
    assert time.sleeps == [4.0]


def test_long_waits_are_announced_to_listeners_short_ones_are_not() -> None:
    time = FakeTime()
    paced = limiter(100, time)
    notes: list[Wait] = []
    paced.listen(notes.append)
    paced.acquire()
    paced.acquire()  # 0.6 s of pacing: not news
    paced.throttled_by_server(7.0)
    paced.acquire()
    assert notes == [Wait("Chargebee", pytest.approx(7.0))]  # type: ignore[arg-type]


@pytest.mark.timeout(30)
def test_the_concurrency_cap_holds_across_threads() -> None:
    capped = AccountLimiter("Chargebee", None, max_concurrent=3)
    lock = threading.Lock()
    inside = [0]
    most = [0]

    def work() -> None:
        with capped.slot():
            with lock:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            real_time.sleep(0.01)  # hold the slot so the others pile up
            with lock:
                inside[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most[0] == 3


@pytest.mark.timeout(30)
def test_pacing_is_thread_safe_no_slot_is_handed_out_twice() -> None:
    paced = AccountLimiter("Chargebee", 12_000)  # real time: 11,760/min, 5.1 ms apart
    assert burst_for(12_000) == 239
    started = real_time.monotonic()

    def work() -> None:
        for _ in range(85):
            paced.acquire()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # 340 admissions: 239 at once, then 101 need 100 intervals; a slot handed to two threads
    # would shorten that (a busy machine only makes it longer, so the bound cannot flake)
    assert real_time.monotonic() - started >= 99 * 60 / 11_760 - 0.001


def test_one_limiter_per_account_shared_while_in_use() -> None:
    registry = Limiters()
    key = account_key("chargebee", "https://a.chargebee.com/api/v2/", "k1")
    assert key == account_key("chargebee", "https://a.chargebee.com/api/v2", "k1")
    assert "k1" not in key  # only a fingerprint of the key
    first = registry.get(key, lambda: AccountLimiter("Chargebee", 150))
    assert registry.get(key, lambda: AccountLimiter("Chargebee", 9)) is first
    other = account_key("chargebee", "https://a.chargebee.com/api/v2", "k2")
    assert registry.get(other, lambda: AccountLimiter("Chargebee", 150)) is not first
    del first
    gc.collect()
    fresh = registry.get(key, lambda: AccountLimiter("Chargebee", 9))
    assert fresh.requests_per_minute == 9  # nobody used the old one any more


def test_systems_of_one_run_share_the_accounts_limiters() -> None:
    settings = Settings.from_env(
        {
            "CHARGEBEE_SITE": "acme-test",
            "CHARGEBEE_API_KEY": "cb",
            "INVOICED_API_KEY": "inv",
            "CHARGEBEE_MAX_CONCURRENT_REQUESTS": "7",
        }
    )
    http = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(500)))
    one, two = Systems.connect(settings, http), Systems.connect(settings, http)
    assert one.chargebee.limiter is two.chargebee.limiter
    assert one.chargebee.limiter.max_concurrent == 7
    assert one.invoiced.limiter is not one.chargebee.limiter
    key = account_key("chargebee", settings.chargebee_base_url, "cb")
    assert ACCOUNT_LIMITERS.get(key, lambda: AccountLimiter("x", 1)) is one.chargebee.limiter
    faked = Systems.connect(settings, http, sleep=lambda _s: None)
    assert faked.chargebee.limiter is not one.chargebee.limiter  # fake time gets its own


def test_systems_tell_a_listener_about_either_vendors_long_waits() -> None:
    settings = Settings.for_sandbox("http://127.0.0.1:1/api/v2", "http://127.0.0.1:2")
    http = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(500)))
    time = FakeTime()
    systems = Systems.connect(settings, http, sleep=time.sleep, clock=time.clock)
    notes: list[Wait] = []
    systems.on_limiter_wait(notes.append)
    systems.invoiced.limiter.throttled_by_server(3.0)
    systems.invoiced.limiter.acquire()
    systems.chargebee.limiter.throttled_by_server(None)
    systems.chargebee.limiter.acquire()
    assert notes == [Wait("Invoiced", 3.0), Wait("Chargebee", 1.0)]


# --- learning a limit when none is configured ---------------------------------------------


def burst_accepted(
    paced: AccountLimiter, time: FakeTime, count: int, spacing: float
) -> list[float]:
    """``count`` requests let through and accepted, ``spacing`` seconds apart; their times."""
    times: list[float] = []
    for _ in range(count):
        paced.acquire()
        paced.succeeded()
        times.append(time.now)
        time.now += spacing
    return times


def most_in_a_minute(times: list[float]) -> int:
    """The most of ``times`` any rolling minute holds (a server keeps what is < 60 s old)."""
    times = sorted(times)
    return max(sum(1 for t in times[: i + 1] if end - t < 60) for i, end in enumerate(times))


def test_a_refusal_that_outlasts_a_pause_teaches_the_limit_and_no_minute_exceeds_it() -> None:
    """A sync without a configured pace bursts into a 150/min window: the first 429 only
    pauses; the retry after the pause is refused too, so the 150 the server accepted in the
    minute are its limit. The next request waits until the window has room, then requests
    leave at 98% of it, and no rolling minute ever holds more than 150."""
    time = FakeTime()
    free = limiter(None, time)
    sent = burst_accepted(free, time, 150, spacing=0.01)
    free.throttled_by_server(None)
    assert (free.learned, free.pace) == (None, None)  # one 429 teaches nothing
    free.acquire()  # the retry, after the 1 s pause
    assert time.sleeps == [1.0]
    free.throttled_by_server(None)  # ... refused too: the window is full
    assert free.learned == 150
    assert free.pace == pytest.approx(147.0)
    started = time.now
    free.acquire()
    # waited until the first of the 150 had left the window (the burst took 1.5 s)
    assert sent[0] + 60 < time.now < sent[0] + 61.5
    assert time.now - started > 55
    sent.append(time.now)
    for _ in range(3 * 147):
        free.acquire()
        free.succeeded()
        sent.append(time.now)
    assert most_in_a_minute(sent) <= 150
    steady = 3 * 147 / (sent[-1] - sent[-1 - 3 * 147]) * 60
    assert steady == pytest.approx(147, abs=0.5)


def test_one_stray_429_teaches_nothing_however_long_the_history() -> None:
    time = FakeTime()
    free = limiter(None, time)
    burst_accepted(free, time, 600, spacing=0.2)  # two minutes of history
    free.throttled_by_server(None)  # an injected fault, a lock timeout
    free.acquire()
    free.succeeded()  # the retry got through
    assert (free.learned, free.pace) == (None, None)
    before = len(time.sleeps)
    for _ in range(1000):
        free.acquire()
    assert len(time.sleeps) == before  # still no pace of our own


def test_a_refusal_after_few_accepted_requests_is_only_backed_off() -> None:
    """Faults in a small test (a 429 twice in a row) must not teach a tiny pace."""
    time = FakeTime()
    free = limiter(None, time)
    burst_accepted(free, time, LEARN_MIN - 1, spacing=0.01)
    for _ in range(3):
        free.throttled_by_server(None)
        free.acquire()
    assert (free.learned, free.pace) == (None, None)
    assert time.sleeps == [1.0, 2.0, 4.0]
    free.succeeded()
    for _ in range(100):
        free.acquire()
    assert time.sleeps == [1.0, 2.0, 4.0]


def test_a_configured_pace_is_not_relearned_only_halved() -> None:
    time = FakeTime()
    paced = limiter(150, time)
    burst_accepted(paced, time, 150, spacing=0.5)
    paced.throttled_by_server(None)
    paced.acquire()
    paced.throttled_by_server(None)
    assert paced.learned is None
    assert paced.pace == pytest.approx(147 / 4)


# --- after a pause, one request goes first -------------------------------------------------


def other_thread(action: Callable[[], object]) -> None:
    """Run ``action`` in another thread, to its end (the fake clock needs no real waiting)."""
    thread = threading.Thread(target=action)
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive()


def probed(time: FakeTime, on_poll: Callable[[AccountLimiter, int], None]) -> AccountLimiter:
    """A limiter without pace, paused by a 429, whose first request after the pause (this
    thread's) is out; ``on_poll(limiter, n)`` runs at the others' n-th short wait."""
    polls = [0]

    def sleep(seconds: float) -> None:
        time.sleep(seconds)
        if seconds <= PROBE_POLL:
            polls[0] += 1
            on_poll(free, polls[0])

    free = AccountLimiter("Chargebee", None, clock=time.clock, sleep=sleep)
    free.throttled_by_server(None)
    free.acquire()  # the probe leaves after the 1 s pause
    return free


def test_after_a_pause_the_others_wait_for_the_first_requests_success() -> None:
    time = FakeTime()
    free = probed(time, lambda limiter, n: limiter.succeeded() if n == 2 else None)
    other_thread(free.acquire)
    assert time.sleeps == [1.0, PROBE_POLL, PROBE_POLL]  # two looks, then the success


def test_after_a_pause_the_others_wait_out_the_first_requests_429() -> None:
    time = FakeTime()
    free = probed(time, lambda limiter, n: limiter.throttled_by_server(None) if n == 1 else None)
    other_thread(free.acquire)
    assert time.sleeps == [1.0, PROBE_POLL, pytest.approx(2.0)]  # the next, longer pause


def test_a_probe_answered_otherwise_holds_the_others_only_a_moment() -> None:
    time = FakeTime()
    free = probed(time, lambda _limiter, _n: None)
    # the probe's answer was a 400 or a lost connection: its slot ends, nothing is reported
    assert free._prober is not None
    free._answered()
    other_thread(free.acquire)
    assert time.sleeps == [1.0, pytest.approx(PROBE_POLL)]
    # that thread went first in turn; had it never ended its slot (an acquire without one),
    # it would hold the others PROBE_WAIT at most
    free.acquire()
    assert sum(time.sleeps[2:]) == pytest.approx(PROBE_WAIT)
