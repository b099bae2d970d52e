"""From a GitHub event (or CLI flags) to the two commits to compare.

The rule that matters: when the base cannot be known or fetched, every target is affected and the
reason is reported. Never "nothing changed" by accident.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitops_action.changes.gitrepo import ZERO_SHA, Repo
from gitops_action.errors import EventError


@dataclass(frozen=True)
class CommitRange:
    head: str
    base: str | None  # None: compare with nothing, every target is affected
    why_all: str = ""  # why every target is affected, for the summary
    nothing: str = ""  # why there is nothing to do at all (e.g. a deleted branch)
    is_pull_request: bool = False
    pr_number: int | None = None
    fork: bool = False
    # a pull request's base commit (payload), also when `all` drops `base`
    pr_base: str = ""


def load_payload(path: str | None) -> dict[str, Any]:
    if not path:
        return {}
    try:
        data = json.loads(Path(path).read_text("utf-8"))
    except FileNotFoundError as exc:
        raise EventError(f"GITHUB_EVENT_PATH {path}: file not found") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EventError(f"GITHUB_EVENT_PATH {path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise EventError(f"GITHUB_EVENT_PATH {path}: expected a JSON object")
    return data


def _field(payload: dict[str, Any], dotted: str, event: str) -> Any:
    value: Any = payload
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            raise EventError(f"{event} event payload has no `{dotted}`")
        value = value[part]
    return value


UNTRUSTED_EVENT = "pull_request_target"
SHA_RE = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
REFUSED = (
    "a pull_request_target run checks out the base branch and holds this repository's secrets: "
    'rendering the checkout would review the wrong commit ("nothing changed" for a real change), '
    "and rendering the pull request's code would run it next to those secrets. Run the dry run on "
    "`pull_request` instead, or set the input `allow-pull-request-target: true` to dry-run the pull "
    "request's head commit (fetched by SHA) without registry credentials or runtime values"
)


def reviewed_head(
    repo: Repo, *, event: str, payload: dict[str, Any], head: str, allowed: bool
) -> str:
    """The commit to render. On pull_request_target that is the pull request's head, not the checkout
    (the base branch); refused unless the workflow allows it. May fetch the head by SHA."""
    if event != UNTRUSTED_EVENT:
        return head
    if not allowed:
        raise EventError(REFUSED)
    sha = str(_field(payload, "pull_request.head.sha", event)).lower()
    if not SHA_RE.fullmatch(sha):
        raise EventError(
            f"{event} event: pull_request.head.sha {sha[:80]!r} is not a commit SHA"
        )
    number = int(_field(payload, "pull_request.number", event))
    found = repo.resolve(sha)
    if found is None:
        fetched = repo.fetch(sha)
        found = repo.resolve(sha) if fetched.ok else None
    # a server that refuses a fetch by SHA still serves the pull request's ref
    if found is None:
        repo.fetch(f"refs/pull/{number}/head")
        found = repo.resolve(sha)
    if found is None:
        raise EventError(
            f"{event} event: the pull request's head {sha[:12]} cannot be fetched from origin"
        )
    return found


def commit_range(
    repo: Repo,
    *,
    event: str,
    payload: dict[str, Any],
    head: str,
    base_override: str = "",
    take_all: bool = False,
) -> CommitRange:
    """Decide base..head. May fetch a base commit missing from a shallow clone."""
    is_pr = event in ("pull_request", "pull_request_target")
    pr_number, fork, pr_base = (
        _pull_request(payload, event) if is_pr else (None, False, "")
    )

    def result(base: str | None, why_all: str = "", nothing: str = "") -> CommitRange:
        return CommitRange(
            head, base, why_all, nothing, is_pr, pr_number, fork, pr_base
        )

    if take_all:
        return result(None, "the `all` input is set")
    if base_override:
        return _with_base(repo, base_override, "the `base` input", result)
    if event == "push":
        return _push_range(repo, payload, event, result)
    if is_pr:
        return _with_base(
            repo,
            str(_field(payload, "pull_request.base.sha", event)),
            "the pull request's base",
            result,
        )
    if event == "merge_group":
        return _with_base(
            repo,
            str(_field(payload, "merge_group.base_sha", event)),
            "the merge group's base",
            result,
        )
    if event:
        return result(None, f"a {event} event carries no base commit")
    return result(None, "no base commit was given")


def _pull_request(payload: dict[str, Any], event: str) -> tuple[int, bool, str]:
    """A pull request event's number, whether it comes from a fork, and its base commit."""
    pr_number = int(_field(payload, "pull_request.number", event))
    pr = payload["pull_request"]
    pr_base = str((pr.get("base") or {}).get("sha") or "").lower()
    head_repo = (pr.get("head") or {}).get("repo") or {}
    base_repo = (pr.get("base") or {}).get("repo") or {}
    # A fork PR's head lives in another repository (or in a deleted one: repo is null).
    fork = head_repo.get("full_name") != base_repo.get("full_name") or not head_repo
    return pr_number, fork, pr_base


def _push_range(
    repo: Repo, payload: dict[str, Any], event: str, result: Any
) -> CommitRange:
    """A push event's range: from its `before` commit; nothing for a deleted branch, every target
    for a new one."""
    if payload.get("deleted"):
        out: CommitRange = result(
            None, nothing="the push deleted the branch: nothing to build"
        )
        return out
    before = str(_field(payload, "before", event))
    if before == ZERO_SHA or payload.get("created"):
        out = result(None, "a new branch: there is no previous commit to compare with")
        return out
    return _with_base(
        repo,
        before,
        "the push's `before` commit"
        + (" (forced push)" if payload.get("forced") else ""),
        result,
    )


def _with_base(repo: Repo, base: str, what: str, result: Any) -> CommitRange:
    sha = repo.resolve(base)
    if sha is None:
        fetched = repo.fetch(base)
        sha = repo.resolve(base) if fetched.ok else None
        if sha is None:
            detail = fetched.stderr.strip().splitlines()[-1:] if not fetched.ok else []
            reason = f"{what} {base[:12]} cannot be fetched" + (
                f" ({detail[0]})" if detail else ""
            )
            out: CommitRange = result(None, reason + ": every target is affected")
            return out
    out = result(sha)
    # e.g. a re-run, or `base` set to the head: say why the plan is empty
    if out.head == sha:
        out = result(
            sha, nothing=f"{what} {sha[:12]} is the head commit itself: nothing changed"
        )
    return out
