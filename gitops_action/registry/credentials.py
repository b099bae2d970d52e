"""Registry credentials: a private docker config for flux, never a command-line argument."""

from __future__ import annotations

import base64
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitops_action.registry.oci import FluxOnly
from gitops_action.secrets import basic_auth


def registry_host(artifact: str) -> str:
    return artifact.removeprefix("oci://").split("/", 1)[0]


def credentials_host(registry_input: str, config_registry: str) -> str:
    """The one registry host `registry-username`/`registry-password` are for: the `registry` input's,
    else the configuration's `registry`. "" when neither names a registry."""
    return (
        registry_host(registry_input or config_registry)
        if (registry_input or config_registry)
        else ""
    )


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def docker_config(self, hosts: set[str], parent: Path) -> dict[str, str]:
        """Write a docker config.json only this run's flux and timoni processes see; return their env.

        flux (go-containerregistry) reads $DOCKER_CONFIG, and $HOME/.docker as a fallback, so both
        point into the private directory: no credential from the machine's own config is mixed in.
        With no `hosts` (or no username) the config holds no login at all.
        """
        home = Path(tempfile.mkdtemp(prefix="docker-", dir=parent))
        os.chmod(home, 0o700)
        token = basic_auth(self.username, self.password)
        config: dict[str, dict[str, dict[str, str]]] = {
            "auths": {h: {"auth": token} for h in sorted(hosts)}
            if self.username
            else {}
        }
        (home / ".docker").mkdir(mode=0o700)
        path = home / ".docker" / "config.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(config, fh)
        return {"DOCKER_CONFIG": str(home / ".docker"), "HOME": str(home)}


def _auth_key(key: str) -> str:
    """`https://host/v1/` and `host` name the same registry in a docker config."""
    return key.split("://", 1)[-1].split("/", 1)[0]


def docker_login(host: str, env: Mapping[str, str]) -> tuple[str, str] | None:
    """(user, password) for `host` from the docker config flux would read, None for anonymous.
    Raises FluxOnly where the credentials sit somewhere only flux's keychain reaches."""
    config = _docker_config(env)
    if config is None:
        return None
    helpers = config.get("credHelpers") or {}
    if isinstance(helpers, dict) and any(_auth_key(k) == host for k in helpers):
        raise FluxOnly(f"a credential helper serves {host}")
    auths = config.get("auths") or {}
    if not isinstance(auths, dict):
        raise FluxOnly(f"unexpected docker config {_docker_config_path(env)}")
    entry = next((v for k, v in auths.items() if _auth_key(k) == host), None)
    if not isinstance(entry, dict) or not entry:
        if config.get("credsStore"):
            raise FluxOnly("a credential store may hold the login")
        return None
    return _entry_login(host, entry)


def _docker_config_path(env: Mapping[str, str]) -> Path:
    """The docker config flux would read: $DOCKER_CONFIG's, else $HOME/.docker's."""
    directory = env.get("DOCKER_CONFIG") or os.environ.get("DOCKER_CONFIG")
    home = env.get("HOME") or os.environ.get("HOME", "")
    return (
        Path(directory) / "config.json"
        if directory
        else Path(home) / ".docker" / "config.json"
    )


def _docker_config(env: Mapping[str, str]) -> dict[str, Any] | None:
    """The docker config flux would read, parsed; None when there is none (and no podman file)."""
    path = _docker_config_path(env)
    if not path.is_file():
        if os.environ.get("REGISTRY_AUTH_FILE") or os.environ.get("XDG_RUNTIME_DIR"):
            raise FluxOnly("no docker config: flux may use a podman auth file")
        return None
    try:
        config = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise FluxOnly(f"unreadable docker config {path}") from exc
    if not isinstance(config, dict):
        raise FluxOnly(f"unexpected docker config {path}")
    return config


def _entry_login(host: str, entry: dict[str, Any]) -> tuple[str, str] | None:
    """(user, password) from one `auths` entry: its `auth` (base64) or its username/password."""
    if entry.get("identitytoken") or entry.get("registrytoken"):
        raise FluxOnly(f"a token login for {host}")
    if entry.get("auth"):
        try:
            user, _, password = (
                base64.b64decode(str(entry["auth"])).decode().partition(":")
            )
        except ValueError as exc:
            raise FluxOnly(f"unreadable login for {host}") from exc
        return user, password
    if entry.get("username"):
        return str(entry["username"]), str(entry.get("password", ""))
    return None
