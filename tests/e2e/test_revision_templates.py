"""Never backwards, whatever the revision template: a push records its full commit in an annotation
of its own (`timoni-flux-push.commit`), so `{short_sha}` revisions (which carry no full SHA) still
stop an older run from moving a tag back, and still let the next run plan from what the tag holds."""

from __future__ import annotations

from pathlib import Path

from conftest import GitRepo
from support.action import run_action
from support.registry import Registry

from gitops_action.plan import catchup


def push(repo: GitRepo, work: Path, prefix: str, before: str, sha: str, **inputs: str):  # type: ignore[no-untyped-def]
    payload = {
        "before": before,
        "after": sha,
        "created": before == "0" * 40,
        "deleted": False,
        "forced": False,
    }
    inputs = {
        "registry": prefix,
        "revision": "{ref_name}-{short_sha}",
        "targets": "webapp-staging",
        **inputs,
    }
    return run_action(repo.path, work, inputs=inputs, payload=payload, sha=sha)


def test_a_short_sha_revision_never_moves_a_tag_back(
    example_repo: GitRepo, registry: Registry, prefix: str, tmp_path: Path
) -> None:
    sha1 = example_repo.head()
    values = example_repo.path / "apps/webapp/staging.yaml"
    values.write_text(values.read_text().replace("replicas: 1", "replicas: 2"))
    sha2 = example_repo.commit_all("newer")
    newer = push(example_repo, tmp_path / "newer", prefix, sha1, sha2)
    assert newer.by_name()["webapp-staging"]["status"] == "pushed", newer.stdout
    repo_name = prefix.removeprefix(f"oci://{registry.host}/") + "/webapp"
    found = registry.manifest(repo_name, "staging")
    assert found is not None
    notes = found[1]["annotations"]
    assert isinstance(notes, dict)
    # no full SHA in it
    assert notes["org.opencontainers.image.revision"] == f"main-{sha2[:7]}"
    assert notes[catchup.COMMIT] == sha2

    # The run for the older commit finishes last (its checkout at sha1): it must not move the tag back.
    example_repo.git("checkout", "-q", sha1)
    older = push(example_repo, tmp_path / "older", prefix, "0" * 40, sha1, all="true")
    art = older.by_name()["webapp-staging"]
    assert art["status"] == "skipped", older.stdout
    assert older.returncode == 0
    after = registry.manifest(repo_name, "staging")
    assert after is not None and after[0] == found[0]

    # And a later run plans from the commit the tag holds: nothing changed since, nothing to do.
    example_repo.git("checkout", "-q", "main")
    again = push(example_repo, tmp_path / "again", prefix, "0" * 40, sha2)
    assert again.returncode == 0 and again.artifacts() == [], again.stdout
