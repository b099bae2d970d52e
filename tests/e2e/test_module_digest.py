"""A module pinned by digest (`digest:`, timoni build --digest): the registry module seeded with the
real `timoni mod push`, rendered and pushed by the real pipeline."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import EXAMPLES, run_cli
from support.registry import Registry
from support.repos import GitRepo

WRONG = "sha256:" + "0" * 64


def seed_module(registry: Registry, prefix: str) -> tuple[str, str]:
    """`timoni mod push` the example's webapp module; (its oci:// URL, its digest read over HTTP)."""
    url = f"{prefix}-modules/webapp"
    subprocess.run(
        ["timoni", "mod", "push", str(EXAMPLES / "modules/webapp"), url, "-v", "1.0.0"],
        check=True,
        capture_output=True,
    )
    found = registry.manifest(f"{url.split('/', 3)[3]}", "1.0.0")
    assert found is not None
    return url, found[0]


def entry(name: str, module: str, *, version: str = "", digest: str = "") -> str:
    lines = [
        f"  - name: {name}",
        "    namespace: apps",
        f"    module: {module}",
        *([f"    version: {version}"] if version else []),
        *([f"    digest: {digest}"] if digest else []),
        "    values: [apps/webapp/common.cue, apps/webapp/staging.yaml]",
        f'    artifact: "{{registry}}/{name}"',
        "    tags: [staging]",
    ]
    return "\n".join(lines) + "\n"


def push(
    repo: GitRepo, prefix: str, tmp: Path
) -> tuple[int, dict[str, dict[str, object]], str]:
    out_file = tmp / "outputs.json"
    run = run_cli(
        repo, "push", "--all", "--registry", prefix, "--output-file", str(out_file)
    )
    assert "Traceback" not in run.stderr, run.stderr
    artifacts = json.loads(json.loads(out_file.read_text())["artifacts"])
    return run.returncode, {a["name"]: a for a in artifacts}, run.stderr


def test_a_module_pinned_by_digest_renders_and_a_wrong_digest_fails_its_target(
    example_repo: GitRepo, registry: Registry, prefix: str, tmp_path: Path
) -> None:
    module, digest = seed_module(registry, prefix)
    example_repo.write(
        ".timoni-flux.yaml",
        "version: 1\ninstances:\n"
        + entry("pinned", module, version="1.0.0", digest=digest)
        + entry("pinned-by-digest-alone", module, digest=digest)
        + entry("wrong", module, version="1.0.0", digest=WRONG)
        + entry("wrong-alone", module, digest=WRONG),
    )
    example_repo.commit_all("modules pinned by digest")
    rc, got, stderr = push(example_repo, prefix, tmp_path)
    assert rc == 1, stderr
    base = prefix.split("/", 3)[3]
    for name in ("pinned", "pinned-by-digest-alone"):
        assert got[name]["status"] == "pushed", got[name]
        found = registry.manifest(f"{base}/{name}", "staging")
        assert found is not None and found[0] == got[name]["digest"]
    for name in ("wrong", "wrong-alone"):
        assert (
            got[name]["status"] == "failed"
            and registry.manifest(f"{base}/{name}", "staging") is None
        )
        error = str(got[name]["error"])
        assert f"module {module} is not at digest {WRONG}" in error, error
    # what the version holds instead
    assert f"got {digest}" in str(got["wrong"]["error"])
    assert "manifest unknown" in str(got["wrong-alone"]["error"]).lower()


def test_digest_needs_a_registry_module_and_a_sha256(example_repo: GitRepo) -> None:
    for extra, needle in (
        (
            f"    digest: {WRONG}\n",
            "instances[0].digest: `digest` pins a module from a registry",
        ),
        (
            "    digest: sha256:abc\n",
            "instances[0].digest: 'sha256:abc' does not match",
        ),
    ):
        text = (EXAMPLES / ".timoni-flux.yaml").read_text()
        marker = "    module: ./modules/webapp\n"
        example_repo.write(".timoni-flux.yaml", text.replace(marker, marker + extra, 1))
        example_repo.commit_all("digest on a local module")
        out = run_cli(example_repo, "plan", "--all")
        line = text.split(marker, 1)[0].count("\n") + 2
        assert (
            out.returncode == 2 and f".timoni-flux.yaml:{line}: {needle}" in out.stderr
        ), out.stderr
