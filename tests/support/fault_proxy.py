"""A fault-injecting HTTP proxy in front of the real registry (issue 7).

The registry stays real: every request the proxy does not sabotage is forwarded to it unchanged
(same method, path, headers, body; the `Host` header is kept, so the registry builds upload URLs
that point back at the proxy). Faults are switched per test:

- `status(code, first=N)`: answer `code` (with a registry error body) to the first N requests
  that match, then forward; `first=None` answers every request (401/403 "always").
- `reset(first=N)`: close the connection with a TCP reset, no response, for the first N.
- `stall(seconds)`: hold each matching request without answering, past the client's timeout.
- `drop_after(k)`: forward K requests, then reset every later one (the registry "goes away").
- `trickle(seconds)`: forward, then send the registry's answer one byte every `seconds` (each read
  of the client gets a byte well within its socket timeout: only a whole-request deadline stops it).

A fault can be restricted to some requests with `methods` and `path` (a regex on the path), e.g.
every blob upload (`methods={"PATCH", "PUT"}, path="/blobs/uploads/"`); several faults may be active at
once (the first that matches a request decides). `before` and `after` are hooks a test can set to
order requests of concurrent clients (they may block). `log` records what each request got, so tests
can assert the fault really happened.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "content-length",
}
ERROR_CODES = {
    401: ("UNAUTHORIZED", "authentication required"),
    403: ("DENIED", "requested access to the resource is denied"),
    429: ("TOOMANYREQUESTS", "too many requests"),
}


@dataclass
class Fault:
    kind: str  # "status", "reset", "stall", "drop_after", "trickle"
    code: int = 0
    first: int | None = None  # how many matching requests get the fault (None: all)
    seconds: float = 0.0
    after: int = 0
    methods: frozenset[str] = frozenset()
    path: re.Pattern[str] | None = None
    hits: int = 0
    seen: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.methods and method not in self.methods:
            return False
        return not (self.path and not self.path.search(path))


@dataclass
class Entry:
    method: str
    path: str
    outcome: str  # "forwarded 201", "injected 503", "reset", "stalled"
    agent: str = ""  # User-Agent: who asked (flux, or the action's own registry reads)


@dataclass
class FaultProxy:
    upstream: str  # host:port of the real registry (plain HTTP)
    host: str = ""  # 127.0.0.1:PORT of the proxy
    log: list[Entry] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    # Hooks: before(method, path, body) runs before a request is decided; after(method, path, body,
    # status) once the registry answered a forwarded one.
    before: Callable[[str, str, bytes], None] | None = None
    after: Callable[[str, str, bytes, int], None] | None = None
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _release: threading.Event = field(default_factory=threading.Event)

    # --- switching faults -------------------------------------------------------------------------
    def clear(self) -> None:
        with self._lock:
            self.faults = []
            self.before = self.after = None
            self._release.set()  # let any stalled request go
            self._release = threading.Event()

    def _set(self, fault: Fault, methods: set[str] | None, path: str | None) -> None:
        fault.methods = frozenset(methods or ())
        fault.path = re.compile(path) if path else None
        with self._lock:
            self.faults.append(fault)

    def status(
        self,
        code: int,
        *,
        first: int | None = None,
        methods: set[str] | None = None,
        path: str | None = None,
    ) -> None:
        self._set(Fault("status", code=code, first=first), methods, path)

    def reset(
        self,
        *,
        first: int | None = None,
        methods: set[str] | None = None,
        path: str | None = None,
    ) -> None:
        self._set(Fault("reset", first=first), methods, path)

    def stall(
        self,
        seconds: float,
        *,
        methods: set[str] | None = None,
        path: str | None = None,
    ) -> None:
        self._set(Fault("stall", seconds=seconds), methods, path)

    def drop_after(
        self, k: int, *, methods: set[str] | None = None, path: str | None = None
    ) -> None:
        self._set(Fault("drop_after", after=k), methods, path)

    def trickle(
        self,
        seconds: float,
        *,
        first: int | None = None,
        methods: set[str] | None = None,
        path: str | None = None,
    ) -> None:
        self._set(Fault("trickle", seconds=seconds, first=first), methods, path)

    def outcomes(self) -> list[str]:
        with self._lock:
            return [e.outcome for e in self.log]

    def injected(self) -> int:
        return sum(1 for o in self.outcomes() if not o.startswith("forwarded"))

    # --- life cycle -------------------------------------------------------------------------------
    def start(self) -> FaultProxy:
        proxy = self

        class Handler(_Handler):
            owner = proxy

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.host = f"127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    # --- deciding ---------------------------------------------------------------------------------
    def _decide(self, method: str, path: str) -> Fault | None:
        """The fault this request gets (or None: forward it), counting it."""
        with self._lock:
            for f in self.faults:
                if not f.matches(method, path):
                    continue
                f.seen += 1
                if f.kind == "drop_after":
                    if f.seen > f.after:
                        return f
                    continue
                if f.first is not None and f.hits >= f.first:
                    continue
                f.hits += 1
                return f
            return None

    def _record(self, method: str, path: str, outcome: str, agent: str = "") -> None:
        with self._lock:
            self.log.append(Entry(method, path, outcome, agent))


@contextmanager
def fault_proxy(upstream: str) -> Iterator[FaultProxy]:
    proxy = FaultProxy(upstream).start()
    try:
        yield proxy
    finally:
        proxy.stop()


class _Handler(BaseHTTPRequestHandler):
    owner: FaultProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _reset(self) -> None:
        # SO_LINGER 0: close() sends a TCP RST, the client sees "connection reset by peer".
        self.connection.setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
        )
        self.close_connection = True
        self.connection.close()

    def _handle(self) -> None:
        owner = self.owner
        method, path = self.command, self.path
        body = self._body()
        if owner.before:
            owner.before(method, path, body)
        fault = owner._decide(method, path)
        if fault is not None and fault.kind in ("reset", "drop_after"):
            owner._record(method, path, "reset", self.headers.get("User-Agent", ""))
            self._reset()
            return
        if fault is not None and fault.kind == "stall":
            owner._record(method, path, "stalled", self.headers.get("User-Agent", ""))
            owner._release.wait(fault.seconds)
            self._reset()
            return
        if fault is not None and fault.kind == "trickle":
            self._forward(method, path, body, trickle=fault.seconds)
            return
        if fault is not None:
            owner._record(
                method,
                path,
                f"injected {fault.code}",
                self.headers.get("User-Agent", ""),
            )
            self._answer(fault.code)
            return
        self._forward(method, path, body)

    def _answer(self, code: int) -> None:
        name, message = ERROR_CODES.get(
            code, ("UNKNOWN", http.client.responses.get(code, "error"))
        )
        payload = json.dumps({"errors": [{"code": name, "message": message}]}).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        if code == 401:
            self.send_header("WWW-Authenticate", 'Basic realm="fault-proxy"')
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _forward(
        self, method: str, path: str, body: bytes, trickle: float = 0.0
    ) -> None:
        conn = http.client.HTTPConnection(self.owner.upstream, timeout=60)
        try:
            headers = {
                k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP
            }
            if body or method in ("PUT", "POST", "PATCH"):
                headers["Content-Length"] = str(len(body))
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            outcome = (
                f"trickled {resp.status}" if trickle else f"forwarded {resp.status}"
            )
            self.owner._record(
                method, path, outcome, self.headers.get("User-Agent", "")
            )
            if self.owner.after:
                self.owner.after(method, path, body, resp.status)
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in HOP_BY_HOP:
                    self.send_header(k, v)
            # HEAD: the registry's Content-Length describes the blob, keep it; no body follows.
            length = (
                resp.getheader("Content-Length") if method == "HEAD" else str(len(data))
            )
            if length is not None:
                self.send_header("Content-Length", length)
            self.end_headers()
            if method != "HEAD" and trickle:
                self._trickle(data, trickle)
            elif method != "HEAD":
                self.wfile.write(data)
        finally:
            conn.close()

    def _trickle(self, data: bytes, seconds: float) -> None:
        """One byte at a time, until the answer is out, the client hangs up or the test clears."""
        self.close_connection = True
        for i in range(len(data)):
            try:
                self.wfile.write(data[i : i + 1])
                self.wfile.flush()
            except OSError:
                return
            if self.owner._release.wait(seconds):
                return

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle
