"""Issue 12, item 5: pull_request_target. Its checkout is the base branch and the run holds the
repository's secrets. Before this fix the action dry-ran the checkout: a real change reported
"nothing changed". Now the event is refused (exit 2, summary written) unless the workflow sets
`allow-pull-request-target`; then the pull request's head, fetched by SHA, is dry-run against its
base, without registry credentials."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import PR, GitRepo
from support import payloads
from support.action import ActionRun, annotations, run_action
from support.registry import Registry


def pull_request_from_fork(origin: GitRepo, tmp: Path) -> tuple[GitRepo, str, str]:
    """origin: main at the base, the fork's change only at refs/pull/PR/head (as on GitHub).
    Returns the workspace (a shallow clone of main, as actions/checkout leaves it on this event),
    the base and the head."""
    base = origin.head()
    origin.git("checkout", "-q", "-b", "feature")
    staging = origin.path / "apps/webapp/staging.yaml"
    staging.write_text(staging.read_text().replace("replicas: 1", "replicas: 2"))
    head = origin.commit_all("two replicas")
    origin.git("update-ref", f"refs/pull/{PR}/head", head)
    origin.git("checkout", "-q", "main")
    origin.git("branch", "-q", "-D", "feature")
    workspace = origin.shallow_clone(tmp / "workspace")
    assert (
        subprocess.run(
            ["git", "-C", str(workspace.path), "cat-file", "-e", head]
        ).returncode
        != 0
    )
    return workspace, base, head


def target_run(
    workspace: GitRepo, tmp: Path, base: str, head: str, **inputs: str
) -> ActionRun:
    return run_action(
        workspace.path,
        tmp,
        event_name="pull_request_target",
        payload=payloads.pull_request_target(base_sha=base, head_sha=head, number=PR),
        sha=base,  # GITHUB_SHA of this event: the base branch's last commit
        ref_name="main",
        inputs={"comment": "false", **inputs},
    )


def test_refused_unless_allowed(
    example_repo: GitRepo, registry: Registry, prefix: str, tmp_path: Path
) -> None:
    workspace, base, head = pull_request_from_fork(example_repo, tmp_path)
    run = target_run(workspace, tmp_path / "run", base, head, registry=prefix)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    errors = [a for a in annotations(run.stdout) if a["level"] == "error"]
    assert errors and "pull_request_target" in errors[0]["message"]
    assert "allow-pull-request-target" in errors[0]["message"]
    assert (
        "Nothing was built" in run.summary and "pull\\_request\\_target" in run.summary
    )
    assert run.outputs["artifacts"] == "[]" and run.outputs["pushed"] == "0"
    assert registry.tags(prefix.split("/", 1)[1] + "/webapp") == []


def test_allowed_dry_runs_the_pull_requests_head(
    example_repo: GitRepo, registry: Registry, prefix: str, tmp_path: Path
) -> None:
    deployed = run_action(
        example_repo.path,
        tmp_path / "deploy",
        inputs={"registry": prefix, "all": "true"},
    )
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    workspace, base, head = pull_request_from_fork(example_repo, tmp_path)
    run = target_run(
        workspace,
        tmp_path / "run",
        base,
        head,
        registry=prefix,
        **{"allow-pull-request-target": "true"},
    )
    assert run.returncode == 0, run.stdout + run.stderr
    # The pull request's change, not the checkout's: base..head of the PR, and the diff shows it.
    assert f"`{base[:12]}`..`{head[:12]}`" in run.summary
    targets = run.by_name()
    assert set(targets) == {"webapp-staging"}, targets
    assert (
        targets["webapp-staging"]["status"] == "dry-run"
        and targets["webapp-staging"]["changed"]
    )
    assert "replicas: 2" in run.summary
    assert run.outputs["pushed"] == "0"


def test_allowed_never_pushes(
    example_repo: GitRepo, prefix: str, tmp_path: Path
) -> None:
    workspace, base, head = pull_request_from_fork(example_repo, tmp_path)
    run = target_run(
        workspace,
        tmp_path / "run",
        base,
        head,
        registry=prefix,
        mode="push",
        **{"allow-pull-request-target": "true"},
    )
    assert run.returncode == 2, run.stdout + run.stderr
    assert "mode `push` on pull_request_target" in run.summary.replace("\\", "")


def test_allowed_reads_without_the_registry_credentials(
    example_repo: GitRepo,
    auth_registry: Registry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same inputs that read the tag on a push are not used for the pull request's code."""
    assert auth_registry.auth is not None and auth_registry.ca_file is not None
    monkeypatch.setenv("SSL_CERT_FILE", str(auth_registry.ca_file))
    user, password = auth_registry.auth
    prefix = f"oci://{auth_registry.host}/pr-target"
    creds = {
        "registry": prefix,
        "registry-username": user,
        "registry-password": password,
    }
    deployed = run_action(
        example_repo.path,
        tmp_path / "deploy",
        inputs={**creds, "all": "true", "targets": "webapp-staging"},
    )
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    workspace, base, head = pull_request_from_fork(example_repo, tmp_path)
    run = target_run(
        workspace,
        tmp_path / "run",
        base,
        head,
        **creds,
        **{"allow-pull-request-target": "true"},
    )
    target = run.by_name()["webapp-staging"]
    assert target["status"] == "failed" and "UNAUTHORIZED" in target["error"], target
    shown = [ln for ln in run.stdout.splitlines() if not ln.startswith("::add-mask ::")]
    assert password not in "\n".join([*shown, run.stderr, run.summary])
