"""Sections talk-qa cannot reach are generated, run, and reported as skipped: not covered.

The checklist below has a section with no connector (Chargebee Quote); its features are
generated into a temporary folder and run through the real step glue in replay mode, in a
subprocess (no cassette is needed: the Background skips before any request).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from talkqa.dataflow.gherkin import generate, write_features
from talkqa.dataflow.rst import load

CHECKLIST = """\
==============================
Chargebee to Invoiced Dataflow
==============================

Generated: 2024-11-13 00:00:00

Introduction
------------

A checklist with a section talk-qa has no connector for.

Chargebee Quote to Invoiced Customers person
--------------------------------------------
Every Chargebee Quote will be synchronized with a Invoiced Customers person.

Once a link between a Chargebee Quote and a Invoiced Customers person is established, \
it will keep in sync between the two systems, regardless of where it is edited.

The following properties are synchronized between a Chargebee Quote and a Invoiced \
Customers person:

.. list-table::
   :header-rows: 1

   * - Chargebee Quote Property
     - Invoiced Customers person Property
     - Invoiced Data Type
   * - addr
     - address1
     - "string"
"""


def test_a_section_without_connector_runs_as_skipped_and_not_covered(tmp_path: Path) -> None:
    doc = tmp_path / "address-invoiced.rst"
    doc.write_text(CHECKLIST, encoding="utf-8")
    spec = load(doc)
    written = write_features(generate(spec, str(doc)), tmp_path / "features")
    assert len(written) == 1
    feature = written[0].read_text(encoding="utf-8")
    assert "@unbound" in feature and "| addr        | address1    | string    |" in feature
    (tmp_path / "talkqa.toml").write_text("", encoding="utf-8")  # a project: no test module
    outcomes = tmp_path / "outcomes.jsonl"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "features",
            "--talkqa-mode=replay",
            "--record-mode=none",
            f"--talkqa-outcomes={outcomes}",
            "-q",
            "-rs",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no connector for 'Chargebee Quote'" in done.stdout
    lines = [json.loads(line) for line in outcomes.read_text(encoding="utf-8").splitlines()]
    assert {line["promise"] for line in lines} == {"exists", "properties", "edits", "idempotence"}
    assert all(line["status"] == "skipped" for line in lines)
    reasons = {line["reason"] for line in lines}
    assert len(reasons) == 1, reasons
    # Each skipped scenario names what stands in the way (catalog.UNJUDGEABLE adds why, when
    # talk-qa knows: tests/test_checks.py)
    assert reasons.pop().startswith("not covered: no connector for 'Chargebee Quote'")

    from talkqa.report.signoff import SignoffInput, read_outcomes, sections_from_spec, write_signoff

    verdict = write_signoff(
        SignoffInput(
            outcomes=read_outcomes(outcomes),
            sections=sections_from_spec(spec),
            mode="replay",
            sut="reference-sync",
        ),
        tmp_path / "reports",
    )
    text = verdict.markdown.read_text(encoding="utf-8")
    assert "not covered" in text and "no connector for 'Chargebee Quote'" in text
