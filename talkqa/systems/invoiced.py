"""Invoiced over httpx: customers, items and invoices.

Invoiced is plain REST: JSON bodies, PATCH for partial updates, DELETE answering 204,
lists as bare JSON arrays paged by ``page``/``per_page`` with a ``Link`` header. Customer
and invoice ids are integers, catalog item ids strings; paths take either as text.
"""

from __future__ import annotations

import builtins
import functools
import json
from collections.abc import Collection, Iterator, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import msgspec
from pydantic import BaseModel, ConfigDict, StrictInt, StrictStr, TypeAdapter

from talkqa.systems.base import Json, UnexpectedResponse
from talkqa.systems.client import VendorClient, decoded, kept_fields, page_fits, typed_fields
from talkqa.systems.http import VendorHttp, lean, resend_checked, validated

SYSTEM = "invoiced"
PAGE_SIZE = 100
# A runaway Link chain (a server that always says "next") must end somewhere.
MAX_PAGES = 10_000
IDEMPOTENCY_HEADER = "idempotency-key"


class _Entity(BaseModel):
    model_config = ConfigDict(extra="allow")
    object: str | None = None
    updated_at: int | None = None
    metadata: dict[str, Any] | None = None


class _Customer(_Entity):
    id: StrictInt
    name: str | None = None
    type: str | None = None


class _Item(_Entity):
    id: StrictStr  # catalog items alone have caller-chosen string ids
    name: str | None = None


class _Invoice(_Entity):
    id: StrictInt
    customer: StrictInt | None = None
    currency: str | None = None
    items: list[dict[str, Any]] | None = None


# The fields the harness reads, typed: an answer that breaks them fails here, not in a check.
_MODELS: Mapping[str, type[_Entity]] = {
    "customers": _Customer,
    "items": _Item,
    "invoices": _Invoice,
}


@functools.cache
def _page_checker(name: str) -> TypeAdapter[Any]:
    """A parsed list page checked whole: an array of entities with the model's fields."""
    return TypeAdapter(list[typed_fields(_MODELS[name])])  # type: ignore[arg-type, misc]


@functools.cache
def _kept_page(name: str, keep: frozenset[str]) -> msgspec.json.Decoder[Any]:
    """A list page decoded into ``keep`` and the model's typed fields alone (see
    ``kept_fields``): an array of entities, checked in the same pass."""
    return msgspec.json.Decoder(list[kept_fields(_MODELS[name], keep)])  # type: ignore[misc]


def next_page_params(response: httpx.Response) -> dict[str, str] | None:
    """Query parameters of the ``Link: <...>; rel="next"`` URL, or None on the last page.

    Only the query is taken: the request goes to our own base URL, so a proxy or sandbox
    that writes a different host into ``Link`` cannot redirect the connector.
    """
    url = response.links.get("next", {}).get("url")
    if not url:
        return None
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def _canonical(body: Json) -> bytes:
    """The body as the key derivation sees it: stable whatever the dict's order."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()


class InvoicedResource:
    """One Invoiced collection; honours ``talkqa.systems.base.Resource``."""

    system = SYSTEM

    def __init__(self, http: VendorHttp, name: str) -> None:
        self._http = http
        self.name = name
        # lean: the same typed fields, the rest ignored rather than copied into a model that
        # is thrown away (every create's answer is checked)
        self._model: type[BaseModel] = lean(_MODELS[name])

    def list(
        self,
        updated_after: int | None = None,
        *,
        filters: Mapping[str, str] | None = None,
        fields: Collection[str] | None = None,
    ) -> Iterator[Json]:
        """Every entity, following ``Link: rel=next`` one page after another.

        With ``updated_after``, Invoiced's ``updated_after`` filter sorted by
        ``updated_at asc``. ``filters`` are raw query parameters:
        ``{"filter[type]": "person"}``, ``{"metadata[chargebee_id]": "c1"}`` (see ``find``).
        ``fields``: each entity carries only these top-level keys and the typed ones
        (``kept_fields``); a page that breaks a typed field is read whole and checked.
        """
        keep = frozenset(fields) if fields is not None else None
        params: dict[str, str] = {"page": "1", "per_page": str(PAGE_SIZE)}
        if updated_after is not None:
            params["updated_after"] = str(updated_after)
            params["sort"] = "updated_at asc"
        params.update(filters or {})
        for _ in range(MAX_PAGES):
            response = self._http.request("GET", f"/{self.name}", resource=self.name, params=params)
            kept = None if keep is None else decoded(_kept_page(self.name, keep), response.content)
            if kept is not None:
                yield from kept
            else:
                yield from self._page(response)
            following = next_page_params(response)
            if following is None or following == params:
                return
            params = following
        raise UnexpectedResponse(SYSTEM, self.name, f"more than {MAX_PAGES} pages: Link loops")

    def _page(self, response: httpx.Response) -> builtins.list[Json]:
        """A list page whole, checked as a whole, or entity by entity to name a culprit."""
        body = self._http.read_json(response, resource=self.name)
        if not isinstance(body, builtins.list):
            raise UnexpectedResponse(
                SYSTEM, self.name, f"a list answered {type(body).__name__}, not a JSON array"
            )
        if page_fits(_page_checker(self.name), body):
            return body
        return [self._valid(entity, None) for entity in body]

    def find(
        self,
        *,
        filter: Mapping[str, str] | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> builtins.list[Json]:
        """Entities matching every ``filter[field]=value`` and ``metadata[key]=value``.

        The judge pairs entities by ``metadata.chargebee_id`` and picks persons by
        ``filter[type]=person``; this spells those lookups without bracket strings.
        """
        params = {f"filter[{k}]": v for k, v in (filter or {}).items()}
        params.update({f"metadata[{k}]": v for k, v in (metadata or {}).items()})
        return builtins.list(self.list(filters=params))

    def get(self, entity_id: str) -> Json:
        return self._read(self._at("GET", entity_id), str(entity_id))

    def create(self, fields: Mapping[str, Any], idempotency_key: str | None = None) -> Json:
        body = dict(fields)
        key = self._http.write_key(
            idempotency_key, "POST", self._http.url(f"/{self.name}"), lambda: _canonical(body)
        )
        entity_id = str(fields["id"]) if fields.get("id") is not None else None
        response = self._http.request(
            "POST",
            f"/{self.name}",
            resource=self.name,
            entity_id=entity_id,
            json=body,
            headers={IDEMPOTENCY_HEADER: key} if key else None,
            idempotent=bool(key),
        )
        return self._read(response, entity_id)

    def update(
        self, entity_id: str, fields: Mapping[str, Any], idempotency_key: str | None = None
    ) -> Json:
        """PATCH: only the given fields change; retried read-before-resend.

        Invoiced documents idempotency keys for POST only, so a PATCH whose answer was lost
        is resent only after re-reading the entity shows the change did not land.
        ``idempotency_key`` is accepted for the shared contract and not sent.
        """
        return resend_checked(
            lambda: self._read(self._at("PATCH", entity_id, dict(fields)), str(entity_id)),
            lambda: self.get(entity_id),
            fields,
            self._http.retry.max_attempts,
        )

    def delete(self, entity_id: str, idempotency_key: str | None = None) -> None:
        """DELETE, resent on a lost answer (a 404 on the resend means it happened)."""
        self._at("DELETE", entity_id, gone_ok=True)

    def _at(
        self, method: str, entity_id: str, json: Json | None = None, *, gone_ok: bool = False
    ) -> httpx.Response:
        """``method`` on ``/{name}/{id}`` (ids may arrive as Invoiced's ints: sent as text)."""
        return self._http.request(
            method,
            f"/{self.name}/{{id}}",
            resource=self.name,
            path_args={"id": str(entity_id)},
            entity_id=str(entity_id),
            json=json,
            gone_ok=gone_ok,
        )

    def _read(self, response: httpx.Response, entity_id: str | None) -> Json:
        return self._valid(self._http.read_json(response, resource=self.name), entity_id)

    def _valid(self, body: Any, entity_id: str | None) -> Json:
        validated(self._model, body, system=SYSTEM, resource=self.name, entity_id=entity_id)
        result: Json = body
        return result


class InvoicedClient(VendorClient[InvoicedResource]):
    """The Invoiced collections talk-qa uses, sharing one transport, limiter and counter."""

    system = SYSTEM
    LABEL = "Invoiced"
    DEFAULT_REQUESTS_PER_MINUTE = 600
    DEFAULT_MAX_CONCURRENT = 10  # Invoiced documents no number; stay polite

    customers: InvoicedResource
    items: InvoicedResource
    invoices: InvoicedResource

    def _open(self, http: VendorHttp) -> Mapping[str, InvoicedResource]:
        self.customers = InvoicedResource(http, "customers")
        self.items = InvoicedResource(http, "items")
        self.invoices = InvoicedResource(http, "invoices")
        return {"customers": self.customers, "items": self.items, "invoices": self.invoices}
