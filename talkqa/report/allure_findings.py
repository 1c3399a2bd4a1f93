"""Findings as Allure attachments: an HTML table for people, the same rows as JSON for tools.

Rendering is pure (``findings_html``, ``findings_json``); ``attach_findings`` is the only
call into Allure, and Allure's own plugin manager makes it a no-op when no Allure plugin
is listening (a plain ``pytest`` run, or a script).
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import Any

from talkqa.checks import Finding

COLUMNS: tuple[tuple[str, str], ...] = (
    ("kind", "Kind"),
    ("section", "Section"),
    ("check", "Check"),
    ("source_id", "Source id"),
    ("target_id", "Target id"),
    ("property", "Source → target property"),
    ("expected", "Expected"),
    ("actual", "Actual"),
    ("explanation", "Explanation"),
)

_STYLE = (
    "body{font:13px/1.4 system-ui,sans-serif;margin:8px}"
    "table{border-collapse:collapse;width:100%}"
    "th,td{border:1px solid #ccc;padding:4px 6px;text-align:left;vertical-align:top}"
    "th{background:#f3f3f3}td.k{font-weight:600;color:#b00020}"
    "code{font-family:ui-monospace,monospace;white-space:pre-wrap;word-break:break-word}"
)


def _value(value: Any) -> str:
    if value is None:
        return "—"
    return json.dumps(value, ensure_ascii=False, default=str)


def row(finding: Finding) -> dict[str, str]:
    """One finding as the table's cells (text, not yet escaped)."""
    if finding.source_path or finding.target_path:
        prop = f"{finding.source_path or '—'} → {finding.target_path or '—'}"
    else:
        prop = "—"
    explanation = finding.explanation or finding.note
    if finding.explanation and finding.note:
        explanation = f"{finding.note}; {finding.explanation}"
    return {
        "kind": finding.kind.value,
        "section": finding.section,
        "check": finding.check,
        "source_id": finding.source_id or "—",
        "target_id": finding.target_id or "—",
        "property": prop,
        "expected": _value(finding.expected),
        "actual": _value(finding.actual),
        "explanation": explanation or "—",
    }


def findings_html(findings: Sequence[Finding], title: str = "Findings") -> str:
    """A self-contained HTML page with one table row per finding."""
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label in COLUMNS)
    body: list[str] = []
    for finding in findings:
        cells = row(finding)
        tds = []
        for key, _ in COLUMNS:
            text = html.escape(cells[key])
            if key == "kind":
                tds.append(f'<td class="k">{text}</td>')
            elif key in ("expected", "actual", "property"):
                tds.append(f"<td><code>{text}</code></td>")
            else:
                tds.append(f"<td>{text}</td>")
        body.append("<tr>" + "".join(tds) + "</tr>")
    if not body:
        body.append(f'<tr><td colspan="{len(COLUMNS)}">No findings.</td></tr>')
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h3>{html.escape(title)} ({len(findings)})</h3>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        "</body></html>"
    )


def findings_json(findings: Sequence[Finding]) -> str:
    """The findings as a JSON array (each with its one-line message)."""
    return json.dumps(
        [finding.model_dump(mode="json") for finding in findings],
        indent=2,
        ensure_ascii=False,
        default=str,
    )


def attach_findings(findings: Sequence[Finding], name: str) -> None:
    """Attach the table and the JSON to the current Allure step or test."""
    import allure

    allure.attach(
        findings_html(findings, name),
        name=f"{name} (table)",
        attachment_type=allure.attachment_type.HTML,
    )
    allure.attach(
        findings_json(findings), name=f"{name} (json)", attachment_type=allure.attachment_type.JSON
    )
