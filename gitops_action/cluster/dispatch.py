"""`mode: deployment-status`: the `repository_dispatch` event Flux's `githubdispatch` provider sends
→ the matching deployment's status (`success` or `failure`). The payload is hostile input: anything
that is not Flux's format, or that names another repository, changes nothing and says why.

The format, read in the sources of the versions flux v2.9.4 pins:
- notification-controller v1.9.3, `internal/notifier/github_dispatch.go` (`GitHubDispatch.Post`):
  `event_type` is `<involvedObject.kind>/<involvedObject.name>.<involvedObject.namespace>`, and
  `client_payload` is the event marshalled as JSON;
- fluxcd/pkg `apis/event/v1beta1/event.go` (apis/event v0.27.1): the event is `involvedObject`,
  `severity` (`info` or `error`), `timestamp`, `message`, `reason`, `metadata`,
  `reportingController`, `reportingInstance`;
- notification-controller `internal/server/event_handlers.go` (`combineEventMetadata`) strips the
  `kustomize.toolkit.fluxcd.io/` prefix kustomize-controller v1.9.4 gives its metadata keys
  (`internal/controller/kustomization_controller.go`, `event`): `revision` is the OCIRepository's
  artifact revision `<tag>@sha256:<digest>` (source-controller), `originRevision` the artifact's
  `org.opencontainers.image.revision` (what this action pushed as its revision), and the event of a
  successful reconciliation carries `commit_status: update`.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import github_action_utils as gha
from github import GithubException
from github.Deployment import Deployment
from github.GithubObject import NotSet
from github.Repository import Repository

from gitops_action.changes.events import load_payload
from gitops_action.cluster import deployments
from gitops_action.cluster.deployments import Api, State
from gitops_action.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from gitops_action.inputs.context import Context
from gitops_action.report.finish import NO_ARTIFACTS, Reporting, write
from gitops_action.text import md, plain

EVENT = "repository_dispatch"
EVENT_TYPE = re.compile(
    r"(?P<kind>[A-Za-z]{1,63})/(?P<name>[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?)\.(?P<ns>[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)"
)
ARTIFACT_REVISION = re.compile(
    r"(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})@(?P<digest>sha256:[a-f0-9]{64})"
)
SHA = re.compile(r"@sha1:(?P<sha>[a-f0-9]{40})$")
MAX_REVISION = 1024
SCANNED = 100  # deployments looked at per event: one page


class Refused(Exception):
    """A dispatch payload that is not one Flux sends for this repository."""


@dataclass(frozen=True)
class FluxEvent:
    name: str  # the Kustomization
    namespace: str
    environment: str  # the tag its OCIRepository follows
    digest: str
    revision: str  # originRevision: the revision this action pushed
    # None: an event that ends nothing (a dependency wait, an apply log)
    state: State | None
    message: str


def parse(event: Mapping[str, Any], repository: str) -> FluxEvent:
    """The Flux event inside a repository_dispatch payload, or Refused saying what is wrong."""
    repo = _get(event, "repository", "full_name")
    if not isinstance(repo, str) or repo.lower() != repository.lower():
        raise Refused(
            f"the event is for repository {str(repo)[:100]!r}, this run is {repository!r}"
        )
    kind = EVENT_TYPE.fullmatch(str(event.get("action", ""))[:400])
    if kind is None:
        raise Refused(
            f"event_type {str(event.get('action'))[:100]!r} is not Flux's <Kind>/<name>.<namespace>"
        )
    body = event.get("client_payload")
    if not isinstance(body, dict):
        raise Refused("client_payload is not a Flux event (an object)")
    obj = body.get("involvedObject")
    if not isinstance(obj, dict) or (
        obj.get("kind"),
        obj.get("name"),
        obj.get("namespace"),
    ) != (
        kind["kind"],
        kind["name"],
        kind["ns"],
    ):
        raise Refused(
            "client_payload.involvedObject does not name the object of the event_type"
        )
    if kind["kind"] != "Kustomization":
        raise Refused(
            f"the event is about a {kind['kind']}: only Kustomization events record deployments"
        )
    meta = body.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    artifact = ARTIFACT_REVISION.fullmatch(str(meta.get("revision", ""))[:300])
    origin = meta.get("originRevision")
    if (
        artifact is None
        or not isinstance(origin, str)
        or not 0 < len(origin) <= MAX_REVISION
    ):
        raise Refused(
            "client_payload.metadata has no `revision` <tag>@sha256:<digest> and `originRevision` "
            "(Flux's event of an OCIRepository artifact this action pushed)"
        )
    severity = body.get("severity")
    if severity not in ("info", "error"):
        raise Refused(
            f"client_payload.severity {str(severity)[:20]!r} is not info or error"
        )
    state: State | None = "failure" if severity == "error" else None
    if severity == "info" and meta.get("commit_status") == "update":
        # kustomize-controller: the Ready event of a finished reconciliation
        state = "success"
    message = body.get("message")
    return FluxEvent(
        kind["name"],
        kind["ns"],
        artifact["tag"],
        artifact["digest"],
        origin,
        state,
        _text(message),
    )


def _get(data: Mapping[str, Any], *keys: str) -> Any:
    value: Any = data
    for k in keys:
        value = value.get(k) if isinstance(value, dict) else None
    return value


def _text(value: object) -> str:
    """An untrusted message as a one-line status description (GitHub takes 140 characters)."""
    text = " ".join(str(value or "").split())
    text = "".join(c for c in text if c.isprintable())
    return text if len(text) <= 140 else text[:139] + "…"


def matches(d: Deployment, ev: FluxEvent) -> bool:
    """A deployment this action recorded for exactly what the Kustomization applied."""
    p = d.payload if isinstance(d.payload, dict) else {}
    return (
        d.environment == ev.environment
        and p.get("tool") == deployments.TOOL
        and p.get("digest") == ev.digest
        and p.get("revision") == ev.revision
        and p.get("kustomization") == {"name": ev.name, "namespace": ev.namespace}
    )


def find(repo: Repository, ev: FluxEvent) -> Deployment | None:
    """The newest matching deployment (listed newest first), among one page."""
    sha = SHA.search(ev.revision)
    found = repo.get_deployments(
        sha=sha["sha"] if sha else NotSet,
        task=deployments.TASK,
        environment=ev.environment,
    )
    for i, d in enumerate(found):
        if i >= SCANNED:
            break
        if matches(d, ev):
            return d
    return None


@dataclass(frozen=True)
class Outcome:
    code: int
    text: str
    deployment_id: int | None = None
    state: str = ""
    quiet: bool = False  # an ordinary event that ends nothing: a notice, not a warning


def apply(api: Api, ev: FluxEvent, log_url: str) -> Outcome:
    where = f"Kustomization {ev.namespace}/{ev.name} in {ev.environment} ({ev.digest[:19]}…, {ev.revision})"
    if ev.state is None:
        text = f"{where}: an event that ends no deployment ({ev.message!r}): nothing changed"
        return Outcome(EXIT_OK, text, quiet=True)
    try:
        with deployments.client(api) as repo:
            d = find(repo, ev)
            if d is None:
                return Outcome(
                    EXIT_OK,
                    f"no deployment recorded by timoni-flux-push matches {where}: nothing changed",
                )
            now = next(iter(d.get_statuses()), None)
            if now is not None and now.state == ev.state:
                return Outcome(
                    EXIT_OK,
                    f"deployment {d.id} ({where}) is {ev.state} already",
                    d.id,
                    ev.state,
                )
            d.create_status(
                ev.state, target_url=log_url or NotSet, description=ev.message
            )
    except GithubException as exc:
        return Outcome(
            EXIT_FAILED,
            deployments.refusal("set the deployment status", exc, api.token),
        )
    except OSError as exc:
        return Outcome(EXIT_FAILED, f"could not reach GitHub: {exc}")
    return Outcome(EXIT_OK, f"deployment {d.id} ({where}): {ev.state}", d.id, ev.state)


def run(ctx: Context, github_token: str, to: Reporting) -> int:
    """mode deployment-status: one repository_dispatch event → at most one deployment status."""
    if ctx.event_name != EVENT:
        return _done(
            to,
            ctx,
            Outcome(
                EXIT_USAGE,
                f"mode deployment-status runs on {EVENT} events, not {ctx.event_name or 'none'}",
            ),
        )
    if not github_token:
        return _done(
            to,
            ctx,
            Outcome(EXIT_USAGE, "mode deployment-status needs `github-token`"),
        )
    try:
        ev = parse(load_payload(ctx.event_path), ctx.repository)
    except Refused as exc:
        return _done(
            to,
            ctx,
            Outcome(EXIT_USAGE, f"refused the {EVENT} payload: {exc}; nothing changed"),
        )
    api = Api(ctx.api_url, github_token, ctx.repository)
    return _done(to, ctx, apply(api, ev, ctx.run_url()))


def _done(to: Reporting, ctx: Context, out: Outcome) -> int:
    text = plain(out.text)
    if ctx.in_actions:
        if out.code:
            gha.error(text, title="timoni-flux-push: deployment status")
        elif out.state or out.quiet:
            gha.notice(text, title="timoni-flux-push: deployment status")
        else:
            gha.warning(text, title="timoni-flux-push: deployment status")
    else:
        print(text, file=sys.stderr)
    summary = f"## timoni-flux-push: deployment status\n\n{md(out.text)}\n"
    outputs = {
        **NO_ARTIFACTS,
        "deployment-id": str(out.deployment_id or ""),
        "deployment-state": out.state,
    }
    write(to, ctx, summary, outputs)
    return out.code
