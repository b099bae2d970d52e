"""The job summary and the pull-request comment, byte for byte, against files in snapshots/.

A change to the markdown shows here as a diff a reviewer reads. Regenerate only deliberately:
`UPDATE_SNAPSHOTS=1 make unit`, then read `git diff tests/unit/snapshots`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from samples import DIGEST, annotation, plan, result, stream_diff

from gitops_action import comment, report

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"

OLD = "kind: ConfigMap\nmetadata: {name: app, namespace: apps}\ndata: {replicas: '1'}\n"
NEW = (
    "kind: ConfigMap\nmetadata: {name: app, namespace: apps}\ndata: {replicas: '2'}\n---\n"
    "kind: Service\nmetadata: {name: app, namespace: apps}\n"
)


def check(name: str, text: str) -> None:
    path = SNAPSHOTS / name
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, "utf-8")
    if not path.is_file():
        pytest.fail(f"{path} is missing: run with UPDATE_SNAPSHOTS=1 once, then read the file", pytrace=False)
    assert text == path.read_text("utf-8")


def push_results() -> list[report.TargetResult]:
    return [
        result(
            "webapp-staging",
            "pushed",
            digest=DIGEST,
            seconds=2.25,
            reasons=("apps/webapp/values.cue modified",),
        ),
        result("webapp-production", "unchanged", digest=DIGEST.replace("ab12", "cd34"), seconds=0.5),
        result(
            "billing|<script>",
            "failed",
            error="timoni build failed (apps/billing/values.cue:3): values.port: conflicting values",
            annotations=[
                annotation("apps/billing/values.cue", 3, 1, "values.port: conflicting values 443 and string")
            ],
            seconds=1.0,
            reasons=("module modules/webapp changed (modules/webapp/timoni.cue)",),
        ),
        result("platform", "skipped", error="an older commit: the tag holds a newer one"),
    ]


def dry_results() -> list[report.TargetResult]:
    return [
        result("webapp-staging", "dry-run", diff=stream_diff(OLD, NEW), seconds=1.5),
        result("webapp-new", "dry-run", diff=stream_diff("", OLD), new_target=True),
        result("webapp-production", "dry-run", diff=stream_diff(OLD, OLD)),
        result("billing", "failed", error="flux: UNAUTHORIZED @someone"),
    ]


def test_push_summary() -> None:
    results = push_results()
    warnings = ("instances[2].match: pattern 'x/{name}.cue' matches no file",)
    check("summary-push.md", report.summary(plan(results, warnings=warnings), results, mode="push"))


def test_dry_run_summary_with_diffs() -> None:
    results = dry_results()
    text = report.summary(plan(results), results, mode="dry-run")
    check("summary-dry-run.md", text + comment.summary_diffs(results, limit=report.SUMMARY_LIMIT - len(text)))


def test_pull_request_comment() -> None:
    body = comment.render(
        dry_results(), config_path=".timoni-flux.yaml", run_url="https://github.com/o/r/actions/runs/1"
    )
    check("comment.md", body)


def test_comment_with_no_change() -> None:
    results = [r for r in dry_results() if r.target.id == "webapp-production"]
    check("comment-no-change.md", comment.render(results, config_path="--x--.yaml", run_url=""))
