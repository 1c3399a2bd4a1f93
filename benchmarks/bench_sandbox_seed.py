"""How fast the sandbox seeds and pages: prints entities/second for bulk seeding and the
time to page through all customers 100 at a time (the reference sync's access pattern).

Run: .venv/bin/python benchmarks/bench_sandbox_seed.py [N]   (default N = 100000)
"""

from __future__ import annotations

import sys
import time
import warnings

from talkqa.sandbox.seed import seed_chargebee
from talkqa.sandbox.server import CHARGEBEE_API_KEY, create_sandbox

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette 1.x nags about httpx in its TestClient
    from starlette.testclient import TestClient


def main(count: int) -> None:
    sandbox = create_sandbox(seed=0)
    start = time.perf_counter()
    with sandbox.state.lock:
        seed_chargebee(sandbox.state, customers=count, items=count // 10, orders=count)
    seconds = time.perf_counter() - start
    entities = count + count // 10 + 2 * count  # orders come with their invoices
    print(
        f"seed: {count} customers, {count // 10} items, {count} orders (+invoices) "
        f"in {seconds:.2f} s = {entities / seconds:,.0f} entities/s"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        client = TestClient(sandbox.chargebee_app, base_url="http://127.0.0.1/api/v2")
    client.auth = (CHARGEBEE_API_KEY, "")
    pages, offset, start = 0, None, time.perf_counter()
    while True:
        params = {"limit": "100", **({"offset": offset} if offset else {})}
        body = client.get("/customers", params=params).json()
        pages += 1
        offset = body.get("next_offset")
        if not offset:
            break
    seconds = time.perf_counter() - start
    rate = pages / seconds
    print(f"list: {pages} pages of 100 customers in {seconds:.2f} s = {rate:,.0f} pages/s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
