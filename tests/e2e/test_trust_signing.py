"""Issue 19 (findings 1 and 3): a signature means "this repository built these bytes". A registry
writer (who cannot write to git) must not get the CI key's signature on an artifact of theirs, nor keep
a rollback in place with a forged check record. Real timoni, flux, cosign, registry and git."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest
from conftest import TOOLS, GitRepo
from support.action import ActionRun, run_action
from support.cosign_keys import make_key_pair
from support.registry import Registry

PASSWORD = "Trust-Signing-Pa55"
COMMIT = "timoni-flux-push.commit"
RENDER_INPUTS = "timoni-flux-push.render-inputs"
CHECKED = "timoni-flux-push.checked"
REVISION = "org.opencontainers.image.revision"
SOURCE = "org.opencontainers.image.source"
EVIL = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: intruder, namespace: apps}\ndata: {owned: 'yes'}\n"


@pytest.fixture
def prefix(registry: Registry, request: pytest.FixtureRequest) -> str:
    return f"oci://{registry.host}/ts-{hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:12]}"


@pytest.fixture(scope="module")
def key_pair(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_key_pair(tmp_path_factory.mktemp("cosign-keys"), PASSWORD)


def run(
    repo: GitRepo,
    work: Path,
    prefix: str,
    key: Path,
    before: str = "0" * 40,
    **inputs: str,
) -> ActionRun:
    payload = {
        "before": before,
        "after": repo.head(),
        "created": before == "0" * 40,
        "ref": "refs/heads/main",
    }
    secrets = {"cosign-key": key.read_text(), "cosign-password": PASSWORD}
    full = {"registry": prefix, "sign": "cosign", "timeout": "20s", **secrets, **inputs}
    return run_action(repo.path, work, inputs=full, payload=payload, sha=repo.head())


def cosign_verify(pub: Path, ref: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(TOOLS / "cosign"),
            "verify",
            "--key",
            str(pub),
            "--insecure-ignore-tlog=true",
            ref,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "HOME": str(pub.parent)},
    )


def flux_push(url: str, path: Path, annotations: dict[str, str]) -> str:
    """What a registry writer does with the plain flux CLI: an artifact at the tag, annotations of
    their choosing. Returns its digest."""
    args = [
        str(TOOLS / "flux"),
        "push",
        "artifact",
        url,
        f"--path={path}",
        "--reproducible",
        "-o",
        "json",
    ]
    args += [f"--source={annotations.get(SOURCE, 'https://example.com/x')}"]
    args += [f"--revision={annotations.get(REVISION, 'main@sha1:' + '1' * 40)}"]
    for k, v in annotations.items():
        if k.startswith("timoni-flux-push."):
            args += ["-a", f"{k}={v}"]
    done = subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "TZ": "UTC"},
    )
    assert done.returncode == 0, done.stderr
    return str(json.loads(done.stdout)["digest"])


def layer_files(
    registry: Registry, repository: str, manifest: dict[str, object]
) -> dict[str, bytes]:
    layers = manifest["layers"]
    assert isinstance(layers, list)
    blob = registry.blob(repository, layers[0]["digest"])
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob)), mode="r:") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]


def annotations_of(manifest: dict[str, object]) -> dict[str, str]:
    notes = manifest.get("annotations") or {}
    assert isinstance(notes, dict)
    return {str(k): str(v) for k, v in notes.items()}


def repo_of(prefix: str, registry: Registry, name: str) -> str:
    return prefix.removeprefix(f"oci://{registry.host}/") + "/" + name


def pushed_and_signed(
    example_repo: GitRepo, registry: Registry, prefix: str, work: Path, key: Path
) -> tuple[str, str, dict[str, object]]:
    """A first signed run; the webapp:staging repository, its digest and manifest."""
    first = run(example_repo, work, prefix, key, targets="webapp-staging")
    assert first.returncode == 0, first.stdout + first.stderr
    assert first.by_name()["webapp-staging"]["signed"] is True
    repository = repo_of(prefix, registry, "webapp")
    found = registry.manifest(repository, "staging")
    assert found is not None
    return repository, found[0], found[1]


def assert_repaired(
    again: ActionRun,
    registry: Registry,
    repository: str,
    ours: str,
    forged: str,
    pub: Path,
    host: str,
) -> None:
    """The forged digest got no signature from the key, and the tag holds this repository's render."""
    refused = cosign_verify(pub, f"{host}/{repository}@{forged}")
    assert refused.returncode != 0, (
        f"the registry writer's digest verifies with the CI key:\n{again.stdout}"
    )
    result = again.by_name()["webapp-staging"]
    assert result["status"] == "pushed", result
    assert result["digest"] == ours and result["signed"] is True, result
    found = registry.manifest(repository, "staging")
    assert found is not None and found[0] == ours
    assert cosign_verify(pub, f"{host}/{repository}:staging").returncode == 0


def test_a_registry_writers_artifact_with_copied_annotations_is_not_signed(
    example_repo: GitRepo,
    registry: Registry,
    prefix: str,
    tmp_path: Path,
    key_pair: dict[str, Path],
) -> None:
    repository, ours, manifest = pushed_and_signed(
        example_repo, registry, prefix, tmp_path / "run1", key_pair["key"]
    )
    notes = annotations_of(manifest)
    assert notes.get(RENDER_INPUTS) and notes.get(COMMIT) == example_repo.head()
    # The registry writer's own content at the tag, every annotation copied from the real push.
    evil = tmp_path / "evil"
    evil.mkdir()
    (evil / "manifests.yaml").write_text(EVIL)
    forged = flux_push(f"oci://{registry.host}/{repository}:staging", evil, notes)
    assert forged != ours
    # The job re-run (every target taken again, as the README's "signing turned on" run does).
    again = run(
        example_repo,
        tmp_path / "run2",
        prefix,
        key_pair["key"],
        targets="webapp-staging",
        all="true",
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert_repaired(
        again, registry, repository, ours, forged, key_pair["pub"], registry.host
    )
    assert "(a re-run): not rendered" not in again.stdout


def test_an_extra_file_next_to_the_same_manifests_is_not_the_same_content(
    example_repo: GitRepo,
    registry: Registry,
    prefix: str,
    tmp_path: Path,
    key_pair: dict[str, Path],
) -> None:
    repository, ours, manifest = pushed_and_signed(
        example_repo, registry, prefix, tmp_path / "run1", key_pair["key"]
    )
    files = layer_files(registry, repository, manifest)
    assert list(files) == ["manifests.yaml"]
    # The same manifests.yaml byte for byte, and an extra file a Flux Kustomization applies too. No
    # render-inputs: the run compares the content (no re-run shortcut on the old code either).
    evil = tmp_path / "evil"
    evil.mkdir()
    (evil / "manifests.yaml").write_bytes(files["manifests.yaml"])
    (evil / "evil.yaml").write_text(EVIL)
    notes = {k: v for k, v in annotations_of(manifest).items() if k != RENDER_INPUTS}
    forged = flux_push(f"oci://{registry.host}/{repository}:staging", evil, notes)
    assert forged != ours
    again = run(
        example_repo,
        tmp_path / "run2",
        prefix,
        key_pair["key"],
        targets="webapp-staging",
        all="true",
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert_repaired(
        again, registry, repository, ours, forged, key_pair["pub"], registry.host
    )


def bump(repo: GitRepo) -> str:
    path = repo.path / "apps/webapp/staging.yaml"
    text = path.read_text()
    path.write_text(text.replace('message: "', 'message: "+', 1))
    return repo.commit_all("bump webapp staging")


def test_a_forged_check_record_does_not_keep_a_rollback(
    example_repo: GitRepo,
    registry: Registry,
    prefix: str,
    tmp_path: Path,
    key_pair: dict[str, Path],
) -> None:
    key, host = key_pair["key"], registry.host
    c1 = example_repo.head()
    repository, d1, _ = pushed_and_signed(
        example_repo, registry, prefix, tmp_path / "run1", key
    )
    c2 = bump(example_repo)
    second = run(
        example_repo,
        tmp_path / "run2",
        prefix,
        key,
        before=c1,
        targets="webapp-staging",
    )
    assert second.returncode == 0, second.stdout + second.stderr
    assert {a["name"]: a["status"] for a in second.artifacts()} == {
        "webapp-staging": "pushed"
    }
    # The registry writer moves the tag back to the older (signed) digest...
    back = subprocess.run(
        [str(TOOLS / "flux"), "tag", "artifact", f"oci://{host}/{repository}@{d1}", "--tag", "staging"],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert back.returncode == 0, back.stderr
    # ... and writes the record "head renders that digest" next to it.
    record = tmp_path / "record"
    record.mkdir()
    (record / "checked.json").write_text(
        json.dumps({"tag": "staging", "digest": d1, "commit": c2})
    )
    notes = {COMMIT: c2, CHECKED: d1, REVISION: f"main@sha1:{c2}"}
    flux_push(f"oci://{host}/{repository}:staging.tfp-checked", record, notes)
    # The next push (a commit that touches no target): the rollback is caught up all the same.
    (example_repo.path / "README.md").write_text("notes\n")
    c3 = example_repo.commit_all("notes")
    third = run(
        example_repo,
        tmp_path / "run3",
        prefix,
        key,
        before=c2,
        targets="webapp-staging",
    )
    assert third.returncode == 0, third.stdout + third.stderr
    assert {a["name"]: a["status"] for a in third.artifacts()} == {
        "webapp-staging": "pushed"
    }, third.stdout
    assert registry.revision(repository, "staging") == f"main@sha1:{c3}"


def test_a_record_this_repository_signed_still_saves_the_render(
    example_repo: GitRepo,
    registry: Registry,
    prefix: str,
    tmp_path: Path,
    key_pair: dict[str, Path],
) -> None:
    key = key_pair["key"]
    c1 = example_repo.head()
    repository, d1, _ = pushed_and_signed(
        example_repo, registry, prefix, tmp_path / "run1", key
    )
    # A module refactor that renders the same manifests: unchanged, a signed record written.
    with (example_repo.path / "modules/webapp/templates/service.cue").open("a") as fh:
        fh.write("// refactor: same output\n")
    c2 = example_repo.commit_all("refactor")
    second = run(
        example_repo,
        tmp_path / "run2",
        prefix,
        key,
        before=c1,
        targets="webapp-staging",
    )
    assert second.returncode == 0, second.stdout + second.stderr
    assert {a["name"]: a["status"] for a in second.artifacts()} == {
        "webapp-staging": "unchanged"
    }
    marker = registry.manifest(repository, "staging.tfp-checked")
    assert marker is not None and annotations_of(marker[1])[CHECKED] == d1
    assert (
        cosign_verify(
            key_pair["pub"], f"{registry.host}/{repository}@{marker[0]}"
        ).returncode
        == 0
    )
    # The next commit touches nothing of the target: the signed record counts, nothing is rendered.
    (example_repo.path / "README.md").write_text("notes\n")
    example_repo.commit_all("notes")
    third = run(
        example_repo,
        tmp_path / "run3",
        prefix,
        key,
        before=c2,
        targets="webapp-staging",
    )
    assert third.returncode == 0, third.stdout + third.stderr
    assert third.artifacts() == [], third.stdout


def _layer(*members: tuple[str, str]) -> bytes:
    """A gzip tar like flux's: `./`, then the members (name, kind: file text, or "->target" a link)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        root = tarfile.TarInfo("./")
        root.type = tarfile.DIRTYPE
        tar.addfile(root)
        for name, body in members:
            info = tarfile.TarInfo(name)
            if body.startswith("->"):
                info.type, info.linkname = tarfile.SYMTYPE, body[2:]
                tar.addfile(info)
            else:
                info.size = len(body.encode())
                tar.addfile(info, io.BytesIO(body.encode()))
    return gzip.compress(raw.getvalue(), mtime=0)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("members", "same"),
    [
        ((("manifests.yaml", "a: 1\n"),), True),
        ((("./manifests.yaml", "a: 1\n"),), True),
        ((("manifests.yaml", "a: 2\n"),), False),
        ((("manifests.yaml", "a: 1\n"), ("evil.yaml", EVIL)), False),
        ((("manifests.yaml", "a: 1\n"), ("sub/evil.yaml", EVIL)), False),
        ((("manifests.yaml", "a: 1\n"), ("link.yaml", "->/etc/passwd")), False),
        ((("manifests.yaml", "a: 1\n"), ("../evil.yaml", EVIL)), False),
        ((("evil.yaml", "a: 1\n"),), False),
    ],
)
def test_the_content_check_takes_the_whole_layer(
    tmp_path: Path, members: tuple[tuple[str, str], ...], same: bool
) -> None:
    from gitops_action.push import pipeline
    from gitops_action.registry import oci

    rendered = tmp_path / "manifests.yaml"
    rendered.write_text("a: 1\n")
    deployed = tmp_path / "deployed"
    layer = tmp_path / "layer.tar.gz"
    layer.write_bytes(_layer(*members))
    entries = oci.extract(layer, deployed)
    call = oci.Call(True, "", "", 0.0)
    assert (
        pipeline.same_content(
            oci.Pulled(call, directory=deployed, entries=entries), rendered
        )
        is same
    )
    # The same layer read by flux pull (only what it extracted is known; links are not extracted).
    if not any(body.startswith("->") or ".." in name for name, body in members):
        assert (
            pipeline.same_content(oci.Pulled(call, directory=deployed), rendered)
            is same
        )
