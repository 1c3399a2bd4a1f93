"""The collector pause around a judgement: off inside, restored after, counted when nested."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from talkqa import collector


@pytest.fixture(autouse=True)
def _collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    (gc.enable if was else gc.disable)()


def test_the_collector_is_off_inside_and_back_on_after() -> None:
    with collector.paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_an_error_inside_still_turns_it_back_on() -> None:
    with pytest.raises(RuntimeError), collector.paused():
        raise RuntimeError("a judgement failed")
    assert gc.isenabled()


def test_overlapping_pauses_end_with_the_last_one() -> None:
    entered, release = threading.Event(), threading.Event()

    def other_judgement() -> None:
        with collector.paused():
            entered.set()
            release.wait(10)

    thread = threading.Thread(target=other_judgement)
    thread.start()
    assert entered.wait(10)
    with collector.paused():
        pass
    assert not gc.isenabled()  # the other judgement is still running
    release.set()
    thread.join(10)
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    with collector.paused():
        pass
    assert not gc.isenabled()
