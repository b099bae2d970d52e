"""The modes that render nothing: `flux-config` (the cluster's sync configuration) and `promote`
(point one tag at the digest of another). Called from app's one dispatch point."""

from __future__ import annotations

import functools
import json
import os
import sys
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import github_action_utils as gha

from gitops_action.changes.gitrepo import Repo
from gitops_action.clients import (
    docker_config,
    login_registry,
    registry_clients,
    signer_for,
)
from gitops_action.cluster import flux_config, notifications
from gitops_action.config.targets import Config, ConfigError, Target
from gitops_action.errors import INTERNAL_TRACEBACK, UsageError, exit_code
from gitops_action.inputs.context import Context
from gitops_action.inputs.settings import Settings, parallelism
from gitops_action.modes import promote
from gitops_action.plan.planner import load_text
from gitops_action.registry.credentials import registry_host
from gitops_action.report.finish import NO_ARTIFACTS, Reporting, write
from gitops_action.report.notice import warn
from gitops_action.report.summary import artifact_entry, short
from gitops_action.secrets import redact
from gitops_action.sign import signing
from gitops_action.text import fence, folded, md, plain


def load_config(
    settings: Settings, ctx: Context
) -> tuple[Repo, str, Config, list[Target]]:
    """The configuration at the head commit and the targets asked for (all by default)."""
    repo = Repo(settings.workspace.resolve())
    head_ref = settings.head or ctx.sha or "HEAD"
    head = repo.resolve(head_ref)
    if head is None:
        raise UsageError(
            f"head commit {head_ref!r} is not in the repository at {repo.root}"
        )
    text = repo.read_file(head, settings.config)
    if text is None:
        raise ConfigError(
            settings.config, "", f"configuration file not found at {head[:12]}"
        )
    config = load_text(
        text, settings.config, repo.list_files(head), settings.registry, ""
    )
    for w in config.warnings:
        warn(ctx, w)
    by_id = config.by_id()
    unknown = [n for n in settings.targets if n not in by_id]
    if unknown:
        raise UsageError(f"`targets` names unknown target(s): {', '.join(unknown)}")
    wanted = (
        [by_id[n] for n in dict.fromkeys(settings.targets)]
        if settings.targets
        else list(config.targets)
    )
    return repo, head, config, wanted


def _no_artifacts(**more: str) -> dict[str, str]:
    return {**NO_ARTIFACTS, **more}


# --- flux-config -------------------------------------------------------------------------------


def run_flux_config(settings: Settings, ctx: Context) -> int:
    repo, head, config, wanted = load_config(settings, ctx)
    # A file a `match` picked up that cannot be a target (no valid name) fails alone: the others'
    # objects are still written.
    broken = [t for t in wanted if t.problem]
    targets = [t for t in wanted if not t.problem]
    # With signing on, Flux is told to refuse what this repository's CI did not sign.
    signed = settings.sign == "cosign"
    verify = (
        signing.verify_spec(bool(settings.cosign_key), os.environ) if signed else None
    )
    syncs = flux_config.generate(config, targets, verify=verify, tag=settings.flux_tag)
    envs = _notifications(config, syncs, ctx, repo)
    stream = flux_config.to_yaml(syncs, config.path) + notifications.to_yaml(
        envs, config.path
    )
    lines = [f"## timoni-flux-push: flux-config at `{head[:12]}`", ""]
    if settings.output_dir:
        paths = flux_config.write_files(syncs, config.path, _output_dir(settings, ctx))
        paths += notifications.write_files(
            envs, config.path, _output_dir(settings, ctx)
        )
        print(f"wrote {len(paths)} file(s) in {settings.output_dir}", file=sys.stderr)
        names = [s.target.id for s in syncs] + [
            f"notifications of {e.tag}" for e in envs
        ]
        lines += [
            f"- {md(n)}: `{md(str(p))}`" for n, p in zip(names, paths, strict=True)
        ]
    else:
        # the configuration's text: no workflow commands in it
        token = f"stop-{uuid.uuid4().hex}"
        if ctx.in_actions:
            gha.begin_stop_commands(token)
        sys.stdout.write(stream)
        sys.stdout.flush()
        if ctx.in_actions:
            gha.end_stop_commands(token)
        lines += [f"{len(syncs)} target(s):", "", fence(stream, "yaml")]
    lines += _broken(ctx, broken, config.path)
    # Without --output-dir stdout carries the YAML stream: the summary goes nowhere else then.
    outputs = _no_artifacts(failed=str(len(broken)))
    write(
        Reporting.of(settings),
        ctx,
        "\n".join(lines) + "\n",
        outputs,
        stdout=bool(settings.output_dir),
    )
    return exit_code(failed=bool(broken))


def _broken(ctx: Context, broken: Sequence[Target], config_path: str) -> list[str]:
    """Each target that has no Flux objects, said at its configuration entry; the summary's lines."""
    for t in broken:
        if ctx.in_actions:
            gha.error(
                plain(t.problem),
                title=f"{t.id}: flux-config",
                file=config_path,
                line=t.line,
            )
        else:
            print(f"error: {t.id}: {t.problem}", file=sys.stderr)
    if not broken:
        return []
    return [
        "",
        "### Problems",
        "",
        *(f"- **{md(t.id)}** (failed): {md(t.problem)}" for t in broken),
    ]


def _notifications(
    config: Config, syncs: list[flux_config.SyncConfig], ctx: Context, repo: Repo
) -> list[notifications.Environment]:
    """The Provider and Alert of each environment, when `flux.notification` asks for them."""
    notify = notifications.settings(config)
    if not notify.on:
        return []
    github = f"{ctx.server_url}/{ctx.repository}" if ctx.repository else ""
    url = notifications.repository_url(notify, config, github, repo.remote_url())
    return notifications.generate(config, syncs, notify, url)


def _output_dir(settings: Settings, ctx: Context) -> Path:
    """In Actions the directory must stay inside the workspace: a directory of the checkout may be
    a symlink the repository planted."""
    directory = Path(settings.output_dir)
    if ctx.in_actions:
        workspace = settings.workspace.resolve()
        full = (workspace / directory).resolve()
        if full != workspace and workspace not in full.parents:
            raise UsageError(
                f"input `output-dir`: {settings.output_dir!r} resolves outside the workspace"
            )
        return full
    return directory


# --- promote -----------------------------------------------------------------------------------


def run_promote(settings: Settings, ctx: Context, scratch: Path) -> int:
    repo, head, config, wanted = load_config(settings, ctx)
    targets, unused = _followed(settings, config, wanted)
    hosts = {registry_host(t.artifact) for t in targets if not t.problem}
    # On a pull request the head's `registry:` is the pull request's word: the login needs the input.
    pull_request = ctx.event_name in ("pull_request", "pull_request_target")
    registry = login_registry(settings, ctx, config.registry, None, pull_request)
    env = docker_config(settings, ctx, registry, hosts, scratch, fork=False)
    signer = (
        signer_for(settings, ctx, env.get("DOCKER_CONFIG", ""), scratch)
        if settings.sign == "cosign"
        else None
    )
    check = functools.partial(signing.check_signed, signer) if signer else None
    results = promotions(settings, repo, head, targets, env, scratch, check)
    # Nothing at all could be promoted: a green job would hide that the layout cannot promote.
    hopeless = _nothing_promoted([*unused, *results], len(unused))
    order = {t.id: i for i, t in enumerate(wanted)}
    results = sorted([*results, *unused], key=lambda r: order[r.target.id])
    if signer:
        extra = signing.summary_text(
            signer, len({r.url for r in results if r.signed}), promoted=True
        )
    else:
        extra = (
            f"\n### Signatures\n\nSigning is off (`sign: none`): the digest at `{md(settings.from_tag)}` "
            "was trusted as is. Whoever can write the registry can put an artifact there; with "
            "`sign: cosign` only a digest this repository signed is promoted.\n"
        )
    if hopeless:
        said = (
            f"nothing was promoted: no target could promote {settings.from_tag!r} to {settings.to_tag!r}"
            f"{_LAYOUT_FIX}"
        )
        extra = f"\n### Nothing promoted\n\n{md(said)}\n" + extra
    finish_promote(settings, ctx, results, extra)
    if hopeless:
        if ctx.in_actions:
            gha.error(said, title="timoni-flux-push: promote")
        else:
            print(f"error: {said}", file=sys.stderr)
    return exit_code(failed=any(r.status == "failed" for r in results), usage=hopeless)


def _followed(
    settings: Settings, config: Config, targets: list[Target]
) -> tuple[list[Target], list[promote.Promotion]]:
    """The targets `to` may be written for, and a skipped result for each of the others.

    Refused: a `to` tag that nobody uses in the OCI repository (no target pushes it, no cluster
    follows it with `flux-config`): a promotion nobody gets (`api-dev:prod` with the
    `{registry}/{name}` layout). Refused too: a `to` tag another target pushes (its render, not the
    one at `from`): that target's cluster would run the `from` render until its next push silently
    puts its own back. A usage error when the targets were named, or when every target is refused."""
    used = _tags_used(config)
    to, src = settings.to_tag, settings.from_tag
    owners = _to_owners(config, to, src)
    unused = [
        t for t in targets if not t.problem and to not in used.get(t.artifact, set())
    ]
    owned = [
        t for t in targets if not t.problem and t.artifact in owners and t not in unused
    ]
    if not unused and not owned:
        return targets, []

    def would(t: Target) -> str:
        return f"{t.artifact}:{to} (its targets use {', '.join(sorted(used.get(t.artifact, ())))})"

    def pushed_by(t: Target) -> str:
        names = ", ".join(owners[t.artifact])
        return f"{t.artifact}:{to} is pushed by target {names} (its `tags`)"

    own_fix = (
        f"Promote to a tag only Flux follows (`flux: {{source: {{tag: ...}}}}` on the target whose "
        f"cluster should get the promotion), with one target pushing {src!r}"
    )
    if settings.targets or len(unused) + len(owned) == len(targets):
        raise UsageError(
            _refused(
                to,
                src,
                [would(t) for t in unused],
                [pushed_by(t) for t in owned],
                own_fix,
            )
        )
    skipped = [
        promote.Promotion(
            t, "skipped", src, to, error=f"not promoted: it would write {would(t)}"
        )
        for t in unused
    ] + [
        promote.Promotion(
            t, "skipped", src, to, error=f"not promoted: {pushed_by(t)}. {own_fix}"
        )
        for t in owned
    ]
    return [t for t in targets if t not in unused and t not in owned], skipped


def _tags_used(config: Config) -> dict[str, set[str]]:
    """Per OCI repository, the tags its targets push or their clusters follow (flux-config)."""
    used: dict[str, set[str]] = {}
    for t in config.targets:
        if t.problem:  # no valid name, so no tag: it fails on its own in `promotions`
            continue
        follows = str(flux_config.settings_for(t, config.flux)["source.tag"])
        used.setdefault(t.artifact, set()).update((*t.tags, follows))
    return used


def _to_owners(config: Config, to: str, src: str) -> dict[str, list[str]]:
    """Per OCI repository, the targets that push `to` (their own render) and not `from`."""
    # A target pushing both `from` and `to` puts one render at both: promoting changes nothing it owns.
    owners: dict[str, list[str]] = {}
    for t in config.targets:
        if not t.problem and to in t.tags and src not in t.tags:
            owners.setdefault(t.artifact, []).append(t.id)
    return owners


def _refused(
    to: str, src: str, unused: list[str], owned: list[str], own_fix: str
) -> str:
    """The usage error's text: the `to` tags nobody uses, and those another target pushes."""
    said = []
    if unused:
        written = "; ".join(dict.fromkeys(unused))
        said.append(
            f"`to` tag {to!r} is used by no target of the repository it would be written to: promote "
            f"would have written {written}, a tag no target pushes and no flux-config object follows. "
            f"Name a tag of a target's `tags` or `flux: source: tag`{_LAYOUT_FIX}"
        )
    if owned:
        names = "; ".join(dict.fromkeys(owned))
        said.append(
            f"`to` tag {to!r} belongs to another target: {names}; promoting {src!r} there would "
            "run another target's render until that target's next push puts its own back. "
            + own_fix
        )
    return ". ".join(said) + "; nothing was promoted"


# What to do when each environment has its own OCI repository (the `{registry}/{name}` layout).
_LAYOUT_FIX = (
    " (with one OCI repository per environment nothing can be promoted: give the environments one "
    "shared `artifact:` and let the clusters of the promoted environment follow its tag with "
    "`flux: source: tag`)"
)


def _nothing_promoted(results: Sequence[promote.Promotion], refused: int) -> bool:
    """Some targets were refused (their `to` is unused) and none of the others had anything to
    promote either (`from` does not exist): the promotion as asked cannot work."""
    rest = results[refused:]
    return refused > 0 and all(r.status == "skipped" and r.missing for r in rest)


def promotions(
    settings: Settings,
    repo: Repo,
    head: str,
    targets: list[Target],
    env: dict[str, str],
    scratch: Path,
    check: Callable[[str], signing.Signed] | None = None,
) -> list[promote.Promotion]:
    """Promote every target asked for; with `check` (signing on) only a `from` digest it accepts."""
    flux, reader = registry_clients(settings, env)
    req = promote.Request(
        from_tag=settings.from_tag,
        to_tag=settings.to_tag,
        force=settings.force,
        repo=repo,
        head=head,
        flux=flux,
        reader=reader,
        scratch=scratch / "promote",
        missing_ok=not settings.targets,
        parallel=parallelism(settings.parallel),
        check=check,
    )
    results = promote.run(targets, req)
    secrets = list(settings.secrets())
    for r in results:
        r.error = redact(r.error, secrets) if r.error else r.error
        r.log = [redact(x, secrets) for x in r.log]
    return results


def artifacts(results: Sequence[promote.Promotion]) -> list[dict[str, Any]]:
    return [
        artifact_entry(
            r.target,
            tags=[r.to_tag],
            digest=r.digest,
            url=r.url,
            revision=r.revision,
            status=r.status,
            error=r.error,
            signed=r.signed,
            signature=r.signature,
            more={
                "from": r.from_tag,
                "previous": {
                    "digest": r.previous_digest,
                    "revision": r.previous_revision or None,
                },
                "rollback": r.rollback,
            },
        )
        for r in results
    ]


def promote_summary(
    results: Sequence[promote.Promotion], from_tag: str, to_tag: str
) -> str:
    lines = [f"## timoni-flux-push: promote `{md(from_tag)}` to `{md(to_tag)}`", ""]
    if not results:
        return "\n".join([*lines, "No target to promote."]) + "\n"
    lines += [
        f"| target | artifact | digest | revision | `{md(to_tag)}` before | status |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        before = (
            f"`{short(r.previous_digest)}` {md(r.previous_revision)}"
            if r.previous_digest
            else "nothing"
        )
        status = (
            "promoted (rollback, force)"
            if r.rollback and r.status == "promoted"
            else r.status
        )
        lines.append(
            f"| {md(r.target.id)} | {md(r.target.artifact)}:{md(to_tag)} | `{short(r.digest)}` | "
            f"{md(r.revision) or '-'} | {before} | {status} |"
        )
    lines += folded(
        "Full digests", [f"{md(r.target.id)}: `{r.url}`" for r in results if r.digest]
    )
    rolled = [r for r in results if r.rollback and r.status == "promoted"]
    if rolled:
        lines += ["", "### Rollbacks", ""]
        lines += [
            f"- **{md(r.target.id)}**: `{md(to_tag)}` moved back from {md(r.previous_revision)} to "
            f"{md(r.revision)} (force: true)"
            for r in rolled
        ]
    problems = [r for r in results if r.status in ("failed", "skipped")]
    if problems:
        lines += ["", "### Problems", ""]
        lines += [
            f"- **{md(r.target.id)}** ({r.status}): {md(r.error or '')}"
            for r in problems
        ]
    return "\n".join(lines) + "\n"


def finish_promote(
    settings: Settings,
    ctx: Context,
    results: Sequence[promote.Promotion],
    extra: str = "",
) -> None:
    for r in results:
        said = f"{r.target.id}: {r.status}" + (f" {r.url}" if r.url else "")
        said += f" ({r.error})" if r.error else ""
        if r.rollback and r.status == "promoted":
            said += f" rollback: {settings.to_tag} moved back from {r.previous_revision} to {r.revision}"
        if ctx.in_actions:
            _log_group(r, said)
        else:
            print(said, file=sys.stderr)
            # a bug's traceback (errors.internal_error): no log groups here
            for x in r.log:
                if x.startswith(INTERNAL_TRACEBACK):
                    print(f"{r.target.id}: {x}", file=sys.stderr)
    count = {
        s: sum(1 for r in results if r.status == s)
        for s in ("promoted", "failed", "unchanged")
    }
    outputs = _no_artifacts(
        artifacts=json.dumps(artifacts(results)),
        failed=str(count["failed"]),
        unchanged=str(count["unchanged"]),
        promoted=str(count["promoted"]),
    )
    summary = promote_summary(results, settings.from_tag, settings.to_tag) + extra
    write(Reporting.of(settings), ctx, summary, outputs)


def _log_group(r: promote.Promotion, said: str) -> None:
    gha.start_group(said.split(" ", 2)[0] + f" {r.status}")
    # registry and git text inside: no workflow commands
    token = f"stop-{uuid.uuid4().hex}"
    gha.begin_stop_commands(token)
    print("\n".join([*r.log, said]), flush=True)
    gha.end_stop_commands(token)
    gha.end_group()
    title = f"{r.target.id}: promote"
    if r.status == "failed":
        gha.error(r.error or "failed", title=title)
    elif r.status == "skipped":
        gha.warning(r.error or "skipped", title=title)
    elif r.rollback:
        gha.notice(f"rolled back to {r.revision} (force)", title=title)
