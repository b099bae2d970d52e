"""Planned targets -> rendered -> pushed (or diffed), in parallel, every target to the end.

Per target, a short sequence of steps, each a function that returns what the next one takes:

    settled_early  removed, skipped by the plan, a planning error
    refused | read_tag   a path outside the repository; what the first tag holds (the plan's
                   read when it planned from the tags), read alongside those checks
    rerun          the tag holds this commit's render from the same inputs (with signing: and the
                   digest carries this key's signature): unchanged, no render
    render         timoni, while the tag's content is read alongside
    dry_run | deliver   the diff; or never-backwards, skip-unchanged, last look, push
and once for the run, after every push: settle.settle (re-read, repair, other tags).

One target's failure never stops another; each result says what happened and why.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path

from gitops_action import runner
from gitops_action.config.targets import Target
from gitops_action.errors import guarded, internal_error
from gitops_action.plan.catchup import CHECKED, commit_at
from gitops_action.plan.planner import Plan, PlannedTarget
from gitops_action.push import settle, timer, writes
from gitops_action.push.options import Options
from gitops_action.push.results import Annotation, Event, Status, TargetResult
from gitops_action.push.settle import Settling
from gitops_action.push.writes import render_inputs
from gitops_action.registry.oci import Pulled
from gitops_action.render import containment, cue_errors, manifests, timoni
from gitops_action.secrets import redact

__all__ = ["Options", "render_inputs", "run"]


@dataclass(frozen=True)
class Outcome:
    """What a target's steps decided; the target's result is made from it once."""

    status: Status
    digest: str | None = None
    error: str | None = None
    annotations: tuple[Annotation, ...] = ()
    diff: manifests.StreamDiff | None = None
    new_target: bool = False
    settling: Settling | None = None
    # this run pushed the digest, or compared its whole content with its render
    built: bool = False
    # the check record this run wrote (oci://REPO@DIGEST), to be signed
    record: str = ""


def _failed(error: str, *annotations: Annotation) -> Outcome:
    return Outcome("failed", error=error, annotations=annotations)


@dataclass(frozen=True)
class Work:
    """Where one target's steps write, and what they say for its log group."""

    dir: Path
    cache: Path
    log: list[str] = field(default_factory=list)
    # the run's threads for what a target's worker waits on beside its own step (a read during the
    # checks or the render): one each for `parallel` workers, made once per run
    side: ThreadPoolExecutor | None = field(default=None, compare=False, repr=False)

    def beside(self, job: Callable[[], Pulled]) -> Future[Pulled]:
        if self.side is None:  # a caller of the steps without a run around them
            done: Future[Pulled] = Future()
            done.set_result(job())
            return done
        return self.side.submit(job)


def run(
    plan: Plan, opts: Options, on_progress: Callable[[Event], None] | None = None
) -> list[TargetResult]:
    """Every planned target to its result. `on_progress` hears of each target as it starts and as
    it finishes (a pushed one once its tag is re-read), from the worker threads: see progress.py.
    Each pushed tag is re-read once its own settle wait is over (settle.py), while the other targets
    render and push: the wait overlaps their work instead of idling at the end (timer.py)."""
    cache = opts.scratch / "timoni-cache"
    cache.mkdir(parents=True, exist_ok=True)
    containment.forget()
    tell = on_progress or (lambda event: None)
    secrets = list(opts.secrets)
    verified: dict[int, TargetResult] = {}

    workers = max(1, opts.parallel)
    with (
        timer.Timer(workers) as later,
        ThreadPoolExecutor(max_workers=workers, thread_name_prefix="side") as side,
    ):

        def one(i: int, planned: PlannedTarget) -> TargetResult:
            # the trace's lines from this thread are about this target
            runner.label(f"t{i}")
            tell(Event("started", planned.target))
            result, pending = process(
                planned, opts, Work(opts.scratch / f"t{i}", cache, side=side)
            )
            if pending is None:
                tell(Event("finished", planned.target, result))
                return result

            def verify() -> None:
                runner.label(f"t{i}")
                try:
                    verified[i] = _after(result, _settled(pending, opts), secrets)
                    tell(Event("finished", planned.target, verified[i]))
                # a bug must not cost the run its results; traceback: its log
                except Exception as exc:
                    verified[i] = replace(
                        result, status="failed", error=internal_error(exc, result.log)
                    )

            later.at(time.monotonic() + settle.wait(pending.seconds), verify)
            return result

        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(lambda it: one(*it), enumerate(plan.targets)))
    return [verified.get(i, r) for i, r in enumerate(results)]


def process(
    planned: PlannedTarget, opts: Options, work: Work
) -> tuple[TargetResult, Settling | None]:
    """One target to its result, and its push to settle once the run's pushes are done."""
    outcome, seconds = _guarded(lambda: _steps(planned, opts, work), work.log)
    result = TargetResult(
        planned.target,
        outcome.status,
        revision=opts.revision,
        digest=outcome.digest,
        error=redact(outcome.error, list(opts.secrets)) if outcome.error else None,
        seconds=seconds,
        reasons=planned.reasons,
        annotations=list(outcome.annotations),
        log=[redact(x, list(opts.secrets)) for x in work.log],
        diff=outcome.diff,
        new_target=outcome.new_target,
        base=planned.base,
        caught_up=planned.caught_up,
        built=outcome.built,
        record=outcome.record or None,
    )
    return result, outcome.settling


def _guarded(step: Callable[[], Outcome], log: list[str]) -> tuple[Outcome, float]:
    """A bug fails that target only, its traceback in the target's log; its time counts."""
    return guarded(step, _failed, log)


def _settled(
    pending: Settling, opts: Options
) -> tuple[settle.Settled, list[str], float]:
    log: list[str] = []
    done, seconds = guarded(
        lambda: settle.settle(pending, opts, log),
        lambda error: settle.Settled("", error),
        log,
    )
    return done, log, seconds


def _after(
    result: TargetResult,
    settled: tuple[settle.Settled, list[str], float],
    secrets: list[str],
) -> TargetResult:
    """The result once its push has settled: repaired digest, the settle log, or its failure."""
    done, log, seconds = settled
    log = [*result.log, *(redact(x, secrets) for x in log)]
    changed = replace(result, log=log, seconds=result.seconds + seconds)
    if done.error:
        return replace(changed, status="failed", error=redact(done.error, secrets))
    return replace(changed, digest=done.digest or result.digest)


# --- the steps --------------------------------------------------------------------------------


def _steps(planned: PlannedTarget, opts: Options, work: Work) -> Outcome:
    early = settled_early(planned, opts)
    if early is not None:
        return early
    t = planned.target
    url = f"{t.artifact}:{t.tags[0]}"
    refused, current = _checked_and_read(planned, url, opts, work)
    if refused is not None:
        return refused
    if current.foreign:
        return _failed(writes.not_ours(url, current.foreign))
    if rerun(t, current, opts):
        work.log.append(
            f"{url} holds this commit's render from the same inputs (a re-run): not rendered"
        )
        return unchanged(t, current, opts, work, planned.stale_tags)
    rendered, current = render(planned, current, url, opts, work)
    if isinstance(rendered, Outcome):
        return rendered
    if not current.call.ok and current.call.failure != "missing":
        return _failed(writes.registry_error("reading", url, current.call, opts.flux))
    if opts.mode == "dry-run":
        return dry_run(rendered, current if current.call.ok else None)
    # What the plan found at the other tags holds while the first tag still holds what it read.
    same = planned.held is not None and current.digest == planned.held.digest
    return deliver(
        t, url, current, rendered, opts, work, planned.stale_tags if same else None
    )


def settled_early(planned: PlannedTarget, opts: Options) -> Outcome | None:
    """A target the plan settled; None: go on (its checks, its tag)."""
    t = planned.target
    if planned.status == "removed":
        return Outcome("removed")
    if planned.status == "skipped":  # the plan found a newer commit at the tag
        held = planned.held.digest if planned.held and planned.held.digest else None
        return Outcome("skipped", digest=held, error=planned.error)
    if planned.error:
        notes = (
            (Annotation(opts.config_path, t.line, 1, planned.error),) if t.line else ()
        )
        return _failed(planned.error, *notes)
    return None


def _checked_and_read(
    planned: PlannedTarget, url: str, opts: Options, work: Work
) -> tuple[Outcome | None, Pulled]:
    """The checks before a render (`refused`) and what the tag holds: the plan's read, or one made
    now, alongside the checks (the module's walk and the registry's answer overlap). A refused
    target fails with the checks' reason whatever the read found."""
    if planned.held is not None:
        with runner.span("step", "checks"):
            return refused(planned, opts), planned.held
    mark = work.dir.name

    def read() -> Pulled:
        runner.label(mark)
        return read_tag(url, opts, work, content=False)

    reading = work.beside(read)
    try:
        with runner.span("step", "checks"):
            failed = refused(planned, opts)
    finally:
        wait([reading])  # nothing of this target goes on behind its back
    return failed, reading.result()


def refused(planned: PlannedTarget, opts: Options) -> Outcome | None:
    """A target that must not be rendered (a path outside the repository; a bundle that does not
    evaluate, or whose modules leave it); None: render it."""
    t = planned.target
    escaped = containment.escape(opts.root, t)
    if escaped or t.kind != "bundle":
        return _failed(escaped) if escaped else None
    # A bundle's modules are those timoni evaluates it to name (with the build's runtime values).
    runtime = opts.runtime_from_env and opts.mode == "push"
    done = timoni.evaluate_bundle(t, repo_root=opts.root, cache_dir=opts.scratch / "timoni-cache",
                                  timeout=opts.render_timeout, runtime_from_env=runtime)  # fmt: skip
    if done.stderr:  # the build would fail the same way: say it as it would
        return _render_failure(
            planned, cue_errors.clean(done.stderr, t.files, opts.root), done.error, opts
        )
    escaped = done.error or containment.bundle_escape(opts.root, t, done.modules)
    return _failed(escaped) if escaped else None


def read_tag(url: str, opts: Options, work: Work, *, content: bool) -> Pulled:
    with runner.span("step", "read" if not content else "read-content"):
        return opts.retry.run(
            lambda: opts.reader.pull(url, work.dir / "deployed", content=content),
            work.log,
            "pull",
        )


def rerun(t: Target, current: Pulled, opts: Options) -> bool:
    """The tag holds this commit, pushed from the same render inputs: rendering again would give
    the same manifests. Anyone who can write to the registry can copy those annotations: with
    signing, only a digest carrying the run's own signature is taken at its word."""
    held = (
        current.annotations.get(writes.RENDER_INPUTS)
        if current.revision == opts.revision
        else None
    )
    if not held or held != render_inputs(t, opts) or CHECKED in current.annotations:
        return False
    return opts.vouched is None or opts.vouched(f"{t.artifact}@{current.digest}")


def render(
    planned: PlannedTarget, current: Pulled, url: str, opts: Options, work: Work
) -> tuple[Path | Outcome, Pulled]:
    """timoni's render (its path, or the failure), and the tag's content, read while timoni renders
    when skip-unchanged or the dry-run diff needs it (a flux pull, the fallback, brought it already)."""
    t, root = planned.target, opts.root
    compare = opts.mode == "dry-run" or opts.skip_unchanged
    reads: list[str] = []
    reading = (
        work.beside(
            lambda: alongside(
                planned, current, url, opts, Work(work.dir, work.cache, reads)
            )
        )
        if compare and current.call.ok and not current.directory
        else None
    )
    try:
        rendered = timoni.render(
            t,
            repo_root=root,
            out_dir=work.dir,
            cache_dir=work.cache,
            timeout=opts.render_timeout,
            runtime_from_env=opts.runtime_from_env and opts.mode == "push",
            private=opts.flux.env,
        )
    finally:
        if reading is not None:
            wait([reading])
    current = reading.result() if reading else current
    said = cue_errors.clean(rendered.stderr, t.files, root)
    if said:
        work.log.append(said)
    if not rendered.ok:
        return _render_failure(planned, said, rendered.error, opts), current
    # a failed render is what the user needs to hear about, not the read
    work.log.extend(reads)
    return rendered.path, current


def alongside(
    planned: PlannedTarget, current: Pulled, url: str, opts: Options, work: Work
) -> Pulled:
    """While timoni renders: the tag's content, and (push) whether the commit it holds is newer
    than this one, asked now so that `deliver` finds the answer at once.

    The content: when this target's own read took `current` just before the render, the layer its
    manifest names, by digest (one request: the manifest is not asked for again); when `current`
    is the plan's read (catch-up, long before), the tag read again in full."""
    runner.label(work.dir.name)
    if planned.held is None:
        with runner.span("step", "read-content"):
            got = opts.retry.run(
                lambda: opts.reader.content(url, current, work.dir / "deployed"),
                work.log,
                "pull",
            )
    else:
        got = read_tag(url, opts, work, content=True)
    if opts.mode == "push" and got.call.ok:
        # A failure here is not this step's to report: deliver asks again and says what went wrong.
        with contextlib.suppress(Exception):
            opts.ancestry.newer(opts.repo, got, opts.head)
    return got


def _render_failure(
    planned: PlannedTarget, said: str, error: str, opts: Options
) -> Outcome:
    t, root = planned.target, opts.root
    located = cue_errors.locate(
        said, t.files, root, bundle=t.kind == "bundle", module=t.local_module
    )
    first = located[0].message if located else error
    where = f" ({located[0].file}:{located[0].line})" if located else ""
    message = f"timoni build failed{where}: {cue_errors.clean(first, t.files, root)}"
    notes = [Annotation(x.file, x.line, x.col, x.message) for x in located]
    if not located and t.line:
        notes.append(Annotation(opts.config_path, t.line, 1, message))
    return _failed(message, *notes)


def dry_run(rendered: Path, current: Pulled | None) -> Outcome:
    try:
        new = manifests.parse(rendered.read_text("utf-8"))
        old: dict[manifests.Key, dict[str, object]] = {}
        if current is not None and current.directory is not None:
            for f in sorted(current.directory.rglob("*.y*ml")):
                old.update(manifests.parse(f.read_text("utf-8")))
    except (manifests.ManifestError, UnicodeDecodeError) as exc:
        return _failed(str(exc))
    digest = (current.digest or None) if current is not None else None
    return Outcome(
        "dry-run",
        digest=digest,
        diff=manifests.diff(old, new),
        new_target=current is None,
    )


def deliver(
    t: Target,
    url: str,
    current: Pulled,
    rendered: Path,
    opts: Options,
    work: Work,
    stale: tuple[str, ...] | None = None,
) -> Outcome:
    """Never backwards; skip-unchanged; a last look; the push."""
    if current.call.ok:
        if opts.ancestry.newer(opts.repo, current, opts.head):
            why = f"{url} already holds {current.revision}, a descendant of this commit: not moving it back"
            return Outcome("skipped", digest=current.digest or None, error=why)
        if opts.skip_unchanged and same_content(current, rendered):
            outcome = replace(unchanged(t, current, opts, work, stale), built=True)
            if (
                outcome.status == "unchanged"
                and current.digest
                and commit_at(current) != opts.head
            ):
                record = writes.mark_checked(
                    t, current.digest, opts, work.dir, work.log
                )
                outcome = replace(outcome, record=record)
            return outcome
    # A run for a newer commit may have pushed while this one rendered. From here to the end of the
    # push is the window settle.reread covers from the newer run's side.
    last_look = time.monotonic()
    with runner.span("step", "last-look"):
        last = opts.reader.pull(url, work.dir / "last-look", content=False)
    if last.foreign:
        return _failed(writes.not_ours(url, last.foreign))
    if last.call.ok and opts.ancestry.newer(opts.repo, last, opts.head):
        why = f"{url} now holds {last.revision}, a descendant of this commit: not moving it back"
        return Outcome("skipped", digest=last.digest or None, error=why)
    with runner.span("step", "push"):
        pushed = writes.push(t, url, rendered, opts, work.log)
    if not pushed.call.ok:
        return _failed(writes.registry_error("pushing", url, pushed.call, opts.flux))
    pending = Settling(
        t, url, pushed.digest, rendered, work.dir, time.monotonic() - last_look
    )
    return Outcome("pushed", digest=pushed.digest, settling=pending, built=True)


def unchanged(
    t: Target,
    current: Pulled,
    opts: Options,
    work: Work,
    stale: tuple[str, ...] | None = None,
) -> Outcome:
    """The tag holds this content. A run that pushed the first tag and then lost the registry left the
    other tags behind: point them at what the first tag holds. `stale`: the other tags the plan found
    elsewhere (None: it did not read them, so they are tagged anyway; nothing changes when they hold it)."""
    digest = current.digest or None
    if len(t.tags) > 1 and current.digest and (stale is None or stale):
        error = writes.tag_others(t, current.digest, opts, work.log)
        if error:
            return Outcome("failed", digest=digest, error=error)
    return Outcome("unchanged", digest=digest)


ROOT_ENTRY = ". (directory)"  # oci.extract's name for the layer's "./" entry


def same_content(current: Pulled, rendered: Path) -> bool:
    """The tag's whole layer is the render: exactly one regular file, manifests.yaml, byte for byte.
    A file next to it (Flux applies every manifest in the layer), a link or a directory is a
    difference, whether the registry reader listed the layer (`entries`) or flux pull extracted it."""
    deployed = current.directory
    if deployed is None or not current.call.ok:
        return False
    # flux's tar holds the root directory ("./") and then the file.
    if current.entries is not None and [
        e for e in current.entries if e != ROOT_ENTRY
    ] != [timoni.MANIFESTS]:
        return False
    found = (
        [p.relative_to(deployed).as_posix() for p in deployed.rglob("*")]
        if deployed.is_dir()
        else []
    )
    held = deployed / timoni.MANIFESTS
    if found != [timoni.MANIFESTS] or held.is_symlink() or not held.is_file():
        return False
    return same_file(held, rendered)


def same_file(a: Path, b: Path) -> bool:
    if a.stat().st_size != b.stat().st_size:
        return False
    return a.read_bytes() == b.read_bytes()
