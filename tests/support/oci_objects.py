"""Objects that are not Flux artifacts (a container image, a multi-arch image index, a Helm chart),
built by hand and pushed over the registry's HTTP API (OCI distribution spec: blob upload, then
manifest PUT), so a test can put at a tag what other tools put there."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import tarfile
import urllib.error
import urllib.request
from typing import Any

from .registry import Registry

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
IMAGE_CONFIG = "application/vnd.oci.image.config.v1+json"
IMAGE_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_LAYER = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"


def _send(
    registry: Registry, method: str, path: str, body: bytes, content_type: str
) -> tuple[int, Any]:
    url = (
        path
        if path.startswith("http")
        else f"{registry.scheme}://{registry.host}{path}"
    )
    req = urllib.request.Request(
        url, data=body, method=method, headers={"Content-Type": content_type}
    )
    if registry.auth:
        token = base64.b64encode(
            f"{registry.auth[0]}:{registry.auth[1]}".encode()
        ).decode()
        req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(
            req, timeout=10, context=registry._context()
        ) as resp:
            return resp.status, resp.headers
    except urllib.error.HTTPError as err:
        raise AssertionError(
            f"{method} {path}: {err.code} {err.read()[:300]!r}"
        ) from err


def push_blob(registry: Registry, repository: str, data: bytes) -> dict[str, Any]:
    """Upload a blob (POST then PUT with the digest); returns its descriptor without mediaType."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    status, headers = _send(
        registry, "POST", f"/v2/{repository}/blobs/uploads/", b"", "application/json"
    )
    assert status == 202, status
    location = headers["Location"]
    if not location.startswith("http"):
        location = f"{registry.scheme}://{registry.host}{location}"
    sep = "&" if "?" in location else "?"
    status, _ = _send(
        registry,
        "PUT",
        f"{location}{sep}digest={digest}",
        data,
        "application/octet-stream",
    )
    assert status == 201, status
    return {"digest": digest, "size": len(data)}


def push_manifest(
    registry: Registry, repository: str, tag: str, manifest: dict[str, Any]
) -> str:
    body = json.dumps(manifest).encode()
    status, headers = _send(
        registry,
        "PUT",
        f"/v2/{repository}/manifests/{tag}",
        body,
        manifest["mediaType"],
    )
    assert status == 201, status
    return str(headers["Docker-Content-Digest"])


def _tgz(name: str, content: bytes) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    return gzip.compress(raw.getvalue(), mtime=0)


def image_manifest(
    registry: Registry, repository: str, arch: str = "amd64"
) -> dict[str, Any]:
    """A one-layer container image's manifest (blobs uploaded, manifest not pushed)."""
    config = json.dumps(
        {
            "architecture": arch,
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": []},
        }
    ).encode()
    layer = _tgz("hello.txt", f"an image for {arch}\n".encode())
    return {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": IMAGE_CONFIG,
            **push_blob(registry, repository, config),
        },
        "layers": [
            {"mediaType": IMAGE_LAYER, **push_blob(registry, repository, layer)}
        ],
    }


def push_image(registry: Registry, repository: str, tag: str) -> str:
    return push_manifest(
        registry, repository, tag, image_manifest(registry, repository)
    )


def push_index(registry: Registry, repository: str, tag: str) -> str:
    """A multi-arch image: an OCI index over two image manifests pushed by digest."""
    entries = []
    for arch in ("amd64", "arm64"):
        manifest = image_manifest(registry, repository, arch)
        body = json.dumps(manifest).encode()
        digest = push_manifest(
            registry, repository, "sha256:" + hashlib.sha256(body).hexdigest(), manifest
        )
        entries.append(
            {
                "mediaType": OCI_MANIFEST,
                "digest": digest,
                "size": len(body),
                "platform": {"architecture": arch, "os": "linux"},
            }
        )
    return push_manifest(
        registry,
        repository,
        tag,
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries},
    )


def push_helm_chart(registry: Registry, repository: str, tag: str) -> str:
    """What `helm push` stores: a Helm config and one chart layer."""
    config = json.dumps(
        {"name": "webapp", "version": "1.0.0", "apiVersion": "v2"}
    ).encode()
    chart = _tgz("webapp/Chart.yaml", b"apiVersion: v2\nname: webapp\nversion: 1.0.0\n")
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": HELM_CONFIG, **push_blob(registry, repository, config)},
        "layers": [{"mediaType": HELM_LAYER, **push_blob(registry, repository, chart)}],
    }
    return push_manifest(registry, repository, tag, manifest)


def push_foreign_flux_layer(registry: Registry, repository: str, tag: str) -> str:
    """A flux content layer under a config media type that is not flux's (another tool's artifact)."""
    config = b"{}"
    layer = _tgz(
        "manifests.yaml", b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n"
    )
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.thing.v1",
        "config": {
            "mediaType": "application/vnd.example.config.v1+json",
            **push_blob(registry, repository, config),
        },
        "layers": [
            {
                "mediaType": "application/vnd.cncf.flux.content.v1.tar+gzip",
                **push_blob(registry, repository, layer),
            }
        ],
    }
    return push_manifest(registry, repository, tag, manifest)


FLUX_CONFIG = "application/vnd.cncf.flux.config.v1+json"
FLUX_LAYER = "application/vnd.cncf.flux.content.v1.tar+gzip"


def gzip_bomb(unpacked: int) -> bytes:
    """A gzip tar holding one `manifests.yaml` of `unpacked` zero bytes (a multiple of 1 MiB): about
    a thousandth of that compressed (1 GiB -> ~1 MB). Gzip members one after the other unpack as one
    stream, so one compressed MiB of zeros is repeated rather than compressing the whole."""
    mib = 1 << 20
    assert unpacked % mib == 0
    info = tarfile.TarInfo("manifests.yaml")
    info.size = unpacked
    zeros = gzip.compress(bytes(mib), compresslevel=9, mtime=0)
    head = gzip.compress(info.tobuf(format=tarfile.GNU_FORMAT), mtime=0)
    return head + zeros * (unpacked // mib) + gzip.compress(bytes(1024), mtime=0)


def push_flux_artifact(
    registry: Registry,
    repository: str,
    tag: str,
    layer: bytes,
    annotations: dict[str, str],
) -> str:
    """A Flux artifact as `flux push artifact` lays it out, around any layer bytes."""
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": FLUX_CONFIG, **push_blob(registry, repository, b"{}")},
        "layers": [{"mediaType": FLUX_LAYER, **push_blob(registry, repository, layer)}],
        "annotations": annotations,
    }
    return push_manifest(registry, repository, tag, manifest)
