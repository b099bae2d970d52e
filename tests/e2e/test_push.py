"""Issue 4: the main job end to end, with real timoni, real flux and the real registry."""

from __future__ import annotations

import os
import subprocess
from dataclasses import replace
from pathlib import Path

from conftest import GitRepo, run_cli
from support.action import annotations, run_action
from support.registry import Registry

from gitops_action.changes.gitrepo import Repo
from gitops_action.config import targets as config
from gitops_action.push import pipeline
from gitops_action.registry.flux import Flux
from gitops_action.registry.reader import Reader

ALL = {
    "webapp-staging",
    "webapp-production",
    "staging/billing",
    "production/billing",
    "platform-staging",
}


def repo_path(artifact: str, registry: Registry) -> str:
    return artifact.removeprefix(f"oci://{registry.host}/")


def push(
    repo: GitRepo, tmp: Path, prefix: str, *, before: str | None = None, **inputs: str
):  # type: ignore[no-untyped-def]
    payload = {
        "before": before or "0" * 40,
        "after": repo.head(),
        "created": before is None,
        "deleted": False,
        "forced": False,
        "ref": "refs/heads/main",
    }
    return run_action(
        repo.path,
        tmp,
        inputs={"registry": prefix, **inputs},
        payload=payload,
        sha=repo.head(),
    )


def test_first_push_second_commit_third_commit(
    example_repo: GitRepo, registry: Registry, prefix: str, tmp_path: Path
) -> None:
    first = push(example_repo, tmp_path / "run1", prefix)
    assert first.returncode == 0, first.stdout + first.stderr
    assert {a["name"] for a in first.artifacts()} == ALL
    assert {a["status"] for a in first.artifacts()} == {"pushed"}
    assert first.outputs["pushed"] == "5" and first.outputs["failed"] == "0"
    sha1 = example_repo.head()

    # Extra tags point at the pushed digest.
    prod = first.by_name()["webapp-production"]
    stable = registry.manifest(repo_path(prod["artifact"], registry), "stable")
    assert stable is not None and stable[0] == prod["digest"]

    # Second commit: one values file changes, exactly one instance is pushed.
    values = example_repo.path / "apps/webapp/staging.yaml"
    values.write_text(values.read_text().replace("replicas: 1", "replicas: 4"))
    sha2 = example_repo.commit_all("scale staging")
    second = push(example_repo, tmp_path / "run2", prefix, before=sha1)
    assert second.returncode == 0, second.stdout + second.stderr
    assert [a["name"] for a in second.artifacts()] == ["webapp-staging"]
    art = second.by_name()["webapp-staging"]
    assert art["status"] == "pushed"
    assert art["revision"] == f"main@sha1:{sha2}"
    found = registry.manifest(repo_path(art["artifact"], registry), "staging")
    assert found is not None
    digest, manifest = found
    assert art["digest"] == digest
    assert art["url"] == f"{art['artifact']}@{digest}"
    assert (
        manifest["annotations"]["org.opencontainers.image.revision"]
        == f"main@sha1:{sha2}"
    )  # type: ignore[index]
    assert f"`{digest.split(':')[1][:12]}`" in second.summary
    assert art["url"] in second.summary

    # Third commit: the file changes but renders the same: `unchanged`, the existing digest, no push.
    values.write_text("# a comment only\n" + values.read_text())
    example_repo.commit_all("comment")
    third = push(example_repo, tmp_path / "run3", prefix, before=sha2)
    assert third.returncode == 0, third.stdout + third.stderr
    assert [(a["name"], a["status"]) for a in third.artifacts()] == [
        ("webapp-staging", "unchanged")
    ]
    assert third.by_name()["webapp-staging"]["digest"] == digest
    again = registry.manifest(repo_path(art["artifact"], registry), "staging")
    assert again is not None and again[0] == digest
    assert (third.outputs["pushed"], third.outputs["unchanged"]) == ("0", "1")


def test_broken_values_file_fails_only_its_target(
    example_repo: GitRepo, registry: Registry, prefix: str, tmp_path: Path
) -> None:
    first = push(example_repo, tmp_path / "run1", prefix)
    assert first.returncode == 0
    before = {a["name"]: a["digest"] for a in first.artifacts()}
    sha1 = example_repo.head()

    staging = example_repo.path / "apps/webapp/staging.yaml"
    staging.write_text(staging.read_text().replace("replicas: 1", 'replicas: "three"'))
    common = example_repo.path / "apps/webapp/common.cue"
    # also touches production: it must still be pushed
    common.write_text(common.read_text() + "\n")
    example_repo.commit_all("break staging")
    run = push(example_repo, tmp_path / "run2", prefix, before=sha1)
    assert run.returncode == 1
    status = {a["name"]: a["status"] for a in run.artifacts()}
    assert status["webapp-staging"] == "failed"
    assert status["webapp-production"] in ("pushed", "unchanged")
    assert run.outputs["failed"] == "1"
    err = run.by_name()["webapp-staging"]["error"]
    assert "apps/webapp/staging.yaml" in err and "replicas" in err
    line = next(
        n for n, t in enumerate(staging.read_text().splitlines(), 1) if "replicas" in t
    )
    notes = [
        a for a in annotations(run.stdout) if a["level"] == "error" and a.get("file")
    ]
    assert {"file": "apps/webapp/staging.yaml", "line": str(line)} in [
        {"file": a["file"], "line": a["line"]} for a in notes
    ], run.stdout
    # The tag still holds the previous digest.
    found = registry.manifest(
        repo_path(run.by_name()["webapp-staging"]["artifact"], registry), "staging"
    )
    assert found is not None and found[0] == before["webapp-staging"]


def test_never_moves_a_tag_backwards(
    example_repo: GitRepo, registry: Registry, prefix: str, tmp_path: Path
) -> None:
    sha1 = example_repo.head()
    values = example_repo.path / "apps/webapp/staging.yaml"
    values.write_text(values.read_text().replace("replicas: 1", "replicas: 2"))
    sha2 = example_repo.commit_all("newer")
    newer = push(example_repo, tmp_path / "newer", prefix, targets="webapp-staging")
    assert newer.by_name()["webapp-staging"]["status"] == "pushed"
    # The run for the older commit finishes last: it must not move the tag back.
    example_repo.git("checkout", "-q", sha1)
    older = push(example_repo, tmp_path / "older", prefix, targets="webapp-staging")
    art = older.by_name()["webapp-staging"]
    assert art["status"] == "skipped", older.stdout
    assert sha2 in art["error"]
    assert older.returncode == 0
    assert (
        registry.revision(repo_path(art["artifact"], registry), "staging")
        == f"main@sha1:{sha2}"
    )


def test_refused_credentials_fail_clearly_and_never_leak(
    example_repo: GitRepo, auth_registry: Registry, tmp_path: Path
) -> None:
    assert auth_registry.ca_file is not None and auth_registry.auth is not None
    env = {"SSL_CERT_FILE": str(auth_registry.ca_file)}
    wrong = "Wr0ng-Pa55word-Never-Printed"
    run = run_action(
        example_repo.path,
        tmp_path / "wrong",
        inputs={
            "registry": f"oci://{auth_registry.host}/creds",
            "registry-username": "ci-user",
            "registry-password": wrong,
            "targets": "webapp-staging",
        },
        payload={"before": "0" * 40, "created": True},
        env=env,
    )
    assert run.returncode == 1
    art = run.by_name()["webapp-staging"]
    assert art["status"] == "failed"
    assert "refused the credentials" in art["error"]
    # Masked before anything else is printed (the runner accepts `::add-mask ::` too).
    assert run.stdout.startswith(f"::add-mask ::{wrong}\n")
    rest = run.stdout.replace(f"::add-mask ::{wrong}", "")
    for text in (rest, run.stderr, run.summary, *run.outputs.values()):
        assert wrong not in text

    good = run_action(
        example_repo.path,
        tmp_path / "good",
        inputs={
            "registry": f"oci://{auth_registry.host}/creds",
            "registry-username": auth_registry.auth[0],
            "registry-password": auth_registry.auth[1],
            "targets": "webapp-staging",
        },
        payload={"before": "0" * 40, "created": True},
        env=env,
    )
    assert good.returncode == 0, good.stdout + good.stderr
    assert good.by_name()["webapp-staging"]["status"] == "pushed"
    assert auth_registry.auth[1] not in good.stdout.replace(
        f"::add-mask ::{auth_registry.auth[1]}", ""
    )


def test_uncommitted_changes_are_never_pushed_as_the_commit(
    example_repo: GitRepo, registry: Registry, prefix: str, tmp_path: Path
) -> None:
    staging = example_repo.path / "apps/webapp/staging.yaml"
    committed = staging.read_text()
    staging.write_text(committed.replace("replicas: 1", "replicas: 9"))  # not committed
    out = run_cli(
        example_repo,
        "push",
        "--registry",
        prefix,
        "--targets",
        "webapp-staging",
        "--output-file",
        str(tmp_path / "out.json"),
    )
    assert out.returncode == 0, out.stderr
    assert "uncommitted changes" in out.stderr
    pulled = tmp_path / "pulled"
    pulled.mkdir()
    subprocess.run(
        ["flux", "pull", "artifact", f"{prefix}/webapp:staging", "-o", str(pulled)],
        check=True,
        capture_output=True,
    )
    text = (pulled / "manifests.yaml").read_text()
    assert "replicas: 1" in text and "replicas: 9" not in text
    assert staging.read_text() != committed  # the user's work tree is left alone


RENDER_INPUTS = "timoni-flux-push.render-inputs"
NOT_RENDERED = (
    "holds this commit's render from the same inputs (a re-run): not rendered"
)
INSTANCES = ALL - {"platform-staging"}  # local modules; the bundle always renders


def log_group(stdout: str, target: str) -> str:
    start = stdout.index(f"::group ::{target}: ")
    return stdout[start : stdout.index("::endgroup::", start)]


def test_a_rerun_renders_only_what_it_cannot_vouch_for(
    example_repo: GitRepo, registry: Registry, prefix: str, tmp_path: Path
) -> None:
    first = push(example_repo, tmp_path / "run1", prefix)
    assert first.returncode == 0 and first.outputs["pushed"] == "5", (
        first.stdout + first.stderr
    )
    for name, art in first.by_name().items():
        found = registry.manifest(repo_path(art["artifact"], registry), art["tags"][0])
        assert found is not None
        notes = found[1]["annotations"]
        assert isinstance(notes, dict)
        assert (RENDER_INPUTS in notes) == (name in INSTANCES), (name, notes)
        assert str(notes.get(RENDER_INPUTS, "sha256:")).startswith("sha256:")

    # Re-running the same commit: every tag already holds it. The instances are not rendered again;
    # the bundle is (runtime values and remote modules can change its render), and compared.
    # (`all`: a re-run of a new-branch event plans nothing now that every tag holds this commit.)
    again = push(example_repo, tmp_path / "run2", prefix, all="true")
    assert again.returncode == 0, again.stdout + again.stderr
    assert {a["name"]: a["status"] for a in again.artifacts()} == dict.fromkeys(
        ALL, "unchanged"
    )
    assert {n: a["digest"] for n, a in again.by_name().items()} == {
        n: a["digest"] for n, a in first.by_name().items()
    }
    for name in ALL:
        assert (NOT_RENDERED in log_group(again.stdout, name)) == (name in INSTANCES), (
            name
        )

    # The same commit at the tag, but pushed by something else (no render-inputs annotation): the
    # action cannot vouch for it, so it renders and compares. Same content: `unchanged`.
    staging = first.by_name()["webapp-staging"]
    rendered = tmp_path / "render" / "manifests.yaml"
    rendered.parent.mkdir()
    built = subprocess.run(
        [
            *("timoni", "build", "webapp-staging", "./modules/webapp", "-n", "apps"),
            *("-f", "apps/webapp/common.cue", "-f", "apps/webapp/staging.yaml"),
        ],
        cwd=example_repo.path,
        capture_output=True,
        check=True,
    )
    rendered.write_bytes(built.stdout)
    other = subprocess.run(
        [
            *(
                "flux",
                "push",
                "artifact",
                f"{staging['artifact']}:staging",
                f"--path={rendered}",
            ),
            *(
                "--source=elsewhere",
                f"--revision={staging['revision']}",
                "--reproducible",
            ),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "TZ": "UTC"},
        check=False,
    )
    assert other.returncode == 0, other.stderr
    third = push(
        example_repo, tmp_path / "run3", prefix, targets="webapp-staging", all="true"
    )
    assert third.returncode == 0, third.stdout + third.stderr
    assert third.by_name()["webapp-staging"]["status"] == "unchanged"
    assert NOT_RENDERED not in log_group(third.stdout, "webapp-staging")


def test_render_inputs_follow_everything_a_render_depends_on(
    example_repo: GitRepo, tmp_path: Path
) -> None:
    text = (example_repo.path / ".timoni-flux.yaml").read_text()
    files = [
        str(p.relative_to(example_repo.path))
        for p in example_repo.path.rglob("*")
        if p.is_file()
    ]
    targets = {
        t.id: t
        for t in config.load(
            text, file="c", repo_files=files, registry_override="oci://r/x"
        ).targets
    }
    flux = Flux(env={})
    opts = pipeline.Options(
        mode="push",
        repo=Repo(example_repo.path),
        root=example_repo.path,
        head="a" * 40,
        revision="main@sha1:" + "a" * 40,
        source="s",
        flux=flux,
        reader=Reader(flux),
        scratch=tmp_path,
        timoni_identity="/usr/bin/timoni:100:1",
    )
    staging = targets["webapp-staging"]
    key = pipeline.render_inputs(staging, opts)
    assert key.startswith("sha256:") and key == pipeline.render_inputs(
        staging, replace(opts)
    )
    different = [
        pipeline.render_inputs(staging, replace(opts, head="b" * 40)),
        pipeline.render_inputs(
            staging, replace(opts, timoni_identity="/usr/bin/timoni:101:2")
        ),
        pipeline.render_inputs(replace(staging, files=staging.files[:1]), opts),
        pipeline.render_inputs(replace(staging, namespace="other"), opts),
        pipeline.render_inputs(targets["webapp-production"], opts),
    ]
    assert key not in different and len(set(different)) == len(different)
    never = [
        pipeline.render_inputs(targets["platform-staging"], opts),  # a bundle
        pipeline.render_inputs(replace(staging, module="oci://ghcr.io/x/module"), opts),
        pipeline.render_inputs(staging, replace(opts, mode="dry-run")),
        pipeline.render_inputs(staging, replace(opts, skip_unchanged=False)),
        pipeline.render_inputs(staging, replace(opts, timoni_identity="")),
    ]
    assert never == [""] * len(never)
