"""How commits relate to head, in git: what changed since the commit a tag holds (planning from
the tags, catchup.py), and whether a tag holds a newer commit than head (never backwards)."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

from gitops_action.changes.gitrepo import Change, Repo
from gitops_action.config.targets import Config, ConfigError
from gitops_action.errors import GitError
from gitops_action.plan import planner
from gitops_action.registry.oci import Pulled

# the full commit a push was built from, whatever the revision
COMMIT = "timoni-flux-push.commit"
DEEPEN_MARGIN = 3600  # seconds before the oldest commit: committer clocks are not exact
_SHA = re.compile(r"[0-9a-f]{40}")


def commit_of(revision: str) -> str:
    """The commit SHA in a Flux revision (`main@sha1:abc...`, `sha1:abc`, or a bare SHA)."""
    tail = revision.rsplit(":", 1)[-1].rsplit("@", 1)[-1]
    return tail if _SHA.fullmatch(tail) else ""


def commit_at(pulled: Pulled) -> str:
    """The commit a tag holds: our own annotation (any revision template), else the revision's SHA."""
    noted = pulled.annotations.get(COMMIT, "")
    return noted if _SHA.fullmatch(noted) else commit_of(pulled.revision)


@dataclass(frozen=True)
class Since:
    """A commit some tag holds, seen from head."""

    relation: Literal["head", "behind", "ahead", "elsewhere", "unknown"]
    behind: int | None = None  # commits from it to head
    changes: tuple[Change, ...] = ()
    # the configuration at that commit, when the file changed since
    config: Config | None = None
    config_problem: str = ""
    problem: str = ""  # relation "unknown": why the commit could not be had
    # path -> A/M/D/T
    change_map: Mapping[str, str] = field(default_factory=dict, repr=False)
    changed_dirs: frozenset[str] = field(default=frozenset(), repr=False)


# The configuration file's text at an older commit -> its targets (ConfigError if broken). Its `match`
# patterns expand against head's files: a target whose file did not exist then was added since, and
# is affected by that anyway.
LoadConfig = Callable[[bytes], Config]


def relate(
    repo: Repo, head: str, commits: Sequence[str], *, config_path: str, load: LoadConfig
) -> dict[str, Since]:
    """How each commit relates to head, and what changed since it. One fetch brings the missing
    commits (`--depth=1` in a shallow clone); in a shallow clone one more deepens the history back to
    the oldest of them, so ancestry can be told."""
    wanted = sorted({c for c in commits if c and c != head})
    have = repo.present(wanted)
    missing = [c for c in wanted if c not in have]
    problems: dict[str, str] = {}
    if missing:
        fetched = repo.fetch_commits(missing)
        # one lost commit fails the lot: ask one by one
        if not fetched.ok and len(missing) > 1:
            # (one after another: fetches into one shallow clone at once collide on shallow.lock)
            tries = {c: repo.fetch_commits([c]) for c in missing}
            problems = {c: _last_line(r.stderr) for c, r in tries.items() if not r.ok}
        elif not fetched.ok:
            problems = {missing[0]: _last_line(fetched.stderr)}
        have = repo.present(wanted)
    if have and repo.is_shallow():
        # Deepen only: never past the clone's own boundary (a later step may need that history).
        try:
            times = repo.commit_times([*sorted(have), head, *repo.shallow_boundary()])
        except GitError:
            times = {}
        if times:
            repo.fetch_commits(
                [head, *sorted(have)], since=min(times.values()) - DEEPEN_MARGIN
            )
    out: dict[str, Since] = {head: Since("head")}
    for c in wanted:
        if c not in have:
            out[c] = Since("unknown", problem=problems.get(c, "not in the repository"))
    configs = _ConfigCache(load)
    with ThreadPoolExecutor(max_workers=4) as pool:
        found = pool.map(
            lambda c: _since(repo, head, c, config_path, configs), sorted(have)
        )
        out.update(zip(sorted(have), found, strict=True))
    return out


class _ConfigCache:
    """One load per distinct configuration text: tags spread over many commits mostly share one."""

    def __init__(self, load: LoadConfig) -> None:
        self._load, self._lock = load, threading.Lock()
        self._known: dict[bytes, Config | str] = {}

    def __call__(self, text: bytes) -> Config | str:
        with self._lock:
            if text not in self._known:
                try:
                    self._known[text] = self._load(text)
                except ConfigError as exc:
                    self._known[text] = exc.message
            return self._known[text]


def _since(
    repo: Repo, head: str, commit: str, config_path: str, configs: _ConfigCache
) -> Since:
    try:
        return _since_git(repo, head, commit, config_path, configs)
    except GitError as exc:  # a commit git cannot work with: its targets are affected
        return Since("unknown", problem=str(exc)[:300])


def _since_git(
    repo: Repo, head: str, commit: str, config_path: str, configs: _ConfigCache
) -> Since:
    behind = repo.is_ancestor(commit, head)
    if not behind and repo.is_ancestor(head, commit):
        return Since("ahead")
    changes = tuple(repo.diff(commit, head))
    config: Config | None = None
    problem = ""
    if any(c.path == config_path for c in changes):
        text = repo.read_file(commit, config_path)
        loaded = configs(text) if text is not None else "no such file there"
        if isinstance(loaded, str):
            problem = f"the configuration at {commit[:7]} could not be read ({loaded})"
        else:
            config = loaded
    change_map = {c.path: c.status for c in changes}
    return Since(
        "behind" if behind else "elsewhere",
        repo.count_between(commit, head) if behind else None,
        changes,
        config,
        config_problem=problem,
        change_map=change_map,
        changed_dirs=frozenset(planner.dirs_of(list(change_map))),
    )


def _last_line(text: str) -> str:
    lines = [x for x in text.strip().splitlines() if x.strip()]
    return lines[-1].strip() if lines else "git fetch failed"


class Ancestry:
    """`newer_commit` once per commit in a run: the targets an earlier run pushed all carry its
    commit, so one set of git calls (and, in a shallow clone, one fetch) serves them all."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: dict[tuple[str, str], str] = {}

    def newer(self, repo: Repo, held: Pulled, head: str) -> str:
        key = (commit_at(held), head)
        with self._lock:  # also keeps two targets from fetching the same commit at once
            if key not in self._known:
                self._known[key] = newer_commit(repo, key[0], head)
            return self._known[key]


def newer_commit(repo: Repo, sha: str, head: str) -> str:
    """The commit at a tag if it is a strict descendant of `head` (a newer run pushed it)."""
    if not sha or sha == head:
        return ""
    if not repo.has_commit(sha):
        repo.fetch(sha, depth=None)
        if not repo.has_commit(sha):
            return ""
    if repo.is_ancestor(head, sha):
        return sha
    if repo.is_ancestor(sha, head) or not repo.is_shallow():
        return ""
    # In a shallow clone "not a descendant" may only mean its history is cut off (the plan fetched
    # it with --depth=1): fetch its history back to head's time and ask again, never push
    # backwards on a guess. (A full fetch of a present commit would bring no parents.)
    try:
        since = min(repo.commit_times([head, sha]).values()) - DEEPEN_MARGIN
    except (GitError, ValueError):
        return ""
    repo.fetch_commits([sha, head], since=since)
    return sha if repo.is_ancestor(head, sha) else ""
