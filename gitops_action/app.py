"""One run, start to end: event -> changes -> plan (the event's, then what each tag holds) ->
render and push (pipeline) -> sign -> report (finish).

Exit codes: 0 no target failed, 1 a target failed (after every other target ran) or the run stopped
on an internal error, 2 a configuration or usage error (nothing built). Every error a run raises is
caught once, in `main` (errors.py).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import shutil
import signal
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import github_action_utils as gha

from gitops_action.changes import events
from gitops_action.changes.events import CommitRange
from gitops_action.changes.gitrepo import Repo, check_revision
from gitops_action.clients import (
    docker_config,
    login_registry,
    registry_at,
    registry_clients,
    signer_for,
)
from gitops_action.errors import EXIT_OK, UsageError
from gitops_action.inputs.context import Context
from gitops_action.inputs.settings import Settings, parallelism
from gitops_action.plan import catchup
from gitops_action.plan.planner import Plan, load_text, plan_repository
from gitops_action.push import pipeline
from gitops_action.push.results import Annotation, TargetResult, exit_code
from gitops_action.registry.credentials import (
    registry_host,
)
from gitops_action.registry.flux import Flux
from gitops_action.registry.reader import Reader
from gitops_action.render import timoni
from gitops_action.report import progress
from gitops_action.report.notice import warn

if TYPE_CHECKING:
    from gitops_action.sign import signing

__all__ = ["Context", "main"]


def main(settings: Settings, env: Mapping[str, str]) -> int:
    ctx = Context.from_env(env)
    # the log stays valid UTF-8 whatever the file names
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    for secret in settings.secrets():
        if ctx.in_actions:
            gha.add_mask(secret)
    scratch = Path(tempfile.mkdtemp(prefix="timoni-flux-push-"))
    restore = _remove_on_signal(scratch)
    try:
        return _main(settings, ctx, scratch)
    # the one place a run-level error is caught (see errors.py)
    except Exception as exc:
        from gitops_action.report.finish import Reporting, stopped

        return stopped(Reporting.of(settings), ctx, exc)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        restore()  # after the removal: a signal in between still finds our handler


def _import_aside(module: str) -> None:
    """Import `module` on a side thread: the main thread goes on, and whoever needs the module
    later waits for that import to end (Python's per-module import lock). It puts an import beside
    a wait (a render). A failure here is nobody's: the module is imported again where it is used,
    and fails there."""

    def load() -> None:
        with contextlib.suppress(Exception):
            importlib.import_module(module)

    threading.Thread(target=load, name=f"import {module}", daemon=True).start()


def _main(settings: Settings, ctx: Context, scratch: Path) -> int:
    """The mode's run: the modes that render nothing, Flux's event, or a build."""
    if settings.mode in ("promote", "flux-config"):  # the modes that render nothing
        from gitops_action.modes import run as modes

        if settings.mode == "promote":
            return modes.run_promote(settings, ctx, scratch)
        return modes.run_flux_config(settings, ctx)
    if _flux_event(settings, ctx):  # no checkout needed
        from gitops_action.cluster import dispatch
        from gitops_action.report.finish import Reporting

        return dispatch.run(ctx, settings.github_token, Reporting.of(settings))
    return _build(settings, ctx, scratch)


def _flux_event(settings: Settings, ctx: Context) -> bool:
    """Whether the run answers Flux's event (deployment-status mode, or auto on the dispatch)."""
    dispatched = (
        settings.deployments
        and settings.mode == "auto"
        and ctx.event_name == "repository_dispatch"
    )
    return settings.mode == "deployment-status" or dispatched


def _build_mode(settings: Settings, ctx: Context, rng: CommitRange) -> str:
    """The mode a build runs in: `auto` is a dry run on a pull request, else a push; a push on the
    untrusted event is a usage error."""
    mode = settings.mode
    if mode == "auto":
        mode = "dry-run" if rng.is_pull_request else "push"
    if ctx.event_name == events.UNTRUSTED_EVENT and mode == "push":
        raise UsageError(
            f"mode `push` on {ctx.event_name} would deliver a pull request nobody merged: use dry-run"
        )
    return mode


def _build(settings: Settings, ctx: Context, scratch: Path) -> int:
    """event -> changes -> plan -> render and push -> sign -> report."""
    repo = Repo(settings.workspace.resolve())
    repo.prefetch()  # git answers needed after planning, asked while it plans
    head_ref, head, rng = _commit_range(settings, ctx, repo)
    mode = _build_mode(settings, ctx, rng)
    source = _source(ctx, repo)
    # A dry run signs nothing; a plan verifies the check records its plan from the tags reads.
    signs = settings.sign == "cosign" and (
        mode == "push" or (mode == "plan" and _plans_from_tags(settings, rng))
    )
    plan, flux, reader, signer = _plan(
        settings, ctx, repo, rng, source, scratch, signs=signs
    )
    at_head = head_ref == "HEAD" or repo.resolve("HEAD") == head
    edited = _uncommitted(repo, head) if at_head else ""
    # the log and the summary: the run reads the commit, not the files on disk
    if edited:
        warn(ctx, edited)
        plan = replace(plan, warnings=(*plan.warnings, edited))
    revision = _revision(settings.revision, ctx, repo, head)
    if rng.nothing or mode == "plan":
        # A target without a valid name is `failed` here, yet stays in the matrix and the exit is 0:
        # its own matrix job fails, while a failing plan job would stop every other target's job.
        planned = _planned(plan, revision, settings.config)
        from gitops_action.report.finish import Reporting, finish

        finish(Reporting.of(settings), ctx, plan, planned, mode)
        return EXIT_OK
    opts = pipeline.Options(
        mode="dry-run" if mode == "dry-run" else "push",
        repo=repo,
        root=repo.root
        if at_head and not edited
        else repo.export(head, scratch / "tree"),
        head=head,
        revision=revision,
        source=plan.config.source or source,
        flux=flux,
        reader=reader,
        render_timeout=settings.timeout_seconds,
        scratch=scratch / "work",
        timoni_identity=timoni.identity(),
        parallel=parallelism(settings.parallel),
        skip_unchanged=settings.skip_unchanged,
        runtime_from_env=not rng.is_pull_request,
        secrets=settings.secrets(),
        config_path=settings.config,
        vouched=_vouches(signer),
    )
    # Progress as targets finish: the Actions log (stdout), or stderr (a terminal: a live line).
    out = sys.stdout if ctx.in_actions else sys.stderr
    shown = progress.for_run(len(plan.targets), out, in_actions=ctx.in_actions)
    # What only the report needs is imported while the first renders run, on the core they leave.
    _import_aside("gitops_action.report.finish")
    results = pipeline.run(plan, opts, shown.event)
    shown.close(results)
    extra = ""
    if signer is not None and opts.mode == "push":  # a dry run signs nothing
        results, extra = _sign(
            settings, ctx, results, signer, flux.env, scratch, opts.parallel
        )
    # after signing: a deployment of what is final
    if settings.deployments and opts.mode == "push":
        extra += _record_deployments(settings, ctx, plan, results, head)
    listed = {r.target.id for r in results if shown.said.get(r.target.id) == r.status}
    from gitops_action.report.finish import Reporting, finish

    finish(Reporting.of(settings), ctx, plan, results, mode, extra, listed=listed)
    return exit_code(results)


def _record_deployments(
    settings: Settings,
    ctx: Context,
    plan: Plan,
    results: list[TargetResult],
    head: str,
) -> str:
    """The run's GitHub deployments (the summary's part about them); a bug here is a warning."""
    from gitops_action.cluster import deployments

    try:
        return deployments.record_run(
            settings.github_token, ctx, plan.config, results, head
        )
    except Exception as exc:  # a bug here must not cost the run its push results
        warn(
            ctx,
            f"deployments: not recorded: internal error: {type(exc).__name__}: {exc}",
        )
        return ""


def _commit_range(
    settings: Settings, ctx: Context, repo: Repo
) -> tuple[str, str, CommitRange]:
    """The head commit as given and as a SHA, and the range of commits the event compares."""
    head_ref = settings.head or ctx.sha or "HEAD"
    # A base or head that git could read as an option never reaches git (BadRevision: exit 2).
    for what, value in (("input `base`", settings.base), ("head commit", head_ref)):
        if value:
            check_revision(value, what)
    head = repo.resolve(head_ref)
    if head is None:
        raise UsageError(
            f"head commit {head_ref!r} is not in the repository at {repo.root}"
        )
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
    return head_ref, head, rng


def _plan(
    settings: Settings,
    ctx: Context,
    repo: Repo,
    rng: CommitRange,
    source: str,
    scratch: Path,
    *,
    signs: bool,
) -> tuple[Plan, Flux, Reader, Callable[[], signing.Signer] | None]:
    """The event's plan, then (push and plan runs) what each target's tag holds (catchup.py). With
    signing, the run's signer (made once flux's login is), so that only check records carrying its
    signature count."""
    plan = plan_repository(
        repo,
        rng,
        config_path=settings.config,
        registry_override=settings.registry,
        default_source=source,
        only=settings.targets,
    )
    if settings.base:
        plan = replace(plan, explicit_base=True)
    flux, reader = _clients(settings, ctx, repo, rng, plan, scratch)
    signer = (
        _signer_once(settings, ctx, flux.env.get("DOCKER_CONFIG", ""), scratch)
        if signs
        else None
    )
    if _plans_from_tags(settings, rng):
        files = sorted(plan.head_files)
        plan = catchup.catch_up(
            plan,
            repo,
            lambda url: reader.pull(
                url, scratch / "plan" / uuid.uuid4().hex, content=False
            ),
            lambda text: load_text(
                text, settings.config, files, settings.registry, source
            ),
            _vouches(signer),
        )
    # the configuration's, and catchup's when tags could not be read
    for w in plan.warnings:
        warn(ctx, w)
    return plan, flux, reader, signer


def _signer_once(
    settings: Settings, ctx: Context, docker: str, scratch: Path
) -> Callable[[], signing.Signer]:
    """The run's signer, made when first needed (a run with nothing to do asks cosign nothing)."""
    made: list[signing.Signer] = []
    lock = threading.Lock()

    def get() -> signing.Signer:
        with lock:
            if not made:
                made.append(signer_for(settings, ctx, docker, scratch))
            return made[0]

    return get


def _vouches(
    signer: Callable[[], signing.Signer] | None,
) -> Callable[[str], bool] | None:
    """With signing: whether a digest carries the run's signature (None: nothing is checked)."""
    if signer is None:
        return None  # and no import of the signing code (~5 ms of every run's start-up)
    from gitops_action.sign import signing

    return lambda url: signing.vouches(signer())(url)


def _planned(plan: Plan, revision: str, config_path: str) -> list[TargetResult]:
    """Plan mode's results: what a push would do, and the revision it would carry. A target that
    cannot be one (a matched file without a valid name) is `failed`, at its configuration entry."""
    out = []
    for p in plan.targets:
        broken = bool(p.target.problem) and p.status == "planned"
        where = (
            [Annotation(config_path, p.target.line, 1, p.error)]
            if broken and p.target.line
            else []
        )
        out.append(
            TargetResult(
                p.target,
                "failed" if broken else p.status,
                revision=revision,
                reasons=p.reasons,
                error=p.error or None,
                base=p.base,
                caught_up=p.caught_up,
                annotations=where,
            )
        )
    return out


def _plans_from_tags(settings: Settings, rng: CommitRange) -> bool:
    """Push and plan runs plan from what each tag holds; an explicit `base` or `all` input, a pull
    request (its own change decides) and a run with nothing to do do not."""
    return not (settings.base or settings.all or rng.is_pull_request or rng.nothing)


def _clients(
    settings: Settings,
    ctx: Context,
    repo: Repo,
    rng: CommitRange,
    plan: Plan,
    scratch: Path,
) -> tuple[Flux, Reader]:
    # On pull_request_target the code under review is the pull request's: never with credentials.
    fork = (
        rng.is_pull_request and rng.fork
    ) or ctx.event_name == events.UNTRUSTED_EVENT
    base_registry = plan.base_registry
    if rng.is_pull_request and base_registry is None and not settings.registry:
        base_registry = registry_at(settings, repo, rng.pr_base)
    registry = login_registry(
        settings, ctx, plan.config.registry, base_registry, rng.is_pull_request
    )
    env = docker_config(settings, ctx, registry, _hosts(plan), scratch, fork=fork)
    return registry_clients(settings, env)


def _hosts(plan: Plan) -> set[str]:
    return {
        registry_host(p.target.artifact) for p in plan.targets if not p.target.problem
    }


def _sign(
    settings: Settings,
    ctx: Context,
    results: list[TargetResult],
    early: Callable[[], signing.Signer],
    flux_env: Mapping[str, str],
    scratch: Path,
    parallel: int,
) -> tuple[list[TargetResult], str]:
    """Sign the digests the run built; the summary's `verify` section. The key's signer is the one
    the plan verified with; keyless signing asks for a fresh OIDC token (the renders took a while)."""
    from gitops_action.sign import signing

    fresh = not settings.cosign_key  # keyless
    signer = (
        signer_for(settings, ctx, flux_env.get("DOCKER_CONFIG", ""), scratch)
        if fresh
        else early()
    )
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


def _uncommitted(repo: Repo, head: str) -> str:
    """The warning for a work tree that differs from `head` ("" when it does not): the run renders
    and plans the committed files (an export of `head`), never edits nobody committed."""
    paths = repo.uncommitted()
    if not paths:
        return ""
    shown = ", ".join(paths[:3]) + (
        f" and {len(paths) - 3} more" if len(paths) > 3 else ""
    )
    return (
        f"the work tree differs from the commit being built ({head[:12]}; uncommitted changes: {shown}): "
        "the run reads the committed files only; commit the changes to build them"
    )


def _source(ctx: Context, repo: Repo) -> str:
    if ctx.repository:
        return f"{ctx.server_url}/{ctx.repository}"
    return repo.remote_url() or f"file://{repo.root}"


def _revision(template: str, ctx: Context, repo: Repo, head: str) -> str:
    ref = ctx.ref_name or repo.current_branch()
    return (
        template.replace("{ref_name}", ref)
        .replace("{sha}", head)
        .replace("{short_sha}", head[:7])
    )
