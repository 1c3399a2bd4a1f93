"""Which top-level fields of each collection a judgement reads, so its listings skip the rest.

A judgement of 31k entities reads about a tenth of what the vendors send (an Invoiced
customer has some 40 fields; the judge wants its id, type, claim and the mapped ones), and
building the rest from JSON was most of its decoding. The connectors decode a page straight
into the fields asked for plus those the vendor's definition types (``kept_fields``), and this
module says which to ask for, from the same tables the judge works from: the checklist's
property and merge rows, the bindings (their type fields, rules, references, owners) and the
money fields' currencies. A field left out here would read as absent: the judgement of every
shipped checklist is compared with and without the projection (``tests/test_reads.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from talkqa.dataflow.spec import Section
from talkqa.systems.catalog import Binding, binding_of
from talkqa.units import MONEY

# What the judge reads of every entity: its id, whether it is alive (``deleted``, ``status``)
# and the claim of a source it may carry (``talkqa.links.claim``)
ALWAYS = frozenset({"id", "deleted", "status", "metadata", "meta_data", "reference_id"})

Reads = dict[tuple[str, str], frozenset[str]]


def head(path: str) -> str:
    """The top-level key of a dotted path: ``order_line_items.unit_price`` -> its list."""
    return path.split(".", 1)[0].strip()


def binding_reads(binding: Binding) -> frozenset[str]:
    """What pairing and choosing the entities of ``binding`` read, wherever it is used."""
    keys = set(ALWAYS) | set(binding.fixed) | binding.rule_reads
    keys |= {head(path) for path in binding.references}
    keys |= {name for name in (binding.owner, binding.claimed_in) if name is not None}
    money = MONEY.get((binding.system, binding.resource))
    if money is not None:
        keys.add(head(money.currency))
    return frozenset(keys)


def _related(binding: Binding) -> Iterable[Binding]:
    """Bindings a judgement also lists for ``binding``: what its references name (to pair
    them) and what it lives on (an Address: the subscriptions and their customers)."""
    for key in binding.references.values():
        yield binding_of(key)
    if binding.lives_on is not None:
        home = binding_of(binding.lives_on)
        yield home
        yield from (binding_of(key) for key in home.references.values())


def judgement_reads(sections: Iterable[tuple[Section, Binding, Binding]]) -> Reads:
    """Per collection (system, resource), the fields a judgement of these bound sections
    reads: the union over every use, since one listing serves every section reading it."""
    reads: dict[tuple[str, str], set[str]] = {}

    def add(binding: Binding, paths: Iterable[str] = ()) -> None:
        keys = reads.setdefault((binding.system, binding.resource), set())
        keys |= binding_reads(binding) | {head(path) for path in paths}

    for section, source, target in sections:
        add(source, [p.source_path for p in section.properties])
        add(source, [rule.source_path for rule in section.merge_rules])
        add(target, [p.target_path for p in section.properties])
        add(target, [rule.target_path for rule in section.merge_rules])
        for binding in (source, target):
            for related in _related(binding):
                add(related)
    return {key: frozenset(keys) for key, keys in reads.items()}


def fields_for(
    reads: Mapping[tuple[str, str], frozenset[str]] | None, binding: Binding
) -> frozenset[str] | None:
    """The fields to list ``binding``'s collection with: None (all of them) without a plan."""
    if reads is None:
        return None
    return reads.get((binding.system, binding.resource), binding_reads(binding))
