"""Issue 12, items 1 and 2: a render sees no secret and reads only the repository.

The attack: a module file that is a symlink to /proc/self/environ (or /proc/1/environ, which in the
container is the entrypoint's environment, every input included), read with CUE's `@embed` into a
ConfigMap. The dry-run diff would carry it into the PR comment and the job summary; a push would
carry it into the artifact. Real timoni, flux, registry and git throughout.
"""

from __future__ import annotations

import gzip
import io
import re
import tarfile
from pathlib import Path
from typing import Any

import pytest
from conftest import PR, GitRepo
from support.action import ActionRun, annotations, run_action
from support.github_api import GitHubApiServer
from support.registry import Registry

from gitops_action import runner
from gitops_action.changes import gitrepo
from gitops_action.config.targets import Target
from gitops_action.registry import flux
from gitops_action.render import timoni

PASSWORD = "s3cr3t-Registry-Pa55"  # the auth_registry's: the secrets scan knows it
TOKEN = "ghs_test-token"
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


def embed_environ(repo: GitRepo, source: str) -> None:
    """The webapp module embeds `templates/env.txt`, a symlink to `source`."""
    templates = repo.path / "modules/webapp/templates"
    (templates / "configmap.cue").write_text(EMBED)
    (templates / "env.txt").symlink_to(source)


def pr_payload(base: str, head: str) -> dict[str, Any]:
    repo = {"full_name": "octo-org/gitops"}
    return {"action": "synchronize", "number": PR, "pull_request": {
        "number": PR, "base": {"sha": base, "ref": "main", "repo": repo},
        "head": {"sha": head, "ref": "feature", "repo": {**repo, "fork": False}}}}  # fmt: skip


def inputs(registry: str) -> dict[str, str]:
    return {"registry": registry, "registry-username": "ci-user", "registry-password": PASSWORD,
            "github-token": TOKEN}  # fmt: skip


def everything(run: ActionRun, comments: list[str]) -> str:
    """Every channel of a run but the `::add-mask ::` lines (they mask the secret they carry)."""
    stdout = re.sub(r"^::add-mask ?::.*$", "", run.stdout, flags=re.M)
    return "\n".join(
        [stdout, run.stderr, run.summary, *run.outputs.values(), *comments]
    )


def test_a_module_embedding_proc_self_environ_is_refused_in_a_pr_dry_run(
    example_repo: GitRepo, auth_registry: Registry, api: GitHubApiServer, tmp_path: Path
) -> None:
    assert auth_registry.ca_file is not None
    registry = f"oci://{auth_registry.host}/trust-env-pr"
    env = {"SSL_CERT_FILE": str(auth_registry.ca_file), "GITHUB_API_URL": api.base_url}
    deploy = run_action(example_repo.path, tmp_path / "deploy", inputs={**inputs(registry), "all": "true"},
                        env=env)  # fmt: skip
    assert deploy.returncode == 0, deploy.stdout + deploy.stderr
    base = example_repo.head()
    embed_environ(example_repo, "/proc/self/environ")
    # an unrelated change in the same PR
    billing = example_repo.path / "clusters/staging/billing.cue"
    billing.write_text(
        billing.read_text().replace('"billing-staging"', '"billing-staging-2"')
    )
    head = example_repo.commit_all("embed the environment")

    pr = run_action(example_repo.path, tmp_path / "pr", event_name="pull_request", sha=head,
                    payload=pr_payload(base, head), ref_name=f"{PR}/merge", inputs=inputs(registry),
                    env=env)  # fmt: skip
    comments = [str(c["body"]) for c in api.comments]
    seen = everything(pr, comments)
    assert PASSWORD not in seen and TOKEN not in seen and "INPUT_" not in pr.summary
    assert pr.returncode == 1, pr.stdout + pr.stderr
    by_name = pr.by_name()
    # all use modules/webapp
    for name in ("webapp-staging", "webapp-production", "platform-staging"):
        assert by_name[name]["status"] == "failed"
        assert by_name[name]["error"].startswith(
            "modules/webapp/templates/env.txt resolves outside the repository (symlink): refusing to read it"
        ), by_name[name]["error"]
        assert "/environ)" in by_name[name]["error"]
    # the other targets still ran
    assert by_name["staging/billing"]["status"] == "dry-run"
    assert (
        len(comments) == 1
        and "modules/webapp/templates/env.txt resolves outside" in comments[0]
    )


@pytest.mark.parametrize("source", ["/proc/1/environ", "/proc/self/environ"])
def test_a_module_embedding_an_environment_is_not_pushed(
    example_repo: GitRepo, registry: Registry, prefix: str, tmp_path: Path, source: str
) -> None:
    """In the container PID 1 is the entrypoint: /proc/1/environ holds every input. (Here PID 1's is
    unreadable, so on the old code that case fails the build instead; /proc/self/environ was pushed.)"""
    embed_environ(example_repo, source)
    example_repo.commit_all("embed an environment")
    run = run_action(example_repo.path, tmp_path / "push", payload={"before": "0" * 40, "created": True},
                     inputs={"registry": prefix, "all": "true", "registry-username": "ci-user",
                             "registry-password": PASSWORD})  # fmt: skip
    assert run.returncode == 1, run.stdout + run.stderr
    by_name = run.by_name()
    assert by_name["webapp-staging"]["error"].startswith(
        "modules/webapp/templates/env.txt resolves outside the repository (symlink): refusing to read it"
    )
    # (both cases share a prefix)
    assert by_name["staging/billing"]["status"] in ("pushed", "unchanged")
    path = prefix.split("/", 3)[3]
    # nothing of the webapp reached the registry
    assert registry.tags(f"{path}/webapp") == []
    assert any(a["level"] == "error" for a in annotations(run.stdout))


def test_timoni_sees_no_input_even_when_a_file_reaches_its_environment(
    example_repo: GitRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Item 1 on its own (the containment check bypassed): what timoni's environment holds."""
    monkeypatch.setenv("INPUT_REGISTRY-PASSWORD", PASSWORD)
    monkeypatch.setenv("ACTIONS_RUNTIME_TOKEN", "runtime-token-value")
    monkeypatch.setenv("TIMONI_KUBE_VERSION", "1.31.0")
    embed_environ(example_repo, "/proc/self/environ")
    target = Target(id="w", kind="instance", name="w", artifact="oci://x/y", tags=("t",),
                    files=("apps/webapp/common.cue", "apps/webapp/staging.yaml"), namespace="apps",
                    module="modules/webapp")  # fmt: skip
    private = {"DOCKER_CONFIG": str(tmp_path / "docker"), "HOME": str(tmp_path)}
    done = timoni.render(target, repo_root=example_repo.path, out_dir=tmp_path / "out",
                         cache_dir=tmp_path / "cache", timeout=120, runtime_from_env=False,
                         private=private)  # fmt: skip
    assert done.ok, done.stderr
    rendered = done.path.read_text()
    assert "leaked: " in rendered and "TIMONI_KUBE_VERSION=1.31.0" in rendered
    assert f"DOCKER_CONFIG={tmp_path / 'docker'}" in rendered
    assert PASSWORD not in rendered and "runtime-token-value" not in rendered
    assert "INPUT_" not in rendered and "ACTIONS_" not in rendered


def test_each_tool_gets_an_allow_listed_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hostile = {"INPUT_GITHUB-TOKEN": TOKEN, "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "oidc", "HOME": "/home/runner",
               "AWS_REGION": "eu-west-1", "AZURE_CLIENT_ID": "az",
               "GOOGLE_APPLICATION_CREDENTIALS": "/g.json",
               "HTTPS_PROXY": "http://p:3128", "no_proxy": "localhost", "GIT_CONFIG_COUNT": "1",
               "GIT_CONFIG_KEY_0": "safe.directory", "GIT_CONFIG_VALUE_0": "/w"}  # fmt: skip
    for name, value in hostile.items():
        monkeypatch.setenv(name, value)
    private = {"DOCKER_CONFIG": "/private/.docker", "HOME": "/private"}
    generic = flux.environment("generic", private)
    aws = flux.environment("aws", private)
    git = gitrepo.git_env()
    for env in (generic, aws, git, runner.allowed()):
        assert not any(k.startswith(("INPUT_", "ACTIONS_")) for k in env), env
    assert generic["HOME"] == "/private" and generic["TZ"] == "UTC"
    assert (
        generic["HTTPS_PROXY"] == "http://p:3128" and generic["no_proxy"] == "localhost"
    )
    assert "AWS_REGION" not in generic and aws["AWS_REGION"] == "eu-west-1"
    assert "AZURE_CLIENT_ID" not in aws and "GOOGLE_APPLICATION_CREDENTIALS" not in aws
    assert (
        flux.environment("gcp", private)["GOOGLE_APPLICATION_CREDENTIALS"] == "/g.json"
    )
    assert flux.environment("azure", private)["AZURE_CLIENT_ID"] == "az"
    assert (
        "HOME" not in git and git["LC_ALL"] == "C" and git["GIT_CONFIG_VALUE_0"] == "/w"
    )
    assert set(runner.allowed()) == {"PATH"}
    done = runner.run(["env"], env=runner.allowed())
    assert TOKEN not in done.stdout and "oidc" not in done.stdout


BUNDLE_RUNTIME = """bundle: {
	apiVersion: "v1alpha1"
	name:       "runtime"
	instances: webapp: {
		module: url: "file://../modules/webapp"
		namespace: "runtime"
		values: {
			image: {repository: "ghcr.io/stefanprodan/podinfo", tag: "6.5.0"}
			message: "cluster \\(cluster) password \\(password)"
		}
	}
}
cluster:  string | *"none" @timoni(runtime:string:CLUSTER_NAME)
password: string | *"none" @timoni(runtime:string:INPUT_REGISTRY-PASSWORD)
"""


def test_runtime_values_of_a_bundle_only_those_it_names_no_input(
    example_repo: GitRepo, registry: Registry, prefix: str, tmp_path: Path
) -> None:
    example_repo.write("bundles/runtime.cue", BUNDLE_RUNTIME)
    example_repo.write(".timoni-flux.yaml", example_repo.path.joinpath(".timoni-flux.yaml").read_text()
                       + "  - name: runtime\n    files: [bundles/runtime.cue]\n"
                       '    artifact: "{registry}/runtime"\n    tags: [live]\n')  # fmt: skip
    example_repo.commit_all("a bundle with runtime values")
    run = run_action(example_repo.path, tmp_path / "push",
                     inputs={"registry": prefix, "targets": "runtime", "all": "true",
                             "registry-username": "ci-user", "registry-password": PASSWORD},
                     payload={"before": "0" * 40, "created": True},
                     env={"CLUSTER_NAME": "blue"})  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    repository = f"{prefix.split('/', 3)[3]}/runtime"
    found = registry.manifest(repository, "live")
    assert found is not None
    layer = registry.blob(repository, found[1]["layers"][0]["digest"])  # type: ignore[index]
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer))) as tar:
        member = tar.extractfile(next(m for m in tar.getmembers() if m.isfile()))
        assert member is not None
        manifests = member.read().decode()
    assert "cluster blue password none" in manifests, manifests
    assert PASSWORD not in manifests
    assert timoni.runtime_names([BUNDLE_RUNTIME]) == ["CLUSTER_NAME"]


def test_git_reads_no_user_config(
    example_repo: GitRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """git gets no HOME from the runner: a ~/.gitconfig is not read (here it would add a remote)."""
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text(
        '[remote "origin"]\n\turl = https://attacker.example/x.git\n'
    )
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    repo = gitrepo.Repo(example_repo.path)
    assert repo.resolve("HEAD") == example_repo.head()
    assert repo.remote_url() == ""
