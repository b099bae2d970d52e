"""One run, start to end: event -> changes -> plan -> builds -> pushes -> report.

Exit codes: 0 no target failed, 1 a target failed (after every other target ran), 2 a
configuration or usage error (nothing built).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import github_action_utils as gha

from . import catchup, comment, events, pipeline, report, signing, timoni
from .config import ConfigError
from .credentials import Credentials, credentials_host, redact, registry_host
from .cue_errors import plain
from .events import CommitRange, EventError
from .flux import Flux
from .gitrepo import BadRevision, Repo, check_revision
from .planner import Plan, UsageError, load_text, plan_repository
from .registry import Reader
from .results import TargetResult, exit_code
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
    restore = _remove_on_signal(scratch)
    try:
        return _main(settings, ctx, scratch)
    except Stop as stop:
        msg = plain(redact(str(stop), list(settings.secrets())))
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
        restore()  # after the removal: a signal in between still finds our handler


def _main(settings: Settings, ctx: Context, scratch: Path) -> int:
    if settings.mode in ("promote", "flux-config"):  # the modes that render nothing
        from . import modes

        if settings.mode == "promote":
            return modes.run_promote(settings, ctx, scratch)
        return modes.run_flux_config(settings, ctx)
    repo = Repo(settings.workspace.resolve())
    head_ref = settings.head or ctx.sha or "HEAD"
    try:  # a base or head that git could read as an option never reaches git
        for what, value in (("input `base`", settings.base), ("head commit", head_ref)):
            if value:
                check_revision(value, what)
    except BadRevision as exc:
        raise Stop(str(exc)) from exc
    head = repo.resolve(head_ref)
    if head is None:
        raise Stop(f"head commit {head_ref!r} is not in the repository at {repo.root}")
    try:
        payload = events.load_payload(ctx.event_path) if ctx.event_name else {}
        reviewed = events.reviewed_head(
            repo,
            event=ctx.event_name,
            payload=payload,
            head=head,
            allowed=settings.allow_pull_request_target,
        )
        head, head_ref = reviewed, (head_ref if reviewed == head else reviewed)
        rng = events.commit_range(
            repo,
            event=ctx.event_name,
            payload=payload,
            head=head,
            base_override=settings.base,
            take_all=settings.all,
        )
    except (EventError, BadRevision) as exc:
        raise Stop(str(exc)) from exc
    mode = settings.mode
    if mode == "auto":
        mode = "dry-run" if rng.is_pull_request else "push"
    if ctx.event_name == events.UNTRUSTED_EVENT and mode == "push":
        raise Stop(f"mode `push` on {ctx.event_name} would deliver a pull request nobody merged: use dry-run")

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
    if settings.base:
        plan = replace(plan, explicit_base=True)

    flux = _flux(settings, ctx, rng, plan, scratch)
    reader = Reader(flux, timeout=duration_seconds(settings.timeout))
    if _plans_from_tags(settings, rng):
        files = sorted(plan.head_files)
        plan = catchup.catch_up(
            plan,
            repo,
            lambda url: reader.pull(url, scratch / "plan" / uuid.uuid4().hex, content=False),
            lambda text: load_text(text, settings.config, files, settings.registry, source),
        )
    revision = _revision(settings.revision, ctx, repo, head)
    if rng.nothing or mode == "plan":
        results = [
            TargetResult(
                p.target,
                "planned" if p.status == "planned" else p.status,
                revision=revision,
                reasons=p.reasons,
                error=p.error or None,
                base=p.base,
                caught_up=p.caught_up,
            )
            for p in plan.targets
        ]
        _finish(settings, ctx, plan, results, mode)
        return 0

    root = _tree_of(repo, head, head_ref, scratch / "tree", ctx)
    opts = pipeline.Options(
        mode="dry-run" if mode == "dry-run" else "push",
        repo=repo,
        root=root,
        head=head,
        revision=revision,
        source=plan.config.source or source,
        flux=flux,
        reader=reader,
        render_timeout=duration_seconds(settings.timeout),
        scratch=scratch / "work",
        timoni_identity=timoni.identity(),
        parallel=parallelism(settings.parallel),
        skip_unchanged=settings.skip_unchanged,
        runtime_from_env=not rng.is_pull_request,
        secrets=settings.secrets(),
        config_path=settings.config,
    )
    results = pipeline.run(plan, opts)
    extra = ""
    if settings.sign == "cosign" and opts.mode == "push":  # a dry run signs nothing
        results, extra = _sign(settings, ctx, results, flux.env, scratch, opts.parallel)
    _finish(settings, ctx, plan, results, mode, extra)
    return exit_code(results)


def _flux(settings: Settings, ctx: Context, rng: CommitRange, plan: Plan, scratch: Path) -> Flux:
    # flux stops itself at --timeout; the process limit is a backstop a little later.
    return Flux(
        env=_docker_config(settings, ctx, plan, rng, scratch),
        timeout=settings.timeout,
        provider=settings.provider,
        process_timeout=duration_seconds(settings.timeout) + 30,
    )


def _plans_from_tags(settings: Settings, rng: CommitRange) -> bool:
    """Push and plan runs plan from what each tag holds; an explicit `base` or `all` input, a pull
    request (its own change decides) and a run with nothing to do do not."""
    return not (settings.base or settings.all or rng.is_pull_request or rng.nothing)


def _docker_config(
    settings: Settings, ctx: Context, plan: Plan, rng: CommitRange, scratch: Path
) -> dict[str, str]:
    hosts = {registry_host(p.target.artifact) for p in plan.targets}
    # On pull_request_target the code under review is the pull request's: never with credentials.
    fork = (rng.is_pull_request and rng.fork) or ctx.event_name == events.UNTRUSTED_EVENT
    return docker_config(settings, ctx, plan.config.registry, hosts, scratch, fork=fork)


def docker_config(
    settings: Settings, ctx: Context, registry: str, hosts: set[str], scratch: Path, *, fork: bool
) -> dict[str, str]:
    """The private docker config of flux and timoni: always one of the run's own (never the machine's),
    holding the inputs' login for the host of the `registry` input (else the configuration's `registry`)
    alone. A pull request's dry run from a fork gets no login; otherwise it serves only to read."""
    host = credentials_host(settings.registry, registry)
    use_creds = bool(settings.registry_username) and not fork
    if use_creds and not host:
        _warn(ctx, "registry-username is set but no `registry` names its host: no credentials are used")
    others = sorted(hosts - {host})
    if use_creds and host and others:
        _warn(ctx, f"no registry credentials for {', '.join(others)}: they are for {host} only")
    username = settings.registry_username if use_creds and host else ""
    login = Credentials(username, settings.registry_password if username else "")
    return login.docker_config({host} if username else set(), scratch)


def _sign(
    settings: Settings,
    ctx: Context,
    results: list[TargetResult],
    flux_env: Mapping[str, str],
    scratch: Path,
    parallel: int,
) -> tuple[list[TargetResult], str]:
    """Sign the digests the run's pushes and tags settled on; the summary's `verify` section."""
    request = signing.Request(
        key=settings.cosign_key,
        password=settings.cosign_password,
        fulcio_url=settings.fulcio_url,
        rekor_url=settings.rekor_url,
        provider=settings.provider,
        docker_config=flux_env.get("DOCKER_CONFIG", ""),
        timeout=duration_seconds(settings.timeout),
    )
    signer = signing.prepare(request, scratch / "signing", os.environ)
    if ctx.in_actions:
        for secret in signer.secrets:  # the OIDC token (key and password are masked already)
            gha.add_mask(secret)
    signed = signing.sign_results(results, signer, parallel)
    return signed, signing.summary(signer, signed)


def _remove_on_signal(scratch: Path) -> Callable[[], None]:
    """A cancelled job (SIGTERM, SIGINT) removes the scratch directory, the docker config with the
    credentials in it, at once: `finally` alone runs only on a normal exit, and waits for workers.
    Returns what puts the previous handlers back."""

    def stop(signum: int, _frame: object) -> None:
        shutil.rmtree(scratch, ignore_errors=True)
        raise SystemExit(128 + signum)

    if threading.current_thread() is not threading.main_thread():
        return lambda: None  # only the main thread may set handlers
    before = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}

    def restore() -> None:
        for sig, handler in before.items():
            signal.signal(sig, handler)

    return restore


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


def _scrub(results: list[TargetResult], secrets: list[str]) -> list[TargetResult]:
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


def _finish(
    settings: Settings,
    ctx: Context,
    plan: Plan,
    results: list[TargetResult],
    mode: str,
    extra: str = "",
) -> None:
    secrets = list(settings.secrets())
    results = _scrub(results, secrets)
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
    text = report.summary(plan, results, mode=mode) + extra
    outputs = report.outputs(plan, results)
    if mode == "dry-run":
        text += comment.summary_diffs(results, limit=report.SUMMARY_LIMIT - len(text))
    # The dry-run diff shows rendered content: redacted here, where it becomes text.
    text = redact(text, secrets)
    outputs = {k: redact(v, secrets) for k, v in outputs.items()}
    _write(settings, ctx, text, outputs)
    if mode == "dry-run" and plan.range.is_pull_request and settings.comment and plan.range.pr_number:
        _comment(settings, ctx, plan.range, results)


def _comment(settings: Settings, ctx: Context, rng: CommitRange, results: list[TargetResult]) -> None:
    if not settings.github_token:
        _warn(ctx, "no github-token: the pull request comment was not written")
        return
    from .pr_comment import upsert_pr_comment  # PyGithub loads slowly: only on pull requests

    body = redact(
        comment.render(results, config_path=settings.config, run_url=ctx.run_url()), list(settings.secrets())
    )
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
        gha.warning(plain(message), title="timoni-flux-push")
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
