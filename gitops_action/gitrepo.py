"""Git, read-only except for fetching a missing commit. Every path is NUL-separated (`-z`), so
file names with spaces, newlines or non-UTF-8 bytes survive."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from . import runner

ZERO_SHA = "0" * 40
# No prompts; no optional locks, so `git status` never rewrites the index in the workspace.
GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0"}


@dataclass(frozen=True)
class Change:
    status: Literal["A", "M", "D", "T"]
    path: str


class GitError(RuntimeError):
    pass


def _decode(raw: bytes) -> str:
    # Non-UTF-8 names are kept distinct and printable (surrogateescape round-trips them).
    return raw.decode("utf-8", "surrogateescape")


@dataclass(frozen=True)
class Repo:
    root: Path
    # Answers asked for ahead of time (prefetch), each used once.
    _early: dict[str, Future[object]] = field(default_factory=dict, compare=False, repr=False)

    def prefetch(self) -> None:
        """Ask git now, in the background, what a run asks only after planning (is the work tree
        clean, the remote's URL, the branch): three git processes off the way to the first render."""
        asks: dict[str, Callable[[], object]] = {
            "is_clean": self._is_clean,
            "remote_url": self._remote_url,
            "current_branch": self._current_branch,
        }
        pool = ThreadPoolExecutor(max_workers=len(asks), thread_name_prefix="git-early")
        for name, ask in asks.items():
            self._early[name] = pool.submit(ask)
        pool.shutdown(wait=False)

    def _answer(self, name: str, ask: Callable[[], object]) -> object:
        early = self._early.pop(name, None)
        return early.result() if early is not None else ask()

    def _git(self, *args: str, timeout: float = 120) -> runner.Completed:
        return runner.run(["git", "-C", str(self.root), *args], timeout=timeout, env=GIT_ENV)

    def _git_bytes(self, *args: str, stdin: bytes | None = None) -> bytes:
        proc = subprocess.run(
            ["git", "-C", str(self.root), *args],
            input=stdin,
            capture_output=True,
            check=False,
            env={**os.environ, **GIT_ENV},
        )
        if proc.returncode != 0:
            raise GitError(f"git {' '.join(args)}: {_decode(proc.stderr).strip()}")
        return proc.stdout

    def resolve(self, ref: str) -> str | None:
        out = self._git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
        return out.stdout.strip() if out.ok else None

    def has_commit(self, sha: str) -> bool:
        return self._git("cat-file", "-e", f"{sha}^{{commit}}").ok

    def fetch(self, sha: str, *, depth: int | None = 1) -> runner.Completed:
        """Bring one missing commit from origin (two-dot diffs need only the two commits)."""
        args = ["fetch", "--no-tags", "--quiet"]
        if depth is not None and self.is_shallow():
            args.append(f"--depth={depth}")
        return self._git(*args, "origin", sha, timeout=300)

    def is_shallow(self) -> bool:
        out = self._git("rev-parse", "--is-shallow-repository")
        return out.stdout.strip() == "true"

    def diff(self, base: str, head: str) -> list[Change]:
        raw = self._git_bytes(
            "diff", "-z", "--name-status", "--no-renames", "--no-ext-diff", base, head, "--"
        )
        parts = raw.split(b"\0")
        changes: list[Change] = []
        for i in range(0, len(parts) - 1, 2):
            status = _decode(parts[i])[:1]
            if status in ("A", "M", "D", "T"):
                changes.append(Change(status, _decode(parts[i + 1])))  # type: ignore[arg-type]
        return changes

    def list_files(self, commit: str) -> list[str]:
        raw = self._git_bytes("ls-tree", "-r", "-z", "--name-only", "--full-tree", commit)
        return [_decode(p) for p in raw.split(b"\0") if p]

    def read_files(self, commit: str, paths: Iterable[str]) -> dict[str, bytes | None]:
        """Contents of several files at a commit in one `git cat-file --batch` call (None: absent)."""
        wanted = list(dict.fromkeys(paths))
        if not wanted:
            return {}
        requests = [f"{commit}:{p}".encode("utf-8", "surrogateescape") for p in wanted]
        # A path holding a newline needs NUL-terminated requests (`-z`, git >= 2.38; only then).
        nul = any(b"\n" in r for r in requests)
        term = b"\0" if nul else b"\n"
        flags = ["--batch", "-z"] if nul else ["--batch"]
        out = self._git_bytes("cat-file", *flags, stdin=b"".join(r + term for r in requests))
        result: dict[str, bytes | None] = {}
        pos = 0
        for path, req in zip(wanted, requests, strict=True):
            if out.startswith(req + b" ", pos):  # "<request> missing" (or "ambiguous"): echoed as given
                pos = out.index(b"\n", pos + len(req)) + 1
                result[path] = None
                continue
            end = out.index(b"\n", pos)
            header = out[pos:end].split(b" ")  # "<sha> <type> <size>", then the content
            pos = end + 1
            size = int(header[2])
            # A tree (a directory named as a file) is not a file, but its content must be skipped.
            result[path] = out[pos : pos + size] if header[1] == b"blob" else None
            pos += size + 1
        return result

    def read_file(self, commit: str, path: str) -> bytes | None:
        return self.read_files(commit, [path])[path]

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        return self._git("merge-base", "--is-ancestor", ancestor, descendant).returncode == 0

    def remote_url(self) -> str:
        return str(self._answer("remote_url", self._remote_url))

    def _remote_url(self) -> str:
        out = self._git("config", "--get", "remote.origin.url")
        return out.stdout.strip() if out.ok else ""

    def is_clean(self) -> bool:
        """No tracked change and no untracked file in the work tree (ignored files aside)."""
        return bool(self._answer("is_clean", self._is_clean))

    def _is_clean(self) -> bool:
        raw = self._git_bytes("status", "--porcelain=v1", "-z", "--untracked-files=normal")
        return raw == b""

    def export(self, commit: str, dest: Path) -> Path:
        """The files of `commit` in `dest`, written nowhere near the repository."""
        dest.mkdir(parents=True)
        archive = self._git_bytes("archive", "--format=tar", commit)
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True, capture_output=True)
        return dest

    def current_branch(self) -> str:
        return str(self._answer("current_branch", self._current_branch))

    def _current_branch(self) -> str:
        out = self._git("symbolic-ref", "--quiet", "--short", "HEAD")
        return out.stdout.strip() if out.ok else "HEAD"


def trust_directory(path: str | os.PathLike[str], scope: Sequence[str] = ("--system",)) -> None:
    """Let git work in a checkout owned by another uid (GitHub mounts the workspace that way)."""
    runner.run(["git", "config", *scope, "--add", "safe.directory", str(path)])
