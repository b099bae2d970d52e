"""The action reads tags over the registry's HTTP API (`gitops_action.registry.reader`), and leaves to
`flux pull` whatever it does not handle like flux. These tests hold its answers to flux's own, on
the real registry (plain HTTP, and TLS with htpasswd), and check when it hands a read to flux."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from support.fault_proxy import fault_proxy
from support.registry import Registry, start_registry

from gitops_action.registry.credentials import Credentials
from gitops_action.registry.flux import Flux
from gitops_action.registry.reader import USER_AGENT, Reader

REVISION = "main@sha1:" + "ab" * 20


def pushed(flux: Flux, url: str, tmp_path: Path, text: str) -> str:
    manifests = tmp_path / "render" / "manifests.yaml"
    manifests.parent.mkdir(exist_ok=True)
    manifests.write_text(text)
    done = flux.push(
        url, manifests, source="https://example.com/repo", revision=REVISION
    )
    assert done.call.ok, done.call.stderr
    return done.digest


def same_as_flux(
    reader: Reader,
    url: str,
    tmp_path: Path,
    expected_digest: str,
    text: str,
    flux_pulls: Callable[[], int],
) -> None:
    ours = reader.pull(url, tmp_path / "ours")
    assert flux_pulls() == 0  # the reader answered on its own
    theirs = reader.flux.pull(url, tmp_path / "theirs")
    assert ours.call.ok and theirs.call.ok, (ours.call.error, theirs.call.error)
    assert (
        (ours.revision, ours.digest)
        == (theirs.revision, theirs.digest)
        == (REVISION, expected_digest)
    )
    assert ours.directory is not None and theirs.directory is not None
    files = sorted(
        p.relative_to(ours.directory) for p in ours.directory.rglob("*") if p.is_file()
    )
    assert files == sorted(
        p.relative_to(theirs.directory)
        for p in theirs.directory.rglob("*")
        if p.is_file()
    )
    assert (ours.directory / "manifests.yaml").read_text() == text


def test_plain_registry_reads_agree_with_flux_pull(
    registry: Registry, tmp_path: Path, flux_pulls: Callable[[], int]
) -> None:
    flux = Flux(env={}, timeout="30s")
    url = f"oci://{registry.host}/reads/plain:latest"
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: plain\n"
    digest = pushed(flux, url, tmp_path, text)
    reader = Reader(flux, timeout=30)
    same_as_flux(reader, url, tmp_path, digest, text, flux_pulls)
    # Without content: revision and digest only, nothing written.
    head = reader.pull(url, tmp_path / "head-only", content=False)
    assert (
        head.call.ok
        and (head.revision, head.digest) == (REVISION, digest)
        and head.directory is None
    )
    assert not (tmp_path / "head-only").exists()


def test_tls_registry_with_login_reads_agree_with_flux_pull(
    auth_registry: Registry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    flux_pulls: Callable[[], int],
) -> None:
    assert auth_registry.auth is not None and auth_registry.ca_file is not None
    # flux and the reader trust the test CA
    monkeypatch.setenv("SSL_CERT_FILE", str(auth_registry.ca_file))
    env = Credentials(*auth_registry.auth).docker_config({auth_registry.host}, tmp_path)
    flux = Flux(env=env, timeout="30s")
    url = f"oci://{auth_registry.host}/reads/tls:v1"
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: tls\n"
    digest = pushed(flux, url, tmp_path, text)
    same_as_flux(Reader(flux, timeout=30), url, tmp_path, digest, text, flux_pulls)


def test_a_refused_login_is_reported_by_flux(
    auth_registry: Registry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    flux_pulls: Callable[[], int],
) -> None:
    assert auth_registry.auth is not None and auth_registry.ca_file is not None
    monkeypatch.setenv("SSL_CERT_FILE", str(auth_registry.ca_file))
    env = Credentials(
        auth_registry.auth[0], "Wr0ng-Pa55word-Never-Printed"
    ).docker_config({auth_registry.host}, tmp_path)
    reader = Reader(Flux(env=env, timeout="10s"), timeout=10)
    read = reader.pull(f"oci://{auth_registry.host}/reads/tls:v1", tmp_path / "out")
    assert not read.call.ok and read.call.failure == "auth", read.call.error
    # flux may know credentials the reader does not: its answer counts
    assert flux_pulls() == 1
    assert "Wr0ng-Pa55word-Never-Printed" not in read.call.error


def test_a_missing_tag_is_missing_without_flux(
    registry: Registry, tmp_path: Path, flux_pulls: Callable[[], int]
) -> None:
    reader = Reader(Flux(env={}, timeout="10s"), timeout=10)
    for url in (
        f"oci://{registry.host}/reads/never-pushed:latest",
        f"oci://{registry.host}/reads/plain:nope",
    ):
        read = reader.pull(url, tmp_path / "out")
        assert not read.call.ok and read.call.failure == "missing", read.call.error
    assert flux_pulls() == 0


def test_credential_helpers_and_cloud_providers_are_left_to_flux(
    registry: Registry,
    auth_registry: Registry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    flux_pulls: Callable[[], int],
) -> None:
    assert auth_registry.ca_file is not None
    monkeypatch.setenv("SSL_CERT_FILE", str(auth_registry.ca_file))
    config = tmp_path / "docker"
    config.mkdir()
    (config / "config.json").write_text(
        json.dumps({"credHelpers": {auth_registry.host: "made-up"}})
    )
    # The registry asks for a login, and only a credential helper has it: flux's keychain runs helpers.
    helper = Reader(Flux(env={"DOCKER_CONFIG": str(config)}, timeout="10s"), timeout=10)
    helper.pull(
        f"oci://{auth_registry.host}/reads/tls:v1", tmp_path / "a", content=False
    )
    assert flux_pulls() == 1
    # A cloud provider's login (ECR, ACR, GAR) is flux's to do.
    flux = Flux(env={}, timeout="10s")
    url = f"oci://{registry.host}/reads/plain:latest"
    pushed(flux, url, tmp_path, "kind: ConfigMap\n")
    cloud = Reader(Flux(env={}, timeout="10s", provider="aws"), timeout=10)
    cloud.pull(url, tmp_path / "b")
    assert flux_pulls() == 2


def test_transient_answers_are_tried_again_and_the_reads_are_the_actions(
    registry: Registry, tmp_path: Path, flux_pulls: Callable[[], int]
) -> None:
    flux = Flux(env={}, timeout="10s")
    url = f"oci://{registry.host}/reads/flaky:latest"
    digest = pushed(flux, url, tmp_path, "kind: ConfigMap\n")
    with fault_proxy(registry.host) as proxy:
        proxy.status(503, first=1, path="/manifests/")
        reader = Reader(flux, timeout=10)
        read = reader.pull(url.replace(registry.host, proxy.host), tmp_path / "out")
        assert read.call.ok and read.digest == digest, read.call.error
        assert [e.outcome for e in proxy.log if "/manifests/" in e.path] == [
            "injected 503",
            "forwarded 200",
        ]
        assert {e.agent for e in proxy.log} == {USER_AGENT} and flux_pulls() == 0
        # A registry that keeps failing: a transient failure for the pipeline's retries, never "missing".
        proxy.status(500, path="/manifests/")
        failed = reader.pull(
            url.replace(registry.host, proxy.host), tmp_path / "again", content=False
        )
        assert failed.call.failure == "transient" and "500" in failed.call.error


def test_a_login_that_worked_is_sent_at_once_afterwards(
    tmp_path: Path, flux_pulls: Callable[[], int]
) -> None:
    """htpasswd over plain HTTP (behind the proxy that counts the requests): the first read answers
    the registry's challenge; every later read sends the login at once, one request per read."""
    login = ("reader", "Plain-Http-Pa55")
    plain_auth = start_registry(tmp_path / "registry", auth=login)
    try:
        env = Credentials(*login).docker_config({plain_auth.host}, tmp_path)
        flux = Flux(env=env, timeout="30s")
        url = f"oci://{plain_auth.host}/reads/login:latest"
        digest = pushed(flux, url, tmp_path, "kind: ConfigMap\n")
        with fault_proxy(plain_auth.host) as proxy:
            env = Credentials(*login).docker_config({proxy.host}, tmp_path)
            reader = Reader(Flux(env=env, timeout="30s"), timeout=30)
            for n in range(3):
                read = reader.pull(
                    url.replace(plain_auth.host, proxy.host), tmp_path / f"out{n}"
                )
                assert read.call.ok and read.digest == digest, read.call.error
            reads = [e for e in proxy.log if e.path.startswith("/v2/reads/")]
            assert [e.outcome for e in reads] == ["forwarded 401"] + [
                "forwarded 200"
            ] * 6, reads
            assert flux_pulls() == 0
    finally:
        plain_auth.stop()


def test_a_stalled_read_times_out_once_and_is_transient(
    registry: Registry, tmp_path: Path
) -> None:
    flux = Flux(env={}, timeout="10s")
    url = f"oci://{registry.host}/reads/stalled:latest"
    pushed(flux, url, tmp_path, "kind: ConfigMap\n")
    with fault_proxy(registry.host) as proxy:
        proxy.stall(30, path="/manifests/")
        reader = Reader(flux, timeout=1)
        read = reader.pull(
            url.replace(registry.host, proxy.host), tmp_path / "out", content=False
        )
        assert read.call.failure == "transient" and "timed out" in read.call.error, (
            read.call.error
        )
        assert 1 <= read.call.seconds < 5
        # A stall already took the whole timeout: no immediate second try (the pipeline backs off).
        assert [e.outcome for e in proxy.log if "/manifests/" in e.path] == ["stalled"]
        proxy.clear()


def test_the_content_of_a_read_is_its_manifests_layer_without_asking_again(
    registry: Registry, tmp_path: Path, flux_pulls: Callable[[], int]
) -> None:
    """The pipeline reads a tag's manifest before the render, then its content alongside the render:
    the layer that manifest names, one request, the same answer as a full read."""
    flux = Flux(env={}, timeout="10s")
    url = f"oci://{registry.host}/reads/content:latest"
    text = "kind: ConfigMap\nmetadata:\n  name: content\n"
    digest = pushed(flux, url, tmp_path, text)
    with fault_proxy(registry.host) as proxy:
        reader = Reader(flux, timeout=10)
        at = url.replace(registry.host, proxy.host)
        held = reader.pull(at, tmp_path / "head", content=False)
        assert held.call.ok and held.layer is not None and held.directory is None
        before = len(proxy.log)
        got = reader.content(at, held, tmp_path / "deployed")
        asked = [e.path for e in proxy.log[before:]]
        assert len(asked) == 1 and "/blobs/sha256:" in asked[0], asked
        full = reader.pull(at, tmp_path / "full")
        assert got.call.ok and (got.revision, got.digest) == (REVISION, digest)
        assert (got.revision, got.digest, got.entries) == (
            full.revision,
            full.digest,
            full.entries,
        )
        assert got.directory is not None
        assert (got.directory / "manifests.yaml").read_text() == text
        # A read that was not an HTTP read of the manifest alone is read again in full.
        again = reader.content(at, full, tmp_path / "again")
        assert again.call.ok and again.digest == digest
        assert flux_pulls() == 0
