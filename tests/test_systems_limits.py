"""The account limiter: pacing, server-fed pauses, AIMD, the concurrency cap, sharing."""

from __future__ import annotations

import gc
import threading
import time as real_time

import httpx
import pytest

from talkqa.systems.connect import Systems
from talkqa.systems.limits import (
    ACCOUNT_LIMITERS,
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
