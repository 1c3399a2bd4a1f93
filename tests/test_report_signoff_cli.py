"""`talkqa signoff --promise`: which scenarios run, and a one-line error for a bad promise."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from talkqa.cli import main
from talkqa.errors import UserError
from talkqa.judge_cli import _selection

REPO = Path(__file__).resolve().parents[1]
CHECKLIST = REPO / "dataflows" / "chargebee-invoiced.rst"


def test_selection_keeps_checklist_order_and_drops_repeats() -> None:
    assert _selection(["idempotence", "exists", "exists"]) == ["exists", "idempotence"]
    assert _selection([]) == []
    with pytest.raises(UserError, match=r"--promise 'edit' is not a promise: use one of exists,"):
        _selection(["exists", "edit"])


def test_an_unknown_promise_is_a_one_line_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.chdir(REPO)
    argv = ["talkqa", "signoff", str(CHECKLIST), "--promise", "speed", "--reports", str(tmp_path)]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert lines == [
        "talkqa: error: --promise 'speed' is not a promise: use one of exists, link_first, "
        "merge, properties, references, edits, vendor_limits, conflicts, idempotence"
    ]
    assert not any(tmp_path.iterdir())  # nothing ran
