"""render.timoni (what needs no timoni): the command line of a build, the runtime variables a bundle
may read (never the run's secrets), the environment a render sees, and the error line shown."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gitops_action.config.model import Target
from gitops_action.render.timoni import (
    _error,
    _runtime,
    build_args,
    environment,
    first_error,
    runtime_names,
)

WEB = Target(
    "web", "instance", "web", "oci://r.io/web", ("latest",), ("apps/a.cue", "apps/b.yaml"),
    namespace="apps", module="modules/web",
)  # fmt: skip
BUNDLE = Target("p", "bundle", "p", "oci://r.io/p", ("latest",), ("b/p.cue", "b/s.cue"))


def test_instance_build_args() -> None:
    assert build_args(WEB, runtime_from_env=True) == [
        "timoni", "build", "web", "./modules/web", "-n", "apps",
        "-f", "apps/a.cue", "-f", "apps/b.yaml",
    ]  # fmt: skip
    pinned = Target(
        "web", "instance", "web", "oci://r.io/web", ("latest",), (),
        namespace="apps", module="oci://ghcr.io/m", version="1.2.3", digest="sha256:abc",
    )  # fmt: skip
    assert build_args(pinned, runtime_from_env=False) == [
        "timoni", "build", "web", "oci://ghcr.io/m", "-n", "apps",
        "-v", "1.2.3", "--digest", "sha256:abc",
    ]  # fmt: skip


def test_bundle_build_args() -> None:
    assert build_args(BUNDLE, runtime_from_env=False) == [
        "timoni", "bundle", "build", "-f", "b/p.cue", "-f", "b/s.cue",
    ]  # fmt: skip
    assert build_args(BUNDLE, runtime_from_env=True)[-1] == "--runtime-from-env"


def test_runtime_names_leave_out_the_runs_secrets() -> None:
    text = """
    a: string @timoni(runtime:string:CLUSTER_NAME)
    b: string @timoni(runtime:string:GITHUB_TOKEN)
    c: string @timoni(runtime:string:INPUT_REGISTRY-PASSWORD)
    d: string @timoni(runtime:string:ACTIONS_ID_TOKEN_REQUEST_TOKEN)
    e: string @timoni(runtime:string:REGISTRY_PASSWORD)
    f: int @timoni(runtime:number:REPLICAS)
    g: string @timoni(runtime:string:)
    h: string @timoni(runtime:string:A:B)
    """
    assert runtime_names([text, "x: @timoni(runtime:string:CLUSTER_NAME)"]) == [
        "CLUSTER_NAME",
        "REPLICAS",
    ]


def test_runtime_of_a_target_reads_its_files(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b/p.cue").write_text("x: @timoni(runtime:string:ZONE)\n")
    # b/s.cue is missing: timoni will say so, not this
    assert _runtime(BUNDLE, tmp_path) == ["ZONE"]


def test_environment_of_a_render(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name, value in {
        "TIMONI_LOG": "debug",
        "HTTPS_PROXY": "http://proxy:3128",
        "SSL_CERT_FILE": "/etc/ca.pem",
        "ZONE": "eu",
        "KUBECONFIG": "/home/u/.kube/config",
        "GITHUB_TOKEN": "ghs_x",
        "INPUT_REGISTRY-PASSWORD": "pw",
        "DOCKER_CONFIG": "/home/u/.docker",
        "OTHER": "x",
    }.items():
        monkeypatch.setenv(name, value)
    env = environment(tmp_path / "cache", {"HOME": "/private"}, ["ZONE"])
    assert env["KUBECONFIG"] == os.devnull  # never a cluster
    assert env["TIMONI_CACHE_DIR"] == str(tmp_path / "cache")
    assert env["HOME"] == "/private"
    for kept in ("PATH", "TIMONI_LOG", "HTTPS_PROXY", "SSL_CERT_FILE", "ZONE"):
        assert env[kept] == os.environ[kept]
    for gone in ("GITHUB_TOKEN", "INPUT_REGISTRY-PASSWORD", "DOCKER_CONFIG", "OTHER"):
        assert gone not in env


def test_first_error() -> None:
    # the first line naming an error; one ending in ":" is followed by its cause
    assert first_error("info line\nError: build failed:\n  the cause\n") == (
        "Error: build failed: the cause"
    )
    assert (
        first_error("\n✗ values: conflicting values\nmore")
        == "values: conflicting values"
    )
    assert first_error("only a line\nanother") == "only a line"
    assert first_error("  \n") == "timoni failed without a message"


def test_first_error_of_timonis_own_log_line() -> None:
    # stderr as timoni v0.31 writes it for a module whose CUE does not parse
    stderr = (
        "12:04AM ERR build failed:\n"
        'no tag for "name"\n'
        "expected '}', found 'EOF':\n"
        "    ./timoni.cue:2:6\n"
    )
    assert first_error(stderr) == '12:04AM ERR build failed: no tag for "name"'


def test_a_pinned_module_not_at_its_digest_names_the_pin() -> None:
    pinned = Target(
        "web", "instance", "web", "oci://r.io/web", ("latest",), (),
        module="oci://ghcr.io/m", digest="sha256:abc",
    )  # fmt: skip
    stderr = "error: digest mismatch, expected sha256:abc got sha256:def"
    assert _error(pinned, stderr) == (
        f"module oci://ghcr.io/m is not at digest sha256:abc ({first_error(stderr)})"
    )
    # without a pin the message is timoni's own
    assert _error(WEB, stderr) == first_error(stderr)
