"""The way back from the cluster: per environment (the tag its Kustomizations follow, in one
namespace) a notification-controller `Provider` of type `github` and an `Alert` on those
Kustomizations, so that Flux posts a commit status on the exact commit a target was built from
(kustomize-controller forwards the artifact's `org.opencontainers.image.revision`,
`<ref>@sha1:<sha>`, as the event's `originRevision`). With `dispatch`, a `githubdispatch` Provider
and Alert as well: the `repository_dispatch` events that `mode: deployment-status` turns into
deployment statuses (deployments.py).

Pure, like flux_config.py: the configuration's `flux.notification` settings and the targets' sync
objects in, objects and deterministic YAML out. Off unless `flux.notification.secretRef` is set.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gitops_action.cluster.flux_config import NAME, SyncConfig, write_once
from gitops_action.config.targets import Config, ConfigError

# Provider and Alert: the one served
NOTIFICATION_API = "notification.toolkit.fluxcd.io/v1beta3"
PREFIX = "notification."
GITHUB_URL = re.compile(r"https?://[^\s/@]+/[^\s/]+/[^\s/]+")
_SCP = re.compile(r"(?:ssh://)?git@([^\s:/]+)[:/]([^\s/]+)/([^\s/]+?)(?:\.git)?/?")


@dataclass(frozen=True)
class Notify:
    """The `flux.notification` settings: off when `secret_ref` is empty."""

    secret_ref: str = ""
    address: str = ""  # the repository's URL; empty: the run's repository
    dispatch: bool = False

    @property
    def on(self) -> bool:
        return bool(self.secret_ref)


@dataclass(frozen=True)
class Environment:
    """The notification objects of the Kustomizations that follow one tag in one namespace."""

    tag: str
    namespace: str
    kustomizations: tuple[str, ...]
    objects: tuple[dict[str, Any], ...]

    @property
    def file_name(self) -> str:
        # `_` is in no Kubernetes name: never the file of a target (`<name>.yaml`).
        return f"_notifications.{self.namespace}.{slug(self.tag)}.yaml"


def settings(config: Config) -> Notify:
    s = {k.removeprefix(PREFIX): v for k, v in config.flux if k.startswith(PREFIX)}
    notify = Notify(
        str(s.get("secretRef", "")),
        str(s.get("address", "")),
        s.get("dispatch") is True,
    )
    if notify.secret_ref and (
        len(notify.secret_ref) > 253 or not NAME.fullmatch(notify.secret_ref)
    ):
        raise ConfigError(
            config.path,
            "flux.notification.secretRef",
            f"{notify.secret_ref!r} is not a valid Kubernetes name (lower case letters, digits, - and .)",
        )
    return notify


def repository_url(notify: Notify, config: Config, github_url: str, remote: str) -> str:
    """The repository the cluster reports to: `flux.notification.address`, else the configuration's
    `source`, else the run's GitHub repository, else the git remote (an `https://` URL, or
    `git@host:owner/repo` turned into one)."""
    for url in (notify.address, config.source, github_url):
        if url and GITHUB_URL.fullmatch(url.removesuffix(".git")):
            return url.removesuffix(".git")
    if (
        remote
        and GITHUB_URL.fullmatch(remote.removesuffix(".git"))
        and "@" not in remote
    ):
        return remote.removesuffix(".git")
    scp = _SCP.fullmatch(remote)
    if scp:
        return f"https://{scp[1]}/{scp[2]}/{scp[3]}"
    raise ConfigError(
        config.path,
        "flux.notification.address",
        "the repository Flux reports to is unknown (no `source`, no GitHub repository, no https "
        "remote): set it, e.g. https://github.com/OWNER/REPO",
    )


def slug(tag: str) -> str:
    """A tag as part of a Kubernetes name: lower case, anything else a `-`."""
    return re.sub(r"[^a-z0-9-]+", "-", tag.lower()).strip("-") or "x"


def environments(
    syncs: Sequence[SyncConfig],
) -> dict[tuple[str, str], list[SyncConfig]]:
    """The targets' Kustomizations by (the tag they follow, their namespace), in order."""
    groups: dict[tuple[str, str], list[SyncConfig]] = {}
    for sync in syncs:
        tag = str(sync.objects[0]["spec"]["ref"]["tag"])
        groups.setdefault((tag, sync.namespace), []).append(sync)
    return groups


def generate(
    config: Config, syncs: Sequence[SyncConfig], notify: Notify, url: str
) -> list[Environment]:
    """One Environment per (tag, namespace). ConfigError when two tags give the same object names."""
    if not notify.on:
        return []
    out: list[Environment] = []
    seen: dict[tuple[str, str], str] = {}
    for (tag, namespace), group in environments(syncs).items():
        other = seen.setdefault((namespace, slug(tag)), tag)
        if other != tag:
            raise ConfigError(
                config.path,
                "flux.notification",
                f"tags {other!r} and {tag!r} would both name the notification objects "
                f"github-status-{slug(tag)}: use tags that differ in more than case and punctuation",
            )
        names = tuple(s.name for s in group)
        objects = objects_for(tag, namespace, names, notify, url)
        out.append(Environment(tag, namespace, names, objects))
    return out


def objects_for(
    tag: str, namespace: str, kustomizations: Sequence[str], notify: Notify, url: str
) -> tuple[dict[str, Any], ...]:
    """Provider and Alert of type `github` (commit statuses); with `dispatch`, of type
    `githubdispatch` too."""
    kinds = [("github-status", "github")]
    if notify.dispatch:
        kinds.append(("github-dispatch", "githubdispatch"))
    objects: list[dict[str, Any]] = []
    for prefix, kind in kinds:
        name = f"{prefix}-{slug(tag)}"[:253].rstrip("-")
        objects += pair(name, namespace, kind, url, notify.secret_ref, kustomizations)
    return tuple(objects)


def pair(
    name: str,
    namespace: str,
    kind: str,
    url: str,
    secret: str,
    kustomizations: Sequence[str],
) -> tuple[dict[str, Any], dict[str, Any]]:
    meta = {"name": name, "namespace": namespace}
    provider = {"type": kind, "address": url, "secretRef": {"name": secret}}
    alert = {
        "providerRef": {"name": name},
        # info: the successful reconciliation too (it carries `commit_status: update`), not errors only
        "eventSeverity": "info",
        "eventSources": [{"kind": "Kustomization", "name": k} for k in kustomizations],
    }
    return (
        {
            "apiVersion": NOTIFICATION_API,
            "kind": "Provider",
            "metadata": dict(meta),
            "spec": provider,
        },
        {
            "apiVersion": NOTIFICATION_API,
            "kind": "Alert",
            "metadata": dict(meta),
            "spec": alert,
        },
    )


def to_yaml(envs: Sequence[Environment], config_path: str) -> str:
    parts = []
    for env in envs:
        docs = [
            yaml.safe_dump(o, sort_keys=False, default_flow_style=False)
            for o in env.objects
        ]
        head = (
            f"# Flux notifications of environment {env.tag} ({config_path}): commit statuses"
            f"{' and repository_dispatch events' if len(env.objects) > 2 else ''} for "
            f"{', '.join(env.kustomizations)}.\n"
            "# Written by timoni-flux-push flux-config: change the configuration and generate it again.\n"
        )
        parts.append(f"---\n{head}" + "---\n".join(docs))
    return "".join(parts)


def write_files(
    envs: Sequence[Environment], config_path: str, directory: Path
) -> list[Path]:
    """One file per environment next to the targets' files (flux_config.write_files)."""
    directory.mkdir(parents=True, exist_ok=True)
    return [
        write_once(directory / e.file_name, to_yaml([e], config_path)) for e in envs
    ]


def dispatch_objects(
    envs: Mapping[tuple[str, str], Sequence[str]], notify: Notify, url: str
) -> str:
    """The githubdispatch Provider and Alert of the given (tag, namespace) -> Kustomizations, as
    YAML: what a push with deployments shows next to its deployments."""
    docs: list[dict[str, Any]] = []
    for (tag, namespace), names in envs.items():
        name = f"github-dispatch-{slug(tag)}"
        secret = notify.secret_ref or "github-token"
        docs += pair(name, namespace, "githubdispatch", url, secret, names)
    return "---\n".join(
        yaml.safe_dump(o, sort_keys=False, default_flow_style=False) for o in docs
    )
