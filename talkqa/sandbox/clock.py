"""A realistic but deterministic clock: several writes share a second, as on the vendors.

Chargebee and Invoiced stamp `created_at`/`updated_at` in whole wall-clock seconds, so a
burst of writes lands in one second and an incremental reader that asks for
`updated_at[after]=<last second seen>` misses the edits made later in that same second.
A clock that ticks one second per write would hide that bug, so this one lets a seeded
number of writes (1..`writes_per_second`) share each second. It never reads the wall
clock: the same seed and the same requests give the same timestamps, to the byte.
"""

from __future__ import annotations

import random

EPOCH = 1793606400  # 2026-11-02T08:00:00Z: a fixed instant near today, never the wall clock
WRITES_PER_SECOND = 3  # at most this many writes share a second (each second draws 1..N)


class VendorClock:
    """Unix seconds that advance only when writes use up the current second's quota."""

    def __init__(
        self, start: int = EPOCH, writes_per_second: int = WRITES_PER_SECOND, seed: int = 0
    ) -> None:
        if writes_per_second < 1:
            raise ValueError("writes_per_second must be at least 1")
        self._start = start
        self.writes_per_second = writes_per_second
        self.reset(seed)

    def reset(self, seed: int = 0) -> None:
        """Back to the start; a separate RNG keeps ids independent of the clock's draws."""
        self._rng = random.Random(f"clock:{seed}")
        self._now = self._start
        self._used = 0
        self._quota = self._draw()

    def _draw(self) -> int:
        return self._rng.randint(1, self.writes_per_second)

    def now(self) -> int:
        """The second of the latest write (the start before any): reads do not move time."""
        return self._now

    def peek(self) -> int:
        """The second the next write will get, without taking it (dates set before a stamp)."""
        return self._now if self._used < self._quota else self._now + 1

    def tick(self) -> int:
        """Take one write's second: the current one while its quota lasts, else the next."""
        if self._used >= self._quota:
            self._now += 1
            self._used = 0
            self._quota = self._draw()
        self._used += 1
        return self._now

    def version(self) -> int:
        """A Chargebee-style `resource_version` (milliseconds) for the latest write: unique
        and increasing even when writes share a second."""
        return self._now * 1000 + self._used
