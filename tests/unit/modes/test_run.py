"""modes.run (its helpers, on a real local git repository): the configuration at the head commit
and the targets asked for, the flux-config output directory kept inside the workspace, and
broken targets said where they are."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from support.repos import GitRepo

from gitops_action.config.model import Target
from gitops_action.errors import ConfigError, UsageError
from gitops_action.inputs.context import Context
from gitops_action.inputs.settings import Settings, from_inputs
from gitops_action.modes.run import _broken, _output_dir, load_config

CONFIG = """\
version: 1
registry: oci://r.example.com/gitops
instances:
  - name: web
    namespace: apps
    module: ./modules/app
  - name: api
    namespace: apps
    module: ./modules/app
  - match: "teams/{name}.cue"
    namespace: apps
    module: ./modules/app
"""


def settings(workspace: Path, **given: str) -> Settings:
    env = {f"INPUT_{k.replace('_', '-').upper()}": v for k, v in given.items()}
    return from_inputs({**env, "GITHUB_WORKSPACE": str(workspace)})


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    git = GitRepo.init(tmp_path / "repo")
    git.write(".timoni-flux.yaml", CONFIG)
    git.write("teams/zzz.cue", "values: {}\n")
    git.commit_all("config")
    return git


def test_every_target_by_default(
    repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    _, head, config, wanted = load_config(settings(repo.path), Context.from_env({}))
    assert head == repo.head()
    assert (
        [t.id for t in wanted]
        == ["web", "api", "zzz"]
        == [t.id for t in config.targets]
    )
    assert capsys.readouterr().err == ""


def test_the_targets_asked_for_in_their_order_once(repo: GitRepo) -> None:
    s = settings(repo.path, targets="api, web, api")
    _, _, _, wanted = load_config(s, Context.from_env({}))
    assert [t.id for t in wanted] == ["api", "web"]
    with pytest.raises(UsageError, match="unknown target\\(s\\): nope"):
        load_config(settings(repo.path, targets="web,nope"), Context.from_env({}))


def test_the_committed_configuration_is_read(repo: GitRepo) -> None:
    """An uncommitted edit of the file is not what the commit holds."""
    repo.write(".timoni-flux.yaml", "version: [broken\n")
    _, _, config, _ = load_config(settings(repo.path), Context.from_env({}))
    assert len(config.targets) == 3


def test_head_and_file_must_exist(repo: GitRepo) -> None:
    s = replace(settings(repo.path), head="f" * 40)
    with pytest.raises(UsageError, match="is not in the repository"):
        load_config(s, Context.from_env({}))
    with pytest.raises(ConfigError, match="configuration file not found at"):
        load_config(settings(repo.path, config="other.yaml"), Context.from_env({}))


def test_warnings_are_said(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    git = GitRepo.init(tmp_path / "r2")
    git.write(".timoni-flux.yaml", CONFIG)
    git.commit_all("no team files")
    load_config(settings(git.path), Context.from_env({}))
    assert "instances[2].match: pattern 'teams/{name}.cue' matches no file" in (
        capsys.readouterr().err
    )


def test_output_dir_stays_inside_the_workspace_in_actions(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    (workspace / "flux").mkdir(parents=True)
    (workspace / "planted").symlink_to(tmp_path)
    actions = Context.from_env({"GITHUB_ACTIONS": "true"})
    inside = _output_dir(settings(workspace, output_dir="flux/out"), actions)
    assert inside == (workspace / "flux/out").resolve()
    for bad in ("planted/x", "../elsewhere", "/etc"):
        with pytest.raises(UsageError, match="resolves outside the workspace"):
            _output_dir(settings(workspace, output_dir=bad), actions)
    # on the command line the user's own path is taken as given
    assert _output_dir(
        settings(workspace, output_dir="../x"), Context.from_env({})
    ) == Path("../x")


def test_broken_targets(capsys: pytest.CaptureFixture[str]) -> None:
    bad = Target(
        "teams/Bad_[x].cue", "instance", "Bad", "", (), ("teams/Bad_[x].cue",),
        problem="no valid <name>", line=10,
    )  # fmt: skip
    assert _broken(Context.from_env({}), [], "c.yaml") == []
    lines = _broken(Context.from_env({}), [bad], "c.yaml")
    assert capsys.readouterr().err == "error: teams/Bad_[x].cue: no valid <name>\n"
    assert lines == [
        "",
        "### Problems",
        "",
        "- **teams/Bad\\_\\[x\\].cue** (failed): no valid &lt;name&gt;",
    ]
    _broken(Context.from_env({"GITHUB_ACTIONS": "true"}), [bad], "c.yaml")
    assert capsys.readouterr().out == (
        "::error title=teams/Bad_[x].cue%3A flux-config,file=c.yaml,line=10::no valid <name>\n"
    )
