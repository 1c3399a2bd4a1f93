"""Chargebee API v2 over httpx: customers, items, orders (and invoices, to create orders),
item prices, subscriptions and the addresses a subscription carries.

Chargebee's wire format is its own: every write is a form-encoded POST in bracket
notation, lists of objects are column-indexed (``order_line_items[id][0]``), JSON-valued
parameters travel as JSON text inside the form, and every answer wraps the entity under its
type name (``{"customer": {...}}``). All of that stays in this module; callers send and
receive plain JSON dicts.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Collection, Iterator, Mapping
from typing import Any, NotRequired
from urllib.parse import urlencode

import httpx
import msgspec
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from talkqa.systems.base import BadRequest, Json, NotFound, UnexpectedResponse
from talkqa.systems.catalog import ADDRESS_LABEL
from talkqa.systems.client import (
    VendorClient,
    decoded,
    kept_fields,
    page_fits,
    shape,
    typed_fields,
)
from talkqa.systems.http import VendorHttp, resend_checked, validated

SYSTEM = "chargebee"
PAGE_SIZE = 100
_FORM = {"content-type": "application/x-www-form-urlencoded"}
IDEMPOTENCY_HEADER = "chargebee-idempotency-key"


# --- the form encoding (pure) -------------------------------------------------------------


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _encode(prefix: str, value: Any, pairs: list[tuple[str, str]]) -> None:
    if value is None:
        return
    if isinstance(value, Mapping):
        for key, inner in value.items():
            _encode(f"{prefix}[{key}]", inner, pairs)
    elif isinstance(value, list | tuple):
        if value and all(isinstance(row, Mapping) for row in value):
            # Chargebee indexes lists of objects by column: items[id][0], items[qty][0], ...
            for index, row in enumerate(value):
                for column, cell in row.items():
                    _encode(f"{prefix}[{column}][{index}]", cell, pairs)
        else:
            for index, item in enumerate(value):
                _encode(f"{prefix}[{index}]", item, pairs)
    else:
        pairs.append((prefix, _scalar(value)))


def encode_form(
    fields: Mapping[str, Any], json_fields: frozenset[str] = frozenset()
) -> list[tuple[str, str]]:
    """Chargebee's bracket notation for a JSON-shaped dict, in a stable order.

    ``json_fields`` name parameters Chargebee types as JSON (customer ``meta_data``, item
    ``metadata``): their value is sent as compact JSON text, not expanded into brackets.
    None values are left out (Chargebee has no "unset" in form bodies).
    """
    pairs: list[tuple[str, str]] = []
    for key, value in fields.items():
        if value is None:
            continue
        if key in json_fields and not isinstance(value, str):
            pairs.append((key, json.dumps(value, separators=(",", ":"), sort_keys=True)))
        else:
            _encode(key, value, pairs)
    return pairs


# --- response shapes (validated at the edge, then dropped) ---------------------------------


class _Entity(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    object: str | None = None
    updated_at: int | None = None
    deleted: bool | None = None


class _Customer(_Entity):
    email: str | None = None
    billing_address: dict[str, Any] | None = None
    meta_data: dict[str, Any] | None = None


class _Item(_Entity):
    name: str | None = None
    status: str | None = None
    item_family_id: str | None = None
    metadata: dict[str, Any] | None = None


class _Order(_Entity):
    invoice_id: str | None = None
    customer_id: str | None = None
    currency_code: str | None = None
    order_line_items: list[dict[str, Any]] | None = None


class _Invoice(_Entity):
    customer_id: str | None = None
    currency_code: str | None = None


class _Subscription(_Entity):
    customer_id: str
    status: str | None = None
    subscription_items: list[dict[str, Any]] | None = None


class _Address(BaseModel):
    """No id of its own: an address is named by its subscription and its label."""

    model_config = ConfigDict(extra="allow")
    subscription_id: str
    label: str
    object: str | None = None


# The fields the harness reads, typed: an answer that breaks them fails here, not in a check.
_MODELS: Mapping[str, type[_Entity]] = {
    "customer": _Customer,
    "item": _Item,
    "order": _Order,
    "invoice": _Invoice,
    "subscription": _Subscription,
}


class _Page(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    entries: list[dict[str, Any]] = Field(alias="list")
    next_offset: str | None = None


@functools.cache
def _page_checker(singular: str) -> TypeAdapter[Any]:
    """A parsed list page checked whole: ``{"list": [{singular: <model's fields>}, ...],
    "next_offset": str | None}``, what ``_Page`` and ``_unwrap`` check entry by entry."""
    entry = shape(
        f"_{singular.title()}Entry", {singular: typed_fields(_MODELS.get(singular, _Entity))}
    )
    fields = {"list": list[entry], "next_offset": NotRequired[str | None]}  # type: ignore[valid-type]
    return TypeAdapter(shape(f"_{singular.title()}Page", fields))


@functools.cache
def _kept_page(singular: str, keep: frozenset[str]) -> msgspec.json.Decoder[Any]:
    """A list page decoded into ``keep`` and the model's typed fields alone (``kept_fields``):
    the shape ``_page_checker`` checks, with every other key of an entry and entity skipped."""
    entry = shape(
        f"_{singular.title()}KeptEntry",
        {singular: kept_fields(_MODELS.get(singular, _Entity), keep)},
    )
    fields = {"list": list[entry], "next_offset": NotRequired[str | None]}  # type: ignore[valid-type]
    return msgspec.json.Decoder(shape(f"_{singular.title()}KeptPage", fields))


# --- resources -----------------------------------------------------------------------------


class ChargebeeResource:
    """One Chargebee collection; honours ``talkqa.systems.base.Resource``."""

    system = SYSTEM

    def __init__(
        self,
        http: VendorHttp,
        name: str,
        *,
        singular: str,
        json_fields: frozenset[str] = frozenset(),
    ) -> None:
        self._http = http
        self.name = name
        self.singular = singular
        self.json_fields = json_fields

    def list(
        self,
        updated_after: int | None = None,
        *,
        filters: Mapping[str, str] | None = None,
        fields: Collection[str] | None = None,
    ) -> Iterator[Json]:
        """Every entity, page by page (``offset`` = the previous ``next_offset``).

        With ``updated_after`` the list is Chargebee's ``updated_at[after]`` (strictly
        after) sorted by ``updated_at`` ascending, so a cursor can resume from the last
        entity seen. ``filters`` are raw query parameters (``{"include_deleted": "true"}``,
        ``{"id[is]": "c1"}``). ``fields``: each entity carries only these top-level keys and
        the typed ones (``kept_fields``); a page that breaks a typed field is read whole.
        """
        keep = frozenset(fields) if fields is not None else None
        for entry, checked in self._entries(updated_after, filters, keep):
            yield self._unwrap(entry, None, checked=checked)

    def _entries(
        self,
        updated_after: int | None,
        filters: Mapping[str, str] | None,
        keep: frozenset[str] | None = None,
    ) -> Iterator[tuple[Json, bool]]:
        """Every list entry as answered (``{"subscription": ..., "customer": ...}``), or only
        its entity's ``keep`` and typed fields, and whether its page passed the checks."""
        params: dict[str, str] = {"limit": str(PAGE_SIZE)}
        if updated_after is not None:
            params["updated_at[after]"] = str(updated_after)
            params["sort_by[asc]"] = "updated_at"
        params.update(filters or {})
        seen_offsets: set[str] = set()
        while True:
            response = self._http.request("GET", f"/{self.name}", resource=self.name, params=params)
            body = (
                None if keep is None else decoded(_kept_page(self.singular, keep), response.content)
            )
            checked = body is not None
            if body is None:
                body = self._http.read_json(response, resource=self.name)
                checked = page_fits(_page_checker(self.singular), body)
                if not checked:
                    validated(_Page, body, system=SYSTEM, resource=self.name)
            for entry in body["list"]:
                yield entry, checked
            offset = body.get("next_offset")
            if not offset:
                return
            if offset in seen_offsets:
                raise UnexpectedResponse(
                    SYSTEM, self.name, f"next_offset {offset!r} repeats: pagination loops"
                )
            seen_offsets.add(offset)
            params = {**params, "offset": str(offset)}

    def get(self, entity_id: str) -> Json:
        response = self._http.request(
            "GET",
            f"/{self.name}/{{id}}",
            resource=self.name,
            path_args={"id": entity_id},
            entity_id=entity_id,
        )
        return self._read(response, entity_id)

    def create(self, fields: Mapping[str, Any], idempotency_key: str | None = None) -> Json:
        entity_id = str(fields["id"]) if fields.get("id") is not None else None
        return self._post(f"/{self.name}", None, fields, entity_id, idempotency_key)

    def update(
        self, entity_id: str, fields: Mapping[str, Any], idempotency_key: str | None = None
    ) -> Json:
        return self._update(f"/{self.name}/{{id}}", entity_id, fields, idempotency_key)

    def delete(self, entity_id: str, idempotency_key: str | None = None) -> None:
        """POST .../delete; resent after a lost answer (a 404 then means it happened)."""
        self._send(f"/{self.name}/{{id}}/delete", entity_id, {}, idempotency_key, gone_ok=True)

    # helpers shared by the subclasses

    def _update(
        self,
        template: str,
        entity_id: str,
        fields: Mapping[str, Any],
        idempotency_key: str | None,
    ) -> Json:
        """An update POST, safe to retry: with a key it is resent; without, re-read first."""
        key = self._key(template, entity_id, fields, idempotency_key)
        if key is not None:
            return self._post(template, entity_id, fields, entity_id, key)
        return resend_checked(
            lambda: self._post(template, entity_id, fields, entity_id, None),
            lambda: self.get(entity_id),
            fields,
            self._http.retry.max_attempts,
        )

    def _key(
        self, template: str, path_id: str | None, fields: Mapping[str, Any], given: str | None
    ) -> str | None:
        path = self._http.url(template, {"id": path_id} if path_id is not None else None)
        return self._http.write_key(
            given, "POST", path, lambda: urlencode(encode_form(fields, self.json_fields)).encode()
        )

    def _post(
        self,
        template: str,
        path_id: str | None,
        fields: Mapping[str, Any],
        entity_id: str | None,
        idempotency_key: str | None,
    ) -> Json:
        key = self._key(template, path_id, fields, idempotency_key)
        return self._read(
            self._send(template, path_id, fields, key, entity_id=entity_id), entity_id
        )

    def _send(
        self,
        template: str,
        path_id: str | None,
        fields: Mapping[str, Any],
        idempotency_key: str | None,
        *,
        gone_ok: bool = False,
        entity_id: str | None = None,
    ) -> httpx.Response:
        """One form POST; resent on a lost answer only when it carries a key (or ``gone_ok``)."""
        headers = dict(_FORM)
        if idempotency_key:
            headers[IDEMPOTENCY_HEADER] = idempotency_key
        return self._http.request(
            "POST",
            template,
            resource=self.name,
            path_args={"id": path_id} if path_id is not None else None,
            entity_id=entity_id or path_id,
            content=urlencode(encode_form(fields, self.json_fields)).encode("ascii"),
            headers=headers,
            idempotent=bool(idempotency_key) or gone_ok,
            gone_ok=gone_ok,
        )

    def _read(self, response: httpx.Response, entity_id: str | None) -> Json:
        return self._unwrap(self._http.read_json(response, resource=self.name), entity_id)

    def _unwrap(self, body: Any, entity_id: str | None, *, checked: bool = False) -> Json:
        """The entity under its type name: ``{"customer": {...}, "card": ...}`` -> customer.

        ``checked``: its page already passed ``_page_checker``, so its model is not run again.
        """
        inner = body.get(self.singular) if isinstance(body, dict) else None
        if not isinstance(inner, dict):
            raise UnexpectedResponse(
                SYSTEM,
                self.name,
                f"response has no {self.singular!r} object",
                entity_id=entity_id,
            )
        if not checked:
            model = _MODELS.get(self.singular, _Entity)
            validated(model, inner, system=SYSTEM, resource=self.name, entity_id=entity_id)
        if inner.get("object") not in (None, self.singular):
            raise UnexpectedResponse(
                SYSTEM,
                self.name,
                f"expected object {self.singular!r}, got {inner.get('object')!r}",
                entity_id=entity_id,
            )
        return inner


class ChargebeeCustomers(ChargebeeResource):
    """Customers: the billing address has its own endpoint on update."""

    def update(
        self, entity_id: str, fields: Mapping[str, Any], idempotency_key: str | None = None
    ) -> Json:
        """``billing_address`` goes through ``update_billing_info``, the rest through update.

        Chargebee ignores ``billing_address`` on the plain update, so splitting is the only
        way to change it; each call is made only when it has something to send. A caller's
        key is suffixed for the second call (one key, one request).
        """
        rest = {k: v for k, v in fields.items() if k != "billing_address"}
        billing = fields.get("billing_address")
        result: Json | None = None
        if rest:
            result = self._update("/customers/{id}", entity_id, rest, idempotency_key)
        if billing:
            result = self._update(
                "/customers/{id}/update_billing_info",
                entity_id,
                {"billing_address": billing},
                f"{idempotency_key}-billing" if idempotency_key else None,
            )
        return result if result is not None else self.get(entity_id)


# Order fields that really belong to the invoice an order is created from.
_FROM_INVOICE = frozenset(
    {"customer_id", "currency_code", "order_line_items", "amount", "description"}
)


def invoice_fields_for_order(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The invoice to create so Chargebee can create the order ``fields`` describes.

    Chargebee creates orders only from invoices: customer and currency come from the
    invoice, and each order line item from one of its charges (amount in minor units).
    Without line items, one charge of ``amount`` (default 0) described by ``description``.
    """
    customer_id = fields.get("customer_id")
    if not customer_id:
        raise BadRequest(
            SYSTEM,
            "orders",
            "an order needs invoice_id, or customer_id to create its invoice: set customer_id",
            param="customer_id",
        )
    lines = fields.get("order_line_items") or []
    charges: list[dict[str, Any]] = []
    for index, line in enumerate(lines):
        amount = line.get("amount")
        if amount is None and line.get("unit_price") is not None:
            amount = int(line["unit_price"]) * int(line.get("quantity") or 1)
        charges.append(
            {
                "amount": amount if amount is not None else 0,
                "description": line.get("description") or f"Line {index + 1}",
            }
        )
    if not charges:
        charges.append(
            {
                "amount": fields.get("amount") or 0,
                "description": fields.get("description") or "Order",
            }
        )
    invoice: dict[str, Any] = {"customer_id": customer_id}
    if fields.get("currency_code"):
        invoice["currency_code"] = fields["currency_code"]
    invoice["charges"] = charges
    return invoice


class ChargebeeOrders(ChargebeeResource):
    """Orders: created from an invoice, which this resource creates when none is given."""

    def __init__(self, http: VendorHttp, invoices: ChargebeeResource) -> None:
        super().__init__(http, "orders", singular="order")
        self._invoices = invoices

    def create(self, fields: Mapping[str, Any], idempotency_key: str | None = None) -> Json:
        """POST /orders; first POST /invoices when ``fields`` has no ``invoice_id``.

        ``customer_id``, ``currency_code``, ``order_line_items`` (amount, description,
        or unit_price x quantity), ``amount`` and ``description`` then shape the invoice and
        are not sent to /orders; every other field (``id``, ``status``, ...) is.
        """
        if fields.get("invoice_id"):
            return super().create(fields, idempotency_key)
        invoice = self._invoices.create(
            invoice_fields_for_order(fields),
            idempotency_key=f"{idempotency_key}-invoice" if idempotency_key else None,
        )
        order = {k: v for k, v in fields.items() if k not in _FROM_INVOICE}
        order["invoice_id"] = invoice["id"]
        return super().create(order, idempotency_key)


class ChargebeeSubscriptions(ChargebeeResource):
    """Subscriptions (product catalog 2.0): created for a customer from item prices."""

    def __init__(self, http: VendorHttp) -> None:
        super().__init__(
            http, "subscriptions", singular="subscription", json_fields=frozenset({"meta_data"})
        )

    def create(self, fields: Mapping[str, Any], idempotency_key: str | None = None) -> Json:
        """POST /customers/{customer_id}/subscription_for_items: the customer is the path's.

        ``subscription_items`` is a list of ``{"item_price_id": ..., "quantity": ...}``.
        """
        customer_id = fields.get("customer_id")
        if not customer_id:
            raise BadRequest(
                SYSTEM, self.name, "a subscription needs customer_id", param="customer_id"
            )
        body = {k: v for k, v in fields.items() if k != "customer_id"}
        entity_id = str(fields["id"]) if fields.get("id") is not None else None
        return self._post(
            "/customers/{id}/subscription_for_items",
            str(customer_id),
            body,
            entity_id,
            idempotency_key,
        )


    def list_with_customers(
        self, updated_after: int | None = None, filters: Mapping[str, str] | None = None
    ) -> Iterator[Json]:
        """Each subscription's list entry whole: the subscription and its customer."""
        for entry, checked in self._entries(updated_after, filters):
            self._unwrap(entry, None, checked=checked)
            yield entry


class ChargebeeAddresses(ChargebeeResource):
    """A subscription's address labelled ``label``, read and written as an entity.

    Chargebee offers only retrieve and update (``/addresses`` by ``subscription_id`` and
    ``label``; no id, no list, no delete). This resource reads one label (by default the
    catalogue's ``ADDRESS_LABEL``), so an address is named by its subscription: its ``id`` is
    the ``subscription_id``. Listing walks the subscriptions and retrieves each one's
    address; every address read also carries its subscription's ``customer_id`` and
    ``customer`` (as the subscription list answers it), which the catalogue's rule needs to
    tell whose location it is. Chargebee replaces an address whole on update, so ``update``
    sends the current fields with the change.
    """

    def __init__(
        self, http: VendorHttp, subscriptions: ChargebeeSubscriptions, label: str = ADDRESS_LABEL
    ) -> None:
        super().__init__(http, "addresses", singular="address")
        self._subscriptions = subscriptions
        self.label = label

    def list(
        self,
        updated_after: int | None = None,
        *,
        filters: Mapping[str, str] | None = None,
        fields: Collection[str] | None = None,
    ) -> Iterator[Json]:
        """The address of every subscription that has one (``updated_after`` and
        ``filters`` select the subscriptions). Each address is read whole, ``fields`` or
        not: one small answer per subscription leaves nothing worth skipping."""
        for subscription in self._subscriptions.list_with_customers(updated_after, filters):
            found = self._retrieve(str(subscription["subscription"]["id"]))
            if found is not None:
                yield self._owned(found, subscription)

    def get(self, entity_id: str) -> Json:
        found = self._retrieve(entity_id)
        if found is None:
            raise NotFound(
                SYSTEM,
                self.name,
                f"subscription {entity_id} has no address labelled {self.label!r}",
                entity_id=entity_id,
                status=404,
                code="resource_not_found",
            )
        owner = self._http.read_json(
            self._http.request(
                "GET",
                "/subscriptions/{id}",
                resource="subscriptions",
                path_args={"id": entity_id},
                entity_id=entity_id,
            ),
            resource="subscriptions",
        )
        return self._owned(found, owner)

    def create(self, fields: Mapping[str, Any], idempotency_key: str | None = None) -> Json:
        """Add the address to the subscription ``fields["subscription_id"]`` names."""
        subscription_id = fields.get("subscription_id") or fields.get("id")
        if not subscription_id:
            raise BadRequest(
                SYSTEM,
                self.name,
                "an address needs the subscription_id it belongs to",
                param="subscription_id",
            )
        return self._write(str(subscription_id), fields, {}, idempotency_key)

    def update(
        self, entity_id: str, fields: Mapping[str, Any], idempotency_key: str | None = None
    ) -> Json:
        current = self.get(entity_id)
        return self._write(entity_id, fields, current, idempotency_key)

    def delete(self, entity_id: str, idempotency_key: str | None = None) -> None:
        raise BadRequest(
            SYSTEM,
            self.name,
            "Chargebee offers no API to delete an address (retrieve and update only)",
            entity_id=entity_id,
        )

    def _write(
        self,
        subscription_id: str,
        fields: Mapping[str, Any],
        current: Mapping[str, Any],
        idempotency_key: str | None,
    ) -> Json:
        """POST /addresses with the whole address: Chargebee replaces what the label held."""
        kept = {k: v for k, v in current.items() if k in _ADDRESS_FIELDS}
        given = {k: v for k, v in fields.items() if k in _ADDRESS_FIELDS}
        body = {"subscription_id": subscription_id, "label": self.label, **kept, **given}
        key = self._key("/addresses", None, body, idempotency_key)
        response = self._send("/addresses", None, body, key, entity_id=subscription_id)
        address = self._checked(self._http.read_json(response, resource=self.name), subscription_id)
        return self.get(str(address["subscription_id"]))

    def _retrieve(self, subscription_id: str) -> Json | None:
        try:
            response = self._http.request(
                "GET",
                "/addresses",
                resource=self.name,
                params={"subscription_id": subscription_id, "label": self.label},
                entity_id=subscription_id,
            )
        except NotFound:
            return None
        return self._checked(self._http.read_json(response, resource=self.name), subscription_id)

    def _checked(self, body: Any, subscription_id: str) -> Json:
        inner = body.get("address") if isinstance(body, dict) else None
        if not isinstance(inner, dict):
            raise UnexpectedResponse(
                SYSTEM, self.name, "response has no 'address' object", entity_id=subscription_id
            )
        validated(_Address, inner, system=SYSTEM, resource=self.name, entity_id=subscription_id)
        return inner

    @staticmethod
    def _owned(address: Json, owner: Mapping[str, Any]) -> Json:
        """The address as an entity: named by its subscription, with whose it is."""
        subscription = owner.get("subscription") or {}
        return {
            **address,
            "id": str(address["subscription_id"]),
            "customer_id": subscription.get("customer_id"),
            "customer": owner.get("customer"),
        }


# What an address holds (UpdateAddressBodySchema minus its key and validation_status).
_ADDRESS_FIELDS = frozenset(
    {
        "first_name", "last_name", "email", "company", "phone", "addr", "extended_addr",
        "extended_addr2", "city", "state_code", "state", "country", "zip",
    }
)


class ChargebeeClient(VendorClient[ChargebeeResource]):
    """The Chargebee collections talk-qa uses, sharing one transport, limiter and counter."""

    system = SYSTEM
    LABEL = "Chargebee"
    DEFAULT_REQUESTS_PER_MINUTE = 150  # Chargebee test sites
    DEFAULT_MAX_CONCURRENT = 50  # Chargebee: about 50 concurrent GETs / POSTs per site

    customers: ChargebeeCustomers
    items: ChargebeeResource
    item_families: ChargebeeResource
    invoices: ChargebeeResource
    orders: ChargebeeOrders
    item_prices: ChargebeeResource
    subscriptions: ChargebeeSubscriptions
    addresses: ChargebeeAddresses

    def _open(self, http: VendorHttp) -> Mapping[str, ChargebeeResource]:
        self.customers = ChargebeeCustomers(
            http, "customers", singular="customer", json_fields=frozenset({"meta_data"})
        )
        self.items = ChargebeeResource(
            http, "items", singular="item", json_fields=frozenset({"metadata"})
        )
        # Items need an existing family (Chargebee answers 404 on item_family_id otherwise).
        self.item_families = ChargebeeResource(http, "item_families", singular="item_family")
        self.invoices = ChargebeeResource(http, "invoices", singular="invoice")
        self.orders = ChargebeeOrders(http, self.invoices)
        self.item_prices = ChargebeeResource(
            http, "item_prices", singular="item_price", json_fields=frozenset({"metadata"})
        )
        self.subscriptions = ChargebeeSubscriptions(http)
        self.addresses = ChargebeeAddresses(http, self.subscriptions)
        return {
            "customers": self.customers,
            "items": self.items,
            "item_families": self.item_families,
            "orders": self.orders,
            "invoices": self.invoices,
            "item_prices": self.item_prices,
            "subscriptions": self.subscriptions,
            "addresses": self.addresses,
        }
