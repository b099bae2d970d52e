"""Issue 7: reliability. Registry faults injected by a proxy in front of the real registry, a corpus
of bad inputs, and concurrent runs. After every fault the registry is read directly (not through the
proxy): each tag holds the old artifact or the complete new one, never a broken one.

docs/reliability.md lists every case with the test that proves it.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import GitRepo
from support.action import ActionRun, annotations, run_action
from support.fault_proxy import FaultProxy, fault_proxy
from support.registry import Registry

ZERO = "0" * 40
FAST = "2s"  # flux --timeout in fault tests: each failing call gives up quickly
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


# --- helpers -----------------------------------------------------------------------------------------


def render_all(repo: GitRepo, tmp: Path) -> dict[str, bytes]:
    env = {**os.environ, "TIMONI_CACHE_DIR": str(tmp / "timoni-cache"), "KUBECONFIG": os.devnull}
    out = {}
    for target, args in RENDER.items():
        done = subprocess.run(["timoni", *args], cwd=repo.path, env=env, capture_output=True, check=True)
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
    return {"before": before or ZERO, "after": repo.head(), "created": before is None, "deleted": False,
            "forced": False, "ref": "refs/heads/main"}  # fmt: skip


def push(repo: GitRepo, tmp: Path, prefix: str, *, before: str | None = None, sha: str = "",
         **inputs: str) -> ActionRun:  # fmt: skip
    return run_action(repo.path, tmp, inputs={"registry": prefix, "parallel": "5", **inputs},
                      payload=push_event(repo, before), sha=sha or repo.head())  # fmt: skip


def timed(fn: Callable[[], ActionRun]) -> tuple[ActionRun, float]:
    start = time.monotonic()
    run = fn()
    return run, time.monotonic() - start


def layer_content(registry: Registry, repository: str, manifest: dict[str, Any]) -> bytes:
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
            assert found is not None, f"{repository}:{tag} is listed but its manifest cannot be read"
            revision = str(found[1]["annotations"]["org.opencontainers.image.revision"])  # type: ignore[index]
            commit = revision.rsplit(":", 1)[-1]
            assert commit in known, f"{repository}:{tag} holds {revision}, a commit no test run pushed"
            assert layer_content(registry, repository, found[1]) == known[commit][owner], (
                f"{repository}:{tag} holds a layer that is not {owner}'s render at {commit[:12]}"
            )
            held[(repo_suffix, tag)] = commit
    return held


def everywhere(held: dict[tuple[str, str], str], commit: str) -> bool:
    return set(held) == set(TAG_OWNER) and set(held.values()) == {commit}


def change_everything(repo: GitRepo, round_: int = 1) -> None:
    """A commit that changes the render of all five example targets."""
    edits = {
        "apps/webapp/common.cue": ('tag:        "6.5.0"', f'tag:        "6.5.{round_}"'),
        "clusters/staging/billing.cue": ("billing.staging.example.com", f"billing{round_}.staging.example.com"),
        "clusters/production/billing.cue": ("billing.example.com", f"billing{round_}.example.com"),
        "bundles/staging.cue": ('"hello from staging"', f'"hello from staging, round {round_}"'),
    }
    for rel, (old, new) in edits.items():
        path = repo.path / rel
        text = path.read_text()
        assert old in text, (rel, old)
        path.write_text(text.replace(old, new, 1))
    repo.commit_all(f"change everything ({round_})")


def statuses(run: ActionRun) -> dict[str, str]:
    return {a["name"]: a["status"] for a in run.artifacts()}


def group(run: ActionRun, target: str) -> str:
    """The log group the action printed for one target."""
    start = run.stdout.index(f"::group ::{target}: ")
    return run.stdout[start : run.stdout.index("::endgroup::", start)]


def log_of(run: ActionRun) -> str:
    return run.stdout + run.stderr


@pytest.fixture
def prefix(registry: Registry, request: pytest.FixtureRequest) -> str:
    """This test's own registry prefix. (Short and always a valid OCI name: the shared fixture cuts long
    parametrized test names at 60 characters, which can leave a trailing `-` the registry refuses.)"""
    return f"oci://{registry.host}/rel-{hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:12]}"


@pytest.fixture
def proxy(registry: Registry) -> Iterator[FaultProxy]:
    with fault_proxy(registry.host) as p:
        yield p


@pytest.fixture
def deployed(example_repo: GitRepo, registry: Registry, prefix: str, tmp_path: Path) -> tuple[Known, str]:
    """Every example target pushed once, straight to the registry; returns the renders and the commit."""
    known: Known = {}
    sha = remember(known, example_repo, tmp_path)
    run = push(example_repo, tmp_path / "deploy", prefix)
    assert run.returncode == 0, log_of(run)
    assert everywhere(intact(registry, prefix, known), sha)
    return known, sha


# --- transient faults: retried, then pushed ----------------------------------------------------------

# flux retries within its --timeout (2s here: two tries); three failures in a row outlast that, so the
# action's own retry (attempt 2 of 4, after 1s) is what carries each target through. One fault per
# repository, all in one run: four targets, four kinds of transient failure.
TRANSIENT: dict[str, tuple[str, Callable[[FaultProxy, str], None]]] = {
    "webapp-staging": ("503 for its first 3 requests", lambda p, r: p.status(503, first=3, path=r)),
    "staging/billing": ("connection reset for its first 3 requests", lambda p, r: p.reset(first=3, path=r)),
    "production/billing": ("429 for its first 3 requests", lambda p, r: p.status(429, first=3, path=r)),
    "platform-staging": ("500 for its first 3 blob uploads", lambda p, r: p.status(
        500, first=3, methods={"POST", "PATCH", "PUT"}, path=r + "blobs/uploads/")),
}  # fmt: skip
REPOSITORY = {"webapp-staging": "webapp", "webapp-production": "webapp", "staging/billing": "staging/billing",
              "production/billing": "production/billing", "platform-staging": "platform"}  # fmt: skip
FIRST_TAG = {"webapp-staging": "staging", "webapp-production": "production", "staging/billing": "staging",
             "production/billing": "production", "platform-staging": "staging"}  # fmt: skip


def test_transient_faults_are_retried_and_the_targets_pushed(
    example_repo: GitRepo, registry: Registry, proxy: FaultProxy, prefix: str, tmp_path: Path
) -> None:
    known: Known = {}
    sha = remember(known, example_repo, tmp_path)
    name = registry_name(prefix)
    for target, (_, inject) in TRANSIENT.items():
        inject(proxy, f"^/v2/{name}/{REPOSITORY[target]}/")
    run = push(example_repo, tmp_path / "run", through(proxy, prefix, registry), timeout=FAST,
               targets=",".join(TRANSIENT))  # fmt: skip
    assert run.returncode == 0, log_of(run)
    assert statuses(run) == dict.fromkeys(TRANSIENT, "pushed")
    for target, (fault, _) in TRANSIENT.items():
        hits = [e for e in proxy.log if f"/{name}/{REPOSITORY[target]}/" in e.path]
        assert sum(1 for e in hits if not e.outcome.startswith("forwarded")) == 3, (target, fault, hits)
        # More failures than flux absorbs within one --timeout: the action's own retry carried it.
        assert "transient failure (attempt 1/4), retrying in 1s" in group(run, target), (fault, run.stdout)
    held = intact(registry, prefix, known)
    assert held == {(REPOSITORY[t], FIRST_TAG[t]): sha for t in TRANSIENT}
    for target, art in run.by_name().items():
        found = registry.manifest(f"{name}/{REPOSITORY[target]}", art["tags"][0])
        assert found is not None and art["digest"] == found[0]


# --- faults the action gives up on, clearly, with the registry unharmed ------------------------------

REFUSED: dict[str, Callable[[FaultProxy], None]] = {
    "401 on every request": lambda p: p.status(401),
    "403 on every request": lambda p: p.status(403),
    "403 on every write (a read-only token)": lambda p: p.status(403, methods={"POST", "PATCH", "PUT"}),
}


@pytest.mark.parametrize("fault", list(REFUSED))
def test_refused_credentials_fail_fast_and_clearly(
    fault: str, example_repo: GitRepo, registry: Registry, proxy: FaultProxy, prefix: str, tmp_path: Path,
    deployed: tuple[Known, str],
) -> None:  # fmt: skip
    known, old = deployed
    change_everything(example_repo)
    REFUSED[fault](proxy)
    run, seconds = timed(lambda: push(example_repo, tmp_path / "run", through(proxy, prefix, registry),
                                      before=old))  # fmt: skip
    assert run.returncode == 1, log_of(run)
    assert statuses(run) == dict.fromkeys(ALL, "failed")
    doing = "pushing" if "write" in fault else "reading"
    for art in run.artifacts():
        assert art["error"].startswith(f"the registry refused the credentials while {doing} "), art["error"]
    assert "retrying" not in run.stdout  # 401/403 are never retried: no retry storm against a registry
    assert seconds < 20, seconds
    refused = [e for e in proxy.log if e.outcome in ("injected 401", "injected 403")]
    assert 5 <= len(refused) <= 5 * 4, refused  # a few per target, not attempts x retries
    assert everywhere(intact(registry, prefix, known), old)


def test_a_stalled_registry_times_out_and_keeps_the_old_artifact(
    example_repo: GitRepo, registry: Registry, proxy: FaultProxy, prefix: str, tmp_path: Path,
    deployed: tuple[Known, str],
) -> None:  # fmt: skip
    known, old = deployed
    change_everything(example_repo)
    # The manifest PUT is the last step of a push: the blobs are uploaded, the tag never moves.
    proxy.stall(60, methods={"PUT"}, path="/manifests/")
    run, seconds = timed(lambda: push(example_repo, tmp_path / "run", through(proxy, prefix, registry),
                                      before=old, targets="webapp-staging", timeout=FAST))  # fmt: skip
    assert run.returncode == 1
    err = run.by_name()["webapp-staging"]["error"]
    assert err.startswith("the registry did not answer in time while pushing "), err
    assert "deadline exceeded" in err
    assert [e.outcome for e in proxy.log].count("stalled") == 4  # Options.attempts, each cut at 2s
    assert seconds < 4 * 2 + 1 + 2 + 4 + 15, seconds
    assert everywhere(intact(registry, prefix, known), old)


def test_registry_lost_mid_push_leaves_old_artifacts_then_a_rerun_completes(
    example_repo: GitRepo, registry: Registry, proxy: FaultProxy, prefix: str, tmp_path: Path,
    deployed: tuple[Known, str],
) -> None:  # fmt: skip
    known, old = deployed
    change_everything(example_repo)
    new = remember(known, example_repo, tmp_path)
    name = registry_name(prefix)
    # webapp (two targets): every blob upload fails. staging/billing: the manifest PUT loses its
    # connection. production/billing: the registry goes away after 4 requests (the pull's, then the
    # push's first). platform: 503 on everything, for good.
    proxy.status(500, methods={"POST", "PATCH", "PUT"}, path=f"^/v2/{name}/webapp/blobs/uploads/")
    proxy.reset(methods={"PUT"}, path=f"^/v2/{name}/staging/billing/manifests/")
    proxy.drop_after(4, path=f"^/v2/{name}/production/billing/")
    proxy.status(503, path=f"^/v2/{name}/platform/")
    via = through(proxy, prefix, registry)
    run = push(example_repo, tmp_path / "faulty", via, before=old, timeout=FAST)
    assert run.returncode == 1
    assert statuses(run) == dict.fromkeys(ALL, "failed")
    errors = {a["name"]: a["error"] for a in run.artifacts()}
    assert all("gave up after retries" in e for e in errors.values()), errors
    assert "blobs/uploads" in errors["webapp-staging"] and "Internal Server Error" in errors["webapp-staging"]
    assert "connection reset" in errors["staging/billing"]
    assert "connection reset" in errors["production/billing"]
    # flux retries a 503 itself until --timeout cuts the retry short: it reports whichever came last.
    assert "Service Unavailable" in errors["platform-staging"] or "deadline" in errors["platform-staging"]
    assert {e.outcome for e in proxy.log if f"/{name}/platform/" in e.path} == {"injected 503"}
    lost = [e for e in proxy.log if f"/{name}/production/billing/" in e.path]
    assert sum(e.outcome.startswith("forwarded") for e in lost) == 4, lost
    dropped = [e for e in lost if e.outcome == "reset"]
    assert any(e.method in ("HEAD", "POST", "PATCH", "PUT") for e in dropped), lost  # gone during the push
    assert everywhere(intact(registry, prefix, known), old)  # not one tag moved, none is broken

    proxy.clear()
    again = push(example_repo, tmp_path / "rerun", via, before=old, timeout=FAST)
    assert again.returncode == 0, log_of(again)
    assert statuses(again) == dict.fromkeys(ALL, "pushed")
    assert everywhere(intact(registry, prefix, known), new)


def test_extra_tag_lost_then_a_rerun_converges(
    example_repo: GitRepo, registry: Registry, proxy: FaultProxy, prefix: str, tmp_path: Path,
    deployed: tuple[Known, str],
) -> None:  # fmt: skip
    known, old = deployed
    change_everything(example_repo)
    new = remember(known, example_repo, tmp_path)
    name = registry_name(prefix)
    # webapp-production is pushed at `production`, then `flux tag` adds `stable`: that PUT fails.
    proxy.status(500, methods={"PUT"}, path=f"^/v2/{name}/webapp/manifests/stable$")
    via = through(proxy, prefix, registry)
    run = push(example_repo, tmp_path / "faulty", via, before=old, targets="webapp-production", timeout=FAST)
    assert run.returncode == 1
    art = run.by_name()["webapp-production"]
    assert art["status"] == "failed" and art["error"].startswith("the registry kept failing while tagging ")
    held = intact(registry, prefix, known)
    assert held[("webapp", "production")] == new and held[("webapp", "stable")] == old  # each tag whole

    # The same run again: `production` already holds the render (unchanged), and `stable` follows it.
    proxy.clear()
    again = push(example_repo, tmp_path / "rerun", via, before=old, targets="webapp-production", timeout=FAST)
    assert again.returncode == 0, log_of(again)
    assert again.by_name()["webapp-production"]["status"] == "unchanged"
    assert again.by_name()["webapp-production"]["digest"] == art["digest"]
    held = intact(registry, prefix, known)
    assert held[("webapp", "production")] == new and held[("webapp", "stable")] == new
    stable = registry.manifest(f"{name}/webapp", "stable")
    assert stable is not None and stable[0] == art["digest"]


def test_unreachable_registry_fails_after_bounded_attempts(example_repo: GitRepo, tmp_path: Path) -> None:
    run, seconds = timed(lambda: push(example_repo, tmp_path / "run", "oci://127.0.0.1:1/unreachable",
                                      targets="webapp-staging", timeout=FAST))  # fmt: skip
    assert run.returncode == 1
    err = run.by_name()["webapp-staging"]["error"]
    assert err.startswith("the registry kept failing while reading oci://127.0.0.1:1/unreachable/webapp:staging")
    assert "connection refused" in err
    log = group(run, "webapp-staging")
    assert [f"attempt {n}/4" in log for n in (1, 2, 3, 4)] == [True, True, True, False], log
    assert seconds < 4 * 2 + 1 + 2 + 4 + 15, seconds
