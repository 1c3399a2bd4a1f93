"""Services (`talkqa sync --watch`, `python -m defects.service`) as subprocesses for tests:
their stderr lines gathered as they come, waited on as conditions (never sleeps), stopped
with Ctrl-C (SIGINT) or, as a supervisor does, SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from talkqa.sandbox.server import RunningSandboxes

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "dataflows" / "chargebee-invoiced.rst"
TALKQA = str(Path(sys.executable).with_name("talkqa"))


class Watch:
    """A service as a subprocess (``argv``); its stderr lines gathered as they come."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            argv,
            env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, cwd=ROOT)
        self.lines: list[str] = []
        self.ended = False
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.ended = True
            self.cond.notify_all()

    def wait_line(self, *parts: str, count: int = 1, timeout: float = 30.0) -> str:
        """The ``count``-th line holding every one of ``parts``, once it came."""
        def found() -> list[str]:
            return [line for line in self.lines if all(p in line for p in parts)]

        with self.cond:  # the reader notifies per line and at the end of the output
            self.cond.wait_for(lambda: len(found()) >= count or self.ended, timeout)
            lines = found()
            assert len(lines) >= count, f"no line {count} with {parts}: {self.lines}"
            return lines[count - 1]

    def interrupt(self, how: signal.Signals = signal.SIGINT) -> int:
        """Stop it with Ctrl-C's signal (or ``how``); its exit status."""
        self.proc.send_signal(how)
        code = self.proc.wait(timeout=30)
        self.reader.join(timeout=5)
        return code


@contextmanager
def watching(
    args: list[str], served: RunningSandboxes, doc: Path = DOC
) -> Iterator[Watch]:
    """`talkqa sync DOC --watch ARGS` against ``served``."""
    with serving([TALKQA, "sync", str(doc), "--watch", *args], served) as watch:
        yield watch


@contextmanager
def serving(argv: list[str], served: RunningSandboxes) -> Iterator[Watch]:
    """Any service started as ``argv`` with ``served``'s variables, killed if still up."""
    watch = Watch(argv, served.env)
    try:
        yield watch
    finally:
        if watch.proc.poll() is None:
            watch.proc.kill()
            watch.proc.wait(timeout=10)


