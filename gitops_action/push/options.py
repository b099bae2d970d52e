"""What every step of a push run takes: the run's options and shared clients (`Options`), and the
one-writer-per-repository locks. Its own module so that the steps (writes, settle) and the
orchestrator (pipeline) all import it, and not each other."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from gitops_action.changes.gitrepo import Repo
from gitops_action.plan.history import Ancestry
from gitops_action.registry.flux import Flux
from gitops_action.registry.reader import Reader
from gitops_action.registry.retry import Retry


class RepositoryLocks:
    """One lock per OCI repository: targets that share a repository (different tags) write to it one
    at a time. Concurrent uploads of the same blob to one repository (the flux config blob is the same
    for every push) can fail in the registry: `DIGEST_INVALID`, `MANIFEST_BLOB_UNKNOWN`."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def __call__(self, artifact: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(artifact, threading.Lock())


Mode = Literal["push", "dry-run"]


@dataclass(frozen=True)
class Options:
    mode: Mode
    repo: Repo  # history: ancestry checks, fetching
    root: Path  # the files at head (the work tree, or an export of head)
    head: str
    revision: str
    source: str
    flux: Flux
    reader: Reader
    scratch: Path
    parallel: int = 2
    skip_unchanged: bool = True
    render_timeout: float = 300
    runtime_from_env: bool = False
    # transient registry failures (registry/retry.py)
    retry: Retry = field(default_factory=Retry)
    secrets: tuple[str, ...] = ()
    config_path: str = ""
    ancestry: Ancestry = field(default_factory=Ancestry, compare=False, repr=False)
    timoni_identity: str = ""  # timoni.identity(): part of render_inputs
    writing: RepositoryLocks = field(
        default_factory=RepositoryLocks, compare=False, repr=False
    )
    # With signing: does oci://REPO@DIGEST carry a valid signature from the run's key or identity?
    # The tag's annotations are anyone's word; only such a digest may skip the render.
    vouched: Callable[[str], bool] | None = field(
        default=None, compare=False, repr=False
    )
