"""Issue 19, finding 7b and 7e: what a registry sends is read within bounds. A layer of 1 MB that
unpacks to 1 GiB (a gzip bomb) at a target's tag; a registry that sends its answer a byte a second.
Before: the bomb was unpacked in memory (RSS past the size of the bomb, or MemoryError), and the
trickle held the run for as long as the server liked (each read's timeout, never the request's).
Real timoni, flux, registry and git; the action run as GitHub runs it."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT, GitRepo
from support.action import ActionRun, run_action
from support.fault_proxy import FaultProxy, fault_proxy
from support.oci_objects import (
    FLUX_CONFIG,
    FLUX_LAYER,
    OCI_MANIFEST,
    gzip_bomb,
    push_blob,
    push_flux_artifact,
    push_manifest,
)
from support.registry import Registry

from gitops_action.registry.flux import Flux
from gitops_action.registry.reader import Reader

GiB = 1024**3
# Records the action's own peak RSS when it exits (timoni, flux and cosign are other processes).
SITECUSTOMIZE = """
import atexit, os, resource

def _peak():
    with open(os.environ["TFP_TEST_PEAK_RSS"], "w") as fh:
        fh.write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))  # KiB on Linux

if os.environ.get("TFP_TEST_PEAK_RSS"):
    atexit.register(_peak)
"""


def measured(
    repo: GitRepo, work: Path, inputs: dict[str, str]
) -> tuple[ActionRun, int]:
    """The run, and the action process's peak resident memory in MiB."""
    hook = work / "hook"
    hook.mkdir(parents=True)
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE)
    peak = work / "peak-rss"
    env = {"PYTHONPATH": f"{ROOT}{os.pathsep}{hook}", "TFP_TEST_PEAK_RSS": str(peak)}
    run = run_action(repo.path, work / "run", inputs=inputs, env=env)
    return run, int(peak.read_text()) // 1024


def test_a_gzip_bomb_at_the_tag_fails_its_target_in_bounded_memory(
    example_repo: GitRepo, registry: Registry, prefix: str, tmp_path: Path
) -> None:
    bomb = gzip_bomb(1 * GiB)
    assert len(bomb) < 2 * 1024 * 1024
    repository = prefix.removeprefix(f"oci://{registry.host}/") + "/webapp"
    push_flux_artifact(
        registry,
        repository,
        "staging",
        bomb,
        {"org.opencontainers.image.revision": "main@sha1:" + "ab" * 20},
    )
    run, peak = measured(
        example_repo,
        tmp_path,
        {
            "registry": prefix,
            "all": "true",
            "targets": "webapp-staging,webapp-production",
        },
    )
    assert peak < 200, f"the action's peak RSS was {peak} MiB"
    assert "Traceback" not in run.stderr and "internal error" not in run.stdout, (
        run.stdout + run.stderr
    )
    assert run.returncode == 1, run.stdout + run.stderr
    staging = run.by_name()["webapp-staging"]
    assert staging["status"] == "failed" and staging["digest"] is None
    assert staging["error"].startswith(
        f"reading {prefix}/webapp:staging failed: layer sha256:"
    ), staging["error"]
    assert "unpacks to more than 256 MiB" in staging["error"]
    assert run.by_name()["webapp-production"]["status"] == "pushed"


def test_a_layer_larger_than_its_manifest_says_is_refused(
    example_repo: GitRepo, registry: Registry, prefix: str, tmp_path: Path
) -> None:
    """The manifest says 100 bytes; the registry serves the whole (digest-matching) blob."""
    repository = prefix.removeprefix(f"oci://{registry.host}/") + "/webapp"
    layer = push_blob(registry, repository, gzip_bomb(1024 * 1024))
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": FLUX_CONFIG, **push_blob(registry, repository, b"{}")},
        "layers": [{"mediaType": FLUX_LAYER, "digest": layer["digest"], "size": 100}],
        "annotations": {"org.opencontainers.image.revision": "main@sha1:" + "ab" * 20},
    }
    push_manifest(registry, repository, "staging", manifest)
    run = run_action(
        example_repo.path,
        tmp_path / "run",
        inputs={"registry": prefix, "all": "true", "targets": "webapp-staging"},
    )
    assert run.returncode == 1, run.stdout + run.stderr
    error = run.by_name()["webapp-staging"]["error"]
    assert "is larger than the 100 bytes its manifest says" in error, error


@pytest.fixture
def proxy(registry: Registry) -> Iterator[FaultProxy]:
    with fault_proxy(registry.host) as p:
        yield p


def test_a_trickling_registry_is_cut_off_at_the_deadline(
    example_repo: GitRepo, proxy: FaultProxy, tmp_path: Path
) -> None:
    """Every byte arrives within the socket timeout; the whole read does not within `timeout`."""
    prefix = f"oci://{proxy.host}/trickle"
    deploy = run_action(
        example_repo.path,
        tmp_path / "deploy",
        inputs={"registry": prefix, "all": "true"},
    )
    assert deploy.returncode == 0, deploy.stdout + deploy.stderr
    base = example_repo.head()
    staging = example_repo.path / "apps/webapp/staging.yaml"
    staging.write_text(staging.read_text().replace("replicas: 1", "replicas: 3"))
    example_repo.commit_all("scale")
    event = {
        "before": base,
        "after": example_repo.head(),
        "created": False,
        "deleted": False,
        "forced": False,
    }
    proxy.trickle(
        1.0, first=1, methods={"GET"}, path="/trickle/webapp/manifests/staging$"
    )
    before = len(proxy.log)
    start = time.monotonic()
    run = run_action(
        example_repo.path,
        tmp_path / "run",
        inputs={"registry": prefix, "timeout": "8s", "targets": "webapp-staging"},
        payload=event,
        timeout=150,
    )
    took = time.monotonic() - start
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.by_name()["webapp-staging"]["status"] == "pushed"
    reads = [
        e.outcome
        for e in proxy.log[before:]
        if e.path.endswith("/webapp/manifests/staging")
    ]
    assert reads[0] == "trickled 200", reads
    assert took < 60, f"the run took {took:.0f}s"


def test_a_trickled_layer_is_cut_off_at_the_deadline(
    registry: Registry, proxy: FaultProxy, tmp_path: Path
) -> None:
    """The layer (streamed to a file) trickled: the read stops at the reader's timeout, a transient
    failure like any timeout."""
    repository = "bounded/trickled-layer"
    layer = gzip_bomb(1024 * 1024)  # ~1 KB: about twenty minutes at a byte a second
    push_flux_artifact(
        registry,
        repository,
        "latest",
        layer,
        {"org.opencontainers.image.revision": "main@sha1:" + "ab" * 20},
    )
    proxy.trickle(1.0, methods={"GET"}, path="/blobs/")
    reader = Reader(Flux(env={}, timeout="10s"), timeout=3)
    start = time.monotonic()
    read = reader.pull(f"oci://{proxy.host}/{repository}:latest", tmp_path / "out")
    took = time.monotonic() - start
    assert (
        read.call.failure == "transient"
        and "no whole answer within 3s" in read.call.error
    ), read.call
    assert took < 15, f"the read took {took:.0f}s"
    assert any(e.outcome == "trickled 200" for e in proxy.log)
