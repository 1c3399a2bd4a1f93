"""Run `talkqa` as its console script does (through main), and return the exit code."""

from __future__ import annotations

import sys

import pytest

from talkqa.cli import main


def run_cli(args: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(sys, "argv", ["talkqa", *args])
    try:
        main()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0
