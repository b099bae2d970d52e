"""Issue 19, finding 7c: the OIDC token request never carries the runtime's bearer token to where
a redirect points. Before: urllib followed the redirect with `Authorization: Bearer <runtime
token>` to the other host. A keyless-signing push run with real timoni, flux, cosign, registry and
git; the Actions runtime's token endpoint is a small server that redirects to a second one."""

from __future__ import annotations

from pathlib import Path

from conftest import GitRepo
from support.action import run_action
from support.oidc_servers import TokenServer

RUNTIME_TOKEN = "runtime-bearer-Never-Forwarded"


def test_the_token_request_does_not_follow_a_redirect_with_the_bearer(
    example_repo: GitRepo, prefix: str, tmp_path: Path
) -> None:
    with TokenServer() as elsewhere, TokenServer() as runtime:
        # another host name
        elsewhere.url = elsewhere.url.replace("127.0.0.1", "localhost")
        runtime.redirect_to = f"{elsewhere.url}/collect"
        run = run_action(
            example_repo.path,
            tmp_path / "run",
            inputs={
                "registry": prefix,
                "all": "true",
                "targets": "webapp-staging",
                "sign": "cosign",
                "fulcio-url": "http://127.0.0.1:9",
                "rekor-url": "http://127.0.0.1:9",
            },
            env={
                "ACTIONS_ID_TOKEN_REQUEST_URL": f"{runtime.url}/token?api-version=2.0",
                "ACTIONS_ID_TOKEN_REQUEST_TOKEN": RUNTIME_TOKEN,
            },
        )
        assert [s.headers.get("authorization") for s in runtime.seen] == [
            f"Bearer {RUNTIME_TOKEN}"
        ]
        forwarded = [s.headers.get("authorization") for s in elsewhere.seen]
        assert not any(forwarded), f"the other host got {forwarded}"
        assert elsewhere.seen == []  # refused, not followed
    assert run.returncode == 1, run.stdout + run.stderr
    staging = run.by_name()["webapp-staging"]
    assert staging["status"] == "failed" and staging["digest"]
    assert "the GitHub OIDC token request failed: HTTP 302" in staging["error"], (
        staging["error"]
    )
    assert RUNTIME_TOKEN not in run.stdout + run.stderr + run.summary
