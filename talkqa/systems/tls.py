"""One TLS context for every httpx client of the judge, the CLI and the defects (the bundled
sandboxes make their own: they are independent of our clients).

httpx builds a context for each new client, and building one (loading the CA bundle) costs
~35 ms of CPU: a sign-off makes a client per scenario and per syncer run, so that was a
good part of a short scenario's CPU. An ``ssl.SSLContext`` is safe to share between clients
and threads; it is built the way httpx builds its own (``SSL_CERT_FILE`` / ``SSL_CERT_DIR``,
else certifi's bundle), once per value of those two variables.
"""

from __future__ import annotations

import functools
import os
import ssl
from typing import Any

import httpx


def new_client(**options: Any) -> httpx.Client:
    """``httpx.Client(**options)`` with the shared TLS context."""
    return httpx.Client(verify=shared_context(), **options)


def shared_context() -> ssl.SSLContext:
    return _context(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))


@functools.cache
def _context(cafile: str | None, capath: str | None) -> ssl.SSLContext:
    return httpx.create_ssl_context()  # reads the two variables itself
