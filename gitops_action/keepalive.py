"""Manifest reads over HTTP/1.1 connections kept alive, one per thread and host: planning reads
every target's tag, and a new TCP (and TLS) connection per read costs more CPU, on both ends, than
the read itself. Only for hosts reached without a proxy; a redirect, or anything unusual, is left
to the caller's urllib path (None)."""

from __future__ import annotations

import http.client
import ssl
import threading
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field

from .hosts import address

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

    def get(self, url: str, headers: Mapping[str, str]) -> Reply | OSError | http.client.HTTPException | None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not _direct(parts.scheme, parts.netloc):
            return None
        pool: dict[tuple[str, str], http.client.HTTPConnection] = self._local.__dict__.setdefault("pool", {})
        key = (parts.scheme, parts.netloc)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        for attempt in (1, 2):
            reused = key in pool
            conn = pool.get(key) or pool.setdefault(key, self._connect(parts.scheme, parts.netloc))
            try:
                conn.request("GET", path, headers=dict(headers))
                response = conn.getresponse()
                body = response.read(self.limit + 1)
            except _STALE as exc:
                _drop(pool, key)
                if reused and attempt == 1:
                    continue
                return exc
            except (OSError, http.client.HTTPException) as exc:
                _drop(pool, key)
                return exc
            if response.will_close or len(body) > self.limit or not response.isclosed():
                _drop(pool, key)
            if 300 <= response.status < 400:
                return None  # a redirect: urllib's path follows it (or not) by its own rules
            return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, body)
        raise AssertionError("unreachable")

    def _connect(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        if scheme == "http":
            return http.client.HTTPConnection(netloc, timeout=self.timeout)
        with self._lock:  # loading the CA bundle costs more than a local request: once
            if not self._tls:
                self._tls.append(ssl.create_default_context())
        return http.client.HTTPSConnection(netloc, timeout=self.timeout, context=self._tls[0])


def _drop(pool: dict[tuple[str, str], http.client.HTTPConnection], key: tuple[str, str]) -> None:
    conn = pool.pop(key, None)
    if conn is not None:
        conn.close()


def _direct(scheme: str, netloc: str) -> bool:
    """Reached without a proxy: a loopback address (never proxied, like Go), or no proxy set for it."""
    ip = address(netloc)
    if ip is not None and ip.is_loopback:
        return True
    host = urllib.parse.urlsplit(f"//{netloc}").hostname or ""
    return scheme not in urllib.request.getproxies() or bool(urllib.request.proxy_bypass(host))
