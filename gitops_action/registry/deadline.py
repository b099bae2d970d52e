"""Each registry request's whole deadline: a socket timeout bounds one read, so a server that
trickles a byte now and then would hold a request for ever (urllib3's `Timeout` is such a timeout:
its `total` only shortens the read timeout once, when the answer starts). A watchdog thread shuts
down the sockets of a request past its deadline (the blocked read then fails at once)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


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
    # The plain socket's shutdown, also under TLS: reads return at once.
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


def guard(sock: object) -> None:
    """`sock` is shut down at the deadline of the request this thread is making, if any."""
    d: Deadline | None = getattr(_current, "deadline", None)
    raw = _socket_of(sock)
    if d is not None and raw is not None:
        d.add(raw)


def _socket_of(sock: object) -> socket.socket | None:
    """The socket under `sock`: urllib3's SSLTransport (TLS inside an `https://` proxy's tunnel) is
    no socket, and a shutdown of it was a TypeError that ended the watchdog thread (no deadline
    kept after that); the socket it runs over is its `socket`."""
    for _ in range(3):
        if sock is None or isinstance(sock, socket.socket):
            return sock
        sock = getattr(sock, "socket", None)
    return None
