"""The Chargebee API v2 emulator: customers, items, orders and the invoices orders come from;
item prices, subscriptions made of them, and the addresses a subscription carries.

Handlers are pure functions of (state, call); `dispatch` does the I/O. Records are stored as
the vendor would serialise them (absent optional fields omitted, integer seconds, minor units).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from talkqa.sandbox import cb_lists, vendor_defs
from talkqa.sandbox.dispatch import Call, Handler, Problem, Reply, Route, Vendor
from talkqa.sandbox.state import JsonDict, SandboxState
from talkqa.sandbox.wire import MAX_INT_DIGITS, parse_bracketed, parse_literal

API_KEY = "test_sandbox_chargebee_key"
SITE = "talkqa-sandbox"
PREFIX = "/api/v2"

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
ORDER_STATUSES = (
    "new", "processing", "complete", "cancelled", "voided", "queued", "awaiting_shipment",
    "on_hold", "delivered", "shipped", "partially_delivered", "returned",
)
ADDRESS_FIELDS = (
    "first_name", "last_name", "email", "company", "phone", "line1", "line2", "line3", "city",
    "state_code", "state", "country", "zip", "validation_status",
)
# ---------------------------------------------------------------- request helpers
def _params(call: Call) -> dict[str, Any]:
    """Form body (every Chargebee write), falling back to the query string on GETs."""
    if call.method == "GET":
        return parse_bracketed(call.query)
    if "json" in call.content_type:
        raise Problem(400, "Content-Type must be application/x-www-form-urlencoded",
                      "invalid_request", None)
    from urllib.parse import parse_qsl

    try:
        text = call.body.decode()
    except UnicodeDecodeError:
        raise Problem(400, "request body is not UTF-8", "invalid_request", None) from None
    pairs = parse_qsl(text, keep_blank_values=True) + call.query
    return parse_bracketed(pairs)


def _bad(param: str, message: str) -> Problem:
    return Problem(400, f"{param} : {message}", "param_wrong_value", param)


def _not_found(resource: str, ident: str) -> Problem:
    return Problem(404, f"{resource} not found for id {ident}", "resource_not_found", "id")


def _only(params: dict[str, Any], resource: str, op: str, where: str) -> None:
    """The vendor's definition of the operation decides what is a parameter, how long a
    string may be and which values an enum takes; handlers read only what they model and
    accept the rest (documented, so a client may send it) without storing it."""
    try:
        vendor_defs.check_params("chargebee", resource, op, params, where)
    except vendor_defs.ParamError as exc:
        message = str(exc).split(" : ", 1)[-1]
        raise _bad(exc.param, message) from None


def _text(params: dict[str, Any], key: str, max_len: int | None = None) -> str | None:
    value = params.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _bad(key, "expected a single value")
    if max_len is not None and len(value) > max_len:
        raise _bad(key, f"cannot be more than {max_len} characters")
    return value


def _int(params: dict[str, Any], key: str) -> int | None:
    value = _text(params, key)
    if value is None:
        return None
    if not re.fullmatch(rf"-?[0-9]{{1,{MAX_INT_DIGITS}}}", value):
        raise _bad(key, "must be an integer")
    return int(value)


def _bool(params: dict[str, Any], key: str) -> bool | None:
    value = _text(params, key)
    if value is None:
        return None
    if value not in ("true", "false"):
        raise _bad(key, "must be true or false")
    return value == "true"


def _json_object(params: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = _text(params, key)
    if value is None:
        return None
    parsed = parse_literal(value, key)
    if not isinstance(parsed, dict):
        raise _bad(key, "must be a JSON object")
    return parsed


def _stamp(state: SandboxState, record: JsonDict, created: bool = False) -> None:
    now = state.clock.tick()
    if created and "created_at" in record:
        record["created_at"] = now
    record["updated_at"] = now
    record["resource_version"] = state.clock.version()


def _commit(state: SandboxState, record: JsonDict, draft: JsonDict) -> None:
    """Apply a fully validated draft in place: a rejected update changes nothing."""
    _stamp(state, draft)
    record.clear()
    record.update(draft)


def _list_reply(rows: list[JsonDict], key: str, next_offset: str | None) -> Reply:
    payload: JsonDict = {"list": [{key: row} for row in rows]}
    if next_offset is not None:
        payload["next_offset"] = next_offset
    return Reply(200, payload)


def _list(call: Call, table: list[JsonDict], key: str, resource: str, deletable: bool) -> Reply:
    """A Chargebee list, its filters, operators, sort_by attributes and parameters all as
    the vendor defines them (`vendor_defs`)."""
    query = _params(call)
    spec = vendor_defs.operation("chargebee", resource, "list")
    predicate = cb_lists.build_predicate(
        query, vendor_defs.chargebee_filters(resource), spec["params"]
    )
    sortable = vendor_defs.sort_by("chargebee", resource)
    if "include_deleted" in query and "include_deleted" not in spec["params"]:
        raise _bad("include_deleted", "is not a parameter of this list")
    include_deleted = query.get("include_deleted") == "true"
    if deletable and not include_deleted:
        keep = lambda row: not row.get("deleted") and predicate(row)  # noqa: E731
    else:
        keep = predicate
    limit = cb_lists.parse_limit(query.get("limit"))
    sort = cb_lists.parse_sort(query, sortable)
    offset = query.get("offset")
    if offset is not None and not isinstance(offset, str):
        raise _bad("offset", "expected a single value")
    rows, next_offset = cb_lists.paginate(table, keep, sort, limit, offset or None)
    return _list_reply(rows, key, next_offset)


# ---------------------------------------------------------------- what every resource shares
def _never(record: JsonDict) -> bool:
    return False


@dataclass(frozen=True)
class _Kind:
    """One resource as the shared handlers see it: where it lives, what it is called, and
    what a record deleted but still stored looks like (read as 404)."""

    key: str  # the answer's wrapper and the events' content key: {"customer": {...}}
    table: str
    label: str  # "Customer not found for id ..."
    gone: Callable[[JsonDict], bool] = _never


def _found(state: SandboxState, kind: _Kind, ident: str) -> JsonDict:
    record = state.table(kind.table).get(ident)
    if record is None or kind.gone(record):
        raise _not_found(kind.label, ident)
    return record


# Builds and stores one record from its parameters (shared by the API and the bulk seeder).
Maker = Callable[[SandboxState, dict[str, Any]], JsonDict]


def _creator(kind: _Kind, event: str, new: Maker) -> Handler:
    def create(state: SandboxState, call: Call) -> Reply:
        return _emit(state, event, kind.key, new(state, _params(call)))
    return create


def _lister(kind: _Kind, deletable: bool) -> Handler:
    def list_(state: SandboxState, call: Call) -> Reply:
        rows = state.table(kind.table).rows
        return _list(call, rows, kind.key, kind.key, deletable)
    return list_


def _getter(kind: _Kind) -> Handler:
    def get(state: SandboxState, call: Call) -> Reply:
        return Reply(200, {kind.key: _found(state, kind, call.path_params["id"])})
    return get


def _deleter(kind: _Kind, event: str, mark: Callable[[JsonDict], None]) -> Handler:
    """Chargebee deletes softly: ``mark`` flags the record, which stays listed on request."""
    def delete(state: SandboxState, call: Call) -> Reply:
        record = _found(state, kind, call.path_params["id"])
        mark(record)
        _stamp(state, record)
        return _emit(state, event, kind.key, record)
    return delete


def _flag_deleted(record: JsonDict) -> None:
    record["deleted"] = True


def _status_deleted(record: JsonDict) -> None:
    """Item families: `status: deleted` and the `deleted` flag Chargebee always returns."""
    record["status"] = "deleted"
    record["deleted"] = True


def _is_flagged(record: JsonDict) -> bool:
    return bool(record.get("deleted"))


def _has_status_deleted(record: JsonDict) -> bool:
    return bool(record["status"] == "deleted")


CUSTOMER = _Kind("customer", "chargebee.customers", "Customer", _is_flagged)
ITEM = _Kind("item", "chargebee.items", "Item")  # a deleted item is still read (status)
ITEM_FAMILY = _Kind("item_family", "chargebee.item_families", "Item family", _has_status_deleted)
INVOICE = _Kind("invoice", "chargebee.invoices", "Invoice")
ORDER = _Kind("order", "chargebee.orders", "Order", _is_flagged)
EVENT = _Kind("event", "chargebee.events", "Event")
ITEM_PRICE = _Kind("item_price", "chargebee.item_prices", "Item price")
SUBSCRIPTION = _Kind("subscription", "chargebee.subscriptions", "Subscription", _is_flagged)


# ---------------------------------------------------------------- customers
def _address(raw: Any, param: str, current: JsonDict | None = None) -> JsonDict:
    if not isinstance(raw, dict):
        raise _bad(param, "expected fields like billing_address[city]")
    address: JsonDict = dict(current or {})
    address.pop("object", None)
    address.pop("validation_status", None)
    for key, value in raw.items():
        if key not in ADDRESS_FIELDS or key == "validation_status":
            raise _bad(f"{param}[{key}]", "is not a field of the address")
        if value == "":
            address.pop(key, None)
            continue
        if key == "country" and not _COUNTRY.match(value):
            raise _bad(f"{param}[country]", "must be an ISO 3166 alpha-2 code such as NO")
        if key == "email" and not _EMAIL.match(value):
            raise _bad(f"{param}[email]", "invalid email format")
        address[key] = value
    ordered = {k: address[k] for k in ADDRESS_FIELDS if k in address}
    ordered["validation_status"] = "not_validated"
    ordered["object"] = param
    return ordered


def _customer_fields(params: dict[str, Any], record: JsonDict) -> None:
    for key in ("first_name", "last_name", "company", "phone", "locale", "vat_number",
                "invoice_notes"):
        if key in params:
            _set(record, key, _text(params, key))
    if "email" in params:
        email = _text(params, "email")
        if email is not None and not _EMAIL.match(email):
            raise _bad("email", "invalid email format")
        _set(record, "email", email)
    if "preferred_currency_code" in params:
        code = _text(params, "preferred_currency_code")
        if code is not None and not _CURRENCY.match(code):
            raise _bad("preferred_currency_code", "must be an ISO 4217 code such as USD")
        _set(record, "preferred_currency_code", code)
    if "auto_collection" in params:
        mode = _text(params, "auto_collection")
        if mode not in ("on", "off"):
            raise _bad("auto_collection", "must be on or off")
        record["auto_collection"] = mode
    if "taxability" in params:
        tax = _text(params, "taxability")
        if tax not in ("taxable", "exempt"):
            raise _bad("taxability", "must be taxable or exempt")
        record["taxability"] = tax
    if "net_term_days" in params:
        record["net_term_days"] = _int(params, "net_term_days") or 0
    if "allow_direct_debit" in params:
        record["allow_direct_debit"] = bool(_bool(params, "allow_direct_debit"))
    if "meta_data" in params:
        _set(record, "meta_data", _json_object(params, "meta_data"))


def _set(record: JsonDict, key: str, value: Any) -> None:
    if value is None:
        record.pop(key, None)
    else:
        record[key] = value


def new_customer(state: SandboxState, params: dict[str, Any]) -> JsonDict:
    """Build and store a customer (shared by the API handler and the bulk seeder)."""
    _only(params, "customer", "create", "create a customer")
    table = state.table("chargebee.customers")
    ident = _text(params, "id") or state.random_id()
    if table.get(ident) is not None:
        raise Problem(400, f"id : The value {ident} is already present.", "duplicate_entry", "id")
    record: JsonDict = {"id": ident}
    _customer_fields(params, record)
    base: JsonDict = {
        "auto_collection": "on", "net_term_days": 0, "allow_direct_debit": False,
        "created_at": 0, "taxability": "taxable", "updated_at": 0, "pii_cleared": "active",
        "channel": "web", "resource_version": 0, "deleted": False, "object": "customer",
    }
    for key, value in base.items():
        record.setdefault(key, value)
    if "billing_address" in params:
        record["billing_address"] = _address(params["billing_address"], "billing_address")
    record.update({"card_status": "no_card", "promotional_credits": 0, "refundable_credits": 0,
                   "excess_payments": 0, "unbilled_charges": 0})
    _stamp(state, record, created=True)
    table.add(ident, record)
    return record


create_customer = _creator(CUSTOMER, "customer_created", new_customer)
list_customers = _lister(CUSTOMER, True)
get_customer = _getter(CUSTOMER)


def update_customer(state: SandboxState, call: Call) -> Reply:
    record = _found(state, CUSTOMER, call.path_params["id"])
    params = _params(call)
    if "billing_address" in params:
        raise _bad("billing_address",
                   "cannot be changed here; use POST /customers/{id}/update_billing_info")
    _only(params, "customer", "update", "update a customer")
    draft = copy.deepcopy(record)
    _customer_fields(params, draft)
    _commit(state, record, draft)
    return _emit(state, "customer_changed", "customer", record)


def update_billing_info(state: SandboxState, call: Call) -> Reply:
    record = _found(state, CUSTOMER, call.path_params["id"])
    params = _params(call)
    _only(params, "customer", "update_billing_info", "update billing info")
    draft = copy.deepcopy(record)
    if "billing_address" in params:
        draft["billing_address"] = _address(
            params["billing_address"], "billing_address", record.get("billing_address")
        )
    if "vat_number" in params:
        _set(draft, "vat_number", _text(params, "vat_number"))
    _commit(state, record, draft)
    return _emit(state, "customer_changed", "customer", record)


delete_customer = _deleter(CUSTOMER, "customer_deleted", _flag_deleted)


# ---------------------------------------------------------------- items
def new_item(state: SandboxState, params: dict[str, Any]) -> JsonDict:
    _only(params, "item", "create", "create an item")
    for key in ("id", "name", "type", "item_family_id"):
        if _text(params, key) is None:
            raise _bad(key, "cannot be blank")
    ident = str(_text(params, "id"))
    name = str(_text(params, "name"))
    kind = _text(params, "type")
    if kind not in ("plan", "addon", "charge"):
        raise _bad("type", "must be plan, addon or charge")
    table = state.table("chargebee.items")
    if table.get(ident) is not None:
        raise Problem(400, f"id : The value {ident} is already present.", "duplicate_entry", "id")
    _unique_name(state, name, None)
    _require_family(state, str(_text(params, "item_family_id")))
    record: JsonDict = {"id": ident, "name": name, "external_name": name}
    record["status"] = "active"
    record.update({"resource_version": 0, "updated_at": 0})
    record["item_family_id"] = _text(params, "item_family_id")
    record["type"] = kind
    record.update({"is_shippable": False, "is_giftable": False, "enabled_for_checkout": True,
                   "enabled_in_portal": True, "metered": False, "channel": "web"})
    if kind == "plan":
        record["item_applicability"] = "all"
    record.update({"deleted": False, "object": "item"})
    _item_fields(state, {k: v for k, v in params.items() if k not in ("id", "type")}, record)
    _stamp(state, record)
    table.add(ident, record)
    table.unique[name] = ident
    return record


def _unique_name(state: SandboxState, name: str, ident: str | None) -> None:
    """Item names are unique among items not deleted (indexed: seeding makes 100k items)."""
    owner = state.table("chargebee.items").unique.get(name)
    if owner is not None and owner != ident:
        raise Problem(400, f"name : The value {name} is already present.",
                      "duplicate_entry", "name")


def _item_fields(state: SandboxState, params: dict[str, Any], record: JsonDict) -> None:
    for key in ("name", "external_name", "item_family_id"):
        if key in params:
            value = _text(params, key)
            if value is None:
                raise _bad(key, "cannot be blank")
            if key == "name":
                _unique_name(state, value, record["id"])
            if key == "item_family_id":
                _require_family(state, value)
            record[key] = value
    for key in ("description", "unit", "redirect_url"):
        if key in params:
            _set(record, key, _text(params, key))
    if "status" in params:
        status = _text(params, "status")
        if status not in ("active", "archived"):
            raise _bad("status", "must be active or archived")
        record["status"] = status
    for key in ("is_shippable", "is_giftable", "enabled_for_checkout", "enabled_in_portal",
                "metered"):
        if key in params:
            record[key] = bool(_bool(params, key))
    if "metadata" in params:
        _set(record, "metadata", _json_object(params, "metadata"))


create_item = _creator(ITEM, "item_created", new_item)
list_items = _lister(ITEM, False)
get_item = _getter(ITEM)


def update_item(state: SandboxState, call: Call) -> Reply:
    record = _found(state, ITEM, call.path_params["id"])
    params = _params(call)
    if "type" in params:
        raise _bad("type", "cannot be changed once the item exists")
    _only(params, "item", "update", "update an item")
    if record["status"] == "deleted":
        raise Problem(400, "The item is deleted and cannot be updated.", "invalid_request", None)
    draft = copy.deepcopy(record)
    _item_fields(state, params, draft)
    names = state.table("chargebee.items").unique
    names.pop(record["name"], None)
    names[draft["name"]] = draft["id"]
    _commit(state, record, draft)
    return _emit(state, "item_updated", "item", record)


def delete_item(state: SandboxState, call: Call) -> Reply:
    record = _found(state, ITEM, call.path_params["id"])
    if record["status"] == "deleted":
        raise _not_found("Item", record["id"])
    record["status"] = "deleted"
    state.table("chargebee.items").unique.pop(record["name"], None)
    _stamp(state, record)
    return _emit(state, "item_deleted", "item", record)


# ---------------------------------------------------------------- item families
def new_item_family(state: SandboxState, params: dict[str, Any]) -> JsonDict:
    _only(params, "item_family", "create", "create an item family")
    for key in ("id", "name"):
        if _text(params, key) is None:
            raise _bad(key, "cannot be blank")
    ident = str(_text(params, "id"))
    table = state.table("chargebee.item_families")
    if table.get(ident) is not None:
        raise Problem(400, f"id : The value {ident} is already present.", "duplicate_entry", "id")
    record: JsonDict = {"id": ident, "name": _text(params, "name"), "status": "active",
                        "resource_version": 0, "updated_at": 0, "channel": "web",
                        "deleted": False, "object": "item_family"}
    _set(record, "description", _text(params, "description"))
    _stamp(state, record)
    table.add(ident, record)
    return record


def _require_family(state: SandboxState, ident: str) -> None:
    """Items reference an existing family: the vendor refuses dangling ones, so do we."""
    found = state.table("chargebee.item_families").get(ident)
    if found is None or found["status"] == "deleted":
        raise Problem(404, f"item_family_id : Item family not found for id {ident}",
                      "resource_not_found", "item_family_id")


create_item_family = _creator(ITEM_FAMILY, "item_family_created", new_item_family)
list_item_families = _lister(ITEM_FAMILY, False)
get_item_family = _getter(ITEM_FAMILY)


def update_item_family(state: SandboxState, call: Call) -> Reply:
    record = _found(state, ITEM_FAMILY, call.path_params["id"])
    params = _params(call)
    _only(params, "item_family", "update", "update an item family")
    draft = copy.deepcopy(record)
    if "name" in params:
        name = _text(params, "name")
        if name is None:
            raise _bad("name", "cannot be blank")
        draft["name"] = name
    if "description" in params:
        _set(draft, "description", _text(params, "description"))
    _commit(state, record, draft)
    return _emit(state, "item_family_updated", "item_family", record)


delete_item_family = _deleter(ITEM_FAMILY, "item_family_deleted", _status_deleted)


# ---------------------------------------------------------------- invoices
def new_invoice(state: SandboxState, params: dict[str, Any]) -> JsonDict:
    _only(params, "invoice", "create", "create an invoice")
    customer_id = _text(params, "customer_id")
    if customer_id is None:
        raise _bad("customer_id", "cannot be blank")
    customer = state.table("chargebee.customers").get(customer_id)
    if customer is None or customer.get("deleted"):
        raise Problem(404, f"customer_id : Customer not found for id {customer_id}",
                      "resource_not_found", "customer_id")
    currency = _text(params, "currency_code") or customer.get("preferred_currency_code") or "USD"
    if not _CURRENCY.match(currency):
        raise _bad("currency_code", "must be an ISO 4217 code such as USD")
    charges = params.get("charges")
    if not isinstance(charges, list) or not charges:
        raise _bad("charges[amount][0]", "at least one charge is required")
    now = state.clock.peek()
    ident = str(state.next_number("chargebee.invoice"))
    lines: list[JsonDict] = []
    for index, charge in enumerate(charges):
        if not isinstance(charge, dict):
            raise _bad(f"charges[amount][{index}]", "expected charges[amount][i]")
        amount = _int(charge, "amount")
        if amount is None or amount < 0:
            raise _bad(f"charges[amount][{index}]", "must be a non-negative integer (minor units)")
        description = _text(charge, "description", 250)
        if description is None:
            raise _bad(f"charges[description][{index}]", "cannot be blank")
        lines.append({
            "id": f"li_{ident}_{index + 1}", "date_from": now, "date_to": now,
            "unit_amount": amount, "quantity": 1, "amount": amount, "pricing_model": "flat_fee",
            "is_taxed": False, "tax_amount": 0, "object": "line_item",
            "customer_id": customer_id, "description": description, "entity_type": "adhoc",
            "discount_amount": 0, "item_level_discount_amount": 0,
        })
    total = sum(int(line["amount"]) for line in lines)
    record: JsonDict = {
        "id": ident, "customer_id": customer_id, "recurring": False, "status": "payment_due",
        "price_type": "tax_exclusive", "date": now, "due_date": now, "net_term_days": 0,
        "exchange_rate": 1.0, "total": total, "amount_paid": 0, "amount_adjusted": 0,
        "write_off_amount": 0, "credits_applied": 0, "amount_due": total, "updated_at": 0,
        "resource_version": 0, "deleted": False, "object": "invoice", "first_invoice": False,
        "amount_to_collect": total, "round_off_amount": 0, "has_advance_charges": False,
        "currency_code": currency, "generated_at": now, "channel": "web", "sub_total": total,
        "tax": 0, "term_finalized": True, "is_gifted": False, "line_items": lines,
    }
    _stamp(state, record)
    state.table("chargebee.invoices").add(ident, record)
    return record


create_invoice = _creator(INVOICE, "invoice_generated", new_invoice)
get_invoice = _getter(INVOICE)
list_invoices = _lister(INVOICE, True)


# ---------------------------------------------------------------- orders
def new_order(state: SandboxState, params: dict[str, Any]) -> JsonDict:
    _only(params, "order", "create", "create an order")
    invoice_id = _text(params, "invoice_id")
    if invoice_id is None:
        raise _bad("invoice_id", "cannot be blank")
    invoice = state.table("chargebee.invoices").get(invoice_id)
    if invoice is None:
        raise Problem(404, f"invoice_id : Invoice not found for id {invoice_id}",
                      "resource_not_found", "invoice_id")
    table = state.table("chargebee.orders")
    ident = _text(params, "id") or state.random_id()
    if table.get(ident) is not None:
        raise Problem(400, f"id : The value {ident} is already present.", "duplicate_entry", "id")
    number = state.next_number("chargebee.order_document")
    now = state.clock.peek()
    lines = [
        {
            "id": f"oli_{ident}_{index + 1}", "invoice_id": invoice_id,
            "invoice_line_item_id": line["id"], "unit_price": line["unit_amount"],
            "description": line["description"], "amount": line["amount"],
            "fulfillment_quantity": line["quantity"], "fulfillment_amount": line["amount"],
            "tax_amount": 0, "amount_paid": 0, "amount_adjusted": 0,
            "refundable_credits_issued": 0, "refundable_credits": 0, "is_shippable": False,
            "status": "queued", "entity_type": "adhoc", "discount_amount": 0,
            "item_level_discount_amount": 0, "object": "order_line_item",
        }
        for index, line in enumerate(invoice["line_items"])
    ]
    record: JsonDict = {
        "id": ident, "document_number": str(number), "invoice_id": invoice_id,
        "customer_id": invoice["customer_id"], "status": "new", "order_type": "manual",
        "price_type": "tax_exclusive", "order_date": now, "created_by": "Api",
        "created_at": 0, "updated_at": 0, "resource_version": 0, "deleted": False,
        "object": "order", "discount": 0, "sub_total": invoice["sub_total"],
        "total": invoice["total"],
        "amount_paid": 0, "amount_adjusted": 0, "refundable_credits_issued": 0,
        "refundable_credits": 0, "rounding_adjustement": 0, "tax": 0,
        "currency_code": invoice["currency_code"], "is_gifted": False, "is_resent": False,
        "order_line_items": lines,
    }
    customer = state.table("chargebee.customers").get(invoice["customer_id"])
    if customer is not None and "billing_address" in customer:
        record["billing_address"] = dict(customer["billing_address"])
    _order_fields(params, record)
    _stamp(state, record, created=True)
    table.add(ident, record)
    return record


def _order_fields(params: dict[str, Any], record: JsonDict) -> None:
    if "status" in params:
        status = _text(params, "status")
        if status not in ORDER_STATUSES:
            raise _bad("status", f"must be one of {', '.join(ORDER_STATUSES)}")
        record["status"] = status
    for key in ("reference_id", "fulfillment_status", "note", "tracking_id", "tracking_url",
                "batch_id", "shipment_carrier"):
        if key in params:
            _set(record, key, _text(params, key))
    for key in ("shipped_at", "delivered_at", "cancelled_at"):
        if key in params:
            _set(record, key, _int(params, key))


create_order = _creator(ORDER, "order_created", new_order)
list_orders = _lister(ORDER, True)
get_order = _getter(ORDER)


def update_order(state: SandboxState, call: Call) -> Reply:
    record = _found(state, ORDER, call.path_params["id"])
    params = _params(call)
    for frozen in ("currency_code", "customer_id", "invoice_id"):
        if frozen in params:
            raise _bad(frozen, "cannot be changed on an order")
    _only(params, "order", "update", "update an order")
    live, record = record, copy.deepcopy(record)
    _order_fields(params, record)
    if "shipping_address" in params:
        record["shipping_address"] = _address(
            params["shipping_address"], "shipping_address", record.get("shipping_address")
        )
    lines = params.get("order_line_items")
    if lines is not None:
        if not isinstance(lines, list):
            raise _bad("order_line_items[id][0]", "expected order_line_items[field][i]")
        by_id = {line["id"]: line for line in record["order_line_items"]}
        for index, change in enumerate(lines):
            target = by_id.get(change.get("id")) if isinstance(change, dict) else None
            if target is None:
                raise _bad(f"order_line_items[id][{index}]", "no such line item on this order")
            for key, value in change.items():
                if key not in ("id", "status", "sku"):
                    raise _bad(f"order_line_items[{key}][{index}]", "cannot be changed")
                if key != "id":
                    target[key] = value
    _commit(state, live, record)
    return _emit(state, "order_updated", "order", live)


delete_order = _deleter(ORDER, "order_deleted", _flag_deleted)


# ---------------------------------------------------------------- item prices
def new_item_price(state: SandboxState, params: dict[str, Any]) -> JsonDict:
    """A price of an item (product catalog 2.0): what a subscription is made of."""
    _only(params, "item_price", "create", "create an item price")
    ident = str(_text(params, "id"))
    table = state.table("chargebee.item_prices")
    if table.get(ident) is not None:
        raise Problem(400, f"id : The value {ident} is already present.", "duplicate_entry", "id")
    item_id = str(_text(params, "item_id"))
    item = state.table("chargebee.items").get(item_id)
    if item is None or item["status"] == "deleted":
        raise Problem(404, f"item_id : Item not found for id {item_id}",
                      "resource_not_found", "item_id")
    currency = _text(params, "currency_code") or "USD"
    if not _CURRENCY.match(currency):
        raise _bad("currency_code", "must be an ISO 4217 code such as USD")
    price = _int(params, "price")
    if price is not None and price < 0:
        raise _bad("price", "must be a non-negative integer (minor units)")
    name = str(_text(params, "name"))
    record: JsonDict = {
        "id": ident, "name": name, "item_family_id": item["item_family_id"], "item_id": item_id,
        "status": "active", "external_name": _text(params, "external_name") or name,
        "pricing_model": _text(params, "pricing_model") or "flat_fee", "price": price or 0,
        "currency_code": currency, "free_quantity": 0, "is_taxable": True,
        "item_type": item["type"], "created_at": 0, "updated_at": 0, "resource_version": 0,
        "channel": "web", "deleted": False, "object": "item_price",
    }
    if item["type"] == "plan":
        record["period"] = _int(params, "period") or 1
        record["period_unit"] = _text(params, "period_unit") or "month"
    _set(record, "description", _text(params, "description"))
    _set(record, "metadata", _json_object(params, "metadata"))
    _stamp(state, record, created=True)
    table.add(ident, record)
    return record


create_item_price = _creator(ITEM_PRICE, "item_price_created", new_item_price)
list_item_prices = _lister(ITEM_PRICE, False)
get_item_price = _getter(ITEM_PRICE)


# ---------------------------------------------------------------- subscriptions
def _subscription_items(state: SandboxState, params: dict[str, Any]) -> list[JsonDict]:
    """subscription_items[item_price_id][i]: existing item prices, exactly one of a plan."""
    raw = params.get("subscription_items")
    if not isinstance(raw, list) or not raw:
        raise _bad("subscription_items[item_price_id][0]", "cannot be blank")
    lines: list[JsonDict] = []
    for index, entry in enumerate(raw):
        param = f"subscription_items[item_price_id][{index}]"
        ident = _text(entry, "item_price_id") if isinstance(entry, dict) else None
        if ident is None:
            raise _bad(param, "cannot be blank")
        price = state.table("chargebee.item_prices").get(ident)
        if price is None:
            raise Problem(404, f"{param} : Item price not found for id {ident}",
                          "resource_not_found", param)
        quantity = _int(entry, "quantity") or 1
        lines.append({
            "item_price_id": ident, "item_id": price["item_id"], "item_type": price["item_type"],
            "quantity": quantity, "unit_price": price["price"],
            "amount": price["price"] * quantity, "free_quantity": 0,
            "object": "subscription_item",
        })
    if sum(line["item_type"] == "plan" for line in lines) != 1:
        raise _bad("subscription_items[item_price_id][0]",
                   "a subscription needs exactly one plan item price")
    return lines


def new_subscription(state: SandboxState, customer_id: str, params: dict[str, Any]) -> JsonDict:
    _only(params, "subscription", "create_with_items", "create a subscription for items")
    customer = _found(state, CUSTOMER, customer_id)
    table = state.table("chargebee.subscriptions")
    ident = _text(params, "id") or state.random_id()
    if table.get(ident) is not None:
        raise Problem(400, f"id : The value {ident} is already present.", "duplicate_entry", "id")
    lines = _subscription_items(state, params)
    plan = next(line for line in lines if line["item_type"] == "plan")
    price = state.table("chargebee.item_prices").get(plan["item_price_id"]) or {}
    now = state.clock.peek()
    record: JsonDict = {
        "id": ident, "billing_period": price.get("period", 1),
        "billing_period_unit": price.get("period_unit", "month"), "customer_id": customer["id"],
        "status": "active", "current_term_start": now, "started_at": now, "activated_at": now,
        "created_at": 0, "updated_at": 0, "has_scheduled_changes": False,
        "channel": "web", "resource_version": 0, "deleted": False, "object": "subscription",
        "currency_code": price.get("currency_code", "USD"), "subscription_items": lines,
        "due_invoices_count": 0, "mrr": 0, "has_scheduled_advance_invoices": False,
        "decommissioned": False,
    }
    _set(record, "meta_data", _json_object(params, "meta_data"))
    _stamp(state, record, created=True)
    table.add(ident, record)
    return record


def create_subscription(state: SandboxState, call: Call) -> Reply:
    """POST /customers/{id}/subscription_for_items: answers the subscription and its customer."""
    record = new_subscription(state, call.path_params["id"], _params(call))
    reply = _emit(state, "subscription_created", "subscription", record)
    customer = state.table("chargebee.customers").get(record["customer_id"])
    return Reply(reply.status, {**reply.payload, "customer": customer})


def list_subscriptions(state: SandboxState, call: Call) -> Reply:
    """Each entry carries the subscription's customer, as the vendor's ListResponse does."""
    reply = _list(call, state.table("chargebee.subscriptions").rows, "subscription",
                  "subscription", True)
    customers = state.table("chargebee.customers")
    for entry in reply.payload["list"]:
        entry["customer"] = customers.get(entry["subscription"]["customer_id"])
    return reply


delete_subscription = _deleter(SUBSCRIPTION, "subscription_deleted", _flag_deleted)


def get_subscription(state: SandboxState, call: Call) -> Reply:
    record = _found(state, SUBSCRIPTION, call.path_params["id"])
    customer = state.table("chargebee.customers").get(record["customer_id"])
    return Reply(200, {"subscription": record, "customer": customer})


# ---------------------------------------------------------------- addresses
_ADDRESS_ATTRIBUTES = (
    "label", "first_name", "last_name", "email", "company", "phone", "addr", "extended_addr",
    "extended_addr2", "city", "state_code", "state", "country", "zip", "validation_status",
    "subscription_id",
)


def _address_key(params: dict[str, Any], where: str) -> tuple[str, str]:
    """An address has no id: it is named by its subscription and its label."""
    _only(params, "address", where, f"{where} an address")
    return str(_text(params, "subscription_id")), str(_text(params, "label"))


def get_address(state: SandboxState, call: Call) -> Reply:
    """GET /addresses?subscription_id=&label=: the only way to read an address."""
    subscription_id, label = _address_key(_params(call), "retrieve")
    _found(state, SUBSCRIPTION, subscription_id)
    record = state.table("chargebee.addresses").get(f"{subscription_id}/{label}")
    if record is None:
        raise Problem(404, f"Address not found for label {label}", "resource_not_found", "label")
    return Reply(200, {"address": record})


def update_address(state: SandboxState, call: Call) -> Reply:
    """POST /addresses adds the label's address or replaces it whole: a field not sent is gone."""
    params = _params(call)
    subscription_id, label = _address_key(params, "update")
    subscription = state.table("chargebee.subscriptions").get(subscription_id)
    if subscription is None or subscription.get("deleted"):
        raise Problem(404, f"subscription_id : Subscription not found for id {subscription_id}",
                      "resource_not_found", "subscription_id")
    country = _text(params, "country")
    if country is not None and not _COUNTRY.match(country):
        raise _bad("country", "must be an ISO 3166 alpha-2 code such as NO")
    email = _text(params, "email")
    if email is not None and not _EMAIL.match(email):
        raise _bad("email", "invalid email format")
    fields = {key: _text(params, key) for key in _ADDRESS_ATTRIBUTES}
    fields["validation_status"] = fields["validation_status"] or "not_validated"
    record: JsonDict = {k: v for k, v in fields.items() if v is not None}
    record["object"] = "address"
    table = state.table("chargebee.addresses")
    key = f"{subscription_id}/{label}"
    current = table.get(key)
    if current is None:
        table.add(key, record)
    else:
        current.clear()
        current.update(record)
        record = current
    # the address is part of its subscription: a change to it is a change of the subscription
    _stamp(state, subscription)
    _emit(state, "subscription_changed", "subscription", subscription)
    return Reply(200, {"address": record})


# ---------------------------------------------------------------- events
def _emit(state: SandboxState, event_type: str, key: str, record: JsonDict) -> Reply:
    """Record what an API write did, as Chargebee's events feed shows it (content = a copy
    of the resource at that moment), and answer the write itself."""
    number = state.next_number("chargebee.event")
    event: JsonDict = {
        "id": f"ev_sandbox_{number:08d}", "occurred_at": state.clock.now(), "source": "api",
        "object": "event", "api_version": "v2", "event_type": event_type,
        "webhook_status": "not_configured", "content": {key: copy.deepcopy(record)},
    }
    state.publish("chargebee", event)
    return Reply(200, {key: record})


def list_events(state: SandboxState, call: Call) -> Reply:
    """Newest first unless `sort_by[asc]=occurred_at` (clients should always say which)."""
    query = _params(call)
    if "sort_by" not in query:
        call = Call(call.method, call.path, call.path_params,
                    [*call.query, ("sort_by[desc]", "occurred_at")], call.body,
                    call.content_type, call.url)
    rows = state.table("chargebee.events").rows
    return _list(call, rows, "event", "event", False)


get_event = _getter(EVENT)


# ---------------------------------------------------------------- vendor wiring
def render_error(problem: Problem) -> dict[str, Any]:
    body: dict[str, Any] = {"message": problem.message}
    if problem.error_type is not None and problem.status != 401:
        body["type"] = problem.error_type
    body["api_error_code"] = problem.code
    if problem.param is not None:
        body["param"] = problem.param
    body["error_code"] = problem.code
    body["error_msg"] = problem.message
    if problem.param is not None:
        body["error_param"] = problem.param
    body["http_status_code"] = problem.status
    return body


def _route_not_found(method: str, path: str) -> Problem:
    return Problem(404, "Sorry, we couldn't find that resource", "resource_not_found", None)


ROUTES: tuple[Route, ...] = (
    Route("GET", "/customers", list_customers, False),
    Route("POST", "/customers", create_customer, True),
    Route("GET", "/customers/{id}", get_customer, False),
    Route("POST", "/customers/{id}", update_customer, True),
    Route("POST", "/customers/{id}/update_billing_info", update_billing_info, True),
    Route("POST", "/customers/{id}/delete", delete_customer, True),
    Route("GET", "/item_families", list_item_families, False),
    Route("POST", "/item_families", create_item_family, True),
    Route("GET", "/item_families/{id}", get_item_family, False),
    Route("POST", "/item_families/{id}", update_item_family, True),
    Route("POST", "/item_families/{id}/delete", delete_item_family, True),
    Route("GET", "/items", list_items, False),
    Route("POST", "/items", create_item, True),
    Route("GET", "/items/{id}", get_item, False),
    Route("POST", "/items/{id}", update_item, True),
    Route("POST", "/items/{id}/delete", delete_item, True),
    Route("GET", "/invoices", list_invoices, False),
    Route("POST", "/invoices", create_invoice, True),
    Route("GET", "/invoices/{id}", get_invoice, False),
    Route("GET", "/orders", list_orders, False),
    Route("POST", "/orders", create_order, True),
    Route("GET", "/orders/{id}", get_order, False),
    Route("POST", "/orders/{id}", update_order, True),
    Route("POST", "/orders/{id}/delete", delete_order, True),
    Route("GET", "/item_prices", list_item_prices, False),
    Route("POST", "/item_prices", create_item_price, True),
    Route("GET", "/item_prices/{id}", get_item_price, False),
    Route("POST", "/customers/{id}/subscription_for_items", create_subscription, True),
    Route("GET", "/subscriptions", list_subscriptions, False),
    Route("GET", "/subscriptions/{id}", get_subscription, False),
    Route("POST", "/subscriptions/{id}/delete", delete_subscription, True),
    Route("GET", "/addresses", get_address, False),
    Route("POST", "/addresses", update_address, True),
    Route("GET", "/events", list_events, False),
    Route("GET", "/events/{id}", get_event, False),
)

VENDOR = Vendor(
    name="chargebee",
    prefix=PREFIX,
    api_key=API_KEY,
    idempotency_header="chargebee-idempotency-key",
    replay_header="chargebee-idempotency-replayed",
    media_type="application/json;charset=utf-8",
    routes=ROUTES,
    render_error=render_error,
    not_found=_route_not_found,
    unauthorized=Problem(
        401,
        "Sorry, authentication failed. Invalid api key",
        "api_authentication_failed",
        None,
        None,
    ),
)
