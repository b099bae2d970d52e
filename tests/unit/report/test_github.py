"""report.github: the pull request comment's checks before any call, and how a failure comes back:
an outcome (never an exception), its message on one line and without the token."""

from __future__ import annotations

import socket

import pytest
from github import GithubException

from gitops_action.report.comment import COMMENT_LIMIT
from gitops_action.report.github import (
    CommentOutcome,
    _detail,
    _problem,
    upsert_pr_comment,
)

TOKEN = "ghp_secretTOKEN1234567890"


def upsert(
    body: str, marker: str = "<!-- m -->", api_url: str = "http://127.0.0.1:9"
) -> CommentOutcome:
    return upsert_pr_comment(
        api_url=api_url,
        token=TOKEN,
        repository="o/r",
        number=7,
        marker=marker,
        body=body,
    )


def test_a_body_github_would_refuse_is_a_caller_bug() -> None:
    with pytest.raises(ValueError, match=f"at most {COMMENT_LIMIT}"):
        upsert("<!-- m -->" + "x" * COMMENT_LIMIT)


@pytest.mark.parametrize(
    ("marker", "body"), [("", "text"), ("<!-- m -->", "no marker")]
)
def test_a_body_without_its_marker_is_a_caller_bug(marker: str, body: str) -> None:
    with pytest.raises(ValueError, match="marker"):
        upsert(body, marker)


def test_detail_joins_the_message_and_the_errors() -> None:
    exc = GithubException(
        422,
        {
            "message": "Validation Failed",
            "errors": [{"message": "Body is too long"}, {"code": "custom"}, "odd"],
        },
        None,
    )
    assert _detail(exc) == "Validation Failed: Body is too long"
    assert _detail(GithubException(500, None, None)) == ""
    assert _detail(GithubException(502, "Bad Gateway", None)) == ""


def test_problem_hides_the_token_and_keeps_one_line() -> None:
    outcome = _problem("failed", f"call with {TOKEN}\n  failed\tbadly", TOKEN)
    assert (outcome.action, outcome.comment_id, outcome.html_url) == (
        "failed",
        None,
        None,
    )
    assert outcome.message == "call with *** failed badly"
    assert _problem("failed", "a  b", "").message == "a b"


def test_an_unreachable_api_is_a_failed_outcome() -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    outcome = upsert("<!-- m --> hello", api_url=f"http://127.0.0.1:{port}")
    assert outcome.action == "failed"
    message = outcome.message
    assert message.startswith("pull request comment on o/r#7 failed: ")
    assert TOKEN not in message and "\n" not in message
