"""What happened to each target: the value every step hands on and reporting reads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from gitops_action import errors
from gitops_action.config.targets import Target
from gitops_action.render import manifests

Status = Literal[
    "pushed", "unchanged", "dry-run", "planned", "failed", "removed", "skipped"
]


@dataclass(frozen=True)
class Annotation:
    file: str
    line: int
    col: int
    message: str


@dataclass(frozen=True)
class TargetResult:
    target: Target
    status: Status
    revision: str = ""
    digest: str | None = None
    error: str | None = None
    seconds: float = 0.0
    reasons: tuple[str, ...] = ()
    annotations: list[Annotation] = field(default_factory=list)
    # what timoni and flux said, for the log group
    log: list[str] = field(default_factory=list)
    diff: manifests.StreamDiff | None = None
    new_target: bool = False  # dry-run: nothing deployed at the tag yet
    base: str = ""  # the commit the tag held when planning (planned from the tags)
    # delivered because its tag was behind, not because of the event's diff
    caught_up: bool = False
    # a verified cosign signature is on `digest` (signing.sign_results)
    signed: bool = False
    signature: str | None = None  # where it is: oci://REPO:sha256-<hex>.sig
    # This run pushed `digest`, or compared its whole content with its own render: only then may
    # signing create a signature for it (an `unchanged` re-run's digest may only be verified).
    built: bool = False
    # the check record this run wrote (oci://REPO@DIGEST): signed too
    record: str | None = None

    @property
    def url(self) -> str | None:
        return f"{self.target.artifact}@{self.digest}" if self.digest else None


# A target starts or finishes: what the pipeline tells whoever shows progress (report/progress.py).
Phase = Literal["started", "finished"]


@dataclass(frozen=True)
class Event:
    phase: Phase
    target: Target
    result: TargetResult | None = None  # set when finished


def exit_code(results: Sequence[TargetResult]) -> int:
    """A push, dry run or plan: 1 when a target failed (errors.exit_code, every mode's rule)."""
    return errors.exit_code(failed=any(r.status == "failed" for r in results))
