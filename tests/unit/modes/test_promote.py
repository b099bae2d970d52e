"""modes.promote: whether `to` may move to what `from` holds (never back to an older commit unless
force, which is a rollback), decided on a real local git history; and one promotion per OCI
repository."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from support.repos import GitRepo

from gitops_action.changes.gitrepo import Repo
from gitops_action.config.model import Target
from gitops_action.modes.promote import Promotion, Request, _may_move, descends, known
from gitops_action.plan.history import COMMIT
from gitops_action.registry.credentials import Credentials
from gitops_action.registry.flux import Flux
from gitops_action.registry.oci import Call, Pulled
from gitops_action.registry.reader import Reader

URL = "oci://r.io/web:prod"
WEB = Target("web", "instance", "web", "oci://r.io/web", ("staging",), ())


@pytest.fixture
def history(tmp_path: Path) -> tuple[Repo, list[str], str]:
    """main: c0 - c1 - c2; a side branch from c0 with one commit."""
    git = GitRepo.init(tmp_path / "repo")
    shas = []
    for i in range(3):
        git.write("f.txt", f"{i}\n")
        shas.append(git.commit_all(f"c{i}"))
    git.git("checkout", "-q", "-b", "side", shas[0])
    git.write("g.txt", "side\n")
    side = git.commit_all("side")
    git.git("checkout", "-q", "main")
    return Repo(git.path), shas, side


def request(repo: Repo, tmp_path: Path, force: bool = False) -> Request:
    flux = Flux(Credentials("", "").docker_config(set(), tmp_path))
    return Request("staging", "prod", force, repo, "", flux, Reader(flux), tmp_path)


def pulled(sha: str, digest: str) -> Pulled:
    return Pulled(
        Call(True, "", "", 0.0),
        revision=f"main@sha1:{sha}",
        digest=digest,
        annotations={COMMIT: sha},
    )


def reading(answer: Pulled) -> Callable[[str, str], Pulled]:
    def read(url: str, name: str) -> Pulled:
        assert (url, name) == (URL, "to")
        return answer

    return read


def move(req: Request, src: Pulled, dst: Pulled) -> tuple[bool, Promotion]:
    result = Promotion(WEB, "failed", "staging", "prod")
    return _may_move(URL, src, reading(dst), req, result), result


def test_known_and_descends(history: tuple[Repo, list[str], str]) -> None:
    repo, (c0, c1, c2), side = history
    assert known(repo, c1) and not known(repo, "f" * 40)
    assert descends(repo, c0, c2) and descends(repo, c1, c1)
    assert not descends(repo, c2, c0) and not descends(repo, c1, side)


def test_forward_moves(history: tuple[Repo, list[str], str], tmp_path: Path) -> None:
    repo, (_, c1, c2), _ = history
    ok, result = move(
        request(repo, tmp_path), pulled(c2, "sha256:b"), pulled(c1, "sha256:a")
    )
    assert ok and not result.rollback
    assert (result.previous_digest, result.previous_revision) == (
        "sha256:a",
        f"main@sha1:{c1}",
    )


def test_an_empty_tag_moves(
    history: tuple[Repo, list[str], str], tmp_path: Path
) -> None:
    repo, (_, _, c2), _ = history
    missing = Pulled(Call(False, "missing", "MANIFEST_UNKNOWN", 0.0))
    ok, result = move(request(repo, tmp_path), pulled(c2, "sha256:b"), missing)
    assert ok and result.previous_digest is None and result.error is None


def test_a_failed_read_stops(
    history: tuple[Repo, list[str], str], tmp_path: Path
) -> None:
    repo, (_, _, c2), _ = history
    broken = Pulled(Call(False, "fatal", "500 Internal Server Error", 0.0))
    ok, result = move(request(repo, tmp_path), pulled(c2, "sha256:b"), broken)
    assert not ok
    assert result.error == f"reading {URL} failed: 500 Internal Server Error"


def test_the_same_digest_is_unchanged(
    history: tuple[Repo, list[str], str], tmp_path: Path
) -> None:
    repo, (_, _, c2), _ = history
    ok, result = move(
        request(repo, tmp_path), pulled(c2, "sha256:b"), pulled(c2, "sha256:b")
    )
    assert not ok and (result.status, result.digest) == ("unchanged", "sha256:b")


def test_never_backwards_without_force(
    history: tuple[Repo, list[str], str], tmp_path: Path
) -> None:
    repo, (c0, _, c2), _ = history
    ok, result = move(
        request(repo, tmp_path), pulled(c0, "sha256:a"), pulled(c2, "sha256:c")
    )
    assert not ok and result.status == "skipped"
    assert result.error == (
        f"{URL} holds main@sha1:{c2}, newer than main@sha1:{c0} at staging: "
        "not moving it back (force: true rolls back)"
    )


def test_force_is_a_rollback(
    history: tuple[Repo, list[str], str], tmp_path: Path
) -> None:
    repo, (c0, _, c2), _ = history
    req = request(repo, tmp_path, force=True)
    ok, result = move(req, pulled(c0, "sha256:a"), pulled(c2, "sha256:c"))
    assert ok and result.rollback
    assert result.log == [
        f"rollback (force): {URL} moves back from main@sha1:{c2} to main@sha1:{c0}"
    ]


def test_another_line_of_history_or_an_unknown_commit_moves(
    history: tuple[Repo, list[str], str], tmp_path: Path
) -> None:
    repo, (_, _, c2), side = history
    req = request(repo, tmp_path)
    ok, result = move(req, pulled(c2, "sha256:b"), pulled(side, "sha256:s"))
    assert ok and not result.rollback
    unknown = "e" * 40
    ok, result = move(req, pulled(c2, "sha256:b"), pulled(unknown, "sha256:u"))
    assert ok
    assert result.log == [
        f"{URL} holds main@sha1:{unknown}, a commit this repository does not know: moving it"
    ]
