"""sign.oidc: the Actions OIDC token request (audience sigstore, bearer never redirected), the
answer read with bounds, the claims and the identity a keyless certificate names."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from gitops_action.sign.oidc import (
    GITHUB_ISSUER,
    MAX_ANSWER,
    Identity,
    OidcError,
    identity,
    oidc_token,
    token_claims,
    token_request,
)


def jwt(claims: object) -> str:
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"eyJhbGciOiJSUzI1NiJ9.{body}.c2ln"


def test_token_request_needs_the_runtime_variables() -> None:
    with pytest.raises(OidcError, match="id-token: write"):
        token_request({"ACTIONS_ID_TOKEN_REQUEST_URL": "https://x/token"})
    with pytest.raises(OidcError):
        token_request({"ACTIONS_ID_TOKEN_REQUEST_TOKEN": "t"})


def test_token_request_asks_for_sigstore_and_keeps_the_bearer_from_redirects() -> None:
    request = token_request(
        {
            "ACTIONS_ID_TOKEN_REQUEST_URL": "https://rt.example/token?api-version=2.0&audience=other",
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "bearer-secret",
        }
    )
    assert (
        request.full_url == "https://rt.example/token?api-version=2.0&audience=sigstore"
    )
    assert request.unredirected_hdrs == {"Authorization": "Bearer bearer-secret"}
    assert "Authorization" not in request.headers


def test_token_claims() -> None:
    assert token_claims(jwt({"iss": "i", "sub": "s"})) == {"iss": "i", "sub": "s"}
    assert token_claims("no-dots") == {}
    assert token_claims("a.!!!.c") == {}
    assert token_claims(jwt(["a list"])) == {}


def test_identity_of_the_workflow_that_ran() -> None:
    env = {"GITHUB_REPOSITORY": "org/app", "GITHUB_SERVER_URL": "https://github.com/"}
    claims = {"job_workflow_ref": "org/app/.github/workflows/push.yml@refs/heads/main"}
    assert identity(claims, env) == Identity(
        GITHUB_ISSUER,
        "https://github.com/org/app/.github/workflows/push.yml@refs/heads/main",
        False,
    )


def test_identity_of_a_reusable_workflow_is_shared() -> None:
    env = {"GITHUB_REPOSITORY": "org/app"}
    claims = {
        "iss": "https://ghe.example/_services/token",
        "job_workflow_ref": "org/workflows/.github/workflows/gitops.yml@v1",
    }
    found = identity(claims, env)
    assert found.issuer == "https://ghe.example/_services/token"
    assert (
        found.subject
        == "https://github.com/org/workflows/.github/workflows/gitops.yml@v1"
    )
    assert found.shared
    # a repository whose name starts like the caller's is still another repository
    other = {"job_workflow_ref": "org/app-shared/.github/workflows/x.yml@v1"}
    assert identity(other, env).shared


def test_identity_falls_back_to_the_callers_workflow_ref() -> None:
    env = {
        "GITHUB_REPOSITORY": "o/r",
        "GITHUB_WORKFLOW_REF": "o/r/.github/workflows/w.yml@refs/tags/v1",
    }
    assert identity({}, env) == Identity(
        GITHUB_ISSUER,
        "https://github.com/o/r/.github/workflows/w.yml@refs/tags/v1",
        False,
    )


class Runtime(BaseHTTPRequestHandler):
    """A stand-in for the Actions runtime's token endpoint: answers by path."""

    seen: ClassVar[list[tuple[str, str]]] = []

    def do_GET(self) -> None:
        Runtime.seen.append((self.path, self.headers.get("Authorization", "")))
        if self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", "/token")
            self.end_headers()
            return
        body = {
            "/token": json.dumps({"value": jwt({"iss": "x"})}).encode(),
            "/big": b'{"value": "' + b"a" * MAX_ANSWER + b'"}',
            "/none": b'{"count": 1}',
            "/list": b"[1]",
            "/html": b"<html>",
        }.get(self.path.split("?")[0], b"")
        self.send_response(200 if body else 403)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def runtime() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Runtime)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def env(base: str, path: str) -> dict[str, str]:
    return {
        "ACTIONS_ID_TOKEN_REQUEST_URL": f"{base}{path}",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "bearer-secret",
    }


def test_oidc_token(runtime: str) -> None:
    Runtime.seen.clear()
    assert oidc_token(env(runtime, "/token")) == jwt({"iss": "x"})
    assert Runtime.seen == [("/token?audience=sigstore", "Bearer bearer-secret")]


def test_a_redirect_is_refused_and_the_bearer_goes_nowhere_else(runtime: str) -> None:
    Runtime.seen.clear()
    with pytest.raises(OidcError, match="HTTP 302 redirect refused"):
        oidc_token(env(runtime, "/redirect"))
    assert [path for path, _ in Runtime.seen] == ["/redirect?audience=sigstore"]


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("/big", f"larger than {MAX_ANSWER} bytes"),
        ("/none", "returned no token"),
        ("/list", "request failed: AttributeError"),
        ("/html", "request failed: JSONDecodeError"),
        ("/denied", "request failed: HTTP 403"),
    ],
)
def test_bad_answers(runtime: str, path: str, why: str) -> None:
    with pytest.raises(OidcError, match=why):
        oidc_token(env(runtime, path))
