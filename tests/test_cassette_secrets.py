"""A cassette recorded through ``vcr_config`` holds neither vendor key: not in a header as
sent (Invoiced-style plain key), not as HTTP Basic (``base64(key + ":")``, Chargebee-style),
and not where a request or an API's error body repeats the plain key."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import vcr

from talkqa.pytest_plugin import vcr_config, with_request_matcher
from talkqa.systems.settings import Settings

CHARGEBEE_KEY = "cb_test_Zq8wXk2mPrivate"
INVOICED_KEY = "inv_test_Lp4vTy9nPrivate"


def _echo(request: httpx.Request) -> httpx.Response:
    """An API that repeats the key it was sent, as error bodies sometimes do."""
    return httpx.Response(401, json={"message": f"bad key: {request.url.params.get('note')}"})


def _record(path: Path) -> str:
    settings = Settings.for_sandbox(
        "http://127.0.0.1:4321/api/v2",
        "http://127.0.0.1:5432",
        chargebee_api_key=CHARGEBEE_KEY,
        invoiced_api_key=INVOICED_KEY,
    )
    recorder = with_request_matcher(vcr.VCR(record_mode="all", **vcr_config(settings)))
    with recorder.use_cassette(str(path)), httpx.Client() as client:
        client._transport = httpx.MockTransport(_echo)
        client.get("http://127.0.0.1:4321/api/v2/customers", auth=(CHARGEBEE_KEY, ""))
        client.get(
            "http://127.0.0.1:5432/customers",
            headers={"Authorization": INVOICED_KEY},
            params={"note": INVOICED_KEY},
        )
    return path.read_text(encoding="utf-8")


def _basic(key: str) -> str:
    return base64.b64encode(f"{key}:".encode()).decode()


def test_no_key_reaches_a_cassette_in_any_spelling(tmp_path: Path) -> None:
    text = _record(tmp_path / "cassette.yaml")
    # the exchange was recorded at all (an empty file would prove nothing)
    assert "/api/v2/customers" in text and "/customers?note=" in text
    for secret in (CHARGEBEE_KEY, INVOICED_KEY, _basic(CHARGEBEE_KEY), _basic(INVOICED_KEY)):
        assert secret not in text, f"{secret!r} left in the cassette"


def test_the_authorization_header_is_not_recorded(tmp_path: Path) -> None:
    text = _record(tmp_path / "cassette.yaml").lower()
    assert "authorization:" not in text
    assert "basic " not in text
