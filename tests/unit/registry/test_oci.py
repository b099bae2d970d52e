"""registry.oci: what a tag holds when it is not a Flux artifact, and the bounded, contained
extraction of a layer (like `flux pull -o`, but never outside the directory, never unbounded)."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import pytest

from gitops_action.registry.oci import (
    FLUX_CONFIG,
    BadLayer,
    MiB,
    extract,
    foreign,
)


def test_a_flux_artifact_is_not_foreign() -> None:
    manifest = {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": FLUX_CONFIG},
    }
    assert foreign(manifest, "") == ""


def test_foreign_kinds() -> None:
    assert foreign([], "") == "something that is not an OCI manifest"
    index = "application/vnd.oci.image.index.v1+json"
    assert foreign({"mediaType": index}, "") == f"a multi-arch image index ({index})"
    # no mediaType in the body: the Content-Type header's, without its parameters
    docker_list = "application/vnd.docker.distribution.manifest.list.v2+json"
    assert (
        foreign({"manifests": []}, f"{docker_list}; charset=utf-8")
        == f"a multi-arch image index ({docker_list})"
    )
    assert foreign({"manifests": []}, "") == "a multi-arch image index (no media type)"
    image = "application/vnd.oci.image.config.v1+json"
    assert (
        foreign({"config": {"mediaType": image}}, "")
        == f"a container image (config media type {image})"
    )
    helm = "application/vnd.cncf.helm.config.v1+json"
    assert foreign({"config": {"mediaType": helm}}, "").startswith("a Helm chart (")
    assert foreign({"artifactType": "application/x-sbom"}, "") == (
        "an OCI artifact that is not a Flux artifact "
        "(config media type missing, artifact type application/x-sbom)"
    )


def layer(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for info, data in members:
            info.size = len(data) if info.isfile() else 0
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    path.write_bytes(gzip.compress(buf.getvalue()))
    return path


def member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


def test_extract_writes_regular_files_and_lists_every_member(tmp_path: Path) -> None:
    out = tmp_path / "out"
    entries = extract(
        layer(
            tmp_path / "l.tgz",
            [
                (member("a.yaml"), b"a: 1\n"),
                (member("sub", tarfile.DIRTYPE), b""),
                (member("sub/b.yaml"), b"b: 2\n"),
                (member("link", tarfile.SYMTYPE, "/etc/passwd"), b""),
                (member("hard", tarfile.LNKTYPE, "a.yaml"), b""),
                (member("fifo", tarfile.FIFOTYPE), b""),
            ],
        ),
        out,
    )
    assert entries == (
        "a.yaml",
        "sub (directory)",
        "sub/b.yaml",
        "link (link)",
        "hard (link)",
        "fifo (special file)",
    )
    assert (out / "a.yaml").read_bytes() == b"a: 1\n"
    assert (out / "sub" / "b.yaml").read_bytes() == b"b: 2\n"
    # links and special files are never made
    assert sorted(p.name for p in out.iterdir()) == ["a.yaml", "sub"]


def test_names_that_leave_the_directory_are_listed_but_not_written(
    tmp_path: Path,
) -> None:
    out = tmp_path / "deep" / "out"
    entries = extract(
        layer(
            tmp_path / "l.tgz",
            [
                (member("../escaped.yaml"), b"x"),
                (member("ok/../../also-escaped.yaml"), b"x"),
                (member(str(tmp_path / "absolute.yaml")), b"x"),
            ],
        ),
        out,
    )
    assert len(entries) == 3 and entries[0] == "../escaped.yaml"
    assert list(out.iterdir()) == []
    assert not (tmp_path / "deep" / "escaped.yaml").exists()
    assert not (tmp_path / "deep" / "also-escaped.yaml").exists()
    assert not (tmp_path / "absolute.yaml").exists()


def test_a_layer_unpacking_past_the_limit_is_refused(tmp_path: Path) -> None:
    bomb = layer(tmp_path / "l.tgz", [(member("zeros"), bytes(2 * MiB))])
    assert bomb.stat().st_size < MiB // 10  # small on the wire
    with pytest.raises(BadLayer, match="more than 1 MiB"):
        extract(bomb, tmp_path / "out", limit=MiB)
    # the same layer under a larger limit is fine
    assert extract(bomb, tmp_path / "out2", limit=3 * MiB) == ("zeros",)
    assert (tmp_path / "out2" / "zeros").stat().st_size == 2 * MiB


@pytest.mark.parametrize(
    "content", [b"not gzip at all", gzip.compress(b"gzip, but no tar" * 64)]
)
def test_not_a_gzip_tar(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "l.tgz"
    bad.write_bytes(content)
    with pytest.raises(BadLayer, match="not a gzip tar"):
        extract(bad, tmp_path / "out")
