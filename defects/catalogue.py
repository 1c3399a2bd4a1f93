"""The catalogue: syncers that each break exactly one promise of the checklist.

A QA harness is worth what it catches. Every entry is the reference sync with one named
fault (see ``defects.inject``): the harness must say NO-GO for each, on the promise the
entry names, and GO for the control (``reference``). Entries are data, so an end-to-end
test can run ``talkqa signoff --sut-command`` against each one.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from defects.inject import Here, Tap, masked
from talkqa.links import claim
from talkqa.promises.ids import PromiseId
from talkqa.systems.base import Json
from talkqa.systems.catalog import binding_of

# Checklists shipped in dataflows/: the first maps only an order's currency and customer,
# the contacts one also maps mapped-and-editable customer fields (email) that edits need.
FIRST = "dataflows/chargebee-invoiced.rst"
CONTACTS = "dataflows/chargebee-invoiced-contacts.rst"
# The current generation: organisations and persons apart, and the other direction.
CURRENT = "dataflows/chargebee-invoiced-current.rst"
BACKWARDS = "dataflows/invoiced-chargebee.rst"
SHIPPED = (FIRST, CONTACTS)  # what the syncer syncs by default covers both
# A test checklist: order lines (Chargebee, minor units) to invoice line items (Invoiced, major)
LINES = "tests/fixtures/dataflows/lines-chargebee-invoiced.rst"

CUSTOMER, ITEM, ORDER = ("chargebee", "Customer"), ("chargebee", "Item"), ("chargebee", "Order")
PERSON = ("invoiced", "Customers person")
INVOICED_ITEM, INVOICE = ("invoiced", "Items"), ("invoiced", "Invoices")


@dataclass(frozen=True)
class Injection:
    """The fault: taps on vendor collections and/or options of the run."""

    taps: tuple[Tap, ...] = ()
    skip: frozenset[tuple[str, str]] = frozenset()  # sections never synced, by source datatype
    # sections whose links are forgotten before every run, by target datatype (implies a
    # full read: an unchanged source must be seen again to be created again)
    forget: frozenset[tuple[str, str]] = frozenset()
    # sections whose linked targets every run after the first PATCHes once more with the
    # values they already hold, by target datatype: nothing visible changes but updated_at
    rewrite: frozenset[tuple[str, str]] = frozenset()
    # after a correct run: the exit code, and whether the run report leaves out its conflicts
    exit_code: int = 0
    silent_conflicts: bool = False


@dataclass(frozen=True)
class Defect:
    """One catalogue entry."""

    name: str
    promise: PromiseId | None  # None: the control
    sections: tuple[str, ...]  # source datatypes of the sections it hits: "Customer", "Order"
    description: str
    injection: Injection = field(default_factory=Injection)
    # finding kinds the sign-off reports once the defect has acted: `talkqa.checks.check_spec`
    # kinds, and written_on_rerun (the idempotence scenarios' own) for a second run's writes
    findings: frozenset[str] = frozenset()
    checklist: str = FIRST  # a shipped checklist whose scenarios can catch it
    # other promises its sign-off on ``checklist`` fails as a mere consequence (an edits
    # scenario re-checks existence, properties and references after its second run)
    also: frozenset[PromiseId] = frozenset()
    # what the sign-off says when the defect breaks a promise without a finding (a failed run,
    # a run report that keeps quiet)
    failure: str = ""

    @property
    def command(self) -> str:
        """The shell command that runs this syncer on its own checklist (from the project
        root)."""
        return self.command_on(self.checklist)

    def command_on(self, checklist: str) -> str:
        """The syncer's command for a sign-off of ``checklist``: the shipped checklists are
        subsets of what it syncs by default; any other is named, so it syncs what is judged."""
        command = f"{shlex.quote(sys.executable)} -m defects {self.name}"
        if checklist in SHIPPED:
            return command
        return f"{command} --checklist {shlex.quote(checklist)}"

    @property
    def label(self) -> str:
        promise = self.promise or "none (control)"
        return f"{self.name}: breaks {promise} in {', '.join(self.sections) or '-'}"


# --- the faults (small, named, pure where they can be) ----------------------------------------


def _ids(entities: Iterable[Json]) -> set[str]:
    return {str(e.get("id")) for e in entities}


def every_third(here: Here, found: list[Json]) -> list[Json]:
    """Hide the 1st, 4th, 7th ... entity of the whole collection, in creation order.

    Positions come from the whole collection, not from this read, so an incremental read
    hides the same entities as a full one and new entities never shift old ones.
    """
    everything = sorted(
        here.resource.list(), key=lambda e: (_int(e.get("created_at")), str(e["id"]))
    )
    hidden = _ids(e for i, e in enumerate(everything) if i % 3 == 0)
    return [e for e in found if str(e.get("id")) not in hidden]


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def hide_claimed(_here: Here, found: list[Json]) -> list[Json]:
    """Never see a target that already carries a source's id (so never adopt it)."""
    return [e for e in found if claim(e) is None]


def as_company(_here: Here, fields: Json) -> Json:
    """type=person becomes type=company."""
    return {**fields, "type": "company"} if fields.get("type") == "person" else fields


def as_company_update(here: Here, _entity_id: str, fields: Json) -> Json:
    return as_company(here, fields)


def as_person(_here: Here, fields: Json) -> Json:
    """type=company becomes type=person: an organisation synced as a person."""
    return {**fields, "type": "person"} if fields.get("type") == "company" else fields


def as_person_update(here: Here, _entity_id: str, fields: Json) -> Json:
    return as_person(here, fields)


SWAPPED = {"usd": "eur", "eur": "usd"}


def in_cents(_here: Here | None, items: Any) -> Any:
    """Each line priced at its amount x 100: Chargebee's cents copied as Invoiced's dollars."""
    if not isinstance(items, list):
        return items
    return [
        {**line, "unit_cost": line["unit_cost"] * 100}
        if isinstance(line, dict) and isinstance(line.get("unit_cost"), int | float)
        else line
        for line in items
    ]


def _with_amounts(tap: Tap) -> Tap:
    """``tap``, whose reads also show each line's amount as Invoiced computes it (quantity x
    unit_cost): the sync then reads back the amounts it meant, and writes nothing more."""
    inner = tap.read

    def read(here: Here, entity: Json) -> Json:
        seen = inner(here, entity) if inner is not None else entity
        items = seen.get("items")
        if not isinstance(items, list):
            return seen
        return {
            **seen,
            "items": [
                {**line, "amount": (line.get("quantity") or 1) * line.get("unit_cost", 0)}
                if isinstance(line, dict) and "amount" not in line
                else line
                for line in items
            ],
        }

    return Tap(tap.system, tap.resource, read=read, create=tap.create, update=tap.update)


def other_currency(_here: Here | None, code: Any) -> Any:
    """Another ISO code, never the same one in another case (Invoiced lower-cases codes)."""
    if not isinstance(code, str):
        return code
    return SWAPPED.get(code.lower(), "usd")


def other_person(here: Here, right: Any) -> Any:
    """Another person the sync linked (the next by id, cyclic); else a stale unlinked copy."""
    if right is None:
        return right
    persons = binding_of(PERSON)
    collection = here.systems.resource(persons)
    everyone = [e for e in collection.list() if persons.holds(e)]
    linked = sorted(
        (e for e in everyone if claim(e) is not None and str(e["id"]) != str(right)),
        key=lambda e: _int(e.get("id")),
    )
    if linked:
        after = [e for e in linked if _int(e.get("id")) > _int(right)]
        return (after or linked)[0]["id"]
    marker = {"stale_copy_of": str(right)}
    for entity in everyone:
        if (entity.get("metadata") or {}).get("stale_copy_of") == str(right):
            return entity["id"]
    original = collection.get(str(right))
    copy = {"name": f"{original.get('name') or right} (old)", "type": "person", "metadata": marker}
    return collection.create(copy)["id"]


def other_order_customer(here: Here, fields: Json) -> Json:
    """An order made for another Chargebee customer synced from Invoiced (the next by id)."""
    right = fields.get("customer_id")
    customers = here.systems.resource(binding_of(CUSTOMER))
    synced = sorted(
        str(e["id"])
        for e in customers.list()
        if claim(e, "invoiced") is not None and str(e["id"]) != str(right)
    )
    if right is None or not synced:
        return fields
    after = [c for c in synced if c > str(right)]
    return {**fields, "customer_id": (after or synced)[0]}


def other_address_customer(here: Here, address: Json) -> Json:
    """A Chargebee Address as if its subscription were another customer's (the next customer
    with an address, by id): the sync then writes it onto that customer's Invoiced target."""
    right = str(address.get("customer_id"))
    owners = {str(a.get("customer_id")): a.get("customer") for a in here.resource.list()}
    others = sorted(owner for owner in owners if owner != right)
    if not others:
        return address
    wrong = next((owner for owner in others if owner > right), others[0])
    return {**address, "customer_id": wrong, "customer": owners[wrong]}


def drop(_here: Here, _entity_id: str, _fields: Json) -> None:
    """The update is never sent."""
    return None


def strictly_after(updated_after: int | None) -> int | None:
    """Read changes strictly after the cursor second instead of from it again.

    The reference sync asks for ``updated_after = cursor - 1`` (the boundary second is read
    again); this asks for ``updated_after = cursor``, the classic incremental-sync bug: an edit
    stamped in the same second as the newest change already read is never seen. It needs a
    clock on which writes share seconds, as on the vendors (``talkqa.sandbox.clock``).
    """
    return None if updated_after is None else updated_after + 1


def _taps(system: str, resources: Iterable[str], **hooks: Any) -> tuple[Tap, ...]:
    return tuple(Tap(system, resource, **hooks) for resource in resources)


# --- the catalogue ------------------------------------------------------------------------------

CONTROL = Defect(
    name="reference",
    promise=None,
    sections=(),
    description="the reference sync without any fault: the control, must get GO",
)

CATALOGUE: tuple[Defect, ...] = (
    Defect(
        name="drops-customers",
        promise=PromiseId.EXISTS,
        sections=("Customer", "Order"),
        description="every third Chargebee customer (creation order) never reaches Invoiced, "
        "nor do that customer's orders",
        injection=Injection(taps=(Tap("chargebee", "customers", hide=every_third),)),
        findings=frozenset({"missing"}),
        also=frozenset({PromiseId.EDITS}),
    ),
    Defect(
        name="duplicates-persons",
        promise=PromiseId.IDEMPOTENCE,
        sections=("Customer",),
        description="forgets its customer links and ignores existing persons: every run "
        "creates another person per customer (exists: duplicate after a second run)",
        injection=Injection(
            taps=(Tap("invoiced", "customers", hide=hide_claimed),),
            forget=frozenset({PERSON}),
        ),
        findings=frozenset({"duplicate", "written_on_rerun"}),
        also=frozenset({PromiseId.EDITS}),
    ),
    Defect(
        name="rewrites-unchanged",
        promise=PromiseId.IDEMPOTENCE,
        sections=("Customer", "Item", "Order"),
        description="rewrites unchanged values on every run: each run after the first PATCHes "
        "every linked Invoiced target with the values it already holds (only updated_at moves)",
        injection=Injection(rewrite=frozenset({PERSON, INVOICED_ITEM, INVOICE})),
        findings=frozenset({"written_on_rerun"}),
    ),
    Defect(
        name="companies-not-persons",
        promise=PromiseId.EXISTS,
        sections=("Customer",),
        description="creates Invoiced customers with type=company instead of person",
        injection=Injection(
            taps=(Tap("invoiced", "customers", create=as_company, update=as_company_update),)
        ),
        findings=frozenset({"wrong_type"}),
        also=frozenset({PromiseId.REFERENCES, PromiseId.EDITS}),
    ),
    Defect(
        name="organisations-as-persons",
        promise=PromiseId.EXISTS,
        sections=("Customer",),
        description="syncs a Chargebee customer that names only a company (organisation "
        "data) as an Invoiced person",
        injection=Injection(
            taps=(Tap("invoiced", "customers", create=as_person, update=as_person_update),)
        ),
        findings=frozenset({"wrong_type"}),
        checklist=CURRENT,
        also=frozenset({PromiseId.EDITS}),
    ),
    Defect(
        name="drops-invoiced-customers",
        promise=PromiseId.EXISTS,
        sections=("Customers (human data)",),
        description="every third Invoiced customer (creation order) never reaches Chargebee",
        injection=Injection(taps=(Tap("invoiced", "customers", hide=every_third),)),
        findings=frozenset({"missing"}),
        checklist=BACKWARDS,
        also=frozenset({PromiseId.EDITS, PromiseId.REFERENCES}),
    ),
    Defect(
        name="wrong-order-customer",
        promise=PromiseId.REFERENCES,
        sections=("Invoices",),
        description="makes each Chargebee order from an Invoiced invoice for another synced "
        "Chargebee customer (the next by id)",
        injection=Injection(taps=(Tap("chargebee", "orders", create=other_order_customer),)),
        findings=frozenset({"dangling_reference"}),
        checklist=BACKWARDS,
        also=frozenset({PromiseId.EDITS}),
    ),
    Defect(
        name="address-wrong-customer",
        promise=PromiseId.PROPERTIES,
        sections=("Address",),
        description="writes each Chargebee subscription's Address onto the Invoiced customer "
        "of another Chargebee customer with an address (the next by id)",
        injection=Injection(taps=(Tap("chargebee", "addresses", read=other_address_customer),)),
        findings=frozenset({"mismatch"}),
        checklist=CURRENT,
        also=frozenset({PromiseId.EDITS}),
    ),
    Defect(
        name="wrong-currency",
        promise=PromiseId.PROPERTIES,
        sections=("Order",),
        description="writes another ISO currency on invoices (usd<->eur, anything else usd)",
        injection=Injection(taps=(masked("invoiced", "invoices", "currency", other_currency),)),
        findings=frozenset({"mismatch"}),
        also=frozenset({PromiseId.EDITS}),
    ),
    Defect(
        name="unconverted-line-amount",
        promise=PromiseId.PROPERTIES,
        sections=("Order",),
        description="writes each invoice line's amount in Chargebee's minor units (cents as "
        "dollars) instead of converting it to Invoiced's major units",
        injection=Injection(
            taps=(_with_amounts(masked("invoiced", "invoices", "items", in_cents)),)
        ),
        findings=frozenset({"mismatch"}),
        checklist=LINES,
    ),
    Defect(
        name="wrong-invoice-customer",
        promise=PromiseId.REFERENCES,
        sections=("Order",),
        description="points each invoice at another linked person (the next by id), or at a "
        "stale unlinked copy when there is no other",
        injection=Injection(taps=(masked("invoiced", "invoices", "customer", other_person),)),
        findings=frozenset({"mismatch", "dangling_reference"}),
        also=frozenset({PromiseId.EDITS}),
    ),
    Defect(
        name="skips-items",
        promise=PromiseId.EXISTS,
        sections=("Item",),
        description="never syncs the Item section",
        injection=Injection(skip=frozenset({ITEM})),
        findings=frozenset({"missing"}),
        also=frozenset({PromiseId.EDITS}),
    ),
    Defect(
        name="one-way",
        promise=PromiseId.EDITS,
        sections=("Customer", "Item", "Order"),
        description="never carries Invoiced edits back to Chargebee (its Chargebee updates "
        "are dropped, while it believes they were made)",
        injection=Injection(
            taps=_taps("chargebee", ("customers", "items", "orders", "addresses"), update=drop)
        ),
        findings=frozenset({"mismatch", "not_propagated"}),
        checklist=CONTACTS,
    ),
    Defect(
        name="forgets-edits",
        promise=PromiseId.EDITS,
        sections=("Customer", "Item", "Order"),
        description="creates but never updates: edits made after the first run reach neither side",
        injection=Injection(
            taps=_taps("chargebee", ("customers", "items", "orders", "addresses"), update=drop)
            + _taps("invoiced", ("customers", "items", "invoices"), update=drop)
        ),
        findings=frozenset({"mismatch", "not_propagated"}),
        checklist=CONTACTS,
    ),
    Defect(
        name="exits-nonzero",
        promise=PromiseId.EXISTS,
        sections=("Customer", "Item", "Order"),
        description="does every write right, then exits 1: a failed run is a failed run",
        injection=Injection(exit_code=1),
        failure="failed with exit code 1",
        also=frozenset(
            {PromiseId.PROPERTIES, PromiseId.REFERENCES, PromiseId.EDITS, PromiseId.IDEMPOTENCE}
        ),
    ),
    Defect(
        name="silent-conflicts",
        promise=PromiseId.CONFLICTS,
        sections=("Customer",),
        description="resolves conflicts right but leaves them out of its run report",
        injection=Injection(silent_conflicts=True),
        failure="conflict not reported",
        checklist=CONTACTS,
    ),
    Defect(
        name="strict-cursor",
        promise=PromiseId.EDITS,
        sections=("Customer", "Item", "Order"),
        description="reads changes strictly after the last updated_at it saw, so an edit "
        "made in the same second as the newest change already read never travels",
        injection=Injection(
            taps=_taps("chargebee", ("customers", "items", "orders"), since=strictly_after)
            + _taps("invoiced", ("customers", "items", "invoices"), since=strictly_after)
        ),
        findings=frozenset({"mismatch", "not_propagated"}),
        checklist=CONTACTS,
    ),
)

EVERYTHING: tuple[Defect, ...] = (CONTROL, *CATALOGUE)


def find(name: str) -> Defect | None:
    """The entry called ``name`` (the control included), or None."""
    return next((d for d in EVERYTHING if d.name == name), None)


def listing() -> str:
    """The catalogue as text: one entry per line."""
    width = max(len(d.name) for d in EVERYTHING)
    lines = []
    for d in EVERYTHING:
        promise = d.promise or "-"
        hits = ",".join(d.sections) or "-"
        lines.append(f"{d.name:<{width}}  {promise:<11}  {hits:<21}  {d.description}")
    return "\n".join(lines)
