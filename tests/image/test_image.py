"""Issue 21: the image users run, built here (`make image`) and run as GitHub's runner runs a Docker
action (tests/support/container.py): the entrypoint as PID 1, the workspace owned by uid 1001,
/github/home, /github/workflow and /github/file_commands mounted, INPUT_* and GITHUB_* set. Real
registry on 127.0.0.1, real git, and in the image the real timoni, flux and cosign it ships.
Verification happens outside the image, with the host's pinned tools and the registry's HTTP API."""

from __future__ import annotations

import copy
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import PR, ROOT, TOOLS, GitRepo
from support.container import (
    IMAGE,
    RUNNER_UID,
    ContainerRun,
    Runner,
    docker_run,
    github_env,
    image_config,
    image_exists,
    inputs_env,
    pid1_of,
)
from support.cosign_keys import make_key_pair
from support.fault_proxy import fault_proxy
from support.github_api import GitHubApiServer
from support.registry import Registry

ACTION_INPUTS: dict[str, Any] = __import__("yaml").safe_load(
    (ROOT / "action.yml").read_text()
)["inputs"]
WEBHOOKS = ROOT / ".tools/npm/webhooks-examples/api.github.com/index.json"
ALL = {
    "webapp-staging",
    "webapp-production",
    "staging/billing",
    "production/billing",
    "platform-staging",
}
PASSWORD = "Image-Registry-Pa55word"
TOKEN = "ghs_test-token"  # the one the GitHub API test server accepts
COSIGN_PASSWORD = "Image-Cosign-Pa55"
# the action's program trace (a workflow `env:` passes it)
TRACE = "/github/workflow/trace.txt"


@pytest.fixture(scope="module", autouse=True)
def image() -> str:
    """Not part of `make test` (pyproject's norecursedirs): root, buildah and a built image."""
    if os.geteuid() != 0:
        pytest.fail(
            "the image tests need root (buildah, unshare, chroot)", pytrace=False
        )
    if not image_exists(IMAGE):
        pytest.fail(f"{IMAGE} is not built: run `make image` first", pytrace=False)
    return IMAGE


def pins() -> dict[str, str]:
    lines = (ROOT / "tools/versions.env").read_text().splitlines()
    return dict(
        ln.split("=", 1) for ln in lines if "=" in ln and not ln.startswith("#")
    )


def action_env(
    runner: Runner, inputs: dict[str, str], token: str = ""
) -> dict[str, str]:
    """Every input of action.yml, as the runner passes them: the given value, else the default
    (`github-token` defaults to the job's token)."""
    values = {k: str(v.get("default", "")) for k, v in ACTION_INPUTS.items()}
    values["github-token"] = token
    values.update(inputs)
    return inputs_env(values)


def run_image(
    repo: GitRepo,
    tmp: Path,
    inputs: dict[str, str],
    *,
    event_name: str = "push",
    payload: dict[str, Any] | None = None,
    sha: str = "",
    ref_name: str = "main",
    extra: dict[str, str] | None = None,
    **kwargs: Any,
) -> tuple[ContainerRun, Runner]:
    runner = Runner(tmp, repo.path)
    env = github_env(
        runner, event_name=event_name, sha=sha or repo.head(), ref_name=ref_name
    )
    env |= action_env(runner, inputs, token=inputs.get("github-token", ""))
    env |= extra or {}
    run = docker_run(runner, env=env, payload=payload, **kwargs)
    return run, runner


def push_payload(repo: GitRepo) -> dict[str, Any]:
    return {
        "before": "0" * 40,
        "after": repo.head(),
        "created": True,
        "forced": False,
        "deleted": False,
        "ref": "refs/heads/main",
    }


def repo_path(artifact: str, registry: Registry) -> str:
    return artifact.removeprefix(f"oci://{registry.host}/")


def untouched(run: ContainerRun) -> None:
    """What every run must leave behind: nothing in HOME, no file (the docker config with the
    login above all) in the container's /tmp, /root, /var/tmp or /run."""
    assert run.home_files == [], run.home_files
    assert run.leftovers == [], run.leftovers


def no_secret(run: ContainerRun, *secrets: str, comments: tuple[str, ...] = ()) -> None:
    stdout = re.sub(r"^::add-mask ?::.*$", "", run.stdout, flags=re.M)
    seen = "\n".join(
        [stdout, run.stderr, run.summary, json.dumps(run.outputs), *comments]
    )
    for s in secrets:
        assert s not in seen, f"a secret ({s[:6]}...) was printed"


@pytest.fixture(scope="module")
def key_pair(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_key_pair(tmp_path_factory.mktemp("cosign-keys"), COSIGN_PASSWORD)


# --- the container itself --------------------------------------------------------------------


def test_the_container_is_what_the_runner_starts(
    example_repo: GitRepo, tmp_path: Path
) -> None:
    """The harness, checked: the entrypoint is PID 1 (so /proc/1/environ holds the inputs), root,
    the workspace is uid 1001's and git refuses it unless told to trust it."""
    probe = (
        "echo pid=$$ uid=$(id -u) owner=$(stat -c %u /github/workspace) pwd=$(pwd) home=$HOME; "
        "tr '\\0' '\\n' < /proc/1/environ | grep -c '^INPUT_'; "
        "git rev-parse HEAD 2>&1 | head -n 1; ls -A /github"
    )
    run, _ = run_image(
        example_repo,
        tmp_path / "r",
        {"registry-password": PASSWORD},
        command=["/bin/sh", "-c", probe],
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert (
        lines[0]
        == f"pid=1 uid=0 owner={RUNNER_UID} pwd=/github/workspace home=/github/home"
    )
    assert int(lines[1]) == len(ACTION_INPUTS)  # every input is in PID 1's environment
    assert "dubious ownership" in lines[2]
    assert lines[3:] == ["file_commands", "home", "workflow", "workspace"]


def test_the_tools_are_the_pinned_versions(
    example_repo: GitRepo, tmp_path: Path
) -> None:
    """`timoni version` prints its versions in the image (it printed nothing once: see README)."""
    script = "timoni version; echo rc=$?; flux version --client; cosign version 2>&1; git --version"
    run, _ = run_image(
        example_repo, tmp_path / "r", {}, command=["/bin/sh", "-c", script]
    )
    assert run.returncode == 0, run.stderr
    p = pins()
    assert f"client: {p['TIMONI_VERSION']}\n" in run.stdout and "rc=0" in run.stdout, (
        run.stdout
    )
    assert f"flux: v{p['FLUX_VERSION']}\n" in run.stdout
    assert re.search(rf"GitVersion:\s+v{re.escape(p['COSIGN_VERSION'])}\n", run.stdout)
    assert re.search(r"^git version 2\.39\.", run.stdout, re.M)
    labels = image_config().labels
    assert labels["io.github.timoni-flux-push.timoni-version"] == p["TIMONI_VERSION"]
    assert labels["io.github.timoni-flux-push.flux-version"] == p["FLUX_VERSION"]
    assert labels["io.github.timoni-flux-push.cosign-version"] == p["COSIGN_VERSION"]


def test_the_image_holds_no_build_leftovers(
    example_repo: GitRepo, tmp_path: Path
) -> None:
    script = (
        "ls /opt/venv/bin; ls /opt/venv/lib/python3.11/site-packages; ls -d /go /root/.cache /src 2>&1; "
        "ls /var/lib/apt/lists; command -v go pip perl || true"
    )
    run, _ = run_image(
        example_repo, tmp_path / "r", {}, command=["/bin/sh", "-c", script]
    )
    listed = run.stdout.split()
    assert not {"pip", "pip3", "setuptools", "go", "perl"} & set(listed), run.stdout
    assert not any(name.startswith(("pip-", "setuptools-")) for name in listed), (
        run.stdout
    )
    assert "/go" not in listed and "/src" not in listed and "/root/.cache" not in listed
    assert os.path.basename(image_config().entrypoint[-1]) == "entrypoint.py"


# --- runs of the action ----------------------------------------------------------------------


def test_a_signed_push_through_the_image(
    example_repo: GitRepo,
    registry: Registry,
    prefix: str,
    tmp_path: Path,
    key_pair: dict[str, Path],
) -> None:
    inputs = {
        "registry": prefix,
        "registry-username": "ci-user",
        "registry-password": PASSWORD,
        "sign": "cosign",
        "cosign-key": key_pair["key"].read_text(),
        "cosign-password": COSIGN_PASSWORD,
    }
    before = sorted(p.name for p in example_repo.path.iterdir())
    run, _ = run_image(
        example_repo, tmp_path / "push", inputs, payload=push_payload(example_repo)
    )
    assert run.returncode == 0, run.stdout + run.stderr
    arts = run.artifacts()
    assert {a["name"] for a in arts} == ALL and {a["status"] for a in arts} == {
        "pushed"
    }
    head = example_repo.head()
    for a in arts:
        found = registry.manifest(repo_path(a["artifact"], registry), a["tags"][0])
        # read back over the registry's API
        assert found is not None and found[0] == a["digest"], a
        assert a["revision"] == f"main@sha1:{head}" and a["signed"] is True
        verified = subprocess.run(
            [
                str(TOOLS / "cosign"),
                "verify",
                "--key",
                str(key_pair["pub"]),
                "--insecure-ignore-tlog=true",
                a["url"].removeprefix("oci://"),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**os.environ, "HOME": str(key_pair["pub"].parent)},
        )
        assert verified.returncode == 0, verified.stderr
    assert "| webapp-staging |" in run.summary and "signed" in run.summary
    assert run.outputs["pushed"] == "5" and run.outputs["failed"] == "0"
    # nothing in the workspace
    assert sorted(p.name for p in example_repo.path.iterdir()) == before
    untouched(run)
    no_secret(
        run, PASSWORD, COSIGN_PASSWORD, *key_pair["key"].read_text().splitlines()[1:-1]
    )


def test_a_rerun_through_the_image_renders_nothing(
    example_repo: GitRepo, registry: Registry, prefix: str, tmp_path: Path
) -> None:
    payload = push_payload(example_repo)
    first, _ = run_image(
        example_repo, tmp_path / "run1", {"registry": prefix}, payload=payload
    )
    assert first.returncode == 0 and first.outputs["pushed"] == "5", (
        first.stdout + first.stderr
    )
    trace = {"TIMONI_FLUX_PUSH_TRACE": TRACE}
    again, runner = run_image(
        example_repo,
        tmp_path / "run2",
        {"registry": prefix},
        payload=payload,
        extra=trace,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.outputs["pushed"] == "0" and again.outputs["failed"] == "0"
    programs = (
        (runner.workflow / "trace.txt").read_text()
        if (runner.workflow / "trace.txt").exists()
        else ""
    )
    assert not [
        ln for ln in programs.splitlines() if ln.split(" ", 2)[2].startswith("timoni")
    ], programs
    untouched(again)


def webhook(event: str, action: str) -> dict[str, Any]:
    index = json.loads(WEBHOOKS.read_text())
    entry = next(e for e in index if e["name"] == event)
    return copy.deepcopy(
        next(x for x in entry["examples"] if x.get("action") == action)
    )


def test_a_pull_request_dry_run_through_the_image_comments(
    example_repo: GitRepo,
    registry: Registry,
    prefix: str,
    api: GitHubApiServer,
    tmp_path: Path,
) -> None:
    base = example_repo.head()
    deploy, _ = run_image(
        example_repo, tmp_path / "deploy", {"registry": prefix, "all": "true"}
    )
    assert deploy.returncode == 0, deploy.stdout + deploy.stderr
    staging = example_repo.path / "apps/webapp/staging.yaml"
    staging.write_text(staging.read_text().replace("replicas: 1", "replicas: 7"))
    head = example_repo.commit_all("scale")
    payload = webhook("pull_request", "opened")
    payload["number"] = payload["pull_request"]["number"] = PR
    payload["pull_request"]["base"]["sha"], payload["pull_request"]["head"]["sha"] = (
        base,
        head,
    )
    payload["pull_request"]["head"]["repo"] = payload["pull_request"]["base"]["repo"]
    run, _ = run_image(
        example_repo,
        tmp_path / "pr",
        {"registry": prefix, "github-token": TOKEN},
        event_name="pull_request",
        payload=payload,
        sha=head,
        ref_name=f"{PR}/merge",
        extra={"GITHUB_API_URL": api.base_url},
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert [(a["name"], a["status"]) for a in run.artifacts()] == [
        ("webapp-staging", "dry-run")
    ]
    assert run.outputs["changed"] == "true"
    assert len(api.comments) == 1, run.stdout + run.stderr
    assert "+  replicas: 7" in str(api.comments[0]["body"])
    assert "+  replicas: 7" in run.summary
    assert (
        registry.revision(f"{repo_path(prefix, registry)}/webapp", "staging")
        == f"main@sha1:{base}"
    )
    assert api.rejections == []
    untouched(run)
    no_secret(run, TOKEN, comments=tuple(str(c["body"]) for c in api.comments))


def test_flux_config_through_the_image(example_repo: GitRepo, tmp_path: Path) -> None:
    run, _ = run_image(
        example_repo,
        tmp_path / "r",
        {"mode": "flux-config", "output-dir": "clusters/flux"},
    )
    assert run.returncode == 0, run.stdout + run.stderr
    written = example_repo.path / "clusters/flux/webapp-staging.yaml"
    assert "kind: OCIRepository" in written.read_text()
    assert "clusters/flux/webapp-staging.yaml" in run.summary
    untouched(run)


PROMOTION = """version: 1
instances:
  - name: webapp
    namespace: apps
    module: ./modules/webapp
    values: [apps/webapp/common.cue, apps/webapp/staging.yaml]
    tags: [staging]
    # Production's clusters follow `production`, a tag only promote writes (no target pushes it).
    flux: {source: {tag: production}}
"""


def test_promote_through_the_image(
    example_repo: GitRepo, registry: Registry, prefix: str, tmp_path: Path
) -> None:
    example_repo.write(".timoni-flux.yaml", PROMOTION)
    example_repo.commit_all("promotion layout")
    pushed, _ = run_image(
        example_repo, tmp_path / "push", {"registry": prefix, "all": "true"}
    )
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    staging = registry.manifest(f"{repo_path(prefix, registry)}/webapp", "staging")
    assert staging is not None
    run, _ = run_image(
        example_repo,
        tmp_path / "promote",
        {"mode": "promote", "from": "staging", "to": "production", "registry": prefix},
    )
    assert run.returncode == 0, run.stdout + run.stderr
    (entry,) = run.artifacts()
    assert entry["status"] == "promoted" and entry["digest"] == staging[0]
    production = registry.manifest(
        f"{repo_path(prefix, registry)}/webapp", "production"
    )
    assert production is not None and production[0] == staging[0]
    untouched(run)


def test_a_configuration_error_through_the_image(
    example_repo: GitRepo, tmp_path: Path
) -> None:
    example_repo.write(
        ".timoni-flux.yaml",
        "version: 1\ninstances:\n  - name: webapp\n    modul: ./x\n",
    )
    example_repo.commit_all("typo")
    run, _ = run_image(
        example_repo, tmp_path / "r", {"registry": "oci://127.0.0.1:1/x", "all": "true"}
    )
    assert run.returncode == 2, run.stdout + run.stderr
    # the file, line and key
    assert ".timoni-flux.yaml:4: instances\\[0\\].modul" in run.summary, run.summary
    assert re.search(r"^::error ", run.stdout, re.M)
    untouched(run)


# --- trust boundaries that depend on the container ---------------------------------------------

EMBED = """@extern(embed)

package templates

#ConfigMap: {
	#config:    #Config
	apiVersion: "v1"
	kind:       "ConfigMap"
	metadata:   #Meta & {#cfg: #config}
	data: message: #config.message
	data: leaked:  _leaked
}

_leaked: _ @embed(file=env.txt, type=text)
"""


def test_an_embed_of_proc_1_environ_is_refused_in_the_image(
    example_repo: GitRepo, registry: Registry, prefix: str, tmp_path: Path
) -> None:
    """In the container PID 1 is the entrypoint and /proc/1/environ holds every input (the first
    test shows it): a module embedding it is refused, nothing of it is pushed or printed."""
    templates = example_repo.path / "modules/webapp/templates"
    (templates / "configmap.cue").write_text(EMBED)
    (templates / "env.txt").symlink_to("/proc/1/environ")
    example_repo.commit_all("embed PID 1's environment")
    inputs = {
        "registry": prefix,
        "all": "true",
        "registry-username": "ci-user",
        "registry-password": PASSWORD,
    }
    run, _ = run_image(
        example_repo, tmp_path / "r", inputs, payload=push_payload(example_repo)
    )
    assert run.returncode == 1, run.stdout + run.stderr
    by_name = run.by_name()
    assert by_name["webapp-staging"]["error"].startswith(
        "modules/webapp/templates/env.txt resolves outside the repository (symlink): refusing to read it"
    )
    # the other targets still ran
    assert by_name["staging/billing"]["status"] == "pushed"
    assert registry.tags(f"{repo_path(prefix, registry)}/webapp") == []
    no_secret(run, PASSWORD, "actions-runtime-token-do-not-leak")
    untouched(run)


def test_a_cancelled_run_leaves_no_docker_config_in_the_container(
    example_repo: GitRepo, registry: Registry, tmp_path: Path
) -> None:
    """GitHub cancels a container action with SIGTERM to its PID 1 (PID 1 ignores signals it has no
    handler for: the action's handler must be there). The login's docker config goes at once."""
    seen: dict[str, Any] = {}

    def cancel(proc: subprocess.Popen[bytes], rootfs: Path) -> None:
        def configs() -> list[Path]:
            return list(
                (rootfs / "tmp").glob("timoni-flux-push-*/docker-*/.docker/config.json")
            )

        deadline = time.monotonic() + 120
        while not configs() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        found = configs()
        seen["config"] = bool(found)
        pid = pid1_of(proc)
        assert found and pid is not None, "the run never wrote its docker config"
        time.sleep(1)  # it is talking to the (stalled) registry now
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while found[0].exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        seen["gone_in_time"] = not found[0].exists()

    with fault_proxy(registry.host) as proxy:
        proxy.stall(60)
        inputs = {
            "registry": f"oci://{proxy.host}/cancel",
            "registry-username": "ci-user",
            "registry-password": PASSWORD,
            "all": "true",
            "timeout": "60s",
        }
        try:
            run, _ = run_image(
                example_repo,
                tmp_path / "r",
                inputs,
                event_name="workflow_dispatch",
                while_running=cancel,
                timeout=120,
            )
        finally:
            proxy.clear()
    assert seen == {"config": True, "gone_in_time": True}
    assert run.returncode == 128 + signal.SIGTERM, run.stdout + run.stderr
    untouched(run)
    no_secret(run, PASSWORD)
