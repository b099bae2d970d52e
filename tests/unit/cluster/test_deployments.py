"""cluster.deployments (the pure parts): which Kustomization and environment a target's deployment
is for, the payload a dispatch event is matched against, and GitHub's refusals in words."""

from __future__ import annotations

from github import GithubException

from gitops_action.cluster.deployments import (
    PERMISSION,
    TOOL,
    Sync,
    environment_url,
    payload,
    refusal,
    sync_of,
)
from gitops_action.config.model import Config, Target, flatten
from gitops_action.push.results import TargetResult

TOKEN = "ghs_tokenABCDEFGH12345"
WEB = Target(
    "apps/web",
    "instance",
    "web",
    "oci://r.io/web",
    ("prod", "stable"),
    (),
    namespace="apps",
)


def test_sync_of_follows_the_flux_settings() -> None:
    assert sync_of(WEB, Config("c.yaml", "", "", (WEB,))) == Sync(
        "prod", "apps-web", "flux-system"
    )
    config = Config(
        "c.yaml",
        "",
        "",
        (WEB,),
        flux=flatten({"namespace": "ops", "source": {"tag": "x"}}),
    )
    assert sync_of(WEB, config) == Sync("x", "apps-web", "ops")


def test_payload() -> None:
    result = TargetResult(
        WEB, "pushed", revision="main@sha1:" + "a" * 40, digest="sha256:" + "b" * 64
    )
    assert payload(result, Sync("prod", "apps-web", "flux-system")) == {
        "tool": TOOL,
        "target": "apps/web",
        "artifact": "oci://r.io/web",
        "digest": "sha256:" + "b" * 64,
        "revision": "main@sha1:" + "a" * 40,
        "kustomization": {"name": "apps-web", "namespace": "flux-system"},
    }


def test_refusals_say_how_to_allow_them() -> None:
    text = refusal(
        "create a deployment",
        GithubException(403, {"message": "Resource not accessible"}, None),
        TOKEN,
    )
    assert text == (
        "GitHub refused to create a deployment: 403 Resource not accessible. "
        f"To allow it, {PERMISSION}."
    )
    text = refusal(
        "create a deployment",
        GithubException(404, {"message": "Not Found"}, None),
        TOKEN,
    )
    assert (
        "404 Not Found (GitHub answers 404 to a token that may not see the repository)"
        in text
    )


def test_other_failures_and_the_token() -> None:
    exc = GithubException(500, {"message": f"boom with {TOKEN}\nand more"}, None)
    assert (
        refusal("set a status", exc, TOKEN)
        == "could not set a status: 500 boom with *** and more"
    )


def test_environment_url_quotes_the_environment() -> None:
    assert environment_url("https://github.com", "o/r", "prod/eu 1") == (
        "https://github.com/o/r/deployments/prod%2Feu%201"
    )
