"""A command syncer's run report reaches the judge: the command driver names a fresh path in
``$TALKQA_RUN_REPORT``, and what the syncer writes there is what the conflict and vendor-limit
promises judge (a syncer that writes none is said to have given none)."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

from talkqa.dataflow.spec import DataflowSpec
from talkqa.sut import CommandDriver
from tests.test_sut import ENV  # the five variables a command driver needs

REPORT = {
    "syncer": "tiny",
    "sections": [
        {
            "index": 1,
            "conflicts": [{"source_id": "cu_1", "property": "email -> email", "winner": "target"}],
        }
    ],
}
WRITES_REPORT = (
    "import json, os, sys\n"
    "with open(os.environ['TALKQA_RUN_REPORT'], 'w') as out:\n"
    "    out.write(sys.argv[1])\n"
)


def _spec() -> DataflowSpec:
    return DataflowSpec(file="x.rst", source="Chargebee", target="Invoiced", sections=())


def _command(tmp_path: Path, code: str, *args: str) -> str:
    script = tmp_path / "sync.py"
    script.write_text(code, encoding="utf-8")
    return shlex.join([sys.executable, str(script), *args])


def test_the_report_a_syncer_writes_is_the_report_judged(tmp_path: Path) -> None:
    command = _command(tmp_path, WRITES_REPORT, json.dumps(REPORT))
    report = CommandDriver(command, ENV).run(_spec()).report
    assert report is not None and report.syncer == "tiny"
    section = report.section(1)
    assert section is not None
    assert [(c.source_id, c.winner) for c in section.conflicts] == [("cu_1", "target")]


def test_a_syncer_that_writes_no_report_gave_none(tmp_path: Path) -> None:
    assert CommandDriver(_command(tmp_path, "print('synced')\n"), ENV).run(_spec()).report is None
