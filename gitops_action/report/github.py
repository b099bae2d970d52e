"""GitHub's REST API (PyGithub): the run's client (the deployments use it too), and the one pull
request comment kept up to date: find ours by its marker, edit it in place, or create it. What the
comment says is comment.py's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from github import Auth, Github, GithubException

from gitops_action.report.comment import COMMENT_LIMIT

# author of comments written with an Actions GITHUB_TOKEN
ACTIONS_BOT = "github-actions[bot]"

__all__ = [
    "ACTIONS_BOT",
    "COMMENT_LIMIT",
    "CommentOutcome",
    "github_client",
    "upsert_pr_comment",
]

Action = Literal["created", "updated", "unchanged", "forbidden", "failed"]


@dataclass(frozen=True)
class CommentOutcome:
    action: Action
    comment_id: int | None
    html_url: str | None
    message: str


def github_client(api_url: str, token: str) -> Github:
    """The REST client for this run's few calls: no retries (a 403 is final, and a test must be
    fast) and no pause between requests; lazy=True skips fetching objects we only address."""
    return Github(
        auth=Auth.Token(token),
        base_url=api_url,
        retry=None,
        seconds_between_requests=None,
        seconds_between_writes=None,
        per_page=100,
        lazy=True,
    )


def upsert_pr_comment(
    *, api_url: str, token: str, repository: str, number: int, marker: str, body: str
) -> CommentOutcome:
    """Creates or edits the comment on pull request `number` of `repository` ("owner/name").

    Ours is the first comment that contains `marker` and was written by the token's own account, so a
    human quoting the marker is never overwritten. API and network errors come back as a "forbidden"
    or "failed" outcome, never as an exception and never with the token in the message. A body GitHub
    would refuse, or one without the marker (the next run could not find it), is a caller bug:
    ValueError.
    """
    if len(body) > COMMENT_LIMIT:
        raise ValueError(
            f"comment body has {len(body)} characters; GitHub accepts at most {COMMENT_LIMIT}"
        )
    if not marker or marker not in body:
        raise ValueError("comment body must contain its (non-empty) marker")
    where = f"pull request comment on {repository}#{number}"
    gh = github_client(api_url, token)
    try:
        issue = gh.get_repo(repository).get_issue(number)
        author = _own_login(gh)
        ours = next(
            (
                c
                for c in issue.get_comments()
                if marker in c.body and _login(c.user) == author
            ),
            None,
        )
        if ours is None:
            created = issue.create_comment(body)
            return CommentOutcome(
                "created", created.id, created.html_url, f"created {where}"
            )
        if ours.body == body:
            return CommentOutcome(
                "unchanged", ours.id, ours.html_url, f"{where} is up to date"
            )
        ours.edit(body)
        return CommentOutcome("updated", ours.id, ours.html_url, f"updated {where}")
    except GithubException as exc:
        detail = _detail(exc)
        if exc.status in (403, 404):
            # GitHub answers 404 rather than 403 where the token may not even see the repository.
            unseen = (
                ": no such pull request, or the token cannot see it"
                if exc.status == 404
                else ""
            )
            message = (
                f"GitHub refused the {where} ({exc.status} {detail}{unseen}). To allow it, give the workflow "
                "`permissions: pull-requests: write`; pull requests from forks get a read-only token, "
                "so their runs cannot comment."
            )
            return _problem("forbidden", message, token)
        return _problem("failed", f"{where} failed: {exc.status} {detail}", token)
    # requests' errors (connection refused, timeout) are OSErrors
    except OSError as exc:
        return _problem("failed", f"{where} failed: {exc}", token)
    finally:
        gh.close()


def _own_login(gh: Github) -> str:
    try:
        return gh.get_user().login
    except GithubException as exc:
        # Installation tokens (the Actions GITHUB_TOKEN, GitHub Apps) may not read /user:
        # 403 "Resource not accessible by integration". GITHUB_TOKEN comments as the Actions bot.
        if exc.status != 403:
            raise
        return ACTIONS_BOT


def _login(user: object) -> str | None:
    login = getattr(user, "login", None)  # a deleted author can come back as null
    return login if isinstance(login, str) else None


def _detail(exc: GithubException) -> str:
    data = exc.data if isinstance(exc.data, dict) else {}
    parts = [str(data.get("message") or exc.message or "")]
    # 422s carry the reason in errors[].message (e.g. "Body is too long (maximum is 65536 characters)").
    parts += [
        str(e["message"])
        for e in data.get("errors", [])
        if isinstance(e, dict) and e.get("message")
    ]
    return ": ".join(p for p in parts if p)


def _problem(action: Action, text: str, token: str) -> CommentOutcome:
    if token:
        text = text.replace(token, "***")
    return CommentOutcome(action, None, None, " ".join(text.split()))
