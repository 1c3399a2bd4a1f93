"""The sandbox clock: writes share seconds like on the vendors, yet the same seed repeats."""

from __future__ import annotations

from collections import Counter

import pytest

from talkqa.sandbox.clock import EPOCH, WRITES_PER_SECOND, VendorClock
from talkqa.sandbox.server import CHARGEBEE_API_KEY, create_sandbox
from tests.sandbox_fixtures import in_process


def stamps(clock: VendorClock, writes: int) -> list[int]:
    return [clock.tick() for _ in range(writes)]


def test_default_clock_lets_several_writes_share_a_second() -> None:
    assert WRITES_PER_SECOND > 1
    per_second = Counter(stamps(VendorClock(), 200))
    assert max(per_second.values()) > 1
    assert max(per_second.values()) <= WRITES_PER_SECOND
    # consecutive seconds: no gap, no second without a write
    assert sorted(per_second) == list(range(EPOCH, EPOCH + len(per_second)))


def test_same_seed_same_stamps_other_seed_other_stamps() -> None:
    assert stamps(VendorClock(seed=7), 100) == stamps(VendorClock(seed=7), 100)
    assert stamps(VendorClock(seed=7), 100) != stamps(VendorClock(seed=8), 100)


def test_reset_replays_the_same_seconds() -> None:
    clock = VendorClock(seed=4)
    first = stamps(clock, 50)
    clock.reset(4)
    assert clock.now() == EPOCH
    assert stamps(clock, 50) == first


def test_peek_names_the_next_second_and_versions_stay_unique() -> None:
    clock = VendorClock(writes_per_second=5, seed=1)
    versions = []
    for _ in range(100):
        expected = clock.peek()
        assert clock.tick() == expected
        versions.append(clock.version())
    assert versions == sorted(versions) and len(set(versions)) == len(versions)


def test_one_write_per_second_is_still_available() -> None:
    assert stamps(VendorClock(writes_per_second=1), 3) == [EPOCH, EPOCH + 1, EPOCH + 2]
    with pytest.raises(ValueError):
        VendorClock(writes_per_second=0)


def test_customers_written_in_a_burst_share_updated_at_and_keep_distinct_versions() -> None:
    client = in_process(create_sandbox(seed=0, writes_per_second=4).chargebee_app,
                        "http://127.0.0.1/api/v2", CHARGEBEE_API_KEY)
    made = [client.post("/customers", data={"first_name": f"N{i}"}).json()["customer"]
            for i in range(12)]
    client.close()
    seconds = Counter(c["updated_at"] for c in made)
    assert max(seconds.values()) > 1
    assert len({c["resource_version"] for c in made}) == 12
