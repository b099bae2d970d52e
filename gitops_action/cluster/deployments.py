"""GitHub Deployments: what runs where. A push run with `deployments: true` records each pushed target
as a deployment in the environment its tag names, `in_progress`; Flux's `githubdispatch` provider
then sends a `repository_dispatch` event per Kustomization event, and `mode: deployment-status`
(dispatch.py reads the event) sets the matching deployment to `success` or `failure`.

PyGithub over the REST API, as report/github.py. A refusal (403: the workflow's token lacks
`deployments: write`) comes back as a message, never as an exception or with the token in it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

from github import GithubException
from github.Deployment import Deployment
from github.GithubObject import NotSet
from github.Repository import Repository

from gitops_action.cluster import notifications
from gitops_action.cluster.flux_config import settings_for
from gitops_action.config.targets import Config, ConfigError, Target
from gitops_action.inputs.context import Context
from gitops_action.push.results import TargetResult
from gitops_action.report.github import github_client
from gitops_action.report.notice import warn
from gitops_action.secrets import redact
from gitops_action.text import details, fence, md

TOOL = "timoni-flux-push"  # the payload's `tool`: a deployment this action recorded
TASK = "deploy"
PERMISSION = "give the workflow's job `permissions: deployments: write`"
UNWRITTEN = "its Flux follows a tag this push did not write"
State = Literal["in_progress", "success", "failure"]


@dataclass(frozen=True)
class Api:
    url: str
    token: str
    repository: str  # owner/name


@dataclass(frozen=True)
class Recorded:
    """One pushed target's deployment, or why there is none."""

    target: str
    environment: str
    deployment_id: int | None = None
    error: str = ""


@dataclass(frozen=True)
class Sync:
    """The Kustomization that applies a target, and the tag (environment) it follows."""

    environment: str
    name: str
    namespace: str


def sync_of(target: Target, config: Config) -> Sync:
    s = settings_for(target, config.flux)
    return Sync(str(s["source.tag"]), str(s["name"]), str(s["namespace"]))


def payload(result: TargetResult, sync: Sync) -> dict[str, Any]:
    """What a dispatch event is matched against: the digest and revision Flux reports, and the
    Kustomization that reports them."""
    return {
        "tool": TOOL,
        "target": result.target.id,
        "artifact": result.target.artifact,
        "digest": result.digest,
        "revision": result.revision,
        "kustomization": {"name": sync.name, "namespace": sync.namespace},
    }


@contextmanager
def client(api: Api) -> Iterator[Repository]:
    gh = github_client(api.url, api.token)
    try:
        yield gh.get_repo(api.repository)
    finally:
        gh.close()


def record(
    api: Api, config: Config, results: Sequence[TargetResult], head: str, log_url: str
) -> list[Recorded]:
    """A deployment, `in_progress`, for each pushed target whose Kustomization follows a tag this
    push wrote. After a refusal or an unreachable API the others are not tried (they would fail
    alike) and say why."""
    out: list[Recorded] = []
    stop = ""
    with client(api) as repo:
        for r in results:
            if r.status != "pushed" or not r.digest:
                continue
            sync = sync_of(r.target, config)
            if stop or sync.environment not in r.target.tags:
                out.append(
                    Recorded(r.target.id, sync.environment, error=stop or UNWRITTEN)
                )
                continue
            try:
                out.append(
                    Recorded(
                        r.target.id,
                        sync.environment,
                        _create(repo, r, sync, head, log_url).id,
                    )
                )
            except GithubException as exc:
                error = refusal("create a deployment", exc, api.token)
                out.append(Recorded(r.target.id, sync.environment, error=error))
                stop = error if exc.status in (401, 403, 404) else ""
            except OSError as exc:  # requests' errors (connection refused, timeout)
                stop = f"could not reach GitHub: {exc}"
                out.append(Recorded(r.target.id, sync.environment, error=stop))
    return out


def _create(
    repo: Repository, r: TargetResult, sync: Sync, head: str, log_url: str
) -> Deployment:
    made = repo.create_deployment(
        ref=head,
        task=TASK,
        # the commit is pushed already: never merge the default branch into it
        auto_merge=False,
        # nor wait for its checks: the artifact is in the registry
        required_contexts=[],
        payload=payload(r, sync),
        environment=sync.environment,
        description=f"{r.target.id} {r.digest}"[:140],
    )
    made.create_status(
        "in_progress",
        target_url=log_url or NotSet,
        description="pushed; Flux applies it",
    )
    return made


def refusal(what: str, exc: GithubException, token: str) -> str:
    data = exc.data if isinstance(exc.data, dict) else {}
    detail = str(data.get("message") or exc.message or "")
    if exc.status in (401, 403, 404):
        unseen = (
            " (GitHub answers 404 to a token that may not see the repository)"
            if exc.status == 404
            else ""
        )
        text = f"GitHub refused to {what}: {exc.status} {detail}{unseen}. To allow it, {PERMISSION}."
    else:
        text = f"could not {what}: {exc.status} {detail}"
    return " ".join(redact(text, [token]).split()) if token else " ".join(text.split())


def environment_url(server_url: str, repository: str, environment: str) -> str:
    """The repository's page of one environment's deployments."""
    return f"{server_url}/{repository}/deployments/{quote(environment, safe='')}"


def record_run(
    github_token: str,
    ctx: Context,
    config: Config,
    results: Sequence[TargetResult],
    head: str,
) -> str:
    """A push run's deployments: recorded, said in the log, and the summary's section (with the
    githubdispatch configuration that reports back to them)."""
    if not any(r.status == "pushed" for r in results):
        return ""
    if not (github_token and ctx.repository):
        warn(
            ctx,
            "deployments: true needs `github-token` and a GitHub repository: no deployment was recorded",
        )
        return ""
    api = Api(ctx.api_url, github_token, ctx.repository)
    done = record(api, config, results, head, ctx.run_url())
    for d in done:
        if d.error:
            warn(ctx, f"{d.target}: no deployment in {d.environment}: {d.error}")
    return summary(ctx, config, done)


def summary(ctx: Context, config: Config, done: Sequence[Recorded]) -> str:
    lines = [
        "",
        "### Deployments",
        "",
        "| target | environment | deployment |",
        "|---|---|---|",
    ]
    for d in done:
        env = f"[{md(d.environment)}]({environment_url(ctx.server_url, ctx.repository, d.environment)})"
        what = (
            f"{d.deployment_id} in progress"
            if d.deployment_id
            else f"none: {md(d.error)}"
        )
        lines.append(f"| {md(d.target)} | {env} | {what} |")
    yaml_text = _dispatch_yaml(ctx, config, done)
    if yaml_text:
        title = (
            "Flux githubdispatch configuration that reports back to these deployments"
        )
        title += " (flux-config writes it with flux.notification.dispatch)"
        lines += ["", details(title, [fence(yaml_text, "yaml")])]
    return "\n".join(lines) + "\n"


def _dispatch_yaml(ctx: Context, config: Config, done: Sequence[Recorded]) -> str:
    """What `flux-config` writes with `flux.notification.dispatch` for the environments deployed
    now: their Alerts name every Kustomization that follows the tag, not only this run's."""
    deployed = {d.environment for d in done if d.deployment_id}
    envs: dict[tuple[str, str], list[str]] = {}
    for t in config.targets:
        # a matched file that cannot be a target: no tag, no Kustomization
        if t.problem:
            continue
        sync = sync_of(t, config)
        if sync.environment in deployed:
            envs.setdefault((sync.environment, sync.namespace), []).append(sync.name)
    notify = notifications.settings(config)
    github = f"{ctx.server_url}/{ctx.repository}" if ctx.repository else ""
    try:
        url = notifications.repository_url(notify, config, github, "")
    except ConfigError:
        return ""
    return notifications.dispatch_objects(envs, notify, url) if envs else ""
