"""timoni: render an instance or a bundle into a file. Never talks to a cluster."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from . import runner
from .config import Target
from .runner import go_gc

MANIFESTS = "manifests.yaml"  # fixed name: the pushed layer must not depend on a temp file name


@dataclass(frozen=True)
class Rendered:
    ok: bool
    path: Path
    stderr: str
    seconds: float
    error: str = ""  # one line


def build_args(target: Target, *, runtime_from_env: bool) -> list[str]:
    if target.kind == "bundle":
        args = ["timoni", "bundle", "build"]
        for f in target.files:
            args += ["-f", f]
        if runtime_from_env:
            args.append("--runtime-from-env")
        return args
    module = target.module if target.module.startswith("oci://") else f"./{target.module}"
    args = ["timoni", "build", target.name, module, "-n", target.namespace]
    for f in target.files:
        args += ["-f", f]
    if target.version:
        args += ["-v", target.version]
    return args


def identity() -> str:
    """Which timoni renders: the binary on PATH, by path, size and modification time. Another
    version is another binary; asking `timoni version` would cost a process, as much CPU as a
    render. "" when there is no timoni to identify."""
    found = shutil.which("timoni")
    if not found:
        return ""
    real = Path(found).resolve()
    stat = real.stat()
    return f"{real}:{stat.st_size}:{stat.st_mtime_ns}"


def environment(cache_dir: Path) -> dict[str, str]:
    # No kubeconfig: rendering must not depend on (or reach) any cluster on the machine.
    return {"TIMONI_CACHE_DIR": str(cache_dir), "KUBECONFIG": os.devnull, **go_gc()}


def render(
    target: Target, *, repo_root: Path, out_dir: Path, cache_dir: Path, timeout: float, runtime_from_env: bool
) -> Rendered:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / MANIFESTS
    done = runner.run(
        build_args(target, runtime_from_env=runtime_from_env),
        cwd=repo_root,
        env=environment(cache_dir),
        timeout=timeout,
        stdout_path=path,
    )
    if not done.ok:
        return Rendered(False, path, done.stderr, done.seconds, first_error(done.stderr))
    if not path.read_bytes().strip():
        return Rendered(False, path, done.stderr, done.seconds, "timoni rendered no manifests (empty output)")
    return Rendered(True, path, done.stderr, done.seconds)


def first_error(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for ln in lines:
        if "error" in ln.lower() or "✗" in ln:
            return ln.lstrip("✗ ").strip()
    return lines[0] if lines else "timoni failed without a message"
