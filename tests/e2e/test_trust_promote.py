"""Issue 19, finding 2: with `sign: cosign`, a promotion moves only what this repository signed.

A registry writer (no git access) puts an unsigned artifact at `from` whose revision names a commit of
the branch's history. The promotion must refuse it before `to` moves, and create no signature: it
never runs `cosign sign`. A `from` the repository's own signed push left is promoted, and its
signature (the one the push made, untouched) verifies at `to`. Real flux, cosign, registry and git;
every check is made with the pinned cosign and the registry's HTTP API, not the code under test.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli
from support.cosign_keys import make_key_pair
from support.registry import Registry
from support.repos import GitRepo
from test_promote import digest, setup
from test_signing import PASSWORD, cosign_verify


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_key_pair(tmp_path_factory.mktemp("cosign-keys"), PASSWORD)


def sig_tag(dig: str) -> str:
    return f"{dig.replace(':', '-')}.sig"


def promote_signed(
    repo: GitRepo, prefix: str, out: Path, key: Path, *args: str
) -> tuple[int, dict[str, Any]]:
    env = {"COSIGN_KEY": key.read_text(), "COSIGN_PASSWORD": PASSWORD}
    run = run_cli(
        repo,
        "promote",
        *(
            "--registry",
            prefix,
            "--from",
            "staging",
            "--to",
            "production",
            "--targets",
            "webapp",
        ),
        *(
            "--sign",
            "cosign",
            "--output-file",
            str(out),
            "--summary-file",
            str(out.with_suffix(".md")),
        ),
        env=env,
    )
    assert "Traceback" not in run.stderr, run.stderr
    assert PASSWORD not in run.stderr + run.stdout + out.read_text()
    (art,) = json.loads(json.loads(out.read_text())["artifacts"])
    return run.returncode, art


def test_an_unsigned_from_is_not_promoted_nor_signed(
    example_repo: GitRepo,
    registry: Registry,
    prefix: str,
    tmp_path: Path,
    keys: dict[str, Path],
) -> None:
    ancestor = setup(example_repo)
    example_repo.write("docs.md", "later\n")
    example_repo.commit_all("a later commit")
    # The registry writer's artifact: plain `flux push artifact`, revision naming an ancestor commit.
    planted = tmp_path / "planted"
    planted.mkdir()
    (planted / "manifests.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: planted}\n"
    )
    subprocess.run(
        [
            *(
                "flux",
                "push",
                "artifact",
                f"{prefix}/webapp:staging",
                f"--path={planted}",
            ),
            *(
                "--source=https://github.com/octo-org/gitops",
                f"--revision=main@sha1:{ancestor}",
            ),
        ],
        check=True,
        capture_output=True,
    )
    repository = f"{prefix.split('/', 3)[3]}/webapp"
    bad = digest(registry, prefix, "webapp", "staging")
    assert bad is not None

    rc, art = promote_signed(example_repo, prefix, tmp_path / "out.json", keys["key"])
    assert rc == 1 and art["status"] == "failed", art
    assert "no valid signature" in art["error"] and art["signed"] is False, art["error"]
    # Nothing moved, no signature made: `production` does not exist, the planted digest has no
    # `.sig` tag and cosign refuses it.
    assert digest(registry, prefix, "webapp", "production") is None
    assert registry.tags(repository) == ["staging"]
    refused = cosign_verify(
        keys["pub"], f"{prefix.removeprefix('oci://')}/webapp@{bad}"
    )
    assert refused.returncode != 0
    summary = (tmp_path / "out.md").read_text()
    assert "signs nothing" in summary


def test_a_signed_from_is_promoted_with_its_own_signature(
    example_repo: GitRepo,
    registry: Registry,
    prefix: str,
    tmp_path: Path,
    keys: dict[str, Path],
) -> None:
    setup(example_repo)
    env = {"COSIGN_KEY": keys["key"].read_text(), "COSIGN_PASSWORD": PASSWORD}
    pushed = run_cli(
        example_repo, "push", "--all", "--registry", prefix, "--sign", "cosign", env=env
    )
    assert pushed.returncode == 0, pushed.stderr
    repository = f"{prefix.split('/', 3)[3]}/webapp"
    good = digest(registry, prefix, "webapp", "staging")
    assert good is not None
    signature = registry.manifest(repository, sig_tag(good))
    assert signature is not None  # the push signed it

    rc, art = promote_signed(example_repo, prefix, tmp_path / "out.json", keys["key"])
    assert rc == 0, art
    assert (art["status"], art["signed"], art["digest"]) == ("promoted", True, good)
    assert art["signature"] == f"{prefix}/webapp:{sig_tag(good)}"
    assert digest(registry, prefix, "webapp", "production") == good
    verified = cosign_verify(
        keys["pub"], f"{prefix.removeprefix('oci://')}/webapp@{good}"
    )
    assert verified.returncode == 0, verified.stderr
    # The promotion signed nothing: the signature is the push's, byte for byte.
    assert registry.manifest(repository, sig_tag(good)) == signature
    assert sorted(registry.tags(repository)) == sorted(
        ["production", "staging", sig_tag(good)]
    )


def test_without_signing_the_summary_says_from_is_trusted(
    example_repo: GitRepo, prefix: str, tmp_path: Path
) -> None:
    setup(example_repo)
    assert run_cli(example_repo, "push", "--all", "--registry", prefix).returncode == 0
    summary = tmp_path / "summary.md"
    run = run_cli(
        example_repo,
        "promote",
        *(
            "--registry",
            prefix,
            "--from",
            "staging",
            "--to",
            "production",
            "--targets",
            "webapp",
        ),
        *("--summary-file", str(summary)),
    )
    assert run.returncode == 0, run.stderr
    text = summary.read_text()
    assert "trusted as is" in text and "`staging`" in text
