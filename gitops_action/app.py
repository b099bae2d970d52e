"""One run, start to end: event -> changes -> plan -> builds -> pushes -> report.

Exit codes: 0 no target failed, 1 a target failed (after every other target ran), 2 a
configuration or usage error (nothing built).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import github_action_utils as gha

from . import comment, events, pipeline, progress, report, timoni
from .config import ConfigError
from .credentials import Credentials, redact, registry_host
from .events import CommitRange, EventError
from .flux import Flux
from .gitrepo import Repo
from .planner import Plan, UsageError, plan_repository
from .registry import Reader
from .settings import Settings, duration_seconds, parallelism


@dataclass(frozen=True)
class Context:
    """The GitHub (or plain CI) environment a run sees."""

    in_actions: bool
    event_name: str
    event_path: str
    sha: str
    ref_name: str
    repository: str
    server_url: str
    api_url: str
    run_id: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Context:
        return cls(
            in_actions=env.get("GITHUB_ACTIONS") == "true",
            event_name=env.get("GITHUB_EVENT_NAME", ""),
            event_path=env.get("GITHUB_EVENT_PATH", ""),
            sha=env.get("GITHUB_SHA", ""),
            ref_name=env.get("GITHUB_REF_NAME", ""),
            repository=env.get("GITHUB_REPOSITORY", ""),
            server_url=env.get("GITHUB_SERVER_URL", "https://github.com"),
            api_url=env.get("GITHUB_API_URL", "https://api.github.com"),
            run_id=env.get("GITHUB_RUN_ID", ""),
        )

    def run_url(self) -> str:
        if not (self.repository and self.run_id):
            return ""
        return f"{self.server_url}/{self.repository}/actions/runs/{self.run_id}"


class Stop(Exception):
    """A usage or configuration error: report it and exit 2."""

    def __init__(self, message: str, file: str = "", line: int | None = None) -> None:
        super().__init__(message)
        self.file, self.line = file, line


def main(settings: Settings, env: Mapping[str, str]) -> int:
    ctx = Context.from_env(env)
    for stream in (sys.stdout, sys.stderr):  # the log stays valid UTF-8 whatever the file names
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    for secret in settings.secrets():
        if ctx.in_actions:
            gha.add_mask(secret)
    scratch = Path(tempfile.mkdtemp(prefix="timoni-flux-push-"))
    try:
        return _main(settings, ctx, scratch)
    except Stop as stop:
        msg = redact(str(stop), list(settings.secrets()))
        if ctx.in_actions:
            gha.error(
                msg,
                title="timoni-flux-push: configuration or usage error",
                file=stop.file or None,
                line=stop.line,
            )
        else:  # in Actions the escaped annotation says it; a plain print could carry workflow commands
            print(f"error: {msg}", file=sys.stderr)
        _write(
            settings,
            ctx,
            f"## timoni-flux-push\n\nNothing was built: {report.md(msg)}\n",
            {
                "artifacts": "[]",
                "matrix": json.dumps({"include": []}),
                "pushed": "0",
                "failed": "0",
                "unchanged": "0",
                "changed": "false",
            },
        )
        return 2
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _main(settings: Settings, ctx: Context, scratch: Path) -> int:
    repo = Repo(settings.workspace.resolve())
    repo.prefetch()  # git answers needed after planning, asked while it plans
    head_ref = settings.head or ctx.sha or "HEAD"
    head = repo.resolve(head_ref)
    if head is None:
        raise Stop(f"head commit {head_ref!r} is not in the repository at {repo.root}")
    try:
        payload = events.load_payload(ctx.event_path) if ctx.event_name else {}
        rng = events.commit_range(
            repo,
            event=ctx.event_name,
            payload=payload,
            head=head,
            base_override=settings.base,
            take_all=settings.all,
        )
    except EventError as exc:
        raise Stop(str(exc)) from exc
    mode = settings.mode
    if mode == "auto":
        mode = "dry-run" if rng.is_pull_request else "push"

    source = _source(ctx, repo)
    try:
        plan = plan_repository(
            repo,
            rng,
            config_path=settings.config,
            registry_override=settings.registry,
            default_source=source,
            only=settings.targets,
        )
    except ConfigError as exc:
        raise Stop(str(exc), exc.file, exc.line) from exc
    except UsageError as exc:
        raise Stop(str(exc)) from exc
    for w in plan.warnings:
        _warn(ctx, w)

    revision = _revision(settings.revision, ctx, repo, head)
    if rng.nothing or mode == "plan":
        results = [
            pipeline.TargetResult(
                p.target,
                "removed" if p.status == "removed" else "planned",
                revision=revision,
                reasons=p.reasons,
                error=p.error or None,
            )
            for p in plan.targets
        ]
        _finish(settings, ctx, plan, results, mode)
        return 0

    root = _tree_of(repo, head, head_ref, scratch / "tree", ctx)
    flux_env: dict[str, str] = {}
    # A pull request's dry run uses no credentials from a fork; otherwise they serve only to read.
    use_creds = settings.registry_username and not (rng.is_pull_request and rng.fork)
    if use_creds:
        hosts = {registry_host(p.target.artifact) for p in plan.targets}
        flux_env = Credentials(settings.registry_username, settings.registry_password).docker_config(
            hosts, scratch
        )
    # flux stops itself at --timeout; the process limit is a backstop a little later.
    flux = Flux(
        env=flux_env,
        timeout=settings.timeout,
        provider=settings.provider,
        process_timeout=duration_seconds(settings.timeout) + 30,
    )
    opts = pipeline.Options(
        mode="dry-run" if mode == "dry-run" else "push",
        repo=repo,
        root=root,
        head=head,
        revision=revision,
        source=plan.config.source or source,
        flux=flux,
        reader=Reader(flux, timeout=duration_seconds(settings.timeout)),
        render_timeout=duration_seconds(settings.timeout),
        scratch=scratch / "work",
        timoni_identity=timoni.identity(),
        parallel=parallelism(settings.parallel),
        skip_unchanged=settings.skip_unchanged,
        runtime_from_env=not rng.is_pull_request,
        secrets=settings.secrets(),
        config_path=settings.config,
    )
    # Progress as targets finish: the Actions log (stdout), or stderr (a terminal: a live line).
    shown = progress.for_run(
        len(plan.targets), sys.stdout if ctx.in_actions else sys.stderr, in_actions=ctx.in_actions
    )
    results = pipeline.run(plan, opts, shown.event)
    shown.close(results)
    _finish(settings, ctx, plan, results, mode)
    return pipeline.exit_code(results)


def _tree_of(repo: Repo, head: str, head_ref: str, dest: Path, ctx: Context) -> Path:
    """Where the files of `head` are: the work tree when it holds exactly that commit, else an
    export of the commit (a dirty or other checkout must not be pushed as `head`)."""
    at_head = head_ref == "HEAD" or repo.resolve("HEAD") == head
    if at_head and repo.is_clean():
        return repo.root
    if at_head:
        _warn(ctx, "the work tree has uncommitted changes: rendering the committed files of HEAD instead")
    return repo.export(head, dest)


def _source(ctx: Context, repo: Repo) -> str:
    if ctx.repository:
        return f"{ctx.server_url}/{ctx.repository}"
    return repo.remote_url() or f"file://{repo.root}"


def _revision(template: str, ctx: Context, repo: Repo, head: str) -> str:
    ref = ctx.ref_name or repo.current_branch()
    return template.replace("{ref_name}", ref).replace("{sha}", head).replace("{short_sha}", head[:7])


def _finish(
    settings: Settings, ctx: Context, plan: Plan, results: list[pipeline.TargetResult], mode: str
) -> None:
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
    text = report.summary(plan, results, mode=mode)
    outputs = report.outputs(plan, results)
    if mode == "dry-run":
        text += comment.summary_diffs(results, limit=report.SUMMARY_LIMIT - len(text))
    _write(settings, ctx, text, outputs)
    if mode == "dry-run" and plan.range.is_pull_request and settings.comment and plan.range.pr_number:
        _comment(settings, ctx, plan.range, results)


def _comment(
    settings: Settings, ctx: Context, rng: CommitRange, results: list[pipeline.TargetResult]
) -> None:
    if not settings.github_token:
        _warn(ctx, "no github-token: the pull request comment was not written")
        return
    from .pr_comment import upsert_pr_comment  # PyGithub loads slowly: only on pull requests

    body = comment.render(results, config_path=settings.config, run_url=ctx.run_url())
    outcome = upsert_pr_comment(
        api_url=ctx.api_url,
        token=settings.github_token,
        repository=ctx.repository,
        number=rng.pr_number or 0,
        marker=comment.marker(settings.config),
        body=body,
    )
    if outcome.action in ("forbidden", "failed"):
        _warn(ctx, redact(outcome.message, list(settings.secrets())))
    else:
        _say(ctx, f"pull request comment {outcome.action}: {outcome.html_url}")


def _say(ctx: Context, message: str) -> None:
    if ctx.in_actions:
        gha.notice(message, title="timoni-flux-push")
    else:
        print(message, file=sys.stderr)


def _warn(ctx: Context, message: str) -> None:
    if ctx.in_actions:
        gha.warning(message, title="timoni-flux-push")
    else:
        print(f"warning: {message}", file=sys.stderr)


def _write(settings: Settings, ctx: Context, summary: str, outputs: dict[str, str]) -> None:
    summary_path = settings.summary_file or os.environ.get("GITHUB_STEP_SUMMARY", "")
    if summary_path:
        # A file name that is not UTF-8 (kept by surrogateescape) is written as \udcXX, never a crash.
        with open(summary_path, "a", encoding="utf-8", errors="backslashreplace") as fh:
            fh.write(summary)
    else:
        print(summary)
    if os.environ.get("GITHUB_OUTPUT"):
        for k, v in outputs.items():
            gha.set_output(k, v)
    if settings.output_file:
        Path(settings.output_file).write_text(json.dumps(outputs, indent=2), "utf-8")
