"""Real GitHub event payloads from npm `@octokit/webhooks-examples` (tools/test-material.sh puts the
package under .tools/npm/webhooks-examples), patched for the case a test needs.

Each helper starts from a real example and changes only the fields the action reads (and the ones
that must agree with them), so everything else stays what GitHub really sends.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / ".tools" / "npm" / "webhooks-examples"
INDEX = PACKAGE / "api.github.com" / "index.json"
ZERO = "0" * 40

Payload = dict[str, Any]


class MissingMaterial(RuntimeError):
    pass


@cache
def _examples() -> dict[str, list[Payload]]:
    if not INDEX.is_file():
        raise MissingMaterial(
            f"{INDEX} is missing: run tools/test-material.sh (make test does)"
        )
    return {d["name"]: d["examples"] for d in json.loads(INDEX.read_text("utf-8"))}


def version() -> str:
    return (PACKAGE / ".version").read_text().strip()


def example(event: str, where: Callable[[Payload], bool] = lambda _: True) -> Payload:
    """A deep copy of the first real example of `event` that satisfies `where`."""
    for e in _examples().get(event, []):
        if where(e):
            return copy.deepcopy(e)
    raise LookupError(
        f"@octokit/webhooks-examples has no {event} example matching the filter"
    )


def push(
    *,
    before: str,
    after: str,
    ref: str = "refs/heads/main",
    forced: bool = False,
    created: bool = False,
    deleted: bool = False,
) -> Payload:
    """A branch push (the real example pushes refs/heads/master)."""
    p = example("push", lambda e: e["ref"].startswith("refs/heads/"))
    p.update(
        ref=ref,
        before=before,
        after=after,
        forced=forced,
        created=created,
        deleted=deleted,
    )
    p["compare"] = f"{p['repository']['html_url']}/compare/{before[:12]}...{after[:12]}"
    if deleted:
        p["head_commit"] = None
        p["commits"] = []
    elif p.get("head_commit"):
        p["head_commit"]["id"] = after
    return p


def pull_request(
    *,
    base_sha: str,
    head_sha: str,
    number: int = 2,
    fork: bool = False,
    action: str = "synchronize",
) -> Payload:
    """A pull request event; with `fork`, the head lives in another user's fork."""
    p = example("pull_request", lambda e: e.get("action") == action)
    p["number"] = number
    pr = p["pull_request"]
    pr["number"] = number
    pr["base"]["sha"] = base_sha
    pr["head"]["sha"] = head_sha
    if fork:
        head_repo = pr["head"]["repo"]
        owner = "forker"
        name = head_repo["name"]
        head_repo["full_name"] = f"{owner}/{name}"
        head_repo["fork"] = True
        head_repo["owner"]["login"] = owner
        head_repo["html_url"] = f"https://github.com/{owner}/{name}"
        pr["head"]["label"] = f"{owner}:{pr['head']['ref']}"
        pr["head"]["user"]["login"] = owner
    return p


def pull_request_target(
    *, base_sha: str, head_sha: str, number: int = 2, fork: bool = True
) -> Payload:
    """A pull_request_target event. GitHub sends it the pull_request webhook's payload (the package
    has no example of its own, because it is no webhook of its own): the real pull_request example,
    from a fork by default, the case the event exists for."""
    return pull_request(
        base_sha=base_sha, head_sha=head_sha, number=number, fork=fork, action="opened"
    )


def merge_group(*, base_sha: str, head_sha: str) -> Payload:
    p = example("merge_group")
    mg = p["merge_group"]
    mg["base_sha"] = base_sha
    mg["head_sha"] = head_sha
    mg["head_commit"]["id"] = head_sha
    return p


def workflow_dispatch(ref: str = "refs/heads/main") -> Payload:
    p = example("workflow_dispatch")
    p["ref"] = ref
    return p


def schedule(cron: str = "30 5 * * 1") -> Payload:
    """`schedule` is no webhook, so the package has no example: GitHub's runner gives the workflow
    `{"schedule": CRON}` plus the repository, organization and sender objects, taken here from the
    real workflow_dispatch example."""
    base = example("workflow_dispatch")
    return {
        "schedule": cron,
        **{k: base[k] for k in ("repository", "organization", "sender") if k in base},
    }


def write(payload: Payload, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload), "utf-8")
    return path


def flux_dispatch(
    *,
    name: str,
    artifact_revision: str,
    origin_revision: str,
    namespace: str = "flux-system",
    severity: str = "info",
    reason: str = "ReconciliationSucceeded",
    message: str = "Reconciliation finished in 2.1s, next run in 60m0s",
    commit_status: bool = True,
    repository: str = "octo-org/gitops",
) -> Payload:
    """The `repository_dispatch` event Flux's githubdispatch provider sends for a Kustomization event.

    The envelope is the package's real repository_dispatch example. Inside it, as
    notification-controller v1.9.3 sends it (internal/notifier/github_dispatch.go): `action` (the
    event_type) is `<kind>/<name>.<namespace>` of the involved object and `client_payload` the event
    marshalled as JSON (fluxcd/pkg apis/event/v1beta1/event.go: involvedObject as a
    corev1.ObjectReference, severity, timestamp, message, reason, metadata, reportingController,
    reportingInstance), its metadata keys stripped of kustomize-controller's
    `kustomize.toolkit.fluxcd.io/` prefix (internal/server/event_handlers.go, combineEventMetadata).
    """
    p = example("repository_dispatch")
    owner, repo = repository.split("/")
    p["repository"].update(name=repo, full_name=repository)
    p["repository"]["owner"]["login"] = owner
    p["action"] = f"Kustomization/{name}.{namespace}"
    metadata = {"revision": artifact_revision, "originRevision": origin_revision}
    if commit_status:  # only the Ready event of a finished reconciliation carries it
        metadata["commit_status"] = "update"
    p["client_payload"] = {
        "involvedObject": {
            "kind": "Kustomization",
            "namespace": namespace,
            "name": name,
            "uid": "6b5c1b5e-2f0a-4c5e-9d0f-3a1e0c7b9f21",
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "resourceVersion": "48213",
        },
        "severity": severity,
        "timestamp": "2026-12-06T20:15:04Z",
        "message": message,
        "reason": reason,
        "metadata": metadata,
        "reportingController": "kustomize-controller",
        "reportingInstance": "kustomize-controller-7f9c8d6b5-x2x4q",
    }
    return p
