"""What a vendor's API cannot do at all, each fact with the vendor definition that shows it.

A checklist may promise what no syncer can keep through the vendors' APIs: "every Invoiced
Customers (organisation data) will be synchronized with a Chargebee Business_entity" while
Chargebee's API has no operation that creates, lists or changes a business entity. Such a
promise is neither passed nor "not covered": the sign-off says "vendor offers no API to ..."
with the source, and a promise that only partly needs the impossible operation (an edit of a
field the other vendor cannot change) is judged on what can be observed.

This table is the judge's one place for that knowledge: the blocked edits of the edits and
vendor-limits promises (``talkqa.samples.forbidden``) and the vendor-impossible cells both read
it. The reference sync keeps its own copy of what it needs (``reference_sync.mapping``), so a
mistake here cannot hide the same mistake there. ``tests/test_no_api.py`` checks the Chargebee
rows against the extracted vendor definitions (``talkqa/sandbox/defs/chargebee.json``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from talkqa.dataflow.spec import Section
from talkqa.systems.catalog import bind

# The prefix of every vendor-impossible reason: the sign-off recognises such a cell by it.
NO_API_PREFIX = "vendor offers no API to"

CHARGEBEE_BUSINESS_ENTITIES = (
    "https://apidocs.chargebee.com/docs/api/business_entities; chargebee@3.33.0 "
    "types/resources/BusinessEntity.d.ts: transfers only"
)
CHARGEBEE_UPDATE_ORDER = (
    "https://apidocs.chargebee.com/docs/api/orders#update_an_order; chargebee@3.33.0 "
    "UpdateOrderBodySchema: order_line_items take only id, sku and status"
)
CHARGEBEE_UPDATE_ITEM = (
    "https://apidocs.chargebee.com/docs/api/items#update_an_item; chargebee@3.33.0 "
    "UpdateItemBodySchema"
)
CHARGEBEE_UPDATE_CUSTOMER = (
    "https://apidocs.chargebee.com/docs/api/customers#update_a_customer; chargebee@3.33.0 "
    "UpdateCustomerBodySchema"
)
CHARGEBEE_ORDER_LINES = (
    "https://apidocs.chargebee.com/docs/api/orders#create_an_order; chargebee@3.33.0 "
    "CreateOrderBodySchema: an order's lines come from its invoice, whose line amount "
    "Chargebee computes (unit amount x quantity)"
)
CHARGEBEE_ADDRESSES = (
    "https://apidocs.chargebee.com/docs/api/addresses; chargebee@3.33.0 "
    "types/resources/Address.d.ts: no updated_at or resource_version"
)
INVOICED_ITEMS = (
    "https://github.com/Invoiced/api/blob/master/source/includes/_items.md.erb; "
    "Update an item: only name, description, type and metadata"
)
INVOICED_INVOICES = (
    "https://github.com/Invoiced/api/blob/master/source/includes/_invoicing.md.erb; "
    "Update an invoice: customer is not a parameter"
)
INVOICED_CUSTOMERS = (
    "https://github.com/Invoiced/api/blob/master/source/includes/_customers.md.erb; "
    "ids are assigned by Invoiced"
)


class Operation(StrEnum):
    CREATE = "create"
    READ = "read"
    UPDATE = "change"
    WRITE = "set"  # neither on create nor on update: the vendor computes it


@dataclass(frozen=True)
class NoApi:
    """The vendor's API offers no ``operation`` on ``resource`` (on ``fields`` of it, when
    named: dotted paths, a list's elements by the list's name, ``order_line_items.amount``)."""

    system: str  # connector key
    resource: str  # collection
    operation: Operation
    what: str  # how the sign-off names the entity: "a Chargebee business entity"
    source: str  # the vendor definition that shows it
    fields: frozenset[str] = frozenset()  # empty: the whole entity

    def covers(self, path: str | None) -> bool:
        """Whether this fact forbids ``path`` (None: the entity as a whole)."""
        if not self.fields:
            return True
        if path is None:
            return False
        return any(path == f or path.startswith(f"{f}.") for f in self.fields)

    def text(self, path: str | None = None) -> str:
        """'vendor offers no API to change order_line_items.amount of a Chargebee order (...)'."""
        of = f"{path} of " if path is not None and self.fields else ""
        return f"{NO_API_PREFIX} {self.operation.value} {of}{self.what} ({self.source})"


def _update(system: str, resource: str, what: str, source: str, *fields: str) -> NoApi:
    return NoApi(system, resource, Operation.UPDATE, what, source, frozenset(fields))


NO_API: tuple[NoApi, ...] = (
    NoApi(
        "chargebee",
        "business_entities",
        Operation.CREATE,
        "a Chargebee business entity",
        CHARGEBEE_BUSINESS_ENTITIES,
    ),
    NoApi(
        "chargebee",
        "business_entities",
        Operation.READ,
        "a Chargebee business entity",
        CHARGEBEE_BUSINESS_ENTITIES,
    ),
    NoApi(
        "chargebee",
        "business_entities",
        Operation.UPDATE,
        "a Chargebee business entity",
        CHARGEBEE_BUSINESS_ENTITIES,
    ),
    # an address carries no change stamp, so "the most recently updated wins" (Talk's merging)
    # has nothing to decide by: the conflicts promise does not apply to its sections
    NoApi(
        "chargebee",
        "addresses",
        Operation.READ,
        "a Chargebee Address",
        CHARGEBEE_ADDRESSES,
        frozenset({"updated_at"}),
    ),
    _update("chargebee", "customers", "a Chargebee customer", CHARGEBEE_UPDATE_CUSTOMER, "id"),
    # item_family_id is an update parameter (UpdateItemBodySchema): it can change
    _update("chargebee", "items", "a Chargebee item", CHARGEBEE_UPDATE_ITEM, "id", "type"),
    _update(
        "chargebee",
        "orders",
        "a Chargebee order",
        CHARGEBEE_UPDATE_ORDER,
        "id",
        "currency_code",
        "customer_id",
        "invoice_id",
        "order_line_items.unit_price",
        "order_line_items.amount",
        "order_line_items.description",
        "order_line_items.quantity",
    ),
    NoApi(
        "chargebee",
        "orders",
        Operation.WRITE,
        "a Chargebee order",
        CHARGEBEE_ORDER_LINES,
        frozenset({"order_line_items.amount"}),
    ),
    _update("invoiced", "customers", "an Invoiced customer", INVOICED_CUSTOMERS, "id"),
    _update(
        "invoiced", "items", "an Invoiced item", INVOICED_ITEMS, "id", "unit_cost", "currency"
    ),
    _update("invoiced", "invoices", "an Invoiced invoice", INVOICED_INVOICES, "id", "customer"),
)


def no_api(
    system: str, resource: str, operation: Operation, path: str | None = None
) -> NoApi | None:
    """The fact that the vendor's API offers no ``operation`` here, or None when it does."""
    for fact in NO_API:
        if (fact.system, fact.resource, fact.operation) == (system, resource, operation) and (
            fact.covers(path)
        ):
            return fact
    return None


def impossible(section: Section) -> str | None:
    """Why no syncer can keep any promise of ``section`` through the vendors' APIs: the
    source's vendor offers no API to read its entities, or the target's none to create or
    read them (Chargebee business entities); None when it can be tried."""
    source, target = bind(section.source), bind(section.target)
    if source is None or target is None:
        return None
    for side, operation in (
        (source, Operation.READ),
        (target, Operation.CREATE),
        (target, Operation.READ),
    ):
        fact = no_api(side.system, side.resource, operation)
        if fact is not None:
            return fact.text()
    return None


def unwritable_rows(section: Section) -> dict[tuple[str, str], str]:
    """The property rows no syncer can keep because the target's vendor computes the target
    field itself (a Chargebee order line's amount), each with why: judged on the other rows,
    never compared and never passed silently."""
    target = bind(section.target)
    if target is None:
        return {}
    out: dict[tuple[str, str], str] = {}
    for prop in section.properties:
        fact = no_api(target.system, target.resource, Operation.WRITE, prop.target_path)
        if fact is not None:
            out[(prop.source_path, prop.target_path)] = (
                f"{prop.source_path} -> {prop.target_path}: {fact.text(prop.target_path)}"
            )
    return out
