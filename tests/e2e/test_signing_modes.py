"""Signing in the modes that render nothing: a promoted digest carries the push's signature, verified
under the promoting run's key; `flux-config` with signing on tells Flux to verify. Real cosign, flux,
registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli
from support.cosign_keys import make_key_pair
from support.registry import Registry
from support.repos import GitRepo
from test_flux_config import crd_errors, objects
from test_promote import digest, setup
from test_signing import PASSWORD, cosign_verify


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A cosign key pair made by the pinned cosign, password-protected."""
    return make_key_pair(tmp_path_factory.mktemp("cosign-keys"), PASSWORD)


def test_a_promoted_digest_is_signed_and_verifies(
    example_repo: GitRepo,
    registry: Registry,
    prefix: str,
    tmp_path: Path,
    keys: dict[str, Path],
) -> None:
    setup(example_repo)
    env = {"COSIGN_KEY": keys["key"].read_text(), "COSIGN_PASSWORD": PASSWORD}
    # Signed by the push: a promotion signs nothing, it checks (tests/e2e/test_trust_promote.py).
    pushed = run_cli(
        example_repo, "push", "--all", "--registry", prefix, "--sign", "cosign", env=env
    )
    assert pushed.returncode == 0, pushed.stderr
    out = tmp_path / "outputs.json"
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
        *("--sign", "cosign", "--output-file", str(out)),
        env=env,
    )
    assert run.returncode == 0, run.stderr
    (art,) = json.loads(json.loads(out.read_text())["artifacts"])
    assert (art["status"], art["signed"]) == ("promoted", True)
    held = digest(registry, prefix, "webapp", "production")
    assert held is not None and art["digest"] == held
    ref = f"{prefix.removeprefix('oci://')}/webapp@{held}"
    verified = cosign_verify(keys["pub"], ref)
    assert verified.returncode == 0, verified.stderr
    assert PASSWORD not in run.stderr + run.stdout + out.read_text()


def test_flux_config_with_signing_asks_flux_to_verify(
    example_repo: GitRepo, keys: dict[str, Path]
) -> None:
    keyed = run_cli(
        example_repo,
        "flux-config",
        "--sign",
        "cosign",
        env={"COSIGN_KEY": keys["key"].read_text(), "COSIGN_PASSWORD": PASSWORD},
    )
    assert keyed.returncode == 0, keyed.stderr
    sources = [o for o in objects(keyed.stdout) if o["kind"] == "OCIRepository"]
    assert sources and all(
        o["spec"]["verify"]
        == {"provider": "cosign", "secretRef": {"name": "cosign-pub"}}
        for o in sources
    )
    assert all(crd_errors(o) == [] for o in sources)
    workflow = "octo-org/gitops/.github/workflows/deploy.yml@refs/heads/main"
    keyless = run_cli(
        example_repo,
        "flux-config",
        "--sign",
        "cosign",
        env={"GITHUB_WORKFLOW_REF": workflow},
    )
    assert keyless.returncode == 0, keyless.stderr
    for o in objects(keyless.stdout):
        if o["kind"] != "OCIRepository":
            continue
        (match,) = o["spec"]["verify"]["matchOIDCIdentity"]
        assert match["issuer"] == "^https://token\\.actions\\.githubusercontent\\.com$"
        assert (
            match["subject"]
            == "^https://github\\.com/octo-org/gitops/\\.github/workflows/deploy\\.yml@refs/heads/main$"
        )
        assert crd_errors(o) == []
