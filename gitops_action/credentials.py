"""Registry credentials: a private docker config for flux, never a command-line argument."""

from __future__ import annotations

import base64
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path


def basic_auth(username: str, password: str) -> str:
    """base64(user:password): the docker config's `auth` value and an HTTP Basic credential."""
    return base64.b64encode(f"{username}:{password}".encode()).decode()


def registry_host(artifact: str) -> str:
    return artifact.removeprefix("oci://").split("/", 1)[0]


def credentials_host(registry_input: str, config_registry: str) -> str:
    """The one registry host `registry-username`/`registry-password` are for: the `registry` input's,
    else the configuration's `registry`. "" when neither names a registry."""
    return registry_host(registry_input or config_registry) if (registry_input or config_registry) else ""


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
            "auths": {h: {"auth": token} for h in sorted(hosts)} if self.username else {}
        }
        (home / ".docker").mkdir(mode=0o700)
        path = home / ".docker" / "config.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(config, fh)
        return {"DOCKER_CONFIG": str(home / ".docker"), "HOME": str(home)}


def redact(text: str, secrets: list[str]) -> str:
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    return text


def pem_parts(pem: str) -> list[str]:
    """The lines of a PEM body worth masking on their own (a log line may hold one line of a key);
    header lines are not secret, and masking a few characters would blank them all over the log."""
    return [ln.strip() for ln in pem.splitlines() if len(ln.strip()) >= 8 and not ln.startswith("-----")]
