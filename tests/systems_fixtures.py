"""What the connector unit tests share: a recording mock transport and a client on it.

Not a conftest: each test module imports what it uses, so it is plain where helpers live.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import httpx

from talkqa.systems.client import VendorClient

Route = Callable[[httpx.Request], httpx.Response]
C = TypeVar("C", bound=VendorClient[Any])


class Recorder:
    """A MockTransport handler that answers by (method, path) and records every request.

    A route is a list of answers given in turn, or a function of the request.
    """

    def __init__(self, routes: Mapping[tuple[str, str], Route | list[httpx.Response]]) -> None:
        self.routes = routes
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        route = self.routes[(request.method, request.url.path)]
        if isinstance(route, list):
            return route.pop(0)
        return route(request)

    def calls(self) -> list[tuple[str, str]]:
        return [(r.method, r.url.path) for r in self.requests]


def query(request: httpx.Request) -> dict[str, str]:
    return dict(parse_qsl(request.url.query.decode(), keep_blank_values=True))


def mock_client(vendor: type[C], recorder: Recorder, base_url: str, api_key: str) -> C:
    """``vendor``'s client on ``recorder``: no sleeping on retries, no request budget."""
    return vendor(
        httpx.Client(transport=httpx.MockTransport(recorder)),
        base_url,
        api_key,
        sleep=lambda _: None,
        requests_per_minute=None,
    )
