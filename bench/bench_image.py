"""Start-up of the action inside its image, next to the same run on the host.

Start-up: from the start of the action's process to its first render (the first `timoni` it
starts, from the program trace $TIMONI_FLUX_PUSH_TRACE). Each repetition pushes the example
repository (examples/gitops, 5 targets, `all: true`) to a fresh prefix of a real registry on
127.0.0.1, once on the host (entrypoint.py with this checkout's venv) and once in the image `make
image` built, started as GitHub's runner starts a Docker action (tests/support/container.py: new
namespaces, the entrypoint as PID 1). In the image the clock starts before `unshare`: the mounts and
`chroot` (a few ms) count, Docker's own container start (not available here) does not.

    make image && .venv/bin/python bench/bench_image.py [--reps 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for entry in (ROOT, ROOT / "bench", ROOT / "tests"):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

from results import parse_trace, startup  # noqa: E402

from tests.support.container import (  # noqa: E402
    IMAGE,
    Runner,
    docker_run,
    github_env,
    image_exists,
    inputs_env,
)
from tests.support.registry import start_registry  # noqa: E402
from tests.support.repos import GitRepo  # noqa: E402

TOOLS = ROOT / ".tools" / "bin"
TRACE = "TIMONI_FLUX_PUSH_TRACE"


def host_run(repo: GitRepo, work: Path, registry: str) -> float:
    """Seconds from the host process's start to its first render."""
    work.mkdir(parents=True)
    trace = work / "trace.txt"
    # PYTHONDONTWRITEBYTECODE off: the warm-up run compiles the package once, as the image ships it.
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "INPUT_"))
    }
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env |= {
        "PATH": f"{TOOLS}{os.pathsep}{env.get('PATH', '')}",
        "GITHUB_ACTIONS": "true",
        "GITHUB_WORKSPACE": str(repo.path),
        "GITHUB_EVENT_NAME": "workflow_dispatch",
        "GITHUB_SHA": repo.head(),
        "GITHUB_REF_NAME": "main",
        "GITHUB_OUTPUT": str(work / "output.txt"),
        "GITHUB_STEP_SUMMARY": str(work / "summary.md"),
        "PYTHONPATH": str(ROOT),
        "PYTHONPYCACHEPREFIX": str(
            work.parent / "pycache"
        ),  # compiled once, by the warm-up run
        "TZ": "UTC",
        TRACE: str(trace),
        **inputs_env({"registry": registry, "all": "true"}),
    }
    started = time.time()
    done = subprocess.run(
        [sys.executable, str(ROOT / "entrypoint.py")],
        cwd=repo.path,
        env=env,
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"the host run failed:\n{done.stdout.decode()[-3000:]}")
    first = startup(parse_trace(trace.read_text()), started)
    assert first is not None
    return first


def image_run(repo: GitRepo, work: Path, registry: str) -> float:
    """Seconds from the container's start to its first render."""
    runner = Runner(work, repo.path)
    env = github_env(
        runner, event_name="workflow_dispatch", sha=repo.head(), ref_name="main"
    )
    env |= inputs_env({"registry": registry, "all": "true"}) | {
        TRACE: "/github/workflow/trace.txt"
    }
    run = docker_run(runner, env=env)
    if run.returncode != 0:
        raise SystemExit(f"the image run failed:\n{run.stdout[-3000:]}")
    first = startup(
        parse_trace((runner.workflow / "trace.txt").read_text()), run.started
    )
    assert first is not None
    return first


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--reps", type=int, default=5, help="timed repetitions on each side (default 5)"
    )
    args = p.parse_args()
    if os.geteuid() != 0 or not image_exists(IMAGE):
        print(f"error: needs root and {IMAGE} (make image)", file=sys.stderr)
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="bench-image-"))
    registry = start_registry(tmp / "registry")
    try:
        repo = GitRepo.init(tmp / "repo")
        shutil.copytree(ROOT / "examples" / "gitops", repo.path, dirs_exist_ok=True)
        repo.commit_all("initial")
        base = f"oci://{registry.host}"
        host_run(
            repo, tmp / "host-warm", f"{base}/warm-host"
        )  # untimed: compiles the package once
        image_run(repo, tmp / "image-warm", f"{base}/warm-image")
        times: dict[str, list[float]] = {"host": [], "image": []}
        for rep in range(args.reps):
            order = ("host", "image") if rep % 2 == 0 else ("image", "host")
            for side in order:
                run = host_run if side == "host" else image_run
                times[side].append(
                    run(repo, tmp / f"{side}-{rep}", f"{base}/{side}-{rep}")
                )
        print(f"start-up before the first render, median of {args.reps} (min-max):")
        for side, label in (
            ("host", "host (entrypoint.py, venv)"),
            ("image", f"image ({IMAGE})"),
        ):
            t = times[side]
            print(
                f"  {label:<44} {statistics.median(t):.3f}s ({min(t):.3f}-{max(t):.3f})"
            )
    finally:
        registry.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
