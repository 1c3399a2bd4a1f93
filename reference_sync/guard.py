"""Who may use a link store: one run at a time, and only against the accounts it belongs to.

Two syncs sharing a store would each decide from links the other is rewriting (a link
committed by one looked like a deleted target to the other, which tombstoned it), so a run
holds an exclusive file lock (``<store>.lock``, via ``filelock``) from before its first read
until its last write; a second run waits up to a timeout, saying who holds it, then gives up.

Links name entities of particular accounts. Base URLs do not tell accounts apart (Invoiced
serves every company at one URL), so the store records a fingerprint of each side's account
(sha256 of the base URL and the API key: the key itself never reaches the disk) and refuses a
run against other accounts; ``fresh=True`` forgets the old links explicitly instead.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from reference_sync.linkstore import LinkStore
from talkqa.errors import UserError

Notice = Callable[[str], None]


class StoreBusy(UserError):
    """Another run held the store for longer than the caller would wait."""


class StoreMismatch(UserError):
    """The store's links belong to other accounts than the ones the run is pointed at."""


def account_fingerprint(base_url: str, api_key: str) -> str:
    """Stable per account and never reversible to the key: sha256 of URL and key, shortened."""
    text = f"{base_url.rstrip('/')}\n{api_key}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _holder(store: Path) -> Path:
    return Path(f"{store}.holder")


def _held_by(store: Path) -> str:
    """The pid the current holder wrote next to the lock, or "unknown" (it may be mid-start)."""
    try:
        pid = _holder(store).read_text().strip()
    except OSError:
        return "pid unknown"
    return f"pid {pid}" if pid.isdigit() else "pid unknown"


@contextmanager
def run_lock(store: Path, timeout: float, notice: Notice | None = None) -> Iterator[None]:
    """Hold ``store`` exclusively for a run; wait up to ``timeout`` seconds for another run.

    ``notice`` hears one line when the run has to wait. Giving up raises StoreBusy, which
    says who holds the store and how to wait longer.
    """
    lock = FileLock(f"{store}.lock")
    try:
        lock.acquire(blocking=False)
    except Timeout:
        if notice is not None:
            notice(f"another sync holds {store} ({_held_by(store)}); waiting up to {timeout:g}s")
        try:
            lock.acquire(timeout=timeout)
        except Timeout:
            raise StoreBusy(
                f"another sync holds {store} ({_held_by(store)}); giving up after {timeout:g}s: "
                "rerun when it has finished, or wait longer with --lock-timeout"
            ) from None
    try:
        _holder(store).write_text(f"{os.getpid()}\n")
        yield
    finally:
        _holder(store).unlink(missing_ok=True)
        lock.release()


def check_accounts(store: LinkStore, identities: Mapping[str, str], *, fresh: bool) -> None:
    """Bind ``store`` to ``identities`` (side -> fingerprint), or refuse it with one line.

    A store with no recorded accounts takes the given ones; a store kept before accounts
    were recorded is trusted only when it is still empty. ``fresh`` clears the store first.
    """
    if fresh:
        store.clear()
    recorded = store.accounts()
    if not recorded and not store.is_empty():
        raise StoreMismatch(
            f"{store.path}: the link store does not say which accounts its links belong to: "
            "rerun with --fresh to start its links afresh"
        )
    differing = sorted(side for side, value in recorded.items() if identities.get(side) != value)
    if differing:
        raise StoreMismatch(
            f"{store.path}: its links belong to another {' and '.join(differing)} account than "
            "the one in the environment: point --state at that account's store, or rerun "
            "with --fresh to start its links afresh"
        )
    store.set_accounts(dict(identities))


@contextmanager
def guarded_store(
    path: Path,
    *,
    identities: Mapping[str, str] | None = None,
    lock_timeout: float = 300.0,
    fresh: bool = False,
    notice: Notice | None = None,
) -> Iterator[LinkStore]:
    """The store at ``path``, held for one run and checked against ``identities``.

    Without ``identities`` (the feature suite's fresh store per scenario) the accounts are
    not checked; the lock is taken all the same.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with run_lock(path, lock_timeout, notice), LinkStore(path) as store:
        if identities is not None:
            check_accounts(store, identities, fresh=fresh)
        elif fresh:
            store.clear()
        yield store
