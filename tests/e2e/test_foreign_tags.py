"""Issue 12, item 6: a tag that holds something other than a Flux artifact is never overwritten.

The registry is seeded over its HTTP API with what other tools put at a tag: a container image, a
multi-arch image index, a Helm chart, an artifact of another tool that even carries a flux layer.
Before this fix an index read as a missing tag ("nothing deployed yet") and the others were handed
to `flux pull`, which read them as a tag without a revision: all four were overwritten."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import PR, GitRepo
from support import oci_objects, payloads
from support.action import annotations, run_action
from support.registry import Registry

from gitops_action.registry.flux import Flux
from gitops_action.registry.reader import Reader

SEEDS: dict[str, tuple[Callable[[Registry, str, str], str], str]] = {
    "image": (
        oci_objects.push_image,
        "a container image (config media type application/vnd.oci.image.config",
    ),
    "index": (
        oci_objects.push_index,
        "a multi-arch image index (application/vnd.oci.image.index.v1+json)",
    ),
    "helm": (
        oci_objects.push_helm_chart,
        "a Helm chart (config media type application/vnd.cncf.helm.config",
    ),
    "other": (
        oci_objects.push_foreign_flux_layer,
        "an OCI artifact that is not a Flux artifact (config media type application/vnd.example.config",
    ),
}


def repository(prefix: str) -> tuple[str, str]:
    """(host, repository) of the example's webapp artifact under the test's prefix."""
    host, _, path = prefix.removeprefix("oci://").partition("/")
    return host, f"{path}/webapp"


def held(registry: Registry, repo: str, tag: str) -> str:
    """The digest at the tag, whatever kind of manifest it is."""
    accept = f"{oci_objects.OCI_MANIFEST}, {oci_objects.OCI_INDEX}"
    status, headers, _ = registry.request(f"/v2/{repo}/manifests/{tag}", accept=accept)
    assert status == 200, status
    return headers["Docker-Content-Digest"]


@pytest.mark.parametrize("kind", sorted(SEEDS))
def test_reader_says_what_the_tag_holds(
    kind: str, registry: Registry, prefix: str, tmp_path: Path
) -> None:
    push, words = SEEDS[kind]
    _, repo = repository(prefix)
    digest = push(registry, repo, "staging")
    read = Reader(Flux(env={}, timeout="20s"), timeout=20).pull(
        f"{prefix}/webapp:staging", tmp_path / "o"
    )
    assert read.call.ok and read.foreign.startswith(words), read
    assert read.digest == digest and read.revision == ""


@pytest.mark.parametrize("kind", sorted(SEEDS))
def test_push_never_overwrites_a_foreign_tag(
    kind: str, example_repo: GitRepo, registry: Registry, prefix: str, tmp_path: Path
) -> None:
    push, words = SEEDS[kind]
    _, repo = repository(prefix)
    digest = push(registry, repo, "staging")
    run = run_action(
        example_repo.path, tmp_path / "run", inputs={"registry": prefix, "all": "true"}
    )
    assert run.returncode == 1, run.stdout + run.stderr
    targets = run.by_name()
    failed = targets["webapp-staging"]
    url = f"{prefix}/webapp:staging"
    assert failed["status"] == "failed" and failed["digest"] is None
    assert failed["error"].startswith(f"{url} holds {words}"), failed["error"]
    assert "not overwriting it" in failed["error"]
    # The tag still holds what was there; every other target was delivered.
    assert held(registry, repo, "staging") == digest
    assert {n: a["status"] for n, a in targets.items() if n != "webapp-staging"} == {
        "webapp-production": "pushed",
        "staging/billing": "pushed",
        "production/billing": "pushed",
        "platform-staging": "pushed",
    }
    assert f"{url} holds" in run.summary
    assert any(
        url in a["message"] for a in annotations(run.stdout) if a["level"] == "error"
    )


def test_dry_run_says_the_tag_is_not_ours(
    example_repo: GitRepo, registry: Registry, prefix: str, tmp_path: Path
) -> None:
    """Not "new target: nothing deployed yet": the review would promise a push that cannot happen."""
    _, repo = repository(prefix)
    oci_objects.push_index(registry, repo, "staging")
    base = example_repo.head()
    staging = example_repo.path / "apps/webapp/staging.yaml"
    staging.write_text(staging.read_text().replace("replicas: 1", "replicas: 2"))
    head = example_repo.commit_all("two replicas")
    run = run_action(
        example_repo.path,
        tmp_path / "pr",
        event_name="pull_request",
        payload=payloads.pull_request(base_sha=base, head_sha=head, number=PR),
        sha=head,
        ref_name=f"{PR}/merge",
        inputs={"registry": prefix, "comment": "false"},
    )
    assert run.returncode == 1, run.stdout + run.stderr
    target = run.by_name()["webapp-staging"]
    assert target["status"] == "failed"
    assert target["error"].startswith(
        f"{prefix}/webapp:staging holds a multi-arch image index"
    )
    assert (
        "nothing deployed yet" not in run.summary and "dry-run: new" not in run.summary
    )
