"""Both vendors behind one object: what the reference sync, the judge and the steps hold.

One ``httpx.Client`` serves both vendors (each request carries its own absolute URL and
credentials), so a scenario's single client, and so its single cassette, sees all traffic.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from pydantic import SecretStr

from talkqa.errors import UserError
from talkqa.systems.base import Resource
from talkqa.systems.catalog import Binding
from talkqa.systems.chargebee import ChargebeeClient
from talkqa.systems.client import VendorClient
from talkqa.systems.http import CallCounter
from talkqa.systems.invoiced import InvoicedClient
from talkqa.systems.limits import ACCOUNT_LIMITERS, Clock, Limiters, Sleep, WaitListener
from talkqa.systems.settings import Settings

C = TypeVar("C", bound=VendorClient[Any])


@dataclass
class Systems:
    """The Chargebee and Invoiced clients of one run, counting calls into one counter."""

    chargebee: ChargebeeClient
    invoiced: InvoicedClient
    calls: CallCounter

    @classmethod
    def connect(
        cls,
        settings: Settings,
        http: httpx.Client,
        *,
        sleep: Sleep = time.sleep,
        clock: Clock = time.monotonic,
        max_attempts: int = 5,
        limiters: Limiters | None = None,
        idempotency_seed: str | None = None,
    ) -> Systems:
        """Both clients over ``http``; each vendor account's limiter shared process-wide.

        ``limiters`` defaults to the process's registry when time is real, so every
        ``Systems`` of a run paces one account together; with injected ``sleep``/``clock``
        the default is a fresh registry: a fake clock must never drive a real account's
        pacing. ``idempotency_seed``: a per-run value that puts a derived idempotency key on
        every write (see ``VendorHttp.write_key``).
        """
        counter = CallCounter()
        if limiters is None:
            real_time = sleep is time.sleep and clock is time.monotonic
            limiters = ACCOUNT_LIMITERS if real_time else Limiters()

        def client(
            vendor: type[C], base_url: str, key: SecretStr, rpm: int | None, cap: int | None
        ) -> C:
            return vendor(
                http,
                base_url,
                key.get_secret_value(),
                sleep=sleep,
                clock=clock,
                requests_per_minute=rpm,
                max_concurrent=cap,
                max_attempts=max_attempts,
                counter=counter,
                limiters=limiters,
                idempotency_seed=idempotency_seed,
            )

        chargebee = client(
            ChargebeeClient,
            settings.chargebee_base_url,
            settings.chargebee_api_key,
            settings.chargebee_requests_per_minute,
            settings.chargebee_max_concurrent,
        )
        invoiced = client(
            InvoicedClient,
            settings.invoiced_base_url,
            settings.invoiced_api_key,
            settings.invoiced_requests_per_minute,
            settings.invoiced_max_concurrent,
        )
        return cls(chargebee=chargebee, invoiced=invoiced, calls=counter)

    def on_limiter_wait(self, listener: WaitListener) -> None:
        """Tell ``listener`` whenever a request waits a second or more for a vendor's limit."""
        self.chargebee.limiter.listen(listener)
        self.invoiced.limiter.listen(listener)

    def resource(self, binding: Binding) -> Resource:
        """The collection a checklist datatype lives in.

        The whole collection: a binding with ``fixed`` fields (Customers person) shares it
        with its siblings, so callers keep only entities where ``binding.holds(entity)``.
        """
        try:
            if binding.system == "chargebee":
                return self.chargebee.collection(binding.resource)
            if binding.system == "invoiced":
                return self.invoiced.collection(binding.resource)
        except KeyError:
            pass
        raise UserError(
            f"no connector for {binding.system} {binding.resource} "
            f"(datatype {binding.datatype!r}): talk-qa connects chargebee customers, items, "
            "orders, invoices, item_prices, subscriptions, addresses and invoiced customers, "
            "items, invoices"
        )

    def call_counts(self) -> dict[str, int]:
        """HTTP attempts so far per "system METHOD /template", retries included."""
        return self.calls.counts()
