"""`/__admin/*` on both apps: reset, stats, faults, webhooks, bulk seed. Never part of a vendor
surface.

Admin answers use their own small JSON shape (`{"error": ...}` on failure) so nobody mistakes
them for vendor responses.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from talkqa.errors import UserError
from talkqa.sandbox.faults import FaultEngine, FaultRule, parse_spec, rule_from_mapping
from talkqa.sandbox.seed import seed_chargebee
from talkqa.sandbox.state import SandboxState
from talkqa.sandbox.webhooks import Webhooks
from talkqa.sandbox.wire import render


class AdminApi:
    """Shared by both apps: a reset through either one clears both vendors."""

    def __init__(self, state: SandboxState, faults: FaultEngine, base_rules: str | None,
                 webhooks: Webhooks) -> None:
        self.state = state
        self.faults = faults
        self.base_rules = base_rules
        self.webhooks = webhooks
        self.reset(state.seed)

    def reset(self, seed: int = 0) -> None:
        """Clear data, clock, ids, counters and pending webhook deliveries (a new
        `generation`); re-install the faults given at start-up. Webhook endpoints stay."""
        with self.state.lock:
            self.state.reset(seed)
            self.webhooks.reset()
        self.faults.configure(parse_spec(self.base_rules) if self.base_rules else [])

    def stats(self) -> dict[str, Any]:
        with self.state.lock:
            return {
                "seed": self.state.seed,
                "generation": self.state.generation,
                "clock": self.state.clock.now(),
                "requests": dict(sorted(self.state.request_counts.items())),
                "faults": dict(sorted(self.state.fault_counts.items())),
                "rules": self.faults.describe(),
                "webhooks": self.webhooks.stats(),
            }

    def seed(self, customers: int = 0, items: int = 0, orders: int = 0) -> dict[str, int]:
        """Bulk Chargebee data (`POST /__admin/seed`); what was made, by kind."""
        with self.state.lock:
            return seed_chargebee(self.state, customers=customers, items=items, orders=orders)

    async def __call__(self, request: Request, vendor: str) -> Response:
        route = request.url.path.removeprefix("/__admin").strip("/")
        method = request.method.upper()
        try:
            body = await _json(request)
            if (method, route) == ("POST", "reset"):
                self.reset(_int(body.get("seed", 0), "seed"))
                return _ok({"reset": True, "seed": self.state.seed})
            if (method, route) == ("GET", "stats"):
                return _ok(self.stats())
            if route == "faults":
                return self._faults(method, body, vendor)
            if route == "webhooks":
                return self._webhooks(method, body, vendor)
            if (method, route) == ("POST", "seed"):
                counts = {k: _int(body.get(k, 0), k) for k in ("customers", "items", "orders")}
                unknown = sorted(set(body) - set(counts))
                if unknown:
                    raise UserError(f"unknown seed field(s) {', '.join(unknown)}")
                return _ok(self.seed(**counts))
        except UserError as exc:
            return _ok({"error": str(exc)}, 400)
        return _ok({"error": f"no admin endpoint {method} /__admin/{route}"}, 404)

    def _faults(self, method: str, body: dict[str, Any], vendor: str) -> Response:
        if method == "DELETE":
            self.faults.clear()
        elif method == "POST":
            rules: list[FaultRule] = []
            if "spec" in body:
                rules += parse_spec(str(body["spec"]))
            raw_rules = body.get("rules", [])
            if not isinstance(raw_rules, list) or not all(isinstance(r, dict) for r in raw_rules):
                raise UserError("faults: rules must be a list of objects")
            rules += [rule_from_mapping(r, default_system=vendor) for r in raw_rules]
            self.faults.configure(rules, replace=bool(body.get("replace", True)))
        elif method != "GET":
            return _ok({"error": f"{method} is not supported on /__admin/faults"}, 405)
        return _ok({"rules": self.faults.describe()})


    def _webhooks(self, method: str, body: dict[str, Any], vendor: str) -> Response:
        """GET lists the endpoints, POST `{"endpoints": [...], "replace": true}` sets them
        (`talkqa.sandbox.webhooks.endpoint_from_mapping`; `system` defaults to the vendor
        of the app asked), DELETE removes them all."""
        if method == "DELETE":
            self.webhooks.clear()
        elif method == "POST":
            raw = body.get("endpoints", [])
            if not isinstance(raw, list) or not all(isinstance(e, dict) for e in raw):
                raise UserError("webhooks: endpoints must be a list of objects")
            self.webhooks.configure(raw, vendor, replace=bool(body.get("replace", True)))
        elif method != "GET":
            return _ok({"error": f"{method} is not supported on /__admin/webhooks"}, 405)
        return _ok({"endpoints": self.webhooks.describe()})


async def _json(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise UserError("admin request body must be JSON") from None
    if not isinstance(data, dict):
        raise UserError("admin request body must be a JSON object")
    return data


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UserError(f"{name} must be a non-negative integer, got {value!r}")
    return value


def _ok(payload: Any, status: int = 200) -> Response:
    return Response(render(payload), status_code=status, media_type="application/json")
