"""Chargebee requests under a test site's rate limit: the pace achieved and the 429s it cost.

    .venv/bin/python benchmarks/bench_rate_limit.py [--limit 150] [--requests 600]
                                                    [--threads 4] [--concurrency 50]

Serves the bundled sandbox on 127.0.0.1 with Chargebee's test-site limits
(``chargebee=rpm,limit=L`` plus 50 concurrent GETs and 50 POSTs: the ``chargebee-test-site``
preset when L is 150), sets ``CHARGEBEE_REQUESTS_PER_MINUTE=L``, and sends N requests
(customer creates, each read back) through the connectors from a few threads over one
httpx client. Prints requests/min achieved as a share of the limit, the share of attempts
answered 429, and the exit status (0 when every request succeeded). The issue's goals:
>= 0.95 of the limit, <= 2% answered 429, exit 0. Small runs: ``--limit 1200 --requests 200``
takes ten seconds.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time

from talkqa.sandbox.server import running_sandboxes
from talkqa.systems.base import ApiError
from talkqa.systems.connect import Systems
from talkqa.systems.limits import Limiters, burst_for
from talkqa.systems.settings import Settings
from talkqa.systems.wire import vendor_client


def faults(limit: int, concurrency: int) -> str:
    """The test-site preset with another rate: what a bigger Chargebee plan looks like."""
    return (
        f"chargebee=rpm,limit={limit};chargebee.GET=concurrency,limit={concurrency};"
        f"chargebee.POST=concurrency,limit={concurrency}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=150, help="requests per minute")
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument(
        "--no-pace",
        action="store_true",
        help="leave CHARGEBEE_REQUESTS_PER_MINUTE unset: only the server's 429s slow us down",
    )
    args = parser.parse_args()

    failures: list[str] = []
    with running_sandboxes(seed=0, faults=faults(args.limit, args.concurrency)) as served:
        pace = "0" if args.no_pace else str(args.limit)
        env = {**served.env, "CHARGEBEE_REQUESTS_PER_MINUTE": pace}
        settings = Settings.from_env(env)
        with vendor_client(30.0) as http:
            systems = Systems.connect(settings, http, limiters=Limiters())
            customers = systems.chargebee.customers
            jobs = iter(range(args.requests // 2))  # a create, then a read of it
            lock = threading.Lock()
            done: list[float] = []  # when each request finished (list.append is atomic)

            def work() -> None:
                while True:
                    with lock:
                        n = next(jobs, None)
                    if n is None:
                        return
                    try:
                        customers.create({"id": f"bench-{n}", "first_name": f"C{n}"})
                        done.append(time.monotonic())
                        customers.get(f"bench-{n}")
                        done.append(time.monotonic())
                    except ApiError as exc:
                        with lock:
                            failures.append(str(exc))

            started = time.monotonic()
            threads = [threading.Thread(target=work) for _ in range(args.threads)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.monotonic() - started

    attempts = systems.calls.total
    requests = args.requests // 2 * 2
    per_minute = requests / elapsed * 60
    status = 1 if failures else 0
    print(f"limit                 {args.limit}/min, {args.concurrency} concurrent")
    print(f"our pace              {'none (429s only)' if args.no_pace else 'the limit'}")
    print(f"requests              {requests} from {args.threads} threads")
    print(f"elapsed               {elapsed:.1f} s")
    print(f"achieved              {per_minute:.1f}/min = {per_minute / args.limit:.3f} of limit")
    # the first burst_for(limit) requests may leave at once: the steady pace is after them
    burst = burst_for(args.limit)
    done.sort()
    if len(done) > burst + 1:
        steady = (len(done) - burst - 1) / (done[-1] - done[burst]) * 60
        print(
            f"steady pace           {steady:.1f}/min = {steady / args.limit:.3f} of limit "
            f"(after the first {burst} requests, which may leave at once)"
        )
    print(
        f"answered 429          {systems.calls.throttled} of {attempts} attempts = "
        f"{systems.calls.throttled / attempts:.2%}"
    )
    print(f"limiter waited        {systems.chargebee.limiter.waited:.1f} s (all threads)")
    print(f"exit status           {status}" + (f" ({failures[0]})" if failures else ""))
    return status


if __name__ == "__main__":
    sys.exit(main())
