"""All mutable state of one sandbox process: both vendors share a clock, an RNG and a lock.

Sharing one clock makes timestamps of the two vendors interleave in request order (and
share seconds, as writes to two real vendors in one burst do); sharing
one lock makes the two uvicorn threads see a consistent world.
"""

from __future__ import annotations

import random
import string
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from talkqa.sandbox.clock import WRITES_PER_SECOND, VendorClock

JsonDict = dict[str, Any]


@dataclass
class Table:
    """Records of one resource in creation order (order = default list order, keyset = seq)."""

    rows: list[JsonDict] = field(default_factory=list)
    by_id: dict[str, int] = field(default_factory=dict)
    unique: dict[str, str] = field(default_factory=dict)  # e.g. Chargebee item name -> id
    # the rows `live` last returned; add and remove (the only writers of `rows`) drop it
    _live: list[JsonDict] | None = field(default=None, repr=False, compare=False)

    def add(self, key: str, record: JsonDict) -> None:
        self.by_id[key] = len(self.rows)
        self.rows.append(record)
        self._live = None

    def get(self, key: str) -> JsonDict | None:
        index = self.by_id.get(key)
        return None if index is None else self.rows[index]

    def seq(self, key: str) -> int:
        return self.by_id[key]

    def remove(self, key: str) -> None:
        """Hard removal (Invoiced deletes); keeps indices valid by leaving a tombstone."""
        index = self.by_id.pop(key)
        self.rows[index] = {"__removed__": True}
        self._live = None

    def live(self) -> list[JsonDict]:
        """The rows not removed, in creation order (a fresh list the caller may change).

        Every list page asks for them, and a full read pages through the whole table, so they
        are kept until the next add or remove: 20k invoices, 0.1 ms a page instead of 6.
        Updates change the row dicts in place, which the kept list shares.
        """
        if self._live is None:
            self._live = [row for row in self.rows if "__removed__" not in row]
        return self._live[:]


@dataclass
class Replay:
    """A stored answer to an idempotent write, replayed byte for byte."""

    fingerprint: str
    status: int
    body: bytes


class SandboxState:
    """Everything `POST /__admin/reset` clears."""

    def __init__(self, seed: int = 0, writes_per_second: int = WRITES_PER_SECOND) -> None:
        self.lock = threading.RLock()
        self.clock = VendorClock(writes_per_second=writes_per_second, seed=seed)
        self.generation = 0
        self.reset(seed)

    def reset(self, seed: int = 0) -> None:
        with self.lock:
            self.seed = seed
            self.rng = random.Random(seed)
            self.clock.reset(seed)
            self.counters: Counter[str] = Counter()
            self.tables: dict[str, Table] = {}
            self.idempotency: dict[tuple[str, str], Replay] = {}
            self.request_counts: Counter[str] = Counter()
            self.fault_counts: Counter[str] = Counter()
            # events recorded by the last write, for the webhook deliverer to take
            self.outbox: list[tuple[str, JsonDict]] = []
            # changes on every reset, so a watcher polling `/__admin/stats` sees one happen
            self.generation += 1

    def publish(self, system: str, event: JsonDict) -> None:
        """Record an event in the system's feed (`<system>.events`) and queue it for webhooks."""
        self.table(f"{system}.events").add(str(event["id"]), event)
        self.outbox.append((system, event))

    def take_outbox(self) -> list[tuple[str, JsonDict]]:
        with self.lock:
            taken, self.outbox = self.outbox, []
        return taken

    def table(self, name: str) -> Table:
        """`chargebee.customers`, `invoiced.items`, ... created on first use."""
        found = self.tables.get(name)
        if found is None:
            found = self.tables[name] = Table()
        return found

    def next_number(self, name: str) -> int:
        """Counters for integer ids and document numbers, starting at 1 per name."""
        self.counters[name] += 1
        return self.counters[name]

    def random_id(self, length: int = 16) -> str:
        """A vendor-looking opaque id drawn from the seeded RNG (Chargebee style `16CRib...`)."""
        alphabet = string.ascii_letters + string.digits
        return "".join(self.rng.choices(alphabet, k=length))
