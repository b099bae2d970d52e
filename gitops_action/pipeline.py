"""Planned targets -> rendered -> pushed (or diffed), in parallel, every target to the end.

One target's failure never stops another; each result says what happened and why.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

from . import cue_errors, manifests, settling, timoni
from .config import Target
from .credentials import redact
from .flux import Call, Flux, Pulled, Pushed
from .gitrepo import Repo
from .planner import Plan, PlannedTarget
from .progress import Event
from .registry import Reader

Status = Literal["pushed", "unchanged", "dry-run", "planned", "failed", "removed", "skipped"]
Mode = Literal["push", "dry-run"]


@dataclass(frozen=True)
class Annotation:
    file: str
    line: int
    col: int
    message: str


@dataclass(frozen=True)
class Settling:
    """A push whose tag is verified once the run's pushes are done (see _settle)."""

    url: str
    rendered: Path
    work: Path
    seconds: float  # from the last look at the tag to the end of the push (a racing run's window)


@dataclass
class TargetResult:
    target: Target
    status: Status
    revision: str = ""
    digest: str | None = None
    error: str | None = None
    seconds: float = 0.0
    reasons: tuple[str, ...] = ()
    annotations: list[Annotation] = field(default_factory=list)
    log: list[str] = field(default_factory=list)  # what timoni and flux said, for the log group
    diff: manifests.StreamDiff | None = None
    new_target: bool = False  # dry-run: nothing deployed at the tag yet
    settling: Settling | None = field(default=None, repr=False)

    @property
    def url(self) -> str | None:
        return f"{self.target.artifact}@{self.digest}" if self.digest else None


class Ancestry:
    """`newer_commit_at_tag` once per commit in a run: the targets an earlier run pushed all carry its
    commit, so one set of git calls (and, in a shallow clone, one fetch) serves them all."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: dict[tuple[str, str], str] = {}

    def newer(self, repo: Repo, revision: str, head: str) -> str:
        key = (commit_of(revision), head)
        with self._lock:  # also keeps two targets from fetching the same commit at once
            if key not in self._known:
                self._known[key] = newer_commit_at_tag(repo, revision, head)
            return self._known[key]


class RepositoryLocks:
    """One lock per OCI repository: targets that share a repository (different tags) write to it one
    at a time. Concurrent uploads of the same blob to one repository (the flux config blob is the same
    for every push) can fail in the registry: `DIGEST_INVALID`, `MANIFEST_BLOB_UNKNOWN`."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def __call__(self, artifact: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(artifact, threading.Lock())


@dataclass(frozen=True)
class Options:
    mode: Mode
    repo: Repo  # history: ancestry checks, fetching
    root: Path  # the files at head (the work tree, or an export of head)
    head: str
    revision: str
    source: str
    flux: Flux
    reader: Reader
    scratch: Path
    parallel: int = 2
    skip_unchanged: bool = True
    render_timeout: float = 300
    runtime_from_env: bool = False
    attempts: int = 4
    backoff: float = 1.0
    secrets: tuple[str, ...] = ()
    config_path: str = ""
    ancestry: Ancestry = field(default_factory=Ancestry, compare=False, repr=False)
    timoni_identity: str = ""  # timoni.identity(): part of render_inputs
    writing: RepositoryLocks = field(default_factory=RepositoryLocks, compare=False, repr=False)


T = TypeVar("T", Pushed, Pulled, Call)


def _call_of(result: Pushed | Pulled | Call) -> Call:
    return result if isinstance(result, Call) else result.call


def with_retries(action: Callable[[], T], opts: Options, log: list[str], what: str) -> T:
    """Retry transient registry failures (5xx, resets, timeouts) with exponential backoff;
    never 401/403, a missing tag or bad input."""
    delay = opts.backoff
    for attempt in range(1, opts.attempts + 1):
        result = action()
        call = _call_of(result)
        if call.ok or call.failure != "transient" or attempt == opts.attempts:
            return result
        log.append(
            f"{what}: transient failure (attempt {attempt}/{opts.attempts}), "
            f"retrying in {delay:.0f}s: {call.error}"
        )
        time.sleep(delay)
        delay *= 2
    raise AssertionError("unreachable")


def run(plan: Plan, opts: Options, on_progress: Callable[[Event], None] | None = None) -> list[TargetResult]:
    """`on_progress` hears of each target as it starts and as it finishes (a pushed one once its tag
    is verified), from the worker threads: see progress.py."""
    cache = opts.scratch / "timoni-cache"
    cache.mkdir(parents=True, exist_ok=True)
    items = list(enumerate(plan.targets))
    tell = on_progress or (lambda event: None)

    def verified(result: TargetResult) -> None:
        settle(result, opts)
        tell(Event("finished", result.target, result))

    # Each pushed tag is verified once its own settle wait is over (see _settle), while the other
    # targets render and push: the wait overlaps their work instead of idling at the end.
    with settling.Timer(max(1, opts.parallel)) as timer:

        def one(i: int, planned: PlannedTarget) -> TargetResult:
            tell(Event("started", planned.target))
            result = process(planned, opts, opts.scratch / f"t{i}", cache)
            if result.settling is None:
                tell(Event("finished", planned.target, result))
            else:
                timer.at(time.monotonic() + settle_wait(result.settling.seconds), lambda: verified(result))
            return result

        with ThreadPoolExecutor(max_workers=max(1, opts.parallel)) as pool:
            results = list(pool.map(lambda it: one(*it), items))
    return results


def settle_wait(seconds: float) -> float:
    """How long after a push its tag is re-read: SETTLE's factor times the push's span (from the
    last look to the end of the push), within SETTLE's bounds."""
    factor, least, most = SETTLE
    return min(max(factor * seconds, least), most)


def settle(result: TargetResult, opts: Options) -> None:
    """After the run's pushes: verify each pushed tag, then add the target's other tags."""

    def verify_then_tag() -> None:
        digest = _settle(result, opts)
        if digest and len(result.target.tags) > 1:
            _tag_others(result.target, digest, opts, result)

    _guarded(result, opts, verify_then_tag)
    result.settling = None


def process(planned: PlannedTarget, opts: Options, work: Path, cache: Path) -> TargetResult:
    result = TargetResult(planned.target, "failed", revision=opts.revision, reasons=planned.reasons)
    _guarded(result, opts, lambda: _process(planned, opts, work, cache, result))
    return result


def _guarded(result: TargetResult, opts: Options, step: Callable[[], None]) -> None:
    """Run one step of a target: a bug fails that target only; its time counts; no secret is kept."""
    start = time.monotonic()
    try:
        step()
    except Exception as exc:  # a bug must not cost the other targets their run
        result.status, result.error = "failed", f"internal error: {type(exc).__name__}: {exc}"
    result.seconds += time.monotonic() - start
    if result.error:
        result.error = redact(result.error, list(opts.secrets))
    result.log = [redact(x, list(opts.secrets)) for x in result.log]


def _fail(result: TargetResult, message: str) -> None:
    result.status, result.error = "failed", message


def _process(planned: PlannedTarget, opts: Options, work: Path, cache: Path, result: TargetResult) -> None:
    t = planned.target
    root = opts.root
    if planned.status == "removed":
        result.status = "removed"
        result.error = None
        return
    if planned.error:
        _fail(result, planned.error)
        if t.line:
            result.annotations.append(Annotation(opts.config_path, t.line, 1, planned.error))
        return
    escaped = outside_repository(root, [*t.files, *([t.local_module] if t.local_module else [])])
    if escaped:
        _fail(result, f"{escaped} resolves outside the repository (symlink): refusing to read it ({t.key})")
        return

    # What the tag holds, before rendering (one HTTP request): a re-run need not render at all.
    url = f"{t.artifact}:{t.tags[0]}"
    pull_log: list[str] = []

    def read(content: bool) -> Pulled:
        return with_retries(
            lambda: opts.reader.pull(url, work / "deployed", content=content), opts, pull_log, "pull"
        )

    current = read(content=False)
    held = current.annotations.get(RENDER_INPUTS) if current.revision == opts.revision else None
    if held and held == render_inputs(t, opts):
        result.log.extend(pull_log)
        result.log.append(f"{url} holds this commit's render from the same inputs (a re-run): not rendered")
        _unchanged(result, current, opts)
        return
    # The content (skip-unchanged, dry-run diff) comes while timoni renders: a second read of the tag,
    # consistent in itself. (A flux pull, the fallback, brought the content already.)
    compare = opts.mode == "dry-run" or opts.skip_unchanged
    with ThreadPoolExecutor(max_workers=1) as side:
        reading = side.submit(read, True) if compare and current.call.ok and not current.directory else None
        rendered = timoni.render(
            t,
            repo_root=root,
            out_dir=work,
            cache_dir=cache,
            timeout=opts.render_timeout,
            runtime_from_env=opts.runtime_from_env and opts.mode == "push",
        )
    current = reading.result() if reading else current
    said = cue_errors.clean(rendered.stderr, t.files, root)
    if said:
        result.log.append(said)
    if not rendered.ok:
        located = cue_errors.locate(said, t.files, root, bundle=t.kind == "bundle")
        first = located[0].message if located else rendered.error
        where = f" ({located[0].file}:{located[0].line})" if located else ""
        _fail(result, f"timoni build failed{where}: {cue_errors.clean(first, t.files, root)}")
        result.annotations = [Annotation(x.file, x.line, x.col, x.message) for x in located]
        if not located and t.line:
            result.annotations.append(Annotation(opts.config_path, t.line, 1, result.error or ""))
        return

    result.log.extend(pull_log)  # a failed render is what the user needs to hear about, not the read
    exists = current.call.ok
    if not exists and current.call.failure != "missing":
        _fail(result, _registry_error("reading", url, current.call))
        return

    if opts.mode == "dry-run":
        _dry_run(result, rendered.path, current if exists else None)
        return

    if exists:
        newer = opts.ancestry.newer(opts.repo, current.revision, opts.head)
        if newer:
            result.status, result.digest = "skipped", current.digest or None
            result.error = (
                f"{url} already holds {current.revision}, a descendant of this commit: not moving it back"
            )
            return
        deployed = work / "deployed" / timoni.MANIFESTS
        if opts.skip_unchanged and deployed.is_file() and same_file(deployed, rendered.path):
            _unchanged(result, current, opts)
            return

    # A last look right before pushing: a run for a newer commit may have pushed while this one
    # rendered. From here to the end of the push is the window _settle covers from the newer run's side.
    last_look = time.monotonic()
    last = opts.reader.pull(url, work / "last-look", content=False)
    if last.call.ok and opts.ancestry.newer(opts.repo, last.revision, opts.head):
        result.status, result.digest = "skipped", last.digest or None
        result.error = f"{url} now holds {last.revision}, a descendant of this commit: not moving it back"
        return

    inputs = render_inputs(t, opts)
    notes = {RENDER_INPUTS: inputs} if inputs else {}
    with opts.writing(t.artifact):
        pushed = with_retries(
            lambda: opts.flux.push(
                url, rendered.path, source=opts.source, revision=opts.revision, annotations=notes
            ),
            opts,
            result.log,
            "push",
        )
    if not pushed.call.ok:
        _fail(result, _registry_error("pushing", url, pushed.call))
        return
    result.status, result.digest = "pushed", pushed.digest
    result.settling = Settling(url, rendered.path, work, time.monotonic() - last_look)


def _unchanged(result: TargetResult, current: Pulled, opts: Options) -> None:
    t = result.target
    result.status, result.digest = "unchanged", current.digest or None
    # A run that pushed the first tag and then lost the registry left the other tags behind:
    # point them at what the first tag holds (nothing changes when they already do).
    if len(t.tags) > 1 and current.digest:
        _tag_others(t, current.digest, opts, result)


RENDER_INPUTS = "timoni-flux-push.render-inputs"


def render_inputs(t: Target, opts: Options) -> str:
    """What a render of `t` at this commit depends on, hashed; pushed as an annotation. When the tag
    already holds this commit with the same value, rendering again would give the same manifests:
    a re-run reports `unchanged` without running timoni. "" where a render can depend on more than
    the commit's files and timoni: modules from a registry (a tag can move), bundles (runtime
    values from the environment, remote modules), and wherever the content is not compared."""
    if opts.mode != "push" or not opts.skip_unchanged or t.kind != "instance" or not t.local_module:
        return ""
    if not opts.timoni_identity:
        return ""
    inputs = {
        "commit": opts.head,
        "timoni": opts.timoni_identity,
        "args": timoni.build_args(t, runtime_from_env=False),
    }
    return "sha256:" + hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def _tag_others(t: Target, digest: str, opts: Options, result: TargetResult) -> None:
    ref = f"{t.artifact}@{digest}"
    with opts.writing(t.artifact):
        tagged = with_retries(lambda: opts.flux.tag(ref, t.tags[1:]), opts, result.log, "tag")
    if not tagged.ok:
        _fail(result, _registry_error("tagging", ref, tagged))


REPAIRS = 2  # pushes again after finding the tag overwritten by an older commit's run
SETTLE = (2.0, 0.1, 15.0)  # wait before re-reading: factor x Settling.seconds, at least, at most


def _settle(result: TargetResult, opts: Options) -> str:
    """Re-read the tag after pushing. A run for an older commit that took its last look at the tag
    before our push may push after it (OCI has no conditional tag update). Its span from reading the
    tag to the end of its push takes about as long as ours, so the run waits twice that (per target,
    alongside the other targets: settling.py) before re-reading; when the tag then holds an ancestor
    of our commit, push again.
    Returns the digest the other tags should get, or "" when the tag now holds a newer commit (whose
    run tags them) or could not be put back."""
    pending = result.settling
    assert pending is not None and result.digest
    factor, least, most = SETTLE
    digest, took = result.digest, pending.seconds
    for attempt in range(REPAIRS + 1):
        if attempt:
            time.sleep(min(max(factor * took, least), most))
        seen = opts.reader.pull(pending.url, pending.work / f"verify{attempt}", content=False)
        if not seen.call.ok:
            result.log.append(f"verify: could not re-read {pending.url} after pushing: {seen.call.error}")
            return digest
        sha = commit_of(seen.revision)
        if seen.digest == digest or not sha or sha == opts.head:
            return digest
        if opts.ancestry.newer(opts.repo, seen.revision, opts.head):
            result.log.append(
                f"verify: {pending.url} now holds {seen.revision}, a newer commit: leaving the tags to it"
            )
            return ""
        if not opts.repo.is_ancestor(sha, opts.head):
            return digest  # another line of history (e.g. a forced push): not ours to judge
        if attempt == REPAIRS:
            break
        result.log.append(
            f"verify: {pending.url} was overwritten by {seen.revision}, an older commit: pushing again"
        )
        with opts.writing(result.target.artifact):
            again = with_retries(
                lambda: opts.flux.push(
                    pending.url, pending.rendered, source=opts.source, revision=opts.revision
                ),
                opts,
                result.log,
                "push",
            )
        if not again.call.ok:
            _fail(result, _registry_error("pushing again", pending.url, again.call))
            return ""
        digest = result.digest = again.digest
        took = again.call.seconds
    _fail(result, f"{pending.url} kept being overwritten by runs for older commits ({REPAIRS} pushes again)")
    return ""


def _dry_run(result: TargetResult, rendered: Path, current: Pulled | None) -> None:
    try:
        new = manifests.parse(rendered.read_text("utf-8"))
        old: dict[manifests.Key, dict[str, object]] = {}
        if current is not None and current.directory is not None:
            for f in sorted(current.directory.rglob("*.y*ml")):
                old.update(manifests.parse(f.read_text("utf-8")))
    except (manifests.ManifestError, UnicodeDecodeError) as exc:
        _fail(result, str(exc))
        return
    result.status = "dry-run"
    result.new_target = current is None
    result.diff = manifests.diff(old, new)
    if current is not None:
        result.digest = current.digest or None


_TIMED_OUT = re.compile(r"deadline exceeded|timed? ?out|Client\.Timeout", re.I)


def _registry_error(doing: str, url: str, call: Call) -> str:
    if call.failure == "auth":
        return f"the registry refused the credentials while {doing} {url}: {call.error}"
    if call.failure == "transient" and _TIMED_OUT.search(call.error):
        # A stall, or flux still retrying 5xx answers when the deadline came: flux cannot tell which.
        return (
            f"timed out while {doing} {url} (gave up after retries; the `timeout` input limits each "
            f"attempt): {call.error}"
        )
    if call.failure == "transient":
        return f"the registry kept failing while {doing} {url} (gave up after retries): {call.error}"
    return f"{doing} {url} failed: {call.error}"


def same_file(a: Path, b: Path) -> bool:
    if a.stat().st_size != b.stat().st_size:
        return False
    return a.read_bytes() == b.read_bytes()


def commit_of(revision: str) -> str:
    """The commit SHA in a Flux revision (`main@sha1:abc...`, `sha1:abc`, or a bare SHA)."""
    tail = revision.rsplit(":", 1)[-1].rsplit("@", 1)[-1]
    return tail if len(tail) == 40 and all(c in "0123456789abcdef" for c in tail) else ""


def newer_commit_at_tag(repo: Repo, revision: str, head: str) -> str:
    """The commit at the tag if it is a strict descendant of `head` (a newer run pushed it)."""
    sha = commit_of(revision)
    if not sha or sha == head:
        return ""
    if not repo.has_commit(sha):
        repo.fetch(sha, depth=None)
        if not repo.has_commit(sha):
            return ""
    return sha if repo.is_ancestor(head, sha) else ""


def outside_repository(root: Path, paths: list[str]) -> str:
    real_root = root.resolve()
    for p in paths:
        full = (root / p).resolve()
        if full != real_root and real_root not in full.parents:
            return p
    return ""


def exit_code(results: list[TargetResult]) -> int:
    return 1 if any(r.status == "failed" for r in results) else 0
