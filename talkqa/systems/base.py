"""The one contract every vendor resource honours, and the errors it raises.

The reference sync and the judge work on plain JSON dicts through this contract, so a
resource can be backed by the network, a local sandbox, or a cassette without either of
them knowing which.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from typing import Any, Protocol

Json = dict[str, Any]


class Resource(Protocol):
    """CRUD on one vendor collection (Chargebee customers, Invoiced invoices, ...)."""

    system: str  # "chargebee" | "invoiced"
    name: str  # "customers", "items", "orders", "invoices"

    def list(
        self, updated_after: int | None = None, *, fields: Collection[str] | None = None
    ) -> Iterator[Json]:
        """Every entity (all pages), oldest change first when ``updated_after`` is given.

        Each call yields dicts of its own (freshly read, or copies): a caller may keep them,
        and the judge keeps 31k of them, without copying. ``fields`` says the caller reads
        only these top-level keys: a resource may then leave the others out (the vendor
        connectors skip them while decoding), or return them all."""
        ...

    def get(self, entity_id: str) -> Json: ...

    def create(self, fields: Mapping[str, Any], idempotency_key: str | None = None) -> Json: ...

    def update(self, entity_id: str, fields: Mapping[str, Any]) -> Json:
        """Change ``fields``; the vendor connectors also take an optional ``idempotency_key``."""
        ...

    def delete(self, entity_id: str) -> None: ...


class ApiError(Exception):
    """A vendor call failed; the message names system, resource, id and field."""

    def __init__(
        self,
        system: str,
        resource: str,
        message: str,
        *,
        entity_id: str | None = None,
        status: int | None = None,
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        self.system = system
        self.resource = resource
        self.entity_id = entity_id
        self.status = status
        self.code = code
        self.param = param
        self.detail = message
        where = f"{system} {resource}" + (f" {entity_id}" if entity_id else "")
        detail = f" (field {param})" if param else ""
        status_text = f"HTTP {status} " if status else ""
        code_text = f"{code}: " if code else ""
        super().__init__(f"{where}: {status_text}{code_text}{message}{detail}")


class BadRequest(ApiError):
    """400/409/422: the request was refused for its content."""


class AuthenticationFailed(ApiError):
    """401/403: the API key is missing or wrong."""


class NotFound(ApiError):
    """404: the entity (or route) does not exist."""


class Transient(ApiError):
    """A failure that says nothing about the request: the same call may succeed later.

    Callers confine it to the entity at hand and try again on the next run; a
    permanent error (every other ``ApiError``) needs the request or the setup changed.
    """


class RateLimited(Transient):
    """429 that the server kept answering for longer than the rate-limit patience."""


class ServerError(Transient):
    """5xx that persisted through every retry."""


class LostResponse(ServerError):
    """The connection broke after a write was sent, and it could not be resent safely.

    The write may or may not have happened: re-read the entity before deciding.
    """


class Unreachable(ApiError):
    """No connection at all (refused, unknown host, bad port): a setup problem, not load."""


class UnexpectedResponse(ApiError):
    """A 2xx answer the connector could not read (not JSON, or not the documented shape)."""
