"""Every client talk-qa makes shares one TLS context, built as httpx would build its own."""

from __future__ import annotations

import ssl

import certifi
import pytest

from talkqa.systems.tls import new_client, shared_context


def test_clients_share_one_context_that_follows_ssl_cert_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", certifi.where())
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    first = shared_context()
    with new_client(timeout=5.0) as a, new_client(timeout=5.0) as b:
        assert a.timeout.read == 5.0
        contexts = {
            id(client._transport._pool._ssl_context)  # type: ignore[attr-defined]
            for client in (a, b)
        }
    assert contexts == {id(first)}
    assert first.verify_mode == ssl.CERT_REQUIRED and first.check_hostname
    assert first.get_ca_certs()  # the bundle is loaded
    monkeypatch.delenv("SSL_CERT_FILE")
    assert shared_context() is not first  # another setting, another context (certifi's)
