"""Issue 13: every pushed digest signed with cosign and verified, end to end: the real registry, the
pinned cosign and flux, a key pair generated here, no transparency log (offline)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, TOOLS, GitRepo
from support.action import ActionRun, run_action
from support.cosign_keys import make_key_pair
from support.registry import Registry

from gitops_action.sign import signing

PASSWORD = "Cosign-Key-Pa55-Right"
WRONG = "Cosign-Key-Pa55-Wrong"
ALL = {
    "webapp-staging",
    "webapp-production",
    "staging/billing",
    "production/billing",
    "platform-staging",
}


@pytest.fixture(scope="module")
def key_pair(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A cosign key pair made by the pinned cosign, password-protected."""
    return make_key_pair(tmp_path_factory.mktemp("cosign-keys"), PASSWORD)


def test_cosign_is_the_pinned_version() -> None:
    pins = dict(
        ln.split("=", 1) for ln in (ROOT / "tools/versions.env").read_text().splitlines()
        if "=" in ln and not ln.startswith("#")
    )  # fmt: skip
    done = subprocess.run(
        [str(TOOLS / "cosign"), "version"], capture_output=True, text=True, check=True
    )
    assert re.search(
        rf"GitVersion:\s+v{re.escape(pins['COSIGN_VERSION'])}\n",
        done.stdout + done.stderr,
    )


def secret_forms(key: Path) -> list[str]:
    """What must never be printed: both passwords, the key, and each line of its body."""
    lines = [
        ln for ln in key.read_text().splitlines() if ln and not ln.startswith("-----")
    ]
    return [PASSWORD, WRONG, key.read_text().strip(), *lines]


def assert_nothing_leaks(run: ActionRun, key: Path) -> None:
    unmasked = re.sub(r"^::add-mask ?::.*$", "", run.stdout, flags=re.M)
    for where, text in (
        ("stdout", unmasked),
        ("stderr", run.stderr),
        ("summary", run.summary),
        ("outputs", json.dumps(run.outputs)),
    ):
        for secret in secret_forms(key):
            assert secret not in text, f"a secret ({secret[:6]}...) is in the {where}"


def push(repo: GitRepo, work: Path, prefix: str, **inputs: str) -> ActionRun:
    payload = {
        "before": "0" * 40,
        "after": repo.head(),
        "created": True,
        "ref": "refs/heads/main",
    }
    inputs = {"registry": prefix, **inputs}
    return run_action(repo.path, work, inputs=inputs, payload=payload, sha=repo.head())


def signed_push(
    repo: GitRepo,
    work: Path,
    prefix: str,
    key: Path,
    password: str = PASSWORD,
    **inputs: str,
) -> ActionRun:
    secrets = {"cosign-key": key.read_text(), "cosign-password": password}
    return push(repo, work, prefix, sign="cosign", **secrets, **inputs)


def cosign_verify(pub: Path, ref: str) -> subprocess.CompletedProcess[str]:
    """`cosign verify --key` with the pinned cosign, as a user checks by hand."""
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


def repository(artifact: str, registry: Registry) -> str:
    return artifact.removeprefix(f"oci://{registry.host}/")


def signatures(
    registry: Registry, artifacts: list[dict[str, Any]]
) -> dict[str, tuple[str, int]]:
    """Per artifact repository: its `.sig` tags and, for each, the manifest digest and layer count
    (cosign adds one layer per signature: a second signature changes both)."""
    found: dict[str, tuple[str, int]] = {}
    for repo in sorted({repository(a["artifact"], registry) for a in artifacts}):
        for tag in registry.tags(repo):
            if tag.endswith(".sig"):
                got = registry.manifest(repo, tag)
                assert got is not None
                layers = got[1]["layers"]
                assert isinstance(layers, list)
                found[f"{repo}:{tag}"] = (got[0], len(layers))
    return found


def test_every_pushed_digest_is_signed_verified_and_reported(
    example_repo: GitRepo,
    registry: Registry,
    prefix: str,
    tmp_path: Path,
    key_pair: dict[str, Path],
) -> None:
    run = signed_push(example_repo, tmp_path / "run1", prefix, key_pair["key"])
    assert run.returncode == 0, run.stdout + run.stderr
    arts = run.artifacts()
    assert {a["name"] for a in arts} == ALL and {a["status"] for a in arts} == {
        "pushed"
    }
    for a in arts:
        assert a["signed"] is True, a
        assert a["signature"] == f"{a['artifact']}:{a['digest'].replace(':', '-')}.sig"
        # The user's own check, with the public key cosign generated (not the one the action derived).
        checked = cosign_verify(key_pair["pub"], a["url"].removeprefix("oci://"))
        assert checked.returncode == 0, checked.stderr
        # ... and the tag the run moved resolves to that signed digest.
        for tag in a["tags"]:
            by_tag = cosign_verify(
                key_pair["pub"], f"{a['artifact'].removeprefix('oci://')}:{tag}"
            )
            assert by_tag.returncode == 0, (tag, by_tag.stderr)
    sigs = signatures(registry, arts)
    assert len(sigs) == len({a["digest"] for a in arts}) and {
        n for _, n in sigs.values()
    } == {1}
    # Never a tag: every signature is stored for a digest.
    assert all(re.search(r":sha256-[0-9a-f]{64}\.sig$", s) for s in sigs)

    # The summary shows the Flux `verify` block once, with the public key it needs.
    assert (
        run.summary.count(
            "  verify:\n    provider: cosign\n    secretRef:\n      name: cosign-pub"
        )
        == 1
    )
    assert key_pair["pub"].read_text().strip() in run.summary
    assert "5 digest(s) carry a cosign signature" in run.summary
    assert "pushed, signed" in run.summary
    assert "signed and verified" in run.stdout
    assert_nothing_leaks(run, key_pair["key"])

    # An artifact pushed afterwards by plain flux (no signing) fails verification.
    staging = next(a for a in arts if a["name"] == "webapp-staging")
    other = tmp_path / "other"
    other.mkdir()
    (other / "all.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: intruder}\n"
    )
    ref = f"{staging['artifact'].removeprefix('oci://')}:{staging['tags'][0]}"
    subprocess.run(
        [str(TOOLS / "flux"), "push", "artifact", f"oci://{ref}", f"--path={other}",
         "--source=https://example.com/x", "--revision=main@sha1:" + "1" * 40],
        check=True, capture_output=True, timeout=120, env={**os.environ, "TZ": "UTC"},
    )  # fmt: skip
    refused = cosign_verify(key_pair["pub"], ref)
    assert refused.returncode != 0 and "no signatures found" in refused.stderr, (
        refused.stderr
    )


def test_a_rerun_signs_only_what_has_no_signature(
    example_repo: GitRepo,
    registry: Registry,
    prefix: str,
    tmp_path: Path,
    key_pair: dict[str, Path],
) -> None:
    # Pushed without signing: nothing is signed, the outputs say so.
    plain = push(example_repo, tmp_path / "plain", prefix)
    assert plain.returncode == 0, plain.stdout + plain.stderr
    assert {(a["signed"], a["signature"]) for a in plain.artifacts()} == {(False, None)}
    assert (
        signatures(registry, plain.artifacts()) == {}
        and "### Signatures" not in plain.summary
    )

    # A dry run with signing on signs nothing either.
    # (`all`: with every tag at this commit, a plan from the tags takes no target.)
    dry = push(example_repo, tmp_path / "dry", prefix, mode="dry-run", sign="cosign", all="true",
               **{"cosign-key": key_pair["key"].read_text(), "cosign-password": PASSWORD})  # fmt: skip
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert {a["status"] for a in dry.artifacts()} == {"dry-run"}
    assert (
        signatures(registry, plain.artifacts()) == {}
        and "### Signatures" not in dry.summary
    )

    # Signing turned on, same commit, once with `all` (the README says so): every target is
    # `unchanged`, and its digest gets signed now.
    first = signed_push(
        example_repo, tmp_path / "first", prefix, key_pair["key"], all="true"
    )
    assert first.returncode == 0, first.stdout + first.stderr
    assert {(a["status"], a["signed"]) for a in first.artifacts()} == {
        ("unchanged", True)
    }
    before = signatures(registry, first.artifacts())
    assert len(before) == 5 and {n for _, n in before.values()} == {1}

    # A re-run with nothing changed plans nothing, so it signs nothing.
    idle = signed_push(example_repo, tmp_path / "idle", prefix, key_pair["key"])
    assert idle.returncode == 0 and idle.artifacts() == [], idle.stdout + idle.stderr
    assert signatures(registry, first.artifacts()) == before

    # Every target taken again: nothing is signed again (same `.sig` manifests, one signature each).
    again = signed_push(
        example_repo, tmp_path / "again", prefix, key_pair["key"], all="true"
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert {(a["status"], a["signed"]) for a in again.artifacts()} == {
        ("unchanged", True)
    }
    assert signatures(registry, again.artifacts()) == before
    assert (
        again.stdout.count("already signed") == 5
        and "signed and verified" not in again.stdout
    )
    assert_nothing_leaks(again, key_pair["key"])


def test_wrong_password_fails_the_targets_and_leaks_nothing(
    example_repo: GitRepo,
    registry: Registry,
    prefix: str,
    tmp_path: Path,
    key_pair: dict[str, Path],
) -> None:
    run = signed_push(
        example_repo, tmp_path / "run", prefix, key_pair["key"], password=WRONG
    )
    assert run.returncode == 1, run.stdout + run.stderr
    arts = run.artifacts()
    assert {a["status"] for a in arts} == {"failed"} and run.outputs["failed"] == "5"
    for a in arts:
        assert a["error"].startswith("signing failed: "), a["error"]
        assert "could not be decrypted with cosign-password" in a["error"]
        assert a["signed"] is False and a["signature"] is None
        # The push stays: the tag holds the pushed digest, which is still reported.
        held = registry.manifest(repository(a["artifact"], registry), a["tags"][0])
        assert held is not None and held[0] == a["digest"]
    assert signatures(registry, arts) == {}
    assert "Nothing was signed" in run.summary and "wrong password" in run.summary
    assert_nothing_leaks(run, key_pair["key"])


def test_keyless_without_an_oidc_token_says_what_the_job_needs(
    example_repo: GitRepo, registry: Registry, prefix: str, tmp_path: Path
) -> None:
    """Keyless signing is wired to the Actions runtime's token; without `id-token: write` the runner
    sets no ACTIONS_ID_TOKEN_REQUEST_* variables, and the run says so (Fulcio cannot be reached here)."""
    run = push(
        example_repo, tmp_path / "run", prefix, sign="cosign", targets="webapp-staging"
    )
    assert run.returncode == 1, run.stdout + run.stderr
    (art,) = run.artifacts()
    assert art["status"] == "failed" and art["digest"] and art["signed"] is False
    assert "signing failed: keyless signing needs a GitHub OIDC token" in art["error"]
    assert "id-token: write" in art["error"] and "Nothing was signed" in run.summary
    assert (
        signatures(registry, [art]) == {} and "Traceback" not in run.stdout + run.stderr
    )


def test_missing_cosign_fails_the_targets_without_a_traceback(
    example_repo: GitRepo,
    registry: Registry,
    prefix: str,
    tmp_path: Path,
    key_pair: dict[str, Path],
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("timoni", "flux"):
        (bin_dir / tool).symlink_to(TOOLS / tool)
    path = os.pathsep.join([str(bin_dir), "/usr/local/bin", "/usr/bin", "/bin"])
    assert not any((Path(p) / "cosign").exists() for p in path.split(os.pathsep))
    secrets = {"cosign-key": key_pair["key"].read_text(), "cosign-password": PASSWORD}
    payload = {
        "before": "0" * 40,
        "after": example_repo.head(),
        "created": True,
        "ref": "refs/heads/main",
    }
    inputs = {
        "registry": prefix,
        "sign": "cosign",
        "targets": "webapp-staging",
        **secrets,
    }
    run = run_action(
        example_repo.path,
        tmp_path / "run",
        inputs=inputs,
        payload=payload,
        env={"PATH": path},
    )
    assert run.returncode == 1, run.stdout + run.stderr
    (art,) = run.artifacts()
    assert art["status"] == "failed", art
    assert (
        "cosign not found on PATH (install it: https://docs.sigstore.dev"
        in art["error"]
    ), art["error"]
    assert "Traceback" not in run.stdout + run.stderr
    assert_nothing_leaks(run, key_pair["key"])


def test_a_signature_that_does_not_verify_fails_with_signing_failed(
    registry: Registry, prefix: str, tmp_path: Path, key_pair: dict[str, Path]
) -> None:
    """The check after signing is real: signed with one key, verified against another, it fails."""
    content = tmp_path / "content"
    content.mkdir()
    (content / "all.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: one}\n"
    )
    pushed = subprocess.run(
        [str(TOOLS / "flux"), "push", "artifact", f"{prefix}/app:latest", f"--path={content}",
         "--source=https://example.com/x", "--revision=main@sha1:" + "2" * 40, "-o", "json"],
        check=True, capture_output=True, text=True, timeout=120, env={**os.environ, "TZ": "UTC"},
    )  # fmt: skip
    url = f"{prefix}/app@{json.loads(pushed.stdout)['digest']}"
    other = tmp_path / "other-key"
    other.mkdir()
    subprocess.run([str(TOOLS / "cosign"), "generate-key-pair"], cwd=other, check=True, capture_output=True,
                   env={**os.environ, "COSIGN_PASSWORD": PASSWORD}, timeout=120)  # fmt: skip
    request = signing.Request(key=key_pair["key"].read_text(), password=PASSWORD)
    signer = signing.prepare(request, tmp_path / "scratch", os.environ)
    assert not signer.error and signer.public_key == key_pair["pub"].read_text().strip()
    mismatched = replace(signer, public_key_file=other / "cosign.pub")
    out = signing.sign_and_verify(mismatched, url)
    assert not out.ok and out.error.startswith(
        f"signing failed: the new signature of {url} does not verify"
    )
    # With the matching key the same digest is found signed: no second signature.
    again = signing.sign_and_verify(signer, url)
    assert (
        again.ok
        and not again.signed_now
        and again.signature == signing.signature_ref(url)
    )
