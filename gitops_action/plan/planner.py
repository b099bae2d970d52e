"""Changed files x configuration at base and head -> the affected targets, each with its reasons.

Pure: `plan()` takes file lists, contents and changes; `plan_repository()` gathers them from git.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

from gitops_action import runner
from gitops_action.changes.events import CommitRange
from gitops_action.changes.gitrepo import Change, Repo
from gitops_action.config import targets as cfg
from gitops_action.config.targets import Config, Target
from gitops_action.errors import ConfigError, UsageError
from gitops_action.registry.oci import Pulled

FILE_URL = re.compile(r"""["']file://([^"'\s]+)["']""")
# A module `url:` whose value is one plain string literal (optionally followed by a comment).
PLAIN_URL = re.compile(r"""\burl\s*:\s*(?:"[^"\\\n]*"|'[^'\\\n]*')[\s,}]*(?://.*)?$""")
URL_FIELD = re.compile(r"\burl\s*:")
# a bundle whose module URLs the text does not tell: any change may affect it
WHOLE_REPOSITORY = "."
VERBS = {"A": "added", "M": "modified", "D": "deleted", "T": "changed type"}


@dataclass(frozen=True)
class PlannedTarget:
    target: Target
    # skipped: its tag holds a newer commit
    status: Literal["planned", "removed", "skipped"]
    reasons: tuple[str, ...]
    # a problem found while planning; the target fails without being built
    error: str = ""
    # what the first tag held when planning
    held: Pulled | None = field(default=None, repr=False)
    base: str = ""  # the commit its tag holds, when planned from the tags
    # taken from its tag although the event's diff did not take it
    caught_up: bool = False
    # The plan read the other tags too: None when it did not; else those not at the first tag's digest.
    stale_tags: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Plan:
    config: Config
    range: CommitRange
    targets: tuple[PlannedTarget, ...]
    total: int  # targets in the configuration at head
    warnings: tuple[str, ...] = ()
    changes: tuple[Change, ...] = field(default=(), repr=False)
    # why the event takes every target (no base, or no configuration at base)
    every: str = ""
    # local, by id
    modules: Mapping[str, tuple[str, ...]] = field(default_factory=dict, repr=False)
    head_files: frozenset[str] = field(default=frozenset(), repr=False)
    only: tuple[str, ...] = ()  # the `targets` input
    from_tags: int = 0  # targets decided by what their tags hold (catchup.py)
    # targets whose tag catchup.py could not read: they keep the event's plan
    unread: int = 0
    explicit_base: bool = False  # the `base` input set the base
    # The base commit's configuration `registry` (None: no configuration at base): a pull request's
    # login goes to this host, never to one the pull request writes (login.login_registry).
    base_registry: str | None = None

    def matrix(self) -> dict[str, list[dict[str, str]]]:
        return {
            "include": [
                {"target": p.target.id} for p in self.targets if p.status == "planned"
            ]
        }


def bundle_modules(bundle_file: str, text: str) -> list[str]:
    """Local module directories a bundle refers to with file:// (relative to the bundle file).
    A `url:` computed in CUE (interpolated, concatenated, a multi-line string, a reference) can name
    any directory: such a bundle depends on the whole repository, so no change of its module is
    planned away (timoni's evaluation, in containment, decides what it may read)."""
    for line in text.splitlines():
        if URL_FIELD.search(line) and not PLAIN_URL.search(line):
            return [WHOLE_REPOSITORY]
    out = []
    for rel in FILE_URL.findall(text):
        path = posixpath.normpath(posixpath.join(posixpath.dirname(bundle_file), rel))
        if not path.startswith("../") and path != "..":
            out.append(path)
    return out


def dirs_of(paths: Sequence[str]) -> set[str]:
    dirs: set[str] = set()
    for p in paths:
        d = posixpath.dirname(p)
        while d and d not in dirs:
            dirs.add(d)
            d = posixpath.dirname(d)
    return dirs


def affected_reasons(
    target: Target,
    changes: Mapping[str, str],
    changed_dirs: set[str],
    module_dirs: Sequence[str],
) -> list[str]:
    """What changed among `target`'s inputs, one reason per kind of input."""
    reasons = []
    for f in target.files:
        if f in changes:
            reasons.append(f"{f} {VERBS.get(changes[f], 'changed')}")
    for d in module_dirs:
        if d == WHOLE_REPOSITORY and changes:
            first = sorted(changes)[0]
            reasons.append(
                f"a bundle module URL computed in CUE: any change may affect it ({first})"
            )
        elif d in changed_dirs or d in changes:
            touched = sorted(p for p in changes if p.startswith(d + "/"))
            reasons.append(
                f"module {d} changed ({touched[0]}{' and more' if len(touched) > 1 else ''})"
            )
    for glob in target.watch:
        rx = cfg.glob_regex(glob)
        hit = next((p for p in changes if rx.match(p)), None)
        if hit:
            reasons.append(f"watched path {glob} changed ({hit})")
    return reasons


def plan(
    *,
    head_config: Config,
    base_config: Config | None,
    base_problem: str,
    commit_range: CommitRange,
    changes: Sequence[Change],
    head_files: set[str],
    bundle_texts: Mapping[str, str],
    only: Sequence[str] = (),
) -> Plan:
    """Decide which targets the change affects. `base_config` is None when there is no base or
    the configuration at base could not be read (`base_problem` says why)."""
    every = ""
    if commit_range.base is None:
        every = commit_range.why_all or "no base commit"
    elif base_config is None:
        every = base_problem
    base_targets = base_config.by_id() if base_config else {}
    modules_of = {t.id: target_modules(t, bundle_texts) for t in head_config.targets}
    out = _affected(head_config, base_targets, every, changes, head_files, modules_of)
    if commit_range.base is not None:
        out += _removed(head_config, base_targets, changes)
    if only:
        out = _restricted(
            out, only, {t.id for t in head_config.targets} | set(base_targets)
        )
    # e.g. a deleted branch: no target, so no matrix entry either
    if commit_range.nothing:
        out = []
    return Plan(
        head_config,
        commit_range,
        tuple(out),
        len(head_config.targets),
        head_config.warnings,
        tuple(changes),
        every=every,
        modules=modules_of,
        head_files=frozenset(head_files),
        only=tuple(only),
        base_registry=base_config.registry if base_config else None,
    )


def _affected(
    head_config: Config,
    base_targets: Mapping[str, Target],
    every: str,
    changes: Sequence[Change],
    head_files: set[str],
    modules_of: Mapping[str, tuple[str, ...]],
) -> list[PlannedTarget]:
    """The head targets the change affects (`every`: all of them, for that reason)."""
    change_map = {c.path: c.status for c in changes}
    changed_dirs = dirs_of(list(change_map))
    deleted = {c.path for c in changes if c.status == "D"}
    cfg_file = head_config.path
    out: list[PlannedTarget] = []
    for t in head_config.targets:
        reasons: list[str] = []
        if every:
            reasons.append(every)
        elif t.id not in base_targets:
            reasons.append(f"new target in {cfg_file}")
        elif base_targets[t.id] != t:
            reasons.append(f"its entry in {cfg_file} changed ({t.key})")
        reasons.extend(affected_reasons(t, change_map, changed_dirs, modules_of[t.id]))
        # `targets` restricts the affected set; it never adds an unaffected target (use `all` for that).
        if not reasons:
            continue
        missing = [f for f in t.files if f not in head_files]
        if missing and all(f in deleted for f in t.files):
            out.append(
                PlannedTarget(t, "removed", tuple(f"{f} deleted" for f in t.files))
            )
            continue
        out.append(
            PlannedTarget(
                t,
                "planned",
                tuple(dict.fromkeys(reasons)),
                head_problem(t, head_files, cfg_file),
            )
        )
    return out


def _removed(
    head_config: Config, base_targets: Mapping[str, Target], changes: Sequence[Change]
) -> list[PlannedTarget]:
    """Targets at base that head no longer has: their files were deleted, or their entry removed."""
    deleted = {c.path for c in changes if c.status == "D"}
    head_ids = {t.id for t in head_config.targets}
    out = []
    for tid, t in base_targets.items():
        if tid not in head_ids:
            files_gone = [f for f in t.files if f in deleted]
            why = (
                f"{', '.join(files_gone)} deleted"
                if files_gone
                else f"removed from {head_config.path}"
            )
            out.append(PlannedTarget(t, "removed", (why,)))
    return out


def _restricted(
    out: list[PlannedTarget], only: Sequence[str], known: set[str]
) -> list[PlannedTarget]:
    unknown = [n for n in only if n not in known]
    if unknown:
        raise UsageError(f"`targets` names unknown target(s): {', '.join(unknown)}")
    return [p for p in out if p.target.id in only]


def target_modules(t: Target, bundle_texts: Mapping[str, str]) -> tuple[str, ...]:
    """The local module directories a target renders: its own, or its bundle's file:// ones."""
    modules = [t.local_module] if t.local_module else []
    if t.kind == "bundle":
        for f in t.files:
            modules.extend(bundle_modules(f, bundle_texts.get(f, "")))
    return tuple(dict.fromkeys(modules))


def head_problem(
    t: Target, head_files: set[str] | frozenset[str], cfg_file: str
) -> str:
    """Why `t` cannot be built at head ("" when it can be tried): the target fails without a render."""
    if t.problem:  # e.g. a file a `match` pattern picked up that cannot be an instance
        return t.problem
    missing = [f for f in t.files if f not in head_files]
    if missing:
        line = f" line {t.line}" if t.line else ""
        return f"{missing[0]} does not exist (listed in {cfg_file} {t.key}{line})"
    if t.local_module and f"{t.local_module}/cue.mod/module.cue" not in head_files:
        return f"module {t.local_module} is not a Timoni module: no cue.mod/module.cue ({cfg_file} {t.key})"
    return ""


def planned_target(t: Target, reasons: Sequence[str], plan: Plan) -> PlannedTarget:
    return PlannedTarget(
        t,
        "planned",
        tuple(dict.fromkeys(reasons)),
        head_problem(t, plan.head_files, plan.config.path),
    )


@dataclass(frozen=True)
class Snapshot:
    """What planning reads from git first: both commits' files and configuration text, the diff."""

    head_files: list[str]
    head_text: bytes | None
    changes: list[Change]
    base_files: list[str] | None
    base_text: bytes | None


def read_commits(repo: Repo, commit_range: CommitRange, config_path: str) -> Snapshot:
    """Five independent git processes, each mostly start-up: run at once."""
    head, base = commit_range.head, commit_range.base
    with ThreadPoolExecutor(max_workers=5) as pool:
        head_files = pool.submit(repo.list_files, head)
        head_text = pool.submit(repo.read_file, head, config_path)
        changes = pool.submit(repo.diff, base, head) if base else None
        base_files = pool.submit(repo.list_files, base) if base else None
        base_text = pool.submit(repo.read_file, base, config_path) if base else None
        return Snapshot(
            head_files.result(),
            head_text.result(),
            changes.result() if changes else [],
            base_files.result() if base_files else None,
            base_text.result() if base_text else None,
        )


def configs(
    snap: Snapshot,
    commit_range: CommitRange,
    config_path: str,
    registry: str,
    source: str,
) -> tuple[Config, Config | None, str]:
    """The configuration at head (ConfigError if broken), and at base (None, and why, if it cannot be
    read there: every target is then affected)."""
    if snap.head_text is None:
        raise ConfigError(
            config_path, "", f"configuration file not found at {commit_range.head[:12]}"
        )
    head_config = load_text(
        snap.head_text,
        config_path,
        snap.head_files,
        registry,
        source,
        check_modules=True,
    )
    if commit_range.base is None:
        return head_config, None, ""
    if snap.base_text is None:
        return (
            head_config,
            None,
            f"{config_path} did not exist at base {commit_range.base[:12]}",
        )
    try:
        base_config = load_text(
            snap.base_text, config_path, snap.base_files or [], registry, source
        )
    except ConfigError as exc:
        return (
            head_config,
            None,
            f"the configuration at base {commit_range.base[:12]} was invalid ({exc})",
        )
    return head_config, base_config, ""


def bundle_texts(repo: Repo, head: str, config: Config) -> dict[str, str]:
    """The bundle files at head (their file:// modules are inputs too), in one git call."""
    files = [f for t in config.targets if t.kind == "bundle" for f in t.files]
    raw = repo.read_files(head, files) if files else {}
    return {k: v.decode("utf-8", "replace") for k, v in raw.items() if v is not None}


def plan_repository(
    repo: Repo,
    commit_range: CommitRange,
    *,
    config_path: str,
    registry_override: str = "",
    default_source: str = "",
    only: Sequence[str] = (),
) -> Plan:
    """Gather what `plan()` needs from git, and plan. ConfigError if the head configuration is broken."""
    with runner.span("phase", "plan"):
        snap = read_commits(repo, commit_range, config_path)
        loaded = configs(
            snap, commit_range, config_path, registry_override, default_source
        )
        return plan_snapshot(
            snap,
            loaded,
            commit_range,
            bundle_texts(repo, commit_range.head, loaded[0]),
            only,
        )


def plan_snapshot(
    snap: Snapshot,
    loaded: tuple[Config, Config | None, str],
    commit_range: CommitRange,
    texts: Mapping[str, str],
    only: Sequence[str] = (),
) -> Plan:
    """`plan()` on what the steps before read: the snapshot, `configs()`, the bundle texts."""
    head_config, base_config, base_problem = loaded
    return plan(
        head_config=head_config,
        base_config=base_config,
        base_problem=base_problem,
        commit_range=commit_range,
        changes=snap.changes,
        head_files=set(snap.head_files),
        bundle_texts=texts,
        only=only,
    )


def load_text(
    text: bytes,
    path: str,
    files: Sequence[str],
    registry: str,
    source: str,
    *,
    check_modules: bool = False,
) -> Config:
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(path, "", f"not UTF-8 ({exc})") from exc
    return cfg.load(
        decoded,
        file=path,
        repo_files=files,
        registry_override=registry,
        default_source=source,
        check_modules=check_modules,
    )
