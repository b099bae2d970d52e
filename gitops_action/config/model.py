"""What a configuration is once loaded: its `Target`s and the `Config` holding them (values only;
loading and checking them is targets.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

# A `flux:` block flattened to sorted (dotted key, value) pairs, e.g. ("source.interval", "1m"):
# hashable, so targets stay usable as dictionary keys.
FluxSettings = tuple[tuple[str, str | bool], ...]


def flatten(block: dict[str, Any] | None, prefix: str = "") -> FluxSettings:
    out: list[tuple[str, str | bool]] = []
    for key, value in (block or {}).items():
        if isinstance(value, dict):
            out.extend(flatten(value, f"{prefix}{key}."))
        else:
            out.append((f"{prefix}{key}", value))
    return tuple(sorted(out))


@dataclass(frozen=True)
class Target:
    """One thing that is rendered and pushed: a module instance or a bundle."""

    id: str
    kind: Literal["instance", "bundle"]
    name: str  # timoni instance name, or the bundle's name
    artifact: str  # oci://repository, no tag
    tags: tuple[str, ...]
    # values files (instances) or bundle files, repo-relative, in order
    files: tuple[str, ...]
    namespace: str = ""
    module: str = ""  # repo-relative directory, or oci://...
    version: str = ""
    watch: tuple[str, ...] = ()
    digest: str = ""  # oci:// modules: timoni build --digest
    # Its own `flux:` settings (flux_config.py), flattened: they shape the cluster's sync
    # configuration, not the artifact, so a change to them is no reason to render again.
    flux: FluxSettings = field(default=(), compare=False)
    # Where the target comes from, for messages; not part of its identity.
    key: str = field(default="", compare=False)
    line: int | None = field(default=None, compare=False)
    # A file a `match` picked up that cannot be an instance: this target fails, not the whole run.
    problem: str = field(default="", compare=False)

    @property
    def local_module(self) -> str | None:
        return (
            None if not self.module or self.module.startswith("oci://") else self.module
        )


@dataclass(frozen=True)
class Config:
    path: str
    registry: str
    source: str
    targets: tuple[Target, ...]
    warnings: tuple[str, ...] = ()
    flux: FluxSettings = ()  # the top-level `flux:` defaults

    def by_id(self) -> dict[str, Target]:
        return {t.id: t for t in self.targets}
