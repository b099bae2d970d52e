"""The dry run's markdown: one pull-request comment (<= 65,536 characters) and the summary's diffs.

The comment opens with the verdict (how many targets changed, were added, removed or failed), the
commit it is for and when it was written; then one collapsible section per target with a `diff`
block per object; removed and failed targets in sections of their own. Every HTML block has blank
lines around it, and text inside HTML is escaped as HTML (`text.html`), never as Markdown: GitHub
does not read Markdown there.

Sizes are kept by folding whole targets into one line, largest first, never by cutting a diff, so
every code fence and <details> block is closed.
"""

from __future__ import annotations

from collections.abc import Sequence

from gitops_action.push.results import TargetResult
from gitops_action.render.manifests import label
from gitops_action.report.summary import (
    Stamp,
    failures,
    failures_heading,
    kind,
    meta,
    verdict,
)
from gitops_action.text import details, fence, html, md

# characters; GitHub refuses longer bodies with 422 "Body is too long"
COMMENT_LIMIT = 65_536
MARGIN = 1_024
SEP = "\n\n"  # between sections: a blank line ends each HTML block


def marker(config_path: str) -> str:
    safe = config_path.replace("--", "-")
    return f"<!-- timoni-flux-push: {safe} -->"


def _what(r: TargetResult) -> str:
    """What happened to a target, in plain words (no untrusted text)."""
    if r.status != "dry-run" or r.diff is None:
        return r.status
    c = r.diff.counts()
    if r.new_target:
        return f"added: {c['added']} object(s), nothing deployed yet"
    return f"changed: {c['added']} added, {c['changed']} changed, {c['removed']} removed object(s)"


def target_section(r: TargetResult) -> str:
    """A target's section: its per-object diffs under a <details> title, or one list line."""
    if r.status in ("failed", "skipped"):
        return failures([r])[0]
    if r.diff is None or not r.diff.changed:
        why = f": {md('; '.join(r.reasons))}" if r.reasons else ""
        left = (
            " (nothing pushed: its tag is left as it is)"
            if r.status == "removed"
            else ""
        )
        return f"- **{md(r.target.id)}** · {_what(r)}{why}{left}"
    body = []
    for ch in r.diff.changes:
        body += [f"**{ch.change}** {md(label(ch.key))}", "", fence(ch.diff, "diff"), ""]
    return details(f"<b>{html(r.target.id)}</b> · {_what(r)}", body[:-1])


def _folded(r: TargetResult, where: str) -> str:
    see = (
        ", see the job summary"
        if where == "this comment"
        else " (GitHub's 1 MiB limit)"
    )
    what = "diff" if r.diff is not None else "error" if r.error else "section"
    return f"- **{md(r.target.id)}** · {_what(r)}: {what} too large for {where}{see}"


def fit(sections: list[tuple[TargetResult, str]], budget: int, where: str) -> list[str]:
    """Fold the largest sections into one line until the whole, joined by SEP, fits in `budget`."""
    out = [s for _, s in sections]
    total = sum(len(s) + len(SEP) for s in out)
    for i in sorted(range(len(out)), key=lambda i: -len(out[i])):
        if total <= budget:
            break
        short = _folded(sections[i][0], where)
        # a one-line section is already as short as it gets
        if len(short) < len(out[i]):
            total -= len(out[i]) - len(short)
            out[i] = short
    if total <= budget:
        return out
    # even one line per target is too much: drop lines until a line saying so fits
    while out:
        total -= len(out.pop()) + len(SEP)
        note = f"- ... and {len(sections) - len(out)} more target(s), listed in the job summary"
        if total + len(note) + len(SEP) <= budget:
            out.append(note)
            break
    return out


def _groups(results: Sequence[TargetResult]) -> list[tuple[str, list[TargetResult]]]:
    """The comment's sections in order: diffs (no heading), removed targets, failed and skipped."""
    diffs = [r for r in results if kind(r) in ("changed", "added")]
    removed = [r for r in results if r.status == "removed"]
    failed = [r for r in results if r.status in ("failed", "skipped")]
    other = [
        r
        for r in results
        if r not in diffs + removed + failed and kind(r) != "unchanged"
    ]
    return [
        ("", diffs + other),
        (f"### Removed ({len(removed)})" if removed else "", removed),
        (failures_heading(failed) if failed else "", failed),
    ]


def _body(results: Sequence[TargetResult], budget: int, where: str) -> str:
    """Every group's sections under its heading, folded to fit `budget` characters."""
    groups = [(h, rs) for h, rs in _groups(results) if rs]
    headings = sum(len(h) + len(SEP) for h, _ in groups if h)
    flat = [(r, target_section(r)) for _, rs in groups for r in rs]
    out = fit(flat, budget - headings, where)
    if len(out) != len(flat):  # lines were dropped: one flat list that says how many
        return SEP.join(out)
    parts: list[str] = []
    for heading, rs in groups:
        parts += [heading] if heading else []
        parts += out[: len(rs)]
        out = out[len(rs) :]
    return SEP.join(parts)


def render(
    results: Sequence[TargetResult], *, config_path: str, run_url: str, stamp: Stamp
) -> str:
    counts, others = verdict(results, "dry-run")
    title = f"### timoni-flux-push dry run: {counts}"
    shown = [r for r in results if kind(r) != "unchanged"]
    if not shown:
        title = "### timoni-flux-push dry run: no changes"
    if not shown:
        others = f"{len(results)} target(s) render exactly what is deployed"
    # The marker is an HTML comment: its block ends on its own line, so no blank line is needed.
    head = f"{marker(config_path)}\n{title}{SEP}{meta(others, stamp.line(), f'config {md(config_path)}')}"
    if not shown:
        return head + "\n"
    tail = (
        f"[Full diff in the job summary]({run_url})"
        if run_url
        else "Full diff in the job summary."
    )
    budget = COMMENT_LIMIT - MARGIN - len(head) - len(tail) - 2 * len(SEP)
    body = _body(shown, budget, "this comment")
    # every diff is here already
    if body == _body(shown, COMMENT_LIMIT * 1024, "this comment"):
        return SEP.join([head, body]) + "\n"
    return SEP.join([head, body, tail]) + "\n"


def summary_diffs(results: Sequence[TargetResult], *, limit: int) -> str:
    """The job summary's diff sections (its table and failures come first, from report.summary)."""
    changed = [r for r in results if kind(r) in ("changed", "added")]
    if not changed:
        return ""
    title = "\n### Diff against what each tag holds now\n\n"
    body = fit(
        [(r, target_section(r)) for r in changed],
        limit - len(title) - MARGIN,
        "the job summary",
    )
    return title + SEP.join(body) + "\n"
