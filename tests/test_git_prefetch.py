"""Repo.prefetch: git answers a run needs after planning, asked while it plans, are the answers git
gives (each used once: a later question asks git again)."""

from __future__ import annotations

from conftest import GitRepo

from gitops_action.changes.gitrepo import Repo


def test_prefetched_answers_are_gits_and_used_once(example_repo: GitRepo) -> None:
    example_repo.git("remote", "add", "origin", "https://example.com/org/gitops.git")
    example_repo.git("checkout", "-q", "-b", "release")
    repo = Repo(example_repo.path)
    repo.prefetch()
    assert repo.is_clean() is True
    assert repo.remote_url() == "https://example.com/org/gitops.git"
    assert repo.current_branch() == "release"
    (example_repo.path / "untracked.cue").write_text("x: 1\n")
    assert repo.is_clean() is False  # asked again, not the early answer
    repo.prefetch()
    assert repo.is_clean() is False


def test_a_prefetch_nobody_uses_is_harmless(example_repo: GitRepo) -> None:
    repo = Repo(example_repo.path)
    repo.prefetch()
    assert repo == Repo(example_repo.path)  # the cache is not part of the identity
    assert hash(repo) == hash(Repo(example_repo.path))
