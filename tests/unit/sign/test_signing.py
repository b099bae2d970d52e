"""Issue 13: how cosign is called, key and keyless, without running it (keyless needs Fulcio and
Rekor, which this machine cannot reach). The end-to-end key tests are in tests/e2e/test_signing.py."""

from __future__ import annotations

import base64
import json
import re
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from gitops_action import runner
from gitops_action.inputs.settings import SettingsError, from_args, from_inputs
from gitops_action.sign import oidc, signing

URL = "oci://127.0.0.1:5000/deploy/webapp@sha256:" + "ab" * 32
KEY = (
    "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"
    "eyJrZGYiOnsibmFtZSI6InNjcnlwdCIsInBhcmFtcyI6eyJOIjo2NTUzNiwiciI6\n"
    "OCwicCI6MX0sInNhbHQiOiJ0ZXN0LW9ubHkifX0=\n"
    "-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n"
)
WORKFLOW_REF = "octo-org/gitops/.github/workflows/deploy.yml@refs/heads/main"


def key_signer(tmp_path: Path) -> signing.Signer:
    return signing.Signer(
        {signing.KEY_VAR: KEY, "COSIGN_PASSWORD": "pw-Secret-1"},
        public_key="-----BEGIN PUBLIC KEY-----\nx\n-----END PUBLIC KEY-----",
        public_key_file=tmp_path / "cosign.pub",
    )


def keyless_signer(**urls: str) -> signing.Signer:
    ident = oidc.Identity(oidc.GITHUB_ISSUER, f"https://github.com/{WORKFLOW_REF}")
    return signing.Signer({"SIGSTORE_ID_TOKEN": "a.b.c"}, identity=ident, **urls)  # type: ignore[arg-type]


def jwt(claims: dict[str, object]) -> str:
    def part(d: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2lnbmF0dXJl"


def test_key_signing_arguments_carry_no_secret(tmp_path: Path) -> None:
    signer = key_signer(tmp_path)
    args = signing.sign_args(signer, URL)
    assert args == [
        "cosign",
        "sign",
        "--yes",
        "--new-bundle-format=false",
        "--use-signing-config=false",
        "--key=env://COSIGN_PRIVATE_KEY",
        "--tlog-upload=false",
        URL.removeprefix("oci://"),
    ]
    verify = signing.verify_args(signer, URL)
    assert verify[:4] == [
        "cosign",
        "verify",
        "--new-bundle-format=false",
        "--output=json",
    ]
    assert (
        f"--key={tmp_path / 'cosign.pub'}" in verify
        and "--insecure-ignore-tlog=true" in verify
    )
    assert verify[-1] == URL.removeprefix("oci://")
    every = " ".join([*args, *verify, *signing.public_key_args()])
    for secret in ("pw-Secret-1", "eyJrZGYi", "OCwicCI6"):
        assert secret not in every


def test_keyless_arguments_use_the_given_sigstore_and_the_workflow_identity() -> None:
    signer = keyless_signer(
        fulcio_url="https://fulcio.internal", rekor_url="https://rekor.internal"
    )
    args = signing.sign_args(signer, URL)
    assert (
        "--fulcio-url=https://fulcio.internal" in args
        and "--rekor-url=https://rekor.internal" in args
    )
    assert not [
        a for a in args if a.startswith(("--key", "--tlog-upload", "--identity-token"))
    ]
    verify = signing.verify_args(signer, URL)
    assert "--rekor-url=https://rekor.internal" in verify
    assert (
        "--certificate-oidc-issuer-regexp=^https://token\\.actions\\.githubusercontent\\.com$"
        in verify
    )
    subject = next(a for a in verify if a.startswith("--certificate-identity-regexp="))
    assert subject.split("=", 1)[1] == (
        "^https://github\\.com/octo-org/gitops/\\.github/workflows/deploy\\.yml@refs/heads/main$"
    )
    defaults = signing.sign_args(keyless_signer(), URL)
    assert "--fulcio-url=https://fulcio.sigstore.dev" in defaults
    assert "--rekor-url=https://rekor.sigstore.dev" in defaults


def test_go_regexp_matches_exactly_the_literal() -> None:
    literal = "https://github.com/o/r-x/.github/workflows/a+b (1).yml@refs/heads/[x]"
    pattern = signing.go_regexp(literal)
    # The same escapes as Go's regexp.QuoteMeta, which RE2 and Python read alike.
    assert re.fullmatch(pattern.strip("^$"), literal)
    assert re.match(pattern, literal) and not re.match(pattern, literal + "x")
    assert not re.match(pattern, literal.replace(".github", "xgithub"))
    assert "-" in pattern and "\\-" not in pattern and "\\/" not in pattern


def test_signature_reference_is_the_sig_tag() -> None:
    assert (
        signing.signature_ref(URL)
        == "oci://127.0.0.1:5000/deploy/webapp:sha256-" + "ab" * 32 + ".sig"
    )


def test_cosign_environment_is_minimal(tmp_path: Path) -> None:
    ours = {
        "PATH": "/usr/bin",
        "HOME": "/root",
        "INPUT_COSIGN-PASSWORD": "pw-Secret-1",
        "INPUT_REGISTRY-PASSWORD": "reg-pw",
        "GITHUB_TOKEN": "ghs_x",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "runtime-token",
        "AWS_SECRET_ACCESS_KEY": "aws-secret",
        "HTTPS_PROXY": "http://proxy:3128",
        "SSL_CERT_FILE": "/ca.pem",
    }
    env = signing.cosign_env(
        tmp_path, "/d/.docker", "generic", ours, {"SIGSTORE_ID_TOKEN": "a.b.c"}
    )
    assert env["HOME"] == str(tmp_path) and env["DOCKER_CONFIG"] == "/d/.docker"
    assert {"PATH", "HTTPS_PROXY", "SSL_CERT_FILE", "SIGSTORE_ID_TOKEN"} <= set(env)
    for name in (
        "INPUT_COSIGN-PASSWORD",
        "INPUT_REGISTRY-PASSWORD",
        "GITHUB_TOKEN",
        "AWS_SECRET_ACCESS_KEY",
    ):
        assert name not in env
    assert "ACTIONS_ID_TOKEN_REQUEST_TOKEN" not in env
    aws = signing.cosign_env(tmp_path, "/d", "aws", ours, {})
    assert aws["AWS_SECRET_ACCESS_KEY"] == "aws-secret" and "GITHUB_TOKEN" not in aws


def test_runner_without_inheritance_passes_only_the_given_environment(
    tmp_path: Path,
) -> None:
    done = runner.run(
        [sys.executable, "-c", "import os, json; print(json.dumps(dict(os.environ)))"],
        env={"ONLY": "this"},
    )
    seen = json.loads(done.stdout)
    seen.pop("LC_CTYPE", None)  # Python's own locale coercion may add it
    assert seen == {"ONLY": "this"}


def test_oidc_token_request_asks_for_the_sigstore_audience() -> None:
    env = {
        "ACTIONS_ID_TOKEN_REQUEST_URL": "https://pipelines.actions.githubusercontent.com/abc/idtoken?api-version=2.0",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "runtime-token",
    }
    req = oidc.token_request(env)
    assert req.full_url == (
        "https://pipelines.actions.githubusercontent.com/abc/idtoken?api-version=2.0&audience=sigstore"
    )
    assert req.get_header("Authorization") == "Bearer runtime-token"
    again = oidc.token_request(
        {**env, "ACTIONS_ID_TOKEN_REQUEST_URL": req.full_url + "&audience=x"}
    )
    assert again.full_url.count("audience=") == 1 and again.full_url.endswith(
        "audience=sigstore"
    )
    with pytest.raises(oidc.OidcError, match="id-token: write"):
        oidc.token_request({})


def test_identity_names_the_workflow_that_signed() -> None:
    env = {"GITHUB_REPOSITORY": "octo-org/gitops", "GITHUB_WORKFLOW_REF": WORKFLOW_REF}
    claims = oidc.token_claims(
        jwt({"iss": oidc.GITHUB_ISSUER, "job_workflow_ref": WORKFLOW_REF})
    )
    own = oidc.identity(claims, env)
    assert own == oidc.Identity(
        oidc.GITHUB_ISSUER, f"https://github.com/{WORKFLOW_REF}", False
    )
    # Inside a reusable workflow the certificate names the called workflow, not the caller's.
    called = "org/timoni-flux-push/.github/workflows/timoni-flux-push.yml@refs/tags/v1"
    reused = oidc.identity(oidc.token_claims(jwt({"job_workflow_ref": called})), env)
    assert reused.subject == f"https://github.com/{called}" and reused.shared
    # A token without the claim: the caller's workflow ref from the environment.
    assert oidc.identity(oidc.token_claims("not-a-jwt"), env) == own


def test_verify_block_is_the_ocirepository_verify(tmp_path: Path) -> None:
    keyless = yaml.safe_load(signing.verify_block(keyless_signer()))["spec"]["verify"]
    assert keyless["provider"] == "cosign"
    (match,) = keyless["matchOIDCIdentity"]
    assert re.match(match["issuer"], oidc.GITHUB_ISSUER)
    assert re.match(match["subject"], f"https://github.com/{WORKFLOW_REF}")
    assert not re.match(
        match["subject"], f"https://github.com/{WORKFLOW_REF}".replace("main", "evil")
    )
    key = yaml.safe_load(signing.verify_block(key_signer(tmp_path)))["spec"]["verify"]
    assert key == {"provider": "cosign", "secretRef": {"name": "cosign-pub"}}


def test_a_tag_is_never_signed(tmp_path: Path) -> None:
    out = signing.sign_and_verify(
        key_signer(tmp_path), "oci://127.0.0.1:5000/deploy/webapp:latest"
    )
    assert not out.ok and "never a tag" in out.error


def test_signing_inputs() -> None:
    env = {
        "INPUT_SIGN": "cosign",
        "INPUT_COSIGN-KEY": KEY,
        "INPUT_COSIGN-PASSWORD": "pw-Secret-1",
    }
    s = from_inputs(env)
    assert (s.sign, s.cosign_key, s.cosign_password) == (
        "cosign",
        KEY.strip(),
        "pw-Secret-1",
    )
    assert (s.fulcio_url, s.rekor_url) == (signing.FULCIO_URL, signing.REKOR_URL)
    assert "pw-Secret-1" in s.secrets() and KEY.strip() in s.secrets()
    # each line of the key
    assert "OCwicCI6MX0sInNhbHQiOiJ0ZXN0LW9ubHkifX0=" in s.secrets()
    # no lone header
    assert not [x for x in s.secrets() if x.startswith("-----") and "\n" not in x]
    assert "pw-Secret-1" not in repr(s) and "eyJrZGYi" not in repr(s)
    # A key's short last line is not masked on its own: it would blank those characters everywhere.
    short = from_inputs(
        {**env, "INPUT_COSIGN-KEY": KEY.replace("=\n-----END", "=\n8Q==\n-----END")}
    )
    assert "8Q==" not in short.secrets()
    assert from_inputs({}).sign == "none"
    keyless = from_inputs(
        {"INPUT_SIGN": "cosign", "INPUT_REKOR-URL": "https://rekor.internal"}
    )
    assert keyless.rekor_url == "https://rekor.internal" and not keyless.cosign_key
    cli = from_args(
        ["push", "--sign", "cosign"], {"COSIGN_KEY": KEY, "COSIGN_PASSWORD": "pw"}
    )
    assert (cli.cosign_key, cli.cosign_password) == (KEY.strip(), "pw")


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"INPUT_SIGN": "gpg"}, "input `sign`"),
        (
            {"INPUT_SIGN": "cosign", "INPUT_COSIGN-PASSWORD": "pw"},
            "`cosign-key` is empty",
        ),
        (
            {"INPUT_SIGN": "cosign", "INPUT_COSIGN-KEY": "not a pem s3cr3t"},
            "expected a PEM private key",
        ),
        ({"INPUT_SIGN": "cosign", "INPUT_FULCIO-URL": "fulcio"}, "input `fulcio-url`"),
    ],
)
def test_bad_signing_inputs(inputs: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)) as caught:
        from_inputs(inputs)
    assert "s3cr3t" not in str(caught.value)


def test_keyless_summary_shows_the_identity_once_and_warns_about_shared_workflows() -> (
    None
):
    text = signing.summary(keyless_signer(), [])
    assert text.count("matchOIDCIdentity:") == 1 and "keylessly" in text
    assert "trustedRootSecretRef" not in text and "[!WARNING]" not in text
    ident = oidc.Identity(
        oidc.GITHUB_ISSUER, "https://github.com/org/shared/x.yml@refs/tags/v1", True
    )
    private = replace(
        keyless_signer(rekor_url="https://rekor.internal"), identity=ident
    )
    warned = signing.summary(private, [])
    assert "[!WARNING]" in warned and "trustedRootSecretRef" in warned
    failed = signing.summary(
        signing.Signer({}, error="keyless signing needs a GitHub OIDC token"), []
    )
    assert "Nothing was signed" in failed and "matchOIDCIdentity" not in failed
