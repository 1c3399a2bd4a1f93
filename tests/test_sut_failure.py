"""A system under test whose command fails is reported once, with its own last words.

A scenario runs the real step glue against the bundled sandboxes (127.0.0.1) with a
``--sut-command`` that writes to stderr and exits 3, in a pytest subprocess; the failure
must name the command, its exit code and the stderr tail exactly once, with no chained
exception ("During handling of the above exception ...") around it.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

FAILING = "import sys; print('ok so far'); sys.stderr.write('no route to invoiced\\n'); sys.exit(3)"


def test_a_failing_sut_command_is_one_clear_failure(tmp_path: Path) -> None:
    command = f"{shlex.quote(sys.executable)} -c {shlex.quote(FAILING)}"
    outcomes = tmp_path / "outcomes.jsonl"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "features/chargebee-invoiced",
            "-k",
            "every_chargebee_customer_has_exactly_one_linked",
            "--talkqa-mode=sandbox",
            f"--sut-command={command}",
            f"--talkqa-outcomes={outcomes}",
            "-q",
            "-rN",  # no short summary: it repeats the message, untruncated when CI is set
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "1 failed" in out, out
    assert out.count("failed with exit code 3: no route to invoiced") == 1, out
    assert "During handling of the above exception" not in out, out
    assert "Traceback" not in out and "SutError" not in out, out
    lines = [json.loads(line) for line in outcomes.read_text(encoding="utf-8").splitlines()]
    assert [line["status"] for line in lines] == ["failed"]  # the syncer's failure: NO-GO
    assert lines[0]["reason"].endswith("failed with exit code 3: no route to invoiced")
