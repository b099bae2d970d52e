"""push.pipeline.dry_run: a render compared with what the tag holds, object by object (new target,
changed, removed, unchanged), and manifests that cannot be read fail the target, not the run."""

from __future__ import annotations

from pathlib import Path

from gitops_action.push.pipeline import dry_run
from gitops_action.registry.oci import Call, Pulled

OK = Call(ok=True, failure="", error="", seconds=0.0)


def configmap(name: str, value: str) -> str:
    return (
        "apiVersion: v1\nkind: ConfigMap\n"
        f"metadata:\n  name: {name}\n  namespace: apps\ndata:\n  v: {value!r}\n"
    )


def render(tmp_path: Path, *docs: str) -> Path:
    path = tmp_path / "rendered.yaml"
    path.write_text("---\n".join(docs))
    return path


def deployed(tmp_path: Path, *docs: str) -> Pulled:
    directory = tmp_path / "deployed"
    directory.mkdir()
    (directory / "manifests.yaml").write_text("---\n".join(docs))
    return Pulled(
        OK, revision="main@sha1:" + "a" * 40, digest="sha256:d", directory=directory
    )


def test_a_new_target_adds_every_object(tmp_path: Path) -> None:
    out = dry_run(render(tmp_path, configmap("a", "1"), configmap("b", "2")), None)
    assert out.status == "dry-run" and out.new_target and out.digest is None
    assert out.diff is not None
    assert out.diff.counts() == {"added": 2, "changed": 0, "removed": 0}


def test_the_diff_against_the_tag(tmp_path: Path) -> None:
    held = deployed(
        tmp_path,
        configmap("same", "1"),
        configmap("edited", "1"),
        configmap("gone", "1"),
    )
    rendered = render(
        tmp_path,
        configmap("same", "1"),
        configmap("edited", "2"),
        configmap("new", "1"),
    )
    out = dry_run(rendered, held)
    assert out.status == "dry-run" and not out.new_target and out.digest == "sha256:d"
    assert out.diff is not None
    assert out.diff.counts() == {"added": 1, "changed": 1, "removed": 1}
    assert out.diff.unchanged == 1
    changed = {c.change: c.key for c in out.diff.changes}
    assert [
        k[-1] for k in (changed["added"], changed["changed"], changed["removed"])
    ] == [
        "new",
        "edited",
        "gone",
    ]


def test_nothing_changed_is_an_empty_diff(tmp_path: Path) -> None:
    doc = configmap("a", "1")
    out = dry_run(render(tmp_path, doc), deployed(tmp_path, doc))
    assert out.diff is not None and not out.diff.changed and out.diff.unchanged == 1


def test_manifests_that_cannot_be_read_fail_the_target(tmp_path: Path) -> None:
    out = dry_run(render(tmp_path, "kind: [unclosed\n"), None)
    assert out.status == "failed" and out.error
    assert out.error.startswith("rendered manifests are not valid YAML")
    held = deployed(tmp_path, configmap("a", "1"))
    assert held.directory is not None
    (held.directory / "manifests.yaml").write_bytes(b"data: \xff\xfe\n")  # not UTF-8
    out = dry_run(render(tmp_path, configmap("a", "1")), held)
    assert out.status == "failed" and out.error
