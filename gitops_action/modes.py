"""The modes that render nothing: `flux-config` (the cluster's sync configuration) and `promote`
(point one tag at the digest of another). Called from app's one dispatch point."""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import github_action_utils as gha

from . import flux_config, promote
from .app import Context, Stop, _warn
from .config import Config, ConfigError, Target
from .credentials import Credentials, redact, registry_host
from .flux import Flux
from .gitrepo import Repo
from .planner import load_text
from .registry import Reader
from .report import fence, md, short
from .settings import Settings, duration_seconds, parallelism


def load_config(settings: Settings, ctx: Context) -> tuple[Repo, str, Config, list[Target]]:
    """The configuration at the head commit and the targets asked for (all by default)."""
    repo = Repo(settings.workspace.resolve())
    head_ref = settings.head or ctx.sha or "HEAD"
    head = repo.resolve(head_ref)
    if head is None:
        raise Stop(f"head commit {head_ref!r} is not in the repository at {repo.root}")
    text = repo.read_file(head, settings.config)
    if text is None:
        raise Stop(f"configuration file not found at {head[:12]}", settings.config)
    try:
        config = load_text(text, settings.config, repo.list_files(head), settings.registry, "")
    except ConfigError as exc:
        raise Stop(str(exc), exc.file, exc.line) from exc
    for w in config.warnings:
        _warn(ctx, w)
    by_id = config.by_id()
    unknown = [n for n in settings.targets if n not in by_id]
    if unknown:
        raise Stop(f"`targets` names unknown target(s): {', '.join(unknown)}")
    wanted = [by_id[n] for n in dict.fromkeys(settings.targets)] if settings.targets else list(config.targets)
    return repo, head, config, wanted


def write_report(settings: Settings, summary: str, outputs: dict[str, str], *, stdout: bool) -> None:
    """The summary goes to the step summary or --summary-file, else to stdout when `stdout` (not
    where stdout carries the YAML stream)."""
    path = settings.summary_file or os.environ.get("GITHUB_STEP_SUMMARY", "")
    if path:
        with open(path, "a", encoding="utf-8", errors="backslashreplace") as fh:
            fh.write(summary)
    elif stdout:
        print(summary)
    if os.environ.get("GITHUB_OUTPUT"):
        for k, v in outputs.items():
            gha.set_output(k, v)
    if settings.output_file:
        Path(settings.output_file).write_text(json.dumps(outputs, indent=2), "utf-8")


def _no_artifacts(**more: str) -> dict[str, str]:
    return {
        "artifacts": "[]",
        "matrix": json.dumps({"include": []}),
        "pushed": "0",
        "failed": "0",
        "unchanged": "0",
        "changed": "false",
        **more,
    }


# --- flux-config -------------------------------------------------------------------------------


def run_flux_config(settings: Settings, ctx: Context) -> int:
    _, head, config, targets = load_config(settings, ctx)
    try:
        # `verify` (signature verification) is the signing settings' to give; none yet.
        syncs = flux_config.generate(config, targets, verify=None, tag=settings.flux_tag)
    except ConfigError as exc:
        raise Stop(str(exc), exc.file, exc.line) from exc
    stream = flux_config.to_yaml(syncs, config.path)
    lines = [f"## timoni-flux-push: flux-config at `{head[:12]}`", ""]
    if settings.output_dir:
        paths = flux_config.write_files(syncs, config.path, _output_dir(settings, ctx))
        print(f"wrote {len(paths)} file(s) in {settings.output_dir}", file=sys.stderr)
        lines += [f"- {md(s.target.id)}: `{md(str(p))}`" for s, p in zip(syncs, paths, strict=True)]
    else:
        token = f"stop-{uuid.uuid4().hex}"  # the configuration's text: no workflow commands in it
        if ctx.in_actions:
            gha.begin_stop_commands(token)
        sys.stdout.write(stream)
        sys.stdout.flush()
        if ctx.in_actions:
            gha.end_stop_commands(token)
        lines += [f"{len(syncs)} target(s):", "", fence(stream, "yaml")]
    write_report(settings, "\n".join(lines) + "\n", _no_artifacts(), stdout=bool(settings.output_dir))
    return 0


def _output_dir(settings: Settings, ctx: Context) -> Path:
    """In Actions the directory must stay inside the workspace: a directory of the checkout may be
    a symlink the repository planted."""
    directory = Path(settings.output_dir)
    if ctx.in_actions:
        workspace = settings.workspace.resolve()
        full = (workspace / directory).resolve()
        if full != workspace and workspace not in full.parents:
            raise Stop(f"input `output-dir`: {settings.output_dir!r} resolves outside the workspace")
        return full
    return directory


# --- promote -----------------------------------------------------------------------------------


def run_promote(settings: Settings, ctx: Context, scratch: Path) -> int:
    results = promotions(settings, ctx, scratch)
    finish_promote(settings, ctx, results)
    return 1 if any(r.status == "failed" for r in results) else 0


def promotions(settings: Settings, ctx: Context, scratch: Path) -> list[promote.Promotion]:
    """Promote every target asked for; the results carry the digests `to` now holds (to sign)."""
    repo, head, _, targets = load_config(settings, ctx)
    flux_env: dict[str, str] = {}
    if settings.registry_username:
        hosts = {registry_host(t.artifact) for t in targets}
        creds = Credentials(settings.registry_username, settings.registry_password)
        flux_env = creds.docker_config(hosts, scratch)
    flux = Flux(
        env=flux_env,
        timeout=settings.timeout,
        provider=settings.provider,
        process_timeout=duration_seconds(settings.timeout) + 30,
    )
    req = promote.Request(
        from_tag=settings.from_tag,
        to_tag=settings.to_tag,
        force=settings.force,
        repo=repo,
        head=head,
        flux=flux,
        reader=Reader(flux, timeout=duration_seconds(settings.timeout)),
        scratch=scratch / "promote",
        missing_ok=not settings.targets,
        parallel=parallelism(settings.parallel),
    )
    results = promote.run(targets, req)
    secrets = list(settings.secrets())
    for r in results:
        r.error = redact(r.error, secrets) if r.error else r.error
        r.log = [redact(x, secrets) for x in r.log]
    return results


def artifacts(results: Sequence[promote.Promotion]) -> list[dict[str, Any]]:
    return [
        {
            "name": r.target.id,
            "kind": r.target.kind,
            "artifact": r.target.artifact,
            "tags": [r.to_tag],
            "digest": r.digest,
            "url": r.url,
            "revision": r.revision,
            "status": r.status,
            "error": " ".join(r.error.split()) if r.error else None,
            "from": r.from_tag,
            "previous": {"digest": r.previous_digest, "revision": r.previous_revision or None},
            "rollback": r.rollback,
        }
        for r in results
    ]


def promote_summary(results: Sequence[promote.Promotion], from_tag: str, to_tag: str) -> str:
    lines = [f"## timoni-flux-push: promote `{md(from_tag)}` to `{md(to_tag)}`", ""]
    if not results:
        return "\n".join([*lines, "No target to promote."]) + "\n"
    lines += [
        f"| target | artifact | digest | revision | `{md(to_tag)}` before | status |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        before = f"`{short(r.previous_digest)}` {md(r.previous_revision)}" if r.previous_digest else "nothing"
        status = "promoted (rollback, force)" if r.rollback and r.status == "promoted" else r.status
        lines.append(
            f"| {md(r.target.id)} | {md(r.target.artifact)}:{md(to_tag)} | `{short(r.digest)}` | "
            f"{md(r.revision) or '-'} | {before} | {status} |"
        )
    done = [r for r in results if r.digest]
    if done:
        lines += ["", "<details><summary>Full digests</summary>", ""]
        lines += [f"- {md(r.target.id)}: `{r.url}`" for r in done]
        lines += ["", "</details>"]
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
        lines += [f"- **{md(r.target.id)}** ({r.status}): {md(r.error or '')}" for r in problems]
    return "\n".join(lines) + "\n"


def finish_promote(settings: Settings, ctx: Context, results: Sequence[promote.Promotion]) -> None:
    for r in results:
        said = f"{r.target.id}: {r.status}" + (f" {r.url}" if r.url else "")
        said += f" ({r.error})" if r.error else ""
        if r.rollback and r.status == "promoted":
            said += f" rollback: {settings.to_tag} moved back from {r.previous_revision} to {r.revision}"
        if ctx.in_actions:
            _log_group(r, said)
        else:
            print(said, file=sys.stderr)
    count = {s: sum(1 for r in results if r.status == s) for s in ("promoted", "failed", "unchanged")}
    outputs = _no_artifacts(
        artifacts=json.dumps(artifacts(results)),
        failed=str(count["failed"]),
        unchanged=str(count["unchanged"]),
        promoted=str(count["promoted"]),
    )
    write_report(settings, promote_summary(results, settings.from_tag, settings.to_tag), outputs, stdout=True)


def _log_group(r: promote.Promotion, said: str) -> None:
    gha.start_group(said.split(" ", 2)[0] + f" {r.status}")
    token = f"stop-{uuid.uuid4().hex}"  # registry and git text inside: no workflow commands
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
