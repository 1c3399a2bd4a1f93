"""A parsed checklist for machines (stable JSON) and for humans (rich tables).

The JSON shape is a contract for tooling (`talkqa parse --json`); keep its keys stable and
only add new ones.
"""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from talkqa.dataflow.spec import DataflowSpec, ParseIssue, Section

__all__ = ["issue_line", "section_to_json", "spec_table", "spec_to_json"]


def spec_to_json(spec: DataflowSpec) -> dict[str, Any]:
    """The whole checklist as plain JSON-ready data."""
    return {
        "file": spec.file,
        "source": spec.source,
        "target": spec.target,
        "generated": spec.generated.isoformat(sep=" ") if spec.generated else None,
        "sections": [section_to_json(section) for section in spec.sections],
        "issues": [
            {"file": issue.file, "line": issue.line, "kind": issue.kind, "message": issue.message}
            for issue in spec.issues
        ],
    }


def section_to_json(section: Section) -> dict[str, Any]:
    """One section: datatype pair, kind, merge rules and property maps."""
    return {
        "index": section.index,
        "heading": section.heading,
        "line": section.line,
        "source": {"system": section.source.system, "datatype": section.source.datatype},
        "target": {"system": section.target.system, "datatype": section.target.datatype},
        "kind": section.kind.value,
        "condition": section.condition,
        "merges_existing": section.merges_existing,
        "merge_rules": [
            {"source_path": rule.source_path, "target_path": rule.target_path, "line": rule.line}
            for rule in section.merge_rules
        ],
        "properties": [
            {
                "source_path": prop.source_path,
                "target_path": prop.target_path,
                "data_type": prop.data_type,
                "qualifier": prop.qualifier,
                "line": prop.line,
            }
            for prop in section.properties
        ],
        "sentences": list(section.sentences),
    }


def issue_line(issue: ParseIssue) -> str:
    """`file:line: kind: message`, the form editors and CI logs jump to."""
    return f"{issue.file}:{issue.line}: {issue.kind}: {issue.message}"


def spec_table(spec: DataflowSpec) -> RenderableType:
    """An overview table of sections, then one property table per section with maps."""
    title = f"{spec.source or '?'} to {spec.target or '?'} ({spec.file})"
    overview = Table(title=title, title_justify="left")
    for column in ("#", "line", "source", "target", "kind", "merge rules", "properties"):
        overview.add_column(column, justify="right" if column in {"#", "line"} else "left")
    parts: list[RenderableType] = [overview]
    for section in spec.sections:
        kind = section.kind.value
        if section.condition:
            kind += f" (when {section.condition})"
        if section.merges_existing:
            kind += ", merges existing"
        overview.add_row(
            str(section.index),
            str(section.line),
            f"{section.source.system} {section.source.datatype}",
            f"{section.target.system} {section.target.datatype}",
            kind,
            str(len(section.merge_rules)),
            str(len(section.properties)) if section.properties else "existence only",
        )
        if section.properties or section.merge_rules:
            parts.append(_section_table(section))
    if not spec.sections:
        parts.append(Text("(no sections: introduction only)", style="dim"))
    return Group(*parts)


def _section_table(section: Section) -> Table:
    table = Table(
        title=f"#{section.index} {section.source.datatype} -> {section.target.datatype}",
        title_justify="left",
    )
    for column in ("line", "source property", "target property", "data type", "qualifier"):
        table.add_column(column, justify="right" if column == "line" else "left")
    for rule in section.merge_rules:
        table.add_row(str(rule.line), rule.source_path, rule.target_path, "(merge rule)", "")
    for prop in section.properties:
        table.add_row(
            str(prop.line),
            prop.source_path,
            prop.target_path,
            prop.data_type or "undeclared",
            prop.qualifier or "",
        )
    return table
