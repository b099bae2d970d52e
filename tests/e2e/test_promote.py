"""Promotion by digest, end to end: real pushes, real `flux tag artifact`, real git history; every
tag read back over the registry's HTTP API (urllib, not the code under test)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from conftest import run_cli
from support.action import run_action
from support.registry import Registry
from support.repos import GitRepo

# Clusters of production follow `production` (flux-config's OCIRepository): the tag promotions write.
CONFIG = """version: 1
flux:
  source: {tag: production}
instances:
  - name: webapp
    namespace: apps
    module: ./modules/webapp
    values: [apps/webapp/common.cue, apps/webapp/staging.yaml]
    tags: [staging]
  - name: billing
    namespace: staging
    module: ./modules/credentials
    values: [clusters/staging/billing.cue]
    tags: [staging]
bundles:
  - name: platform
    files: [bundles/platform.cue, bundles/staging.cue]
    tags: [staging]
"""
PROMOTED = ("webapp", "billing")


def setup(repo: GitRepo) -> str:
    repo.write(".timoni-flux.yaml", CONFIG)
    return repo.commit_all("promotion layout")


def push_all(repo: GitRepo, prefix: str) -> None:
    out = run_cli(repo, "push", "--all", "--registry", prefix)
    assert out.returncode == 0, out.stderr


def digest(registry: Registry, prefix: str, name: str, tag: str) -> str | None:
    found = registry.manifest(f"{prefix.split('/', 3)[3]}/{name}", tag)
    return found[0] if found else None


def revision(registry: Registry, prefix: str, name: str, tag: str) -> str | None:
    return registry.revision(f"{prefix.split('/', 3)[3]}/{name}", tag)


def promote(
    repo: GitRepo, tmp: Path, prefix: str, *args: str
) -> tuple[int, dict[str, Any], str, str]:
    """(exit code, artifacts by name, summary, stderr) of `python -m gitops_action promote`."""
    out_file, summary = tmp / "outputs.json", tmp / "summary.md"
    out_file.unlink(missing_ok=True)
    summary.unlink(missing_ok=True)
    run = run_cli(
        repo,
        "promote",
        "--registry",
        prefix,
        "--output-file",
        str(out_file),
        "--summary-file",
        str(summary),
        *args,
    )
    assert "Traceback" not in run.stderr, run.stderr
    outputs = json.loads(out_file.read_text())
    by_name = {a["name"]: a for a in json.loads(outputs["artifacts"])}
    return (
        run.returncode,
        by_name | {"_outputs": outputs},
        summary.read_text(),
        run.stderr,
    )


def test_promotion_moves_exactly_the_to_tags(
    example_repo: GitRepo, registry: Registry, prefix: str, tmp_path: Path
) -> None:
    head = setup(example_repo)
    push_all(example_repo, prefix)
    staging = {
        n: digest(registry, prefix, n, "staging") for n in (*PROMOTED, "platform")
    }
    assert all(staging.values())

    rc, got, summary, _ = promote(
        example_repo,
        tmp_path,
        prefix,
        "--from",
        "staging",
        "--to",
        "production",
        "--targets",
        "webapp,billing",
    )
    assert rc == 0, got
    for name in PROMOTED:
        assert digest(registry, prefix, name, "production") == staging[name]
        assert digest(registry, prefix, name, "staging") == staging[name]
        assert sorted(registry.tags(f"{prefix.split('/', 3)[3]}/{name}")) == [
            "production",
            "staging",
        ]
        entry = got[name]
        assert entry["status"] == "promoted" and entry["error"] is None
        assert (
            entry["digest"] == staging[name]
            and entry["url"] == f"{prefix}/{name}@{staging[name]}"
        )
        assert entry["revision"] == f"main@sha1:{head}" and entry["tags"] == [
            "production"
        ]
        assert entry["kind"] == "instance" and entry["artifact"] == f"{prefix}/{name}"
        assert (
            entry["previous"] == {"digest": None, "revision": None}
            and entry["rollback"] is False
        )
        assert f"| {name} | " in summary and staging[name].split(":")[1][:12] in summary
    # Not asked for: untouched.
    assert "platform" not in got
    assert registry.tags(f"{prefix.split('/', 3)[3]}/platform") == ["staging"]
    assert got["_outputs"]["promoted"] == "2" and got["_outputs"]["failed"] == "0"
    assert f"main&#64;sha1:{head}" in summary and "| nothing |" in summary

    # Again, as the action: nothing to move, and it says what `production` already held.
    run = run_action(
        example_repo.path,
        tmp_path / "action",
        inputs={
            "mode": "promote",
            "from": "staging",
            "to": "production",
            "targets": "webapp",
            "registry": prefix,
        },
    )
    assert run.returncode == 0, run.stdout + run.stderr
    (entry,) = run.artifacts()
    assert entry["status"] == "unchanged" and entry["digest"] == staging["webapp"]
    assert entry["previous"]["digest"] == staging["webapp"]
    assert digest(registry, prefix, "webapp", "production") == staging["webapp"]


def flux_tag(url: str, tag: str) -> None:
    subprocess.run(
        ["flux", "tag", "artifact", url, "--tag", tag], check=True, capture_output=True
    )


def test_promotion_renders_nothing_and_never_goes_back_without_force(
    example_repo: GitRepo, registry: Registry, prefix: str, tmp_path: Path
) -> None:
    first = setup(example_repo)
    push_all(example_repo, prefix)
    old = {n: digest(registry, prefix, n, "staging") for n in PROMOTED}
    for name in PROMOTED:  # keep the first commit's artifacts at `qa`
        flux_tag(f"{prefix}/{name}@{old[name]}", "qa")
    staging_yaml = example_repo.path / "apps/webapp/staging.yaml"
    staging_yaml.write_text(
        staging_yaml.read_text().replace("replicas: 1", "replicas: 3")
    )
    billing = example_repo.path / "clusters/staging/billing.cue"
    billing.write_text(
        billing.read_text().replace("billing.staging", "billing2.staging")
    )
    second = example_repo.commit_all("second")
    push_all(example_repo, prefix)
    new = {n: digest(registry, prefix, n, "staging") for n in PROMOTED}
    assert all(new[n] != old[n] for n in PROMOTED)

    # Both modules broken at head: a render would fail (the push shows it), promotion does not render.
    for module in ("webapp", "credentials"):
        example_repo.write(
            f"modules/{module}/timoni.cue", "package main\nthis is not CUE {\n"
        )
    example_repo.commit_all("break the modules")
    broken = run_cli(example_repo, "push", "--all", "--registry", prefix)
    assert broken.returncode == 1 and "timoni build failed" in broken.stderr
    assert {n: digest(registry, prefix, n, "staging") for n in PROMOTED} == new

    args = ("--to", "production", "--targets", "webapp,billing")
    rc, got, _, _ = promote(example_repo, tmp_path, prefix, "--from", "staging", *args)
    assert rc == 0, got
    for name in PROMOTED:
        assert (
            got[name]["status"] == "promoted"
            and got[name]["revision"] == f"main@sha1:{second}"
        )
        assert digest(registry, prefix, name, "production") == new[name]

    # `qa` holds the first commit: an older one than `production` holds. Refused without force.
    rc, got, summary, _ = promote(example_repo, tmp_path, prefix, "--from", "qa", *args)
    assert rc == 0
    for name in PROMOTED:
        assert got[name]["status"] == "skipped" and got[name]["digest"] is None
        assert (
            "not moving it back" in got[name]["error"] and "force" in got[name]["error"]
        )
        assert got[name]["previous"]["digest"] == new[name]
        assert digest(registry, prefix, name, "production") == new[name]
    assert "### Problems" in summary

    # A rollback with force moves it back, and says so.
    rc, got, summary, stderr = promote(
        example_repo, tmp_path, prefix, "--from", "qa", "--force", *args
    )
    assert rc == 0, got
    for name in PROMOTED:
        entry = got[name]
        assert entry["status"] == "promoted" and entry["rollback"] is True
        assert (
            entry["digest"] == old[name] and entry["revision"] == f"main@sha1:{first}"
        )
        assert entry["previous"] == {
            "digest": new[name],
            "revision": f"main@sha1:{second}",
        }
        assert digest(registry, prefix, name, "production") == old[name]
        assert revision(registry, prefix, name, "production") == f"main@sha1:{first}"
        assert f"{name}: promoted" in stderr and "rollback" in stderr
    assert (
        "### Rollbacks" in summary
        and "moved back from" in summary
        and "promoted (rollback, force)" in summary
    )


def test_promotion_takes_only_flux_artifacts_of_this_branch(
    example_repo: GitRepo, registry: Registry, prefix: str, tmp_path: Path
) -> None:
    setup(example_repo)
    push_all(example_repo, prefix)
    # A commit on another branch, never merged: its artifact must not reach `production`.
    example_repo.git("checkout", "-q", "-b", "experiment")
    example_repo.write("apps/webapp/staging.yaml", "values:\n  replicas: 9\n")
    foreign = example_repo.commit_all("experiment")
    example_repo.git("checkout", "-q", "main")
    manifests = tmp_path / "m"
    manifests.mkdir()
    (manifests / "manifests.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"
    )
    for tag, rev in (("feature", f"experiment@sha1:{foreign}"), ("release", "v1.2.3")):
        subprocess.run(
            [
                *(
                    "flux",
                    "push",
                    "artifact",
                    f"{prefix}/webapp:{tag}",
                    f"--path={manifests}",
                ),
                *("--source=https://example.com/x", f"--revision={rev}"),
            ],
            check=True,
            capture_output=True,
        )

    rc, got, _, _ = promote(
        example_repo,
        tmp_path,
        prefix,
        "--from",
        "feature",
        "--to",
        "production",
        "--targets",
        "webapp",
    )
    assert rc == 1 and got["webapp"]["status"] == "failed"
    assert "not a commit of this branch's history" in got["webapp"]["error"]
    rc, got, _, _ = promote(
        example_repo,
        tmp_path,
        prefix,
        "--from",
        "release",
        "--to",
        "production",
        "--targets",
        "webapp",
    )
    assert rc == 1 and "is not a Flux artifact of a commit" in got["webapp"]["error"]
    assert digest(registry, prefix, "webapp", "production") is None

    # A `from` tag that does not exist: a failure for a target asked for by name...
    rc, got, _, _ = promote(
        example_repo,
        tmp_path,
        prefix,
        "--from",
        "nightly",
        "--to",
        "production",
        "--targets",
        "billing",
    )
    assert (
        rc == 1
        and got["billing"]["error"]
        == f"{prefix}/billing:nightly does not exist: nothing to promote"
    )
    # ...and skipped when every target was taken.
    rc, got, _, _ = promote(
        example_repo, tmp_path, prefix, "--from", "nightly", "--to", "production"
    )
    assert rc == 0 and {
        got[n]["status"] for n in ("webapp", "billing", "platform")
    } == {"skipped"}


def test_promotion_from_a_shallow_checkout(
    example_repo: GitRepo, registry: Registry, prefix: str, tmp_path: Path
) -> None:
    """actions/checkout leaves one commit: the history check fetches what it needs."""
    first = setup(example_repo)
    push_all(example_repo, prefix)
    example_repo.write("docs.md", "later\n")
    example_repo.commit_all("a later commit")
    clone = example_repo.shallow_clone(tmp_path / "shallow")
    assert clone.git("rev-parse", "--is-shallow-repository") == "true"
    rc, got, _, _ = promote(
        clone,
        tmp_path,
        prefix,
        "--from",
        "staging",
        "--to",
        "production",
        "--targets",
        "webapp",
    )
    assert rc == 0 and got["webapp"]["status"] == "promoted", got
    assert got["webapp"]["revision"] == f"main@sha1:{first}"
    assert digest(registry, prefix, "webapp", "production") == digest(
        registry, prefix, "webapp", "staging"
    )


def test_promotion_usage_errors(example_repo: GitRepo, prefix: str) -> None:
    setup(example_repo)
    for args, needle in (
        (("--from", "staging"), "mode promote needs input `to`"),
        (("--from", "staging", "--to", "staging"), "are the same tag"),
        (("--from", "staging", "--to=-bad"), "is not a valid OCI tag"),
        (
            ("--from", "staging", "--to", "production", "--targets", "nope"),
            "unknown target(s): nope",
        ),
    ):
        out = run_cli(example_repo, "promote", "--registry", prefix, *args)
        assert out.returncode == 2 and needle in out.stderr, (args, out.stderr)


def test_promotion_with_registry_credentials(
    example_repo: GitRepo, auth_registry: Registry, tmp_path: Path
) -> None:
    """The reads and the tag go through the run's own docker config; a refused login fails the
    target clearly and the password is printed nowhere."""
    assert auth_registry.auth is not None and auth_registry.ca_file is not None
    setup(example_repo)
    user, password = auth_registry.auth
    env = {"SSL_CERT_FILE": str(auth_registry.ca_file)}
    base = {
        "registry": f"oci://{auth_registry.host}/promo",
        "registry-username": user,
        "targets": "webapp",
    }
    pushed = run_action(
        example_repo.path,
        tmp_path / "push",
        inputs={**base, "registry-password": password, "all": "true"},
        env=env,
    )
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    wrong = "Wr0ng-Promotion-Pa55word"
    for secret, tmp in ((wrong, "wrong"), (password, "good")):
        run = run_action(
            example_repo.path,
            tmp_path / tmp,
            inputs={
                **base,
                "registry-password": secret,
                "mode": "promote",
                "from": "staging",
                "to": "production",
            },
            env=env,
        )
        rest = run.stdout.replace(f"::add-mask ::{secret}", "")
        for text in (rest, run.stderr, run.summary, *run.outputs.values()):
            assert secret not in text
        (entry,) = run.artifacts()
        if secret == wrong:
            assert run.returncode == 1 and entry["status"] == "failed"
            assert "refused the credentials" in entry["error"]
            assert auth_registry.manifest("promo/webapp", "production") is None
        else:
            assert run.returncode == 0 and entry["status"] == "promoted", run.stdout
            found = auth_registry.manifest("promo/webapp", "production")
            assert (
                found is not None
                and found[0] == entry["digest"] == pushed.by_name()["webapp"]["digest"]
            )


def test_a_to_tag_no_target_follows_is_refused(
    example_repo: GitRepo, registry: Registry, prefix: str, tmp_path: Path
) -> None:
    """Issue 20: with the default `{registry}/{name}` layout each environment has its repository;
    `--from dev --to prod` would write `api-dev:prod`, a tag no Flux object follows."""
    example_repo.write(
        ".timoni-flux.yaml",
        """version: 1
instances:
  - name: api-dev
    namespace: apps
    module: ./modules/webapp
    values: [apps/webapp/common.cue, apps/webapp/staging.yaml]
    tags: [dev]
  - name: api-prod
    namespace: apps
    module: ./modules/webapp
    values: [apps/webapp/common.cue, apps/webapp/production.yaml]
    tags: [prod]
""",
    )
    example_repo.commit_all("one repository per environment")
    push_all(example_repo, prefix)
    summary = tmp_path / "summary.md"
    out = run_cli(
        example_repo,
        *(
            "promote",
            "--registry",
            prefix,
            "--from",
            "dev",
            "--to",
            "prod",
            "--targets",
            "api-dev",
        ),
        *("--summary-file", str(summary)),
    )
    assert out.returncode == 2, out.stderr
    assert (
        f"would have written {prefix}/api-dev:prod (its targets use dev)" in out.stderr
    ), out.stderr
    assert "nothing was promoted" in summary.read_text()
    assert registry.tags(f"{prefix.split('/', 3)[3]}/api-dev") == ["dev"]

    # Every target taken: api-dev's repository is followed at `prod` by nobody, and api-prod's
    # `prod` is its own render: nothing at all can be promoted, a usage error that says what to do.
    out = run_cli(
        example_repo, "promote", "--registry", prefix, "--from", "dev", "--to", "prod"
    )
    assert out.returncode == 2, out.stderr
    assert f"{prefix}/api-dev:prod (its targets use dev)" in out.stderr, out.stderr
    assert "give the environments one shared `artifact:`" in out.stderr, out.stderr
    assert registry.tags(f"{prefix.split('/', 3)[3]}/api-dev") == ["dev"]
    # No target of any repository uses the tag: a usage error.
    out = run_cli(
        example_repo, "promote", "--registry", prefix, "--from", "dev", "--to", "qa"
    )
    assert out.returncode == 2 and "api-prod:qa (its targets use prod)" in out.stderr, (
        out.stderr
    )


def test_nothing_promoted_without_targets_is_a_usage_error(
    example_repo: GitRepo, registry: Registry, prefix: str, tmp_path: Path
) -> None:
    """Issue 20 (first hour, 4.10): no `--targets`, one target refused (`to` unused in its
    repository) and the other has no `from` to promote: nothing at all moved, so not exit 0."""
    example_repo.write(
        ".timoni-flux.yaml",
        """version: 1
instances:
  - name: api-dev
    namespace: apps
    module: ./modules/webapp
    values: [apps/webapp/common.cue, apps/webapp/staging.yaml]
    tags: [dev]
  - name: api-prod
    namespace: apps
    module: ./modules/webapp
    values: [apps/webapp/common.cue, apps/webapp/production.yaml]
    tags: [main]
    flux: {source: {tag: prod}}
""",
    )
    example_repo.commit_all("one repository per environment")
    push_all(example_repo, prefix)
    summary = tmp_path / "summary.md"
    out = run_cli(
        example_repo,
        *("promote", "--registry", prefix, "--from", "dev", "--to", "prod"),
        *("--summary-file", str(summary)),
    )
    assert out.returncode == 2, out.stderr
    assert (
        "nothing was promoted" in out.stderr and "`flux: source: tag`" in out.stderr
    ), out.stderr
    text = summary.read_text()
    assert (
        "### Nothing promoted" in text
        and "| api-dev |" in text
        and "| api-prod |" in text
    )
    assert registry.tags(f"{prefix.split('/', 3)[3]}/api-prod") == ["main"]


PUSHED_TO = """version: 1
instances:
  - name: webapp-staging
    namespace: apps
    module: ./modules/webapp
    values: [apps/webapp/common.cue, apps/webapp/staging.yaml]
    artifact: "{registry}/webapp"
    tags: [staging]
  - name: webapp-production
    namespace: apps
    module: ./modules/webapp
    values: [apps/webapp/common.cue, apps/webapp/production.yaml]
    artifact: "{registry}/webapp"
    tags: [production]
  - name: billing
    namespace: staging
    module: ./modules/credentials
    values: [clusters/staging/billing.cue]
    tags: [staging]
    flux: {source: {tag: production}}
"""


def test_a_to_tag_another_target_pushes_is_refused(
    example_repo: GitRepo, registry: Registry, prefix: str, tmp_path: Path
) -> None:
    """First hour, the demo's step 5: `webapp-production` pushes `webapp:production` itself, so
    promoting staging there would make production run the staging render until the next push."""
    example_repo.write(".timoni-flux.yaml", PUSHED_TO)
    example_repo.commit_all("production pushes its own tag")
    push_all(example_repo, prefix)
    production = digest(registry, prefix, "webapp", "production")
    assert production and production != digest(registry, prefix, "webapp", "staging")

    for named in (("--targets", "webapp-staging"), ("--targets", "webapp-production")):
        out = run_cli(
            example_repo,
            *(
                "promote",
                "--registry",
                prefix,
                "--from",
                "staging",
                "--to",
                "production",
                *named,
            ),
        )
        assert out.returncode == 2, out.stderr
        assert (
            f"{prefix}/webapp:production is pushed by target webapp-production"
            in out.stderr
        ), out.stderr
        assert "Promote to a tag only Flux follows" in out.stderr, out.stderr
        assert digest(registry, prefix, "webapp", "production") == production

    # Every target: billing's cluster follows `production` (nobody pushes it): promoted; the webapp
    # targets are skipped, each saying which target owns the tag.
    rc, got, summary, _ = promote(
        example_repo, tmp_path, prefix, "--from", "staging", "--to", "production"
    )
    assert rc == 0, got
    assert got["billing"]["status"] == "promoted"
    for name in ("webapp-staging", "webapp-production"):
        assert got[name]["status"] == "skipped", got[name]
        assert "is pushed by target webapp-production" in got[name]["error"]
    assert digest(registry, prefix, "webapp", "production") == production
    assert "(skipped)" in summary
