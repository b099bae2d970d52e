"""Issue 7: runs for an older and a newer commit, in reverse order or started together, never leave
a tag at the older commit: the older run finds the newer commit at the tag (also in its last look
right before pushing) and skips. Real processes, timoni, flux, registry and git.
"""

from __future__ import annotations

import threading
from pathlib import Path

from conftest import GitRepo
from support import example_runs
from support.action import ActionRun
from support.example_runs import (
    BIG_MODULE,
    Known,
    edit_config,
    intact,
    log_of,
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


def test_reverse_order_never_moves_the_tag_back_and_reruns_change_nothing(
    example_repo: GitRepo, registry: Registry, prefix: str, tmp_path: Path
) -> None:
    known: Known = {}
    sha1 = remember(known, example_repo, tmp_path)
    scale(example_repo, 2)
    sha2 = remember(known, example_repo, tmp_path)
    newer = push(
        example_repo,
        tmp_path / "newer",
        prefix,
        before=sha1,
        sha=sha2,
        targets="webapp-staging",
    )
    assert statuses(newer) == {"webapp-staging": "pushed"}
    digest = newer.by_name()["webapp-staging"]["digest"]
    # The run for the older commit finishes last.
    older = push(
        example_repo, tmp_path / "older", prefix, sha=sha1, targets="webapp-staging"
    )
    assert older.returncode == 0 and statuses(older) == {"webapp-staging": "skipped"}
    assert sha2 in older.by_name()["webapp-staging"]["error"]
    assert staging_of(registry, prefix) == (digest, sha2)
    # Either run again: same digest, same status, nothing moves.
    for name, sha, before, status in (
        ("newer", sha2, sha1, "unchanged"),
        ("older", sha1, None, "skipped"),
    ):
        again = push(
            example_repo,
            tmp_path / f"{name}-again",
            prefix,
            before=before,
            sha=sha,
            targets="webapp-staging",
        )
        assert again.returncode == 0 and statuses(again) == {
            "webapp-staging": status
        }, log_of(again)
        assert again.by_name()["webapp-staging"]["digest"] == digest
        assert staging_of(registry, prefix) == (digest, sha2)
    assert intact(registry, prefix, known) == {("webapp", "staging"): sha2}


def test_runs_started_together_end_at_the_newer_commit(
    example_repo: GitRepo, registry: Registry, prefix: str, tmp_path: Path
) -> None:
    known: Known = {}
    base = remember(known, example_repo, tmp_path)
    for round_ in range(1, 4):
        older = scale(example_repo, 10 * round_ + 1)
        remember(known, example_repo, tmp_path)
        newer = scale(example_repo, 10 * round_ + 2)
        remember(known, example_repo, tmp_path)
        runs = together(
            lambda o=older, b=base, r=round_: push(
                example_repo,
                tmp_path / f"older{r}",
                prefix,
                before=b,
                sha=o,
                targets="webapp-staging",
            ),
            lambda o=older, n=newer, r=round_: push(
                example_repo,
                tmp_path / f"newer{r}",
                prefix,
                before=o,
                sha=n,
                targets="webapp-staging",
            ),
        )
        assert [r.returncode for r in runs] == [0, 0], [log_of(r) for r in runs]
        assert statuses(runs[1]) == {"webapp-staging": "pushed"}
        assert statuses(runs[0])["webapp-staging"] in ("pushed", "skipped")
        assert staging_of(registry, prefix)[1] == newer, (
            round_,
            [r.stdout for r in runs],
        )
        base = newer
    intact(registry, prefix, known)


def test_an_older_run_takes_a_last_look_before_pushing(
    example_repo: GitRepo,
    registry: Registry,
    proxy: FaultProxy,
    prefix: str,
    tmp_path: Path,
) -> None:
    """The older run reads the tag (alongside its render) before the newer run pushes; the newer run
    finishes while the older one still renders. Its last look right before pushing stops it. (A render
    of some MB makes sure the first read ends before the render does: the case the last look is for.)"""
    for rel, text in BIG_MODULE.items():
        example_repo.write(rel, text.replace("mib:  50", "mib:  8"))
    edit_config(
        example_repo,
        "bundles:\n",
        "  - name: big\n    namespace: apps\n    module: ./modules/big\n"
        '    values: [apps/big/values.cue]\n    artifact: "{registry}/big"\nbundles:\n',
    )
    sha1 = example_repo.head()
    values = example_repo.path / "apps/big/values.cue"
    values.write_text(values.read_text().replace("0123", "3210"))
    sha2 = example_repo.commit_all("newer big")
    tag = f"/v2/{registry_name(prefix)}/big/manifests/latest"
    old_reads: list[str] = []
    old_read, newer_done = threading.Event(), threading.Event()

    def old_before(method: str, path: str, body: bytes) -> None:
        if method == "GET" and path == tag:
            old_reads.append(path)
            if len(old_reads) == 2:
                newer_done.wait(
                    60
                )  # the older run's second look waits for the newer run to end

    def old_after(method: str, path: str, body: bytes, status: int) -> None:
        if method == "GET" and path == tag:
            old_read.set()

    def new_before(method: str, path: str, body: bytes) -> None:
        if method == "PUT" and path == tag:
            old_read.wait(60)

    def newer_then_release() -> ActionRun:
        try:
            return push(
                example_repo,
                tmp_path / "newer",
                through(other, prefix, registry),
                before=sha1,
                sha=sha2,
                targets="big",
            )
        finally:
            newer_done.set()

    with fault_proxy(registry.host) as other:
        proxy.before, proxy.after, other.before = old_before, old_after, new_before
        older, newer = together(
            lambda: push(
                example_repo,
                tmp_path / "older",
                through(proxy, prefix, registry),
                sha=sha1,
                targets="big",
            ),
            newer_then_release,
        )
    assert statuses(newer) == {"big": "pushed"}
    assert (
        len(old_reads) == 2
    )  # the first read found nothing newer: only the last look did
    assert older.returncode == 0 and statuses(older) == {"big": "skipped"}, log_of(
        older
    )
    assert (
        f"now holds main@sha1:{sha2}, a descendant of this commit"
        in older.by_name()["big"]["error"]
    )
    assert not any(e.method == "PUT" for e in proxy.log)  # the older run never wrote
    found = registry.revision(f"{registry_name(prefix)}/big", "latest")
    assert found == f"main@sha1:{sha2}"
