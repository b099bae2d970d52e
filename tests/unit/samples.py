"""Results made by hand for the markdown tests: one place that knows how a result is built."""

from __future__ import annotations

from typing import Any

from gitops_action import manifests, results
from gitops_action.config import Config, Target
from gitops_action.events import CommitRange
from gitops_action.gitrepo import Change
from gitops_action.planner import Plan, PlannedTarget

HEAD = "c0ffee" + "1" * 34
BASE = "bada55" + "2" * 34
DIGEST = "sha256:" + "ab12" * 16


def target(tid: str, *, kind: str = "instance", tags: tuple[str, ...] = ("staging",)) -> Target:
    return Target(
        id=tid,
        kind=kind,  # type: ignore[arg-type]
        name=tid,
        artifact=f"oci://registry.example.com/gitops/{tid}",
        tags=tags,
        files=(f"apps/{tid}/values.cue",),
        namespace="apps",
        module="modules/webapp",
    )


def result(tid: str, status: str, **fields: Any) -> results.TargetResult:
    return results.TargetResult(target(tid), status, **fields)  # type: ignore[arg-type]


def annotation(file: str, line: int, col: int, message: str) -> results.Annotation:
    return results.Annotation(file, line, col, message)


def plan(results: list[results.TargetResult], *, warnings: tuple[str, ...] = (), total: int = 5) -> Plan:
    targets = tuple(r.target for r in results)
    return Plan(
        config=Config(
            path=".timoni-flux.yaml",
            registry="oci://registry.example.com/gitops",
            source="s",
            targets=targets,
        ),
        range=CommitRange(head=HEAD, base=BASE),
        targets=tuple(PlannedTarget(t, "planned", ("x",)) for t in targets),
        total=total,
        warnings=warnings,
        changes=(Change("M", "apps/webapp/values.cue"), Change("A", "apps/new/values.cue")),
    )


def stream_diff(old: str, new: str) -> manifests.StreamDiff:
    return manifests.diff(manifests.parse(old), manifests.parse(new))
