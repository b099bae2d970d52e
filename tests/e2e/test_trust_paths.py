"""Issue 12, item 2: every file a render can reach resolves inside the repository.

Each case is a push of the example repository with one way out planted; the target that would read
it fails with the offending path named, the others are still pushed. Real timoni, flux, git, registry.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import GitRepo
from support.action import ActionRun, run_action
from support.registry import Registry

from gitops_action.config.targets import Target
from gitops_action.render import containment


def push(repo: GitRepo, work: Path, prefix: str, **extra: str) -> ActionRun:
    return run_action(repo.path, work, inputs={"registry": prefix, "all": "true", **extra},
                      payload={"before": "0" * 40, "created": True})  # fmt: skip


def test_a_bundle_module_outside_the_repository_is_refused(
    example_repo: GitRepo, registry: Registry, prefix: str, tmp_path: Path
) -> None:
    """`file://../..` from bundles/ names the repository's parent: timoni would render it."""
    outside = example_repo.path.parent / "modules/webapp"
    outside.parent.mkdir(parents=True)
    # a module that lives next to the repository
    (example_repo.path / "modules/webapp").rename(outside)
    (example_repo.path / "modules/webapp").mkdir()
    for f in outside.rglob("*"):
        if f.is_file():
            copy = example_repo.path / "modules/webapp" / f.relative_to(outside)
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.write_bytes(f.read_bytes())
    platform = example_repo.path / "bundles/platform.cue"
    platform.write_text(
        platform.read_text().replace(
            '"file://../modules/webapp"', '"file://../../modules/webapp"'
        )
    )
    example_repo.commit_all("a bundle module outside the repository")
    run = push(example_repo, tmp_path / "push", prefix)
    assert run.returncode == 1, run.stdout + run.stderr
    by_name = run.by_name()
    assert by_name["platform-staging"]["status"] == "failed"
    assert by_name["platform-staging"]["error"].startswith(
        "../modules/webapp resolves outside the repository (path): refusing to read it "
        f"(bundles[0]: {outside})"
    ), by_name["platform-staging"]["error"]
    assert by_name["webapp-staging"]["status"] == "pushed"
    assert registry.tags(f"{prefix.split('/', 3)[3]}/platform") == []


@pytest.mark.parametrize(
    ("link", "to"),
    [
        # a file deep in the module
        ("modules/webapp/templates/extra.cue", "/etc/hostname"),
        ("modules/webapp/cue.mod/pkg", "/usr/lib"),  # a directory of the module
        ("modules/credentials/templates/loop.cue", "loop.cue"),  # a loop never resolves
    ],
)
def test_a_symlink_anywhere_under_a_module_is_refused(
    example_repo: GitRepo,
    registry: Registry,
    prefix: str,
    tmp_path: Path,
    link: str,
    to: str,
) -> None:
    (example_repo.path / link).parent.mkdir(parents=True, exist_ok=True)
    (example_repo.path / link).symlink_to(to)
    example_repo.commit_all("a way out")
    run = push(example_repo, tmp_path / "push", prefix)
    assert run.returncode == 1, run.stdout + run.stderr
    failed = {a["name"]: a["error"] for a in run.artifacts() if a["status"] == "failed"}
    assert failed, run.stdout
    for error in failed.values():
        assert error.startswith(
            f"{link} resolves outside the repository (symlink): refusing to read it ("
        ), error
    others = {a["status"] for a in run.artifacts() if a["name"] not in failed}
    # (the cases share a registry prefix)
    assert others and others <= {"pushed", "unchanged"}


def test_a_values_file_linked_outside_is_refused(
    example_repo: GitRepo, registry: Registry, prefix: str, tmp_path: Path
) -> None:
    target = tmp_path / "outside.yaml"
    target.write_text("values:\n  replicas: 3\n")
    staging = example_repo.path / "apps/webapp/staging.yaml"
    staging.unlink()
    staging.symlink_to(target)
    example_repo.commit_all("values from outside")
    run = push(example_repo, tmp_path / "push", prefix)
    assert run.by_name()["webapp-staging"]["error"].startswith(
        "apps/webapp/staging.yaml resolves outside the repository (symlink): refusing to read it "
        f"(instances[0]: {target})"
    )
    assert run.by_name()["webapp-production"]["status"] == "pushed"


def test_a_link_inside_the_repository_is_fine(
    example_repo: GitRepo, registry: Registry, prefix: str, tmp_path: Path
) -> None:
    templates = example_repo.path / "modules/webapp/templates"
    (templates / "config.cue").rename(templates / "config.cue.orig")
    (templates / "config.cue").symlink_to("config.cue.orig")
    (example_repo.path / "apps/staging.yaml").symlink_to("webapp/staging.yaml")
    example_repo.commit_all("a link that stays inside")
    run = push(example_repo, tmp_path / "push", prefix)
    assert run.returncode == 0, run.stdout + run.stderr


def test_a_values_path_with_a_comma_is_a_configuration_error(
    example_repo: GitRepo, tmp_path: Path
) -> None:
    config = example_repo.path / ".timoni-flux.yaml"
    config.write_text(
        config.read_text().replace(
            "apps/webapp/staging.yaml]", "'apps/webapp/a,b.yaml']"
        )
    )
    example_repo.commit_all("a comma")
    run = push(example_repo, tmp_path / "push", "oci://127.0.0.1:1/x")
    assert run.returncode == 2, run.stdout + run.stderr
    assert (
        r"instances\[0\].values\[1\]" in run.summary
        and "splits -f on commas" in run.summary
    )
    line = next(
        n for n, t in enumerate(config.read_text().splitlines(), 1) if "a,b.yaml" in t
    )
    assert f"file=.timoni-flux.yaml,line={line}" in run.stdout


def test_a_matched_file_with_a_comma_fails_that_target_alone(tmp_path: Path) -> None:
    t = Target(id="a", kind="instance", name="a", artifact="oci://x/y", tags=("t",),
               files=("clusters/a,b.cue",), key="instances[2] (clusters/a,b.cue)")  # fmt: skip
    assert "splits -f on commas" in containment.escape(tmp_path, t)
