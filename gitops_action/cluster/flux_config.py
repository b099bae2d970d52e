"""The cluster side: for every target, the Flux `OCIRepository` that follows its tag and the
`Kustomization` that applies it, as the Timoni GitOps guide's flux-oci-sync module writes them.

Pure: targets and the `flux:` settings in, objects and deterministic YAML out (the same
configuration gives byte-identical output, so the generated files can be committed and diffed).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gitops_action.config.model import Config, FluxSettings, Target
from gitops_action.config.targets import TAG_RE, ConfigError

# the only version Flux 2.9 serves (v1beta2 went in 1.8)
SOURCE_API = "source.toolkit.fluxcd.io/v1"
KUSTOMIZE_API = "kustomize.toolkit.fluxcd.io/v1"
# flux-oci-sync's defaults (artifact interval 1m; sync interval 60m, retry 5m, timeout 3m, path ./,
# prune and wait on), in the Go durations Flux reads.
DEFAULTS: dict[str, str | bool] = {
    "namespace": "flux-system",
    "source.interval": "1m",
    "source.provider": "generic",
    "source.insecure": False,
    "kustomization.interval": "60m",
    "kustomization.retryInterval": "5m",
    "kustomization.timeout": "3m",
    "kustomization.path": "./",
    "kustomization.prune": True,
    "kustomization.wait": True,
}
NAME = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")


@dataclass(frozen=True)
class SyncConfig:
    """The two objects of one target."""

    target: Target
    name: str
    namespace: str
    objects: tuple[dict[str, Any], dict[str, Any]]

    @property
    def file_name(self) -> str:
        return f"{self.name}.yaml"


def settings_for(
    target: Target, defaults: FluxSettings, tag: str = ""
) -> dict[str, str | bool]:
    """Built-in defaults, then the file's `flux:` defaults, then the target's own `flux:`; `tag`
    (the command line's) over all of them."""
    merged: dict[str, str | bool] = {**DEFAULTS, **dict(defaults), **dict(target.flux)}
    merged.setdefault("source.tag", target.tags[0])
    if tag:
        merged["source.tag"] = tag
    if target.kind == "instance" and target.namespace:
        # Timoni already sets the instance's namespace; targetNamespace also places what has none.
        merged.setdefault("kustomization.targetNamespace", target.namespace)
    merged.setdefault("name", target.id.replace("/", "-"))
    return merged


def objects_for(
    target: Target,
    settings: Mapping[str, str | bool],
    *,
    verify: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The OCIRepository and the Kustomization of one target. `verify` is the OCIRepository's
    `spec.verify` block (signature verification), emitted as given."""
    s = settings
    meta = {"name": s["name"], "namespace": s["namespace"]}
    source_spec: dict[str, Any] = {
        "interval": s["source.interval"],
        "url": target.artifact,
        "ref": {"tag": s["source.tag"]},
        "provider": s["source.provider"],
    }
    if "source.secretRef" in s:
        source_spec["secretRef"] = {"name": s["source.secretRef"]}
    if s["source.insecure"]:
        source_spec["insecure"] = True
    if verify:
        source_spec["verify"] = dict(verify)
    sync_spec: dict[str, Any] = {
        "interval": s["kustomization.interval"],
        "retryInterval": s["kustomization.retryInterval"],
        "timeout": s["kustomization.timeout"],
        "sourceRef": {"kind": "OCIRepository", "name": s["name"]},
        "path": s["kustomization.path"],
        "prune": s["kustomization.prune"],
        "wait": s["kustomization.wait"],
    }
    for key in ("targetNamespace", "serviceAccountName"):
        if f"kustomization.{key}" in s:
            sync_spec[key] = s[f"kustomization.{key}"]
    return (
        {
            "apiVersion": SOURCE_API,
            "kind": "OCIRepository",
            "metadata": dict(meta),
            "spec": source_spec,
        },
        {
            "apiVersion": KUSTOMIZE_API,
            "kind": "Kustomization",
            "metadata": dict(meta),
            "spec": sync_spec,
        },
    )


def generate(
    config: Config,
    targets: Sequence[Target],
    *,
    verify: Mapping[str, Any] | None = None,
    tag: str = "",
) -> list[SyncConfig]:
    """One SyncConfig per target, in configuration order. ConfigError when a name is not a valid
    Kubernetes name or two targets would write the same objects."""
    out: list[SyncConfig] = []
    # by name alone: it is also the file name in --output-dir
    seen: dict[str, Target] = {}
    for t in targets:
        s = settings_for(t, config.flux, tag)
        _check_names(s, t, config.path)
        name, namespace = str(s["name"]), str(s["namespace"])
        other = seen.get(name)
        if other is not None:
            raise ConfigError(
                config.path,
                t.key,
                f"the Flux objects of {t.id} and {other.id} would both be named {name!r}: "
                "give one of them `flux.name`",
                t.line,
            )
        seen[name] = t
        out.append(SyncConfig(t, name, namespace, objects_for(t, s, verify=verify)))
    return out


NAMED = (
    "name",
    "namespace",
    "source.secretRef",
    "kustomization.serviceAccountName",
    "kustomization.targetNamespace",
)


def _check_names(s: Mapping[str, str | bool], t: Target, file: str) -> None:
    """Names as Kubernetes takes them, once the placeholders are filled in."""
    for key in NAMED:
        value = s.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or len(value) > 253 or not NAME.fullmatch(value):
            hint = ": set `flux.name`" if key == "name" else ""
            raise ConfigError(
                file,
                f"{t.key}.flux.{key}",
                f"{value!r} is not a valid Kubernetes name for the Flux objects of {t.id} "
                f"(lower case letters, digits, - and .){hint}",
                t.line,
            )
    tag = s["source.tag"]
    if not isinstance(tag, str) or not TAG_RE.fullmatch(tag):
        raise ConfigError(
            file, f"{t.key}.flux.source.tag", f"{tag!r} is not a valid OCI tag", t.line
        )


def header(sync: SyncConfig, config_path: str) -> str:
    return (
        f"# Flux sync configuration of {sync.target.kind} {sync.target.id} ({config_path}).\n"
        "# Written by timoni-flux-push flux-config: change the configuration and generate it again.\n"
    )


def to_yaml(syncs: Sequence[SyncConfig], config_path: str) -> str:
    """One YAML stream: for each target a comment, then its two objects."""
    parts = []
    for sync in syncs:
        docs = [
            yaml.safe_dump(o, sort_keys=False, default_flow_style=False)
            for o in sync.objects
        ]
        parts.append(f"---\n{header(sync, config_path)}" + "---\n".join(docs))
    return "".join(parts)


def write_files(
    syncs: Sequence[SyncConfig], config_path: str, directory: Path
) -> list[Path]:
    """One file per target, `DIRECTORY/<name>.yaml`; a file already holding the same bytes is not
    written again (its modification time stays)."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for sync in syncs:
        written.append(
            write_once(directory / sync.file_name, to_yaml([sync], config_path))
        )
    return written


def write_once(path: Path, text: str) -> Path:
    """Write `text` unless the file holds it already; never through a symlink."""
    # the repository's content: never write through a link it planted
    if path.is_symlink():
        path.unlink()
    if not (path.is_file() and path.read_text("utf-8") == text):
        path.write_text(text, "utf-8")
    return path
