"""End to end: a syncer that prints its credentials leaves no key anywhere under reports/.

`talkqa signoff --mode sandbox` against the bundled sandboxes (127.0.0.1), with a
``--sut-command`` that holds the Chargebee key as an option and prints its Authorization
headers before failing, so its output lands in every writer: outcomes, sign-off, Allure
results and attachments, environment.properties, and the console.
"""

from __future__ import annotations

import base64
import shlex
import sys
from pathlib import Path

import pytest

from talkqa.sandbox.chargebee import API_KEY as CHARGEBEE_KEY
from talkqa.sandbox.invoiced import API_KEY as INVOICED_KEY
from tests.cli_runner import run_cli

REPO = Path(__file__).resolve().parents[1]
CHECKLIST = REPO / "dataflows" / "chargebee-invoiced.rst"

LEAKY = """\
import base64, os, sys
for name in ("CHARGEBEE_API_KEY", "INVOICED_API_KEY"):
    key = os.environ[name]
    basic = base64.b64encode((key + ":").encode()).decode()
    print(f"GET /customers Authorization: Basic {basic}")
    print(f"retry with authorization: bearer {key}", file=sys.stderr)
key = os.environ["CHARGEBEE_API_KEY"]
basic = base64.b64encode((key + ":").encode()).decode()
sys.stderr.write(f"giving up, Authorization: Basic {basic} (key {key})\\n")
sys.exit(3)
"""


def _leaks() -> list[str]:
    forms = []
    for key in (CHARGEBEE_KEY, INVOICED_KEY):
        basic = base64.b64encode(f"{key}:".encode()).decode()
        forms += [key, basic, basic.rstrip("=")]
    return forms


def test_no_key_nor_its_base64_under_reports_or_on_the_console(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(REPO)
    for name in ("CHARGEBEE_BASE_URL", "INVOICED_BASE_URL"):
        monkeypatch.delenv(name, raising=False)  # fresh sandboxes with their known keys
    syncer = tmp_path / "leaky_syncer.py"
    syncer.write_text(LEAKY, encoding="utf-8")
    command = f"{shlex.quote(sys.executable)} {syncer} --api-key {CHARGEBEE_KEY} --once"
    reports = tmp_path / "reports"
    args = ["signoff", str(CHECKLIST), "--mode", "sandbox", "--sut-command", command,
            "--promise", "exists", "--reports", str(reports)]  # fmt: skip
    assert run_cli(args, monkeypatch) == 1  # the syncer fails: a NO-GO, not a crash
    console = capfd.readouterr()
    files = [p for p in reports.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"outcomes.jsonl", "signoff.md", "environment.properties"} <= names
    texts = {str(p): p.read_bytes().decode("utf-8", errors="replace") for p in files}
    said = "giving up, Authorization: Basic <CHARGEBEE_API_KEY> (key <CHARGEBEE_API_KEY>)"
    assert said in texts[str(reports / "outcomes.jsonl")]  # the syncer's words, redacted
    assert any(said in text for where, text in texts.items() if where.endswith("-result.json"))
    for leak in _leaks():
        for where, text in texts.items():
            assert leak not in text, f"{leak[:6]}… leaked into {where}"
            assert leak not in where
        assert leak not in console.out and leak not in console.err, "leaked on the console"
    environment = texts[str(reports / "allure-results" / "environment.properties")]
    assert "--api-key <CHARGEBEE_API_KEY>" in environment
