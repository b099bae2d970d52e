"""registry.credentials: the private docker config written for flux, and the login read back from
the docker config flux would read (FluxOnly where only flux's keychain reaches)."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path
from typing import Any

import pytest

from gitops_action.registry.credentials import (
    Credentials,
    credentials_host,
    docker_login,
    registry_host,
)
from gitops_action.registry.oci import FluxOnly


@pytest.fixture(autouse=True)
def no_machine_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The machine's own docker/podman settings must not leak into these tests."""
    for name in ("DOCKER_CONFIG", "REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "no-home"))


def config_env(tmp_path: Path, config: Any) -> dict[str, str]:
    directory = tmp_path / "cfg"
    directory.mkdir(exist_ok=True)
    text = config if isinstance(config, str) else json.dumps(config)
    (directory / "config.json").write_text(text)
    return {"DOCKER_CONFIG": str(directory)}


def auth(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def test_registry_and_credentials_host() -> None:
    assert registry_host("oci://ghcr.io/org/app") == "ghcr.io"
    assert registry_host("localhost:5000/x") == "localhost:5000"
    assert credentials_host("", "oci://r.example.com/gitops") == "r.example.com"
    assert credentials_host("oci://in.example.com:5000", "oci://cfg.example.com") == (
        "in.example.com:5000"
    )
    assert credentials_host("", "") == ""


def test_docker_config_is_private_and_holds_only_the_given_hosts(
    tmp_path: Path,
) -> None:
    env = Credentials("ci", "pa:ss").docker_config({"b.io", "a.io"}, tmp_path)
    home = Path(env["HOME"])
    assert home.parent == tmp_path and env["DOCKER_CONFIG"] == str(home / ".docker")
    path = home / ".docker" / "config.json"
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE((home / ".docker").stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    token = auth("ci:pa:ss")
    assert json.loads(text) == {
        "auths": {"a.io": {"auth": token}, "b.io": {"auth": token}}
    }
    assert text.index("a.io") < text.index("b.io")  # sorted: the same bytes every run
    # read back as flux would
    assert docker_login("a.io", env) == ("ci", "pa:ss")
    assert docker_login("c.io", env) is None


@pytest.mark.parametrize(("user", "hosts"), [("", {"a.io"}), ("ci", set())])
def test_docker_config_without_a_login(
    tmp_path: Path, user: str, hosts: set[str]
) -> None:
    env = Credentials(user, "pw").docker_config(hosts, tmp_path)
    assert json.loads(Path(env["DOCKER_CONFIG"], "config.json").read_text()) == {
        "auths": {}
    }


def test_each_run_gets_its_own_directory(tmp_path: Path) -> None:
    creds = Credentials("ci", "pw")
    assert creds.docker_config({"a.io"}, tmp_path) != creds.docker_config(
        {"a.io"}, tmp_path
    )


@pytest.mark.parametrize(
    ("entry", "login"),
    [
        ({"auth": auth("user:p:w")}, ("user", "p:w")),
        ({"username": "u", "password": "p"}, ("u", "p")),
        ({"username": "u"}, ("u", "")),
        ({}, None),
        ({"email": "x@example.com"}, None),
    ],
)
def test_auths_entries(
    tmp_path: Path, entry: dict[str, str], login: tuple[str, str] | None
) -> None:
    env = config_env(tmp_path, {"auths": {"r.io": entry}})
    assert docker_login("r.io", env) == login


def test_an_auths_key_may_be_a_url(tmp_path: Path) -> None:
    env = config_env(
        tmp_path, {"auths": {"https://index.docker.io/v1/": {"auth": auth("u:p")}}}
    )
    assert docker_login("index.docker.io", env) == ("u", "p")
    assert docker_login("docker.io", env) is None


def test_home_docker_is_the_fallback(tmp_path: Path) -> None:
    (tmp_path / "h" / ".docker").mkdir(parents=True)
    (tmp_path / "h" / ".docker" / "config.json").write_text(
        json.dumps({"auths": {"r.io": {"auth": auth("h:p")}}})
    )
    assert docker_login("r.io", {"HOME": str(tmp_path / "h")}) == ("h", "p")


def test_no_config_is_anonymous_unless_podman_may_hold_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {"DOCKER_CONFIG": str(tmp_path / "absent")}
    assert docker_login("r.io", env) is None
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    with pytest.raises(FluxOnly, match="podman"):
        docker_login("r.io", env)


@pytest.mark.parametrize(
    ("config", "why"),
    [
        ({"credHelpers": {"r.io": "ecr-login"}}, "credential helper serves r.io"),
        (
            {"credHelpers": {"https://r.io": "gcr"}, "auths": {"r.io": {"auth": "x"}}},
            "credential helper",
        ),
        ({"credsStore": "desktop"}, "credential store"),
        ({"credsStore": "desktop", "auths": {"r.io": {}}}, "credential store"),
        ({"auths": {"r.io": {"identitytoken": "t"}}}, "token login for r.io"),
        ({"auths": {"r.io": {"registrytoken": "t"}}}, "token login"),
        ({"auths": ["r.io"]}, "unexpected docker config"),
        ([], "unexpected docker config"),
        ("{not json", "unreadable docker config"),
        (
            {"auths": {"r.io": {"auth": base64.b64encode(b"\xff\xfe:x").decode()}}},
            "unreadable login for r.io",
        ),
    ],
)
def test_flux_only(tmp_path: Path, config: Any, why: str) -> None:
    with pytest.raises(FluxOnly, match=why):
        docker_login("r.io", config_env(tmp_path, config))


def test_helpers_and_stores_for_other_hosts_do_not_matter(tmp_path: Path) -> None:
    env = config_env(
        tmp_path,
        {
            "credHelpers": {"other.io": "ecr-login"},
            "credsStore": "desktop",
            "auths": {"r.io": {"auth": auth("u:p")}},
        },
    )
    # an entry of its own: the store is not asked
    assert docker_login("r.io", env) == ("u", "p")
