"""Issue 2: the real tools and the real registry, driven directly (no action code)."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

from conftest import TOOLS, GitRepo
from support.registry import Registry

TOOLS_VERSIONS = Path(__file__).resolve().parents[2] / "tools" / "versions.env"


def pinned() -> dict[str, str]:
    pairs = [
        ln.split("=", 1)
        for ln in TOOLS_VERSIONS.read_text().splitlines()
        if "=" in ln and not ln.startswith("#")
    ]
    return {k: v for k, v in pairs}


def test_tools_are_the_pinned_versions() -> None:
    versions = pinned()
    timoni = subprocess.run(
        [str(TOOLS / "timoni"), "version"], capture_output=True, text=True, check=True
    )
    assert f"client: {versions['TIMONI_VERSION']}" in timoni.stdout + timoni.stderr
    flux = subprocess.run(
        [str(TOOLS / "flux"), "version", "--client"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert flux.stdout.strip() == f"flux: v{versions['FLUX_VERSION']}"


def _push(path: Path, url: str, revision: str) -> dict[str, str]:
    out = subprocess.run(
        [
            "flux",
            "push",
            "artifact",
            url,
            f"--path={path}",
            "--source=https://github.com/org/gitops",
            f"--revision={revision}",
            "--reproducible",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "TZ": "UTC"},
    )
    data: dict[str, str] = json.loads(out.stdout)
    return data


def test_render_push_pull_roundtrip(
    example_repo: GitRepo, registry: Registry, tmp_path: Path
) -> None:
    sha = example_repo.head()
    rendered = tmp_path / "out" / "manifests.yaml"
    rendered.parent.mkdir()
    with rendered.open("wb") as fh:
        subprocess.run(
            [
                "timoni",
                "build",
                "webapp-staging",
                "./modules/webapp",
                "-n",
                "apps",
                "-f",
                "apps/webapp/common.cue",
                "-f",
                "apps/webapp/staging.yaml",
            ],
            cwd=example_repo.path,
            stdout=fh,
            check=True,
            env={
                **os.environ,
                "TIMONI_CACHE_DIR": str(tmp_path / "cache"),
                "KUBECONFIG": os.devnull,
            },
        )
    assert b"kind: Deployment" in rendered.read_bytes()

    url = f"oci://{registry.host}/foundation/webapp:staging"
    first = _push(rendered, url, f"main@sha1:{sha}")
    second = _push(rendered, url, f"main@sha1:{sha}")
    assert first["digest"].startswith("sha256:")
    assert first["digest"] == second["digest"], (
        "--reproducible: same content and revision, same digest"
    )

    pulled = tmp_path / "pulled"
    pulled.mkdir()
    subprocess.run(
        ["flux", "pull", "artifact", url, "-o", str(pulled)],
        check=True,
        capture_output=True,
    )
    assert (pulled / "manifests.yaml").read_bytes() == rendered.read_bytes()

    found = registry.manifest("foundation/webapp", "staging")
    assert found is not None
    digest, manifest = found
    assert digest == first["digest"]
    annotations = manifest["annotations"]
    assert isinstance(annotations, dict)
    assert annotations["org.opencontainers.image.revision"] == f"main@sha1:{sha}"
    layers = manifest["layers"]
    assert isinstance(layers, list) and len(layers) == 1
    assert layers[0]["mediaType"] == "application/vnd.cncf.flux.content.v1.tar+gzip"
    assert layers[0]["size"] > 0
    blob = registry.blob("foundation/webapp", layers[0]["digest"])
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as tar:
        member = tar.extractfile("manifests.yaml")
        assert member is not None and member.read() == rendered.read_bytes()


def test_auth_registry_refuses_anonymous_and_accepts_credentials(
    auth_registry: Registry,
) -> None:
    assert auth_registry.auth is not None
    status, _, _ = auth_registry.request("/v2/", accept="application/json")
    assert status == 200  # with credentials, over TLS with the self-signed CA
    user, password = auth_registry.auth
    auth_registry.auth = None
    try:
        status, _, _ = auth_registry.request("/v2/", accept="application/json")
    finally:
        auth_registry.auth = (user, password)
    assert status == 401
