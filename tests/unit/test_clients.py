"""clients: the registry login goes to one host only (the `registry` input's, else the
configuration's; on a pull request, the base commit's), never to a fork's dry run; and the
configuration's registry read at a commit of a real local git repository."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.repos import GitRepo

from gitops_action.changes.gitrepo import Repo
from gitops_action.clients import (
    docker_config,
    login_registry,
    registry_at,
    registry_clients,
)
from gitops_action.inputs.context import Context
from gitops_action.inputs.settings import Settings, from_inputs

OUTSIDE = Context.from_env({})


def settings(**given: str) -> Settings:
    return from_inputs(
        {f"INPUT_{k.replace('_', '-').upper()}": v for k, v in given.items()}
    )


def auths(env: dict[str, str]) -> dict[str, object]:
    config = json.loads(Path(env["DOCKER_CONFIG"], "config.json").read_text())
    assert isinstance(config, dict)
    found = config["auths"]
    assert isinstance(found, dict)
    return found


LOGIN = {"registry_username": "ci", "registry_password": "pw"}


def test_the_login_goes_to_the_registry_inputs_host_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s = settings(registry="oci://in.example.com/x", **LOGIN)
    env = docker_config(
        s,
        OUTSIDE,
        "oci://cfg.example.com/y",
        {"in.example.com", "other.io"},
        tmp_path,
        fork=False,
    )
    assert list(auths(env)) == ["in.example.com"]
    assert capsys.readouterr().err == (
        "warning: no registry credentials for other.io: they are for in.example.com only\n"
    )


def test_else_to_the_configurations_registry(tmp_path: Path) -> None:
    env = docker_config(
        settings(**LOGIN), OUTSIDE, "oci://cfg.example.com/y", {"cfg.example.com"}, tmp_path,
        fork=False,
    )  # fmt: skip
    assert list(auths(env)) == ["cfg.example.com"]


def test_no_login_for_a_fork_or_without_a_registry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s = settings(**LOGIN)
    env = docker_config(s, OUTSIDE, "oci://cfg.io/y", {"cfg.io"}, tmp_path, fork=True)
    assert auths(env) == {}
    env = docker_config(s, OUTSIDE, "", {"r.io"}, tmp_path, fork=False)
    assert auths(env) == {}
    assert (
        "registry-username is set but no `registry` names its host"
        in capsys.readouterr().err
    )


def test_login_registry_on_a_pull_request_is_the_bases(
    capsys: pytest.CaptureFixture[str],
) -> None:
    s = settings(**LOGIN)
    head, base = "oci://attacker.example/x", "oci://r.example.com/gitops"
    assert login_registry(s, OUTSIDE, head, base, pull_request=False) == head
    assert login_registry(s, OUTSIDE, head, base, pull_request=True) == base
    assert "names registry host attacker.example" in capsys.readouterr().err
    # no base registry known: no login at all
    assert login_registry(s, OUTSIDE, head, None, pull_request=True) == ""
    # the `registry` input decides, whatever the pull request says
    pinned = settings(registry="oci://r.example.com/gitops", **LOGIN)
    assert login_registry(pinned, OUTSIDE, head, None, pull_request=True) == head


def test_registry_clients_share_the_timeout(tmp_path: Path) -> None:
    flux, reader = registry_clients(
        settings(timeout="2m"), {"DOCKER_CONFIG": str(tmp_path)}
    )
    assert flux.timeout == "2m" and flux.process_timeout == 150
    assert reader.flux is flux and reader.timeout == 120


def test_registry_at_a_commit(tmp_path: Path) -> None:
    git = GitRepo.init(tmp_path / "repo")
    git.write(
        ".timoni-flux.yaml", "version: 1\nregistry: oci://base.example.com/gitops/\n"
    )
    first = git.commit_all("config")
    git.write(".timoni-flux.yaml", "version: [broken\n")
    broken = git.commit_all("broken")
    repo, s = Repo(git.path), settings()
    assert registry_at(s, repo, first) == "oci://base.example.com/gitops"
    assert registry_at(s, repo, broken) is None
    assert registry_at(s, repo, "HEAD") is None  # only a full SHA
    assert registry_at(s, repo, "f" * 40) is None
