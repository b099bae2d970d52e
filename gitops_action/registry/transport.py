"""HTTP for the registry reader, bounded: each request within a whole deadline (the run's `timeout`),
each answer within a size (a manifest, a layer streamed to a file, anything else), connections to a
registry kept alive (`keepalive.py`) or through urllib (proxies, redirects, TLS)."""

from __future__ import annotations

import hashlib
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.client import HTTPException
from typing import IO, Any, BinaryIO

from gitops_action.registry.hosts import address
from gitops_action.registry.keepalive import (
    Connections,
    GuardedHTTPHandler,
    GuardedHTTPSHandler,
    Reply,
    deadline,
)
from gitops_action.registry.oci import MANIFEST_TYPES, MiB

USER_AGENT = "timoni-flux-push"
MAX_MANIFEST = 4 * MiB  # the distribution spec's own limit for a manifest
MAX_BODY = 1 * MiB  # any other answer: a token, an error, the /v2/ probe


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


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Token requests follow no redirect: flux checks each hop against the realm rules; a redirected
    token request is left to it."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


@dataclass
class Transport:
    """The run's connections: one opener per kind of connection, kept-alive manifest reads."""

    timeout: float
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _openers: dict[tuple[bool, bool, bool], urllib.request.OpenerDirector] = field(
        default_factory=dict, repr=False
    )
    _kept: Connections | None = field(default=None, repr=False)

    def _opener(
        self, scheme: str, host: str, follow: bool = True
    ) -> urllib.request.OpenerDirector:
        """One opener per kind of connection for the run: building one, and above all loading the CA
        bundle for TLS, costs more CPU than a local request."""
        ip = address(host)
        # Like Go: a proxy from the environment, but never for a loopback address.
        direct = ip is not None and ip.is_loopback
        key = (scheme == "https", direct, follow)
        with self._lock:
            if key not in self._openers:
                handlers: list[urllib.request.BaseHandler] = (
                    [] if follow else [_NoRedirect()]
                )
                if direct:
                    handlers.append(urllib.request.ProxyHandler({}))
                # connections under the request's deadline
                handlers.append(GuardedHTTPHandler())
                if scheme == "https":
                    handlers.append(GuardedHTTPSHandler(ssl.create_default_context()))
                self._openers[key] = urllib.request.build_opener(*handlers)
            return self._openers[key]

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
        # whatever came: a shut-down read can look like a short, complete answer
        if due.expired:
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
        # the hot path: every tag is read at least once
        if accept == MANIFEST_TYPES and follow:
            if self._kept is None:
                self._kept = Connections(self.timeout, MAX_MANIFEST)
            kept = self._kept.get(
                url,
                {"Accept": accept, "User-Agent": USER_AGENT, **_auth(authorization)},
            )
            if isinstance(kept, Reply):
                return Answer(kept.status, kept.headers, kept.body)
            if kept is not None:
                return kept
        request = urllib.request.Request(
            url, headers={"Accept": accept, "User-Agent": USER_AGENT}
        )
        # not sent on to a redirect (a blob in cloud storage has its own signature)
        if authorization:
            request.add_unredirected_header("Authorization", authorization)
        parts = urllib.parse.urlsplit(url)
        opener = self._opener(parts.scheme, parts.netloc, follow)
        try:
            with opener.open(request, timeout=self.timeout) as response:
                return Answer(
                    response.status,
                    _lower(response.headers),
                    _read(response, limit, sink),
                )
        except urllib.error.HTTPError as exc:
            body = exc.read(64 * 1024) if exc.fp else b""
            return Answer(exc.code, _lower(exc.headers), body)
        except urllib.error.URLError as exc:
            reason = exc.reason
            return reason if isinstance(reason, OSError) else OSError(str(reason))
        # resets, timeouts while reading the body
        except (OSError, HTTPException) as exc:
            return exc


def _read(response: IO[bytes], limit: int, sink: Sink | None) -> bytes:
    """The body, at most `limit` bytes (TooLarge past that); with `sink`, written there instead."""
    if sink is not None:
        sink.reset()
    chunks, total = [], 0
    while chunk := response.read(min(64 * 1024, limit + 1 - total) or 1):
        total += len(chunk)
        if total > limit:
            raise TooLarge(f"more than {limit} bytes")
        if sink is not None:
            sink.write(chunk)
        else:
            chunks.append(chunk)
    return b"".join(chunks)


def _lower(headers: object) -> dict[str, str]:
    items = headers.items() if hasattr(headers, "items") else []
    return {str(k).lower(): str(v) for k, v in items}


def _auth(authorization: str | None) -> dict[str, str]:
    return {"Authorization": authorization} if authorization else {}
