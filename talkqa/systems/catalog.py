"""Binds a checklist's datatype names to vendor resources, and Sesam Talk's datatypes to rules.

A checklist says "Invoiced Customers person"; the API says "customers with type=person".
This table is the single place where that translation lives, together with the fields
that hold references to another datatype (an order's ``customer_id`` is a Chargebee
Customer id; an invoice's ``customer`` is an Invoiced customer id, of either type).

**Sesam Talk's datatypes.** Talk sorts every entity into one *global* datatype (Sesam's docs,
github.com/datanav/docs ``hub/sesam-dataflow.rst``, "Classification of data": "data can
only belong to one global"; ``hub/concepts.rst``: global-person, global-organisation; the
data-management page's global location dataset). The current checklists name them
"(human data)" (global-person), "(organisation data)" (global-organisation) and "(location
data)" (global-location). Each vendor datatype is bound to those by a rule:

- *Invoiced customer* (Invoiced API reference, Customers: ``type`` is ``company`` by default
  or ``person``): ``type=person`` is human data, ``type=company`` organisation data. Its
  location data is the customer's own address fields (``address1``, ``address2``, ``city``,
  ``state``, ``postal_code``, ``country``), of a customer of either type that has one.
- *Chargebee customer* (Chargebee API, Customer: ``first_name``/``last_name`` "first/last
  name of the customer", ``company`` "company name of the customer"; no type field but the
  AvaTax-only ``customer_type``): a customer named by a person (first or last name) is human
  data, whatever company it bills for; a customer that names only a company is
  organisation data. One class per customer, as Talk's classification requires.
- *Chargebee Address* (Chargebee API, Addresses,
  https://apidocs.chargebee.com/docs/api/addresses; chargebee@3.33.0 ``Address.d.ts``:
  ``retrieve`` and ``update`` by ``subscription_id`` and ``label``, no id of its own, no list,
  no delete; ``label`` is free text, unique within its subscription) is location data: the
  address of a subscription, so of the subscription's customer. With no list, only a label
  one knows can be read, so talk-qa reads exactly one, ``ADDRESS_LABEL`` (``billing``), on
  every subscription, and a syncer writes its Address under it; an address under another
  label is invisible through the API and is not demanded. One label per subscription names
  an address by its subscription: its id here is the ``subscription_id``. Whose location it
  is follows the subscription's customer (``customer_id``), and so does its section: an
  Address of a customer the customer rule calls an organisation belongs to "Chargebee Address
  to Invoiced Customers (organisation data)", of a person to "(human data)".

  *Forward* ("Chargebee Address to Invoiced Customers ..."): the Address lands on the Invoiced
  customer linked to the subscription's Chargebee customer (the one whose
  ``metadata.chargebee_id`` names it, ``Binding.owner``); no other Invoiced customer can be
  its target, and none is created for it. The row ``subscription_id -> id`` cannot be a
  copied value (Invoiced assigns every customer's ``id``): it is judged as that reference,
  "the target is the Invoiced customer linked to the subscription's customer", which is how
  the pair is formed (``Binding.link_rows``), so it holds exactly when the Address has its
  one target; it is never compared as text. Two subscriptions of one customer with
  different addresses cannot both be kept on one Invoiced customer: both are demanded, and
  one of them is a mismatch.

  *Reverse* ("Invoiced Customers (location data) to Chargebee Address"): an Invoiced customer
  with address fields demands an Address on a subscription of the Chargebee customer linked
  to it (whose ``meta_data.invoiced_id`` names it, ``Binding.claimed_in``). A Chargebee Address
  exists only on a subscription, and no section of the checklist promises subscriptions, so
  an Invoiced customer whose linked Chargebee customer has no live subscription (or that has
  no linked Chargebee customer) is not demanded; the judge counts those and says why
  (``SectionResult.undemanded``, also among its notes). The scenarios create that
  precondition themselves through Chargebee's API (``talkqa.samples``), so what they demand
  is never empty.

A section's entities are chosen by the rule on both sides (``section_bindings``): the
section "Chargebee Customer to Invoiced Customers (organisation data)" demands only the
Chargebee customers that are organisations, and a customer the rule puts in no section of a
checklist is not demanded at all.

Talk's merging (``talk/merging/index.rst``): the most recently updated property wins, and an
empty newer value does not replace an older one. The conflicts promise judges the first half
(newest edit wins); the second is not judged yet, and the reference sync carries an emptied
value over as empty.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from talkqa.dataflow.spec import DatatypeRef, Section


class Talk(StrEnum):
    """Sesam Talk's global datatypes, as the current checklists name them."""

    PERSON = "human data"
    ORGANISATION = "organisation data"
    LOCATION = "location data"


Classifier = Callable[[Mapping[str, Any]], Talk]


def _filled(entity: Mapping[str, Any], name: str) -> bool:
    value = entity.get(name)
    return isinstance(value, str) and bool(value.strip())


_PERSON_NAMES = ("first_name", "last_name")
_COMPANY = "company"


def chargebee_customer_kind(entity: Mapping[str, Any]) -> Talk:
    """A customer named by a person is human data; one naming only a company, organisation."""
    if any(_filled(entity, name) for name in _PERSON_NAMES):
        return Talk.PERSON
    return Talk.ORGANISATION if _filled(entity, _COMPANY) else Talk.PERSON


def chargebee_address_kind(entity: Mapping[str, Any]) -> Talk:
    """An Address is its subscription's customer's location: of a person or an organisation."""
    customer = entity.get("customer")
    return chargebee_customer_kind(customer if isinstance(customer, Mapping) else {})


_INVOICED_ADDRESS = ("address1", "address2", "city", "state", "postal_code", "country")


def invoiced_has_location(entity: Mapping[str, Any]) -> bool:
    """An Invoiced customer's location data: any of its address fields filled in."""
    return any(_filled(entity, name) for name in _INVOICED_ADDRESS)


@dataclass(frozen=True)
class Binding:
    """Where entities of one checklist datatype live and what sets them apart."""

    system: str  # connector key: "chargebee" | "invoiced"
    datatype: str  # canonical checklist name: "Customer", "Customers person", ...
    resource: str  # collection: "customers", "items", "orders", "invoices"
    fixed: Mapping[str, Any] = field(default_factory=dict)  # e.g. {"type": "person"}
    # field path -> the datatype (system, canonical name) whose id it holds
    references: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    talk: Talk | None = None  # the Talk datatype every entity of this binding is
    classify: Classifier | None = None  # or: the rule sorting its entities into Talk datatypes
    kind: Talk | None = None  # narrowed by a section to the entities of one Talk datatype
    only_if: Callable[[Mapping[str, Any]], bool] | None = None  # e.g. has an address
    # the top-level fields ``classify`` and ``only_if`` read (a reader may skip the rest)
    rule_reads: frozenset[str] = frozenset()
    # as a source: a target claims this entity's ``owner`` field (an Address: its
    # subscription's customer_id), not its id, and nothing else may claim it (``link_id``)
    owner: str | None = None
    # as a target: its claim of a source lives in this nested object (an Address: its customer)
    claimed_in: str | None = None
    # (source path, target path) rows that are the link itself, judged by pairing, never
    # compared as values (an Address's subscription_id -> the Invoiced customer's id)
    link_rows: frozenset[tuple[str, str]] = frozenset()
    # as a target: it exists only on an entity of this datatype (an Address: on a
    # Subscription), whose first reference names the owner a source must be linked to
    lives_on: tuple[str, str] | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.system, self.datatype)

    def holds(self, entity: Mapping[str, Any]) -> bool:
        """Whether an entity of the resource belongs to this datatype (type=person, ...)."""
        if not all(entity.get(k) == v for k, v in self.fixed.items()):
            return False
        if self.only_if is not None and not self.only_if(entity):
            return False
        return self.kind is None or self.classify is None or self.classify(entity) is self.kind

    def link_id(self, entity: Mapping[str, Any]) -> str:
        """What a target's claim of this entity names: its id, or its ``owner``'s."""
        return str(entity.get(self.owner if self.owner is not None else "id"))

    def claim_holder(self, entity: Mapping[str, Any]) -> Mapping[str, Any]:
        """Where a claim of a source lives on this entity (itself, or ``claimed_in``)."""
        if self.claimed_in is None:
            return entity
        nested = entity.get(self.claimed_in)
        return nested if isinstance(nested, Mapping) else {}

    def narrowed(self, kind: Talk | None) -> Binding:
        """This binding restricted to the entities its rule sorts into ``kind`` (a datatype
        that is ``kind`` itself, an Address as location data, is not narrowed)."""
        if self.classify is None or kind is None or kind is self.talk:
            return self
        return dataclasses.replace(self, kind=kind)

    def within(self, other: Binding) -> bool:
        """Whether every entity of this binding is one of ``other``'s (a person is a customer)."""
        return (
            self.system == other.system
            and self.resource == other.resource
            and all(self.fixed.get(k) == v for k, v in other.fixed.items())
        )


# The one label talk-qa reads and a syncer writes a Chargebee Address under (see the rule above).
ADDRESS_LABEL = "billing"

_CUSTOMER_REF = ("invoiced", "Customers")

_BINDINGS: tuple[Binding, ...] = (
    Binding(
        "chargebee",
        "Customer",
        "customers",
        classify=chargebee_customer_kind,
        rule_reads=frozenset({*_PERSON_NAMES, _COMPANY}),
    ),
    Binding("chargebee", "Item", "items"),
    Binding("chargebee", "Order", "orders", references={"customer_id": ("chargebee", "Customer")}),
    Binding(
        "chargebee",
        "Address",
        "addresses",
        talk=Talk.LOCATION,
        classify=chargebee_address_kind,
        rule_reads=frozenset({"customer"}),
        owner="customer_id",
        claimed_in="customer",
        link_rows=frozenset({("subscription_id", "id")}),
        lives_on=("chargebee", "Subscription"),
    ),
    # no section of the shipped checklists: what an Address lives on, and whose it is
    Binding(
        "chargebee",
        "Subscription",
        "subscriptions",
        references={"customer_id": ("chargebee", "Customer")},
    ),
    # Chargebee's API can neither create, list nor change one (talkqa.systems.no_api): bound so
    # its sections are judged as vendor-impossible, never as "not covered"
    Binding("chargebee", "Business_entity", "business_entities"),
    Binding(
        "invoiced", "Customers person", "customers", fixed={"type": "person"}, talk=Talk.PERSON
    ),
    Binding(
        "invoiced",
        "Customers company",
        "customers",
        fixed={"type": "company"},
        talk=Talk.ORGANISATION,
    ),
    Binding(
        "invoiced",
        "Customers (location data)",
        "customers",
        talk=Talk.LOCATION,
        only_if=invoiced_has_location,
        rule_reads=frozenset(_INVOICED_ADDRESS),
    ),
    Binding("invoiced", "Customers", "customers"),  # any customer: what an invoice references
    Binding("invoiced", "Items", "items"),
    Binding("invoiced", "Invoices", "invoices", references={"customer": _CUSTOMER_REF}),
    # "Invoiced Lineitem": the line items of an invoice; its paths go into the list
    # (items.amount), so the entity paired with a Chargebee Order is the invoice itself
    Binding("invoiced", "Lineitem", "invoices"),
)

# Datatypes talk-qa knows but cannot judge yet, with exactly why: a "not covered" cell must
# say what stands in the way, so nobody reads it as an oversight or as a pass. Empty today:
# Chargebee Address, the last entry, is judged by the rule above.
UNJUDGEABLE: Mapping[tuple[str, str], str] = {}


def unjudgeable_why(ref: DatatypeRef) -> str | None:
    """Why talk-qa cannot judge this datatype yet, when it knows; None for a datatype it has
    simply never heard of."""
    return UNJUDGEABLE.get((system_key(ref.system), " ".join(ref.datatype.split()).lower()))


# Names the generator used over time for the same datatype (see dataflow-format.md).
_ALIASES: Mapping[tuple[str, str], str] = {
    ("invoiced", "customers (human data)"): "Customers person",
    ("invoiced", "customers (organisation data)"): "Customers company",
}


def system_key(name: str) -> str:
    """'PowerOffice GO' -> 'powerofficego': display names drift, keys must not."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def bind(ref: DatatypeRef) -> Binding | None:
    """The binding of a checklist datatype, or None when talk-qa has no connector for it."""
    system = system_key(ref.system)
    datatype = " ".join(ref.datatype.split())
    datatype = _ALIASES.get((system, datatype.lower()), datatype)
    for binding in _BINDINGS:
        if binding.system == system and binding.datatype.lower() == datatype.lower():
            return binding
    return None


def section_bindings(section: Section) -> tuple[Binding | None, Binding | None]:
    """Both sides of a section, each narrowed by the other side's Talk datatype.

    "Chargebee Customer to Invoiced Customers (organisation data)" binds the Chargebee
    customers that are organisations; the same customers' persons belong to another section.
    The one way the judge, the samples and the reference sync choose a section's entities.
    """
    source, target = bind(section.source), bind(section.target)
    if source is None or target is None:
        return source, target
    return source.narrowed(target.talk), target.narrowed(source.talk)


def link_rows(section: Section) -> frozenset[tuple[str, str]]:
    """The (source path, target path) rows of ``section`` that are the link itself (an
    Address's ``subscription_id -> id``): judged by pairing, never compared or edited."""
    source, target = section_bindings(section)
    return (source.link_rows if source is not None else frozenset()) | (
        target.link_rows if target is not None else frozenset()
    )


def binding_of(key: tuple[str, str]) -> Binding:
    """The binding named by a reference target (system, canonical datatype)."""
    found = bind(DatatypeRef(system=key[0], datatype=key[1]))
    if found is None:
        raise KeyError(f"no binding for {key[0]} {key[1]}")
    return found
