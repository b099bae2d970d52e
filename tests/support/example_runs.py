"""Runs of the action on the example repository for the reliability tests (tests/e2e: registry
faults, bad inputs, broken targets, concurrent runs), and the check they all end with: `intact()`
reads every tag straight from the registry (not through the fault proxy) and holds its layer to an
independent timoni render of the commit its revision names. docs/reliability.md lists the cases.

The fixtures `prefix` (short, always a valid OCI name) and `proxy` are bound into each test module
that uses them (`prefix = example_runs.prefix`).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import subprocess
import tarfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from support.action import ActionRun, run_action
from support.fault_proxy import FaultProxy, fault_proxy
from support.registry import Registry
from support.repos import GitRepo

ZERO = "0" * 40


FLUX_LAYER = "application/vnd.cncf.flux.content.v1.tar+gzip"


# Independent renders of the example targets with the real timoni (not the action's own arguments).
RENDER = {
    "webapp-staging": ["build", "webapp-staging", "./modules/webapp", "-n", "apps",
                       "-f", "apps/webapp/common.cue", "-f", "apps/webapp/staging.yaml"],
    "webapp-production": ["build", "webapp-production", "./modules/webapp", "-n", "apps",
                          "-f", "apps/webapp/common.cue", "-f", "apps/webapp/production.yaml"],
    "staging/billing": ["build", "billing", "./modules/credentials", "-n", "staging",
                        "-f", "clusters/staging/billing.cue"],
    "production/billing": ["build", "billing", "./modules/credentials", "-n", "production",
                           "-f", "clusters/production/billing.cue"],
    "platform-staging": ["bundle", "build", "-f", "bundles/platform.cue", "-f", "bundles/staging.cue",
                         "--runtime-from-env"],
}  # fmt: skip


# (repository under the prefix, tag) -> the target that owns it
TAG_OWNER = {
    ("webapp", "staging"): "webapp-staging",
    ("webapp", "production"): "webapp-production",
    ("webapp", "stable"): "webapp-production",
    ("staging/billing", "staging"): "staging/billing",
    ("production/billing", "production"): "production/billing",
    ("platform", "staging"): "platform-staging",
}


ALL = set(RENDER)


Known = dict[str, dict[str, bytes]]  # commit -> target -> rendered manifests


CONFIG = ".timoni-flux.yaml"


BIG_MODULE = {
    "modules/big/cue.mod/module.cue": 'module: "timoni.sh/big"\nlanguage: version: "v0.9.0"\n',
    "modules/big/values.cue": 'package main\n\nvalues: {\n\tmib: 1\n\tline: "0123456789abcdef"\n}\n',
    "modules/big/timoni.cue": """// big: one ConfigMap of `mib` MiB (a test module for oversized manifests).
package main

import "strings"

values: {
\tmib:  int & >=0
\tline: string
}

timoni: {
\tapiVersion: "v1alpha1"
\tinstance: {
\t\tmetadata: {
\t\t\tname:      string @tag(name)
\t\t\tnamespace: string @tag(namespace)
\t\t}
\t\tobjects: cm: {
\t\t\tapiVersion: "v1"
\t\t\tkind:       "ConfigMap"
\t\t\tmetadata: {name: instance.metadata.name, namespace: instance.metadata.namespace}
\t\t\tdata: blob: strings.Repeat(values.line + "\\n", div(values.mib*1024*1024, len(values.line)+1))
\t\t}
\t}
\tapply: app: [for obj in instance.objects {obj}]
}
""",
    "apps/big/values.cue": 'values: {\n\tmib:  50\n\tline: "'
    + "0123456789abcdef" * 4
    + '"\n}\n',
}


def render_all(repo: GitRepo, tmp: Path) -> dict[str, bytes]:
    env = {
        **os.environ,
        "TIMONI_CACHE_DIR": str(tmp / "timoni-cache"),
        "KUBECONFIG": os.devnull,
    }
    out = {}
    for target, args in RENDER.items():
        done = subprocess.run(
            ["timoni", *args], cwd=repo.path, env=env, capture_output=True, check=True
        )
        out[target] = done.stdout
    return out


def remember(known: Known, repo: GitRepo, tmp: Path) -> str:
    """Record what every target renders at the repository's head commit."""
    head = repo.head()
    known[head] = render_all(repo, tmp)
    return head


def registry_name(prefix: str) -> str:
    return prefix.split("/", 3)[3]


def through(proxy: FaultProxy, prefix: str, registry: Registry) -> str:
    return prefix.replace(registry.host, proxy.host, 1)


def push_event(repo: GitRepo, before: str | None) -> dict[str, Any]:
    return {
        "before": before or ZERO,
        "after": repo.head(),
        "created": before is None,
        "deleted": False,
        "forced": False,
        "ref": "refs/heads/main",
    }


def push(
    repo: GitRepo,
    tmp: Path,
    prefix: str,
    *,
    before: str | None = None,
    sha: str = "",
    **inputs: str,
) -> ActionRun:
    return run_action(
        repo.path,
        tmp,
        inputs={"registry": prefix, "parallel": "5", **inputs},
        payload=push_event(repo, before),
        sha=sha or repo.head(),
    )


def layer_content(
    registry: Registry, repository: str, manifest: dict[str, Any]
) -> bytes:
    """The manifests.yaml inside an artifact, after checking the layer is complete and well formed."""
    layers = manifest["layers"]
    assert len(layers) == 1 and layers[0]["mediaType"] == FLUX_LAYER, manifest
    blob = registry.blob(repository, layers[0]["digest"])
    assert len(blob) == layers[0]["size"]
    assert "sha256:" + hashlib.sha256(blob).hexdigest() == layers[0]["digest"]
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as tar:
        member = tar.extractfile("manifests.yaml")
        assert member is not None
        return member.read()


def intact(registry: Registry, prefix: str, known: Known) -> dict[tuple[str, str], str]:
    """Every tag under the prefix holds a complete artifact whose layer is exactly what its target
    rendered at the commit its revision names. Returns (repository, tag) -> that commit."""
    name = registry_name(prefix)
    held: dict[tuple[str, str], str] = {}
    for repo_suffix in sorted({r for r, _ in TAG_OWNER}):
        repository = f"{name}/{repo_suffix}"
        for tag in registry.tags(repository):
            owner = TAG_OWNER.get((repo_suffix, tag))
            assert owner, f"unexpected tag {repository}:{tag}"
            found = registry.manifest(repository, tag)
            assert found is not None, (
                f"{repository}:{tag} is listed but its manifest cannot be read"
            )
            revision = str(found[1]["annotations"]["org.opencontainers.image.revision"])  # type: ignore[index]
            commit = revision.rsplit(":", 1)[-1]
            assert commit in known, (
                f"{repository}:{tag} holds {revision}, a commit no test run pushed"
            )
            assert (
                layer_content(registry, repository, found[1]) == known[commit][owner]
            ), (
                f"{repository}:{tag} holds a layer that is not {owner}'s render at {commit[:12]}"
            )
            held[(repo_suffix, tag)] = commit
    return held


def statuses(run: ActionRun) -> dict[str, str]:
    return {a["name"]: a["status"] for a in run.artifacts()}


def group(run: ActionRun, target: str) -> str:
    """The log group the action printed for one target."""
    start = run.stdout.index(f"::group ::{target}: ")
    return run.stdout[start : run.stdout.index("::endgroup::", start)]


def log_of(run: ActionRun) -> str:
    return run.stdout + run.stderr


def edit_config(repo: GitRepo, old: str, new: str) -> str:
    """Replace text in the configuration, commit, return the 1-based line where `new` starts."""
    path = repo.path / CONFIG
    text = path.read_text()
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new))
    repo.commit_all("edit configuration")
    return text[: text.index(old)].count("\n") + 1


def line_of(repo: GitRepo, rel: str, needle: str) -> int:
    return next(
        n
        for n, t in enumerate((repo.path / rel).read_text().splitlines(), 1)
        if needle in t
    )


def together(*calls: Callable[[], ActionRun]) -> list[ActionRun]:
    """Start the runs at the same moment (each a real subprocess) and wait for all of them."""
    barrier = threading.Barrier(len(calls))
    out: dict[int, ActionRun] = {}

    def go(i: int, call: Callable[[], ActionRun]) -> None:
        barrier.wait()
        out[i] = call()

    threads = [threading.Thread(target=go, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [out[i] for i in range(len(calls))]


def scale(repo: GitRepo, replicas: int) -> str:
    staging = repo.path / "apps/webapp/staging.yaml"
    text = staging.read_text()
    staging.write_text(
        text[: text.index("replicas:")]
        + f"replicas: {replicas}\n"
        + text[text.index("\n", text.index("replicas:")) + 1 :]
    )
    return repo.commit_all(f"replicas {replicas}")


def staging_of(registry: Registry, prefix: str) -> tuple[str, str]:
    """(digest, commit) at webapp:staging, read straight from the registry."""
    found = registry.manifest(f"{registry_name(prefix)}/webapp", "staging")
    assert found is not None
    revision = str(found[1]["annotations"]["org.opencontainers.image.revision"])  # type: ignore[index]
    return found[0], revision.rsplit(":", 1)[-1]


@pytest.fixture
def prefix(registry: Registry, request: pytest.FixtureRequest) -> str:
    """This test's own registry prefix. (Short and always a valid OCI name: the shared fixture cuts long
    parametrized test names at 60 characters, which can leave a trailing `-` the registry refuses.)"""
    return f"oci://{registry.host}/rel-{hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:12]}"


@pytest.fixture
def proxy(registry: Registry) -> Iterator[FaultProxy]:
    with fault_proxy(registry.host) as p:
        yield p
