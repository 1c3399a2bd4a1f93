"""Serving, admin endpoints, the CLI, and determinism of the bundled sandbox."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from typer.testing import CliRunner

from talkqa.errors import UserError
from talkqa.sandbox.clock import EPOCH
from talkqa.sandbox.server import (
    CHARGEBEE_API_KEY,
    INVOICED_API_KEY,
    create_sandbox,
    running_sandboxes,
)
from talkqa.sandbox.wire import parse_bracketed
from tests.sandbox_fixtures import in_process

Exchange = tuple[int, list[tuple[str, str]], bytes]

T0 = EPOCH - 1  # one write per second here: the n-th write is stamped T0 + n


def script(cb: httpx.Client, inv: httpx.Client) -> list[Exchange]:
    """A fixed request sequence touching every kind of generated value."""
    out: list[httpx.Response] = [
        cb.post("/customers", data={"first_name": "Ada", "meta_data": "{'a': 1}"}),
        cb.post("/customers", data={"first_name": "Bob"}),
        inv.post("/customers", json={"name": "Ada", "type": "person"}),
        cb.post("/item_families", data={"id": "f", "name": "F"}),
        cb.post("/items", data={"id": "i1", "name": "Gold", "type": "plan",
                                "item_family_id": "f"}),
        inv.post("/items", json={"name": "Gold", "unit_cost": 3.5}),
    ]
    cid = out[0].json()["customer"]["id"]
    invoice = cb.post("/invoices", data={"customer_id": cid, "charges[amount][0]": "100",
                                         "charges[description][0]": "x"})
    out += [
        invoice,
        cb.post("/orders", data={"invoice_id": invoice.json()["invoice"]["id"]}),
        inv.post("/invoices", json={"customer": 1, "items": [{"catalog_item": "item-1"}]}),
        inv.patch("/customers/1", json={"city": "Oslo"}),
        cb.get("/customers", params={"limit": "1"}),
        cb.get("/orders"),
        inv.get("/invoices", params={"per_page": "1"}),
        cb.get("/customers/nope"),
        inv.delete("/items/item-1"),
    ]
    return [(r.status_code, sorted(r.headers.multi_items()), r.content) for r in out]


def in_process_run(seed: int) -> list[Exchange]:
    sandbox = create_sandbox(seed)
    cb = in_process(sandbox.chargebee_app, "http://127.0.0.1/api/v2", CHARGEBEE_API_KEY)
    inv = in_process(sandbox.invoiced_app, "http://127.0.0.1", INVOICED_API_KEY)
    return script(cb, inv)


def served_run(seed: int) -> list[Exchange]:
    with running_sandboxes(seed=seed) as sb, httpx.Client(
        base_url=sb.chargebee_base_url, auth=(CHARGEBEE_API_KEY, "")
    ) as cb, httpx.Client(base_url=sb.invoiced_base_url, auth=(INVOICED_API_KEY, "")) as inv:
        exchanges = script(cb, inv)
        port = str(sb.invoiced_base_url.rsplit(":", 1)[1])
    # Link headers name the host:port the client used; everything else is port-free.
    return [(s, [(k, v.replace(port, "PORT")) for k, v in h], b) for s, h, b in exchanges]


@pytest.mark.parametrize("run", [in_process_run, served_run])
def test_same_seed_same_requests_same_bytes(run: Callable[[int], list[Exchange]]) -> None:
    first, second = run(7), run(7)
    assert first == second
    assert [status for status, _, _ in first][:3] == [200, 200, 201]


def test_another_seed_gives_other_generated_ids() -> None:
    assert in_process_run(1)[0][2] != in_process_run(2)[0][2]


def test_served_headers_carry_no_date_or_server() -> None:
    with running_sandboxes() as sb:
        response = httpx.get(f"{sb.chargebee_base_url}/customers", auth=(CHARGEBEE_API_KEY, ""))
        assert response.status_code == 200
        assert "date" not in response.headers and "server" not in response.headers


def test_running_sandboxes_env_reset_and_stats() -> None:
    with running_sandboxes(seed=3, writes_per_second=1) as sb:
        assert set(sb.env) == {"CHARGEBEE_SITE", "CHARGEBEE_API_KEY", "CHARGEBEE_BASE_URL",
                               "INVOICED_API_KEY", "INVOICED_BASE_URL"}
        assert sb.env["CHARGEBEE_BASE_URL"] == sb.chargebee_base_url
        assert sb.chargebee_base_url.startswith("http://127.0.0.1:")
        assert sb.chargebee_base_url.endswith("/api/v2")
        cb = httpx.Client(base_url=sb.chargebee_base_url, auth=(CHARGEBEE_API_KEY, ""))
        inv = httpx.Client(base_url=sb.invoiced_base_url, auth=(INVOICED_API_KEY, ""))
        first = cb.post("/customers", data={}).json()["customer"]
        inv.post("/customers", json={"name": "A"})
        stats = sb.stats()
        assert stats["requests"] == {"chargebee POST /customers": 1,
                                     "invoiced POST /customers": 1}
        assert stats["clock"] == T0 + 2  # one shared clock, one tick per write
        # a reset through either app clears both vendors and restarts ids and the clock
        admin = (INVOICED_API_KEY, "")
        assert httpx.post(f"{sb.invoiced_base_url}/__admin/reset", json={}).status_code == 401
        reset = httpx.post(f"{sb.invoiced_base_url}/__admin/reset", json={"seed": 3}, auth=admin)
        assert reset.status_code == 200
        assert cb.get("/customers").json() == {"list": []}
        assert inv.get("/customers").json() == []
        again = cb.post("/customers", data={}).json()["customer"]
        assert (again["id"], again["created_at"]) == (first["id"], first["created_at"])
        stats = httpx.get(f"{sb.invoiced_base_url}/__admin/stats", auth=admin).json()
        assert stats["requests"] == {
            "chargebee GET /customers": 1, "chargebee POST /customers": 1,
            "invoiced GET /customers": 1}
        assert httpx.post(f"{sb.invoiced_base_url}/__admin/reset",
                          json={"seed": "x"}, auth=admin).status_code == 400
        assert httpx.get(f"{sb.invoiced_base_url}/__admin/nope", auth=admin).status_code == 404
        cb.close()
        inv.close()


def test_port_in_use_is_a_user_error() -> None:
    with running_sandboxes() as sb:
        port = int(sb.chargebee_base_url.split(":")[2].split("/")[0])
        with pytest.raises(UserError, match="cannot listen"), running_sandboxes(
            chargebee_port=port
        ):
            pass


def test_cli_seed_fills_a_running_sandbox() -> None:
    from talkqa.cli import app

    with running_sandboxes() as sb:
        result = CliRunner().invoke(app, ["sandbox", "seed", "--customers", "30", "--items",
                                          "5", "--orders", "40",
                                          "--chargebee-url", sb.chargebee_base_url,
                                          "--api-key", CHARGEBEE_API_KEY])
        assert result.exit_code == 0, result.output
        cb = httpx.Client(base_url=sb.chargebee_base_url, auth=(CHARGEBEE_API_KEY, ""))
        customers = cb.get("/customers", params={"limit": "100"}).json()["list"]
        assert len(customers) == 30
        one = customers[0]["customer"]
        assert "@" in one["email"] and len(one["billing_address"]["country"]) == 2
        wrong = CliRunner().invoke(app, ["sandbox", "seed", "--customers", "1", "--chargebee-url",
                                         sb.chargebee_base_url, "--api-key", "not-the-key"])
        # the one-line UserError `talkqa` prints with exit 2 (the runner skips main())
        assert "refused the key" in str(wrong.exception), wrong.output
        assert len(one["preferred_currency_code"]) == 3
        orders = cb.get("/orders", params={"limit": "100"}).json()["list"]
        assert len(orders) == 40
        owners = {o["order"]["customer_id"] for o in orders}
        assert len(owners) > 5  # spread over customers
        assert len(cb.get("/items").json()["list"]) == 5
        cb.close()
    unreachable = CliRunner().invoke(app, ["sandbox", "seed", "--customers", "1",
                                           "--chargebee-url", "http://127.0.0.1:9/api/v2"])
    assert unreachable.exit_code != 0 and isinstance(unreachable.exception, UserError)


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        ([("a", "1")], {"a": "1"}),
        ([("billing_address[city]", "Oslo")], {"billing_address": {"city": "Oslo"}}),
        ([("x[0]", "a"), ("x[1]", "b")], {"x": ["a", "b"]}),
        ([("l[id][1]", "b"), ("l[id][0]", "a"), ("l[status][0]", "s")],
         {"l": [{"id": "a", "status": "s"}, {"id": "b"}]}),
        ([("items[0][name]", "n"), ("items[1][name]", "m")],
         {"items": [{"name": "n"}, {"name": "m"}]}),
        ([("email[is]", "e"), ("sort_by[asc]", "updated_at")],
         {"email": {"is": "e"}, "sort_by": {"asc": "updated_at"}}),
    ],
)
def test_bracket_notation(pairs: list[tuple[str, str]], expected: dict[str, object]) -> None:
    assert parse_bracketed(pairs) == expected


def test_cli_serve_prints_the_five_variables_then_serves() -> None:
    import subprocess
    import sys

    process = subprocess.Popen(
        [sys.executable, "-c", "from talkqa.cli import main; main()", "sandbox", "serve",
         "--seed", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline().strip() for _ in range(5)]
        env = dict(line.split("=", 1) for line in lines)
        assert set(env) == {"CHARGEBEE_SITE", "CHARGEBEE_API_KEY", "CHARGEBEE_BASE_URL",
                            "INVOICED_API_KEY", "INVOICED_BASE_URL"}
        answer = httpx.get(f"{env['INVOICED_BASE_URL']}/customers",
                           auth=(env["INVOICED_API_KEY"], ""))
        assert answer.status_code == 200 and answer.json() == []
    finally:
        process.terminate()
        process.wait(timeout=10)
    bad = subprocess.run(
        [sys.executable, "-c", "from talkqa.cli import main; main()", "sandbox", "serve",
         "--faults", "chargebee=teapot"],
        capture_output=True, text=True, timeout=60,
    )
    assert bad.returncode == 2 and "teapot" in bad.stderr and "Traceback" not in bad.stderr


def test_sandbox_is_independent_of_our_clients_and_the_reference_sync() -> None:
    import ast
    from pathlib import Path

    import talkqa.sandbox

    for path in Path(talkqa.sandbox.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert not name.startswith(("talkqa.systems", "reference_sync")), (path, name)
