"""A render reads only the repository: every file timoni can reach for a target must resolve inside it.

What timoni reads for a target: its values or bundle files, every file under its local module (CUE
loads the module's packages, `cue.mod/` and anything `@embed` names), and for a bundle every module
its `file://` URLs name, plus any package of the repository its CUE imports. A symlink anywhere in
there may point at `/proc/self/environ`, `/proc/1/environ` (in the container the entrypoint is PID 1
and holds every input) or a file of the runner: such a target is refused before timoni starts, with
the offending path named.

A bundle's module URLs are what timoni evaluates (`timoni.evaluate_bundle`), not what a regular
expression finds in its text (`"file://\\(dir)"`, `"fi" + "le://..."` and multi-line strings are
all URLs). A bundle is also refused while any symlink of the repository leaves it: its imports can
reach every package of the repository, and that walk is made once per run.
"""

from __future__ import annotations

import functools
import json
import os
import posixpath
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from gitops_action.config.targets import Target

# a module is a few hundred files; a walk beyond this is refused, not finished
MAX_FILES = 100_000
MAX_REPOSITORY_FILES = 1_000_000  # the whole repository, for bundles
FILE = "file://"


def _inside(real_root: Path, path: Path) -> bool:
    # strings: pathlib's parents are slow for a walk of many files
    root, full = str(real_root), str(path)
    return full == root or full.startswith(root.rstrip(os.sep) + os.sep)


def _resolve(path: Path) -> Path:
    try:
        return path.resolve()
    # a symlink loop, a NUL in a computed URL
    except (OSError, RuntimeError, ValueError):
        return Path("/")  # never inside a repository


def _walk(real_root: Path, top: Path, shown: str) -> Iterator[tuple[str, Path]]:
    """(shown path, resolved path) of `top` and of everything under it, symlinked directories
    followed once (each is checked before its content is)."""
    seen: set[Path] = set()
    stack = [(top, shown)]
    count = 0
    while stack:
        current, name = stack.pop()
        real = _resolve(current)
        yield name, real
        if not _inside(real_root, real) or real in seen or not real.is_dir():
            continue
        seen.add(real)
        try:
            entries = sorted(os.scandir(current), key=lambda e: e.name)
        except OSError:
            continue  # unreadable: timoni cannot read it either
        for entry in entries:
            count += 1
            if count > MAX_FILES:
                yield f"{name}/ (more than {MAX_FILES} files)", Path("/")
                return
            stack.append((Path(entry.path), f"{name}/{entry.name}"))


def escape(root: Path, target: Target) -> str:
    """A message naming the first path of `target` that resolves outside `root`, or ""."""
    real_root = _resolve(root)
    for f in target.files:
        if "," in f:  # a matched file name: timoni would split it into two -f values
            return f"{f}: timoni splits -f on commas, so it cannot read this file ({target.key})"
    for f in target.files:
        real = _resolve(root / f)
        if not _inside(real_root, real):
            return _refused(f, real, target, root)
    if target.local_module:
        found = _module_escape(root, target.local_module)
        if found is not None:
            return _refused(found[0], found[1], target, root)
    if target.kind == "bundle" and os.path.lexists(root / "cue.mod"):
        # The bundle's evaluation (next) may import any package of the repository: walk it first.
        return _repository_refusal(root, target)
    return ""


def bundle_escape(
    root: Path, target: Target, modules: Sequence[tuple[str, str]], tmp: str = "/tmp"
) -> str:
    """A message naming the first module URL of an evaluated bundle (instance, url) that timoni
    could read outside `root`, or the first symlink of the repository that leaves it; or ""."""
    for instance, url in modules:
        if not url.startswith(FILE):
            continue  # oci://: pulled from a registry, nothing local
        found = _url_escape(root, target, url.removeprefix(FILE), tmp)
        if found is not None:
            said = f"{' + '.join(target.files)}: instance {instance}, module url {json.dumps(url)}"
            return f"{_refused(found[0], found[1], target, root)}; named by {said}"
    return _repository_refusal(root, target)


def _url_escape(
    root: Path, target: Target, path: str, tmp: str
) -> tuple[str, Path] | None:
    """(shown, resolved) of the first place outside `root` timoni could read for `file://<path>`."""
    real_root = _resolve(root)
    if posixpath.isabs(path):
        real = _resolve(Path(path))
        if not _inside(real_root, real):
            return path, real
        return _module_escape(root, posixpath.relpath(str(real), str(real_root)))
    # timoni resolves a relative URL against the directory of the file its value comes from: a
    # bundle file, as written. A value without a file (json.Unmarshal, yaml.Unmarshal) or from an
    # imported package gets another directory: there it must not reach an existing path outside.
    for base in dict.fromkeys(posixpath.dirname(f) for f in target.files):
        rel = posixpath.normpath(posixpath.join(base, path))
        if rel == ".." or rel.startswith("../"):
            return rel, _resolve(root / rel)
        real = _resolve(root / rel)
        if not _inside(real_root, real):
            return rel, real
        found = _module_escape(root, rel)
        if found is not None:
            return found
    for other in _other_bases(root, path, tmp):
        if os.path.lexists(other):
            return path, _resolve(Path(other))
    return None


def _other_bases(root: Path, path: str, tmp: str) -> list[str]:
    """Where `path` leads outside `root` from any directory of the repository, and from timoni's
    virtual workspace (`<tmp>/timoni-vfs-<random>/<workspace>`, for values of its own schema)."""
    parts = path.split("/")
    depth, lowest, cut = 0, 0, 0
    for i, part in enumerate(parts):
        depth += -1 if part == ".." else 0 if part in ("", ".") else 1
        if depth < lowest:
            lowest, cut = depth, i + 1
    tail = "/".join(parts[cut:])
    real = str(_resolve(root))  # timoni's working directory, as the kernel has it
    found = [
        posixpath.normpath(posixpath.join(real, "../" * up, tail))
        for up in range(1, -lowest + 1)
    ]
    virtual = posixpath.join(tmp, "timoni-vfs-?", "default")
    lands = posixpath.normpath(posixpath.join(virtual, path))
    if not lands.startswith(posixpath.dirname(virtual) + "/"):
        found.append(lands)
    return found


def _repository_refusal(root: Path, target: Target) -> str:
    found = _repository_escape(root)
    if found is None:
        return ""
    why = "a bundle is not rendered while a symlink of the repository leaves it"
    return f"{_refused(found[0], found[1], target, root)}; {why}"


@functools.lru_cache(maxsize=8)
def _repository_escape(root: Path) -> tuple[str, Path] | None:
    """The first symlink of the repository that resolves outside it, or None. Only symlinks need
    resolving: a file that is not one lies where the walk found it. `.git` is skipped: git never
    checks out a path through it. Walked once per run."""
    real_root = _resolve(root)
    stack: list[tuple[str, str]] = [(str(root), "")]
    count = 0
    while stack:
        current, name = stack.pop()
        try:
            entries = sorted(os.scandir(current), key=lambda e: e.name, reverse=True)
        except OSError:
            continue  # unreadable: timoni cannot read it either
        for entry in entries:
            count += 1
            shown = f"{name}/{entry.name}" if name else entry.name
            if count > MAX_REPOSITORY_FILES:
                return f"{name or '.'}/ (more than {MAX_REPOSITORY_FILES} files)", Path(
                    "/"
                )
            if entry.is_symlink():
                real = _resolve(Path(entry.path))
                if not _inside(real_root, real):
                    return shown, real
            elif entry.name != ".git" and entry.is_dir(follow_symlinks=False):
                stack.append((entry.path, shown))
    return None


_walking = threading.Lock()  # targets of one module starting together wait for one walk


def _module_escape(root: Path, module: str) -> tuple[str, Path] | None:
    """The first path under `module` that resolves outside `root`, or None. Walked once per module
    for a run (the checkout does not change while it runs): many targets share one module."""
    with _walking:
        return _module_walk(root, module)


@functools.lru_cache(maxsize=1024)
def _module_walk(root: Path, module: str) -> tuple[str, Path] | None:
    real_root = _resolve(root)
    for shown, real in _walk(real_root, root / module, module):
        if not _inside(real_root, real):
            return shown, real
    return None


def _refused(path: str, real: Path, target: Target, root: Path) -> str:
    linked = any(
        p.is_symlink()
        for p in [root / path, *(root / path).parents]
        if p != root and root in p.parents
    )
    how = "symlink" if linked else "path"
    return f"{path} resolves outside the repository ({how}): refusing to read it ({target.key}: {real})"


def forget() -> None:
    """A new run: the checkout may have changed since the last one in this process."""
    _module_walk.cache_clear()
    _repository_escape.cache_clear()
