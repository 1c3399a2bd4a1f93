"""The mutation runner of ``make mutants`` (tools/mutation.py): a snippet that moved is a
loud invalid mutant, and the faults are planted in the copy that the tests import (the venv's
editable install points at this worktree, which must stay untouched)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tools.mutants import MUTANTS
from tools.mutation import (
    BaselineFailed,
    Mutant,
    Verdict,
    check_baseline,
    copy_tree,
    mixed,
    patched,
    run_mutant,
    verdict_of,
)

REPO = Path(__file__).resolve().parents[1]
QUICK_TEST = "tests/test_scene_helpers.py::test_last_line_is_the_failure_reason"


def _mutant(original: str, replacement: str, tests: tuple[str, ...] = (QUICK_TEST,)) -> Mutant:
    return Mutant("probe", "talkqa/outcome.py", original, replacement, "probe", tests)


def test_a_snippet_must_occur_exactly_once() -> None:
    assert patched("a = 1\nb = 2\n", _mutant("b = 2", "b = 3")) == "a = 1\nb = 3\n"
    assert patched("a = 1\n", _mutant("b = 2", "b = 3")) is None
    assert patched("b = 2\nb = 2\n", _mutant("b = 2", "b = 3")) is None


@pytest.mark.parametrize(
    ("code", "verdict"),
    [
        (0, Verdict.SURVIVED),
        (1, Verdict.KILLED),
        (2, Verdict.KILLED),
        (4, Verdict.INVALID),
        (5, Verdict.INVALID),
    ],
)
def test_pytest_exit_codes_decide_the_verdict(code: int, verdict: Verdict) -> None:
    assert verdict_of(code)[0] is verdict


def test_a_load_failure_kills_only_when_it_names_the_mutated_file() -> None:
    named = "ImportError while loading conftest: talkqa/outcome.py line 3"
    assert verdict_of(4, named, "talkqa/outcome.py")[0] is Verdict.KILLED
    assert verdict_of(4, "error: unrecognized arguments", "talkqa/outcome.py")[0] is Verdict.INVALID


def test_every_listed_mutant_is_well_formed_and_unique() -> None:
    ids = [m.id for m in MUTANTS]
    assert len(ids) == len(set(ids)) and len(ids) >= 25
    for m in MUTANTS:
        assert m.tests and m.original != m.replacement, m.id
        assert not mixed(m.tests), f"{m.id}: features/ and tests/ in one selection"
        text = (REPO / m.file).read_text(encoding="utf-8")
        assert text.count(m.original) == 1, f"{m.id}: snippet not exactly once in {m.file}"


@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("tree")
    copy_tree(REPO, where)
    return where


def test_the_copy_not_the_worktree_is_imported(copy: Path) -> None:
    """A fault that breaks importing the judge kills the mutant only if the copy is imported."""
    before = (REPO / "talkqa/outcome.py").read_text(encoding="utf-8")
    broken = _mutant("class Verdict(StrEnum):", 'raise RuntimeError("planted")\nclass Verdict:')
    result = run_mutant(copy, broken, 120.0, time.monotonic)
    assert result.verdict is Verdict.KILLED, result.detail
    # restored in the copy, and the worktree never touched
    assert (copy / "talkqa/outcome.py").read_text(encoding="utf-8") == before
    assert (REPO / "talkqa/outcome.py").read_text(encoding="utf-8") == before


def test_a_harmless_change_survives_and_a_moved_snippet_is_invalid(copy: Path) -> None:
    harmless = _mutant("class Verdict(StrEnum):", "class Verdict(StrEnum):  # planted")
    assert run_mutant(copy, harmless, 120.0, time.monotonic).verdict is Verdict.SURVIVED
    moved = _mutant("class Verdict(Enum):", "class Verdict:")
    result = run_mutant(copy, moved, 120.0, time.monotonic)
    assert result.verdict is Verdict.INVALID and "0 times" in result.detail
    nothing = _mutant("class Verdict(StrEnum):", "class Verdict(StrEnum):  # x", ("tests/nope",))
    assert run_mutant(copy, nothing, 120.0, time.monotonic).verdict is Verdict.INVALID


def test_a_suite_that_fails_without_mutants_stops_the_run(copy: Path) -> None:
    quick = _mutant("class Verdict(StrEnum):", "class Verdict:")
    check_baseline(copy, [quick], 120.0)  # the clean copy passes: no exception
    failing = copy / "tests" / "test_fails_on_its_own.py"
    failing.write_text("def test_it() -> None:\n    assert 1 == 2\n", encoding="utf-8")
    try:
        with pytest.raises(BaselineFailed, match="without any mutant"):
            check_baseline(
                copy, [quick, _mutant("x", "y", (str(failing.relative_to(copy)),))], 120.0
            )
    finally:
        failing.unlink()


def test_the_copy_keeps_the_link_to_the_shipped_checklists(copy: Path) -> None:
    """The defect catalogue's syncers read talkqa/checklists: a copy without it would fail
    every mutant whose tests sign off with a broken syncer, for the wrong reason."""
    link = copy / "talkqa" / "checklists"
    assert link.is_symlink() and (link / "chargebee-invoiced.rst").is_file()
