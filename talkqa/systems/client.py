"""What both vendor clients share: one ``VendorHttp`` and a table of named collections.

A client is only wiring: it turns its constructor's knobs into a ``VendorHttp`` (transport,
key, retries, request budget, call counter) and hands that to each collection. The vendors
differ in their collections alone, so that is all a subclass says (``_open``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from types import EllipsisType
from typing import ClassVar, Generic, TypeVar

import httpx

from talkqa.systems.http import CallCounter, Clock, RateBudget, RetryPolicy, Sleep, VendorHttp

R = TypeVar("R")


class VendorClient(Generic[R]):
    """One vendor's collections, sharing one transport, budget and counter.

    ``requests_per_minute`` left out means the vendor's documented budget
    (``DEFAULT_REQUESTS_PER_MINUTE``); 0 or None means no budget (loopback sandboxes,
    cassettes).
    """

    system: ClassVar[str]
    DEFAULT_REQUESTS_PER_MINUTE: ClassVar[int]

    def __init__(
        self,
        http: httpx.Client,
        base_url: str,
        api_key: str,
        *,
        sleep: Sleep = time.sleep,
        clock: Clock = time.monotonic,
        requests_per_minute: int | EllipsisType | None = ...,
        max_attempts: int = 5,
        counter: CallCounter | None = None,
    ) -> None:
        rate = (
            self.DEFAULT_REQUESTS_PER_MINUTE
            if isinstance(requests_per_minute, EllipsisType)
            else requests_per_minute
        )
        self.http = VendorHttp(
            http,
            system=self.system,
            base_url=base_url,
            api_key=api_key,
            retry=RetryPolicy(max_attempts=max_attempts),
            sleep=sleep,
            budget=RateBudget(rate, clock=clock, sleep=sleep) if rate else None,
            counter=counter,
        )
        self._collections = self._open(self.http)

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
