"""`make report`: the Allure 3 HTML report of a run's allure-results, through npx.

Allure 3 is a Node program (no Java). The version is pinned so a report looks the same on
every machine; npx fetches it once into its cache. When Node is missing the user gets one
line saying what to install, and exit code 2 (the project's usage/input error code).

Usage: ``python -m talkqa.report.allure_html [RESULTS] [--out DIR] [--name NAME]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from talkqa.errors import UserError
from talkqa.report.environment import allure3_config

ALLURE_VERSION = "3.18.0"  # npm package `allure` (Allure Report 3)
NODE_HINT = (
    "install Node.js 20 or later with npx (Debian/Ubuntu: `apt-get install -y nodejs npm`; "
    "else https://nodejs.org), then run `make report` again"
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


def generate(
    results: Path,
    out: Path,
    *,
    name: str | None = None,
    npx: str | None = None,
    run: Runner = subprocess.run,
    version: str = ALLURE_VERSION,
) -> Path:
    """Write the Allure 3 config next to the results and generate the report into ``out``.

    Raises UserError (one line) when there are no results, Node is missing, or Allure fails.
    """
    if not results.is_dir() or not any(results.glob("*-result.json")):
        raise UserError(
            f"{results}: no Allure results: run `make signoff` (or `talkqa signoff`) first"
        )
    npx = npx or shutil.which("npx")
    if npx is None:
        raise UserError(f"the Allure 3 report needs Node.js: {NODE_HINT}")
    config = results.parent / "allurerc.json"
    config.write_text(
        json.dumps(allure3_config(name or report_name(results)), indent=2) + "\n",
        encoding="utf-8",
    )
    if out.exists():
        if any(out.iterdir()) and not (out / "index.html").is_file():
            raise UserError(
                f"{out}: not an Allure report (no index.html) and not empty: "
                "give another --out folder, talk-qa replaces only an old report"
            )
        shutil.rmtree(out)
    done = run(allure_command(npx, results, out, config, version), check=False)
    if done.returncode != 0 or not (out / "index.html").is_file():
        raise UserError(
            f"Allure {version} could not generate {out} (npx exit code {done.returncode}): "
            "see its output above; npx needs the npm registry once to fetch it"
        )
    return out / "index.html"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m talkqa.report.allure_html",
        description=f"Generate the Allure {ALLURE_VERSION} HTML report of a talk-qa run.",
    )
    parser.add_argument("results", nargs="?", default="reports/allure-results", type=Path)
    parser.add_argument("--out", default=Path("reports/allure-report"), type=Path)
    parser.add_argument("--name", default=None, help="report title (default: the checklists)")
    args = parser.parse_args(argv)
    try:
        index = generate(args.results, args.out, name=args.name)
    except UserError as exc:
        print(f"make report: {exc}", file=sys.stderr)
        return 2
    print(f"Allure report: {index}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
