"""The end of a run: log groups, annotations, the job summary, the outputs and the PR comment, every
known secret redacted on the way out. Also the report of a run that stopped (exit 2 or 1)."""

from __future__ import annotations

import json
import os
import sys
import traceback
import uuid
from dataclasses import replace
from pathlib import Path

import github_action_utils as gha

from . import comment, report
from .context import Context
from .credentials import redact
from .cue_errors import plain
from .errors import INTERNAL_TRACEBACK, ActionError, UsageError
from .events import CommitRange
from .planner import Plan
from .results import TargetResult
from .settings import Settings

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
            annotations=[replace(a, message=redact(a.message, secrets)) for a in r.annotations],
        )
        for r in results
    ]


def finish(
    settings: Settings,
    ctx: Context,
    plan: Plan,
    results: list[TargetResult],
    mode: str,
    extra: str = "",
) -> None:
    secrets = list(settings.secrets())
    results = scrub(results, secrets)
    if ctx.in_actions:
        report.emit_log(results)
        report.emit_annotations(results)
    else:
        for r in results:
            line = (
                f"{r.target.id}: {r.status}"
                + (f" {r.url}" if r.url else "")
                + (f" ({r.error})" if r.error else "")
            )
            print(line, file=sys.stderr)
            for x in r.log:  # a bug's traceback (errors.internal_error): no log groups here
                if x.startswith(INTERNAL_TRACEBACK):
                    print(x, file=sys.stderr)
    text = report.summary(plan, results, mode=mode) + extra
    outputs = report.outputs(plan, results)
    if mode == "dry-run":
        text += comment.summary_diffs(results, limit=report.SUMMARY_LIMIT - len(text))
    # The dry-run diff shows rendered content: redacted here, where it becomes text.
    text = redact(text, secrets)
    outputs = {k: redact(v, secrets) for k, v in outputs.items()}
    write(settings, ctx, text, outputs)
    if mode == "dry-run" and plan.range.is_pull_request and settings.comment and plan.range.pr_number:
        _comment(settings, ctx, plan.range, results)


def stopped(settings: Settings, ctx: Context, exc: Exception) -> int:
    """Report an error that stopped the run: exit 2 for usage and configuration errors (nothing was
    built), 1 for anything else (an internal error). The summary and outputs are written either way."""
    usage = isinstance(exc, UsageError)
    text = str(exc) if isinstance(exc, ActionError) else f"{type(exc).__name__}: {exc}"
    msg = plain(redact(text, list(settings.secrets())))
    where = exc if isinstance(exc, ActionError) else ActionError()
    if ctx.in_actions:
        kind = "configuration or usage error" if usage else "internal error"
        gha.error(msg, title=f"timoni-flux-push: {kind}", file=where.file or None, line=where.line)
    else:  # in Actions the escaped annotation says it; a plain print could carry workflow commands
        print(f"error: {msg}" if usage else f"error: internal error: {msg}", file=sys.stderr)
    if not isinstance(exc, ActionError):  # a bug: its one line alone tells nobody where it happened
        _traceback(ctx, exc, list(settings.secrets()))
    said = "Nothing was built" if usage else "The run stopped on an internal error"
    write(settings, ctx, f"## timoni-flux-push\n\n{said}: {report.md(msg)}\n", dict(NO_ARTIFACTS))
    return 2 if usage else 1


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


def _comment(settings: Settings, ctx: Context, rng: CommitRange, results: list[TargetResult]) -> None:
    if not settings.github_token:
        warn(ctx, "no github-token: the pull request comment was not written")
        return
    from .pr_comment import upsert_pr_comment  # PyGithub loads slowly: only on pull requests

    secrets = list(settings.secrets())
    body = redact(comment.render(results, config_path=settings.config, run_url=ctx.run_url()), secrets)
    outcome = upsert_pr_comment(
        api_url=ctx.api_url,
        token=settings.github_token,
        repository=ctx.repository,
        number=rng.pr_number or 0,
        marker=comment.marker(settings.config),
        body=body,
    )
    if outcome.action in ("forbidden", "failed"):
        warn(ctx, redact(outcome.message, secrets))
    else:
        say(ctx, f"pull request comment {outcome.action}: {outcome.html_url}")


def say(ctx: Context, message: str) -> None:
    if ctx.in_actions:
        gha.notice(message, title="timoni-flux-push")
    else:
        print(message, file=sys.stderr)


def warn(ctx: Context, message: str) -> None:
    if ctx.in_actions:
        gha.warning(plain(message), title="timoni-flux-push")
    else:
        print(f"warning: {message}", file=sys.stderr)


def write(
    settings: Settings, ctx: Context, summary: str, outputs: dict[str, str], *, stdout: bool = True
) -> None:
    """The summary to the step summary or --summary-file, else to stdout (unless `stdout` is False:
    stdout carries something else); the outputs to GITHUB_OUTPUT and --output-file."""
    summary_path = settings.summary_file or os.environ.get("GITHUB_STEP_SUMMARY", "")
    if summary_path:
        # A file name that is not UTF-8 (kept by surrogateescape) is written as \udcXX, never a crash.
        with open(summary_path, "a", encoding="utf-8", errors="backslashreplace") as fh:
            fh.write(summary)
    elif stdout:
        print(summary)
    if os.environ.get("GITHUB_OUTPUT"):
        for k, v in outputs.items():
            gha.set_output(k, v)
    if settings.output_file:
        Path(settings.output_file).write_text(json.dumps(outputs, indent=2), "utf-8")
