"""`talkqa sandbox serve|seed`: run the bundled emulators and fill them with data."""

from __future__ import annotations

import contextlib
import json
import threading
from typing import Annotated

import httpx
import typer

from talkqa.errors import UserError
from talkqa.sandbox.clock import WRITES_PER_SECOND

sandbox_app = typer.Typer(
    name="sandbox",
    help="Run the bundled Chargebee and Invoiced emulators (deterministic, fault-injectable).",
    no_args_is_help=True,
)


@sandbox_app.command()
def serve(
    chargebee_port: Annotated[
        int,
        typer.Option(min=0, max=65535, metavar="N", help="Port for Chargebee (0 = a free port)."),
    ] = 0,
    invoiced_port: Annotated[
        int,
        typer.Option(min=0, max=65535, metavar="N", help="Port for Invoiced (0 = a free port)."),
    ] = 0,
    seed: Annotated[int, typer.Option(metavar="N", help="Seed for ids and generated data.")] = 0,
    writes_per_second: Annotated[
        int,
        typer.Option(min=1, metavar="N",
                     help="At most N writes share one clock second (each second draws 1..N)."),
    ] = WRITES_PER_SECOND,
    faults: Annotated[
        str | None,
        typer.Option(
            metavar="SPEC",
            help="Faults to inject, e.g. 'chargebee.POST/customers=429,retry_after=2,times=1' "
            "or the preset chargebee-test-site; syntax in talkqa/sandbox/faults.py.",
        ),
    ] = None,
) -> None:
    """Serve both emulators on 127.0.0.1; prints the five variables, then serves until Ctrl-C."""
    from talkqa.sandbox.server import running_sandboxes

    with running_sandboxes(
        seed, chargebee_port, invoiced_port, faults, writes_per_second
    ) as running:
        for name, value in running.env.items():
            print(f"{name}={value}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


@sandbox_app.command()
def seed(
    customers: Annotated[int, typer.Option(min=0, metavar="N", help="Customers to add.")] = 0,
    items: Annotated[int, typer.Option(min=0, metavar="N", help="Items to add.")] = 0,
    orders: Annotated[
        int, typer.Option(min=0, metavar="N", help="Orders to add (each on its own invoice).")
    ] = 0,
    chargebee_url: Annotated[
        str | None,
        typer.Option(
            envvar="CHARGEBEE_BASE_URL",
            metavar="URL",
            help="The running sandbox's Chargebee URL, as `sandbox serve` prints it.",
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="CHARGEBEE_API_KEY",
            metavar="KEY",
            help="The sandbox's Chargebee key, as `sandbox serve` prints it.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Fill a running sandbox with deterministic, realistic Chargebee data in one call."""
    if not chargebee_url:
        raise UserError("sandbox seed: give --chargebee-url or set CHARGEBEE_BASE_URL "
                        "(printed by `talkqa sandbox serve`)")
    if not api_key:
        raise UserError("sandbox seed: give --api-key or set CHARGEBEE_API_KEY "
                        "(printed by `talkqa sandbox serve`)")
    root = admin_root(chargebee_url)
    payload = {"customers": customers, "items": items, "orders": orders}
    try:
        response = httpx.post(
            f"{root}/__admin/seed", json=payload, timeout=600, auth=(api_key, "")
        )
    except httpx.HTTPError as exc:
        raise UserError(f"sandbox seed: cannot reach {root} ({exc}); is `talkqa sandbox serve` "
                        "running?") from None
    if response.status_code == 401:
        raise UserError(f"sandbox seed: {root} refused the key: give the CHARGEBEE_API_KEY "
                        "that `talkqa sandbox serve` printed")
    if response.status_code != 200:
        raise UserError(f"sandbox seed: {root} answered {response.status_code}: "
                        f"{response.text[:200]}")
    print(json.dumps(response.json()), flush=True)


def admin_root(url: str) -> str:
    """The admin API sits at the server root, not under the vendor's `/api/v2`."""
    root = url.rstrip("/")
    return root.removesuffix("/api/v2")


def register(app: typer.Typer) -> None:
    app.add_typer(sandbox_app, name="sandbox")
