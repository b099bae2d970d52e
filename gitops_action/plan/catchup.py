"""Plan from what each tag holds: the commit a target was last delivered from is its base.

The registry is what the cluster follows, and each push records its commit. A target is affected
when any of its inputs changed between the commit its first tag holds and head, so a change whose
run failed, was cancelled or never ran is delivered by the next run. The event's diff stays a fast
path (it is the same diff for every tag that holds the event's base); the tags find what earlier
runs left behind. Three steps, each returning a value:

    read_tags(targets)        -> {id: Held}     registry reads, one per tag, in parallel
    relate(repo, head, held)  -> {sha: Since}   git (history.py): one fetch, one diff per commit
    extend(plan, held, since) -> Plan           pure: the event's plan and the tags' reasons merged

A tag that cannot be read leaves its target to the event's plan: the tag stays behind, so the next
run that can read it catches up. A commit that cannot be fetched makes its targets affected.
"""

from __future__ import annotations

import hashlib
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from gitops_action.changes.gitrepo import Repo
from gitops_action.config.targets import Target
from gitops_action.plan import planner
from gitops_action.plan.history import (
    COMMIT,
    LoadConfig,
    Since,
    commit_at,
    commit_of,
    relate,
)
from gitops_action.registry.oci import Pulled

# on a marker: the digest a later commit's render equalled
CHECKED = "timoni-flux-push.checked"
MARKER_SUFFIX = ".tfp-checked"
__all__ = ["COMMIT", "catch_up", "commit_at", "commit_of", "marker_tag"]

READERS = 64  # registry reads at once: each mostly waits on the network
VERIFIERS = 4  # `cosign verify` of check records at once: each is a Go process
LEFT_BEHIND = (
    "not in this event's diff: an earlier run failed, was cancelled or never ran, or the tag was moved "
    "back by hand (Git is the source of truth)"
)


def marker_tag(tag: str) -> str:
    """The tag of the record "this digest is what a later commit renders too" (see DESIGN.md)."""
    name = tag + MARKER_SUFFIX
    return (
        name
        if len(name) <= 128
        else "tfp-checked-" + hashlib.sha256(tag.encode()).hexdigest()[:40]
    )


def short_revision(revision: str) -> str:
    sha = commit_of(revision)
    return revision.replace(sha, sha[:7]) if sha else revision


@dataclass(frozen=True)
class Held:
    """What a target's tags hold, read before planning."""

    tag: str
    pulled: Pulled  # the first tag (call not ok: missing, or unreadable)
    commit: str = ""  # the commit it holds ("": none this action can read)
    checked: str = ""  # a later commit a marker vouches renders the same digest
    stale: tuple[str, ...] = ()  # other tags that do not hold the first tag's digest
    # with signing: the digest carries no signature made for its repository
    unsigned: bool = False

    @property
    def answered(self) -> bool:
        """The registry answered: a missing tag is an answer, a refused or failed read is not."""
        return self.pulled.call.ok or self.pulled.call.failure == "missing"


Pull = Callable[[str], Pulled]  # oci://REPO:TAG -> what it holds (manifest only)
# With signing: oci://REPO@DIGEST carries a valid signature from the run's key or identity.
Trust = Callable[[str], bool]


def _host(artifact: str) -> str:
    return urllib.parse.urlsplit(artifact.replace("oci://", "//", 1)).netloc


def _read_all(urls: Sequence[str], pull: Pull) -> dict[str, Pulled]:
    """Read each URL once. A host whose first read failed to connect or was refused is not asked
    again: its targets keep the event's plan, and a dead or refusing registry costs one read."""
    unique = list(dict.fromkeys(urls))
    first: dict[str, str] = {}
    for url in unique:
        first.setdefault(_host(url), url)
    with ThreadPoolExecutor(max_workers=READERS) as pool:
        got = dict(zip(first.values(), pool.map(pull, first.values()), strict=True))
        # A host that cannot be reached, or refuses the login: its other targets keep the event's plan
        # (a refusal of one repository only costs the others their catch-up, never a wrong push).
        down = {
            h: got[u]
            for h, u in first.items()
            if got[u].call.failure in ("transient", "auth")
        }
        rest = [u for u in unique if u not in got and _host(u) not in down]
        got.update(zip(rest, pool.map(pull, rest), strict=True))
    for url in unique:
        if url not in got:
            got[url] = down[_host(url)]
    return got


def read_tags(targets: Sequence[Target], pull: Pull) -> dict[str, Held]:
    """Each target's first tag, and its other tags where it has several (they must hold the same)."""
    firsts = {t.id: f"{t.artifact}:{t.tags[0]}" for t in targets}
    read = _read_all(list(firsts.values()), pull)
    others = [
        f"{t.artifact}:{x}"
        for t in targets
        if read[firsts[t.id]].call.ok
        for x in t.tags[1:]
    ]
    read.update(_read_all(others, pull))
    held: dict[str, Held] = {}
    for t in targets:
        pulled = read[firsts[t.id]]
        stale = tuple(
            x
            for x in t.tags[1:]
            if pulled.call.ok and _elsewhere(read[f"{t.artifact}:{x}"], pulled)
        )
        # A check record moved to the target's tag is not a render: its commit says nothing.
        commit = (
            commit_at(pulled)
            if pulled.call.ok and CHECKED not in pulled.annotations
            else ""
        )
        held[t.id] = Held(t.tags[0], pulled, commit, stale=stale)
    return held


def signed_only(
    targets: Sequence[Target], held: Mapping[str, Held], trust: Trust
) -> dict[str, Held]:
    """With signing, a tag's commit counts only when its digest carries the run's signature made for
    the target's repository: a registry writer can copy another target's signed artifact (and its
    `.sig`) to the tag, with a commit annotation that says nothing changed since. Such a target is
    rendered and compared (then pushed, or signed where it holds this render)."""
    asked = {
        t.id: f"{t.artifact}@{held[t.id].pulled.digest}"
        for t in targets
        if held[t.id].commit
    }
    if not asked:
        return dict(held)
    with ThreadPoolExecutor(max_workers=min(VERIFIERS, len(asked))) as pool:
        trusted = dict(zip(asked, pool.map(trust, asked.values()), strict=True))
    return {
        k: h if trusted.get(k, True) else replace(h, commit="", unsigned=True)
        for k, h in held.items()
    }


def _elsewhere(other: Pulled, first: Pulled) -> bool:
    """The other tag answered, and does not hold the first tag's digest (a failed read says nothing)."""
    return (
        other.call.ok and other.digest != first.digest
    ) or other.call.failure == "missing"


def read_markers(
    targets: Sequence[Target],
    held: Mapping[str, Held],
    pull: Pull,
    trust: Trust | None = None,
) -> dict[str, Held]:
    """The markers of these targets: where one vouches for the digest the tag holds now, its commit.
    Anyone who can write to the registry can write a marker: with signing (`trust`), one counts only
    when it carries the run's signature; an unsigned one is ignored (the target is compared from the
    commit its tag holds, so rendered)."""
    urls = {t.id: f"{t.artifact}:{marker_tag(t.tags[0])}" for t in targets}
    read = _read_all(list(urls.values()), pull)
    vouching: dict[str, str] = {}
    for t in targets:
        mark, h = read[urls[t.id]], held[t.id]
        if (
            mark.call.ok
            and mark.digest
            and h.pulled.digest
            and mark.annotations.get(CHECKED) == h.pulled.digest
        ):
            vouching[t.id] = f"{t.artifact}@{mark.digest}"
    if trust is not None and vouching:
        with ThreadPoolExecutor(max_workers=min(VERIFIERS, len(vouching))) as pool:
            trusted = dict(
                zip(vouching, pool.map(trust, vouching.values()), strict=True)
            )
        vouching = {k: v for k, v in vouching.items() if trusted[k]}
    out = dict(held)
    for t in targets:
        if t.id in vouching:
            out[t.id] = replace(held[t.id], checked=commit_at(read[urls[t.id]]))
    return out


# --- pure: the tags' reasons, merged with the event's plan -------------------------------------


def tag_reasons(
    t: Target, held: Held, since: Mapping[str, Since], plan: planner.Plan
) -> list[str]:
    """Why the tags make `t` affected ([] when they hold what head would deliver)."""
    tag, pulled = held.tag, held.pulled
    if not pulled.call.ok:
        return [f"new target: {tag} holds nothing yet"]
    if held.unsigned:
        why = "no signature of this key or identity made for its repository: its revision is not taken"
        return [f"{tag} holds {pulled.digest} with {why} at its word"]
    if not held.commit:
        return [
            f"{tag} holds no revision this action can read ({pulled.revision or 'none'})"
        ]
    rev = short_revision(pulled.revision) or held.commit[:7]
    stale = [
        f"{', '.join(held.stale)} {'does' if len(held.stale) == 1 else 'do'} not hold {tag}'s digest"
    ]
    stale = stale if held.stale else []
    s = since.get(held.commit)
    if s is None or s.relation == "unknown":
        problem = s.problem if s else "not looked up"
        return [f"{tag} holds {rev}, a commit that cannot be fetched ({problem})"]
    if s.relation in ("head", "ahead"):
        return stale  # delivered, or newer than head (the pipeline never moves it back)
    if held.checked and since.get(held.checked, Since("unknown")).relation in (
        "head",
        "behind",
    ):
        s = since[held.checked]
        if s.relation == "head":
            return stale
        rev += f", checked unchanged up to {held.checked[:7]}"
    changed = _changed_since(t, s, plan)
    if s.relation == "elsewhere":
        why = "a commit outside this branch's history (a forced push, or another branch wrote the tag)"
        return [f"{tag} holds {rev}, {why}", *changed]
    if not changed:
        return stale
    back = (
        f" ({s.behind} commit{'' if s.behind == 1 else 's'} back)"
        if s.behind is not None
        else ""
    )
    return [
        f"behind: {tag} holds {rev}{back}; since then: {'; '.join(changed)}",
        *stale,
    ]


def _changed_since(t: Target, s: Since, plan: planner.Plan) -> list[str]:
    cfg_file = plan.config.path
    reasons: list[str] = []
    if s.config_problem:
        reasons.append(s.config_problem)
    elif s.config is not None:
        before = s.config.by_id().get(t.id)
        if before is None:
            reasons.append(f"new in {cfg_file}")
        elif before != t:
            reasons.append(f"its entry in {cfg_file} changed ({t.key})")
    modules = plan.modules.get(t.id, ())
    reasons += planner.affected_reasons(t, s.change_map, set(s.changed_dirs), modules)
    return reasons


def needs_marker(
    t: Target, held: Held, since: Mapping[str, Since], plan: planner.Plan
) -> bool:
    """A tag behind head whose target's inputs changed since: a marker may say the render did not."""
    s = since.get(held.commit)
    return bool(
        held.pulled.call.ok
        and s
        and s.relation == "behind"
        and _changed_since(t, s, plan)
    )


def extend(
    plan: planner.Plan, held: Mapping[str, Held], since: Mapping[str, Since]
) -> planner.Plan:
    """The event's plan with what the tags say. A target whose tag answered is affected when the
    tags say so or (with a known event base) the event's diff says so; one whose tag did not answer
    keeps the event's decision."""
    by_event = {p.target.id: p for p in plan.targets if p.status == "planned"}
    removed = {p.target.id for p in plan.targets if p.status == "removed"}
    out: list[planner.PlannedTarget] = []
    decided = 0
    unread: list[Held] = []
    for t in plan.config.targets:
        if t.id in removed:  # the event deleted its files: reported as removed, below
            continue
        event = by_event.get(t.id)
        # no tag to read (e.g. no valid name): it fails on its own, in every run
        if t.problem:
            if not plan.only or t.id in plan.only:
                out.append(event or planner.planned_target(t, [t.problem], plan))
            continue
        h = held.get(t.id)
        if h is None or not h.answered:
            unread += [h] if h is not None else []
            if event:
                out.append(event)
            continue
        decided += 1
        planned = _decided_by_tag(t, h, event, since, plan)
        if planned is not None:
            out.append(planned)
    out += [p for p in plan.targets if p.status == "removed"]
    warnings = (
        (*plan.warnings, unread_warning(unread, plan.every))
        if unread
        else plan.warnings
    )
    return replace(
        plan,
        targets=tuple(out),
        from_tags=decided,
        unread=len(unread),
        warnings=warnings,
    )


def _decided_by_tag(
    t: Target,
    h: Held,
    event: planner.PlannedTarget | None,
    since: Mapping[str, Since],
    plan: planner.Plan,
) -> planner.PlannedTarget | None:
    """A target whose tag answered: skipped when its tag is ahead and the event took it, planned
    when the tags or the event's diff say so (None: nothing to do)."""
    # the pipeline reads the tag no second time (a missing tag included)
    pulled = h.pulled
    if pulled.call.ok and since.get(h.commit, Since("unknown")).relation == "ahead":
        # the event (or "every target") took it: say why it is not pushed
        if event is None:
            return None
        newer = f"{t.artifact}:{h.tag} already holds {pulled.revision}, a descendant of this commit"
        error = f"{newer}: not moving it back"
        return replace(event, status="skipped", error=error, held=pulled, base=h.commit)
    reasons = tag_reasons(t, h, since, plan)
    # the event's own diff, when it had one
    if event is not None and not plan.every:
        merged = tuple(dict.fromkeys([*event.reasons, *reasons]))
        return replace(
            event, reasons=merged, held=pulled, base=h.commit, stale_tags=h.stale
        )
    if not reasons:
        return None
    # the event's diff did not take it: an earlier run left it behind
    caught_up = not plan.every
    if caught_up:
        reasons = [*reasons, LEFT_BEHIND]
    fresh = planner.planned_target(t, reasons, plan)
    return replace(
        fresh, held=pulled, base=h.commit, caught_up=caught_up, stale_tags=h.stale
    )


def unread_warning(unread: Sequence[Held], every: str) -> str:
    """What planning without the tags means, said once (summary and log): a plan that reads "every
    target is affected" is otherwise indistinguishable from one the tags decided."""
    call = unread[0].pulled.call
    why = call.error or f"{unread[0].tag}: {call.failure or 'no answer'}"
    then = (
        f"every target is affected ({every})"
        if every
        else "they follow this event's diff alone (changes an earlier run left behind are not taken)"
    )
    return (
        f"{len(unread)} tag(s) could not be read ({why}), so these targets were not "
        f"planned from what their tags hold: {then}. The next run that can read them catches up."
    )


def catch_up(
    plan: planner.Plan,
    repo: Repo,
    pull: Pull,
    load: LoadConfig,
    trust: Trust | None = None,
) -> planner.Plan:
    """The whole step: read the tags, relate their commits to head, read the markers the targets
    behind need (with signing, only signed ones count: `trust`), merge with the event's plan."""
    head = plan.range.head
    # A target with a problem (a matched file that cannot be an instance) has no tag to read: it fails.
    targets = [
        t
        for t in plan.config.targets
        if (not plan.only or t.id in plan.only) and not t.problem
    ]
    held = read_tags(targets, pull)
    if trust is not None:
        held = signed_only(targets, held, trust)
    commits = [h.commit for h in held.values() if h.commit]
    since = (
        relate(repo, head, commits, config_path=plan.config.path, load=load)
        if commits
        else {}
    )
    behind = [t for t in targets if needs_marker(t, held[t.id], since, plan)]
    if behind:
        held = read_markers(behind, held, pull, trust)
        more = [
            h.checked for h in held.values() if h.checked and h.checked not in since
        ]
        if more:
            since = {
                **since,
                **relate(repo, head, more, config_path=plan.config.path, load=load),
            }
    return extend(plan, held, since)
