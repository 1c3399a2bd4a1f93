"""The promise registry: every promise a checklist section can make, in sign-off order.

Everything that names a promise (Gherkin tags, pytest markers, ``--promise``, sign-off
columns, finding checks) takes it from here; the generator renders the registry's plans and
the steps act on the same plans.
"""

from __future__ import annotations

from talkqa.dataflow.spec import DataflowSpec, Section
from talkqa.promises.base import Promise
from talkqa.promises.edits import Conflicts, Edits, Idempotence, VendorLimits
from talkqa.promises.existence import Exists, LinkFirst, Merge
from talkqa.promises.ids import FEATURE_TAG_DOCS, FeatureTag, PromiseId
from talkqa.promises.plan import ScenarioPlan
from talkqa.promises.values import Properties, References

__all__ = [
    "REGISTRY",
    "FeatureTag",
    "Promise",
    "PromiseId",
    "ScenarioPlan",
    "marker_docs",
    "plans_of",
    "promise",
]

REGISTRY: tuple[Promise, ...] = (
    Exists(),
    LinkFirst(),
    Merge(),
    Properties(),
    References(),
    Edits(),
    VendorLimits(),
    Conflicts(),
    Idempotence(),
)
assert [p.id for p in REGISTRY] == list(PromiseId), "the registry lists every promise once"

_BY_ID: dict[PromiseId, Promise] = {p.id: p for p in REGISTRY}


def promise(promise_id: str) -> Promise:
    """The promise of that name (``KeyError``-free: callers pass registry names)."""
    return _BY_ID[PromiseId(promise_id)]


def plans_of(spec: DataflowSpec, section: Section) -> list[ScenarioPlan]:
    """Every scenario of a section, in registry order: the features' and the steps' one source."""
    return [plan for p in REGISTRY for plan in p.plans(spec, section)]


def marker_docs() -> dict[str, str]:
    """Every tag talk-qa writes, with its marker description (pytest registers these)."""
    return {
        **{tag.value: doc for tag, doc in FEATURE_TAG_DOCS.items()},
        **{p.id.value: p.doc for p in REGISTRY},
    }
