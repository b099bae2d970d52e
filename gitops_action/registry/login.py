"""Which registry host gets the run's login. On a pull request the configuration at head is the pull
request's word: the login's host comes from the `registry` input or the base commit's configuration,
never the head's (a pull request that edits `registry:` must not take the login with it)."""

from __future__ import annotations

from gitops_action.changes import events
from gitops_action.changes.gitrepo import Repo
from gitops_action.errors import UsageError
from gitops_action.inputs.context import Context
from gitops_action.inputs.settings import Settings
from gitops_action.plan.planner import load_text
from gitops_action.registry.credentials import credentials_host
from gitops_action.report.finish import warn


def login_registry(
    settings: Settings,
    ctx: Context,
    head_registry: str,
    base_registry: str | None,
    pull_request: bool,
) -> str:
    """The configuration `registry` whose host gets the login (the `registry` input wins over it).
    On a pull request that is the base commit's: the head's `registry:` is the pull request's word,
    and following it would send the login to any host the pull request names."""
    if not pull_request or settings.registry:
        return head_registry
    base, head = (
        credentials_host("", base_registry or ""),
        credentials_host("", head_registry),
    )
    if settings.registry_username and head and head != base:
        warn(
            ctx,
            f"the pull request's {settings.config} names registry host {head}: on a pull request the "
            f"registry login goes only to the host of the `registry` input or of the base commit's "
            f"configuration ({base or 'none known'}), none to {head}",
        )
    return base_registry or ""


def registry_at(settings: Settings, repo: Repo, commit: str) -> str | None:
    """The configuration's `registry` at `commit` (a pull request's base the plan did not read, as
    with `all`), or None when there is none to read."""
    if not events.SHA_RE.fullmatch(commit):
        return None
    sha = repo.resolve(commit) or (
        repo.resolve(commit) if repo.fetch(commit).ok else None
    )
    text = repo.read_file(sha, settings.config) if sha else None
    if sha is None or text is None:
        return None
    try:
        return load_text(text, settings.config, repo.list_files(sha), "", "").registry
    except UsageError:
        return None
