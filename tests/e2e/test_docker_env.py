"""Issue 6: the entrypoint in GitHub's Docker-action environment, reproduced without Docker.

The runner mounts the workspace owned by its own uid (not the container's root), sets HOME to
/github/home, passes inputs as INPUT_* and the event as a JSON file. The action must work there,
write no file into the workspace or HOME, and leave git config untouched.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import PR, ROOT, GitRepo
from support.action import run_action
from support.github_api import GitHubApiServer
from support.registry import Registry

from gitops_action.inputs import settings

EXAMPLES = ROOT / ".tools/npm/webhooks-examples/api.github.com/index.json"
RUNNER_UID = 1001  # the uid GitHub's hosted runner user has


def webhook_example(event: str, action: str | None = None) -> dict[str, Any]:
    """A real payload from @octokit/webhooks-examples."""
    index = json.loads(EXAMPLES.read_text())
    entry = next(e for e in index if e["name"] == event)
    for example in entry["examples"]:
        if action is None or example.get("action") == action:
            return copy.deepcopy(example)
    raise LookupError(f"no {event}.{action} example")


def files_under(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*") if ".git" not in p.parts}


@pytest.fixture
def foreign_repo(example_repo: GitRepo) -> GitRepo:
    """The example repository owned by another uid, as the runner mounts /github/workspace."""
    subprocess.run(
        ["chown", "-R", f"{RUNNER_UID}:{RUNNER_UID}", str(example_repo.path)],
        check=True,
    )
    return example_repo


def test_git_refuses_the_foreign_workspace_without_the_action(
    foreign_repo: GitRepo, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    out = subprocess.run(
        ["git", "-C", str(foreign_repo.path), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        env={**os.environ, "HOME": str(home)},
        check=False,
    )
    # the trap the action must handle
    assert out.returncode != 0 and "dubious ownership" in out.stderr


def test_push_in_the_docker_environment(
    foreign_repo: GitRepo, registry: Registry, prefix: str, tmp_path: Path
) -> None:
    home = tmp_path / "github-home"
    home.mkdir()
    before_files = files_under(foreign_repo.path)
    sha = foreign_repo.git("rev-parse", "HEAD")
    payload = webhook_example("push")
    payload.update(
        before="0" * 40,
        after=sha,
        created=True,
        deleted=False,
        forced=False,
        ref="refs/heads/main",
    )
    system_gitconfig = tmp_path / "system-gitconfig"
    run = run_action(
        foreign_repo.path,
        tmp_path / "runner",
        inputs={"registry": prefix, "parallel": "2"},
        payload=payload,
        sha=sha,
        env={
            "HOME": str(home),
            "RUNNER_TEMP": str(tmp_path / "runner-temp"),
            "GIT_CONFIG_SYSTEM": str(system_gitconfig),
        },
    )
    assert run.returncode == 0, run.stdout + run.stderr
    arts = run.artifacts()
    assert len(arts) == 5 and {a["status"] for a in arts} == {"pushed"}
    for a in arts:
        found = registry.manifest(
            a["artifact"].removeprefix(f"oci://{registry.host}/"), a["tags"][0]
        )
        assert found is not None and found[0] == a["digest"]
        assert a["revision"] == f"main@sha1:{sha}"
    assert "| webapp-staging |" in run.summary
    # Nothing written into the workspace, HOME or any git config.
    assert files_under(foreign_repo.path) == before_files
    assert list(home.iterdir()) == []
    assert not system_gitconfig.exists()


def test_dry_run_in_the_docker_environment(
    foreign_repo: GitRepo,
    registry: Registry,
    prefix: str,
    api: GitHubApiServer,
    tmp_path: Path,
) -> None:
    home = tmp_path / "github-home"
    home.mkdir()
    base = foreign_repo.git("rev-parse", "HEAD")
    run_action(
        foreign_repo.path,
        tmp_path / "deploy",
        inputs={"registry": prefix, "all": "true"},
        sha=base,
        env={"HOME": str(home)},
    )
    staging = foreign_repo.path / "apps/webapp/staging.yaml"
    staging.write_text(staging.read_text().replace("replicas: 1", "replicas: 7"))
    head = foreign_repo.commit_all("scale")
    subprocess.run(
        ["chown", "-R", f"{RUNNER_UID}:{RUNNER_UID}", str(foreign_repo.path)],
        check=True,
    )
    payload = webhook_example("pull_request", "opened")
    payload["number"] = PR
    payload["pull_request"]["number"] = PR
    payload["pull_request"]["base"]["sha"] = base
    payload["pull_request"]["head"]["sha"] = head
    payload["pull_request"]["head"]["repo"] = payload["pull_request"]["base"]["repo"]
    run = run_action(
        foreign_repo.path,
        tmp_path / "pr",
        event_name="pull_request",
        payload=payload,
        sha=head,
        ref_name=f"{PR}/merge",
        inputs={"registry": prefix, "github-token": "ghs_test-token"},
        env={"HOME": str(home), "GITHUB_API_URL": api.base_url},
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert [(a["name"], a["status"]) for a in run.artifacts()] == [
        ("webapp-staging", "dry-run")
    ]
    assert run.outputs["changed"] == "true"
    assert "+  replicas: 7" in api.comments[0]["body"]
    assert "+  replicas: 7" in run.summary
    assert (
        registry.revision(f"{prefix.split('/', 3)[3]}/webapp", "staging")
        == f"main@sha1:{base}"
    )
    assert list(home.iterdir()) == []
    assert api.rejections == []


ACTION = yaml.safe_load((ROOT / "action.yml").read_text())
NON_DEFAULT = {
    "config": "other.yaml",
    "mode": "plan",
    "all": "true",
    "base": "abc123",
    "targets": "a,b",
    "revision": "{sha}",
    "registry": "oci://r.example.com/x",
    "registry-username": "u",
    "registry-password": "p",
    "provider": "aws",
    "github-token": "t",
    "parallel": "3",
    "skip-unchanged": "false",
    "comment": "false",
    "timeout": "90s",
    "sign": "cosign",
    "cosign-key": "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nx\n-----END ...-----",
    "cosign-password": "p",
    "fulcio-url": "https://fulcio.example.com",
    "rekor-url": "https://rekor.example.com",
    "from": "staging",
    "to": "production",
    "force": "true",
    "output-dir": "clusters/flux",
    "tag": "production",
    "deployments": "true",
    "allow-pull-request-target": "true",
}


@pytest.mark.parametrize("name", sorted(ACTION["inputs"]))
def test_every_input_changes_the_settings(name: str) -> None:
    """Each input of action.yml is read: setting it changes what the run does."""
    base_env = {
        f"INPUT_{k.upper()}": str(v.get("default", ""))
        for k, v in ACTION["inputs"].items()
    }
    base_env["INPUT_GITHUB-TOKEN"] = ""
    changed = dict(base_env)
    changed[f"INPUT_{name.upper()}"] = NON_DEFAULT[name]
    if name == "registry-username":
        changed["INPUT_REGISTRY-PASSWORD"] = "p"
    if name == "registry-password":
        changed["INPUT_REGISTRY-USERNAME"] = "u"
    if name == "cosign-password":  # a password alone is refused: it needs its key
        changed["INPUT_COSIGN-KEY"] = base_env["INPUT_COSIGN-KEY"] = NON_DEFAULT[
            "cosign-key"
        ]
    assert settings.from_inputs(changed) != settings.from_inputs(base_env)


def test_bad_input_is_a_usage_error(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("INPUT_")},
        "INPUT_MODE": "deploy",
        "PYTHONPATH": str(ROOT),
        "GITHUB_ACTIONS": "true",
    }
    out = subprocess.run(
        [sys.executable, str(ROOT / "entrypoint.py")],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert out.returncode == 2
    assert "input `mode`" in out.stdout and "deploy" in out.stdout


def test_cli_help_explains_every_flag() -> None:
    """Each command's --help explains each of its flags; together they name every input."""
    shown = ""
    sub = next(
        a
        for a in settings.parser()._actions
        if isinstance(a, argparse._SubParsersAction)
    )
    for command, p in sub.choices.items():
        out = subprocess.run(
            [sys.executable, "-m", "gitops_action", command, "--help"],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            check=True,
        )
        shown += out.stdout
        for action in p._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, f"{command} {action.option_strings} has no help"
                assert action.option_strings[-1] in out.stdout
    # The flags have the inputs' names (passwords, key and token come from the environment instead).
    for name in ACTION["inputs"]:
        if name not in (
            "registry-password",
            "github-token",
            "mode",
            "cosign-key",
            "cosign-password",
        ):
            assert f"--{name}" in shown, name
