"""The cyclic garbage collector held off while a judgement builds its snapshot.

A judgement of 31k entities allocates some 100k dicts and lists that all live until its end.
CPython's collector counts those allocations and, every few thousand, walks the tracked
objects, the oldest generation included, again and again as the heap grows: about a sixth
of the judge's CPU, reclaiming nothing. Parsed JSON holds no reference cycles (reference
counting frees it), so pausing the collector for the judgement changes nothing but the time.

The pause is process-wide, and judgements may overlap (threads of one test session), so it
is counted: the collector comes back when the last one leaves, and only if it was on when
the first one came.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_holders = 0
_was_enabled = False


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """No cyclic collection inside the block (reference counting still frees everything);
    the collector's previous state is restored when the last overlapping block ends."""
    global _holders, _was_enabled
    with _lock:
        if _holders == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0 and _was_enabled:
                gc.enable()
