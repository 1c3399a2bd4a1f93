"""How fast the judge checks: pairs per second for a section with properties and references.

The judge's pure middle (pairing, coercion, reference translation, deepdiff explanations)
runs on every scenario and in the command driver's settle loop, so it must stay cheap next
to the vendor calls. Prints pairs/second for a clean run (no findings) and for one where a
tenth of the pairs mismatch (deepdiff explains each).

    .venv/bin/python benchmarks/bench_checks.py [N]   (default N = 20000 orders)
"""

from __future__ import annotations

import sys
import time
from typing import Any

from reference_sync.testing import section
from talkqa.checks import bindings_of, check_section, snapshot_from
from talkqa.links import pair

Json = dict[str, Any]


CUSTOMERS = section(0, "Customer", "Customers person")
ORDERS = section(
    1,
    "Order",
    "Invoices",
    (
        ("currency_code", "currency", "string"),
        ("customer_id", "customer", "string"),
        ("order_line_items.unit_price", "items.unit_cost", "decimal"),
    ),
)


def _world(
    n: int, broken_every: int | None
) -> tuple[list[Json], list[Json], list[Json], list[Json]]:
    customers = [{"id": f"c{i}"} for i in range(n // 4 + 1)]
    persons = [
        {"id": 1000 + i, "type": "person", "metadata": {"chargebee_id": c["id"]}}
        for i, c in enumerate(customers)
    ]
    orders: list[Json] = []
    invoices: list[Json] = []
    for i in range(n):
        cust = i % len(customers)
        orders.append(
            {
                "id": f"o{i}",
                "currency_code": "USD",
                "customer_id": f"c{cust}",
                "order_line_items": [{"unit_price": "10.50"}, {"unit_price": 3}],
            }
        )
        wrong = broken_every is not None and i % broken_every == 0
        invoices.append(
            {
                "id": 50000 + i,
                "currency": "eur" if wrong else "usd",
                "customer": 1000 + cust,
                "items": [{"unit_cost": 10.5}, {"unit_cost": 4.0 if wrong else 3.0}],
                "metadata": {"chargebee_id": f"o{i}"},
            }
        )
    return customers, persons, orders, invoices


def _measure(label: str, n: int, broken_every: int | None) -> None:
    customers, persons, orders, invoices = _world(n, broken_every)
    started = time.perf_counter()
    pairings = {("invoiced", "Customers person"): pair(CUSTOMERS, customers, persons)}
    source, target = bindings_of(ORDERS)
    snap = snapshot_from(ORDERS, source, target, orders, invoices)
    findings = check_section(snap, pairings)
    seconds = time.perf_counter() - started
    print(
        f"{label:<18} {n:>7} pairs {seconds:6.2f} s {n / seconds:9.0f} pairs/s "
        f"({len(findings)} findings)"
    )


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    _measure("clean", n, None)
    _measure("10% mismatching", n, 10)


if __name__ == "__main__":
    main()
