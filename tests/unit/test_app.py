"""app (its pure helpers, on a real local git repository): the revision a push records, the source
URL, and the warning for a work tree that differs from the commit being built."""

from __future__ import annotations

from pathlib import Path

from support.repos import GitRepo

from gitops_action.app import _revision, _source, _uncommitted
from gitops_action.changes.gitrepo import Repo
from gitops_action.inputs.context import Context

SHA = "0123456789abcdef0123456789abcdef01234567"


def repo_at(tmp_path: Path, branch: str = "main") -> tuple[GitRepo, Repo]:
    git = GitRepo.init(tmp_path / "repo", branch)
    git.write("a.txt", "a\n")
    git.commit_all("first")
    return git, Repo(git.path)


def test_revision_template(tmp_path: Path) -> None:
    _, repo = repo_at(tmp_path, "feature/x")
    in_actions = Context.from_env({"GITHUB_REF_NAME": "main"})
    assert (
        _revision("{ref_name}@sha1:{sha}", in_actions, repo, SHA) == f"main@sha1:{SHA}"
    )
    assert _revision("{short_sha}-{ref_name}", in_actions, repo, SHA) == "0123456-main"
    # outside Actions: the checked-out branch
    assert _revision("{ref_name}/{short_sha}", Context.from_env({}), repo, SHA) == (
        "feature/x/0123456"
    )


def test_revision_on_a_detached_head(tmp_path: Path) -> None:
    git, repo = repo_at(tmp_path)
    git.git("checkout", "-q", "--detach")
    assert _revision("{ref_name}", Context.from_env({}), repo, SHA) == "HEAD"


def test_source(tmp_path: Path) -> None:
    git, repo = repo_at(tmp_path)
    ctx = Context.from_env(
        {"GITHUB_REPOSITORY": "o/r", "GITHUB_SERVER_URL": "https://ghe.io"}
    )
    assert _source(ctx, repo) == "https://ghe.io/o/r"
    assert _source(Context.from_env({}), repo) == f"file://{git.path}"
    git.git("remote", "add", "origin", "https://example.com/o/r.git")
    assert (
        _source(Context.from_env({}), Repo(git.path)) == "https://example.com/o/r.git"
    )


def test_uncommitted(tmp_path: Path) -> None:
    git, _ = repo_at(tmp_path)
    assert _uncommitted(Repo(git.path), SHA) == ""
    git.write("a.txt", "changed\n")
    for name in ("b", "c", "d", "e"):
        git.write(f"{name}.txt", "new\n")
    warning = _uncommitted(Repo(git.path), SHA)
    assert warning.startswith(
        "the work tree differs from the commit being built (0123456789ab; uncommitted changes: "
        "a.txt, b.txt, c.txt and 2 more): "
    )
    assert warning.endswith("commit the changes to build them")
