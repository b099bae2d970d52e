"""timoni: render an instance or a bundle into a file. Never talks to a cluster."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from gitops_action import runner
from gitops_action.config.targets import Target
from gitops_action.render import cue_value
from gitops_action.runner import go_gc

# fixed name: the pushed layer must not depend on a temp file name
MANIFESTS = "manifests.yaml"
# A bundle's runtime value from the environment: `@timoni(runtime:TYPE:NAME)` (timoni v0.31.0
# api/v1alpha1/runtime.go: the body split on ":" must be exactly "runtime", TYPE, NAME).
RUNTIME_ATTRIBUTE = re.compile(r"@timoni\(runtime:[^:()]*:([^:()]*)\)")
# Never handed to a bundle, whatever it names: the action's inputs and the runner's tokens.
NEVER_RUNTIME = ("INPUT_", "ACTIONS_", "GITHUB_TOKEN", "REGISTRY_PASSWORD")


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
    module = (
        target.module if target.module.startswith("oci://") else f"./{target.module}"
    )
    args = ["timoni", "build", target.name, module, "-n", target.namespace]
    for f in target.files:
        args += ["-f", f]
    if target.version:
        args += ["-v", target.version]
    if target.digest:  # timoni refuses the module when the pulled digest differs
        args += ["--digest", target.digest]
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


def runtime_names(texts: Iterable[str]) -> list[str]:
    """The environment variables bundle files name as runtime values, secrets of the run excluded."""
    names = {n for text in texts for n in RUNTIME_ATTRIBUTE.findall(text)}
    return sorted(n for n in names if n and not n.startswith(NEVER_RUNTIME))


def environment(
    cache_dir: Path,
    private: Mapping[str, str] | None = None,
    runtime: Iterable[str] = (),
) -> dict[str, str]:
    """Everything a timoni process sees: PATH, TIMONI_* settings, TLS and proxy settings, its cache,
    `private` (the run's own DOCKER_CONFIG and HOME, for module pulls) and the runtime variables a
    bundle names. No kubeconfig: rendering must not depend on (or reach) any cluster on the machine."""
    base = runner.allowed((*runner.TLS, *runner.PROXY, *runtime), prefixes=("TIMONI_",))
    return {
        **base,
        "TIMONI_CACHE_DIR": str(cache_dir),
        "KUBECONFIG": os.devnull,
        **go_gc(),
        **(private or {}),
    }


def _runtime(target: Target, repo_root: Path) -> list[str]:
    texts = []
    for f in target.files:
        try:
            texts.append((repo_root / f).read_text("utf-8", "replace"))
        except OSError:
            continue  # timoni says what is wrong with the file
    return runtime_names(texts)


def render(
    target: Target,
    *,
    repo_root: Path,
    out_dir: Path,
    cache_dir: Path,
    timeout: float,
    runtime_from_env: bool,
    private: Mapping[str, str] | None = None,
) -> Rendered:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / MANIFESTS
    runtime = (
        _runtime(target, repo_root)
        if runtime_from_env and target.kind == "bundle"
        else []
    )
    done = runner.run(
        build_args(target, runtime_from_env=runtime_from_env),
        cwd=repo_root,
        env=environment(cache_dir, private, runtime),
        timeout=timeout,
        stdout_path=path,
    )
    if not done.ok:
        return Rendered(
            False, path, done.stderr, done.seconds, _error(target, done.stderr)
        )
    if not path.read_bytes().strip():
        return Rendered(
            False,
            path,
            done.stderr,
            done.seconds,
            "timoni rendered no manifests (empty output)",
        )
    return Rendered(True, path, done.stderr, done.seconds)


@dataclass(frozen=True)
class Evaluated:
    """A bundle as timoni evaluates it: (instance, module url) of each instance, or the failure."""

    modules: tuple[tuple[str, str], ...]
    stderr: str = ""  # timoni failed (the build would fail the same way)
    error: str = ""  # one line: timoni's error, or why its value cannot be read


def evaluate_bundle(
    target: Target,
    *,
    repo_root: Path,
    cache_dir: Path,
    timeout: float,
    runtime_from_env: bool,
) -> Evaluated:
    """The module URLs of a bundle as timoni computes them (`bundle vet --print-value`): the same
    evaluation `bundle build` starts with, without fetching or reading any module. It runs with the
    build's own environment and runtime values (allow-listed, never an input), so the URLs are the
    ones the build would use; its output is only parsed, never shown."""
    args = ["timoni", "bundle", "vet", "--print-value"]
    for f in target.files:
        args += ["-f", f]
    if runtime_from_env:
        args.append("--runtime-from-env")
    runtime = _runtime(target, repo_root) if runtime_from_env else []
    done = runner.run(
        args, cwd=repo_root, env=environment(cache_dir, None, runtime), timeout=timeout
    )
    if not done.ok:
        return Evaluated(
            (),
            done.stderr or "timoni failed without a message",
            first_error(done.stderr),
        )
    try:
        return Evaluated(tuple(cue_value.bundle_module_urls(done.stdout)))
    except cue_value.CueValueError as exc:
        said = f"cannot tell which module each instance reads ({exc}): refusing it"
        return Evaluated((), error=f"{' + '.join(target.files)}: {said}")


_NOT_AT_DIGEST = re.compile(r"digest mismatch|MANIFEST_UNKNOWN|manifest unknown", re.I)


def _error(target: Target, stderr: str) -> str:
    said = first_error(stderr)
    if target.digest and _NOT_AT_DIGEST.search(stderr):
        # timoni says "digest mismatch, expected X got Y" or a bare 404: name the pin that failed.
        return f"module {target.module} is not at digest {target.digest} ({said})"
    return said


_LOGGED_ERROR = re.compile(r"\bERR\b")


def first_error(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for i, ln in enumerate(lines):
        # timoni's own log level (`12:04AM ERR build failed:`), a message naming an error, a ✗
        if _LOGGED_ERROR.search(ln) or "error" in ln.lower() or "✗" in ln:
            # `ERR build failed:`: the cause is next
            if ln.endswith(":") and i + 1 < len(lines):
                ln = f"{ln} {lines[i + 1]}"
            return ln.lstrip("✗ ").strip()
    return lines[0] if lines else "timoni failed without a message"
