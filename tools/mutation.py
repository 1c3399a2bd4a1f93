"""The mutation runner: plants each one-line fault in a private copy of the tree and asks
whether the tests that should notice it do.

Why a private copy: the venv holds an editable install of this worktree, so patching files
in place would race with anyone running tests here, and a crash mid-run would leave a fault
behind. The copy is made once (``git ls-files``, plus untracked files git would commit) and
put first on ``sys.path`` (``PYTHONPATH`` and the copy as working directory, whose
``pyproject.toml`` adds ``.`` for pytest); each mutant is patched in, tested and restored.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

# Options the feature tests under features/ need to replay their cassettes offline.
FEATURE_OPTIONS: tuple[str, ...] = (
    "--talkqa-mode=replay",
    "--block-network",
    "--record-mode=none",
)
# pytest's exit codes: 1 tests failed, 2 interrupted (e.g. an import error), 3 internal error,
# 4 usage error (also a conftest that fails to import), 5 none collected.
KILLED_EXITS = frozenset({1, 2})
LOAD_FAILURE_EXITS = frozenset({3, 4})


@dataclass(frozen=True)
class Mutant:
    """One planted fault: ``original`` must occur exactly once in ``file`` so that a refactor
    which moves or rewrites the code makes the mutant loudly invalid, never silently gone."""

    id: str
    file: str
    original: str
    replacement: str
    description: str
    tests: tuple[str, ...]


class Verdict(StrEnum):
    KILLED = "killed"
    SURVIVED = "survived"
    INVALID = "invalid"


@dataclass(frozen=True)
class Result:
    mutant: Mutant
    verdict: Verdict
    detail: str
    seconds: float


def patched(text: str, mutant: Mutant) -> str | None:
    """The file's text with the fault planted, or None when the snippet is not there once."""
    if text.count(mutant.original) != 1:
        return None
    return text.replace(mutant.original, mutant.replacement)


def verdict_of(exit_code: int, output: str = "", file: str = "") -> tuple[Verdict, str]:
    """What pytest's exit code says about a mutant. An internal or usage error kills it only
    when pytest's output names the mutated file (the fault broke loading a conftest or
    plugin); otherwise the selection or options are wrong, and the mutant proves nothing."""
    if exit_code in KILLED_EXITS:
        return Verdict.KILLED, f"pytest exit {exit_code}"
    if exit_code in LOAD_FAILURE_EXITS and file and file in output:
        return Verdict.KILLED, f"pytest exit {exit_code}: {file} failed to load"
    if exit_code == 0:
        return Verdict.SURVIVED, "every selected test passed"
    if exit_code == 5:
        return Verdict.INVALID, "no tests ran (selection matches nothing)"
    return Verdict.INVALID, f"pytest exit {exit_code} (usage or internal error)"


def is_feature(test: str) -> bool:
    return test.startswith("features/")


def mixed(tests: Iterable[str]) -> bool:
    """Feature tests replay with the network blocked, which would fail the tests under
    tests/ that start a local sandbox: the two never share one pytest run."""
    kinds = {is_feature(t) for t in tests}
    return len(kinds) > 1


def pytest_args(tests: Iterable[str]) -> list[str]:
    selected = list(tests)
    args = ["-x", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
    if selected and all(is_feature(t) for t in selected):
        args += FEATURE_OPTIONS
    return [*args, *selected]


def tree_files(repo: Path) -> list[str]:
    """The files of the tree as git would commit it (tracked, and untracked but not ignored)."""
    done = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=repo,
        capture_output=True,
        check=True,
    )
    return [name for name in done.stdout.decode().split("\0") if name]


def copy_tree(repo: Path, into: Path) -> None:
    for name in tree_files(repo):
        source = repo / name
        target = into / name
        if source.is_symlink():  # e.g. talkqa/checklists -> ../dataflows: a link in the copy too
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(source.readlink())
            continue
        if not source.is_file():  # deleted in the work tree but still tracked
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def run_pytest(copy: Path, tests: Iterable[str], timeout: float) -> tuple[int, str]:
    """pytest's exit code and output on ``tests`` in the copy, importing the copy's packages
    before the editable install's. A run past ``timeout`` counts as interrupted (killed: the
    fault hung it), and its whole process group (sandboxes, sign-offs) is ended.

    No bytecode is written: a patched file restored within the same second and size could
    otherwise be imported from a stale ``.pyc`` of its mutant."""
    env = {**os.environ, "PYTHONPATH": str(copy), "PYTHONDONTWRITEBYTECODE": "1"}
    with subprocess.Popen(
        [sys.executable, "-m", "pytest", *pytest_args(tests)],
        cwd=copy,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    ) as proc:
        try:
            output, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return 2, f"timed out after {timeout:.0f}s"
    return proc.returncode, output.decode(errors="replace")


def run_mutant(copy: Path, mutant: Mutant, timeout: float, clock: Callable[[], float]) -> Result:
    started = clock()
    path = copy / mutant.file
    if not path.is_file():
        return Result(mutant, Verdict.INVALID, f"{mutant.file} does not exist", 0.0)
    if mixed(mutant.tests):
        return Result(mutant, Verdict.INVALID, "mixes features/ and tests/ in one selection", 0.0)
    original = path.read_text(encoding="utf-8")
    faulty = patched(original, mutant)
    if faulty is None:
        count = original.count(mutant.original)
        return Result(
            mutant,
            Verdict.INVALID,
            f"snippet found {count} times in {mutant.file}, expected exactly once",
            0.0,
        )
    try:
        path.write_text(faulty, encoding="utf-8")
        code, output = run_pytest(copy, mutant.tests, timeout)
        verdict, detail = verdict_of(code, output, mutant.file)
    finally:
        path.write_text(original, encoding="utf-8")
    return Result(mutant, verdict, detail, clock() - started)


def summary_line(results: list[Result]) -> str:
    killed = sum(1 for r in results if r.verdict is Verdict.KILLED)
    total = len(results)
    percent = 100.0 * killed / total if total else 0.0
    return f"killed {killed} of {total} ({percent:.0f}%)"


class BaselineFailed(Exception):
    """The selected tests fail on the unmutated copy: every "killed" would be meaningless."""


def check_baseline(copy: Path, mutants: Iterable[Mutant], timeout: float) -> None:
    """Run every mutant's tests once on the clean copy (features apart); they must pass."""
    tests = list(dict.fromkeys(t for m in mutants for t in m.tests))
    for group in ([t for t in tests if is_feature(t)], [t for t in tests if not is_feature(t)]):
        if not group:
            continue
        code, output = run_pytest(copy, group, timeout)
        if code != 0:
            lines = [line for line in output.splitlines() if line.strip()]
            failed = [line for line in lines if line.startswith(("FAILED", "ERROR"))]
            last = (failed or lines or ["no output"])[-1].strip()
            raise BaselineFailed(
                f"the mutants' tests fail without any mutant (pytest exit {code}: {last}): "
                "fix the suite first"
            )
