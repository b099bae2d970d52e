"""Issue 12, item 3: credentials go only where they belong.

`registry-username`/`registry-password` are for the host of the `registry` input (else the
configuration's `registry`) alone; the action's own registry reader sends them exactly where flux
(go-containerregistry) would. The hostile party is an HTTP server of the test's own that records
every Authorization header it is sent: an attacker's registry or token realm, not a stand-in for a
real component. The registries the action is meant to use are the real ones (conftest.py).
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import GitRepo
from support.action import run_action
from support.registry import Registry, free_port

from gitops_action.registry.credentials import Credentials
from gitops_action.registry.flux import Flux
from gitops_action.registry.hosts import may_carry_credentials, realm_refused
from gitops_action.registry.reader import Reader
from gitops_action.secrets import basic_auth

USER, PASSWORD = "ci-user", "s3cr3t-Registry-Pa55"  # the auth_registry's login


class Hostile:
    """Answers every request 401 with `challenge` (a format string: {realm_host} is filled in), and
    records (path, Authorization) of each request, on the registry port and on a realm port."""

    def __init__(self, challenge: str) -> None:
        self.seen: list[tuple[str, str, str]] = []  # (which port, path, Authorization)
        self.challenge = challenge
        self.servers = [
            self._server("registry", free_port()),
            self._server("realm", free_port()),
        ]
        self.host = f"127.0.0.1:{self.servers[0].server_address[1]}"
        self.realm_host = f"127.0.0.1:{self.servers[1].server_address[1]}"

    def _server(self, which: str, port: int) -> ThreadingHTTPServer:
        hostile = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                hostile.seen.append(
                    (which, self.path, self.headers.get("Authorization", ""))
                )
                self.send_response(401)
                challenge = hostile.challenge.format(
                    realm_host=hostile.realm_host, host=hostile.host
                )
                self.send_header("WWW-Authenticate", challenge)
                self.send_header("Content-Type", "application/json")
                body = b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_HEAD = do_PUT = do_POST = do_PATCH = do_GET

        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server

    def authorizations(self) -> list[str]:
        return [auth for _, _, auth in self.seen if auth]

    def stop(self) -> None:
        for s in self.servers:
            s.shutdown()
            s.server_close()


@pytest.fixture
def hostile_basic() -> Iterator[Hostile]:
    h = Hostile('Basic realm="hostile"')
    yield h
    h.stop()


@pytest.fixture
def hostile_realm() -> Iterator[Hostile]:
    """A registry whose token realm is another loopback port: flux refuses such a realm."""
    h = Hostile('Bearer realm="http://{realm_host}/token",service="hostile"')
    yield h
    h.stop()


def test_a_target_on_another_host_gets_no_credentials(
    example_repo: GitRepo,
    auth_registry: Registry,
    hostile_basic: Hostile,
    tmp_path: Path,
) -> None:
    assert auth_registry.ca_file is not None
    config = example_repo.path / ".timoni-flux.yaml"
    config.write_text(
        config.read_text()
        + "  - name: elsewhere\n    files: [bundles/platform.cue, bundles/staging.cue]\n"
        + f'    artifact: "oci://{hostile_basic.host}/platform"\n    tags: [staging]\n'
    )
    example_repo.commit_all("a target on another host")
    run = run_action(
        example_repo.path,
        tmp_path / "push",
        inputs={
            "registry": f"oci://{auth_registry.host}/trust-other-host",
            "registry-username": USER,
            "registry-password": PASSWORD,
            "all": "true",
        },
        payload={"before": "0" * 40, "created": True},
        env={"SSL_CERT_FILE": str(auth_registry.ca_file)},
    )
    by_name = run.by_name()
    assert by_name["elsewhere"]["status"] == "failed", run.stdout
    # its own host: logged in
    assert by_name["webapp-staging"]["status"] == "pushed", run.stdout + run.stderr
    assert hostile_basic.seen, "flux never asked the other host"
    assert hostile_basic.authorizations() == []  # no login, in no form
    assert f"no registry credentials for {hostile_basic.host}" in run.stdout


def test_the_reader_sends_no_credentials_to_a_realm_flux_refuses(
    hostile_realm: Hostile, tmp_path: Path, flux_pulls: Callable[[], int]
) -> None:
    login = Credentials(USER, PASSWORD).docker_config({hostile_realm.host}, tmp_path)
    flux = Flux(env=login, timeout="10s")
    reader = Reader(flux, timeout=10)
    pulled = reader.pull(
        f"oci://{hostile_realm.host}/app:latest", tmp_path / "out", content=False
    )
    assert not pulled.call.ok
    assert flux_pulls() == 1  # refused here, then left to flux: flux refuses it too
    assert "private or link-local" in pulled.call.error, pulled.call.error
    # nobody asked the realm
    assert [w for w, _, _ in hostile_realm.seen if w == "realm"] == []
    assert basic_auth(USER, PASSWORD) not in " ".join(hostile_realm.authorizations())


def test_the_realm_rules_are_flux_s() -> None:
    registry = "registry.example.com"
    assert realm_refused("https://auth.example.com/token", registry, "https") == ""
    assert realm_refused(f"https://{registry}/token", registry, "https") == ""
    # itself
    assert realm_refused("http://127.0.0.1:5000/token", "127.0.0.1:5000", "http") == ""
    assert "private or link-local" in realm_refused(
        "https://169.254.169.254/latest", registry, "https"
    )
    assert "private or link-local" in realm_refused(
        "https://10.0.0.8/token", registry, "https"
    )
    assert "private or link-local" in realm_refused(
        "https://[::1]:8443/token", registry, "https"
    )
    assert "private or link-local" in realm_refused(
        "http://127.0.0.1:5001/t", "127.0.0.1:5000", "http"
    )
    # plain HTTP, TLS registry
    assert realm_refused("http://auth.example.com/token", registry, "https")
    assert realm_refused("file:///etc/passwd", registry, "https")
    # plain HTTP off this machine
    assert not may_carry_credentials("http://10.1.2.3:5000/v2/")
    assert may_carry_credentials("http://127.0.0.1:5000/v2/")
    assert may_carry_credentials("https://10.1.2.3:5000/v2/")


def test_timoni_pulls_a_module_from_a_registry_that_needs_the_login(
    example_repo: GitRepo, auth_registry: Registry, tmp_path: Path
) -> None:
    assert auth_registry.ca_file is not None
    env = {"SSL_CERT_FILE": str(auth_registry.ca_file)}
    module = f"oci://{auth_registry.host}/modules/webapp"
    pushed = subprocess.run(
        ["timoni", "mod", "push", "./modules/webapp", module, "-v", "1.0.0", "--creds", f"{USER}:{PASSWORD}"],
        cwd=example_repo.path, capture_output=True, text=True, check=False,
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path), **env},
    )  # fmt: skip
    assert pushed.returncode == 0, pushed.stderr
    config = example_repo.path / ".timoni-flux.yaml"
    values = "\n    values: [apps/webapp/common.cue, apps/webapp/staging.yaml]"
    text = config.read_text().replace(
        f"module: ./modules/webapp{values}",
        f"module: {module}\n    version: 1.0.0{values}",
    )
    assert module in text
    config.write_text(text)
    example_repo.commit_all("a module from the registry")
    run = run_action(
        example_repo.path,
        tmp_path / "push",
        inputs={
            "registry": f"oci://{auth_registry.host}/pulled",
            "registry-username": USER,
            "registry-password": PASSWORD,
            "targets": "webapp-staging",
            "all": "true",
        },
        payload={"before": "0" * 40, "created": True},
        env=env,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.by_name()["webapp-staging"]["status"] == "pushed"


def test_a_pull_request_that_names_another_registry_gets_no_credentials(
    example_repo: GitRepo,
    auth_registry: Registry,
    hostile_basic: Hostile,
    tmp_path: Path,
) -> None:
    """Issue 19, finding 5: the `registry` input is empty (as the README shows) and a same-repository
    pull request edits `registry:` in the configuration. The login goes to the base commit's host;
    the pull request's host is asked without it."""
    from support import payloads

    assert auth_registry.ca_file is not None
    config = example_repo.path / ".timoni-flux.yaml"
    trusted = (
        "  - name: trusted\n    files: [bundles/platform.cue, bundles/staging.cue]\n"
        f'    artifact: "oci://{auth_registry.host}/trust-pr/trusted"\n    tags: [staging]\n'
        "    watch: [.timoni-flux.yaml]\n"
    )
    text = config.read_text().replace(
        "registry: oci://registry.example.com/gitops",
        f"registry: oci://{auth_registry.host}/trust-pr",
    )
    config.write_text(text + trusted)
    base = example_repo.commit_all("the registry the base trusts")
    example_repo.git("checkout", "-q", "-b", "feature")
    config.write_text(
        config.read_text().replace(auth_registry.host, hostile_basic.host, 1)
    )
    head = example_repo.commit_all("a pull request moves the registry")
    inputs = {
        "registry-username": USER,
        "registry-password": PASSWORD,
        "comment": "false",
    }
    # `all`: the plan reads no base
    for name, more in (("pr", {}), ("pr-all", {"all": "true"})):
        run = run_action(
            example_repo.path,
            tmp_path / name,
            inputs={**inputs, **more},
            event_name="pull_request",
            payload=payloads.pull_request(base_sha=base, head_sha=head),
            sha=head,
            ref_name="feature",
            env={"SSL_CERT_FILE": str(auth_registry.ca_file)},
        )
        by_name = run.by_name()
        assert hostile_basic.seen, "nothing asked the pull request's host"
        assert hostile_basic.authorizations() == []  # no login, in no form
        unmasked = re.sub(r"^::add-mask ?::.*$", "", run.stdout, flags=re.M)
        assert basic_auth(USER, PASSWORD) not in unmasked + run.stderr + run.summary
        assert f"none to {hostile_basic.host}" in run.stdout, run.stdout
        # The base commit's host still gets the login: its target's tag is read (none yet).
        assert by_name["trusted"]["status"] == "dry-run", by_name["trusted"]
        hostile_basic.seen.clear()
