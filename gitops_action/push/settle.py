"""After the run's pushes: re-read each pushed tag, put it back if a run for an older commit
overwrote it, then give the target its other tags.

A run for an older commit that took its last look at the tag before our push may push after it
(OCI has no conditional tag update). Its span from reading the tag to the end of its push takes
about as long as ours, so the run waits twice that (per target, alongside
the other targets' work: timer.py) before re-reading;
when the tag then holds an ancestor of our commit, it pushes again. The repair is the same push
(`writes.push`): same content, commit and annotations, so the same digest.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gitops_action.config.targets import Target
from gitops_action.plan.catchup import commit_at
from gitops_action.push import writes

if TYPE_CHECKING:
    from gitops_action.push.options import Options

REPAIRS = 2  # pushes again after finding the tag overwritten by an older commit's run
# wait before re-reading: factor x Settling.seconds, at least, at most
SETTLE = (2.0, 0.1, 15.0)


@dataclass(frozen=True)
class Settling:
    """A push whose tag is re-read once its settle wait is over."""

    target: Target
    url: str
    digest: str
    rendered: Path
    work: Path
    # from the last look at the tag to the end of the push (a racing run's window)
    seconds: float


@dataclass(frozen=True)
class Settled:
    # what the tag holds now from this run ("" when the run could not keep it)
    digest: str
    error: str = ""  # the target fails with this


def wait(seconds: float) -> float:
    """How long after a push its tag is re-read: SETTLE's factor times the push's span (from the
    last look to the end of the push), within SETTLE's bounds."""
    factor, least, most = SETTLE
    return min(max(factor * seconds, least), most)


def settle(pending: Settling, opts: Options, log: list[str]) -> Settled:
    """Re-read the pushed tag (repairing it), then point the other tags at the digest it holds."""
    kept = reread(pending, opts, log)
    if kept.error or not kept.digest or len(pending.target.tags) < 2:
        return kept
    error = writes.tag_others(pending.target, kept.digest, opts, log)
    return Settled(kept.digest, error)


def reread(pending: Settling, opts: Options, log: list[str]) -> Settled:
    """The tag read back after the push: Settled(digest) to keep, Settled("") when the tag now
    holds a newer commit (whose run tags it), or an error when it could not be put back."""
    factor, least, most = SETTLE
    digest, took = pending.digest, pending.seconds
    for attempt in range(REPAIRS + 1):
        if attempt:
            time.sleep(min(max(factor * took, least), most))
        seen = opts.reader.pull(
            pending.url, pending.work / f"reread{attempt}", content=False
        )
        if not seen.call.ok:
            log.append(
                f"re-read: could not re-read {pending.url} after pushing: {seen.call.error}"
            )
            return Settled(digest)
        sha = commit_at(seen)
        if seen.digest == digest or not sha or sha == opts.head:
            return Settled(digest)
        if opts.ancestry.newer(opts.repo, seen, opts.head):
            log.append(
                f"re-read: {pending.url} now holds {seen.revision}, a newer commit: leaving the tags to it"
            )
            return Settled("")
        if not opts.repo.is_ancestor(sha, opts.head):
            # another line of history (e.g. a forced push): not ours to judge
            return Settled(digest)
        if attempt == REPAIRS:
            break
        log.append(
            f"re-read: {pending.url} was overwritten by {seen.revision}, an older commit: pushing again"
        )
        again = writes.push(pending.target, pending.url, pending.rendered, opts, log)
        if not again.call.ok:
            return Settled(
                "",
                writes.registry_error(
                    "pushing again", pending.url, again.call, opts.flux
                ),
            )
        if again.digest != digest:
            log.append(f"re-read: the push again gave {again.digest}, not {digest}")
        digest, took = again.digest, again.call.seconds
    why = f"{pending.url} kept being overwritten by runs for older commits ({REPAIRS} pushes again)"
    return Settled("", why)
