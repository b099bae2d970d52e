"""The job summary and the pull-request comment, byte for byte, against files in snapshots/.

A change to the markdown shows here as a diff a reviewer reads. Regenerate only deliberately:
`UPDATE_SNAPSHOTS=1 make unit`, then read `git diff tests/unit/report/snapshots`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support.samples import (
    DIGEST,
    STAMP,
    annotation,
    comment_markdown,
    dry_results,
    plan,
    result,
    summary_markdown,
)

from gitops_action.report import comment
from gitops_action.report import summary as report

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"


def check(name: str, text: str) -> None:
    path = SNAPSHOTS / name
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, "utf-8")
    if not path.is_file():
        pytest.fail(
            f"{path} is missing: run with UPDATE_SNAPSHOTS=1 once, then read the file",
            pytrace=False,
        )
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
        result(
            "webapp-production",
            "unchanged",
            digest=DIGEST.replace("ab12", "cd34"),
            seconds=0.5,
        ),
        result(
            "billing|<script>",
            "failed",
            error="timoni build failed (apps/billing/values.cue:3): values.port: conflicting values",
            annotations=[
                annotation(
                    "apps/billing/values.cue",
                    3,
                    1,
                    "values.port: conflicting values 443 and string",
                )
            ],
            seconds=1.0,
            reasons=("module modules/webapp changed (modules/webapp/timoni.cue)",),
        ),
        result(
            "platform", "skipped", error="an older commit: the tag holds a newer one"
        ),
    ]


def test_push_summary() -> None:
    results = push_results()
    warnings = ("instances[2].match: pattern 'x/{name}.cue' matches no file",)
    text = report.summary(
        plan(results, warnings=warnings), results, mode="push", stamp=STAMP
    )
    check("summary-push.md", text)


def test_dry_run_summary_with_diffs() -> None:
    check("summary-dry-run.md", summary_markdown())


def test_pull_request_comment() -> None:
    check("comment.md", comment_markdown())


def test_comment_with_no_change() -> None:
    results = [r for r in dry_results() if r.target.id == "webapp-production"]
    check(
        "comment-no-change.md",
        comment.render(results, config_path="--x--.yaml", run_url="", stamp=STAMP),
    )
