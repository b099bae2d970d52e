"""Results made by hand for the markdown tests: one place that knows how a result is built."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gitops_action.changes.events import CommitRange
from gitops_action.changes.gitrepo import Change
from gitops_action.config.targets import Config, Target
from gitops_action.plan.planner import Plan, PlannedTarget
from gitops_action.push import results
from gitops_action.render import manifests
from gitops_action.report import comment
from gitops_action.report import summary as report

HEAD = "c0ffee" + "1" * 34
BASE = "bada55" + "2" * 34
DIGEST = "sha256:" + "ab12" * 16
RUN_URL = "https://github.com/octo-org/gitops/actions/runs/4242"
# The commit and the time a report names: fixed, so snapshots and screenshots do not change by the hour.
STAMP = report.stamp(
    HEAD,
    datetime(2026, 12, 6, 19, 55, tzinfo=UTC),
    server_url="https://github.com",
    repository="octo-org/gitops",
)


def target(
    tid: str, *, kind: str = "instance", tags: tuple[str, ...] = ("staging",)
) -> Target:
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


def plan(
    results: list[results.TargetResult],
    *,
    warnings: tuple[str, ...] = (),
    total: int = 5,
) -> Plan:
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
        changes=(
            Change("M", "apps/webapp/values.cue"),
            Change("A", "apps/new/values.cue"),
        ),
    )


def stream_diff(old: str, new: str) -> manifests.StreamDiff:
    return manifests.diff(manifests.parse(old), manifests.parse(new))


# One pull request's dry run, shared by the snapshots, the rendered-Markdown tests and the screenshots
# in docs/ (tools/screenshots.py): a changed target (an object changed, one added, one removed, a
# Secret whose value changed), an added target (nothing deployed yet), a removed target, a failed
# target whose error holds Markdown and HTML characters, and an unchanged target.
DEPLOYED = """\
kind: ConfigMap
metadata: {name: webapp, namespace: apps}
data: {replicas: '1', mode: fast}
---
kind: Secret
metadata: {name: webapp-db, namespace: apps}
stringData: {password: s3cret-old}
---
kind: ConfigMap
metadata: {name: webapp-legacy, namespace: apps}
data: {enabled: 'true'}
"""
RENDERED = """\
kind: ConfigMap
metadata: {name: webapp, namespace: apps}
data: {replicas: '2', mode: fast}
---
kind: Secret
metadata: {name: webapp-db, namespace: apps}
stringData: {password: s3cret-new}
---
kind: Service
metadata: {name: webapp, namespace: apps}
spec: {ports: [{port: 80}]}
"""
NEW_TARGET = """\
kind: ConfigMap
metadata: {name: search, namespace: apps}
data: {replicas: '1'}
"""
CUE_ERROR = (
    "timoni build failed (apps/billing/values.cue:3): values.port: conflicting values 443 and string:\n"
    "    ./apps/billing/values.cue:3:8\n"
    "    values.port ~ <int> & @someone [see **docs**]"
)


def dry_results() -> list[results.TargetResult]:
    return [
        result(
            "webapp-staging",
            "dry-run",
            diff=stream_diff(DEPLOYED, RENDERED),
            seconds=1.5,
        ),
        result(
            "search",
            "dry-run",
            diff=stream_diff("", NEW_TARGET),
            new_target=True,
            seconds=0.8,
        ),
        result("legacy", "removed", reasons=("apps/legacy/values.cue deleted",)),
        result(
            "billing",
            "failed",
            error=CUE_ERROR,
            annotations=[
                annotation(
                    "apps/billing/values.cue", 3, 8, "values.port: conflicting values"
                )
            ],
            seconds=0.4,
        ),
        result(
            "webapp-production",
            "dry-run",
            diff=stream_diff(DEPLOYED, DEPLOYED),
            seconds=1.1,
        ),
    ]


def comment_markdown() -> str:
    """The pull request comment of the sample dry run."""
    return comment.render(
        dry_results(), config_path=".timoni-flux.yaml", run_url=RUN_URL, stamp=STAMP
    )


def summary_markdown() -> str:
    """The job summary of the sample dry run, put together as finish.finish does."""
    rs = dry_results()
    text = report.summary(plan(rs), rs, mode="dry-run", stamp=STAMP)
    return text + comment.summary_diffs(rs, limit=report.SUMMARY_LIMIT - len(text))
