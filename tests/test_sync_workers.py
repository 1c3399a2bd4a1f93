"""The sync's worker threads: every item once, its batch's prologue first, counts in order,
and a failure or interrupt stops the rest once the items in flight are done."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from reference_sync.workers import run_batches


def _batches(items: int, size: int) -> list[list[int]]:
    return [list(range(start, min(start + size, items))) for start in range(0, items, size)]


def test_every_item_runs_once_after_its_batchs_prologue_and_counts_arrive_in_order() -> None:
    begun: set[int] = set()
    applied: list[int] = []
    counts: list[int] = []
    lock = threading.Lock()
    threads: set[str] = set()

    def begin(batch: Sequence[int]) -> None:
        with lock:
            begun.update(batch)

    def apply(item: int) -> None:
        with lock:
            assert item in begun  # the batch's intents were committed before it
            applied.append(item)
            threads.add(threading.current_thread().name)

    run_batches(_batches(100, 7), 3, begin, apply, counts.append)
    assert sorted(applied) == list(range(100))
    assert counts == list(range(1, 101))
    assert threads <= {"sync_0", "sync_1", "sync_2"}


def test_one_worker_runs_in_the_callers_thread_in_plan_order() -> None:
    events: list[tuple[str, object]] = []
    callers: set[str] = set()

    def apply(item: int) -> None:
        events.append(("apply", item))
        callers.add(threading.current_thread().name)

    run_batches(_batches(5, 2), 1, lambda b: events.append(("begin", list(b))), apply,
                lambda n: events.append(("done", n)))
    assert events == [
        ("begin", [0, 1]), ("apply", 0), ("done", 1), ("apply", 1), ("done", 2),
        ("begin", [2, 3]), ("apply", 2), ("done", 3), ("apply", 3), ("done", 4),
        ("begin", [4]), ("apply", 4), ("done", 5),
    ]  # fmt: skip
    assert callers == {threading.current_thread().name}


def test_the_first_failure_stops_the_others_and_is_raised_in_the_callers_thread() -> None:
    applied: list[int] = []
    lock = threading.Lock()

    def apply(item: int) -> None:
        if item == 5:
            raise ValueError("refused key")
        with lock:
            applied.append(item)

    with pytest.raises(ValueError, match="refused key"):
        run_batches(_batches(1000, 4), 2, lambda _batch: None, apply, lambda _done: None)
    assert 5 not in applied and len(applied) < 1000


def test_an_interrupt_from_the_progress_callback_stops_the_run() -> None:
    applied: list[int] = []

    def done(count: int) -> None:
        if count == 10:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_batches(_batches(500, 8), 4, lambda _batch: None, applied.append, done)
    # the items already in flight on the other workers finish; nothing new starts
    assert 10 <= len(applied) <= 10 + 4


def test_a_stop_while_the_workers_start_waits_for_the_ones_running(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SIGTERM right after the first write (as `docker stop` may send it) lands while the
    caller is still starting workers: the ones already running finish their item before the
    stop reaches the caller, who closes the link store next."""
    inside, release = threading.Event(), threading.Event()
    finished: list[int] = []

    def apply(item: int) -> None:
        inside.set()
        release.wait(5)  # until the caller waits for this worker (or 5 s: then it failed)
        finished.append(item)

    real_start, real_join = threading.Thread.start, threading.Thread.join

    def start(self: threading.Thread) -> None:
        if self.name == "sync_1":  # the second worker: the stop lands as it is started
            inside.wait(5)
            raise KeyboardInterrupt
        real_start(self)

    def join(self: threading.Thread, timeout: float | None = None) -> None:
        if self.name == "sync_0":
            release.set()  # the caller waits for the running worker: let it finish
        real_join(self, timeout)

    monkeypatch.setattr(threading.Thread, "start", start)
    monkeypatch.setattr(threading.Thread, "join", join)
    with pytest.raises(KeyboardInterrupt):
        run_batches([[1], [2]], 2, begin=lambda _batch: None, apply=apply, done=lambda _n: None)
    assert finished == [1]  # the running worker's write finished before the stop was raised
