"""Issue 7: the race no read before pushing can close: the older run's manifest lands after the
newer run's. While the newer run is still settling it pushes again; once it has ended, the tag
holds the older commit (whole, never broken) until the next run for the newer one: the documented
limit. Real processes, timoni, flux, registry and git; the proxies order the requests.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from conftest import GitRepo
from support import example_runs
from support.action import ActionRun
from support.example_runs import (
    Known,
    group,
    intact,
    push,
    registry_name,
    remember,
    scale,
    staging_of,
    statuses,
    through,
    together,
)
from support.fault_proxy import FaultProxy, fault_proxy
from support.registry import Registry

# This module's fixtures, from support/example_runs.py.
prefix = example_runs.prefix
proxy = example_runs.proxy


def set_after_put(
    tag: str, done: threading.Event
) -> Callable[[str, str, bytes, int], None]:
    """A proxy `after` hook: sets `done` once a PUT of `tag` is answered."""

    def after(method: str, path: str, body: bytes, status: int) -> None:
        if method == "PUT" and path == tag:
            done.set()

    return after


def test_an_older_run_pushing_last_is_repaired_by_the_newer_run(
    example_repo: GitRepo,
    registry: Registry,
    proxy: FaultProxy,
    prefix: str,
    tmp_path: Path,
) -> None:
    """The race made certain: both runs read the tag before either pushes, the older one's manifest
    lands after the newer one's, and before the newer run re-reads the tag."""
    known: Known = {}
    sha1 = remember(known, example_repo, tmp_path)
    sha2 = scale(example_repo, 2)
    remember(known, example_repo, tmp_path)
    repository = f"/v2/{registry_name(prefix)}/webapp/"
    tag = f"{repository}manifests/staging"
    old_pushing, new_pushed, old_pushed = (
        threading.Event(),
        threading.Event(),
        threading.Event(),
    )

    def old_before(method: str, path: str, body: bytes) -> None:
        if method != "GET" and path.startswith(repository):
            # its last look at the tag is behind it: it saw no newer commit
            old_pushing.set()
        if method == "PUT" and path == tag:
            new_pushed.wait(60)

    old_after = set_after_put(tag, old_pushed)

    def new_before(method: str, path: str, body: bytes) -> None:
        if method == "PUT" and path == tag:
            old_pushing.wait(60)
        elif method == "GET" and path == tag and new_pushed.is_set():
            old_pushed.wait(
                60
            )  # the newer run re-reads the tag only once the older one has pushed

    new_after = set_after_put(tag, new_pushed)

    with fault_proxy(registry.host) as other:
        proxy.before, proxy.after, other.before, other.after = (
            old_before,
            old_after,
            new_before,
            new_after,
        )
        older, newer = together(
            lambda: push(
                example_repo,
                tmp_path / "older",
                through(proxy, prefix, registry),
                sha=sha1,
                targets="webapp-staging",
            ),
            lambda: push(
                example_repo,
                tmp_path / "newer",
                through(other, prefix, registry),
                before=sha1,
                sha=sha2,
                targets="webapp-staging",
            ),
        )
    assert old_pushing.is_set() and new_pushed.is_set() and old_pushed.is_set()
    assert statuses(older) == {"webapp-staging": "pushed"} and statuses(newer) == {
        "webapp-staging": "pushed"
    }
    assert (
        f"was overwritten by main@sha1:{sha1}, an older commit: pushing again"
        in group(newer, "webapp-staging")
    )
    assert staging_of(registry, prefix) == (
        newer.by_name()["webapp-staging"]["digest"],
        sha2,
    )
    assert intact(registry, prefix, known) == {("webapp", "staging"): sha2}


def test_the_limit_an_older_push_landing_after_the_newer_run_ended(
    example_repo: GitRepo,
    registry: Registry,
    proxy: FaultProxy,
    prefix: str,
    tmp_path: Path,
) -> None:
    """What no client-side check can prevent (OCI has no conditional tag update): the older run's
    manifest lands after the newer run has finished. The tag holds the older commit until the next
    run for the newer one. docs/reliability.md states this; the workflow's `concurrency` prevents it."""
    known: Known = {}
    sha1 = remember(known, example_repo, tmp_path)
    sha2 = scale(example_repo, 2)
    remember(known, example_repo, tmp_path)
    repository = f"/v2/{registry_name(prefix)}/webapp/"
    tag = f"{repository}manifests/staging"
    old_pushing, newer_done = threading.Event(), threading.Event()

    def old_before(method: str, path: str, body: bytes) -> None:
        if method != "GET" and path.startswith(repository):
            # its last look at the tag is behind it: it saw no newer commit
            old_pushing.set()
        if method == "PUT" and path == tag:
            newer_done.wait(60)

    def new_before(method: str, path: str, body: bytes) -> None:
        if method == "PUT" and path == tag:
            old_pushing.wait(60)

    def newer_then_release() -> ActionRun:
        try:
            return push(
                example_repo,
                tmp_path / "newer",
                through(other, prefix, registry),
                before=sha1,
                sha=sha2,
                targets="webapp-staging",
            )
        finally:
            newer_done.set()

    with fault_proxy(registry.host) as other:
        proxy.before, other.before = old_before, new_before
        older, newer = together(
            lambda: push(
                example_repo,
                tmp_path / "older",
                through(proxy, prefix, registry),
                sha=sha1,
                targets="webapp-staging",
            ),
            newer_then_release,
        )
    assert statuses(older) == {"webapp-staging": "pushed"} and statuses(newer) == {
        "webapp-staging": "pushed"
    }
    assert staging_of(registry, prefix)[1] == sha1  # moved back: the documented limit
    assert intact(registry, prefix, known) == {
        ("webapp", "staging"): sha1
    }  # ... but never broken
    # The next run for the newer commit (a re-run, or the next push) puts it right.
    again = push(
        example_repo,
        tmp_path / "again",
        prefix,
        before=sha1,
        sha=sha2,
        targets="webapp-staging",
    )
    assert statuses(again) == {"webapp-staging": "pushed"}
    assert staging_of(registry, prefix) == (
        newer.by_name()["webapp-staging"]["digest"],
        sha2,
    )
