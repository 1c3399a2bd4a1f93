"""A section's writes on a few long-lived threads that stay busy across batch boundaries.

Why not ``ThreadPoolExecutor.submit`` per entity plus ``as_completed`` (the earlier way):
every completed entity then woke the main thread just to count it, a third thread taking
the GIL once per request, and each entity paid a future, a condition and a waiter. Here
each worker takes the next batch (under a lock that guards only the iterator), runs the
batch's prologue (the link store's one commit of its create intents), then its items, and
counts and reports each item itself; the main thread only waits. So the threads hand the
GIL to each other only where they wait on the wire.

Stopping: the first exception a worker meets (a refused key; a ``KeyboardInterrupt`` raised
by a progress callback) stops every worker before its next item and is re-raised in the
caller's thread once the items in flight have finished. A Ctrl-C in the caller's thread
does the same. Nothing started is abandoned half-way.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")

# How often the waiting caller's thread wakes (seconds): only so that a Ctrl-C, which
# Python delivers to the main thread, is seen promptly.
_POLL = 0.2


def run_batches(
    batches: Sequence[Sequence[T]],
    workers: int,
    begin: Callable[[Sequence[T]], None],
    apply: Callable[[T], None],
    done: Callable[[int], None],
) -> None:
    """``begin(batch)`` then ``apply(item)`` for each item, on ``workers`` threads.

    ``done(n)`` is called after each item with the running count of finished items, one call
    at a time and in increasing order (it may raise to stop the run, as ``apply`` may). One
    worker runs everything in the caller's thread, in order: no thread to wait on.
    """
    if workers <= 1:
        for n, item in enumerate(_in_order(batches, begin), start=1):
            apply(item)
            done(n)
        return
    pending = iter(batches)
    take = threading.Lock()
    count_lock = threading.Lock()
    stop = threading.Event()
    failures: list[BaseException] = []
    finished = [0]

    def work() -> None:
        try:
            while not stop.is_set():
                with take:
                    batch = next(pending, None)
                if batch is None:
                    return
                begin(batch)
                for item in batch:
                    if stop.is_set():
                        return
                    apply(item)
                    with count_lock:
                        finished[0] += 1
                        done(finished[0])
        except BaseException as error:  # handed to the caller's thread
            with count_lock:
                failures.append(error)
            stop.set()

    threads = [threading.Thread(target=work, name=f"sync_{n}", daemon=True) for n in range(workers)]
    try:
        # inside the try: a Ctrl-C or SIGTERM that lands while the workers are being started
        # must wait for those already running too (they write to the link store, which the
        # caller closes next: closing it under a worker's write crashed the process)
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():
                thread.join(_POLL)
    except BaseException:
        stop.set()  # Ctrl-C: the items in flight finish, nothing new starts
        for thread in threads:
            # one never started raises; one not yet running will see `stop` first
            with contextlib.suppress(RuntimeError):
                thread.join()
        raise
    if failures:
        raise failures[0]


def _in_order(batches: Sequence[Sequence[T]], begin: Callable[[Sequence[T]], None]) -> Iterator[T]:
    """Each batch's items, ``begin(batch)`` called just before its first is handed out."""
    for batch in batches:
        begin(batch)
        yield from batch
