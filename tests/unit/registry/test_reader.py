"""registry.reader: which references the HTTP reader reads itself (FluxOnly hands
the rest to flux), what a Flux artifact's manifest must look like, and errors in flux's words;
then reads over HTTP against a small registry stand-in on 127.0.0.1 (plain HTTP, as flux allows for
loopback): a Flux artifact read and checked as it arrives, the token dance with the login sent only
where it may go. Only reads that end without flux are exercised."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from gitops_action.registry.credentials import Credentials
from gitops_action.registry.flux import Flux
from gitops_action.registry.oci import FLUX_CONFIG, FLUX_LAYER, FluxOnly
from gitops_action.registry.reader import (
    REVISION,
    Reader,
    Reference,
    _describe,
    _error_codes,
    _flux_layer,
    _parsed,
)
from gitops_action.secrets import basic_auth


def test_reference_parse() -> None:
    assert Reference.parse("oci://localhost:5000/a/b:v1.2") == Reference(
        "localhost:5000", "a/b", "v1.2"
    )
    # the tag is after the last colon of the path, not the host's port
    assert Reference.parse("oci://r.io:443/x:y").tag == "y"


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("oci://r.io/repo", "not an oci://HOST/REPOSITORY:TAG"),
        ("oci://r.io/:tag", "not an oci://HOST/REPOSITORY:TAG"),
        ("oci:///repo:tag", "not an oci://HOST/REPOSITORY:TAG"),
        ("oci://r.io:5000", "not an oci://HOST/REPOSITORY:TAG"),
        ("oci://docker.io/library/app:1", "Docker Hub"),
        ("oci://index.docker.io/org/app:1", "Docker Hub"),
    ],
)
def test_references_left_to_flux(url: str, why: str) -> None:
    with pytest.raises(FluxOnly, match=why):
        Reference.parse(url)


def test_a_flux_layer() -> None:
    layer = {"mediaType": FLUX_LAYER, "digest": "sha256:" + "0" * 64, "size": 10}
    manifest = {"layers": [layer], "annotations": {"k": "v", "n": 1}}
    assert _flux_layer(manifest) == (layer, {"k": "v", "n": "1"})
    assert _flux_layer({"layers": [layer]}) == (layer, {})


@pytest.mark.parametrize(
    ("manifest", "why", "layout"),
    [
        ([], "not an image manifest", ""),
        ({"config": {}}, "not an image manifest", ""),
        ({"layers": []}, "not one layer", "0 layers"),
        ({"layers": [{"mediaType": FLUX_LAYER}] * 2}, "not one layer", "2 layers"),
        ({"layers": "x"}, "not one layer", "0 layers"),
        (
            {"layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip"}]},
            "not a flux artifact",
            "a layer of type application/vnd.oci.image.layer.v1.tar+gzip",
        ),
        (
            {"layers": [{"mediaType": FLUX_LAYER}], "annotations": ["x"]},
            "not a flux artifact",
            f"a layer of type {FLUX_LAYER}",
        ),
    ],
)
def test_other_layouts_are_left_to_flux(
    manifest: object, why: str, layout: str
) -> None:
    with pytest.raises(FluxOnly, match=why) as err:
        _flux_layer(manifest)
    assert err.value.layout == layout


def test_parsed() -> None:
    assert _parsed(b'{"a": 1}') == {"a": 1}
    with pytest.raises(FluxOnly, match="not an image manifest"):
        _parsed(b"<html>")


def test_describe_in_flux_words() -> None:
    assert (
        _describe(ConnectionRefusedError(111, "Connection refused"))
        == "connection refused"
    )
    assert _describe(ConnectionResetError()) == "connection reset by peer"
    assert _describe(TimeoutError("read timed out")) == "i/o timeout (read timed out)"
    assert _describe(OSError("boom")) == "OSError: boom"


def test_a_timeout_without_a_message() -> None:
    assert _describe(TimeoutError()) == "i/o timeout (timed out)"


def test_error_codes() -> None:
    body = (
        b'{"errors": [{"code": "MANIFEST_UNKNOWN"}, {"code": "NAME_UNKNOWN"}, "x", {}]}'
    )
    assert _error_codes(body) == ["MANIFEST_UNKNOWN", "NAME_UNKNOWN", ""]
    assert _error_codes(b"not json") == []
    assert _error_codes(b"[1]") == []
    assert _error_codes(b'{"errors": null}') == []


# --- over HTTP ---

REV = "main@sha1:" + "a" * 40
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def layer_bytes(files: dict[str, str]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, text in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(text.encode())
            tar.addfile(info, io.BytesIO(text.encode()))
    return gzip.compress(raw.getvalue(), mtime=0)


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Registry:
    """What the stand-in serves, and what it was asked."""

    manifests: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)
    login: tuple[str, str] | None = (
        None  # set: bearer auth with this Basic login at /token
    )
    realm: str = ""  # the realm the challenge names ("" = this server's /token)
    seen: list[tuple[str, str]] = field(default_factory=list)  # (path, Authorization)
    url: str = ""

    def artifact(
        self, tag: str, files: dict[str, str], *, size: int | None = None
    ) -> bytes:
        blob = layer_bytes(files)
        self.blobs[digest_of(blob)] = blob
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {
                    "mediaType": FLUX_CONFIG,
                    "digest": digest_of(b"{}"),
                    "size": 2,
                },
                "layers": [
                    {
                        "mediaType": FLUX_LAYER,
                        "digest": digest_of(blob),
                        "size": len(blob) if size is None else size,
                    }
                ],
                "annotations": {REVISION: REV, "timoni-flux-push.commit": "a" * 40},
            }
        ).encode()
        self.manifests[tag] = (manifest, OCI_MANIFEST)
        return manifest


def handler(reg: Registry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            auth = self.headers.get("Authorization", "")
            reg.seen.append((self.path, auth))
            if self.path.startswith("/token"):
                ok = reg.login is not None and auth == f"Basic {basic_auth(*reg.login)}"
                self.answer(200 if ok else 401, json.dumps({"token": "good"}).encode())
                return
            if self.path == "/v2/":
                self.answer(200, b"{}")
                return
            if reg.login is not None and auth != "Bearer good":
                realm = reg.realm or f"{reg.url}/token"
                self.answer(
                    401,
                    b'{"errors": [{"code": "UNAUTHORIZED"}]}',
                    {"WWW-Authenticate": f'Bearer realm="{realm}",service="stand-in"'},
                )
                return
            found = re.fullmatch(r"/v2/(.+)/(manifests|blobs)/([^/]+)", self.path)
            if found and found[2] == "manifests" and found[3] in reg.manifests:
                body, kind = reg.manifests[found[3]]
                self.answer(200, body, {"Content-Type": kind})
            elif found and found[2] == "blobs" and found[3] in reg.blobs:
                self.answer(200, reg.blobs[found[3]])
            else:
                self.answer(404, b'{"errors": [{"code": "MANIFEST_UNKNOWN"}]}')

        def answer(
            self, status: int, body: bytes, headers: dict[str, str] | None = None
        ) -> None:
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def registry() -> Iterator[Registry]:
    reg = Registry()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler(reg))
    reg.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield reg
    server.shutdown()
    server.server_close()


def reader(
    tmp_path: Path, login: tuple[str, str] | None = None, host: str = ""
) -> Reader:
    creds = Credentials(*login) if login else Credentials("", "")
    env = creds.docker_config({host} if login else set(), tmp_path)
    return Reader(Flux(env), timeout=10)


def url(reg: Registry, tag: str) -> str:
    return f"oci://{reg.url.removeprefix('http://')}/gitops/web:{tag}"


def test_a_flux_artifact(registry: Registry, tmp_path: Path) -> None:
    manifest = registry.artifact("prod", {"manifests.yaml": "a: 1\n"})
    pulled = reader(tmp_path).pull(url(registry, "prod"), tmp_path / "out")
    assert pulled.call.ok, pulled.call.error
    assert (pulled.revision, pulled.digest) == (REV, digest_of(manifest))
    assert pulled.annotations[REVISION] == REV
    assert pulled.entries == ("manifests.yaml",) and pulled.foreign == ""
    assert (tmp_path / "out/manifests.yaml").read_text() == "a: 1\n"


def test_without_content_then_the_content(registry: Registry, tmp_path: Path) -> None:
    registry.artifact("prod", {"manifests.yaml": "a: 1\n"})
    r = reader(tmp_path)
    held = r.pull(url(registry, "prod"), tmp_path / "out", content=False)
    assert held.call.ok and held.directory is None and held.layer is not None
    asked = len(registry.seen)
    full = r.content(url(registry, "prod"), held, tmp_path / "out")
    # only the layer is fetched: no second manifest read
    assert [p for p, _ in registry.seen[asked:]] == [
        f"/v2/gitops/web/blobs/{held.layer['digest']}"
    ]
    assert (full.digest, full.revision, full.entries) == (
        held.digest,
        REV,
        ("manifests.yaml",),
    )


def test_a_missing_tag(registry: Registry, tmp_path: Path) -> None:
    pulled = reader(tmp_path).pull(url(registry, "absent"), tmp_path / "out")
    assert (pulled.call.ok, pulled.call.failure) == (False, "missing")
    assert "404 MANIFEST_UNKNOWN" in pulled.call.error


def test_something_else_at_the_tag_is_foreign(
    registry: Registry, tmp_path: Path
) -> None:
    image = json.dumps(
        {
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json"},
            "layers": [],
        }
    ).encode()
    registry.manifests["prod"] = (image, OCI_MANIFEST)
    pulled = reader(tmp_path).pull(url(registry, "prod"), tmp_path / "out")
    assert pulled.call.ok and pulled.foreign.startswith("a container image")
    assert pulled.digest == digest_of(image)


def test_a_corrupted_layer_is_not_taken(registry: Registry, tmp_path: Path) -> None:
    registry.artifact("prod", {"manifests.yaml": "a: 1\n"})
    [name] = registry.blobs
    good = registry.blobs[name]
    registry.blobs[name] = bytes([good[0] ^ 1]) + good[1:]  # same size, other bytes
    pulled = reader(tmp_path).pull(url(registry, "prod"), tmp_path / "out")
    assert (pulled.call.ok, pulled.call.failure) == (False, "transient")
    assert pulled.call.error == f"layer {name} arrived corrupted"
    assert not (tmp_path / "out/manifests.yaml").exists()


def test_a_layer_larger_than_its_manifest_says_is_refused(
    registry: Registry, tmp_path: Path
) -> None:
    registry.artifact("prod", {"manifests.yaml": "a: 1\n" * 100}, size=10)
    [name] = registry.blobs
    pulled = reader(tmp_path).pull(url(registry, "prod"), tmp_path / "out")
    assert (pulled.call.ok, pulled.call.failure) == (False, "fatal")
    assert (
        pulled.call.error
        == f"layer {name} is larger than the 10 bytes its manifest says"
    )


def test_the_token_dance_sends_the_login_to_the_realm_only(
    registry: Registry, tmp_path: Path
) -> None:
    registry.login = ("ci", "pw")
    registry.artifact("prod", {"manifests.yaml": "a: 1\n"})
    host = Reference.parse(url(registry, "prod")).host
    pulled = reader(tmp_path, ("ci", "pw"), host).pull(
        url(registry, "prod"), tmp_path / "out"
    )
    assert pulled.call.ok, pulled.call.error
    basic = f"Basic {basic_auth('ci', 'pw')}"
    token_asks = [(p, a) for p, a in registry.seen if p.startswith("/token")]
    assert len(token_asks) == 1 and token_asks[0][1] == basic
    assert "scope=repository%3Agitops%2Fweb%3Apull" in token_asks[0][0]
    # the registry itself never sees the password, only the token
    assert all(
        a in ("", "Bearer good") for p, a in registry.seen if p.startswith("/v2/")
    )


def test_a_realm_flux_would_not_ask_is_not_asked(
    registry: Registry, tmp_path: Path
) -> None:
    """A challenge naming the cloud metadata address: no request goes there, no token comes."""
    registry.login = ("ci", "pw")
    registry.realm = "http://169.254.169.254/latest/meta-data"
    registry.artifact("prod", {"manifests.yaml": "a: 1\n"})
    ref = Reference.parse(url(registry, "prod"))
    r = reader(tmp_path, ("ci", "pw"), ref.host)
    answer = r._authorized_get(ref, "manifests/prod", OCI_MANIFEST, 1 << 20, None)
    assert getattr(answer, "status", None) == 401
    assert [p for p, _ in registry.seen if not p.startswith("/v2/")] == []
