"""`talkqa report`: the Allure 3 HTML report of a run's allure-results, as one file, via npx.

Allure 3 is a Node program (no Java). The version is pinned so a report looks the same on
every machine; npx fetches it once into its cache. The awesome plugin's ``singleFile``
option inlines every script and result, so ``index.html`` opens from disk (``file://``)
and can be mailed or attached to a ticket; its Google Analytics tag is removed, so opening
a report sends nothing anywhere.

The ``--out`` folder is the user's path: the report is built in a temporary folder next to
it and swapped in only once complete, and an existing folder is replaced only when it holds
talk-qa's marker (a previous report of ours) or nothing at all.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from talkqa.errors import UserError
from talkqa.redact import redact_files, redactor_from_env
from talkqa.report.environment import allure3_config

ALLURE_VERSION = "3.18.0"  # npm package `allure` (Allure Report 3)
MARKER = ".talkqa-report"  # written into every report folder: "talk-qa may replace this"
NODE_HINT = (
    "install Node.js 20 or later with npx (Debian/Ubuntu: `apt-get install -y nodejs npm`; "
    "else https://nodejs.org), then run `talkqa report` again"
)
_ANALYTICS = re.compile(
    r"\s*<script async src=\"https://www\.googletagmanager\.com/[^\"]*\"></script>"
    r"\s*<script>\s*window\.dataLayer[\s\S]*?</script>"
)

Runner = Callable[..., subprocess.CompletedProcess[Any]]


def allure_command(
    npx: str, results: Path, out: Path, config: Path, version: str = ALLURE_VERSION
) -> list[str]:
    """The npx command line that generates the report (pure)."""
    return [
        npx, "--yes", f"allure@{version}", "generate", str(results),
        "--output", str(out), "--config", str(config),
    ]  # fmt: skip


def report_config(name: str) -> dict[str, Any]:
    """allurerc.json: talk-qa's name and categories, and the awesome report as one file."""
    return {
        **allure3_config(name),
        "plugins": {"awesome": {"options": {"singleFile": True, "reportName": name}}},
    }


def without_analytics(html: str) -> str:
    """The report's page without its Google Analytics tag (a report must not phone home)."""
    return _ANALYTICS.sub("", html)


def report_name(results: Path) -> str:
    """'talk-qa: <checklists>' from the run's results, else plain 'talk-qa'."""
    epics: list[str] = []
    for path in sorted(results.glob("*-result.json")):
        try:
            labels = json.loads(path.read_text(encoding="utf-8")).get("labels") or []
        except (OSError, ValueError):
            continue
        for label in labels:
            if label.get("name") == "epic" and label.get("value") not in epics:
                epics.append(str(label.get("value")))
    return "talk-qa: " + ", ".join(epics) if epics else "talk-qa"


def check_out(out: Path) -> None:
    """Refuse an ``--out`` that talk-qa did not write: it may hold someone's files."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: is a file: give a folder for the report")
    if out.is_dir() and not (out / MARKER).is_file() and any(out.iterdir()):
        raise UserError(
            f"--out {out}: folder exists and is not a talk-qa report (no {MARKER} in it): "
            "give another --out, or empty that folder yourself"
        )


def generate(
    results: Path,
    out: Path,
    *,
    name: str | None = None,
    npx: str | None = None,
    run: Runner = subprocess.run,
    version: str = ALLURE_VERSION,
) -> Path:
    """Build the one-file report into a temporary folder, then swap it in as ``out``.

    Raises UserError (one line) when there are no results, ``out`` is not ours, Node is
    missing, or Allure fails; ``out`` is then exactly as it was.
    """
    if not results.is_dir() or not any(results.glob("*-result.json")):
        raise UserError(
            f"{results}: no Allure results: run `make signoff` (or `talkqa signoff`) first"
        )
    check_out(out)
    npx = npx or shutil.which("npx")
    if npx is None:
        raise UserError(f"the Allure 3 report needs Node.js: {NODE_HINT}")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".talkqa-report-", dir=out.parent) as scratch:
        staged, config = Path(scratch) / "report", Path(scratch) / "allurerc.json"
        config.write_text(
            json.dumps(report_config(name or report_name(results)), indent=2) + "\n",
            encoding="utf-8",
        )
        print(
            f"building the report with Allure {version} through npx "
            "(the first run fetches it from the npm registry)...",
            flush=True,
        )
        done = run(allure_command(npx, results, staged, config, version), check=False)
        index = staged / "index.html"
        if done.returncode != 0 or not index.is_file():
            raise UserError(
                f"Allure {version} could not generate {out} (npx exit code {done.returncode}): "
                "see its output above; npx needs the npm registry once to fetch it"
            )
        index.write_text(without_analytics(index.read_text(encoding="utf-8")), encoding="utf-8")
        redact_files([staged], redactor_from_env(os.environ), known_only=True)
        (staged / MARKER).write_text(
            "Written by `talkqa report`; the next run replaces this whole folder.\n",
            encoding="utf-8",
        )
        _swap_in(staged, out, Path(scratch) / "previous")
    return out / "index.html"


def _swap_in(staged: Path, out: Path, parking: Path) -> None:
    """Replace ``out`` by ``staged``; the old report is parked first and dropped last."""
    if out.exists():
        out.rename(parking)
    staged.rename(out)

