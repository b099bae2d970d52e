"""gitrepo.unpack: `git archive` output is unpacked with tarfile; nothing lands or points outside."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
from support.repos import GitRepo

from gitops_action.changes.gitrepo import GitError, Repo, unpack


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
