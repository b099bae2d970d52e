"""A render reads only the repository: every file timoni can reach for a target must resolve inside it.

What timoni reads for a target: its values or bundle files, every file under its local module (CUE
loads the module's packages, `cue.mod/` and anything `@embed` names), and for a bundle every module
its `file://` URLs name. A symlink anywhere in there may point at `/proc/self/environ`,
`/proc/1/environ` (in the container the entrypoint is PID 1 and holds every input) or a file of the
runner: such a target is refused before timoni starts, with the offending path named.
"""

from __future__ import annotations

import functools
import os
import posixpath
import re
from collections.abc import Iterator
from pathlib import Path

from .config import Target

# `url: "file://..."` in a bundle (timoni resolves it against the bundle file's directory).
FILE_URL = re.compile(r"""["']file://([^"'\s]*)["']""")
MAX_FILES = 100_000  # a module is a few hundred files; a walk beyond this is refused, not finished


def _inside(real_root: Path, path: Path) -> bool:
    root, full = str(real_root), str(path)  # strings: pathlib's parents are slow for a walk of many files
    return full == root or full.startswith(root.rstrip(os.sep) + os.sep)


def _resolve(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        return Path("/")  # never inside a repository


def bundle_module_dirs(bundle_file: str, text: str) -> list[str]:
    """Every `file://` module of a bundle, relative to the repository root, outside ones included
    (normalised: `../..` stays visible as such)."""
    base = posixpath.dirname(bundle_file)
    return [posixpath.normpath(posixpath.join(base, rel)) for rel in FILE_URL.findall(text)]


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
    modules: list[str] = [target.local_module] if target.local_module else []
    for f in target.files:
        real = _resolve(root / f)
        if not _inside(real_root, real):
            return _refused(f, real, target, root)
        if target.kind == "bundle" and real.is_file():
            text = real.read_text("utf-8", "replace")
            modules += bundle_module_dirs(f, text)
    for module in dict.fromkeys(modules):
        found = _module_escape(root, module)
        if found is not None:
            return _refused(found[0], found[1], target, root)
    return ""


@functools.lru_cache(maxsize=1024)
def _module_escape(root: Path, module: str) -> tuple[str, Path] | None:
    """The first path under `module` that resolves outside `root`, or None. Walked once per module
    for a run (the checkout does not change while it runs): many targets share one module."""
    real_root = _resolve(root)
    for shown, real in _walk(real_root, root / module, module):
        if not _inside(real_root, real):
            return shown, real
    return None


def _refused(path: str, real: Path, target: Target, root: Path) -> str:
    linked = any(
        p.is_symlink() for p in [root / path, *(root / path).parents] if p != root and root in p.parents
    )
    how = "symlink" if linked else "path"
    return f"{path} resolves outside the repository ({how}): refusing to read it ({target.key}: {real})"


def forget() -> None:
    """A new run: the checkout may have changed since the last one in this process."""
    _module_escape.cache_clear()
