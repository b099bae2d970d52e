"""Deployment records: a push with `deployments: true` records one GitHub Deployment per pushed target
(real timoni, flux and registry); `mode: deployment-status` on the repository_dispatch event Flux's
githubdispatch provider sends sets its status. The GitHub API is the OpenAPI-checked test server;
the dispatch payloads follow notification-controller's format (support/payloads.flux_dispatch)."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

from support import payloads
from support.action import ActionRun, annotations, run_action
from support.github_api import GitHubApiServer
from support.repos import GitRepo

ENVIRONMENTS = {
    "webapp-staging": "staging",
    "webapp-production": "production",
    "staging/billing": "staging",
    "production/billing": "production",
    "platform-staging": "staging",
}
DIGEST = "sha256:" + "ab" * 32
SHA = "1f" * 20


def push(
    repo: GitRepo, work: Path, prefix: str, api: GitHubApiServer, **inputs: str
) -> ActionRun:
    return run_action(
        repo.path,
        work,
        inputs={
            "registry": prefix,
            "deployments": "true",
            "github-token": api.token,
            **inputs,
        },
        payload={"before": "0" * 40, "created": True},
        sha=repo.head(),
        env={"GITHUB_API_URL": api.base_url},
    )


def dispatch(
    repo: GitRepo,
    work: Path,
    api: GitHubApiServer,
    event: dict[str, Any],
    **inputs: str,
) -> ActionRun:
    return run_action(
        repo.path,
        work,
        inputs={"mode": "deployment-status", "github-token": api.token, **inputs},
        event_name="repository_dispatch",
        payload=event,
        env={"GITHUB_API_URL": api.base_url},
    )


def event_for(deployment: dict[str, Any], tag: str, **more: Any) -> dict[str, Any]:
    """What Flux sends once the Kustomization of a target applied the deployment's digest. The
    Kustomization's name and the OCIRepository's revision are flux-config's and source-controller's,
    not read from the deployment."""
    p = deployment["payload"]
    return payloads.flux_dispatch(
        name=p["target"].replace("/", "-"),
        artifact_revision=f"{tag}@{p['digest']}",
        origin_revision=p["revision"],
        **more,
    )


def seed(
    api: GitHubApiServer,
    environment: str = "staging",
    name: str = "webapp-staging",
    revision: str = "",
) -> dict[str, Any]:
    """A deployment as a push records it, made through the API (no push needed)."""
    body = {
        "ref": SHA,
        "task": "deploy",
        "auto_merge": False,
        "required_contexts": [],
        "environment": environment,
        "payload": {
            "tool": "timoni-flux-push",
            "target": name,
            "artifact": "oci://r.example/webapp",
            "digest": DIGEST,
            "revision": revision or f"main@sha1:{SHA}",
            "kustomization": {"name": name, "namespace": "flux-system"},
        },
    }
    request = urllib.request.Request(
        f"{api.base_url}/repos/{api.repo}/deployments",
        data=json.dumps(body).encode(),
        method="POST",
    )
    request.add_header("Authorization", f"token {api.token}")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request) as answer:
        made: dict[str, Any] = json.loads(answer.read())
    return made


def test_push_records_deployments_and_flux_events_set_their_status(
    example_repo: GitRepo, prefix: str, api: GitHubApiServer, tmp_path: Path
) -> None:
    run = push(example_repo, tmp_path / "push", prefix, api)
    assert run.returncode == 0, run.stdout + run.stderr
    pushed = run.by_name()
    assert {n for n, a in pushed.items() if a["status"] == "pushed"} == set(
        ENVIRONMENTS
    )
    by_target = {d["payload"]["target"]: d for d in api.deployments}
    assert len(api.deployments) == len(ENVIRONMENTS)
    for name, env in ENVIRONMENTS.items():
        d = by_target[name]
        assert (
            d["environment"] == env
            and d["ref"] == example_repo.head()
            and d["task"] == "deploy"
        )
        assert d["payload"] == {
            "tool": "timoni-flux-push",
            "target": name,
            "artifact": pushed[name]["artifact"],
            "digest": pushed[name]["digest"],
            "revision": f"main@sha1:{example_repo.head()}",
            "kustomization": {
                "name": name.replace("/", "-"),
                "namespace": "flux-system",
            },
        }
        assert api.statuses_of(d["id"]) == ["in_progress"]
    created = [
        r["body"]
        for r in api.requests
        if r["method"] == "POST" and r["path"].endswith("/deployments")
    ]
    assert all(
        b["auto_merge"] is False and b["required_contexts"] == [] for b in created
    )
    # The summary links each deployment's environment and shows Flux's githubdispatch configuration.
    assert "### Deployments" in run.summary
    assert "(https://github.com/octo-org/gitops/deployments/staging)" in run.summary
    assert (
        "type: githubdispatch" in run.summary
        and "name: github-dispatch-production" in run.summary
    )

    staging = by_target["webapp-staging"]
    # mode auto with deployments on a repository_dispatch event: the same as mode deployment-status
    ok = dispatch(
        example_repo,
        tmp_path / "ok",
        api,
        event_for(staging, "staging"),
        mode="auto",
        deployments="true",
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert api.statuses_of(staging["id"]) == ["in_progress", "success"]
    assert (
        ok.outputs["deployment-id"] == str(staging["id"])
        and ok.outputs["deployment-state"] == "success"
    )
    again = dispatch(
        example_repo, tmp_path / "again", api, event_for(staging, "staging")
    )
    assert again.returncode == 0 and "already" in again.summary
    # the next interval's event
    assert api.statuses_of(staging["id"]) == ["in_progress", "success"]

    production = by_target["production/billing"]
    failed = event_for(
        production,
        "production",
        severity="error",
        reason="HealthCheckFailed",
        message="health check failed after 3m0s: timeout waiting for: "
        "[Deployment/production/billing status: 'InProgress']",
        commit_status=False,
    )
    bad = dispatch(example_repo, tmp_path / "failed", api, failed)
    assert bad.returncode == 0, bad.stdout + bad.stderr
    assert api.statuses_of(production["id"]) == ["in_progress", "failure"]
    others = [
        d for d in api.deployments if d["id"] not in (staging["id"], production["id"])
    ]
    assert all(api.statuses_of(d["id"]) == ["in_progress"] for d in others)
    assert api.rejections == []


def test_a_dispatch_for_an_unknown_revision_changes_nothing(
    example_repo: GitRepo, api: GitHubApiServer, tmp_path: Path
) -> None:
    d = seed(api)
    for i, (artifact, origin) in enumerate(
        [
            (f"staging@sha256:{'cd' * 32}", f"main@sha1:{SHA}"),  # another digest
            (f"staging@{DIGEST}", f"main@sha1:{'2e' * 20}"),  # another commit
            (f"production@{DIGEST}", f"main@sha1:{SHA}"),  # another environment
        ]
    ):
        event = payloads.flux_dispatch(
            name="webapp-staging", artifact_revision=artifact, origin_revision=origin
        )
        run = dispatch(example_repo, tmp_path / f"run{i}", api, event)
        assert run.returncode == 0, run.stdout + run.stderr
        assert "nothing changed" in run.summary
        assert any(
            a["level"] == "warning" and "no deployment" in a["message"]
            for a in annotations(run.stdout)
        )
    assert api.statuses_of(d["id"]) == []
    assert api.rejections == []


def test_forged_dispatch_payloads_change_nothing_and_say_so(
    example_repo: GitRepo, api: GitHubApiServer, tmp_path: Path
) -> None:
    d = seed(api)
    good = {
        "name": "webapp-staging",
        "artifact_revision": f"staging@{DIGEST}",
        "origin_revision": f"main@sha1:{SHA}",
    }
    other_repo = payloads.flux_dispatch(**good, repository="evil-org/gitops")
    renamed = payloads.flux_dispatch(**good)
    # event_type says staging
    renamed["client_payload"]["involvedObject"]["name"] = "webapp-production"
    bad_name = payloads.flux_dispatch(**{**good, "name": "Webapp_Staging;rm"})
    no_revision = payloads.flux_dispatch(**good)
    del no_revision["client_payload"]["metadata"]["revision"]
    not_flux = payloads.example("repository_dispatch")
    not_flux["repository"]["full_name"] = "octo-org/gitops"
    cases = {
        "another repository": (other_repo, "evil-org/gitops"),
        "ids that disagree": (renamed, "does not name the object"),
        "a bad name": (bad_name, "is not Flux's"),
        "no revision": (no_revision, "metadata has no `revision`"),
        "not a Flux event": (not_flux, "is not Flux's"),
    }
    for case, (event, said) in cases.items():
        run = dispatch(example_repo, tmp_path / case.replace(" ", "-"), api, event)
        assert run.returncode == 2, (case, run.stdout + run.stderr)
        shown = run.summary.replace("\\", "")  # the markdown escapes
        assert said in shown and "nothing changed" in shown, (case, run.summary)
        assert any(a["level"] == "error" for a in annotations(run.stdout)), case
    assert api.statuses_of(d["id"]) == []
    # the seed: no call for any forged payload
    assert [r["method"] for r in api.requests] == ["POST"]


def test_an_event_that_ends_nothing_changes_nothing(
    example_repo: GitRepo, api: GitHubApiServer, tmp_path: Path
) -> None:
    d = seed(api)
    applied = payloads.flux_dispatch(
        name="webapp-staging",
        artifact_revision=f"staging@{DIGEST}",
        origin_revision=f"main@sha1:{SHA}",
        reason="Progressing",
        message="Deployment/apps/webapp-staging configured",
        commit_status=False,
    )
    run = dispatch(example_repo, tmp_path / "applied", api, applied)
    assert run.returncode == 0 and "ends no deployment" in run.summary
    assert api.statuses_of(d["id"]) == []


def test_missing_permissions_are_said_clearly(
    example_repo: GitRepo, prefix: str, api: GitHubApiServer, tmp_path: Path
) -> None:
    d = seed(api)
    api.forbid_writes = True  # the token has no `deployments: write`
    event = payloads.flux_dispatch(
        name="webapp-staging",
        artifact_revision=f"staging@{DIGEST}",
        origin_revision=f"main@sha1:{SHA}",
    )
    run = dispatch(example_repo, tmp_path / "status", api, event)
    assert run.returncode == 1
    [error] = [a for a in annotations(run.stdout) if a["level"] == "error"]
    assert "403" in error["message"] and "deployments: write" in error["message"]
    shown = [
        line for line in run.stdout.splitlines() if not line.startswith("::add-mask")
    ]
    assert api.token not in "\n".join(shown) + run.stderr + run.summary
    assert api.statuses_of(d["id"]) == []

    pushed = push(
        example_repo,
        tmp_path / "push",
        prefix,
        api,
        targets="webapp-staging,webapp-production",
    )
    # the push itself succeeded
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    assert {a["status"] for a in pushed.artifacts()} == {"pushed"}
    warned = [
        a["message"] for a in annotations(pushed.stdout) if a["level"] == "warning"
    ]
    for name in ("webapp-staging", "webapp-production"):
        assert any("deployments: write" in w and w.startswith(name) for w in warned), (
            warned
        )
    rows = [
        line for line in pushed.summary.splitlines() if "deployments: write" in line
    ]
    assert len(rows) == 2 and all(line.startswith("| webapp-") for line in rows), (
        pushed.summary
    )
    assert len(api.deployments) == 1  # the seed only
    # One refused request: the second target is not tried, it says why.
    posts = [
        r
        for r in api.requests
        if r["method"] == "POST" and r["path"].endswith("/deployments")
    ]
    assert len(posts) == 2  # the seed, and the one refused


def test_a_revision_without_a_commit_is_matched_by_environment(
    example_repo: GitRepo, api: GitHubApiServer, tmp_path: Path
) -> None:
    """A `revision` template without {sha} (e.g. `{ref_name}`): the deployments are looked up by
    environment alone, and the payload's revision and digest still decide."""
    older, newer = seed(api, revision="v1.2.0"), seed(api, revision="v1.3.0")
    event = payloads.flux_dispatch(
        name="webapp-staging",
        artifact_revision=f"staging@{DIGEST}",
        origin_revision="v1.2.0",
    )
    run = dispatch(example_repo, tmp_path / "run", api, event)
    assert run.returncode == 0, run.stdout + run.stderr
    assert (api.statuses_of(older["id"]), api.statuses_of(newer["id"])) == (
        ["success"],
        [],
    )
    listed = [
        r["path"]
        for r in api.requests
        if r["method"] == "GET" and r["path"].split("?")[0].endswith("/deployments")
    ]
    assert listed and all(
        "sha=" not in p and "environment=staging" in p for p in listed
    )


def test_deployment_status_runs_only_on_repository_dispatch(
    example_repo: GitRepo, api: GitHubApiServer, tmp_path: Path
) -> None:
    run = run_action(
        example_repo.path,
        tmp_path / "push-event",
        inputs={"mode": "deployment-status", "github-token": api.token},
        payload={"before": "0" * 40, "created": True},
        env={"GITHUB_API_URL": api.base_url},
    )
    assert run.returncode == 2 and "runs on repository" in run.summary.replace("\\", "")
    assert api.requests == []
