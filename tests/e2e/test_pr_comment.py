"""The PR comment flow against the OpenAPI-checked GitHub API test server (tests/support/github_api.py)."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from typing import Any

import pytest
from conftest import PR

# tests/ is on sys.path (see conftest.py)
from support.github_api import GitHubApiServer

from gitops_action.report.github import (
    ACTIONS_BOT,
    COMMENT_LIMIT,
    CommentOutcome,
    upsert_pr_comment,
)

MARKER = "<!-- timoni-flux-push: .timoni-flux.yaml -->"
COMMENTS = f"/repos/octo-org/gitops/issues/{PR}/comments"


def upsert(
    api: GitHubApiServer, body: str, *, token: str | None = None, number: int = PR
) -> CommentOutcome:
    return upsert_pr_comment(
        api_url=api.base_url,
        token=api.token if token is None else token,
        repository=api.repo,
        number=number,
        marker=MARKER,
        body=body,
    )


def writes(api: GitHubApiServer) -> list[str]:
    return [r["method"] for r in api.requests if r["method"] in ("POST", "PATCH")]


def call(
    api: GitHubApiServer, method: str, path: str, body: Any = None
) -> tuple[int, Any]:
    """A raw request to the test server, bypassing PyGithub."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(api.base_url + path, data=data, method=method)
    request.add_header("Authorization", f"token {api.token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def test_first_run_creates_the_comment(api: GitHubApiServer) -> None:
    outcome = upsert(api, f"{MARKER}\nplan: 2 targets")

    assert outcome.action == "created"
    [comment] = api.comments_on(PR)
    assert comment["body"] == f"{MARKER}\nplan: 2 targets"
    assert comment["user"]["login"] == ACTIONS_BOT and comment["user"]["type"] == "Bot"
    assert outcome.comment_id == comment["id"]
    assert outcome.html_url == comment["html_url"]
    assert outcome.html_url is not None and outcome.html_url.startswith(api.base_url)
    assert api.rejections == []


def test_second_run_edits_the_same_comment(api: GitHubApiServer) -> None:
    first = upsert(api, f"{MARKER}\nv1")
    second = upsert(api, f"{MARKER}\nv2")

    assert (first.action, second.action) == ("created", "updated")
    assert second.comment_id == first.comment_id
    assert [c["body"] for c in api.comments_on(PR)] == [f"{MARKER}\nv2"]
    assert writes(api) == ["POST", "PATCH"]
    assert api.rejections == []


def test_same_body_is_left_alone(api: GitHubApiServer) -> None:
    upsert(api, f"{MARKER}\nsame")
    outcome = upsert(api, f"{MARKER}\nsame")

    assert outcome.action == "unchanged"
    assert writes(api) == ["POST"]  # no PATCH on the second run
    assert api.rejections == []


def test_a_human_comment_quoting_the_marker_is_not_edited(api: GitHubApiServer) -> None:
    human = api.add_comment(f"why does the bot write {MARKER}?", login="octocat")

    created = upsert(api, f"{MARKER}\nv1")
    updated = upsert(api, f"{MARKER}\nv2")

    assert created.action == "created" and updated.action == "updated"
    assert updated.comment_id == created.comment_id != human["id"]
    assert human["body"] == f"why does the bot write {MARKER}?"
    assert len(api.comments_on(PR)) == 2
    assert api.rejections == []


def test_read_only_token_is_forbidden_not_an_exception(api: GitHubApiServer) -> None:
    api.forbid_writes = True  # what a fork pull request's token gets

    outcome = upsert(api, f"{MARKER}\nplan")

    assert outcome.action == "forbidden"
    assert outcome.comment_id is None
    assert "pull-requests: write" in outcome.message and "fork" in outcome.message
    assert "Resource not accessible by integration" in outcome.message
    assert api.token not in outcome.message and "\n" not in outcome.message
    assert api.comments_on(PR) == []
    assert api.rejections == []


def test_read_only_token_cannot_edit_either(api: GitHubApiServer) -> None:
    upsert(api, f"{MARKER}\nv1")
    api.forbid_writes = True

    outcome = upsert(api, f"{MARKER}\nv2")

    assert outcome.action == "forbidden"
    assert [c["body"] for c in api.comments_on(PR)] == [f"{MARKER}\nv1"]
    assert api.rejections == []


def test_actions_token_cannot_read_user_and_still_finds_the_bot_comment(
    api: GitHubApiServer,
) -> None:
    assert api.user_forbidden  # GET /user answers 403 to an installation token
    existing = api.add_comment(f"{MARKER}\nold", login=ACTIONS_BOT)

    outcome = upsert(api, f"{MARKER}\nnew")

    assert outcome.action == "updated" and outcome.comment_id == existing["id"]
    assert ("GET", "/user") in [(r["method"], r["path"]) for r in api.requests]
    assert api.rejections == []


def test_a_token_that_can_read_user_owns_only_its_own_comments(
    api: GitHubApiServer,
) -> None:
    api.user_forbidden = False
    api.login = "deploy-bot"  # e.g. a personal access token of a machine user
    bot_comment = api.add_comment(
        f"{MARKER}\nwritten by the Actions token", login=ACTIONS_BOT
    )

    outcome = upsert(api, f"{MARKER}\nmine")

    assert outcome.action == "created" and outcome.comment_id != bot_comment["id"]
    assert api.comments_on(PR)[-1]["user"]["login"] == "deploy-bot"
    assert upsert(api, f"{MARKER}\nmine again").comment_id == outcome.comment_id
    assert api.rejections == []


def test_finds_the_comment_on_a_later_page(api: GitHubApiServer) -> None:
    # The client asks for 100 per page (GitHub's maximum), so page 2 starts at comment 101.
    for i in range(130):
        api.add_comment(f"review comment {i}")
    ours = api.add_comment(f"{MARKER}\nold", login=ACTIONS_BOT)

    outcome = upsert(api, f"{MARKER}\nnew")

    assert outcome.action == "updated" and outcome.comment_id == ours["id"]
    pages = [r["path"] for r in api.requests if r["path"].startswith(COMMENTS)]
    assert len(pages) == 2 and "page=2" in pages[1]
    assert len(api.comments_on(PR)) == 131
    assert api.rejections == []


def test_unknown_pull_request_is_reported_as_forbidden(api: GitHubApiServer) -> None:
    outcome = upsert(api, f"{MARKER}\nplan", number=999)

    assert outcome.action == "forbidden" and "404" in outcome.message
    assert api.rejections == []


def test_bad_token_fails_without_leaking_it(api: GitHubApiServer) -> None:
    outcome = upsert(api, f"{MARKER}\nplan", token="ghp_not-the-right-secret")

    assert outcome.action == "failed" and "401" in outcome.message
    assert "ghp_not-the-right-secret" not in outcome.message
    assert api.rejections == []


def test_unreachable_api_fails_without_raising(api: GitHubApiServer) -> None:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    outcome = upsert_pr_comment(
        api_url=url,
        token="t0ken",
        repository=api.repo,
        number=PR,
        marker=MARKER,
        body=MARKER,
    )

    assert (
        outcome.action == "failed"
        and "t0ken" not in outcome.message
        and "\n" not in outcome.message
    )


def test_body_over_githubs_limit_is_a_caller_bug(api: GitHubApiServer) -> None:
    with pytest.raises(ValueError, match="65536"):
        upsert(api, MARKER + "x" * COMMENT_LIMIT)
    with pytest.raises(ValueError, match="marker"):
        upsert(api, "no marker here")
    assert api.requests == []


def test_a_body_of_exactly_the_limit_is_accepted(api: GitHubApiServer) -> None:
    body = MARKER + "x" * (COMMENT_LIMIT - len(MARKER))

    assert upsert(api, body).action == "created"
    assert api.rejections == []


def test_server_enforces_the_comment_limit_like_github(api: GitHubApiServer) -> None:
    status, error = call(api, "POST", COMMENTS, {"body": "x" * (COMMENT_LIMIT + 1)})

    assert status == 422
    assert error["errors"][0]["message"].startswith("Body is too long")
    assert api.comments_on(PR) == [] and api.rejections == []


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "reason"),
    [
        ("POST", COMMENTS, {"text": "no body"}, 400, "'body' is a required property"),
        ("POST", COMMENTS, {"body": 42}, 400, "is not of type 'string'"),
        ("POST", COMMENTS, None, 400, "requires a request body"),
        (
            "GET",
            "/repos/octo-org/gitops/pull-request-comments",
            None,
            404,
            "no path in the description",
        ),
        (
            "PUT",
            "/repos/octo-org/gitops/issues/comments/1",
            {"body": "x"},
            404,
            "PUT is not an operation",
        ),
        (
            "GET",
            "/repos/octo-org/gitops/issues/seven/comments",
            None,
            404,
            "is not of type 'integer'",
        ),
        ("GET", f"{COMMENTS}?per_page=many", None, 400, "per_page"),
        ("GET", f"{COMMENTS}?sort=newest", None, 400, "'sort' is not a parameter"),
        ("GET", f"{COMMENTS}?since=yesterday", None, 400, "is not a 'date-time'"),
        (
            "GET",
            "/repos/octo-org/gitops/issues?state=merged",
            None,
            400,
            "not one of ['open', 'closed', 'all']",
        ),
    ],
)
def test_the_server_rejects_what_the_description_does_not_allow(
    api: GitHubApiServer, method: str, path: str, body: Any, status: int, reason: str
) -> None:
    got, error = call(api, method, path, body)

    assert got == status
    assert len(api.rejections) == 1 and reason in api.rejections[0], api.rejections
    assert reason in error["message"]
    assert api.comments_on(PR) == []


def test_the_server_checks_its_own_responses_too(api: GitHubApiServer) -> None:
    comment = api.add_comment("hello")
    del comment["node_id"]  # a field the issue-comment schema requires

    status, _ = call(
        api, "GET", f"/repos/octo-org/gitops/issues/comments/{comment['id']}"
    )

    assert status == 200
    assert (
        len(api.rejections) == 1
        and "'node_id' is a required property" in api.rejections[0]
    )
