"""The one way the connectors get an ``httpx.Client``: httpx on a lean HTTP/1.1 transport.

Why not httpx's default transport: on loopback, httpcore and h11 cost about 0.5 ms of CPU
per request, half of the sync's CPU per entity. The bare HTTP/1.1 exchange needs a fraction
of that: a keep-alive socket, the request's bytes in one send, and Python's own
``http.client`` to read the answer (status line, headers, chunked or sized body).
Everything above the transport stays httpx: requests, responses, auth, mounts for the
environment's proxies, and the exception types the connectors' retry rules read.

Kept libraries were measured first. pyreqwest's httpx transport (Rust) saves less CPU, and
it reports a server that closed the connection after reading a request as
``httpx.ConnectError``: the connectors take that to mean nothing was sent, and would resend
a write that may have happened. curl_cffi's transport costs more CPU than httpcore's.

``LeanTransport`` is an ``httpx.HTTPTransport`` whose connection pool is replaced, so
everything that hooks httpx's transport (vcrpy's recording and replay, pytest-recording's
network block, which closes Python sockets) sees it as httpx's own.
"""

from __future__ import annotations

import http.client
import select
import socket
import ssl
import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpcore
import httpx

Origin = tuple[bytes, bytes, int | None]


class LeanPool:
    """Keep-alive sockets per origin, for any number of threads.

    It stands where httpx's transport keeps its httpcore pool and answers the one call the
    transport makes, ``handle_request(httpcore.Request)``. A request leaves in one send
    (head and body together: on loopback each send costs the sender the receiver's wake-up
    too), and its answer is read by ``http.client.HTTPResponse`` (status line, headers,
    chunked or sized body). It raises httpcore's exceptions, so httpx maps them as it maps
    httpcore's own, and where a failure happened decides the type: before anything was sent
    (``ConnectError``, ``ConnectTimeout``) or after (``RemoteProtocolError``,
    ``ReadError``, ``ReadTimeout``, ``WriteError``).
    """

    def __init__(self) -> None:
        self._ssl_context: ssl.SSLContext | None = None  # made on the first https origin
        self._lock = threading.Lock()
        self._idle: defaultdict[Origin, list[socket.socket]] = defaultdict(list)
        self._closed = False

    def handle_request(self, request: httpcore.Request) -> httpcore.Response:
        timeouts = request.extensions.get("timeout", {})
        origin: Origin = (request.url.scheme, request.url.host, request.url.port)
        message = _message(request)
        sock = self._checkout(origin) or self._connect(origin, timeouts.get("connect"))
        with _mapped(sock, write=True):
            sock.settimeout(timeouts.get("write"))
            sock.sendall(message)
        with _mapped(sock, write=False):
            sock.settimeout(timeouts.get("read"))
            response = http.client.HTTPResponse(sock, method=request.method.decode("ascii"))
            response.begin()
            content = response.read()
        if response.will_close:
            sock.close()
        else:
            self._checkin(origin, sock)
        return httpcore.Response(
            response.status,
            headers=[
                (name.encode("latin-1"), value.encode("latin-1"))
                for name, value in response.getheaders()
            ],
            content=content,
            extensions={
                "http_version": b"HTTP/1.1" if response.version == 11 else b"HTTP/1.0",
                "reason_phrase": response.reason.encode("latin-1"),
            },
        )

    def _checkout(self, origin: Origin) -> socket.socket | None:
        """An idle socket the server has not closed (nothing to read on it), if any."""
        while True:
            with self._lock:
                idle = self._idle.get(origin)
                if not idle:
                    return None
                sock = idle.pop()
            if not _readable(sock):
                return sock
            sock.close()  # closed by the server while idle (or sent bytes nobody asked for)

    def _checkin(self, origin: Origin, sock: socket.socket) -> None:
        with self._lock:
            if not self._closed:
                self._idle[origin].append(sock)
                return
        sock.close()

    def _connect(self, origin: Origin, timeout: float | None) -> socket.socket:
        scheme, host, port = origin
        name = host.decode("ascii")
        try:
            sock = socket.create_connection((name, port or _PORTS[scheme]), timeout=timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if scheme == b"https":
                if self._ssl_context is None:  # certifi's roots, or SSL_CERT_FILE/SSL_CERT_DIR
                    self._ssl_context = httpx.create_ssl_context()
                sock = self._ssl_context.wrap_socket(sock, server_hostname=name)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(str(exc) or "timed out connecting") from exc
        except OSError as exc:  # refused, unknown host, TLS handshake: nothing was sent
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        return sock

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle = [sock for socks in self._idle.values() for sock in socks]
            self._idle.clear()
        for sock in idle:
            sock.close()

    def __enter__(self) -> LeanPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_PORTS = {b"http": 80, b"https": 443}


def _message(request: httpcore.Request) -> bytes:
    """The request's bytes: request line, headers, body. A header that would split the head
    (a CR or LF in it) is refused, as h11 and http.client refuse it."""
    lines = [b"%s %s HTTP/1.1" % (request.method, request.url.target)]
    chunked = False
    for name, value in request.headers:
        if b"\r" in name or b"\n" in name or b"\r" in value or b"\n" in value:
            raise httpcore.LocalProtocolError(f"line break in header {name!r}")
        lines.append(name + b": " + value)
        chunked = chunked or (name.lower() == b"transfer-encoding" and value == b"chunked")
    body = b"".join(request.stream)  # type: ignore[arg-type]  # a sync transport's stream
    if chunked:  # httpx streams a generator body as chunks; it is all here, so one chunk
        body = (b"%x\r\n%s\r\n" % (len(body), body) if body else b"") + b"0\r\n\r\n"
    lines.append(b"")
    lines.append(body)
    return b"\r\n".join(lines)


def _readable(sock: socket.socket) -> bool:
    """Whether an idle socket has something to read: an end of stream, a reset, or bytes no
    request asked for. Either way it must not carry the next request."""
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


@contextmanager
def _mapped(sock: socket.socket, *, write: bool) -> Iterator[None]:
    """The socket's and http.client's failures as httpcore's, once connected; the socket is
    closed, since what it holds next is unknown."""
    try:
        yield
    except BaseException as exc:
        sock.close()
        if isinstance(exc, TimeoutError):
            timed_out = httpcore.WriteTimeout if write else httpcore.ReadTimeout
            raise timed_out(str(exc) or "timed out") from exc
        if isinstance(exc, http.client.RemoteDisconnected):
            raise httpcore.RemoteProtocolError(
                "Server disconnected without sending a response."
            ) from exc
        if isinstance(exc, http.client.HTTPException):  # a malformed status, header or body
            raise httpcore.RemoteProtocolError(f"{type(exc).__name__}: {exc}") from exc
        if isinstance(exc, OSError):
            failed = httpcore.WriteError if write else httpcore.ReadError
            raise failed(str(exc) or type(exc).__name__) from exc
        raise


class LeanTransport(httpx.HTTPTransport):
    """httpx's transport with ``LeanPool`` in place of its httpcore pool (see the module)."""

    def __init__(self) -> None:
        # Not HTTPTransport.__init__: it would build an httpcore pool and an SSL context
        # only to throw them away. The pool is all that handle_request and close use.
        self._pool: Any = LeanPool()


def vendor_client(timeout: float) -> httpx.Client:
    """The client the connectors send through: ``timeout`` seconds to connect, and for each
    read and write."""
    return httpx.Client(transport=LeanTransport(), timeout=timeout)
