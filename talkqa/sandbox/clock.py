"""A logical clock: timestamps depend on the number of writes, never on the wall clock."""

from __future__ import annotations

EPOCH = 1767225600  # 2026-01-01T00:00:00Z


class LogicalClock:
    """Ticks one second per write so that two runs of the same requests agree to the byte."""

    def __init__(self, start: int = EPOCH) -> None:
        self._start = start
        self._now = start

    def now(self) -> int:
        """The current instant in Unix seconds (no tick: reads do not move time)."""
        return self._now

    def tick(self) -> int:
        """Advance one second and return the new instant: call once per applied write."""
        self._now += 1
        return self._now

    def reset(self) -> None:
        self._now = self._start
