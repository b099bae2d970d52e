"""Git, read-only except for fetching a missing commit. Every path is NUL-separated (`-z`), so
file names with spaces, newlines or non-UTF-8 bytes survive."""

from __future__ import annotations

import io
import os
import posixpath
import re
import tarfile
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from gitops_action import runner
from gitops_action.errors import GitError, UsageError

ZERO_SHA = "0" * 40
# No prompts; no optional locks, so `git status` never rewrites the index in the workspace.
GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0"}
SHA = re.compile(r"[0-9a-f]{7,64}")
_ANCESTRY = re.compile(r"(?:[~^][0-9]*)+$")
# What `git check-ref-format` refuses in a ref name (git-check-ref-format(1), rules 1-10).
_BAD_REF = re.compile(
    r"(^|/)\.|\.\.|[\x00-\x20\x7f~^:?*\[\\]|@\{|//|\.lock(/|$)|^/|/$|\.$|^@$"
)


class BadRevision(UsageError, ValueError):
    """A base, head or ref that is neither a commit SHA nor a ref name: a usage error."""


def check_revision(value: str, what: str) -> str:
    """`value` if it is a commit SHA or a ref name `git check-ref-format` accepts (one level allowed),
    optionally followed by ancestry steps (`~2`, `^`), never anything git could read as an option
    (`--upload-pack=...`)."""
    name = _ANCESTRY.sub("", value)
    if SHA.fullmatch(name):
        return value
    if not name or name.startswith("-") or _BAD_REF.search(name):
        raise BadRevision(
            f"{what}: {value!r} is neither a commit SHA nor a valid ref name"
        )
    return value


def git_env() -> dict[str, str]:
    """git sees PATH, the GIT_CONFIG_* variables that trust the workspace, the network settings a
    fetch needs, and nothing else: no HOME (no user config), none of the action's inputs."""
    # SSH_AUTH_SOCK: a CLI user's fetch over ssh (a socket path, not a secret; ssh finds ~/.ssh itself).
    names = (
        "GIT_CONFIG_COUNT",
        "GIT_CONFIG_SYSTEM",
        "GIT_CONFIG_NOSYSTEM",
        "SSH_AUTH_SOCK",
    )
    env = runner.allowed(
        (*names, *runner.PROXY, *runner.TLS),
        prefixes=("GIT_CONFIG_KEY_", "GIT_CONFIG_VALUE_"),
    )
    return {**env, **GIT_ENV, "LC_ALL": "C", "GIT_CONFIG_GLOBAL": os.devnull}


@dataclass(frozen=True)
class Change:
    status: Literal["A", "M", "D", "T"]
    path: str


def _decode(raw: bytes) -> str:
    # Non-UTF-8 names are kept distinct and printable (surrogateescape round-trips them).
    return raw.decode("utf-8", "surrogateescape")


@dataclass(frozen=True)
class Repo:
    root: Path
    # Answers asked for ahead of time (prefetch), each used once.
    _early: dict[str, Future[object]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def prefetch(self) -> None:
        """Ask git now, in the background, what a run asks only after planning (is the work tree
        clean, the remote's URL, the branch): three git processes off the way to the first render."""
        asks: dict[str, Callable[[], object]] = {
            "uncommitted": self._uncommitted,
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
        return runner.run(
            ["git", "-C", str(self.root), *args], timeout=timeout, env=git_env()
        )

    def _git_bytes(
        self, *args: str, stdin: bytes | None = None, timeout: float = 120
    ) -> bytes:
        done = runner.run(
            ["git", "-C", str(self.root), *args],
            stdin=stdin,
            env=git_env(),
            timeout=timeout,
            binary=True,
        )
        if not done.ok:
            raise GitError(f"git {' '.join(args)}: {done.stderr.strip()}")
        return done.output

    def resolve(self, ref: str) -> str | None:
        check_revision(ref, "revision")
        out = self._git(
            "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"
        )
        return out.stdout.strip() if out.ok else None

    def has_commit(self, sha: str) -> bool:
        check_revision(sha, "commit")
        return self._git("cat-file", "-e", "--end-of-options", f"{sha}^{{commit}}").ok

    def fetch(self, sha: str, *, depth: int | None = 1) -> runner.Completed:
        """Bring one missing commit from origin (two-dot diffs need only the two commits)."""
        check_revision(sha, "commit")
        args = ["fetch", "--no-tags", "--quiet"]
        if depth is not None and self.is_shallow():
            args.append(f"--depth={depth}")
        return self._git(*args, "--end-of-options", "origin", sha, timeout=300)

    def unshallow(self) -> runner.Completed:
        """The whole history of a shallow clone: an ancestry check walks back from head, which a
        shallow clone cuts off."""
        return self._git(
            "fetch", "--unshallow", "--no-tags", "--quiet", "origin", timeout=600
        )

    def is_shallow(self) -> bool:
        out = self._git("rev-parse", "--is-shallow-repository")
        return out.stdout.strip() == "true"

    def diff(self, base: str, head: str) -> list[Change]:
        raw = self._git_bytes(
            "diff",
            "-z",
            "--name-status",
            "--no-renames",
            "--no-ext-diff",
            "--end-of-options",
            base,
            head,
            "--",
        )
        parts = raw.split(b"\0")
        changes: list[Change] = []
        for i in range(0, len(parts) - 1, 2):
            status = _decode(parts[i])[:1]
            if status in ("A", "M", "D", "T"):
                changes.append(Change(status, _decode(parts[i + 1])))  # type: ignore[arg-type]
        return changes

    def list_files(self, commit: str) -> list[str]:
        raw = self._git_bytes(
            "ls-tree",
            "-r",
            "-z",
            "--name-only",
            "--full-tree",
            "--end-of-options",
            commit,
        )
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
        out = self._git_bytes(
            "cat-file", *flags, stdin=b"".join(r + term for r in requests)
        )
        result: dict[str, bytes | None] = {}
        pos = 0
        for path, req in zip(wanted, requests, strict=True):
            # "<request> missing" (or "ambiguous"): echoed as given
            if out.startswith(req + b" ", pos):
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
        args = ("merge-base", "--is-ancestor", "--end-of-options", ancestor, descendant)
        return self._git(*args).returncode == 0

    def remote_url(self) -> str:
        return str(self._answer("remote_url", self._remote_url))

    def _remote_url(self) -> str:
        out = self._git("config", "--get", "remote.origin.url")
        return out.stdout.strip() if out.ok else ""

    def is_clean(self) -> bool:
        """No tracked change and no untracked file in the work tree (ignored files aside)."""
        return not self.uncommitted()

    def uncommitted(self) -> list[str]:
        """The paths where the work tree differs from HEAD: changed, staged, deleted or untracked
        (ignored files aside), as `git status` names them."""
        answer = self._answer("uncommitted", self._uncommitted)
        return list(answer) if isinstance(answer, list) else []

    def _uncommitted(self) -> list[str]:
        raw = self._git_bytes(
            "status", "--porcelain=v1", "-z", "--untracked-files=normal"
        )
        out: list[str] = []
        entries = iter(raw.split(b"\0"))
        for entry in entries:
            if len(entry) > 3:
                out.append(os.fsdecode(entry[3:]))
                # a rename or copy: the original path follows
                if entry[:1] in (b"R", b"C"):
                    next(entries, None)
        return out

    def export(self, commit: str, dest: Path) -> Path:
        """The files of `commit` in `dest`, written nowhere near the repository."""
        dest.mkdir(parents=True)
        unpack(
            self._git_bytes(
                "archive", "--format=tar", "--end-of-options", commit, timeout=300
            ),
            dest,
        )
        return dest

    def current_branch(self) -> str:
        return str(self._answer("current_branch", self._current_branch))

    def _current_branch(self) -> str:
        out = self._git("symbolic-ref", "--quiet", "--short", "HEAD")
        return out.stdout.strip() if out.ok else "HEAD"

    # --- several commits at once (planning from what each tag holds) -----------------------------
    def present(self, shas: Sequence[str]) -> set[str]:
        """Which of these commits the repository has, in one `git cat-file --batch-check`."""
        if not shas:
            return set()
        query = "".join(f"{s}^{{commit}}\n" for s in shas).encode()
        out = (
            self._git_bytes("cat-file", "--batch-check=%(objecttype)", stdin=query)
            .decode()
            .split("\n")
        )
        return {s for s, kind in zip(shas, out, strict=False) if kind == "commit"}

    def fetch_commits(
        self, shas: Sequence[str], *, since: int | None = None
    ) -> runner.Completed:
        """One fetch for several commits: only them in a shallow clone (`--depth=1`), or, with
        `since` (a Unix time), their history back to then, enough to tell how they are related."""
        args = ["fetch", "--no-tags", "--quiet"]
        if since is not None:
            args.append(f"--shallow-since={since}")
        elif self.is_shallow():
            args.append("--depth=1")
        # The SHAs come from the registry (checked to be 40 hex digits): still data, not options.
        return self._git(*args, "--end-of-options", "origin", *shas, timeout=300)

    def commit_times(self, shas: Sequence[str]) -> dict[str, int]:
        """Committer time of each commit (all present), in one `git show`."""
        if not shas:
            return {}
        raw = self._git_bytes(
            "show", "-s", "--format=%H %ct", "--end-of-options", *shas, "--"
        )
        times = dict(
            line.split(" ", 1) for line in raw.decode().splitlines() if " " in line
        )
        return {s: int(times[s]) for s in shas if s in times}

    def shallow_boundary(self) -> list[str]:
        """The commits where a shallow clone's history is cut off (none in a full clone)."""
        out = self._git("rev-parse", "--git-path", "shallow")
        path = Path(out.stdout.strip()) if out.ok else None
        if path is not None and not path.is_absolute():
            path = self.root / path
        if path is None or not path.is_file():
            return []
        return [
            line
            for line in path.read_text().split()
            if re.fullmatch(r"[0-9a-f]{40}", line)
        ]

    def count_between(self, ancestor: str, descendant: str) -> int | None:
        """Commits in descendant's history that are not in ancestor's (None: git could not say)."""
        out = self._git(
            "rev-list", "--count", "--end-of-options", f"{ancestor}..{descendant}", "--"
        )
        return (
            int(out.stdout.strip()) if out.ok and out.stdout.strip().isdigit() else None
        )


def unpack(archive: bytes, dest: Path) -> None:
    """Extract a tar archive (`git archive`) into `dest`; nothing is written or points outside it.

    The archive is hostile input: a member that leaves `dest` is an error; a link whose target is
    outside `dest` is left out (the files that name it are then missing, never read from outside).
    Files and directories are written first and links last, so that no file is written through a
    link, and every link is checked where it really points once all of them exist.
    """
    root = dest.resolve()
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:") as tar:
        members = tar.getmembers()
        for m in members:
            name = posixpath.normpath(m.name)
            if name.startswith(("/", "../")) or name == "..":
                raise GitError(f"archive member {m.name!r} leaves the destination")
            if m.isfile() or m.isdir():
                tar.extract(m, root, filter="data")
        # git archive writes no hard links or devices
        links = [m for m in members if m.issym()]
    made: list[Path] = []
    for m in links:
        path = root / posixpath.normpath(m.name)
        if m.linkname.startswith("/") or path.exists() or path.is_symlink():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        # under another link that points out: not through it
        if not _inside(path.parent, root):
            continue
        path.symlink_to(m.linkname)
        made.append(path)
    while bad := [p for p in made if not _inside(p, root)]:
        # removing one link can change where another one points: check again
        for p in bad:
            p.unlink()
            made.remove(p)


def _inside(path: Path, root: Path) -> bool:
    return Path(os.path.realpath(path)).is_relative_to(root)
