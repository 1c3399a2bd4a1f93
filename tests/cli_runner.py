"""Run `talkqa` as its console script does (through main), and return the exit code."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from talkqa.cli import main

VENDOR_VARIABLES = ("CHARGEBEE_", "INVOICED_")


def run_cli(args: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(sys, "argv", ["talkqa", *args])
    try:
        main()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


Ran = subprocess.CompletedProcess[str]


def talkqa(
    args: Sequence[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
) -> Ran:
    """`talkqa ARGS` in ``cwd`` with exactly ``env`` as its environment (default: this one
    without the vendors' variables), as a child process would run it, but in this process:
    its exit code and what it printed. A child would cost a fresh interpreter importing
    pytest and talk-qa again (~1.5 s of CPU per sign-off); tests about the process itself
    (Ctrl-C, a service) start a real one."""
    if env is None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(VENDOR_VARIABLES)}
    for name in set(os.environ) - set(env):
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(cwd)
    capsys.readouterr()  # only what this command prints
    code = run_cli(list(args), monkeypatch)
    printed = capsys.readouterr()
    return Ran(["talkqa", *args], code, printed.out, printed.err)
