"""The end of a run: log groups, annotations, the job summary, the outputs and the PR comment, every
known secret redacted on the way out. Also the report of a run that stopped (exit 2 or 1)."""

from __future__ import annotations

import json
import os
import sys
import traceback
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import github_action_utils as gha

from gitops_action.changes.events import CommitRange
from gitops_action.errors import (
    INTERNAL_TRACEBACK,
    ActionError,
    ToolMissing,
    UsageError,
    exit_code,
)
from gitops_action.inputs.context import Context
from gitops_action.inputs.settings import Settings
from gitops_action.plan.planner import Plan
from gitops_action.push.results import TargetResult
from gitops_action.report import comment
from gitops_action.report import summary as report
from gitops_action.report.notice import warn
from gitops_action.report.progress import one_line
from gitops_action.secrets import redact
from gitops_action.text import md, plain


@dataclass(frozen=True)
class Reporting:
    """What the end of a run takes from the inputs: where the summary, the outputs and the dry run's
    comment go, and the secrets nothing it writes may show."""

    secrets: tuple[str, ...] = field(default=(), repr=False)
    summary_file: str = ""
    output_file: str = ""
    comment_file: str = ""  # dry run: the PR comment's Markdown also goes here
    comment: bool = True  # dry run on a pull request: write the PR comment
    github_token: str = field(default="", repr=False)
    config_path: str = ""  # the PR comment's marker names it

    @classmethod
    def of(cls, settings: Settings) -> Reporting:
        return cls(
            secrets=settings.secrets(),
            summary_file=settings.summary_file,
            output_file=settings.output_file,
            comment_file=settings.comment_file,
            comment=settings.comment,
            github_token=settings.github_token,
            config_path=settings.config,
        )


NO_ARTIFACTS = {
    "artifacts": "[]",
    "matrix": json.dumps({"include": []}),
    "pushed": "0",
    "failed": "0",
    "unchanged": "0",
    "changed": "false",
}


def scrub(results: list[TargetResult], secrets: list[str]) -> list[TargetResult]:
    """Defence in depth: no known secret in what the log, the annotations and the reports show."""
    return [
        replace(
            r,
            error=redact(r.error, secrets) if r.error else r.error,
            log=[redact(x, secrets) for x in r.log],
            annotations=[
                replace(a, message=redact(a.message, secrets)) for a in r.annotations
            ],
        )
        for r in results
    ]


def finish(
    to: Reporting,
    ctx: Context,
    plan: Plan,
    results: list[TargetResult],
    mode: str,
    extra: str = "",
    *,
    listed: Collection[str] = (),
) -> None:
    """`listed`: the targets the progress lines named already, as they stand (not said again)."""
    secrets = list(to.secrets)
    results = scrub(results, secrets)
    if ctx.in_actions:
        report.emit_log(results)
        report.emit_annotations(results)
    else:
        for r in results:
            if r.target.id not in listed:  # the progress lines said it already
                line = (
                    f"{r.target.id}: {r.status}"
                    + (f" {r.url}" if r.url else "")
                    + (f" ({r.error})" if r.error else "")
                )
                # plan's answer: why each target
                reasons = r.reasons if r.status == "planned" else ()
                print(
                    "".join([line, *(f"\n  {one_line(x)}" for x in reasons)]),
                    file=sys.stderr,
                )
            # a bug's traceback (errors.internal_error): no log groups here
            for x in r.log:
                if x.startswith(INTERNAL_TRACEBACK):
                    print(f"{r.target.id}: {x}", file=sys.stderr)
    stamp = report.stamp(
        plan.range.head,
        datetime.now(UTC),
        server_url=ctx.server_url,
        repository=ctx.repository,
    )
    text = report.summary(plan, results, mode=mode, stamp=stamp) + extra
    outputs = report.outputs(plan, results)
    diffs = (
        comment.summary_diffs(results, limit=report.SUMMARY_LIMIT - len(text))
        if mode == "dry-run"
        else ""
    )
    # The dry-run diff shows rendered content: redacted here, where it becomes text.
    text = redact(text + diffs, secrets)
    outputs = {k: redact(v, secrets) for k, v in outputs.items()}
    # the summary stays off a terminal (write): the diffs are news
    if _terminal(to, ctx):
        sys.stdout.write(redact(diffs, secrets))
    write(to, ctx, text, outputs)
    # any CI, or a look before opening the PR
    if mode == "dry-run" and to.comment_file:
        Path(to.comment_file).write_text(
            _comment_body(to, ctx, results, stamp), "utf-8"
        )
    if (
        mode == "dry-run"
        and plan.range.is_pull_request
        and to.comment
        and plan.range.pr_number
    ):
        _comment(to, ctx, plan.range, results, stamp)


def _terminal(to: Reporting, ctx: Context) -> bool:
    """The summary would go to a person's terminal (no summary file): they read the lines instead."""
    path = to.summary_file or os.environ.get("GITHUB_STEP_SUMMARY", "")
    return not ctx.in_actions and not path and sys.stdout.isatty()


def stopped(to: Reporting, ctx: Context, exc: Exception) -> int:
    """Report an error that stopped the run: exit 2 for usage and configuration errors (nothing was
    built), 1 for anything else (an internal error). The summary and outputs are written either way."""
    usage = isinstance(exc, UsageError)
    setup = isinstance(exc, ToolMissing)  # a program to install: no bug, no traceback
    text = str(exc) if isinstance(exc, ActionError) else f"{type(exc).__name__}: {exc}"
    msg = plain(redact(text, list(to.secrets)))
    where = exc if isinstance(exc, ActionError) else ActionError()
    if ctx.in_actions:
        kind = (
            "configuration or usage error"
            if usage
            else "setup error"
            if setup
            else "internal error"
        )
        gha.error(
            msg,
            title=f"timoni-flux-push: {kind}",
            file=where.file or None,
            line=where.line,
        )
    # in Actions the escaped annotation says it; a plain print could carry workflow commands
    else:
        print(
            f"error: {msg}" if usage or setup else f"error: internal error: {msg}",
            file=sys.stderr,
        )
    # a bug: its one line alone tells nobody where it happened
    if not isinstance(exc, ActionError):
        _traceback(ctx, exc, list(to.secrets))
    said = (
        "Nothing was built"
        if usage
        else "The run stopped: a program it needs is missing"
        if setup
        else "The run stopped on an internal error"
    )
    text = f"## timoni-flux-push\n\n{said}: {md(msg)}\n"
    # said on stderr
    write(to, ctx, text, dict(NO_ARTIFACTS), stdout=not _terminal(to, ctx))
    return exit_code(failed=True, usage=usage)


def _traceback(ctx: Context, exc: BaseException, secrets: list[str]) -> None:
    """The traceback of an internal error: in the Actions log, a collapsed group (its text inside
    stop-commands: file names in it are the repository's); on a terminal, stderr."""
    text = plain(redact("".join(traceback.format_exception(exc)), secrets)).rstrip()
    if not ctx.in_actions:
        print(text, file=sys.stderr)
        return
    gha.start_group("timoni-flux-push: internal error (traceback)")
    log_block(text)
    gha.end_group()


def log_block(text: str) -> None:
    """Untrusted text in the Actions log, where no line of it can be a workflow command."""
    token = f"stop-{uuid.uuid4().hex}"
    gha.begin_stop_commands(token)
    print(text, flush=True)
    gha.end_stop_commands(token)


def _comment(
    to: Reporting,
    ctx: Context,
    rng: CommitRange,
    results: list[TargetResult],
    stamp: report.Stamp,
) -> None:
    if not to.github_token:
        warn(ctx, "no github-token: the pull request comment was not written")
        return
    # PyGithub loads slowly: only on pull requests
    from gitops_action.report.github import upsert_pr_comment

    secrets = list(to.secrets)
    body = _comment_body(to, ctx, results, stamp)
    outcome = upsert_pr_comment(
        api_url=ctx.api_url,
        token=to.github_token,
        repository=ctx.repository,
        number=rng.pr_number or 0,
        marker=comment.marker(to.config_path),
        body=body,
    )
    if outcome.action in ("forbidden", "failed"):
        warn(ctx, redact(outcome.message, secrets))
    else:
        say(ctx, f"pull request comment {outcome.action}: {outcome.html_url}")


def _comment_body(
    to: Reporting, ctx: Context, results: list[TargetResult], stamp: report.Stamp
) -> str:
    """The pull request comment's Markdown, every known secret redacted."""
    body = comment.render(
        results, config_path=to.config_path, run_url=ctx.run_url(), stamp=stamp
    )
    return redact(body, list(to.secrets))


def say(ctx: Context, message: str) -> None:
    if ctx.in_actions:
        gha.notice(message, title="timoni-flux-push")
    else:
        print(message, file=sys.stderr)


def write(
    to: Reporting,
    ctx: Context,
    summary: str,
    outputs: dict[str, str],
    *,
    stdout: bool = True,
) -> None:
    """The summary to the step summary or --summary-file, else to stdout (unless `stdout` is False:
    stdout carries something else; or stdout is a person's terminal); the outputs to GITHUB_OUTPUT
    and --output-file."""
    summary_path = to.summary_file or os.environ.get("GITHUB_STEP_SUMMARY", "")
    if summary_path:
        # A file name that is not UTF-8 (kept by surrogateescape) is written as \udcXX, never a crash.
        with open(summary_path, "a", encoding="utf-8", errors="backslashreplace") as fh:
            fh.write(summary)
    elif stdout and _terminal(to, ctx):
        # stderr named every target (and said any error): the Markdown would list them again
        print("the Markdown summary: add --summary-file FILE", file=sys.stderr)
    elif stdout:
        print(summary)
    if os.environ.get("GITHUB_OUTPUT"):
        for k, v in outputs.items():
            gha.set_output(k, v)
    if to.output_file:
        Path(to.output_file).write_text(json.dumps(outputs, indent=2), "utf-8")
