"""history.py in shallow clones, with real git: never backwards on a guess, never shorten the
clone's history, a target whose files were deleted is removed once (not failed on every run)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import GitRepo

from gitops_action.changes.gitrepo import Repo
from gitops_action.plan import history


def commits(repo: GitRepo, n: int) -> list[str]:
    out = []
    for i in range(n):
        repo.write(f"f{i}.txt", f"{i}\n")
        out.append(repo.commit_all(f"c{i}"))
    return out


def clone(src: GitRepo, dest: Path, depth: int) -> GitRepo:
    subprocess.run(
        [
            "git",
            "clone",
            "-q",
            f"--depth={depth}",
            "--no-local",
            f"file://{src.path}",
            str(dest),
        ],
        check=True,
        capture_output=True,
    )
    return GitRepo(dest)


def test_a_newer_commit_fetched_at_depth_one_is_still_seen_as_newer(
    tmp_path: Path,
) -> None:
    origin = GitRepo.init(tmp_path / "origin")
    (old,) = commits(origin, 1)
    shallow = clone(origin, tmp_path / "clone", 1)
    (new,) = commits(origin, 1)
    # as planning fetches what a tag holds
    shallow.git("fetch", "-q", "--depth=1", "origin", new)
    assert history.newer_commit(Repo(shallow.path), new, old) == new


def test_relating_commits_never_shortens_a_shallow_clone(tmp_path: Path) -> None:
    origin = GitRepo.init(tmp_path / "origin")
    shas = commits(origin, 6)
    shallow = clone(origin, tmp_path / "clone", 3)
    before = shallow.git("rev-list", "--count", "HEAD")
    found = history.relate(
        Repo(shallow.path),
        shas[-1],
        [shas[-2]],
        config_path=".timoni-flux.yaml",
        load=lambda text: None,  # type: ignore[arg-type,return-value]
    )
    assert found[shas[-2]].relation == "behind"
    assert int(shallow.git("rev-list", "--count", "HEAD")) >= int(before)
