"""The connectors' transport over real sockets: what it sends, how it reuses connections,
and the failure types the retry rules depend on (sent or not sent)."""

from __future__ import annotations

import http.server
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import certifi
import httpx
import pytest
import vcr

from talkqa.sandbox.server import CHARGEBEE_API_KEY, INVOICED_API_KEY, RunningSandboxes
from talkqa.systems import wire
from talkqa.systems.base import LostResponse
from talkqa.systems.connect import Systems
from talkqa.systems.settings import Settings
from talkqa.systems.wire import LeanTransport, shared_context, vendor_client
from tests import sandbox_fixtures

served = sandbox_fixtures.served  # both emulators over sockets, once per module


class Handler(http.server.BaseHTTPRequestHandler):
    """Echoes what it was sent; a few paths misbehave on purpose."""

    protocol_version = "HTTP/1.1"  # keep-alive unless a path says otherwise
    disable_nagle_algorithm = True  # head and body are two writes: no 40 ms wait between
    server: Server

    def do_GET(self) -> None:
        self._answer(b"")

    def do_POST(self) -> None:
        self._answer(self.rfile.read(int(self.headers.get("content-length", 0))))

    def _answer(self, body: bytes) -> None:
        if self.path == "/slow":
            time.sleep(1.0)
        if self.path == "/hang-up":  # read the request, answer nothing
            self.close_connection = True
            return
        if self.path == "/garbage":
            self.wfile.write(b"NOT HTTP AT ALL\r\n\r\n")
            self.close_connection = True
            return
        if self.path == "/until-close":  # no length, no chunks: the body ends with the connection
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it")
            self.close_connection = True
            return
        echo = json.dumps(
            {"path": self.path, "body": body.decode(), "headers": dict(self.headers)}
        ).encode()
        self.send_response(201, "Made")
        self.send_header("Content-Type", "application/json")
        if self.path == "/set-cookie":
            self.send_header("Set-Cookie", "lb=node-2; Path=/")
        if self.path == "/chunked":
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (echo[:10], echo[10:]):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(echo)))
            self.end_headers()
            self.wfile.write(echo)
        if self.path == "/then-close":  # a keep-alive answer, then the server hangs up idle
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    connections = 0

    def process_request(self, request: object, client_address: object) -> None:
        self.connections += 1
        super().process_request(request, client_address)  # type: ignore[arg-type]


@pytest.fixture
def server() -> Iterator[Server]:
    made = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=made.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield made
    made.shutdown()
    made.server_close()


def base(server: Server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def test_a_request_arrives_whole_and_its_answer_reads_back(server: Server) -> None:
    with vendor_client(5.0) as client:
        answer = client.post(
            f"{base(server)}/things?a=1&b=%C3%A6",
            json={"name": "Åse"},
            headers={"Idempotency-Key": "k-1"},
            auth=("key", ""),
        )
    assert answer.status_code == 201 and answer.reason_phrase == "Made"
    assert answer.headers["content-type"] == "application/json"
    echo = answer.json()
    assert echo["path"] == "/things?a=1&b=%C3%A6"
    assert json.loads(echo["body"]) == {"name": "Åse"}
    assert echo["headers"]["Idempotency-Key"] == "k-1"
    assert echo["headers"]["Authorization"].startswith("Basic ")


def test_a_chunked_answer_is_read_whole(server: Server) -> None:
    with vendor_client(5.0) as client:
        assert client.get(f"{base(server)}/chunked").json()["path"] == "/chunked"


def test_a_body_that_ends_with_the_connection_is_read_whole(server: Server) -> None:
    with vendor_client(5.0) as client:
        assert client.get(f"{base(server)}/until-close").text == "all of it"
        assert client.get(f"{base(server)}/next").status_code == 201  # on a new connection
    assert server.connections == 2


def test_a_malformed_answer_is_a_protocol_error(server: Server) -> None:
    with vendor_client(5.0) as client, pytest.raises(httpx.RemoteProtocolError):
        client.get(f"{base(server)}/garbage")


def test_a_cookie_the_server_sets_is_sent_back(server: Server) -> None:
    with vendor_client(5.0) as client:
        assert "Cookie" not in client.get(f"{base(server)}/first").json()["headers"]
        client.get(f"{base(server)}/set-cookie")
        assert client.get(f"{base(server)}/later").json()["headers"]["Cookie"] == "lb=node-2"
        assert client.cookies["lb"] == "node-2"


def test_one_connection_carries_many_requests(server: Server) -> None:
    with vendor_client(5.0) as client:
        for n in range(20):
            assert client.post(f"{base(server)}/n", content=str(n)).json()["body"] == str(n)
    assert server.connections == 1


def test_a_connection_the_server_closed_while_idle_is_not_reused(server: Server) -> None:
    with vendor_client(5.0) as client:
        assert client.post(f"{base(server)}/then-close", content=b"1").status_code == 201
        time.sleep(0.2)  # the server's handler thread closes its end after answering
        assert client.post(f"{base(server)}/after", content=b"2").json()["body"] == "2"
    assert server.connections == 2


def test_threads_share_the_pool_without_crossing_answers(server: Server) -> None:
    wrong: list[str] = []
    with vendor_client(5.0) as client:

        def send(thread: int) -> None:
            for n in range(25):
                body = f"{thread}-{n}"
                got = client.post(f"{base(server)}/t", content=body).json()["body"]
                if got != body:
                    wrong.append(f"{body} answered {got}")

        threads = [threading.Thread(target=send, args=(t,)) for t in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert wrong == []
    assert 1 <= server.connections <= 8


def test_no_connection_is_a_connect_error() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with vendor_client(5.0) as client, pytest.raises(httpx.ConnectError):
        client.get(f"http://127.0.0.1:{port}/")


def test_a_hang_up_after_the_request_is_not_a_connect_error(server: Server) -> None:
    """The connectors resend after a ConnectError (nothing was sent) but not after this."""
    with vendor_client(5.0) as client, pytest.raises(httpx.RemoteProtocolError):
        client.post(f"{base(server)}/hang-up", content=b"x")


def test_an_https_origin_uses_the_shared_context_and_a_failed_handshake_sends_nothing(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrapped: list[str | None] = []

    class Refusing(ssl.SSLContext):
        def wrap_socket(self, sock: object, *args: object, **kwargs: object) -> ssl.SSLSocket:
            wrapped.append(kwargs.get("server_hostname"))  # type: ignore[arg-type]
            raise ssl.SSLError("handshake refused")

    monkeypatch.setattr(wire, "shared_context", lambda: Refusing(ssl.PROTOCOL_TLS_CLIENT))
    port = server.server_address[1]
    with vendor_client(5.0) as client, pytest.raises(httpx.ConnectError):
        client.post(f"https://127.0.0.1:{port}/x", content=b"never sent")
    assert wrapped == ["127.0.0.1"]


def test_a_slow_answer_is_a_read_timeout(server: Server) -> None:
    with vendor_client(0.2) as client, pytest.raises(httpx.ReadTimeout):
        client.get(f"{base(server)}/slow")


def test_a_header_with_a_line_break_is_refused_before_sending(server: Server) -> None:
    request = httpx.Request("GET", f"{base(server)}/x")
    request.headers["x-bad"] = "a"  # replaced below: httpx checks header values itself
    request.headers._list[-1] = (b"x-bad", b"x-bad", b"a\r\nInjected: yes")  # type: ignore[attr-defined]
    with pytest.raises(httpx.LocalProtocolError):
        LeanTransport().handle_request(request)
    assert server.connections == 0


def test_a_proxy_named_by_the_environment_is_used(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", base(server))  # the echo server stands in for a proxy
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with vendor_client(5.0) as client:
        echo = client.get("http://vendor.example/customers").json()
    assert echo["path"] == "http://vendor.example/customers"  # a proxy's absolute-form target


def test_vcrpy_records_and_replays_through_it(server: Server, tmp_path: Path) -> None:
    cassette = tmp_path / "wire.yaml"
    with vcr.use_cassette(str(cassette), record_mode="once"), vendor_client(5.0) as client:
        recorded = client.post(f"{base(server)}/rec", content=b"hello").json()
    assert cassette.exists() and server.connections == 1
    with vcr.use_cassette(str(cassette), record_mode="none"), vendor_client(5.0) as client:
        assert client.post(f"{base(server)}/rec", content=b"hello").json() == recorded
    assert server.connections == 1  # the replay touched no socket


# --- through the connectors, against the served sandboxes --------------------------------------


def systems_over_wire(sb: RunningSandboxes, client: httpx.Client) -> Systems:
    settings = Settings.from_env(
        {
            "CHARGEBEE_BASE_URL": sb.chargebee_base_url,
            "CHARGEBEE_API_KEY": CHARGEBEE_API_KEY,
            "INVOICED_BASE_URL": sb.invoiced_base_url,
            "INVOICED_API_KEY": INVOICED_API_KEY,
        }
    )
    return Systems.connect(settings, client, sleep=lambda _s: None)


def set_faults(sb: RunningSandboxes, spec: str) -> None:
    sb.reset()
    sb.sandbox.faults.clear()
    if spec:
        httpx.post(
            f"{sb.invoiced_base_url}/__admin/faults",
            json={"spec": spec},
            auth=(INVOICED_API_KEY, ""),
        ).raise_for_status()


def test_a_write_lost_after_sending_is_not_resent_without_a_key(served: RunningSandboxes) -> None:
    set_faults(served, "chargebee.POST/customers=drop_after,times=1")
    with vendor_client(10.0) as client:
        systems = systems_over_wire(served, client)
        with pytest.raises(LostResponse, match="connection lost after the request was sent"):
            systems.chargebee.customers.create({"id": "c1", "first_name": "Ada"})
        assert [c["id"] for c in systems.chargebee.customers.list()] == ["c1"]
        assert systems.call_counts()["chargebee POST /customers"] == 1


def test_a_write_lost_after_sending_is_resent_once_with_a_key(served: RunningSandboxes) -> None:
    set_faults(served, "invoiced.POST/customers=drop_after,times=1")
    with vendor_client(10.0) as client:
        systems = systems_over_wire(served, client)
        made = systems.invoiced.customers.create(
            {"name": "Ada", "type": "person"}, idempotency_key="ada-1"
        )
        assert [c["id"] for c in systems.invoiced.customers.list()] == [made["id"]]
        assert systems.call_counts()["invoiced POST /customers"] == 2
    set_faults(served, "")


def test_clients_share_one_tls_context_that_follows_ssl_cert_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", certifi.where())
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    first = shared_context()
    assert shared_context() is first
    assert first.verify_mode == ssl.CERT_REQUIRED and first.check_hostname
    assert first.get_ca_certs()  # the bundle is loaded
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # httpx whole: its context is ours
    with vendor_client(5.0) as client:
        pool = client._transport._pool  # type: ignore[attr-defined]
        assert pool._ssl_context is first
    monkeypatch.delenv("SSL_CERT_FILE")
    assert shared_context() is not first  # another setting, another context (certifi's)
