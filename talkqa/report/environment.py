r"""Allure's environment panel and failure categories for a talk-qa run.

The environment says what was judged against what (mode, system under test, versions,
vendor URLs with every secret stripped); the categories sort failures by finding kind,
which works because every finding message starts with ``<kind>: ``.

Allure 2 reads ``categories.json`` from the results and matches a whole message (Java
``matches``); Allure 3 takes the same rules from its config file (``allurerc.json``) and
searches (JavaScript ``test``), with no ``(?s)`` flag. The patterns are written so both
readings agree: ``[\s\S]*`` instead of a dot-all ``.*``.
"""

from __future__ import annotations

import json
import platform
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from talkqa import __version__
from talkqa.checks import FindingKind
from talkqa.report.latency import SectionLatency, seconds

_SECRET_WORDS = ("key", "token", "secret", "password", "passwd", "auth", "signature")

_TITLES: Mapping[FindingKind, str] = {
    FindingKind.MISSING: "Missing target (a source was not synchronised)",
    FindingKind.DUPLICATE: "Duplicate targets (one source, several targets)",
    FindingKind.ORPHAN: "Orphan targets (claiming a source that does not exist)",
    FindingKind.WRONG_TYPE: "Wrong type (e.g. a company where a person is due)",
    FindingKind.MISMATCH: "Property mismatch",
    FindingKind.DANGLING_REFERENCE: "Dangling reference (points at the wrong or no target)",
    FindingKind.CREATED_UNLINKED: "Created for an unlinked source (link-first section)",
    FindingKind.NOT_PROPAGATED: "Edit not propagated",
    FindingKind.WRITTEN_ON_RERUN: "Written on re-run (not idempotent)",
}


def git_revision(cwd: Path | None = None) -> str:
    """The work tree's commit ('abc1234', '-dirty' when changed), or 'unknown' outside git."""
    where = cwd or Path(__file__).resolve().parents[2]
    try:
        done = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=12"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    text = done.stdout.strip()
    return text if done.returncode == 0 and text else "unknown"


def redact_url(url: str) -> str:
    """A base URL safe to show: no user:password@, no secret-looking query parameters."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "")
    query = urlencode(
        [
            (name, "***" if any(word in name.lower() for word in _SECRET_WORDS) else value)
            for name, value in parse_qsl(parts.query, keep_blank_values=True)
        ]
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def _escape(text: str, *, key: bool) -> str:
    """Java .properties escaping (Allure reads the file as properties)."""
    out = text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
    if key:
        for char in (" ", "=", ":"):
            out = out.replace(char, "\\" + char)
    return out


def environment_properties(
    *, mode: str, sut: str, base_urls: Mapping[str, str], revision: str
) -> dict[str, str]:
    """The environment panel's rows (pure)."""
    props = {
        "mode": mode,
        "system.under.test": sut,
        "talkqa.version": __version__,
        "git.revision": revision,
        "python": platform.python_version(),
    }
    for system, url in sorted(base_urls.items()):
        props[f"{system}.base_url"] = redact_url(url)
    return props


ANY = r"[\s\S]*"  # any text across lines, in Java and JavaScript regexes alike


def kind_regex(kind: FindingKind) -> str:
    """The message pattern of a finding kind's category."""
    return rf"{ANY}\b{kind.value}: {ANY}"


def categories() -> list[dict[str, Any]]:
    """One Allure category per finding kind, plus not-covered and harness/vendor errors."""
    found: list[dict[str, Any]] = [
        {
            "name": _TITLES.get(kind, kind.value),
            "matchedStatuses": ["failed"],
            "messageRegex": kind_regex(kind),
        }
        for kind in FindingKind
    ]
    found.append(
        {
            "name": "Not covered",
            "matchedStatuses": ["skipped"],
            "messageRegex": rf"{ANY}not covered{ANY}",
        }
    )
    found.append(
        {
            "name": "Vendor API errors",
            "matchedStatuses": ["broken", "failed"],
            "messageRegex": rf"{ANY}\b(chargebee|invoiced) \w+{ANY}HTTP \d{{3}}{ANY}",
        }
    )
    found.append({"name": "Harness errors", "matchedStatuses": ["broken"]})
    return found


def allure3_config(name: str) -> dict[str, Any]:
    """Allure 3's config (allurerc.json): the report's name and the same categories."""
    return {"name": name, "categories": categories()}


def write_environment(
    results_dir: Path,
    *,
    mode: str,
    sut: str,
    base_urls: Mapping[str, str],
    revision: str | None = None,
    latency: Sequence[SectionLatency] = (),
) -> None:
    """Write ``environment.properties`` and ``categories.json`` into the Allure results.

    A service's propagation latency per section goes into the environment panel too, so the
    Allure report shows the sign-off's figures beside each scenario's own attachment."""
    results_dir.mkdir(parents=True, exist_ok=True)
    props = environment_properties(
        mode=mode, sut=sut, base_urls=base_urls, revision=revision or git_revision()
    )
    for figure in latency:
        props[f"latency.section.{figure.index}"] = (
            f"{figure.section}: p50 {seconds(figure.p50)}, p95 {seconds(figure.p95)}, "
            f"max {seconds(figure.max)} over {figure.count} entities"
        )
    lines = [f"{_escape(k, key=True)}={_escape(v, key=False)}" for k, v in props.items()]
    (results_dir / "environment.properties").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (results_dir / "categories.json").write_text(
        json.dumps(categories(), indent=2) + "\n", encoding="utf-8"
    )
