"""HTTP for the registry reader, bounded: each request within a whole deadline (the run's `timeout`,
`deadline.py`), each answer within a size (a manifest, a layer streamed to a file, anything else).

Over urllib3: one pool of kept-alive connections per host for the run (planning reads every
target's tag, and a new TCP and TLS connection per read costs more CPU, on both ends, than the read
itself), TLS verified against the system's CA bundle, the proxy from the environment as urllib took
it (never for a loopback address, like Go). Redirects are followed here, not by urllib3, by urllib's
rules: at most 10, to http or https, and the Authorization header never sent on to where a redirect
points (a blob in cloud storage has its own signature); a token request follows none."""

from __future__ import annotations

import base64
import hashlib
import http.client
import socket
import ssl
import threading
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.client import HTTPException
from typing import Any, BinaryIO

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from gitops_action.registry.deadline import deadline, guard
from gitops_action.registry.hosts import address
from gitops_action.registry.oci import MiB

USER_AGENT = "timoni-flux-push"
MAX_MANIFEST = 4 * MiB  # the distribution spec's own limit for a manifest
MAX_BODY = 1 * MiB  # any other answer: a token, an error, the /v2/ probe
MAX_ERROR_BODY = 64 * 1024  # what is read of an error answer (its error codes)
MAX_REDIRECTS = 10  # urllib's HTTPRedirectHandler.max_redirections
REDIRECTS = (301, 302, 303, 307, 308)
POOL_SIZE = (
    64  # connections kept per host: the planner's readers at once (catchup.READERS)
)

# An error on a kept connection the server had closed: the request is made once more at once.
_STALE = (
    http.client.RemoteDisconnected,
    http.client.CannotSendRequest,
    ConnectionResetError,
    BrokenPipeError,
)


class TooLarge(Exception):
    """An answer longer than the read allows (raised out of `request`: the caller says what it means)."""


@dataclass
class Sink:
    """Where a streamed answer goes: a file, hashed as it is written."""

    file: BinaryIO
    count: int = 0
    hasher: Any = field(default_factory=hashlib.sha256)

    def reset(self) -> None:  # a second attempt starts again
        self.file.seek(0)
        self.file.truncate()
        self.count, self.hasher = 0, hashlib.sha256()

    def write(self, chunk: bytes) -> None:
        self.file.write(chunk)
        self.hasher.update(chunk)
        self.count += len(chunk)


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes


# --- connections under the request's deadline ----------------------------------------------------

_reuse = (
    threading.local()
)  # whether this thread's last request went on a kept connection


class _Guarded(HTTPConnection):
    """A connection whose socket is shut down at the deadline of the request using it: a new
    socket before a proxy's CONNECT or a TLS handshake (which a slow server could trickle too), a
    kept one (and the TLS socket) when a request is sent on it."""

    _sent = 0

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        guard(sock)
        self._sent = 0  # requests sent on this socket
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        guard(self.sock)
        _reuse.kept = self.sock is not None and self._sent > 0
        self._sent += 1
        super().request(*args, **kwargs)


class _GuardedTLS(_Guarded, HTTPSConnection):
    pass


class _Pool(urllib3.HTTPConnectionPool):
    ConnectionCls = _Guarded


class _TLSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _GuardedTLS


# --- the run's connections -----------------------------------------------------------------------


@dataclass
class Transport:
    """The run's connections: one urllib3 pool manager per kind of connection (TLS or not, the proxy
    or none), built when first needed: loading the CA bundle costs more CPU than a local request."""

    timeout: float
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _managers: dict[tuple[bool, str], urllib3.PoolManager] = field(
        default_factory=dict, repr=False
    )

    def request(
        self,
        url: str,
        accept: str,
        authorization: str | None,
        follow: bool = True,
        *,
        limit: int = MAX_BODY,
        sink: Sink | None = None,
    ) -> Answer | OSError | HTTPException:
        """One request (and its redirects) within the whole `timeout`, however slowly the server
        answers: past it, its connections are shut down and it is a TimeoutError."""
        with deadline(self.timeout) as due:
            answer = self._within(url, accept, authorization, follow, limit, sink)
        if (
            due.expired
        ):  # whatever came: a shut-down read can look like a short, complete answer
            return TimeoutError(f"timed out: no whole answer within {self.timeout:g}s")
        return answer

    def _within(
        self,
        url: str,
        accept: str,
        authorization: str | None,
        follow: bool,
        limit: int,
        sink: Sink | None,
    ) -> Answer | OSError | HTTPException:
        headers = {"Accept": accept, "User-Agent": USER_AGENT}
        for _ in range(MAX_REDIRECTS + 1):
            auth = {"Authorization": authorization} if authorization else {}
            answer = self._once(url, {**headers, **auth}, limit, sink)
            location = _redirect(answer) if follow else None
            if location is None:
                return answer
            url = urllib.parse.urljoin(url, location)
            authorization = None  # not sent on to where a redirect points
        return (
            answer  # too many redirects: the last one is the answer, as urllib gave it
        )

    def _once(
        self, url: str, headers: dict[str, str], limit: int, sink: Sink | None
    ) -> Answer | OSError | HTTPException:
        parts = urllib.parse.urlsplit(url)
        manager = self._manager(parts.scheme, parts.netloc)
        for attempt in (1, 2):
            try:
                response = manager.request(
                    "GET",
                    url,
                    headers=headers,
                    redirect=False,
                    retries=False,
                    timeout=self.timeout,
                    preload_content=False,
                    decode_content=False,
                )
            except (Urllib3Error, OSError, HTTPException) as exc:
                error = _os_error(exc)
                if attempt == 1 and isinstance(error, _STALE) and _kept():
                    continue
                return error
            try:
                return _answer(response, limit, sink)
            except (Urllib3Error, OSError, HTTPException) as exc:
                return _os_error(exc)  # resets, timeouts while reading the body
            finally:
                response.release_conn()
        raise AssertionError("unreachable")

    def _manager(self, scheme: str, netloc: str) -> urllib3.PoolManager:
        proxy = _proxy(scheme, netloc)
        key = (scheme == "https", proxy)
        with self._lock:
            if key not in self._managers:
                self._managers[key] = _pool_manager(*key)
            return self._managers[key]


def _pool_manager(tls: bool, proxy: str) -> urllib3.PoolManager:
    options: dict[str, Any] = {"maxsize": POOL_SIZE, "retries": False}
    if (
        tls
    ):  # verified as urllib verified it: the default context (SSL_CERT_FILE honoured)
        options["ssl_context"] = ssl.create_default_context()
    if proxy:
        parts = urllib.parse.urlsplit(proxy)
        if parts.username is not None:  # urllib sent the proxy URL's login as Basic
            login = f"{urllib.parse.unquote(parts.username)}:"
            login += urllib.parse.unquote(parts.password or "")
            token = base64.b64encode(login.encode()).decode("ascii")
            options["proxy_headers"] = {"Proxy-Authorization": f"Basic {token}"}
        bare = parts._replace(netloc=parts.netloc.rpartition("@")[2])
        manager: urllib3.PoolManager = urllib3.ProxyManager(bare.geturl(), **options)
    else:
        manager = urllib3.PoolManager(**options)
    manager.pool_classes_by_scheme = {"http": _Pool, "https": _TLSPool}
    return manager


def _proxy(scheme: str, netloc: str) -> str:
    """The proxy for this host (urllib's rules: `*_proxy` and `no_proxy` from the environment), ""
    for none: never for a loopback address (like Go)."""
    ip = address(netloc)
    if ip is not None and ip.is_loopback:
        return ""
    # only for a host that may be proxied: not a local registry's run
    import urllib.request

    proxy = urllib.request.getproxies().get(scheme, "")
    if not proxy or urllib.request.proxy_bypass(netloc):
        return ""
    return proxy if "://" in proxy else f"http://{proxy}"


def _kept() -> bool:
    return bool(getattr(_reuse, "kept", False))


def _redirect(answer: Answer | OSError | HTTPException) -> str | None:
    """Where a redirect points, if it is one urllib would follow."""
    if not isinstance(answer, Answer) or answer.status not in REDIRECTS:
        return None
    location = answer.headers.get("location") or answer.headers.get("uri")
    if not location:
        return None
    scheme = urllib.parse.urlsplit(location).scheme
    return location if scheme in ("http", "https", "") else None


def _answer(
    response: urllib3.BaseHTTPResponse, limit: int, sink: Sink | None
) -> Answer:
    """The answer: a success's body at most `limit` bytes (TooLarge past that; with `sink`, written
    there instead), an error's first 64 KiB."""
    headers = {str(k).lower(): str(v) for k, v in response.headers.items()}
    if not 200 <= response.status < 300:
        body = response.read(MAX_ERROR_BODY, decode_content=False)
        if response.read(1, decode_content=False):  # the rest is not read: not kept
            response.close()
        return Answer(response.status, headers, body)
    if sink is not None:
        sink.reset()
    chunks, total = [], 0
    try:
        while chunk := response.read(
            min(64 * 1024, limit + 1 - total) or 1, decode_content=False
        ):
            total += len(chunk)
            if total > limit:
                raise TooLarge(f"more than {limit} bytes")
            if sink is not None:
                sink.write(chunk)
            else:
                chunks.append(chunk)
    except TooLarge:
        response.close()  # the rest is not read: the connection is not kept
        raise
    return Answer(response.status, headers, b"".join(chunks))


def _os_error(exc: BaseException) -> OSError | HTTPException:
    """What urllib3 wraps, in the types the reader names (refused, reset, timed out): the first
    OSError or http.client error among the causes."""
    todo: list[object] = [exc]
    while todo:
        cause = todo.pop(0)
        if isinstance(cause, (OSError, HTTPException)):
            return cause
        if isinstance(cause, Urllib3Error):
            todo += [*cause.args, cause.__cause__]
    if isinstance(exc, Urllib3Timeout):
        return TimeoutError("timed out")
    return OSError(str(exc))
