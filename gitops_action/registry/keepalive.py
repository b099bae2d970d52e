"""Manifest reads over HTTP/1.1 connections kept alive, one per thread and host: planning reads
every target's tag, and a new TCP (and TLS) connection per read costs more CPU, on both ends, than
the read itself. Only for hosts reached without a proxy; a redirect, or anything unusual, is left
to the caller's urllib path (None).

Also each registry request's whole deadline (`deadline`): a socket timeout bounds one read, so a
server that trickles a byte now and then would hold a request for ever. A watchdog thread shuts down
the sockets of a request past its deadline (the blocked read then fails at once).
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from gitops_action.registry.hosts import address

_STALE = (
    http.client.RemoteDisconnected,
    http.client.CannotSendRequest,
    ConnectionResetError,
    BrokenPipeError,
)


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes


@dataclass
class Connections:
    timeout: float
    limit: int  # the most body bytes read (a longer answer closes its connection)
    _local: threading.local = field(default_factory=threading.local, repr=False)
    _tls: list[ssl.SSLContext] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def get(
        self, url: str, headers: Mapping[str, str]
    ) -> Reply | OSError | http.client.HTTPException | None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not _direct(
            parts.scheme, parts.netloc
        ):
            return None
        pool: dict[tuple[str, str], http.client.HTTPConnection] = (
            self._local.__dict__.setdefault("pool", {})
        )
        key = (parts.scheme, parts.netloc)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        for attempt in (1, 2):
            reused = key in pool
            conn = pool.get(key) or pool.setdefault(
                key, self._connect(parts.scheme, parts.netloc)
            )
            try:
                conn.request("GET", path, headers=dict(headers))
                guard(conn.sock)  # a kept connection: under this request's deadline too
                response = conn.getresponse()
                body = response.read(self.limit + 1)
            except _STALE as exc:
                _drop(pool, key)
                if reused and attempt == 1 and not expired():
                    continue
                return exc
            except (OSError, http.client.HTTPException) as exc:
                _drop(pool, key)
                return exc
            if response.will_close or len(body) > self.limit or not response.isclosed():
                _drop(pool, key)
            if 300 <= response.status < 400:
                # a redirect: urllib's path follows it (or not) by its own rules
                return None
            return Reply(
                response.status, {k.lower(): v for k, v in response.getheaders()}, body
            )
        raise AssertionError("unreachable")

    def _connect(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        if scheme == "http":
            return GuardedHTTP(netloc, timeout=self.timeout)
        with self._lock:  # loading the CA bundle costs more than a local request: once
            if not self._tls:
                self._tls.append(ssl.create_default_context())
        return GuardedHTTPS(netloc, timeout=self.timeout, context=self._tls[0])


def _drop(
    pool: dict[tuple[str, str], http.client.HTTPConnection], key: tuple[str, str]
) -> None:
    conn = pool.pop(key, None)
    if conn is not None:
        conn.close()


def _direct(scheme: str, netloc: str) -> bool:
    """Reached without a proxy: a loopback address (never proxied, like Go), or no proxy set for it."""
    ip = address(netloc)
    if ip is not None and ip.is_loopback:
        return True
    host = urllib.parse.urlsplit(f"//{netloc}").hostname or ""
    return scheme not in urllib.request.getproxies() or bool(
        urllib.request.proxy_bypass(host)
    )


# --- each request's whole deadline ---------------------------------------------------------------


@dataclass(eq=False)
class Deadline:
    at: float
    expired: bool = False
    _sockets: list[socket.socket] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shut(sock)

    def expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shut(sock)


def _shut(sock: socket.socket) -> None:
    # the plain socket's shutdown, also under TLS: reads return
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Watchdog:
    """One thread for the process, waking at the earliest deadline of the requests under way."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._active: set[Deadline] = set()
        self._wake = float("inf")
        self._started = False

    def add(self, d: Deadline) -> None:
        with self._cond:
            self._active.add(d)
            if not self._started:
                self._started = True
                threading.Thread(
                    target=self._run, name="registry-deadlines", daemon=True
                ).start()
            if d.at < self._wake:
                self._cond.notify()

    def remove(self, d: Deadline) -> None:
        with self._cond:
            self._active.discard(d)

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                for d in [d for d in self._active if d.at <= now]:
                    self._active.discard(d)
                    d.expire()
                self._wake = min((d.at for d in self._active), default=float("inf"))
                self._cond.wait(
                    None if self._wake == float("inf") else self._wake - now
                )


_WATCHDOG = _Watchdog()
_current = threading.local()  # the Deadline of the request this thread is making


@contextmanager
def deadline(seconds: float) -> Iterator[Deadline]:
    """Every connection opened (or used, `guard`) in this block is shut down `seconds` from now."""
    d = Deadline(time.monotonic() + seconds)
    _WATCHDOG.add(d)
    _current.deadline = d
    try:
        yield d
    finally:
        _current.deadline = None
        _WATCHDOG.remove(d)


def guard(sock: socket.socket | None) -> None:
    d: Deadline | None = getattr(_current, "deadline", None)
    if d is not None and sock is not None:
        d.add(sock)


def expired() -> bool:
    d: Deadline | None = getattr(_current, "deadline", None)
    return d is not None and d.expired


def _guarded_connection(*args: Any, **kwargs: Any) -> socket.socket:
    """A new connection's socket, under the request's deadline before a proxy's CONNECT or a TLS
    handshake (which a slow server could trickle too)."""
    sock = socket.create_connection(*args, **kwargs)
    guard(sock)
    return sock


class GuardedHTTP(http.client.HTTPConnection):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = _guarded_connection


class GuardedHTTPS(http.client.HTTPSConnection):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = _guarded_connection


class GuardedHTTPHandler(urllib.request.HTTPHandler):
    """urllib's handler, its connections under the request's deadline."""

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(GuardedHTTP, req)


class GuardedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__(context=context)
        self._guarded_context = context

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(GuardedHTTPS, req, context=self._guarded_context)
