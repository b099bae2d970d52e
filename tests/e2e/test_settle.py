"""settle.reread puts back a tag an older commit's run overwrote, with the very push it made first:
same content, commit and annotations, so the same digest (a repair that dropped the render-inputs
annotation used to give another digest for the same content). Real timoni, flux, git and registry."""

from __future__ import annotations

from pathlib import Path

from conftest import GitRepo, run_cli
from support.registry import Registry

from gitops_action.changes.gitrepo import Repo
from gitops_action.config import targets as config
from gitops_action.push import settle, writes
from gitops_action.push.pipeline import Options
from gitops_action.registry.flux import Flux
from gitops_action.registry.reader import Reader
from gitops_action.render import timoni


def test_a_repaired_tag_gets_the_first_push_s_digest(
    example_repo: GitRepo, registry: Registry, prefix: str, tmp_path: Path
) -> None:
    # The older run's artifact (commit 1) and ours (commit 2), both pushed by the action.
    assert (
        run_cli(
            example_repo, "push", "--registry", prefix, "--targets", "webapp-staging"
        ).returncode
        == 0
    )
    repo_name = prefix.removeprefix(f"oci://{registry.host}/") + "/webapp"
    older = registry.manifest(repo_name, "staging")
    assert older is not None
    values = example_repo.path / "apps/webapp/staging.yaml"
    values.write_text(values.read_text().replace("replicas: 1", "replicas: 2"))
    head = example_repo.commit_all("scale")
    ours = run_cli(
        example_repo, "push", "--registry", prefix, "--targets", "webapp-staging"
    )
    assert ours.returncode == 0, ours.stderr
    first = registry.manifest(repo_name, "staging")
    assert first is not None and first[0] != older[0]
    assert writes.RENDER_INPUTS in first[1]["annotations"]  # type: ignore[operator]

    # The older run's push lands after ours: the tag holds commit 1 again.
    flux = Flux(env={})
    url = f"{prefix}/webapp:staging"
    assert flux.tag(f"{prefix}/webapp@{older[0]}", ["staging"]).ok
    text = (example_repo.path / ".timoni-flux.yaml").read_text()
    files = [
        str(p.relative_to(example_repo.path))
        for p in example_repo.path.rglob("*")
        if p.is_file()
    ]
    targets = config.load(
        text, file=".timoni-flux.yaml", repo_files=files, registry_override=prefix
    ).by_id()
    target = targets["webapp-staging"]
    rendered = timoni.render(
        target,
        repo_root=example_repo.path,
        out_dir=tmp_path / "render",
        cache_dir=tmp_path / "cache",
        timeout=120,
        runtime_from_env=False,
    )
    assert rendered.ok, rendered.stderr
    opts = Options(
        mode="push",
        repo=Repo(example_repo.path),
        root=example_repo.path,
        head=head,
        revision=f"main@sha1:{head}",
        source=f"file://{example_repo.path}",
        flux=flux,
        reader=Reader(flux),
        scratch=tmp_path,
        timoni_identity=timoni.identity(),
    )
    log: list[str] = []
    pending = settle.Settling(
        target, url, first[0], rendered.path, tmp_path / "work", 0.05
    )
    done = settle.reread(pending, opts, log)

    assert done == settle.Settled(first[0]), log
    assert any("an older commit: pushing again" in line for line in log), log
    again = registry.manifest(repo_name, "staging")
    assert again is not None and again[0] == first[0]
