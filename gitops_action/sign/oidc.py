"""Keyless signing's identity: the GitHub Actions OIDC token (audience `sigstore`) and the workflow
the certificate Fulcio issues for it will name."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
AUDIENCE = "sigstore"


@dataclass(frozen=True)
class Identity:
    """Who signs keylessly: the OIDC issuer and the certificate subject (the workflow's URL@ref)."""

    issuer: str
    subject: str
    # the workflow lives in another repository (a reusable workflow)
    shared: bool = False


class OidcError(Exception):
    """No GitHub OIDC token for keyless signing."""


def token_request(environ: Mapping[str, str]) -> urllib.request.Request:
    """The Actions runtime's token request, for audience `sigstore` (what Fulcio expects)."""
    url, bearer = (
        environ.get("ACTIONS_ID_TOKEN_REQUEST_URL"),
        environ.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN"),
    )
    if not (url and bearer):
        raise OidcError(
            "keyless signing needs a GitHub OIDC token: grant the job `permissions: id-token: write` "
            "(or give `cosign-key` to sign with a key)"
        )
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    query = [(k, v) for k, v in query if k != "audience"] + [("audience", AUDIENCE)]
    full = urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))
    request = urllib.request.Request(full)
    # The runtime's bearer token goes to the runtime's URL only, never on to where a redirect points.
    request.add_unredirected_header("Authorization", f"Bearer {bearer}")
    return request


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """The Actions runtime answers the token request itself: a redirect is refused, not followed."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        raise urllib.error.HTTPError(
            req.full_url, code, f"redirect refused ({msg})", headers, fp
        )


MAX_ANSWER = 64 * 1024  # a token answer is a few KB of JSON; more is not one


def oidc_token(environ: Mapping[str, str], timeout: float = 30) -> str:
    request = token_request(environ)
    try:
        with urllib.request.build_opener(_NoRedirect()).open(
            request, timeout=timeout
        ) as answer:
            body = answer.read(MAX_ANSWER + 1)
            if len(body) > MAX_ANSWER:
                raise OidcError(
                    f"the GitHub OIDC token answer is larger than {MAX_ANSWER} bytes"
                )
            value = json.loads(body).get("value")
    except urllib.error.HTTPError as exc:
        raise OidcError(
            f"the GitHub OIDC token request failed: HTTP {exc.code} {exc.msg}"
        ) from exc
    except (OSError, ValueError, AttributeError) as exc:
        raise OidcError(
            f"the GitHub OIDC token request failed: {type(exc).__name__}"
        ) from exc
    if not isinstance(value, str) or value.count(".") != 2:
        raise OidcError("the GitHub OIDC token request returned no token")
    return value


def token_claims(token: str) -> dict[str, object]:
    """The token's claims, read (not checked: Fulcio checks the token; we only name the identity)."""
    try:
        body = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (IndexError, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


def identity(claims: Mapping[str, object], environ: Mapping[str, str]) -> Identity:
    """The certificate Fulcio issues names the workflow that ran (`job_workflow_ref`: for a reusable
    workflow, the called one); GITHUB_WORKFLOW_REF (the caller's) stands in when it is missing."""
    ref = str(claims.get("job_workflow_ref") or environ.get("GITHUB_WORKFLOW_REF", ""))
    server = environ.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
    issuer = str(claims.get("iss") or GITHUB_ISSUER)
    repo = environ.get("GITHUB_REPOSITORY", "")
    shared = bool(repo) and not ref.startswith(f"{repo}/")
    return Identity(issuer, f"{server}/{ref}", shared)
