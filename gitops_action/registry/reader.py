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
import threading
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from http.client import HTTPException
from pathlib import Path
from typing import Any

from gitops_action.registry.credentials import docker_login
from gitops_action.registry.flux import Flux
from gitops_action.registry.hosts import (
    may_be_plain_http,
    may_carry_credentials,
    realm_refused,
)
from gitops_action.registry.oci import (
    FLUX_LAYER,
    MANIFEST_TYPES,
    BadLayer,
    Call,
    Failure,
    FluxOnly,
    MiB,
    Pulled,
    extract,
    foreign,
)
from gitops_action.registry.transport import (
    MAX_BODY,
    MAX_MANIFEST,
    Answer,
    Sink,
    TooLarge,
    Transport,
)
from gitops_action.registry.transport import (
    USER_AGENT as USER_AGENT,  # what the tests look for in a registry log
)
from gitops_action.secrets import basic_auth

REVISION = "org.opencontainers.image.revision"
# a layer's compressed size; its unpacked size is capped in oci.extract
MAX_LAYER = 64 * MiB


class Refused(Exception):
    """What the tag holds is not read, whoever reads it (a layer too large, or not the one the
    manifest names): the target fails with this message; flux is not asked to read it instead."""


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
            raise FluxOnly(
                "Docker Hub: its API host and login names differ from the reference's"
            )
        return cls(host, repository, tag)


def _parsed(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError as exc:
        raise FluxOnly("not an image manifest") from exc


def _flux_layer(manifest: Any) -> tuple[Mapping[str, object], dict[str, str]]:
    """A Flux artifact's one layer and its annotations; FluxOnly for any other layout."""
    try:
        layers = manifest["layers"]
        annotations = manifest.get("annotations") or {}
    except (KeyError, TypeError) as exc:
        raise FluxOnly("not an image manifest") from exc
    if not (
        isinstance(layers, list) and len(layers) == 1 and isinstance(layers[0], dict)
    ):
        count = len(layers) if isinstance(layers, list) else 0
        raise FluxOnly("not one layer", layout=f"{count} layers")
    if layers[0].get("mediaType") != FLUX_LAYER or not isinstance(annotations, dict):
        raise FluxOnly(
            "not a flux artifact",
            layout=f"a layer of type {layers[0].get('mediaType')}",
        )
    return layers[0], {str(k): str(v) for k, v in annotations.items()}


_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')


@dataclass
class Reader:
    """Reads for one run: the scheme each host answers on and the logins that worked are kept."""

    flux: Flux
    timeout: float = 60.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _schemes: dict[str, str] = field(default_factory=dict, repr=False)
    _probing: dict[str, threading.Lock] = field(default_factory=dict, repr=False)
    # Authorization that worked, by (host, repository); Basic logins by (host, "").
    _auth: dict[tuple[str, str], str] = field(default_factory=dict, repr=False)
    _logins: dict[str, tuple[str, str] | None] = field(default_factory=dict, repr=False)
    _http: Transport = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._http = Transport(self.timeout)

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
            # not the whole artifact: never "the same content"
            if why.layout and by_flux.call.ok:
                return replace(by_flux, entries=(f"({why.layout})",))
            return by_flux
        except Refused as exc:
            return Pulled(self._failed("fatal", str(exc), start))
        if pulled.call.failure in ("auth", "fatal"):
            return self._by_flux(url, out_dir)  # flux's answer is the one to report
        return pulled

    def content(self, url: str, held: Pulled, out_dir: Path) -> Pulled:
        """`pull(url, out_dir)` for a tag just read without its content (`held`): the layer of the
        manifest that read found, fetched by its digest (checked as it arrives), without asking for
        the manifest again. What `held` says about the tag (digest, revision, annotations) stays
        that read's: the caller's snapshot of the tag, taken moments before. Anything else (a read
        by flux, a failed one, a layer that does not come) is read again in full, as before."""
        if held.layer is None or not held.call.ok or held.directory is not None:
            return self.pull(url, out_dir)
        start = time.monotonic()
        try:
            entries = self._layer(Reference.parse(url), held.layer, out_dir)
        except FluxOnly:
            return self.pull(url, out_dir)
        except Refused as exc:
            return Pulled(self._failed("fatal", str(exc), start))
        if isinstance(entries, Call):  # the layer did not come: read it all, as before
            return self.pull(url, out_dir)
        return replace(held, call=self._ok(start), directory=out_dir, entries=entries)

    def _by_flux(self, url: str, out_dir: Path) -> Pulled:
        return self.flux.pull(url, out_dir)

    def _pull(
        self, ref: Reference, out_dir: Path, content: bool, start: float
    ) -> Pulled:
        got = self._manifest(ref)
        if isinstance(got, Call):
            return Pulled(got)
        manifest = _parsed(got.body)
        digest = "sha256:" + hashlib.sha256(got.body).hexdigest()
        held = foreign(manifest, got.headers.get("content-type", ""))
        if held:  # not ours to read, and above all not ours to overwrite
            return Pulled(self._ok(start), digest=digest, foreign=held)
        layer, notes = _flux_layer(manifest)
        revision = notes.get(REVISION, "")
        if not content:
            return Pulled(
                self._ok(start), revision, digest, annotations=notes, layer=layer
            )
        entries = self._layer(ref, layer, out_dir)
        if isinstance(entries, Call):
            return Pulled(self._failed(entries.failure, entries.error, start))
        return Pulled(
            self._ok(start), revision, digest, out_dir, notes, entries=entries
        )

    def _manifest(self, ref: Reference) -> Answer | Call:
        """The tag's manifest, at most MAX_MANIFEST bytes (a larger one is left to flux)."""
        try:
            got = self._get(
                ref, f"manifests/{ref.tag}", accept=MANIFEST_TYPES, limit=MAX_MANIFEST
            )
        except TooLarge as exc:
            raise FluxOnly("manifest too large") from exc
        if isinstance(got, Answer) and len(got.body) > MAX_MANIFEST:
            raise FluxOnly("manifest too large")
        return got

    def _layer(
        self, ref: Reference, layer: Mapping[str, object], out_dir: Path
    ) -> Call | tuple[str, ...]:
        """The layer's files in `out_dir` (every member's name returned), or why not: streamed to a
        file, no more bytes than the manifest's `size` (itself capped), checked against its digest,
        unpacked with a cap."""
        name, size = str(layer.get("digest", "")), layer.get("size")
        algorithm, _, hexdigest = name.partition(":")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise Refused(f"layer {name}: the manifest gives no size")
        if size > MAX_LAYER:
            raise Refused(
                f"layer {name} is {size} bytes, more than the {MAX_LAYER // MiB} MiB this action reads"
            )
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir.parent / f".{out_dir.name}.layer"
        try:
            with path.open("w+b") as fh:
                sink = Sink(fh)
                try:
                    blob = self._get(
                        ref, f"blobs/{name}", accept="*/*", limit=size, sink=sink
                    )
                except TooLarge as exc:
                    raise Refused(
                        f"layer {name} is larger than the {size} bytes its manifest says"
                    ) from exc
            if isinstance(blob, Call):
                return blob
            if (
                algorithm != "sha256"
                or sink.count != size
                or sink.hasher.hexdigest() != hexdigest
            ):
                return Call(False, "transient", f"layer {name} arrived corrupted", 0.0)
            try:
                return extract(path, out_dir)
            except BadLayer as exc:
                raise Refused(f"layer {name} not read: {exc}") from exc
        finally:
            path.unlink(missing_ok=True)

    # --- HTTP ------------------------------------------------------------------------------------
    def _get(
        self,
        ref: Reference,
        path: str,
        *,
        accept: str,
        limit: int = MAX_BODY,
        sink: Sink | None = None,
    ) -> Answer | Call:
        """GET /v2/REPOSITORY/PATH, answering the registry's auth challenge once. A transient
        failure is tried once more at once (flux retries inside its own call too), but not a
        timeout: that already took the whole `timeout`. At most `limit` bytes (TooLarge)."""
        start = time.monotonic()
        for attempt in (1, 2):
            answer = self._authorized_get(ref, path, accept, limit, sink)
            if isinstance(answer, Answer) and answer.status == 200:
                return answer
            call = self._classify(answer, ref, path, start)
            if (
                call.failure != "transient"
                or attempt == 2
                or isinstance(answer, TimeoutError)
            ):
                return call
            time.sleep(0.2)
        raise AssertionError("unreachable")

    def _authorized_get(
        self, ref: Reference, path: str, accept: str, limit: int, sink: Sink | None
    ) -> Answer | OSError | HTTPException:
        url = f"{self._scheme(ref.host)}://{ref.host}/v2/{ref.repository}/{path}"
        # What answered the last challenge is sent again at once: one request per read, not two.
        with self._lock:
            known = self._auth.get((ref.host, ref.repository)) or self._auth.get(
                (ref.host, "")
            )
        answer = self._http.request(url, accept, known, limit=limit, sink=sink)
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
        again = self._http.request(url, accept, header, limit=limit, sink=sink)
        if isinstance(again, Answer) and again.status != 401:
            with self._lock:
                self._auth[(ref.host, scope)] = header
        return again

    def _token(
        self, ref: Reference, params: dict[str, str], login: tuple[str, str] | None
    ) -> str | None:
        realm = params.pop("realm", "")
        if realm_refused(realm, ref.host, self._scheme(ref.host)):
            return None  # flux refuses it too (and says so: the read goes to flux)
        params["scope"] = f"repository:{ref.repository}:pull"
        auth = (
            f"Basic {basic_auth(*login)}"
            if login and may_carry_credentials(realm)
            else None
        )
        url = f"{realm}{'&' if '?' in realm else '?'}{urllib.parse.urlencode(params)}"
        try:
            answer = self._http.request(url, "application/json", auth, follow=False)
        except TooLarge:
            return None
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
            try:
                probe: Answer | OSError | HTTPException = self._http.request(
                    f"http://{host}/v2/", "application/json", None
                )
            except TooLarge:
                probe = Answer(200, {}, b"")  # it answered in plain HTTP
            if isinstance(probe, Answer) and probe.status != 400:
                scheme = "http"
        return scheme

    def _classify(
        self,
        answer: Answer | OSError | HTTPException,
        ref: Reference,
        path: str,
        start: float,
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
        return f"i/o timeout ({str(exc) or 'timed out'})"
    return f"{type(exc).__name__}: {exc}"


def _error_codes(body: bytes) -> list[str]:
    try:
        errors = json.loads(body).get("errors") or []
        return [str(e.get("code", "")) for e in errors if isinstance(e, dict)]
    except (ValueError, AttributeError):
        return []
