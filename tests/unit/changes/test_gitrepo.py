"""changes.gitrepo: `git archive` output is unpacked with tarfile (nothing lands or points outside);
reads of odd file names; Repo.prefetch, git answers a run needs after planning, asked while it
plans, are the answers git gives (each used once: a later question asks git again)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
from support.repos import GitRepo

from gitops_action.changes.gitrepo import Change, GitError, Repo, unpack


def archive(*members: tuple[str, str, str]) -> bytes:
    """(kind, name, content or link target) -> tar bytes; kind: file, dir, sym."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for kind, name, data in members:
            info = tarfile.TarInfo(name)
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, data
                tar.addfile(info)
            else:
                info.size = len(data.encode())
                tar.addfile(info, io.BytesIO(data.encode()))
    return buf.getvalue()


def tree(root: Path) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        out[rel] = (
            f"-> {p.readlink()}"
            if p.is_symlink()
            else ("dir" if p.is_dir() else p.read_text())
        )
    return out


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    d = tmp_path / "sandbox" / "dest"
    d.mkdir(parents=True)
    return d


def test_files_directories_and_inner_links_are_unpacked(dest: Path) -> None:
    unpack(
        archive(
            ("dir", "a", ""),
            ("file", "a/x.cue", "x"),
            ("sym", "a/y.cue", "x.cue"),
            ("sym", "b", "a"),
        ),
        dest,
    )
    assert tree(dest) == {
        "a": "dir",
        "a/x.cue": "x",
        "a/y.cue": "-> x.cue",
        "b": "-> a",
    }
    assert (dest / "b/y.cue").read_text() == "x"


@pytest.mark.parametrize(
    "name", ["../evil.cue", "a/../../evil.cue", "/tmp/evil.cue", ".."]
)
def test_a_member_that_leaves_the_destination_is_an_error(
    dest: Path, name: str
) -> None:
    with pytest.raises(GitError, match="leaves the destination"):
        unpack(archive(("file", "ok.cue", "ok"), ("file", name, "evil")), dest)
    assert (
        not (dest.parent / "evil.cue").exists()
        and not (dest.parent.parent / "evil.cue").exists()
    )


def test_links_out_of_the_destination_are_left_out(dest: Path) -> None:
    (dest.parent / "outside.yaml").write_text("secret")
    unpack(
        archive(
            ("file", "keep.cue", "k"),
            ("sym", "abs.yaml", "/etc/passwd"),
            ("sym", "up.yaml", "../outside.yaml"),
            ("sym", "dot", "."),  # inside
            # inside by its text, outside in fact
            ("sym", "via-dot.yaml", "dot/../outside.yaml"),
            ("sym", "out", ".."),
            # would be written through the link that points out
            ("sym", "out/planted", "x"),
        ),
        dest,
    )
    assert tree(dest) == {"dot": "-> .", "keep.cue": "k"}
    assert sorted(p.name for p in dest.parent.iterdir()) == ["dest", "outside.yaml"]


def test_a_link_is_never_written_through_a_directory_of_the_archive(dest: Path) -> None:
    unpack(archive(("dir", "d", ""), ("file", "d/f", "f"), ("sym", "d", "..")), dest)
    assert tree(dest) == {"d": "dir", "d/f": "f"}


def test_export_of_a_commit_with_a_link_out(tmp_path: Path) -> None:
    repo = GitRepo.init(tmp_path / "repo")
    repo.write("apps/values.cue", "values: {}\n")
    repo.write("run.sh", "#!/bin/sh\n")
    (repo.path / "run.sh").chmod(0o755)
    (repo.path / "apps/out.yaml").symlink_to(tmp_path / "outside.yaml")
    (repo.path / "apps/in.cue").symlink_to("values.cue")
    sha = repo.commit_all("links")
    out = Repo(repo.path).export(sha, tmp_path / "export")
    assert tree(out) == {
        "apps": "dir",
        "apps/in.cue": "-> values.cue",
        "apps/values.cue": "values: {}\n",
        "run.sh": "#!/bin/sh\n",
    }
    assert (out / "run.sh").stat().st_mode & 0o100


def test_git_reads_odd_names_directories_and_missing_files(tmp_path: Path) -> None:
    repo = GitRepo.init(tmp_path / "odd")
    names = [
        "a b/ü.cue",
        "line\nbreak.cue",
        "tab\there.yaml",
        'quote"d.cue',
        "dir/inner.cue",
    ]
    for i, name in enumerate(names):
        repo.write(name, f"content {i}\n")
    first = repo.commit_all("odd")
    git = Repo(repo.path)
    assert sorted(git.list_files(first)) == sorted(names)
    wanted = [
        "dir",
        "line\nbreak.cue",
        "absent\nfile.cue",
        "a b/ü.cue",
        "absent.cue",
        'quote"d.cue',
    ]
    assert git.read_files(first, wanted) == {
        # a tree, not a file: its content is skipped, not taken for the next answer
        "dir": None,
        "line\nbreak.cue": b"content 1\n",
        "absent\nfile.cue": None,
        "a b/ü.cue": b"content 0\n",
        "absent.cue": None,
        'quote"d.cue': b"content 3\n",
    }
    assert git.read_files(first, ["dir", "tab\there.yaml", "absent.cue"]) == {
        "dir": None,
        "tab\there.yaml": b"content 2\n",
        "absent.cue": None,
    }
    repo.git("mv", "line\nbreak.cue", "line\nbroken.cue")
    (repo.path / "a b/ü.cue").write_text("changed\n")
    repo.git("rm", "-q", "tab\there.yaml")
    second = repo.commit_all("rename, modify, delete")
    assert sorted(git.diff(first, second), key=lambda c: c.path) == [
        Change("M", "a b/ü.cue"),
        Change("D", "line\nbreak.cue"),
        Change("A", "line\nbroken.cue"),
        Change("D", "tab\there.yaml"),
    ]


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
