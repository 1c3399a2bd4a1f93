"""The Invoiced API emulator: customers, catalog items, invoices (JSON in, JSON arrays out).

Handlers are pure functions of (state, call); `dispatch` does the I/O. Integer ids come from
per-resource counters, item ids are the caller's strings (or generated), amounts are
computed the way Invoiced computes them (quantity x unit_cost, two decimals).
"""

from __future__ import annotations

import copy
import math
import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from talkqa.sandbox import vendor_defs
from talkqa.sandbox.dispatch import Call, Problem, Reply, Route, Vendor
from talkqa.sandbox.state import JsonDict, SandboxState, Table
from talkqa.sandbox.wire import WireError, money, parse_bracketed, parse_json_body

API_KEY = "test_sandbox_invoiced_key"

_COUNTRY = re.compile(r"^[A-Z]{2}$")
_CURRENCY = re.compile(r"^[A-Za-z]{3}$")
_ITEM_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,255}$")

STRING, BOOL, NUMBER, INT, META, LIST = "string", "boolean", "number", "integer", "object", "list"
CUSTOMER_FIELDS: dict[str, str] = {
    "name": STRING, "number": STRING, "email": STRING, "type": STRING, "address1": STRING,
    "address2": STRING, "city": STRING, "state": STRING, "postal_code": STRING,
    "country": STRING, "currency": STRING, "phone": STRING, "payment_terms": STRING,
    "autopay": BOOL, "autopay_delay_days": INT, "chase": BOOL, "credit_hold": BOOL,
    "credit_limit": NUMBER, "taxable": BOOL, "tax_id": STRING, "notes": STRING,
    "attention_to": STRING, "language": STRING, "parent_customer": INT, "metadata": META,
    "avalara_entity_use_code": STRING, "avalara_exemption_number": STRING, "taxes": LIST,
}
ITEM_FIELDS: dict[str, str] = {
    "id": STRING, "name": STRING, "currency": STRING, "unit_cost": NUMBER,
    "description": STRING, "type": STRING, "taxable": BOOL,
    "discountable": BOOL, "gl_account": STRING, "avalara_tax_code": STRING, "metadata": META,
}
ITEM_PATCHABLE = ("name", "description", "type", "metadata")
INVOICE_FIELDS: dict[str, str] = {
    "customer": INT, "name": STRING, "number": STRING, "currency": STRING, "date": INT,
    "due_date": INT, "payment_terms": STRING, "draft": BOOL, "closed": BOOL, "notes": STRING,
    "items": LIST, "metadata": META, "purchase_order": STRING, "autopay": BOOL,
    "discounts": LIST, "taxes": LIST,
}
LINE_FIELDS: dict[str, str] = {
    "id": INT, "catalog_item": STRING, "type": STRING, "name": STRING, "description": STRING,
    "quantity": NUMBER, "unit_cost": NUMBER, "amount": NUMBER, "discountable": BOOL,
    "taxable": BOOL, "metadata": META, "discounts": LIST, "taxes": LIST,
}
SORTABLE = ("id", "created_at", "updated_at", "name", "number")


# ---------------------------------------------------------------- request helpers
def _bad(param: str | None, message: str) -> Problem:
    return Problem(400, message, "invalid_request", param)


def _body(call: Call) -> dict[str, Any]:
    raw = call.body
    if "application/x-www-form-urlencoded" in call.content_type:
        try:
            return parse_bracketed(parse_qsl(raw.decode(), keep_blank_values=True))
        except UnicodeDecodeError:
            raise _bad(None, "Request body is not UTF-8") from None
    return parse_json_body(raw)


def _typed(value: Any, kind: str, param: str) -> Any:
    """Check one value against its declared type; form values arrive as strings."""
    if value is None:
        return None
    if kind == STRING:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise _bad(param, f"{param} must be a string")
        return str(value)
    if kind == BOOL:
        if isinstance(value, str) and value in ("true", "false", "1", "0"):
            return value in ("true", "1")
        if not isinstance(value, bool):
            raise _bad(param, f"{param} must be a boolean")
        return value
    if kind in (NUMBER, INT):
        if isinstance(value, str):
            try:
                value = float(value) if kind == NUMBER else int(value)
            except ValueError:
                raise _bad(param, f"{param} must be a {kind}") from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _bad(param, f"{param} must be a {kind}")
        if not math.isfinite(value) or abs(value) > 1e15:
            raise _bad(param, f"{param} must be a finite {kind} of at most 15 digits")
        if kind == INT and value != int(value):
            raise _bad(param, f"{param} must be an integer")
        return int(value) if kind == INT else value
    if kind == META:
        return _metadata(value, param)
    if not isinstance(value, list):
        raise _bad(param, f"{param} must be a list")
    return value


def _metadata(value: Any, param: str) -> dict[str, Any]:
    if isinstance(value, list) and not value:
        return {}
    if not isinstance(value, dict):
        raise _bad(param, "metadata must be an object of key/value pairs")
    if len(value) > 10:
        raise _bad(param, "metadata can have at most 10 keys")
    for key, item in value.items():
        if len(key) > 40:
            raise _bad(param, f"metadata key {key!r} is longer than 40 characters")
        if item is not None and (isinstance(item, dict | list) or len(str(item)) > 255):
            raise _bad(
                param, f"metadata value of {key!r} must be a string of at most 255 characters"
            )
    return dict(value)


def _fields(
    body: dict[str, Any], schema: dict[str, str], where: str,
    documented: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """The fields of a write this sandbox models, typed. The vendor's documentation of the
    operation (`documented` = (resource, op) in `vendor_defs`) decides what is a field: one
    it lacks is a 400 naming it; one it has that the sandbox does not model is accepted and
    not stored."""
    known = (vendor_defs.operation("invoiced", *documented)["params"]
             if documented is not None else schema)
    out: dict[str, Any] = {}
    for key, value in body.items():
        if key not in known:
            raise _bad(key, f"Unknown field {key!r} for {where}")
        kind = schema.get(key)
        if kind is not None:
            out[key] = _typed(value, kind, key)
    return out


def _normalise_common(fields: dict[str, Any]) -> None:
    country = fields.get("country")
    if country is not None and not _COUNTRY.match(country):
        raise _bad("country", "country must be a two-letter ISO 3166 code such as NO")
    currency = fields.get("currency")
    if currency is not None:
        if not _CURRENCY.match(currency):
            raise _bad("currency", "currency must be a three-letter ISO 4217 code")
        fields["currency"] = currency.lower()


def _int_id(call: Call, resource: str) -> int:
    raw = call.path_params["id"]
    if not re.fullmatch(r"[0-9]{1,18}", raw):
        raise Problem(404, f"{resource} was not found: {raw[:60]}", "not_found", None)
    return int(raw)


def _find(state: SandboxState, table: str, ident: str, resource: str) -> JsonDict:
    record = state.table(table).get(ident)
    if record is None:
        raise Problem(404, f"{resource} was not found: {ident}", "not_found", None)
    return record


def _touch(state: SandboxState, record: JsonDict, created: bool = False) -> None:
    now = state.clock.tick()
    if created:
        record["created_at"] = now
    record["updated_at"] = now


# ---------------------------------------------------------------- lists
PAGING = ("page", "per_page")


def _flag(raw: Any, name: str) -> bool:
    if raw not in ("true", "false", "1", "0"):
        raise _bad(name, f"{name} must be a boolean")
    return raw in ("true", "1")  # API reference, "Pagination": on every list


def _list(
    state: SandboxState, call: Call, table: Table, filterable: tuple[str, ...], resource: str,
    extra: tuple[str, ...] = (),
) -> Reply:
    """An Invoiced list. Its parameters are the vendor's (`vendor_defs`) plus paging and the
    ``extra`` this sandbox serves (`expand`): anything else is a 400 naming it, and every
    documented parameter acts on the result, none is silently ignored."""
    query = parse_bracketed(call.query)
    documented = vendor_defs.operation("invoiced", resource, "list")["params"]
    for key in query:
        if key not in documented and key not in PAGING and key not in extra:
            raise _bad(key, f"Invalid request parameter: {key}")
    page = _positive(query.get("page"), "page", 1)
    per_page = min(_positive(query.get("per_page"), "per_page", 25), 100)
    rows = table.live()
    filters = query.get("filter", {})
    if not isinstance(filters, dict):
        raise _bad("filter", "filters are written filter[field]=value")
    for key, value in filters.items():
        if key not in filterable:
            raise _bad(f"filter[{key}]", f"Invalid filter parameter: {key}")
        rows = [row for row in rows if _same(row.get(key), value)]
    metadata = query.get("metadata", {})
    if not isinstance(metadata, dict):
        raise _bad("metadata", "metadata filters are written metadata[key]=value")
    for key, value in metadata.items():
        rows = [row for row in rows if _same((row.get("metadata") or {}).get(key), value)]
    if "updated_after" in query:
        limit = _integer(query["updated_after"], "updated_after")
        rows = [row for row in rows if int(row.get("updated_at", 0)) > limit]
    if "start_date" in query:
        start = _integer(query["start_date"], "start_date")
        rows = [row for row in rows if int(row.get("date") or 0) >= start]
    if "end_date" in query:
        end = _integer(query["end_date"], "end_date")
        rows = [row for row in rows if int(row.get("date") or 0) <= end]
    if "payment_source" in query:
        has = _flag(query["payment_source"], "payment_source")
        rows = [row for row in rows if (row.get("payment_source") is not None) == has]
    if "open_balance" in query:
        has = _flag(query["open_balance"], "open_balance")
        owing = {row["customer"] for row in state.table("invoiced.invoices").live()
                 if row["status"] not in ("draft", "voided", "bad_debt", "paid")
                 and float(row["balance"]) > 0}
        rows = [row for row in rows if (row["id"] in owing) == has]
    if "sort" in query:
        field, _, direction = str(query["sort"]).strip().partition(" ")
        direction = direction.strip().lower() or "asc"
        if field not in SORTABLE or direction not in ("asc", "desc"):
            raise _bad("sort", f"sort must be one of {', '.join(SORTABLE)} followed by asc or desc")
        rows = sorted(rows, key=lambda row: (_sort_key(row.get(field)), row["id"] if isinstance(
            row["id"], int) else 0), reverse=direction == "desc")
    total = len(rows)
    last = max(1, math.ceil(total / per_page))
    chosen = rows[(page - 1) * per_page : page * per_page]
    headers = [("link", _links(call.url, page, per_page, last)), ("x-total-count", str(total))]
    return Reply(200, chosen, headers)


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, 0)
    if isinstance(value, int | float):
        return (1, value)
    return (2, str(value))


def _same(actual: Any, wanted: Any) -> bool:
    if isinstance(actual, bool):
        return str(wanted).lower() in (("true", "1") if actual else ("false", "0"))
    if actual is None:
        return wanted in ("", "null", None)
    if isinstance(actual, float) and actual == int(actual):
        actual = int(actual)
    return str(actual) == str(wanted)


def _positive(raw: Any, name: str, default: int) -> int:
    if raw is None:
        return default
    value = _integer(raw, name)
    if value < 1:
        raise _bad(name, f"{name} must be at least 1")
    return value


def _integer(raw: Any, name: str) -> int:
    if not isinstance(raw, str) or not re.fullmatch(r"-?[0-9]{1,18}", raw):
        raise _bad(name, f"{name} must be an integer")
    return int(raw)


def _links(url: str, page: int, per_page: int, last: int) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if k not in ("page", "per_page")]

    def link(number: int) -> str:
        q = urlencode([*query, ("page", str(number)), ("per_page", str(per_page))])
        return urlunsplit((parts.scheme, parts.netloc, parts.path, q, ""))

    rels = [("self", page), ("first", 1)]
    if page > 1:
        rels.append(("previous", min(page - 1, last)))
    if page < last:
        rels.append(("next", page + 1))
    rels.append(("last", last))
    return ", ".join(f'<{link(number)}>; rel="{rel}"' for rel, number in rels)


# ---------------------------------------------------------------- customers
def new_customer(state: SandboxState, body: dict[str, Any]) -> JsonDict:
    fields = _fields(body, CUSTOMER_FIELDS, "a customer", ("customer", "create"))
    if not fields.get("name"):
        raise _bad("name", "Name missing")
    _customer_checks(state, fields, None)
    ident = state.next_number("invoiced.customer")
    number = fields.get("number") or f"CUST-{ident:05d}"
    record: JsonDict = {
        "id": ident, "object": "customer", "name": fields["name"], "number": number,
        "email": None, "autopay": False, "autopay_delay_days": None, "payment_terms": None,
        "payment_source": None, "attention_to": None, "address1": None, "address2": None,
        "city": None, "state": None, "postal_code": None, "country": None, "language": None,
        "currency": None, "chase": True, "chasing_cadence": None, "next_chase_step": None,
        "phone": None, "credit_hold": False, "credit_limit": None, "owner": None,
        "taxable": True, "taxes": [], "tax_id": None, "avalara_entity_use_code": None,
        "avalara_exemption_number": None, "type": "company", "parent_customer": None,
        "notes": None, "sign_up_page": None, "sign_up_url": None,
        "statement_pdf_url": f"https://sandbox.invoiced.local/statements/{ident}/pdf",
        "ach_gateway": None, "cc_gateway": None, "created_at": 0, "updated_at": 0,
        "metadata": {},
    }
    for key, value in fields.items():
        if value is not None or key not in ("taxes", "metadata"):
            record[key] = value
    record["number"] = number
    _touch(state, record, created=True)
    state.table("invoiced.customers").add(str(ident), record)
    return record


def _customer_checks(state: SandboxState, fields: dict[str, Any], ident: int | None) -> None:
    if "type" in fields and fields["type"] not in ("company", "person"):
        raise _bad("type", "type must be company or person")
    if "name" in fields and not fields["name"]:
        raise _bad("name", "Name missing")
    _normalise_common(fields)
    number = fields.get("number")
    if number:
        for row in state.table("invoiced.customers").live():
            if row["number"] == number and row["id"] != ident:
                raise _bad("number", "The given number has already been taken")
    parent = fields.get("parent_customer")
    if parent is not None and state.table("invoiced.customers").get(str(parent)) is None:
        raise _bad("parent_customer", f"No such customer: {parent}")


def create_customer(state: SandboxState, call: Call) -> Reply:
    return Reply(201, _event(state, "customer.created", new_customer(state, _body(call))))


def list_customers(state: SandboxState, call: Call) -> Reply:
    filterable = ("id", "name", "number", "email", "type", "country", "currency", "city",
                  "state", "postal_code", "autopay", "chase", "credit_hold", "taxable",
                  "parent_customer", "payment_terms")
    return _list(state, call, state.table("invoiced.customers"), filterable, "customer")


def get_customer(state: SandboxState, call: Call) -> Reply:
    ident = _int_id(call, "Customer")
    return Reply(200, _find(state, "invoiced.customers", str(ident), "Customer"))


def update_customer(state: SandboxState, call: Call) -> Reply:
    ident = _int_id(call, "Customer")
    record = _find(state, "invoiced.customers", str(ident), "Customer")
    fields = _fields(_body(call), CUSTOMER_FIELDS, "a customer", ("customer", "update"))
    _customer_checks(state, fields, ident)
    old = copy.deepcopy(record)
    for key, value in fields.items():
        if key == "metadata":
            record["metadata"] = value or {}
        elif key == "taxes":
            record["taxes"] = value or []
        else:
            record[key] = value
    _touch(state, record)
    return Reply(200, _event(state, "customer.updated", record, old))


def delete_customer(state: SandboxState, call: Call) -> Reply:
    ident = _int_id(call, "Customer")
    record = _find(state, "invoiced.customers", str(ident), "Customer")
    for invoice in state.table("invoiced.invoices").live():
        if invoice["customer"] == ident:
            raise _bad(None, "This customer cannot be deleted because it has invoices")
    state.table("invoiced.customers").remove(str(ident))
    state.clock.tick()
    _event(state, "customer.deleted", record)
    return Reply(204, None)


# ---------------------------------------------------------------- items
def new_item(state: SandboxState, body: dict[str, Any]) -> JsonDict:
    fields = _fields(body, ITEM_FIELDS, "an item", ("item", "create"))
    if not fields.get("name"):
        raise _bad("name", "Name missing")
    _normalise_common(fields)
    table = state.table("invoiced.items")
    ident = fields.get("id")
    if ident is None:
        ident = f"item-{state.next_number('invoiced.item')}"
        while table.get(ident) is not None:
            ident = f"item-{state.next_number('invoiced.item')}"
    elif not _ITEM_ID.match(ident):
        raise _bad("id", "id may only contain letters, digits, '.', '_' and '-'")
    elif table.get(ident) is not None:
        raise _bad("id", "The given ID has already been taken")
    record: JsonDict = {
        "id": ident, "object": "item", "name": fields["name"], "currency": None,
        "unit_cost": 0, "description": None, "type": None, "taxable": True, "taxes": [],
        "discountable": True, "gl_account": None, "avalara_tax_code": None,
        "avalara_location_code": None, "created_at": 0, "updated_at": 0, "metadata": {},
    }
    for key, value in fields.items():
        if value is not None or key not in ("taxes", "metadata", "unit_cost"):
            record[key] = money(value) if key == "unit_cost" else value
    _touch(state, record, created=True)
    table.add(ident, record)
    return record


def create_item(state: SandboxState, call: Call) -> Reply:
    return Reply(201, new_item(state, _body(call)))


def list_items(state: SandboxState, call: Call) -> Reply:
    filterable = ("id", "name", "currency", "type", "taxable", "discountable", "unit_cost")
    return _list(state, call, state.table("invoiced.items"), filterable, "item")


def get_item(state: SandboxState, call: Call) -> Reply:
    return Reply(200, _find(state, "invoiced.items", call.path_params["id"], "Item"))


def update_item(state: SandboxState, call: Call) -> Reply:
    record = _find(state, "invoiced.items", call.path_params["id"], "Item")
    body = _body(call)
    for key in body:
        if key not in ITEM_PATCHABLE:
            raise _bad(key, f"{key} cannot be changed on an existing item; only name, "
                       "description, type and metadata can (delete and recreate it instead)")
    fields = _fields(body, ITEM_FIELDS, "an item", ("item", "update"))
    if "name" in fields and not fields["name"]:
        raise _bad("name", "Name missing")
    for key, value in fields.items():
        record[key] = ({} if value is None else value) if key == "metadata" else value
    _touch(state, record)
    return Reply(200, record)


def delete_item(state: SandboxState, call: Call) -> Reply:
    _find(state, "invoiced.items", call.path_params["id"], "Item")
    state.table("invoiced.items").remove(call.path_params["id"])
    state.clock.tick()
    return Reply(204, None)


# ---------------------------------------------------------------- invoices
def _line_items(state: SandboxState, raw: list[Any], old: list[JsonDict]) -> list[JsonDict]:
    known = {line["id"]: line for line in old}
    lines: list[JsonDict] = []
    for index, entry in enumerate(raw):
        param = f"items[{index}]"
        if not isinstance(entry, dict):
            raise _bad(param, "each line item must be an object")
        fields = _fields(entry, LINE_FIELDS, "a line item")
        fields.pop("amount", None)  # computed by Invoiced, whatever the caller sends
        previous = known.get(fields["id"]) if fields.get("id") is not None else None
        if fields.get("id") is not None and previous is None:
            raise _bad(f"{param}[id]", f"No such line item: {fields['id']}")
        line: JsonDict = dict(previous) if previous else {
            "id": state.next_number("invoiced.line_item"), "object": "line_item",
            "catalog_item": None, "type": None, "name": None, "description": None,
            "quantity": 1, "unit_cost": 0, "amount": 0, "discountable": True,
            "discounts": [], "taxable": True, "taxes": [], "metadata": {},
        }
        catalog = fields.get("catalog_item")
        if catalog is not None:
            item = state.table("invoiced.items").get(catalog)
            if item is None:
                raise _bad(f"{param}[catalog_item]", f"No such item: {catalog}")
            if previous is None:
                line.update(name=item["name"], description=item["description"],
                            unit_cost=item["unit_cost"], type=item["type"])
        for key, value in fields.items():
            if key == "id":
                continue
            line[key] = value if value is not None or key not in ("metadata", "discounts",
                                                                  "taxes") else line[key]
        line["quantity"] = money(line["quantity"] if line["quantity"] is not None else 1)
        line["unit_cost"] = money(line["unit_cost"] or 0)
        line["amount"] = money(float(line["quantity"]) * float(line["unit_cost"]))
        if previous is None or line != previous:  # a line item's own change stamp
            line["updated_at"] = state.clock.peek()
        lines.append(line)
    return lines


def _totals(record: JsonDict) -> None:
    subtotal = money(sum(float(line["amount"]) for line in record["items"]))
    record["subtotal"] = subtotal
    record["total"] = subtotal
    paid = not record["draft"] and not record["closed"] and float(subtotal) == 0.0
    record["paid"] = paid
    record["balance"] = 0 if paid else subtotal
    if record.get("status") == "voided":  # only POST /invoices/:id/void sets it; final
        return
    if record["draft"]:
        record["status"] = "draft"
    elif paid:
        record["status"] = "paid"
    elif record["closed"]:  # closed with a balance is written off, not voided
        record["status"] = "bad_debt"
    else:
        record["status"] = "not_sent"


def new_invoice(state: SandboxState, body: dict[str, Any]) -> JsonDict:
    fields = _fields(body, INVOICE_FIELDS, "an invoice", ("invoice", "create"))
    customer_id = fields.get("customer")
    if customer_id is None:
        raise _bad("customer", "Customer missing")
    customer = state.table("invoiced.customers").get(str(customer_id))
    if customer is None:
        raise _bad("customer", f"No such customer: {customer_id}")
    _normalise_common(fields)
    table = state.table("invoiced.invoices")
    number = fields.get("number")
    if number and any(row["number"] == number for row in table.live()):
        raise _bad("number", "The given number has already been taken")
    ident = state.next_number("invoiced.invoice")
    now = state.clock.peek()
    record: JsonDict = {
        "id": ident, "object": "invoice", "customer": customer_id,
        "name": fields.get("name") or "Invoice", "number": number or f"INV-{ident:04d}",
        "autopay": False, "currency": fields.get("currency") or customer["currency"] or "usd",
        "draft": bool(fields.get("draft")), "closed": bool(fields.get("closed")),
        "paid": False, "status": "not_sent", "attempt_count": 0, "next_payment_attempt": None,
        "subscription": None, "payment_plan": None, "date": fields.get("date") or now,
        "due_date": fields.get("due_date"), "payment_terms": fields.get("payment_terms"),
        "purchase_order": fields.get("purchase_order"),
        "items": _line_items(state, fields.get("items") or [], []),
        "notes": fields.get("notes"), "subtotal": 0, "discounts": fields.get("discounts") or [],
        "taxes": fields.get("taxes") or [], "total": 0, "balance": 0, "ship_to": None,
        "url": f"https://sandbox.invoiced.local/invoices/{ident}",
        "payment_url": f"https://sandbox.invoiced.local/invoices/{ident}/payment",
        "pdf_url": f"https://sandbox.invoiced.local/invoices/{ident}/pdf",
        "created_at": 0, "updated_at": 0, "metadata": fields.get("metadata") or {},
    }
    _totals(record)
    _touch(state, record, created=True)
    table.add(str(ident), record)
    return record


def create_invoice(state: SandboxState, call: Call) -> Reply:
    return Reply(201, _event(state, "invoice.created", new_invoice(state, _body(call))))


def list_invoices(state: SandboxState, call: Call) -> Reply:
    filterable = ("id", "customer", "number", "currency", "status", "draft", "closed", "paid",
                  "name", "date")
    reply = _list(state, call, state.table("invoiced.invoices"), filterable, "invoice",
                  ("expand",))
    reply.payload = [_expanded(state, call, row) for row in reply.payload]
    return reply


def get_invoice(state: SandboxState, call: Call) -> Reply:
    ident = _int_id(call, "Invoice")
    record = _find(state, "invoiced.invoices", str(ident), "Invoice")
    return Reply(200, _expanded(state, call, record))


def _expanded(state: SandboxState, call: Call, invoice: JsonDict) -> JsonDict:
    """`expand=customer` inlines the customer object in place of its id."""
    wanted = {part.strip() for key, value in call.query if key == "expand"
              for part in value.split(",")}
    if "customer" not in wanted:
        return invoice
    customer = state.table("invoiced.customers").get(str(invoice["customer"]))
    return {**invoice, "customer": customer if customer is not None else invoice["customer"]}


def update_invoice(state: SandboxState, call: Call) -> Reply:
    ident = _int_id(call, "Invoice")
    record = _find(state, "invoiced.invoices", str(ident), "Invoice")
    body = _body(call)
    if "customer" in body:
        raise _bad("customer", "The customer of an invoice cannot be changed")
    if record["status"] == "voided":
        raise _bad(None, "This invoice has been voided and can no longer be modified")
    fields = _fields(body, INVOICE_FIELDS, "an invoice", ("invoice", "update"))
    _normalise_common(fields)
    number = fields.get("number")
    if number and any(row["number"] == number and row["id"] != ident
                      for row in state.table("invoiced.invoices").live()):
        raise _bad("number", "The given number has already been taken")
    live, record = record, copy.deepcopy(record)
    for key, value in fields.items():
        if key == "items":
            record["items"] = _line_items(state, value or [], record["items"])
        elif key in ("metadata",):
            record[key] = value or {}
        elif key in ("discounts", "taxes"):
            record[key] = value or []
        elif key in ("draft", "closed"):
            record[key] = bool(value)
        else:
            record[key] = value
    _totals(record)
    _touch(state, record)
    old = copy.deepcopy(live)
    live.clear()
    live.update(record)
    return Reply(200, _event(state, "invoice.updated", live, old))


def void_invoice(state: SandboxState, call: Call) -> Reply:
    """`POST /invoices/:id/void`: status `voided`, balance kept, `closed` untouched (the
    vendor's example `voided.json`); a voided invoice is final."""
    ident = _int_id(call, "Invoice")
    record = _find(state, "invoiced.invoices", str(ident), "Invoice")
    if _body(call):
        raise _bad(None, "Voiding an invoice takes no parameters")
    if record["status"] == "voided":
        raise _bad(None, "This invoice has already been voided")
    if record["paid"]:
        raise _bad(None, "Paid invoices cannot be voided")
    old = copy.deepcopy(record)
    record["status"] = "voided"
    _touch(state, record)
    return Reply(200, _event(state, "invoice.updated", record, old))


def delete_invoice(state: SandboxState, call: Call) -> Reply:
    ident = _int_id(call, "Invoice")
    record = _find(state, "invoiced.invoices", str(ident), "Invoice")
    state.table("invoiced.invoices").remove(str(ident))
    state.clock.tick()
    _event(state, "invoice.deleted", record)
    return Reply(204, None)


# ---------------------------------------------------------------- events
# The API user the reference's example events name (`user.id` -2: a change made through the
# API, not by a person).
_API_USER: JsonDict = {
    "created_at": None, "updated_at": None, "email": None, "first_name": None, "id": -2,
    "last_name": None, "two_factor_enabled": False, "registered": True,
}


def _event(
    state: SandboxState, event_type: str, record: JsonDict, old: JsonDict | None = None
) -> JsonDict:
    """Record a write as Invoiced's events show it (`data.object` a copy of the record;
    `data.previous` the old values of what an update changed) and return the record.
    Catalog items have no event type in the reference, so item writes record none."""
    data: JsonDict = {"object": copy.deepcopy(record)}
    if old is not None:
        data["previous"] = {key: copy.deepcopy(value) for key, value in old.items()
                            if key != "updated_at" and record.get(key) != value}
    state.publish("invoiced", {
        "id": state.next_number("invoiced.event"), "object": "event", "type": event_type,
        "timestamp": state.clock.now(), "data": data, "user": dict(_API_USER),
    })
    return record


def list_events(state: SandboxState, call: Call) -> Reply:
    """Newest first ("reverse chronological order"); `related_to=TYPE,ID` keeps the events
    whose subject is that object."""
    rows = list(reversed(state.table("invoiced.events").live()))
    related = dict(call.query).get("related_to")
    if related is not None:
        kind, _, ident = related.partition(",")
        if not kind or not ident:
            raise _bad("related_to", "related_to must be written object_type,object_id")
        rows = [row for row in rows if row["data"]["object"].get("object") == kind
                and str(row["data"]["object"].get("id")) == ident]
    return _list(state, call, Table(rows=rows), (), "event")


def get_event(state: SandboxState, call: Call) -> Reply:
    ident = _int_id(call, "Event")
    return Reply(200, _find(state, "invoiced.events", str(ident), "Event"))


# ---------------------------------------------------------------- vendor wiring
def render_error(problem: Problem) -> dict[str, Any]:
    error_type = problem.error_type or "invalid_request"
    if error_type not in ("invalid_request", "api", "rate_limit_error", "authentication_error"):
        error_type = "invalid_request" if problem.status < 500 else "api"
    body: dict[str, Any] = {"type": error_type, "message": problem.message}
    if problem.param is not None:
        body["param"] = problem.param
    return body


def _route_not_found(method: str, path: str) -> Problem:
    return Problem(404, f"Request was not recognized: {method} {path}", "not_found", None)


def _wire(handler: Any) -> Any:
    """Map wire-level parse failures to Invoiced's 400 envelope (Chargebee's differs)."""

    def run(state: SandboxState, call: Call) -> Reply:
        try:
            return handler(state, call)  # type: ignore[no-any-return]
        except WireError as exc:
            raise _bad(exc.param, str(exc)) from exc

    return run


ROUTES: tuple[Route, ...] = tuple(
    Route(method, template, _wire(handler), method != "GET")
    for method, template, handler in (
        ("GET", "/customers", list_customers),
        ("POST", "/customers", create_customer),
        ("GET", "/customers/{id}", get_customer),
        ("PATCH", "/customers/{id}", update_customer),
        ("DELETE", "/customers/{id}", delete_customer),
        ("GET", "/items", list_items),
        ("POST", "/items", create_item),
        ("GET", "/items/{id}", get_item),
        ("PATCH", "/items/{id}", update_item),
        ("DELETE", "/items/{id}", delete_item),
        ("GET", "/invoices", list_invoices),
        ("POST", "/invoices", create_invoice),
        ("GET", "/invoices/{id}", get_invoice),
        ("PATCH", "/invoices/{id}", update_invoice),
        ("POST", "/invoices/{id}/void", void_invoice),
        ("DELETE", "/invoices/{id}", delete_invoice),
        ("GET", "/events", list_events),
        ("GET", "/events/{id}", get_event),
    )
)

VENDOR = Vendor(
    name="invoiced",
    prefix="",
    api_key=API_KEY,
    idempotency_header="idempotency-key",
    replay_header=None,
    media_type="application/json",
    routes=ROUTES,
    render_error=render_error,
    not_found=_route_not_found,
    unauthorized=Problem(401, "The API key provided is invalid.", "unauthorized", None,
                         "invalid_request"),
)
