"""Read what a tag holds straight from the registry's HTTP API (OCI distribution spec): the manifest,
and the one layer when its content is needed.

A run reads every tag it may push up to three times (alongside the render, right before the push,
after the run's pushes); as `flux pull` each read is a Go process costing ~25 ms of CPU, more than
the render. Here a read is one or two HTTP requests. Anything this reader does not handle the way
flux would goes to `flux pull` instead, so it never decides differently from flux: a cloud
`provider`, credential helpers, a refused read (flux may know credentials we do not), an artifact
`flux push` did not make.
"""

from __future__ import annotations

import hashlib
import json
import re
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from http.client import HTTPException
from pathlib import Path

from .credentials import basic_auth, docker_login
from .flux import Flux
from .hosts import address, may_be_plain_http, may_carry_credentials, realm_refused
from .keepalive import Connections, Reply
from .oci import FLUX_LAYER, MANIFEST_TYPES, Call, Failure, FluxOnly, Pulled, extract, foreign

REVISION = "org.opencontainers.image.revision"
USER_AGENT = "timoni-flux-push"
MAX_MANIFEST = 4 * 1024 * 1024  # the distribution spec's own limit for a manifest


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class Reference:
    host: str
    repository: str
    tag: str

    @classmethod
    def parse(cls, url: str) -> Reference:
        rest = url.removeprefix("oci://")
        host, _, path = rest.partition("/")
        repository, _, tag = path.rpartition(":")
        if not (host and repository and tag) or "/" in tag:
            raise FluxOnly(f"not an oci://HOST/REPOSITORY:TAG reference: {url}")
        if host in ("docker.io", "index.docker.io"):
            raise FluxOnly("Docker Hub: its API host and login names differ from the reference's")
        return cls(host, repository, tag)


_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Token requests follow no redirect: flux checks each hop against the realm rules; a redirected
    token request is left to it."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


@dataclass
class Reader:
    """Reads for one run: the scheme each host answers on and the logins that worked are kept."""

    flux: Flux
    timeout: float = 60.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _schemes: dict[str, str] = field(default_factory=dict, repr=False)
    _probing: dict[str, threading.Lock] = field(default_factory=dict, repr=False)
    _openers: dict[tuple[bool, bool, bool], urllib.request.OpenerDirector] = field(
        default_factory=dict, repr=False
    )
    # Authorization that worked, by (host, repository); Basic logins by (host, "").
    _auth: dict[tuple[str, str], str] = field(default_factory=dict, repr=False)
    _logins: dict[str, tuple[str, str] | None] = field(default_factory=dict, repr=False)
    _kept: Connections | None = field(default=None, repr=False)

    def pull(self, url: str, out_dir: Path, *, content: bool = True) -> Pulled:
        """What `flux pull` says about the tag: revision, digest and (with `content`) the layer's files
        in `out_dir`. A refused or unusual read is left to flux."""
        if self.flux.provider != "generic":
            return self._by_flux(url, out_dir)
        start = time.monotonic()
        try:
            pulled = self._pull(Reference.parse(url), out_dir, content, start)
        except FluxOnly as why:
            by_flux = self._by_flux(url, out_dir)
            if why.layout and by_flux.call.ok:  # not the whole artifact: never "the same content"
                return replace(by_flux, entries=(f"({why.layout})",))
            return by_flux
        if pulled.call.failure in ("auth", "fatal"):
            return self._by_flux(url, out_dir)  # flux's answer is the one to report
        return pulled

    def _by_flux(self, url: str, out_dir: Path) -> Pulled:
        return self.flux.pull(url, out_dir)

    def _pull(self, ref: Reference, out_dir: Path, content: bool, start: float) -> Pulled:
        got = self._get(ref, f"manifests/{ref.tag}", accept=MANIFEST_TYPES)
        if isinstance(got, Call):
            return Pulled(got)
        if len(got.body) > MAX_MANIFEST:
            raise FluxOnly("manifest too large")
        try:
            manifest = json.loads(got.body)
        except ValueError as exc:
            raise FluxOnly("not an image manifest") from exc
        held = foreign(manifest, got.headers.get("content-type", ""))
        if held:  # not ours to read, and above all not ours to overwrite
            return Pulled(
                self._ok(start), digest="sha256:" + hashlib.sha256(got.body).hexdigest(), foreign=held
            )
        try:
            layers = manifest["layers"]
            annotations = manifest.get("annotations") or {}
        except (KeyError, TypeError) as exc:
            raise FluxOnly("not an image manifest") from exc
        if not (isinstance(layers, list) and len(layers) == 1 and isinstance(layers[0], dict)):
            count = len(layers) if isinstance(layers, list) else 0
            raise FluxOnly("not one layer", layout=f"{count} layers")
        if layers[0].get("mediaType") != FLUX_LAYER or not isinstance(annotations, dict):
            raise FluxOnly("not a flux artifact", layout=f"a layer of type {layers[0].get('mediaType')}")
        digest = "sha256:" + hashlib.sha256(got.body).hexdigest()
        notes = {str(k): str(v) for k, v in annotations.items()}
        revision = notes.get(REVISION, "")
        if not content:
            return Pulled(self._ok(start), revision, digest, annotations=notes)
        layer = str(layers[0].get("digest", ""))
        blob = self._get(ref, f"blobs/{layer}", accept="*/*")
        if isinstance(blob, Call):
            return Pulled(blob)
        algorithm, _, hexdigest = layer.partition(":")
        if algorithm != "sha256" or hashlib.sha256(blob.body).hexdigest() != hexdigest:
            return Pulled(self._failed("transient", f"layer {layer} arrived corrupted", start))
        entries = extract(blob.body, out_dir)
        return Pulled(self._ok(start), revision, digest, out_dir, notes, entries=entries)

    # --- HTTP ------------------------------------------------------------------------------------
    def _get(self, ref: Reference, path: str, *, accept: str) -> Answer | Call:
        """GET /v2/REPOSITORY/PATH, answering the registry's auth challenge once. A transient
        failure is tried once more at once (flux retries inside its own call too), but not a
        timeout: that already took the whole `timeout`."""
        start = time.monotonic()
        for attempt in (1, 2):
            answer = self._authorized_get(ref, path, accept)
            if isinstance(answer, Answer) and answer.status == 200:
                return answer
            call = self._classify(answer, ref, path, start)
            if call.failure != "transient" or attempt == 2 or isinstance(answer, TimeoutError):
                return call
            time.sleep(0.2)
        raise AssertionError("unreachable")

    def _authorized_get(self, ref: Reference, path: str, accept: str) -> Answer | OSError | HTTPException:
        url = f"{self._scheme(ref.host)}://{ref.host}/v2/{ref.repository}/{path}"
        # What answered the last challenge is sent again at once: one request per read, not two.
        with self._lock:
            known = self._auth.get((ref.host, ref.repository)) or self._auth.get((ref.host, ""))
        answer = self._request(url, accept, known)
        if not (isinstance(answer, Answer) and answer.status == 401):
            return answer
        challenge = answer.headers.get("www-authenticate", "")
        kind = challenge.split(" ", 1)[0].lower()
        login = self._login(ref.host)
        if login and not may_carry_credentials(url):
            login = None
        if kind == "basic" and login:
            header, scope = f"Basic {basic_auth(*login)}", ""
        elif kind == "bearer":
            token = self._token(ref, dict(_CHALLENGE.findall(challenge)), login)
            if token is None:
                return answer
            header, scope = f"Bearer {token}", ref.repository
        else:
            return answer
        again = self._request(url, accept, header)
        if isinstance(again, Answer) and again.status != 401:
            with self._lock:
                self._auth[(ref.host, scope)] = header
        return again

    def _token(self, ref: Reference, params: dict[str, str], login: tuple[str, str] | None) -> str | None:
        realm = params.pop("realm", "")
        if realm_refused(realm, ref.host, self._scheme(ref.host)):
            return None  # flux refuses it too (and says so: the read goes to flux)
        params["scope"] = f"repository:{ref.repository}:pull"
        auth = f"Basic {basic_auth(*login)}" if login and may_carry_credentials(realm) else None
        url = f"{realm}{'&' if '?' in realm else '?'}{urllib.parse.urlencode(params)}"
        answer = self._request(url, "application/json", auth, follow=False)
        if not (isinstance(answer, Answer) and answer.status == 200):
            return None
        try:
            data = json.loads(answer.body)
            token = str(data.get("token") or data.get("access_token") or "")
        except (ValueError, AttributeError):
            return None
        return token or None

    def _login(self, host: str) -> tuple[str, str] | None:
        with self._lock:
            if host not in self._logins:
                self._logins[host] = docker_login(host, self.flux.env)
            return self._logins[host]

    def _scheme(self, host: str) -> str:
        with self._lock:
            probing = self._probing.setdefault(host, threading.Lock())
        with probing:  # one probe per host, however many targets ask at once
            if host not in self._schemes:
                self._schemes[host] = self._probe(host)
            return self._schemes[host]

    def _probe(self, host: str) -> str:
        scheme = "https"
        if may_be_plain_http(host):
            # flux tries HTTPS first, then plain HTTP. One port speaks one of them, so asking in plain
            # HTTP first finds the same scheme (TLS servers answer plain HTTP with 400), and skips
            # loading the CA bundle for a plain local registry. The probe carries no credentials.
            probe = self._request(f"http://{host}/v2/", "application/json", None)
            if isinstance(probe, Answer) and probe.status != 400:
                scheme = "http"
        return scheme

    def _opener(self, scheme: str, host: str, follow: bool = True) -> urllib.request.OpenerDirector:
        """One opener per kind of connection for the run: building one, and above all loading the CA
        bundle for TLS, costs more CPU than a local request."""
        ip = address(host)
        # Like Go: a proxy from the environment, but never for a loopback address.
        direct = ip is not None and ip.is_loopback
        key = (scheme == "https", direct, follow)
        with self._lock:
            if key not in self._openers:
                handlers: list[urllib.request.BaseHandler] = [] if follow else [_NoRedirect()]
                if direct:
                    handlers.append(urllib.request.ProxyHandler({}))
                if scheme == "https":
                    handlers.append(urllib.request.HTTPSHandler(context=ssl.create_default_context()))
                self._openers[key] = urllib.request.build_opener(*handlers)
            return self._openers[key]

    def _request(
        self, url: str, accept: str, authorization: str | None, follow: bool = True
    ) -> Answer | OSError | HTTPException:
        if accept == MANIFEST_TYPES and follow:  # the hot path: every tag is read at least once
            if self._kept is None:
                self._kept = Connections(self.timeout, MAX_MANIFEST)
            kept = self._kept.get(url, {"Accept": accept, "User-Agent": USER_AGENT, **_auth(authorization)})
            if isinstance(kept, Reply):
                return Answer(kept.status, kept.headers, kept.body)
            if kept is not None:
                return kept
        request = urllib.request.Request(url, headers={"Accept": accept, "User-Agent": USER_AGENT})
        if authorization:  # not sent on to a redirect (a blob in cloud storage has its own signature)
            request.add_unredirected_header("Authorization", authorization)
        parts = urllib.parse.urlsplit(url)
        opener = self._opener(parts.scheme, parts.netloc, follow)
        try:
            with opener.open(request, timeout=self.timeout) as response:
                return Answer(response.status, _lower(response.headers), response.read())
        except urllib.error.HTTPError as exc:
            body = exc.read(64 * 1024) if exc.fp else b""
            return Answer(exc.code, _lower(exc.headers), body)
        except urllib.error.URLError as exc:
            reason = exc.reason
            return reason if isinstance(reason, OSError) else OSError(str(reason))
        except (OSError, HTTPException) as exc:  # resets, timeouts while reading the body
            return exc

    def _classify(
        self, answer: Answer | OSError | HTTPException, ref: Reference, path: str, start: float
    ) -> Call:
        where = f"GET {ref.host}/v2/{ref.repository}/{path}"
        if not isinstance(answer, Answer):
            return self._failed("transient", f"{where}: {_describe(answer)}", start)
        codes = _error_codes(answer.body)
        said = f"{where}: {answer.status} {' '.join(codes)}".strip()
        if answer.status == 404:
            return self._failed("missing", f"{said} (manifest unknown)", start)
        if answer.status in (401, 403):
            return self._failed("auth", said, start)
        if answer.status == 429 or answer.status >= 500:
            return self._failed("transient", said, start)
        return self._failed("fatal", said, start)

    @staticmethod
    def _ok(start: float) -> Call:
        return Call(True, "", "", time.monotonic() - start)

    @staticmethod
    def _failed(failure: Failure, error: str, start: float) -> Call:
        return Call(False, failure, error, time.monotonic() - start)


def _describe(exc: OSError | HTTPException) -> str:
    """In the words flux (Go) uses, which is what users search for."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset by peer"
    if isinstance(exc, TimeoutError):
        return "i/o timeout (timed out)"
    return f"{type(exc).__name__}: {exc}"


def _lower(headers: object) -> dict[str, str]:
    items = headers.items() if hasattr(headers, "items") else []
    return {str(k).lower(): str(v) for k, v in items}


def _error_codes(body: bytes) -> list[str]:
    try:
        errors = json.loads(body).get("errors") or []
        return [str(e.get("code", "")) for e in errors if isinstance(e, dict)]
    except (ValueError, AttributeError):
        return []


def _auth(authorization: str | None) -> dict[str, str]:
    return {"Authorization": authorization} if authorization else {}
