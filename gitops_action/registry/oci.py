"""What a call to an OCI registry gives back, whoever made it: `flux` (push, tag, pull) or the
registry's HTTP API (`registry.Reader`). One set of types, so the pipeline never asks which."""

from __future__ import annotations

import gzip
import io
import shutil
import tarfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any, Literal

# "" for success; else what a caller does about it: missing (nothing at the tag), auth (a refused
# login: not retried), transient (retried with backoff), fatal (anything else).
Failure = Literal["", "missing", "auth", "transient", "fatal"]


@dataclass(frozen=True)
class Call:
    ok: bool
    failure: Failure
    error: str  # one line worth showing
    seconds: float


@dataclass(frozen=True)
class Pushed:
    call: Call
    digest: str = ""


@dataclass(frozen=True)
class Pulled:
    call: Call
    revision: str = ""
    digest: str = ""
    directory: Path | None = None
    # the manifest's (HTTP reads only)
    annotations: Mapping[str, str] = field(default_factory=dict)
    # what the tag holds when it is not a Flux artifact (HTTP reads only)
    foreign: str = ""
    # Every member of the layer, extracted or not (HTTP reads with content): a regular file by its
    # name, anything else as "NAME (KIND)". None: not known (flux pull lists only what it wrote).
    entries: tuple[str, ...] | None = None
    # The manifest's one layer (HTTP reads of a flux artifact): `Reader.content` fetches it by its
    # digest without reading the manifest again.
    layer: Mapping[str, object] | None = field(default=None, compare=False, repr=False)


class FluxOnly(Exception):
    """A read only `flux pull` does the way flux would (a cloud provider, a credential helper, an
    artifact flux did not push...): the registry reader hands it over, saying why. `layout`: what
    the manifest showed that is not one flux layer (flux pull extracts one layer of it: the content
    it shows is not the whole artifact, so it never counts as the same as a render)."""

    def __init__(self, message: str, layout: str = "") -> None:
        super().__init__(message)
        self.layout = layout


# --- what a tag holds -------------------------------------------------------------------------

INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
# Index types are asked for too: a registry answers 404 to a request that does not accept what the
# tag holds, and a multi-arch image at the tag must not read as a missing tag (it would be overwritten).
MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        *INDEX_TYPES,
    ]
)
FLUX_LAYER = "application/vnd.cncf.flux.content.v1.tar+gzip"
FLUX_CONFIG = "application/vnd.cncf.flux.config.v1+json"
KNOWN_CONFIGS = {
    "application/vnd.oci.image.config.v1+json": "a container image",
    "application/vnd.docker.container.image.v1+json": "a container image",
    "application/vnd.cncf.helm.config.v1+json": "a Helm chart",
}


def foreign(manifest: object, content_type: str) -> str:
    """What a tag holds when it is not a Flux artifact (an image, an image index, a Helm chart, an
    artifact of another tool), in words for the user; "" for a Flux artifact."""
    if not isinstance(manifest, dict):
        return "something that is not an OCI manifest"
    media = str(manifest.get("mediaType") or content_type.split(";", 1)[0].strip())
    if media in INDEX_TYPES or "manifests" in manifest:
        return f"a multi-arch image index ({media or 'no media type'})"
    config = manifest.get("config")
    kind = str(config.get("mediaType", "")) if isinstance(config, dict) else ""
    if kind == FLUX_CONFIG:
        return ""
    what = KNOWN_CONFIGS.get(kind, "an OCI artifact that is not a Flux artifact")
    artifact_type = manifest.get("artifactType")
    detail = f"config media type {kind or 'missing'}" + (
        f", artifact type {artifact_type}" if artifact_type else ""
    )
    return f"{what} ({detail})"


MiB = 1024 * 1024
# What a layer may unpack to: far above any rendered manifest stream, far below what a small gzip
# "bomb" (2 MB that expands to 2 GiB) would take.
MAX_UNPACKED = 256 * MiB


class BadLayer(Exception):
    """A layer that unpacks to more than it may, or is no gzip tar: refused, not handed on to flux."""


class _Capped(io.RawIOBase):
    """A stream that stops with BadLayer once more than `limit` bytes came out of it."""

    def __init__(self, inner: IO[bytes] | gzip.GzipFile, limit: int) -> None:
        self.inner, self.limit, self.count = inner, limit, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.inner.read(min(len(buffer), self.limit + 1 - self.count) or 1)
        self.count += len(data)
        if self.count > self.limit:
            raise BadLayer(f"it unpacks to more than {self.limit // MiB} MiB")
        buffer[: len(data)] = data
        return len(data)


def extract(layer: Path, out_dir: Path, limit: int = MAX_UNPACKED) -> tuple[str, ...]:
    """The layer's regular files under `out_dir`, like `flux pull -o`; links, devices and names that
    would leave the directory are skipped. Streamed: at most `limit` bytes of tar are unpacked
    (BadLayer past that), a file at a time, so memory stays small whatever the layer claims.
    Returns every member (see `Pulled.entries`): what is skipped here must still count when the
    content is compared with a render."""
    out_dir.mkdir(parents=True, exist_ok=True)
    entries: list[str] = []
    try:
        with layer.open("rb") as raw, gzip.GzipFile(fileobj=raw) as unzipped:
            capped = io.BufferedReader(_Capped(unzipped, limit), 64 * 1024)
            with tarfile.open(fileobj=capped, mode="r|") as tar:
                for member in tar:
                    name = PurePosixPath(member.name)
                    entries.append(
                        str(name) if member.isfile() else f"{name} ({_kind(member)})"
                    )
                    _extract_one(tar, member, out_dir)
    except (OSError, EOFError, tarfile.TarError, zlib.error) as exc:
        raise BadLayer(f"it is not a gzip tar ({type(exc).__name__}: {exc})") from exc
    return tuple(entries)


def _extract_one(tar: tarfile.TarFile, member: tarfile.TarInfo, out_dir: Path) -> None:
    name = PurePosixPath(member.name)
    if not member.isfile() or name.is_absolute() or ".." in name.parts:
        return
    source = tar.extractfile(member)
    if source is None:
        return
    target = out_dir.joinpath(*name.parts)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as out:
        shutil.copyfileobj(source, out, 64 * 1024)


def _kind(member: tarfile.TarInfo) -> str:
    if member.isdir():
        return "directory"
    if member.issym() or member.islnk():
        return "link"
    return "special file"
