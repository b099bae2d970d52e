"""Promotion by digest: point tag `to` at the exact artifact tag `from` holds. Nothing is rendered.

For each target: read the digest at `from` (the registry reads the pipeline uses), check that it is
a Flux artifact whose revision is a commit of this branch's history, and re-tag that digest with
`flux tag artifact`. `to` never moves back to an older commit than it holds unless `force` (a
rollback, which the result says). Targets sharing an OCI repository share one promotion.

With signing on (`Request.check`), the digest at `from` must already carry a valid signature from
the run's key or identity before `to` moves: whoever can write the registry can write `from`, and a
promotion signs nothing (the digest at `to` is the same digest, already signed).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from gitops_action.changes.gitrepo import Repo
from gitops_action.config.targets import Target
from gitops_action.errors import guarded
from gitops_action.plan.catchup import commit_at
from gitops_action.push.writes import registry_error
from gitops_action.registry.flux import Flux
from gitops_action.registry.oci import Pulled
from gitops_action.registry.reader import Reader
from gitops_action.registry.retry import Retry

if TYPE_CHECKING:
    from gitops_action.sign.signing import Signed  # only runs that sign import signing

Status = Literal["promoted", "unchanged", "skipped", "failed"]


@dataclass
class Promotion:
    """What happened to one target's `to` tag. `digest` is what `to` holds afterwards (the
    digest taken from `from`, for signing); `previous_*` is what it held before."""

    target: Target
    status: Status
    from_tag: str
    to_tag: str
    digest: str | None = None
    revision: str = ""
    previous_digest: str | None = None
    previous_revision: str = ""
    rollback: bool = False
    error: str | None = None
    seconds: float = 0.0
    log: list[str] = field(default_factory=list)
    signed: bool = False  # a verified cosign signature is on `digest` (sign: cosign)
    signature: str | None = None
    missing: bool = False  # `from` does not exist: nothing to promote

    @property
    def url(self) -> str | None:
        return f"{self.target.artifact}@{self.digest}" if self.digest else None


@dataclass(frozen=True)
class Request:
    from_tag: str
    to_tag: str
    force: bool
    repo: Repo
    head: str
    flux: Flux
    reader: Reader
    scratch: Path
    # every target was asked for: one without `from` is skipped, not failed
    missing_ok: bool = False
    # With signing on: whether `oci://REPO@DIGEST` carries a valid signature (signing.check_signed).
    check: Callable[[str], Signed] | None = None
    parallel: int = 2
    # transient registry failures (registry/retry.py)
    retry: Retry = field(default_factory=Retry)


def run(targets: Sequence[Target], req: Request) -> list[Promotion]:
    """One Promotion per target, in order; one target's failure never stops another."""
    by_artifact: dict[str, Target] = {}
    for t in targets:
        if not t.problem:  # a target without a valid name has no artifact to promote
            by_artifact.setdefault(t.artifact, t)
    leaders = list(by_artifact.values())
    with ThreadPoolExecutor(max_workers=max(1, req.parallel)) as pool:
        done = list(
            pool.map(
                lambda it: _promoted(it[1], req, req.scratch / f"p{it[0]}"),
                enumerate(leaders),
            )
        )
    results = {p.target.artifact: p for p in done}
    out = []
    for t in targets:
        if t.problem:
            out.append(
                Promotion(t, "failed", req.from_tag, req.to_tag, error=t.problem)
            )
            continue
        first = results[t.artifact]
        if first.target is t:
            out.append(first)
            continue
        shared = dataclasses.replace(first, target=t, log=list(first.log))
        shared.log.append(
            f"same OCI repository as {first.target.id}: one promotion for both"
        )
        out.append(shared)
    return out


def _promoted(target: Target, req: Request, work: Path) -> Promotion:
    """One target's promotion; a bug fails this target only (errors.guarded)."""
    result = Promotion(target, "failed", req.from_tag, req.to_tag)

    def failed(error: str) -> None:
        result.status, result.error = "failed", error

    _, result.seconds = guarded(
        lambda: promote(target, req, work, result), failed, result.log
    )
    return result


_FETCH_LOCK = threading.Lock()


def known(repo: Repo, sha: str) -> bool:
    """The clone has `sha`, fetched from origin when it lacked it (a shallow checkout)."""
    with _FETCH_LOCK:
        if not repo.has_commit(sha):
            repo.fetch(sha, depth=None)
        return repo.has_commit(sha)


def descends(repo: Repo, ancestor: str, commit: str) -> bool:
    """`commit` is `ancestor` or a descendant of it. A shallow clone's history stops short of
    most ancestors: it is made whole (once) before answering no."""
    if repo.is_ancestor(ancestor, commit):
        return True
    with _FETCH_LOCK:
        if repo.is_shallow():
            repo.unshallow()
    return repo.is_ancestor(ancestor, commit)


def promote(t: Target, req: Request, work: Path, result: Promotion) -> None:
    dst_url = f"{t.artifact}:{req.to_tag}"

    def read(url: str, name: str) -> Pulled:
        return req.retry.run(
            lambda: req.reader.pull(url, work / name, content=False),
            result.log,
            "read",
        )

    src = _source(f"{t.artifact}:{req.from_tag}", read, req, result)
    if src is None:
        return
    ref = f"{t.artifact}@{src.digest}"
    signed = _signed(ref, req, result) if req.check else None
    if req.check and signed is None:
        return
    if not _may_move(dst_url, src, read, req, result):
        if result.status == "unchanged":
            _take(result, signed)
        return
    tagged = req.retry.run(lambda: req.flux.tag(ref, [req.to_tag]), result.log, "tag")
    if not tagged.ok:
        result.error = registry_error("tagging", ref, tagged, req.flux)
        return
    # Read back: the digest at `to` is what a cluster following it gets.
    after = read(dst_url, "after")
    if not after.call.ok or after.digest != src.digest:
        held_now = after.digest if after.call.ok else after.call.error
        result.error = f"after tagging, {dst_url} holds {held_now}, not {src.digest} (another run moved it?)"
        return
    result.status, result.digest = "promoted", src.digest
    _take(result, signed)


def _signed(ref: str, req: Request, result: Promotion) -> Signed | None:
    """The signature `from`'s digest carries (checked before `to` moves), or None: refused."""
    assert req.check is not None
    done = req.check(ref)
    result.log.extend(done.log)
    if done.ok:
        return done
    result.error = (
        f"{result.target.artifact}:{result.from_tag} holds {ref.partition('@')[2]}, which {done.error}: "
        "with signing on, only a digest this repository signed is promoted (nothing moved, nothing signed)"
    )
    return None


def _take(result: Promotion, signed: Signed | None) -> None:
    if signed is not None:
        result.signed, result.signature = True, signed.signature


Read = Callable[[str, str], Pulled]


def _source(url: str, read: Read, req: Request, result: Promotion) -> Pulled | None:
    """What `from` holds, when it is a Flux artifact of a commit of this branch's history."""
    src = read(url, "from")
    if not src.call.ok:
        if src.call.failure == "missing":
            result.error = f"{url} does not exist: nothing to promote"
            result.status = "skipped" if req.missing_ok else "failed"
            result.missing = True
        else:
            result.error = registry_error("reading", url, src.call, req.flux)
        return None
    sha = commit_at(src)
    if not sha or not src.digest:
        result.error = (
            f"{url} is not a Flux artifact of a commit: its revision is {src.revision or 'missing'!r} "
            "(expected REF@sha1:SHA, as flux push artifact --revision writes it)"
        )
        return None
    result.revision = src.revision
    if not (known(req.repo, sha) and descends(req.repo, sha, req.head)):
        result.error = (
            f"{url} holds {src.revision}, which is not a commit of this branch's history "
            f"(head {req.head[:12]}): not promoting it"
        )
        return None
    return src


def _may_move(
    url: str, src: Pulled, read: Read, req: Request, result: Promotion
) -> bool:
    """Whether `to` may be pointed at `src`: not when it already is (unchanged), nor when it holds
    a newer commit than `src` (unless force: a rollback)."""
    dst = read(url, "to")
    if not dst.call.ok:
        if dst.call.failure != "missing":
            result.error = registry_error("reading", url, dst.call, req.flux)
            return False
        return True
    result.previous_digest, result.previous_revision = dst.digest or None, dst.revision
    if dst.digest == src.digest:
        result.status, result.digest = "unchanged", src.digest
        return False
    sha, held = commit_at(src), commit_at(dst)
    if not held or held == sha:
        return True
    if not known(req.repo, held):
        result.log.append(
            f"{url} holds {dst.revision}, a commit this repository does not know: moving it"
        )
        return True
    # Backwards: what `to` holds descends from what `from` holds (whether or not it is in this
    # checkout's history: a run from an older checkout must not undo a newer promotion).
    if not descends(req.repo, sha, held):
        return True
    if not req.force:
        result.status = "skipped"
        result.error = (
            f"{url} holds {dst.revision}, newer than {src.revision} at {req.from_tag}: "
            "not moving it back (force: true rolls back)"
        )
        return False
    result.rollback = True
    result.log.append(
        f"rollback (force): {url} moves back from {dst.revision} to {src.revision}"
    )
    return True
