"""Promises about values: mapped properties equal under their declared types, and references
that point at the target linked to the referenced source (also after the referenced entity
is edited)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from talkqa.dataflow.spec import DataflowSpec, PropertyMap, Section
from talkqa.promises.base import (
    SAMPLE_COUNT,
    Promise,
    plan_for,
    section_names,
    table,
)
from talkqa.promises.ids import PromiseId
from talkqa.promises.plan import Action, ReferencedEditPlan, ScenarioPlan
from talkqa.systems.catalog import Binding, bind, binding_of

if TYPE_CHECKING:
    from talkqa.scene import Scene

TABLE_HEADER = ("source_path", "target_path", "data_type")
REFERENCE_HEADER = (*TABLE_HEADER, "references")


def type_text(data_type: str | None) -> str:
    return data_type if data_type is not None else "N/A"


def is_reference(binding: Binding | None, prop: PropertyMap) -> bool:
    """Whether a property row maps a reference field (checked by the references promise)."""
    return binding is not None and prop.source_path in binding.references


def split_rows(section: Section) -> tuple[list[PropertyMap], list[PropertyMap]]:
    """(plain property rows, reference rows) of a section, in checklist order."""
    binding = bind(section.source)
    plain = [p for p in section.properties if not is_reference(binding, p)]
    refs = [p for p in section.properties if is_reference(binding, p)]
    return plain, refs


def _row(prop: PropertyMap) -> tuple[str, str, str]:
    return (prop.source_path, prop.target_path, type_text(prop.data_type))


def _referenced_name(spec: DataflowSpec, prop: PropertyMap, binding: Binding) -> str:
    key = binding.references[prop.source_path]
    for section in spec.sections:
        source = bind(section.source)
        if source is not None and source.key == key:
            return section_names(section)[0]
    return f"{key[0]} {key[1]}"


_PROPERTIES_SENTENCE = ("The following properties",)


def _properties_sentence(src: str, tgt: str) -> str:
    """The sentence both value promises test, when the checklist lacks it."""
    return f"The following properties are synchronized between a {src} and a {tgt}."


class Properties(Promise):
    """Each linked pair holds equal values in every mapped (non-reference) row."""

    id: ClassVar[PromiseId] = PromiseId.PROPERTIES
    title: ClassVar[str] = "Properties"
    doc: ClassVar[str] = "promise: mapped properties are equal under their declared types"
    sentence_starts: ClassVar[tuple[str, ...]] = _PROPERTIES_SENTENCE

    def fallback_sentence(self, src: str, tgt: str) -> str:
        return _properties_sentence(src, tgt)

    def applies(self, section: Section) -> bool:
        return bool(split_rows(section)[0])

    def plans(self, spec: DataflowSpec, section: Section) -> list[ScenarioPlan]:
        plain = split_rows(section)[0]
        if not plain:
            return []
        src, tgt = section_names(section)
        return [
            plan_for(
                self,
                spec,
                section,
                f"Each linked {tgt} has the mapped properties of its {src}",
                count=SAMPLE_COUNT,
                runs_before=False,
                rows=tuple(plain),
            )
        ]

    def then_lines(self, spec: DataflowSpec, section: Section, plan: ScenarioPlan) -> list[str]:
        return [
            "Then every linked pair has these properties equal under their declared types:",
            *("  " + line for line in table(TABLE_HEADER, [_row(p) for p in plan.rows])),
        ]

    def judge(self, sc: Scene) -> None:
        sc.judge_rows(sc.plan.rows, self.id)


class References(Promise):
    """Each reference field of a linked target points at the target linked to the source the
    source's field references, also after that referenced entity is edited."""

    id: ClassVar[PromiseId] = PromiseId.REFERENCES
    title: ClassVar[str] = "References"
    doc: ClassVar[str] = (
        "promise: reference fields point at the linked target of the referenced source"
    )
    sentence_starts: ClassVar[tuple[str, ...]] = _PROPERTIES_SENTENCE

    def fallback_sentence(self, src: str, tgt: str) -> str:
        return _properties_sentence(src, tgt)

    def applies(self, section: Section) -> bool:
        return bool(split_rows(section)[1]) and bind(section.source) is not None

    def plans(self, spec: DataflowSpec, section: Section) -> list[ScenarioPlan]:
        if not self.applies(section):
            return []
        refs = tuple(split_rows(section)[1])
        _src, tgt = section_names(section)
        plans = [
            plan_for(
                self,
                spec,
                section,
                f"The references of each linked {tgt} point at linked targets",
                count=SAMPLE_COUNT,
                runs_before=False,
                rows=refs,
            )
        ]
        source = bind(section.source)
        if source is None or bind(section.target) is None:
            return plans
        from talkqa.promises.edits import Edits
        from talkqa.samples import rename_edit

        for ref_key in dict.fromkeys(
            source.references[p.source_path] for p in refs if p.source_path in source.references
        ):
            referenced = binding_of(ref_key)
            edit = rename_edit(referenced)
            if edit is None:
                continue
            system = referenced.system[:1].upper() + referenced.system[1:]
            name = f"{system} {referenced.datatype}"
            plans.append(
                plan_for(
                    self,
                    spec,
                    section,
                    f"The references of each linked {tgt} still point at linked targets "
                    f"after each referenced {name} is edited",
                    sentence=Edits().sentence(section),
                    action=Action.EDIT_REFERENCED,
                    referenced_edit=ReferencedEditPlan(
                        system=referenced.system, datatype=referenced.datatype, path=edit.path
                    ),
                    rows=refs,
                )
            )
        return plans

    def then_lines(self, spec: DataflowSpec, section: Section, plan: ScenarioPlan) -> list[str]:
        source = bind(section.source)
        assert source is not None
        rows = [(*_row(p), _referenced_name(spec, p, source)) for p in plan.rows]
        return [
            "Then every reference points at the target linked to the referenced source:",
            *("  " + line for line in table(REFERENCE_HEADER, rows)),
        ]

    def judge(self, sc: Scene) -> None:
        sc.judge_rows(sc.plan.rows, self.id)
