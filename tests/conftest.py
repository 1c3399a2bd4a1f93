"""Session order for the unit tests: the defect catalogue's sign-offs start first, end last,
and the service defects, which mostly wait, run beside them.

The catalogue (``test_defect_catalogue``) is a score of ``talkqa signoff`` processes.
In one process, they start as soon as collection ends and run beside every other test; the
catalogue's own tests only read their results, so they are moved to the end, where the
waiting is mostly over. Under pytest-xdist (``make test``: ``-n 3``) the catalogue is one
work unit, handed out first (it is the largest): the worker that takes it starts its pool
when the first of its tests asks (``test_defect_catalogue.signoffs``), and no other worker
starts any of them. The service defects are the next unit, so another worker sleeps
through them meanwhile, never beside a second waiting one; the rest is shared. (Not
``--dist loadgroup``: it marks a group by rewriting ``item._nodeid``, which pytest 9 no
longer reads.)
"""

from __future__ import annotations

import functools
import signal
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from defect_signoffs import (  # tests/, beside this file
    SIGNOFFS,
    Signoffs,
    register_catch_rate,
    selected_runs,
)

from tests.cli_runner import Ran, talkqa

CATALOGUE_MODULE = "test_defect_catalogue.py"
WAITING_MODULE = "test_service_defects.py"  # each NO-GO sits out a 5 s window per scenario


def _in_catalogue(item: pytest.Item) -> bool:
    return item.path.name == CATALOGUE_MODULE


def _xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Each test its own work unit, except the catalogue's, which are one, and the service
    defects', which are another: the two largest units, handed out first, each to its own
    worker, so that the sleeping service defects run beside the catalogue's busy sign-offs
    and never beside each other."""
    from xdist.scheduler import LoadScopeScheduling

    class CatalogueAsOneUnit(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0].rsplit("/", 1)[-1]
            return module if module in (CATALOGUE_MODULE, WAITING_MODULE) else nodeid

    return CatalogueAsOneUnit(config, log)


def pytest_configure(config: pytest.Config) -> None:
    register_catch_rate(config)
    _hear_ctrl_c()


def _hear_ctrl_c() -> None:
    """Let this process, and every service the tests start from it, hear Ctrl-C.

    A suite started as a background job of a shell without job control (`make test &` in a
    script, as CI runners and editors do) inherits SIGINT *ignored*; Python then never
    installs its handler, and an ignored signal stays ignored across exec. The services the
    tests stop with SIGINT (`tests/service_process.py`) would sit out the test's 30 s and be
    killed, a failure that depended only on how the suite was started. A Python handler is
    reset to the default on exec, so each child starts as it would from a terminal.
    """
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Move what collection built (modules, tests, fixtures: alive for the whole session) out
    of the garbage collector's sight.

    A sign-off the tests run in this process (``cli``) runs its feature suite with
    ``pytest.main``, and each such session ends with full collections
    (``_pytest.unraisableexception``) that would walk every object of this process, ~0.15 s
    of CPU apiece. Frozen objects are never scanned: one that later becomes garbage is freed
    by its reference count, or, in a cycle, when the process ends (the session's objects).
    """
    import gc

    gc.collect()
    gc.freeze()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The service defects first, the catalogue's last, each in their own order; every other
    test keeps its place.

    The service defects spend their time asleep on a service's time window (a NO-GO is a
    promise that did not hold within ``--within``): run beside the catalogue's sign-offs,
    which keep the cores busy at the start, their sleep costs little; run beside each other
    or other waits, a core sits idle.
    """
    rank = {WAITING_MODULE: 0, CATALOGUE_MODULE: 2}
    items.sort(key=lambda item: rank.get(item.path.name, 1))  # stable: each keeps its order


@pytest.fixture(scope="session", autouse=True)
def _catalogue_signoffs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """Start the selected catalogue sign-offs before the first test (none selected: none);
    not on an xdist worker, which may never be handed the catalogue."""
    runs = selected_runs([i for i in request.session.items if _in_catalogue(i)])
    if not runs or _xdist_worker(request.config):
        yield
        return
    pool = Signoffs(runs, tmp_path_factory.mktemp("signoffs"))
    request.session.stash[SIGNOFFS] = pool
    try:
        yield
    finally:
        pool.close()


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Callable[..., Ran]:
    """``cli(ARGS, cwd=FOLDER, env=None)``: `talkqa ARGS` run in this test's process
    (:func:`tests.cli_runner.talkqa`), its exit code and output as a child's would be."""
    return functools.partial(talkqa, monkeypatch=monkeypatch, capsys=capsys)
