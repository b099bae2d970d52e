"""Results -> outputs, job summary, log groups and annotations.

Everything that came from timoni, flux or the repository is untrusted text: in the log it is
printed inside stop-commands, in markdown it is escaped or fenced.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import github_action_utils as gha

from gitops_action.config.targets import Target
from gitops_action.plan.planner import Plan
from gitops_action.push.results import TargetResult
from gitops_action.text import details, fence, folded, html, md, plain

# GitHub drops a step summary over 1 MiB; keep a margin
SUMMARY_LIMIT = 1024 * 1024 - 4096
# GitHub shows at most 10 error annotations per step, drops the rest
MAX_ERROR_ANNOTATIONS = 10


@dataclass(frozen=True)
class Stamp:
    """Which commit a report is for and when it was written: a reader can tell a stale comment."""

    sha: str
    at: datetime  # UTC
    commit_url: str = ""  # the commit on GitHub, when the run knows the repository

    def line(self) -> str:
        sha = (
            f"`{self.sha[:7]}`"
            if re.fullmatch(r"[0-9a-f]{7,64}", self.sha)
            else md(self.sha[:12])
        )
        commit = f"[{sha}]({self.commit_url})" if self.commit_url else sha
        return f"commit {commit} · updated {self.at:%Y-%m-%d %H:%M} UTC"


def stamp(sha: str, at: datetime, *, server_url: str, repository: str) -> Stamp:
    known = bool(repository and re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", sha))
    return Stamp(sha, at, f"{server_url}/{repository}/commit/{sha}" if known else "")


# What the verdict counts, per mode: the first ones always (bold), then the others when there are any.
_COUNTED = {
    "dry-run": (("changed", "added", "removed", "failed"), ("unchanged", "skipped")),
    "push": (("pushed", "removed", "failed"), ("unchanged", "skipped")),
    "plan": (("planned", "removed"), ("skipped",)),
}


def kind(r: TargetResult) -> str:
    """The verdict's word for a target: a dry run's `changed`/`added`/`unchanged`, else its status."""
    if r.status != "dry-run" or r.diff is None:
        return r.status
    if not r.diff.changed:
        return "unchanged"
    return "added" if r.new_target else "changed"


def verdict(results: Sequence[TargetResult], mode: str) -> tuple[str, str]:
    """`1 changed, 1 added, 0 removed, 1 failed` and the rest (`2 unchanged`): the run in one line."""
    first, rest = _COUNTED.get(mode, _COUNTED["push"])
    count = {k: sum(1 for r in results if kind(r) == k) for k in (*first, *rest)}
    others = [f"{count[k]} {k}" for k in rest if count[k]]
    return ", ".join(f"{count[k]} {k}" for k in first), ", ".join(others)


def meta(*parts: str) -> str:
    """The line under the verdict: its parts joined by ` · `, the first letter capital."""
    text = " · ".join(p for p in parts if p)
    return text[:1].upper() + text[1:]


def failures_heading(results: Sequence[TargetResult]) -> str:
    failed = sum(1 for r in results if r.status == "failed")
    skipped = sum(1 for r in results if r.status == "skipped")
    parts = [
        f"Failed ({failed})" if failed else "",
        f"Skipped ({skipped})" if skipped else "",
    ]
    return "### " + " · ".join(p for p in parts if p)


def failures(results: Sequence[TargetResult]) -> list[str]:
    """One open section per failed or skipped target, its error as written (in a code block: no
    escaping to read through), then the file positions it names."""
    out = []
    for r in results:
        if r.status not in ("failed", "skipped"):
            continue
        text = "\n".join(
            [
                plain(r.error or r.status),
                *(
                    plain(f"{a.file}:{a.line}:{a.col}: {a.message}")
                    for a in r.annotations
                ),
            ]
        )
        out.append(
            details(
                f"<b>{html(r.target.id)}</b> · {r.status}",
                [fence(text, "text")],
                opened=True,
            )
        )
    return out


@dataclass(frozen=True)
class ErrorNote:
    title: str
    message: str
    file: str | None = None
    line: int | None = None
    col: int | None = None


def error_notes(results: Sequence[TargetResult]) -> list[ErrorNote]:
    """Every error annotation of the run, the most useful first: one per failed target (its first
    position in a file, else its error), in target order; then the further positions."""
    first: list[ErrorNote] = []
    more: list[ErrorNote] = []
    for r in results:
        title = plain(f"{r.target.id}: timoni build failed")
        notes = [
            ErrorNote(title, plain(a.message), plain(a.file), a.line, a.col)
            for a in r.annotations
        ]
        if notes:
            first.append(notes[0])
            more.extend(notes[1:])
        elif r.status == "failed":
            first.append(
                ErrorNote(plain(f"{r.target.id} failed"), plain(r.error or "failed"))
            )
    return first + more


def artifact_entry(
    target: Target,
    *,
    tags: list[str],
    digest: str | None,
    url: str | None,
    revision: str,
    status: str,
    error: str | None,
    signed: bool,
    signature: str | None,
    more: Mapping[str, Any],
) -> dict[str, Any]:
    """One entry of the `artifacts` output, a push run's and a promotion's alike: what a mode adds
    (`more`) comes after the error, before the signature fields."""
    return {
        "name": target.id,
        "kind": target.kind,
        "artifact": target.artifact,
        "tags": tags,
        "digest": digest,
        "url": url,
        "revision": revision,
        "status": status,
        "error": " ".join(error.split()) if error else None,
        **more,
        "signed": signed,
        "signature": signature,
    }


def artifacts(results: Sequence[TargetResult]) -> list[dict[str, Any]]:
    out = []
    for r in results:
        item = artifact_entry(
            r.target,
            tags=list(r.target.tags),
            digest=r.digest,
            url=r.url,
            revision=r.revision,
            status=r.status,
            error=plain(r.error) if r.error else None,
            signed=r.signed,
            signature=r.signature,
            more={
                "reasons": list(r.reasons),
                "base": r.base or None,
                "caught_up": r.caught_up,
            },
        )
        if r.diff is not None:
            item["changed"] = r.diff.changed
            item["changes"] = r.diff.counts()
        out.append(item)
    return out


def outputs(plan: Plan, results: Sequence[TargetResult]) -> dict[str, str]:
    count = {
        s: sum(1 for r in results if r.status == s)
        for s in ("pushed", "failed", "unchanged", "skipped")
    }
    changed = any(r.diff is not None and r.diff.changed for r in results)
    return {
        "artifacts": json.dumps(artifacts(results)),
        "matrix": json.dumps(plan.matrix()),
        "pushed": str(count["pushed"]),
        "failed": str(count["failed"]),
        "unchanged": str(count["unchanged"]),
        "changed": "true" if changed else "false",
        # Targets planned without reading their tag (catchup.py): "0" when every tag answered.
        "tags-unread": str(plan.unread),
    }


def short(digest: str | None) -> str:
    return digest.split(":", 1)[-1][:12] if digest else "-"


def summary(
    plan: Plan,
    results: Sequence[TargetResult],
    *,
    mode: str,
    stamp: Stamp,
    title: str = "timoni-flux-push",
) -> str:
    counts, others = verdict(results, mode)
    counts = counts if results else "no target affected"
    lines = [
        f"## {title} {mode.replace('-', ' ')}: {counts}",
        "",
        meta(others, stamp.line()),
        "",
    ]
    lines += [*_scope(plan, results), ""]
    for w in plan.warnings:
        lines += [f"> [!WARNING]\n> {md(w)}", ""]
    if not results:
        lines.append("No target is affected by this change.")
        return "\n".join(lines) + "\n"
    lines += ["| target | artifact | digest | status | time |", "|---|---|---|---|---|"]
    for r in results:
        tags = ", ".join(r.target.tags)
        lines.append(
            f"| {md(r.target.id)} | {md(r.target.artifact)}:{md(tags)} | `{short(r.digest)}` | "
            f"{_status(r)}{' ↺' if r.caught_up else ''} | {r.seconds:.1f}s |"
        )
    problems = failures(results)
    if problems:
        lines += ["", failures_heading(results), "", *"\n\n".join(problems).split("\n")]
        count = len(error_notes(results))
        if count > MAX_ERROR_ANNOTATIONS:
            lines.append(
                f"\n{count} errors: GitHub shows {MAX_ERROR_ANNOTATIONS} annotations per step, so the "
                f"first error of each failed target is annotated first; all {count} are listed here."
            )
    lines += folded(
        "Full digests", [f"{md(r.target.id)}: `{r.url}`" for r in results if r.digest]
    )
    why = [
        f"{md(r.target.id)}: {md('; '.join(r.reasons))}" for r in results if r.reasons
    ]
    lines += folded("Why each target was taken", why)
    return "\n".join(lines) + "\n"


def _scope(plan: Plan, results: Sequence[TargetResult]) -> list[str]:
    """What the run compared: the event's commits, and what each tag holds."""
    rng = plan.range
    affected = f"{len(results)} of {plan.total} target(s) affected"
    if rng.nothing:
        return [f"Nothing to do: {md(rng.nothing)}."]
    lines = []
    if rng.base is None and not plan.from_tags:
        lines.append(f"Every target is affected: {md(rng.why_all)}.")
    elif rng.base is None:
        lines.append(
            f"The event gives no base ({md(rng.why_all)}): each target planned from its tag."
        )
    else:
        changed = f"{len(plan.changes)} changed file(s)"
        lines.append(
            f"Changes `{rng.base[:12]}`..`{rng.head[:12]}`: {changed}, {affected}."
        )
    if plan.from_tags:
        caught = sum(1 for r in results if r.caught_up)
        lines.append(
            f"Planned from what each tag holds ({plan.from_tags} tag(s) read): {affected}"
            + (
                f", {caught} caught up (left behind by an earlier run, marked ↺)."
                if caught
                else "."
            )
        )
    elif rng.base is not None and plan.explicit_base:
        lines.append("Diffed from the `base` input only, not from what each tag holds.")
    return lines


def _status(r: TargetResult) -> str:
    if r.status == "dry-run" and r.diff is not None:
        if r.new_target:
            return "dry-run: new"
        c = r.diff.counts()
        return (
            "dry-run: no change"
            if not r.diff.changed
            else (f"dry-run: +{c['added']} ~{c['changed']} -{c['removed']}")
        )
    return f"{r.status}, signed" if r.signed else r.status


def emit_log(results: Sequence[TargetResult]) -> None:
    """One log group per target; tool output inside stop-commands so it cannot run commands."""
    for r in results:
        gha.start_group(plain(f"{r.target.id}: {r.status}"))
        body = "\n".join(
            [
                *(f"reason: {x}" for x in r.reasons),
                *r.log,
                *([f"error: {r.error}"] if r.error else []),
            ]
        )
        if body:
            token = f"stop-{uuid.uuid4().hex}"
            gha.begin_stop_commands(token)
            print(body, flush=True)
            gha.end_stop_commands(token)
        gha.end_group()


def emit_annotations(results: Sequence[TargetResult]) -> None:
    for n in error_notes(results)[:MAX_ERROR_ANNOTATIONS]:  # the summary lists them all
        gha.error(n.message, title=n.title, file=n.file, line=n.line, col=n.col)
    for r in results:
        if r.status == "skipped":
            gha.warning(
                plain(r.error or "skipped"), title=plain(f"{r.target.id} skipped")
            )
