"""The one way the connectors get an ``httpx.Client``: httpx on a lean HTTP/1.1 transport.

Why not httpx's default transport: on loopback, httpcore and h11 cost about 0.5 ms of CPU
per request, half of the sync's CPU per entity. The bare HTTP/1.1 exchange needs a fraction
of that: a keep-alive socket, the request's bytes in one send, and httptools (the C
HTTP parser uvicorn serves the sandboxes with) to read the answer.
Everything above the transport stays httpx: requests, responses, auth, and the exception
types the connectors' retry rules read. Behind a proxy (see ``vendor_client``) it is httpx
whole.

Kept libraries were measured first. pyreqwest's httpx transport (Rust) saves less CPU, and
it reports a server that closed the connection after reading a request as
``httpx.ConnectError``: the connectors take that to mean nothing was sent, and would resend
a write that may have happened. curl_cffi's transport costs more CPU than httpcore's.

``LeanTransport`` is an ``httpx.HTTPTransport`` whose connection pool is replaced, so
everything that hooks httpx's transport (vcrpy's recording and replay, pytest-recording's
network block, which closes Python sockets) sees it as httpx's own.
"""

from __future__ import annotations

import functools
import http.client
import os
import select
import socket
import ssl
import threading
import urllib.request
from collections import defaultdict
from typing import Any

import httpcore
import httptools
import httpx

Origin = tuple[bytes, bytes, int | None]


class LeanPool:
    """Keep-alive sockets per origin, for any number of threads.

    It stands where httpx's transport keeps its httpcore pool and answers the one call the
    transport makes, ``handle_request(httpcore.Request)``. A request leaves in one send
    (head and body together: on loopback each send costs the sender the receiver's wake-up
    too), and its answer is framed by httptools, the C parser uvicorn uses. It raises
    httpcore's exceptions, so httpx maps them as it maps httpcore's own, and where a
    failure happened decides the type: before anything was sent (``ConnectError``,
    ``ConnectTimeout``), while sending (``WriteError``, ``WriteTimeout``: part of the
    request may have left) or after (``RemoteProtocolError``, ``ReadError``,
    ``ReadTimeout``). Only the first two tell the connectors that a resend is safe.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: defaultdict[Origin, list[socket.socket]] = defaultdict(list)
        self._closed = False

    def handle_request(self, request: httpcore.Request) -> httpcore.Response:
        timeouts = request.extensions.get("timeout", {})
        origin: Origin = (request.url.scheme, request.url.host, request.url.port)
        message = _message(request)
        sock = self._checkout(origin) or self._connect(origin, timeouts.get("connect"))
        sent = False
        try:
            sock.settimeout(timeouts.get("write"))
            sock.sendall(message)
            sent = True
            sock.settimeout(timeouts.get("read"))
            answer = _read_answer(sock, head_only=request.method == b"HEAD")
        except BaseException as exc:
            sock.close()  # what it holds next is unknown
            raise _failure(exc, sent) from exc
        if answer.keep_alive:
            self._checkin(origin, sock)
        else:
            sock.close()
        return httpcore.Response(
            answer.status,
            headers=answer.headers,
            content=b"".join(answer.body),
            extensions={"http_version": answer.version, "reason_phrase": answer.reason},
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
                sock = shared_context().wrap_socket(sock, server_hostname=name)
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


class _Answer:
    """httptools' parser callbacks: the parts of one answer as they arrive."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.on_message_begin()

    def on_message_begin(self) -> None:  # again after a 1xx interim answer
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.headers_done = False
        self.complete = False
        self.status = 0
        self.version = b"HTTP/1.1"
        self.keep_alive = False

    def on_status(self, reason: bytes) -> None:
        self.reason += reason  # may arrive in pieces

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        # read here, as uvicorn does: once the message is complete the parser has moved on
        self.headers_done = True
        self.status = self.parser.get_status_code()
        self.version = b"HTTP/" + self.parser.get_http_version().encode("ascii")
        self.keep_alive = self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.complete = True

    def sized(self) -> bool:
        """Whether the head says where the body ends (else it ends when the server hangs up)."""
        return any(
            name.lower() in (b"content-length", b"transfer-encoding") for name, _ in self.headers
        )


def _read_answer(sock: socket.socket, *, head_only: bool) -> _Answer:
    """Read one final answer (1xx interim answers skipped) off ``sock`` with httptools.

    httptools (llhttp, uvicorn's parser) frames the body: Content-Length, chunked, or, with
    neither, until the server closes the connection.
    """
    answer = _Answer()
    while True:
        data = sock.recv(65536)
        if not data:
            if answer.headers_done and not answer.sized():
                answer.keep_alive = False  # the body ended with the connection
                return answer
            raise http.client.RemoteDisconnected("Server disconnected without sending a response.")
        answer.parser.feed_data(data)
        if answer.headers_done and head_only:
            answer.keep_alive = False  # a HEAD answer has no body, whatever its head says
            return answer
        if answer.complete and answer.status >= 200:
            return answer


def _failure(exc: BaseException, sent: bool) -> BaseException:
    """A socket's or the parser's failure as the httpcore exception httpx maps, typed by
    whether the request had left; anything else (Ctrl-C) unchanged."""
    if isinstance(exc, TimeoutError):
        return (httpcore.ReadTimeout if sent else httpcore.WriteTimeout)(str(exc) or "timed out")
    if isinstance(exc, http.client.RemoteDisconnected):
        return httpcore.RemoteProtocolError(str(exc))
    if isinstance(exc, httptools.HttpParserError):  # a malformed status, header or body
        return httpcore.RemoteProtocolError(f"malformed answer: {exc}")
    if isinstance(exc, OSError):
        return (httpcore.ReadError if sent else httpcore.WriteError)(str(exc) or type(exc).__name__)
    return exc


class LeanTransport(httpx.HTTPTransport):
    """httpx's transport with ``LeanPool`` in place of its httpcore pool (see the module)."""

    def __init__(self) -> None:
        # Not HTTPTransport.__init__: it would build an httpcore pool and an SSL context
        # only to throw them away. The pool is all that handle_request and close use.
        self._pool: Any = LeanPool()


class _SetCookieJar(httpx.Cookies):
    """httpx's cookie jar, asked to look only at answers that set a cookie.

    httpx hands every answer to the standard library's cookie jar through adapter objects,
    a tenth of a request's CPU, though vendor APIs answer with no cookies. The jar reads
    only Set-Cookie (Set-Cookie2 is off in its default policy), so skipping answers without
    one changes nothing.
    """

    def extract_cookies(self, response: httpx.Response) -> None:
        if "set-cookie" in response.headers:
            super().extract_cookies(response)


class _LeanClient(httpx.Client):
    """httpx.Client with ``_SetCookieJar`` as its cookies."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._jar = _SetCookieJar()

    @property
    def cookies(self) -> httpx.Cookies:
        return self._jar

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        self._jar = _SetCookieJar(cookies)


def vendor_client(timeout: float) -> httpx.Client:
    """The client the connectors send through: ``timeout`` seconds to connect, and for each
    read and write.

    When the environment names a proxy (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY), httpx's own
    client and transport: they honour it and NO_PROXY, and httpx ignores the environment's
    proxies for a client given its own transport.
    """
    if {"http", "https", "all"} & urllib.request.getproxies().keys():
        return httpx.Client(timeout=timeout, verify=shared_context())
    return _LeanClient(transport=LeanTransport(), timeout=timeout)


def shared_context() -> ssl.SSLContext:
    """One TLS context per process (per value of SSL_CERT_FILE and SSL_CERT_DIR).

    httpx builds one per client, loading the CA bundle: ~35 ms of CPU each, and a sign-off
    makes a client per scenario and per syncer run. A context is safe to share between
    clients and threads.
    """
    return _context(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))


@functools.cache
def _context(cafile: str | None, capath: str | None) -> ssl.SSLContext:
    return httpx.create_ssl_context()  # reads the two variables itself, as httpx does
