"""The registry reader's HTTP (`gitops_action.registry.transport`, over urllib3) against small local
servers: a redirect is followed without the credentials, a token request follows none, connections
are kept alive, and a TLS answer trickled a byte at a time is cut off at the whole-request deadline
(before urllib3, a read through urllib over TLS was not: the plain socket the deadline held had been
handed to the TLS socket, and the trickle ran its course)."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from support.registry import _self_signed

from gitops_action.registry.transport import USER_AGENT, Answer, TooLarge, Transport


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self.server.seen.append((self.path, dict(self.headers), self.client_address))
        if self.path.startswith("/redirect"):
            self._send(307, b"", {"Location": self.path.split("?to=", 1)[1]})
        elif self.path == "/large":
            self._send(200, b"x" * 2000)
        elif self.path == "/trickle":
            self._send(200, b"x" * 30, trickle=0.3)
        else:
            self._send(200, b"{}")

    def _send(
        self,
        code: int,
        body: bytes,
        headers: dict[str, str] | None = None,
        trickle: float = 0.0,
    ) -> None:
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            for i in range(len(body)) if trickle else ():
                self.wfile.write(body[i : i + 1])
                self.wfile.flush()
                time.sleep(trickle)
            if not trickle:
                self.wfile.write(body)
        except OSError:
            pass  # the client hung up


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.seen: list[tuple[str, dict[str, str], tuple[str, int]]] = []

    @property
    def url(self) -> str:
        scheme = "https" if isinstance(self.socket, ssl.SSLSocket) else "http"
        return f"{scheme}://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def servers() -> Iterator[tuple[_Server, _Server]]:
    pair = (_Server(), _Server())
    for s in pair:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    yield pair
    for s in pair:
        s.shutdown()
        s.server_close()


def test_a_redirect_is_followed_without_the_authorization(
    servers: tuple[_Server, _Server],
) -> None:
    registry, storage = servers
    answer = Transport(5).request(
        f"{registry.url}/redirect?to={storage.url}/blob", "*/*", "Bearer s3cret"
    )
    assert isinstance(answer, Answer) and answer.status == 200, answer
    (asked,) = registry.seen
    (sent_on,) = storage.seen
    assert asked[1]["Authorization"] == "Bearer s3cret"
    assert "Authorization" not in sent_on[1], sent_on
    assert sent_on[1]["Accept"] == "*/*" and sent_on[1]["User-Agent"] == USER_AGENT


def test_a_token_request_follows_no_redirect(
    servers: tuple[_Server, _Server],
) -> None:
    realm, elsewhere = servers
    answer = Transport(5).request(
        f"{realm.url}/redirect?to={elsewhere.url}/token",
        "application/json",
        "Basic dXNlcjpwdw==",
        follow=False,
    )
    assert isinstance(answer, Answer) and answer.status == 307, answer
    assert answer.headers["location"] == f"{elsewhere.url}/token"
    assert not elsewhere.seen


def test_reads_are_kept_alive_and_bounded(servers: tuple[_Server, _Server]) -> None:
    registry, _ = servers
    transport = Transport(5)
    for _ in range(5):
        answer = transport.request(f"{registry.url}/v2/", "application/json", None)
        assert isinstance(answer, Answer) and answer.status == 200, answer
    assert len({client for _, _, client in registry.seen}) == 1
    with pytest.raises(TooLarge):
        transport.request(f"{registry.url}/large", "*/*", None, limit=1000)
    answer = transport.request(f"{registry.url}/v2/", "application/json", None)
    assert isinstance(answer, Answer) and answer.body == b"{}"
    # The connection whose answer was not read to its end is not the one used next.
    assert registry.seen[-1][2] != registry.seen[-2][2]


def test_a_trickled_tls_answer_is_cut_off_at_the_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = _self_signed(tmp_path)
    monkeypatch.setenv(
        "SSL_CERT_FILE", str(cert)
    )  # the transport trusts the test's certificate
    server = _Server()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        start = time.monotonic()
        answer = Transport(1.5).request(f"{server.url}/trickle", "*/*", None)
        took = time.monotonic() - start
    finally:
        server.shutdown()
        server.server_close()
    assert isinstance(answer, TimeoutError), answer
    assert "no whole answer within 1.5s" in str(answer)
    assert took < 5, f"the read took {took:.1f}s (the whole trickle is 9s)"
