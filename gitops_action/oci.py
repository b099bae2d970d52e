"""What a call to an OCI registry gives back, whoever made it: `flux` (push, tag, pull) or the
registry's HTTP API (`registry.Reader`). One set of types, so the pipeline never asks which."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

# "" for success; else what a caller does about it: missing (nothing at the tag), auth (a refused
# login: not retried), transient (retried with backoff), fatal (anything else).
Failure = Literal["", "missing", "auth", "transient", "fatal"]


@dataclass(frozen=True)
class Call:
    ok: bool
    failure: Failure
    error: str  # one line worth showing
    seconds: float


@dataclass(frozen=True)
class Pushed:
    call: Call
    digest: str = ""


@dataclass(frozen=True)
class Pulled:
    call: Call
    revision: str = ""
    digest: str = ""
    directory: Path | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)  # the manifest's (HTTP reads only)
    foreign: str = ""  # what the tag holds when it is not a Flux artifact (HTTP reads only)


class FluxOnly(Exception):
    """A read only `flux pull` does the way flux would (a cloud provider, a credential helper, an
    artifact flux did not push...): the registry reader hands it over, saying why."""
