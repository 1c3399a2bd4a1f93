"""Session order for the unit tests: the defect catalogue's sign-offs start first, end last.

The catalogue (``test_defect_catalogue``) is a dozen ``talkqa signoff`` subprocesses that
spend most of their time asleep between the command driver's polls. Started as soon as
collection ends, they run beside every other test; the catalogue's own tests only read
their results, so they are moved to the end, where the waiting is mostly over.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from defect_signoffs import SIGNOFFS, Signoffs, selected_runs  # tests/, beside this file

CATALOGUE_MODULE = "test_defect_catalogue.py"


def _in_catalogue(item: pytest.Item) -> bool:
    return item.path.name == CATALOGUE_MODULE


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The catalogue's tests last, in their own order; every other test keeps its place."""
    items[:] = [i for i in items if not _in_catalogue(i)] + [i for i in items if _in_catalogue(i)]


@pytest.fixture(scope="session", autouse=True)
def _catalogue_signoffs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """Start the selected catalogue sign-offs before the first test (none selected: none)."""
    runs = selected_runs([i for i in request.session.items if _in_catalogue(i)])
    if not runs:
        yield
        return
    pool = Signoffs(runs, tmp_path_factory.mktemp("signoffs"))
    request.session.stash[SIGNOFFS] = pool
    try:
        yield
    finally:
        pool.close()
