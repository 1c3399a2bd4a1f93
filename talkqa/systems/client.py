"""What both vendor clients share: one ``VendorHttp`` and a table of named collections.

A client is only wiring: it turns its constructor's knobs into a ``VendorHttp`` (transport,
key, retries, account limiter, call counter) and hands that to each collection. The vendors
differ in their collections alone, so that is all a subclass says (``_open``).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from types import EllipsisType, UnionType
from typing import Any, ClassVar, Generic, NotRequired, TypeVar, Union, get_args, get_origin

import httpx
import msgspec
from pydantic import BaseModel, InstanceOf, TypeAdapter, ValidationError
from typing_extensions import TypedDict

from talkqa.systems.http import CallCounter, RetryPolicy, VendorHttp
from talkqa.systems.limits import AccountLimiter, Clock, Limiters, Sleep, account_key

R = TypeVar("R")


class VendorClient(Generic[R]):
    """One vendor's collections, sharing one transport, account limiter and counter.

    ``requests_per_minute`` and ``max_concurrent`` left out mean the vendor's documented
    limits (``DEFAULT_REQUESTS_PER_MINUTE``, ``DEFAULT_MAX_CONCURRENT``); 0 or None means
    none (loopback sandboxes, cassettes). With ``limiters``, the account's limiter comes
    from (and is shared through) that registry; without, this client has its own.
    ``idempotency_seed``: see ``VendorHttp``.
    """

    system: ClassVar[str]
    DEFAULT_REQUESTS_PER_MINUTE: ClassVar[int]
    DEFAULT_MAX_CONCURRENT: ClassVar[int]
    LABEL: ClassVar[str]  # the vendor's name as a person writes it, for progress lines

    def __init__(
        self,
        http: httpx.Client,
        base_url: str,
        api_key: str,
        *,
        sleep: Sleep = time.sleep,
        clock: Clock = time.monotonic,
        requests_per_minute: int | EllipsisType | None = ...,
        max_concurrent: int | EllipsisType | None = ...,
        max_attempts: int = 5,
        counter: CallCounter | None = None,
        limiters: Limiters | None = None,
        idempotency_seed: str | None = None,
    ) -> None:
        rate = (
            self.DEFAULT_REQUESTS_PER_MINUTE
            if isinstance(requests_per_minute, EllipsisType)
            else requests_per_minute
        )
        cap = (
            self.DEFAULT_MAX_CONCURRENT
            if isinstance(max_concurrent, EllipsisType)
            else max_concurrent
        )

        def limiter() -> AccountLimiter:
            return AccountLimiter(
                self.LABEL, rate or None, max_concurrent=cap or None, clock=clock, sleep=sleep
            )

        self.http = VendorHttp(
            http,
            system=self.system,
            base_url=base_url,
            api_key=api_key,
            retry=RetryPolicy(max_attempts=max_attempts),
            sleep=sleep,
            clock=clock,
            limiter=(
                limiters.get(account_key(self.system, base_url, api_key), limiter)
                if limiters is not None
                else limiter()
            ),
            counter=counter,
            idempotency_seed=idempotency_seed,
        )
        self._collections = self._open(self.http)

    @property
    def limiter(self) -> AccountLimiter:
        return self.http.limiter

    def _open(self, http: VendorHttp) -> Mapping[str, R]:
        """Build the collections (also as attributes), keyed by their API name."""
        raise NotImplementedError

    @property
    def counter(self) -> CallCounter:
        return self.http.counter

    def collection(self, name: str) -> R:
        """The collection called ``name`` (its path in the vendor's API: "customers", ...)."""
        found = self._collections.get(name)
        if found is None:
            raise KeyError(f"{self.system} has no collection {name!r}")
        return found


def typed_fields(model: type[BaseModel]) -> Any:
    """The fields ``model`` types, as a TypedDict that ignores every other key.

    A list page is checked on the JSON already parsed: a model instance per entity, or a
    second parse of the raw bytes, cost a judgement of 31k entities more than reading them.
    The TypedDict runs the same field checks (strictness included) and builds nothing but
    a small dict of those fields, thrown away; the caller keeps the parsed answer as sent.
    """
    return shape(
        f"{model.__name__}Fields",
        {
            name: _by_type(info.rebuild_annotation())
            if info.is_required()
            else NotRequired[_by_type(info.rebuild_annotation())]
            for name, info in model.model_fields.items()
        },
    )


def _by_type(annotation: Any) -> Any:
    """``dict[str, Any]`` (also inside a list or an optional) checked as "is a dict" rather
    than rebuilt key by key: the same answer on parsed JSON, whose objects are dicts with
    text keys, for a quarter less of a page check (a Chargebee order's lines and address)."""
    origin = get_origin(annotation)
    if origin is dict:
        return InstanceOf[dict]  # type: ignore[type-arg]
    if origin is list:
        return list[_by_type(get_args(annotation)[0])]  # type: ignore[misc]
    if origin in (Union, UnionType):
        return Union[tuple(_by_type(arg) for arg in get_args(annotation))]  # noqa: UP007
    return annotation


def shape(name: str, fields: Mapping[str, Any]) -> Any:
    """A TypedDict of ``fields`` (key -> annotation) made at run time, for a page checker
    (extra keys are ignored, and keys need not be identifiers: Chargebee's ``list``)."""
    return TypedDict(name, dict(fields))  # type: ignore[operator]


def page_fits(checker: TypeAdapter[Any], body: Any) -> bool:
    """Whether a parsed list page passes ``checker`` (built with ``typed_fields``) as a
    whole. False sends the caller to the per-entity check, which names the culprit."""
    try:
        checker.validate_python(body)
    except ValidationError:
        return False
    return True


def kept_fields(model: type[BaseModel], keep: Collection[str]) -> Any:
    """What a reader that needs only ``keep`` decodes of each entity: the fields ``model``
    types, with their types (the vendor's definition, checked in the same pass), and the
    top-level keys in ``keep`` as they come. msgspec skips every other key of the answer
    without building it: a judgement reads 56 MB of pages and uses a tenth of the fields.
    """
    typed = {
        name: info.annotation if info.is_required() else NotRequired[info.annotation]
        for name, info in model.model_fields.items()
    }
    rest = {key: NotRequired[Any] for key in sorted(keep) if key not in typed}
    return shape(f"{model.__name__}Kept", {**typed, **rest})


def decoded(decoder: msgspec.json.Decoder[Any], content: bytes) -> Any | None:
    """A page decoded by ``decoder`` (built on ``kept_fields``), or None when it is not JSON
    or breaks a typed field: the caller then reads it whole and its own checks name the
    culprit, as they would without the projection."""
    try:
        return decoder.decode(content)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
