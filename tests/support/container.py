"""Run the action's image the way GitHub's runner starts a Docker action, without Docker.

The runner does, roughly (REFERENCE.md):

    docker run --workdir /github/workspace --rm -e INPUT_... -e GITHUB_... -e HOME=/github/home
      -v <temp>/_github_home:/github/home -v <temp>/_github_workflow:/github/workflow
      -v <temp>/_runner_file_commands:/github/file_commands -v <workspace>:/github/workspace IMAGE

Here: a fresh container of the image built by `make image` (`buildah from`, its root mounted),
new mount and PID namespaces (`unshare`), /proc, a minimal /dev, the four volumes bind-mounted
(the workspace and the runner's directories owned by uid 1001, the runner's user), then `chroot`
and the image's ENTRYPOINT and Env from its configuration: the entrypoint is PID 1, as in Docker.
The network is the host's, so the test registry on 127.0.0.1 is reachable.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support.action import parse_output_file

ROOT = Path(__file__).resolve().parents[2]
IMAGE_SH = ROOT / "tools" / "image.sh"
IMAGE = os.environ.get("IMAGE", "localhost/timoni-flux-push:dev")
RUNNER_UID = 1001  # the uid of GitHub's hosted runner user
WORKSPACE = "/github/workspace"
# The devices Docker gives a container (besides pts and shm).
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
UNSHARE = ("unshare", "--mount", "--pid", "--fork", "--propagation", "private")


def buildah(*args: str) -> str:
    done = subprocess.run(
        [str(IMAGE_SH), "buildah", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"buildah {' '.join(args)}: {done.stderr.strip()[-2000:]}")
    return done.stdout


@dataclass(frozen=True)
class ImageConfig:
    entrypoint: list[str]
    cmd: list[str]
    env: dict[str, str]
    labels: dict[str, str]


def image_config(image: str = IMAGE) -> ImageConfig:
    """The image's OCI configuration, as Docker reads it to start a container."""
    config = json.loads(buildah("inspect", "--type", "image", image))["OCIv1"]["config"]
    env = dict(e.split("=", 1) for e in config.get("Env") or [])
    return ImageConfig(
        list(config.get("Entrypoint") or []),
        list(config.get("Cmd") or []),
        env,
        config.get("Labels") or {},
    )


def image_exists(image: str = IMAGE) -> bool:
    try:
        buildah("inspect", "--type", "image", image)
    except RuntimeError:
        return False
    return True


@dataclass
class Runner:
    """The runner's side of one job: its temp directories, as the runner lays them out."""

    temp: Path
    workspace: Path
    outputs_file: str = field(default_factory=lambda: f"set_output_{uuid.uuid4()}")
    summary_file: str = field(default_factory=lambda: f"step_summary_{uuid.uuid4()}")

    @property
    def home(self) -> Path:
        return self.temp / "_github_home"

    @property
    def workflow(self) -> Path:
        return self.temp / "_github_workflow"

    @property
    def file_commands(self) -> Path:
        return self.temp / "_runner_file_commands"

    def prepare(self, payload: dict[str, Any]) -> None:
        for d in (self.home, self.workflow, self.file_commands):
            d.mkdir(parents=True, exist_ok=True)
        (self.workflow / "event.json").write_text(json.dumps(payload))
        for name in (
            self.outputs_file,
            self.summary_file,
            "add_path",
            "set_env",
            "save_state",
        ):
            (self.file_commands / name).write_text("")
        for path in (self.temp, self.workspace):
            subprocess.run(
                ["chown", "-R", f"{RUNNER_UID}:{RUNNER_UID}", str(path)], check=True
            )

    def volumes(self) -> list[tuple[Path, str]]:
        return [
            (self.home, "/github/home"),
            (self.workflow, "/github/workflow"),
            (self.file_commands, "/github/file_commands"),
            (self.workspace, WORKSPACE),
        ]


def github_env(
    runner: Runner, *, event_name: str, sha: str, ref_name: str, ref: str | None = None
) -> dict[str, str]:
    """The GITHUB_*/RUNNER_* variables the runner passes (`-e NAME`), with the container's paths."""
    return {
        "HOME": "/github/home",
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_ACTION": "__org_timoni-flux-push",
        "GITHUB_ACTOR": "octocat",
        "GITHUB_JOB": "deploy",
        "GITHUB_WORKFLOW": "deploy",
        "GITHUB_RUN_ID": "4242",
        "GITHUB_RUN_NUMBER": "7",
        "GITHUB_RUN_ATTEMPT": "1",
        "GITHUB_REPOSITORY": "octo-org/gitops",
        "GITHUB_REPOSITORY_OWNER": "octo-org",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_API_URL": "https://api.github.com",
        "GITHUB_GRAPHQL_URL": "https://api.github.com/graphql",
        "GITHUB_EVENT_NAME": event_name,
        "GITHUB_EVENT_PATH": "/github/workflow/event.json",
        "GITHUB_SHA": sha,
        "GITHUB_REF": ref or f"refs/heads/{ref_name}",
        "GITHUB_REF_NAME": ref_name,
        "GITHUB_REF_TYPE": "branch",
        "GITHUB_WORKSPACE": WORKSPACE,
        "GITHUB_OUTPUT": f"/github/file_commands/{runner.outputs_file}",
        "GITHUB_STEP_SUMMARY": f"/github/file_commands/{runner.summary_file}",
        "GITHUB_ENV": "/github/file_commands/set_env",
        "GITHUB_PATH": "/github/file_commands/add_path",
        "GITHUB_STATE": "/github/file_commands/save_state",
        "RUNNER_OS": "Linux",
        "RUNNER_ARCH": "X64",
        "RUNNER_NAME": "GitHub Actions 2",
        "RUNNER_ENVIRONMENT": "github-hosted",
        # the host's path: the runner does not map it
        "RUNNER_TEMP": "/home/runner/work/_temp",
        "RUNNER_TOOL_CACHE": "/opt/hostedtoolcache",
        "RUNNER_WORKSPACE": "/home/runner/work/gitops",
        "ACTIONS_RUNTIME_URL": "https://pipelines.actions.githubusercontent.com/abc/",
        "ACTIONS_RUNTIME_TOKEN": "actions-runtime-token-do-not-leak",
        "ACTIONS_RESULTS_URL": "https://results-receiver.actions.githubusercontent.com/",
    }


@dataclass
class ContainerRun:
    returncode: int
    stdout: str
    stderr: str
    outputs: dict[str, str]
    summary: str
    # Files the run left in the container (under /tmp, /root, /var/tmp, /run) and in /github/home.
    leftovers: list[str]
    home_files: list[str]
    started: float  # time.time() when the container's process was started

    def artifacts(self) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = json.loads(self.outputs["artifacts"])
        return data

    def by_name(self) -> dict[str, dict[str, Any]]:
        return {a["name"]: a for a in self.artifacts()}


# What runs in the new namespaces before the entrypoint (argv[1]: JSON with the root, the volumes
# and the command): mounts, chroot, the working directory, then exec. Python, not a shell: dash and
# bash drop variables whose names are not shell names, and the runner's inputs have hyphens
# (`INPUT_REGISTRY-PASSWORD`). No shell lies between this and the entrypoint, which is PID 1.
SETUP = r"""
import json, os, subprocess, sys
spec = json.loads(sys.argv[1])
r = spec["rootfs"]
def sh(*args):
    subprocess.run(list(args), check=True)
sh("mount", "-t", "proc", "proc", f"{r}/proc")
sh("mount", "-t", "tmpfs", "-o", "nosuid,mode=0755", "tmpfs", f"{r}/dev")
for d in spec["devices"]:
    open(f"{r}/dev/{d}", "w").close()
    sh("mount", "--bind", f"/dev/{d}", f"{r}/dev/{d}")
for d in ("shm", "pts"):
    os.mkdir(f"{r}/dev/{d}")
sh("mount", "-t", "tmpfs", "-o", "nosuid,nodev", "tmpfs", f"{r}/dev/shm")
os.symlink("/proc/self/fd", f"{r}/dev/fd")
for i, n in enumerate(("stdin", "stdout", "stderr")):
    os.symlink(f"/proc/self/fd/{i}", f"{r}/dev/{n}")
for f in ("/etc/hosts", "/etc/resolv.conf"):  # Docker provides both; the host's stand in
    if os.path.islink(r + f):
        os.unlink(r + f)
    open(r + f, "a").close()
    sh("mount", "--bind", "-o", "ro", f, r + f)
for src, dest in spec["volumes"]:
    os.makedirs(r + dest, exist_ok=True)
    sh("mount", "--bind", src, r + dest)
os.chroot(r)
os.chdir(spec["workdir"])
os.execvpe(spec["argv"][0], spec["argv"], dict(os.environ))
"""


def _setup_spec(
    rootfs: Path, volumes: list[tuple[Path, str]], command: list[str]
) -> str:
    return json.dumps(
        {
            "rootfs": str(rootfs),
            "devices": list(DEVICES),
            "volumes": [[str(src), dest] for src, dest in volumes],
            "workdir": WORKSPACE,
            "argv": command,
        }
    )


@contextmanager
def container(image: str = IMAGE) -> Iterator[Path]:
    """A fresh container of the image (`buildah from`): its root directory; removed afterwards."""
    name = f"image-test-{uuid.uuid4().hex[:12]}"
    buildah("from", "--pull-never", "--name", name, image)
    try:
        yield Path(buildah("mount", name).strip())
    finally:
        for args in (("umount", name), ("rm", name)):
            with suppress(RuntimeError):
                buildah(*args)


def pid1_of(unshare: subprocess.Popen[bytes]) -> int | None:
    """The host's pid of the container's PID 1 (unshare's forked child)."""
    try:
        children = (
            Path(f"/proc/{unshare.pid}/task/{unshare.pid}/children").read_text().split()
        )
    except OSError:
        return None
    return int(children[0]) if children else None


def files_under(path: Path) -> list[str]:
    if not path.exists():
        return []
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if not p.is_dir())


def docker_run(
    runner: Runner,
    *,
    env: dict[str, str],
    payload: dict[str, Any] | None = None,
    image: str = IMAGE,
    command: list[str] | None = None,
    timeout: float = 600,
    while_running: Callable[[subprocess.Popen[bytes], Path], None] | None = None,
) -> ContainerRun:
    """`docker run` of the image with the runner's volumes and `env` (the `-e` variables).

    `command` replaces the ENTRYPOINT (`docker run --entrypoint`); `while_running(process, rootfs)`
    is called once the container started (to signal it, or watch its files)."""
    config = image_config(image)
    runner.prepare(payload or {})
    full_env = {**config.env, "HOSTNAME": "runner-container", **env}
    argv = command or [*config.entrypoint, *config.cmd]
    with container(image) as rootfs:
        scratch = ("tmp", "root", "var/tmp", "run")
        before = {f"/{top}/{f}" for top in scratch for f in files_under(rootfs / top)}
        spec = _setup_spec(rootfs, runner.volumes(), argv)
        started = time.time()
        proc = subprocess.Popen(
            [
                "unshare",
                "--mount",
                "--pid",
                "--fork",
                "--propagation",
                "private",
                sys.executable,
                "-I",
                "-c",
                SETUP,
                spec,
            ],
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            if while_running is not None:
                while_running(proc, rootfs)
            stdout, stderr = proc.communicate(timeout=timeout)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
        after = {f"/{top}/{f}" for top in scratch for f in files_under(rootfs / top)}
        leftovers = sorted(after - before)
    summary = (runner.file_commands / runner.summary_file).read_text()
    outputs = parse_output_file(
        (runner.file_commands / runner.outputs_file).read_text()
    )
    return ContainerRun(
        proc.returncode,
        stdout.decode(errors="replace"),
        stderr.decode(errors="replace"),
        outputs,
        summary,
        leftovers,
        files_under(runner.home),
        started,
    )


def inputs_env(inputs: dict[str, str]) -> dict[str, str]:
    """`INPUT_<NAME>` as the runner names them: upper case, spaces to `_`, hyphens kept."""
    return {f"INPUT_{k.upper().replace(' ', '_')}": v for k, v in inputs.items()}
