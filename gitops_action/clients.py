"""The clients a run needs, built in one place from `Settings`: which registry host gets the login
(on a pull request, the base commit's), the private docker config holding it, flux and the
registry reader over it, and the cosign signer. The run (app.py) and the modes that render nothing
(modes/run.py) both build theirs here."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import github_action_utils as gha

from gitops_action.changes import events
from gitops_action.changes.gitrepo import Repo
from gitops_action.errors import UsageError
from gitops_action.inputs.context import Context
from gitops_action.inputs.settings import Settings
from gitops_action.plan.planner import load_text
from gitops_action.registry.credentials import Credentials, credentials_host
from gitops_action.registry.flux import Flux
from gitops_action.registry.reader import Reader
from gitops_action.report.notice import warn

if TYPE_CHECKING:
    from gitops_action.sign import signing


def registry_clients(settings: Settings, env: Mapping[str, str]) -> tuple[Flux, Reader]:
    """flux and the registry reader over the docker config `env` points to, with the run's
    timeout: flux stops itself at --timeout; its process limit is a backstop a little later."""
    timeout = settings.timeout_seconds
    flux = Flux(
        env=dict(env),
        timeout=settings.timeout,
        provider=settings.provider,
        process_timeout=timeout + 30,
    )
    return flux, Reader(flux, timeout=timeout)


def docker_config(
    settings: Settings,
    ctx: Context,
    registry: str,
    hosts: set[str],
    scratch: Path,
    *,
    fork: bool,
) -> dict[str, str]:
    """The private docker config of flux and timoni: always one of the run's own (never the machine's),
    holding the inputs' login for the host of the `registry` input (else the configuration's `registry`)
    alone. A pull request's dry run from a fork gets no login; otherwise it serves only to read."""
    host = credentials_host(settings.registry, registry)
    use_creds = bool(settings.registry_username) and not fork
    if use_creds and not host:
        warn(
            ctx,
            "registry-username is set but no `registry` names its host: no credentials are used",
        )
    others = sorted(hosts - {host})
    if use_creds and host and others:
        warn(
            ctx,
            f"no registry credentials for {', '.join(others)}: they are for {host} only",
        )
    username = settings.registry_username if use_creds and host else ""
    login = Credentials(username, settings.registry_password if username else "")
    return login.docker_config({host} if username else set(), scratch)


def signer_for(
    settings: Settings, ctx: Context, docker: str, scratch: Path
) -> signing.Signer:
    """The run's cosign signer (key or keyless), its secrets masked in the log."""
    from gitops_action.sign import signing  # only runs that sign pay for its import

    request = signing.Request(
        key=settings.cosign_key,
        password=settings.cosign_password,
        fulcio_url=settings.fulcio_url,
        rekor_url=settings.rekor_url,
        provider=settings.provider,
        docker_config=docker,
        timeout=settings.timeout_seconds,
    )
    signer = signing.prepare(request, scratch / "signing", os.environ)
    if ctx.in_actions:
        # the OIDC token (key and password are masked already)
        for secret in signer.secrets:
            gha.add_mask(secret)
    return signer


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
