"""The dry run's markdown: one pull-request comment (<= 65,536 characters) and the summary's diffs.

Sizes are kept by folding whole targets into one line, largest first, never by cutting a diff, so
every code fence and <details> block is closed.
"""

from __future__ import annotations

from collections.abc import Sequence

from .manifests import label
from .report import fence, md
from .results import TargetResult

COMMENT_LIMIT = 65_536  # characters; GitHub refuses longer bodies with 422 "Body is too long"
MARGIN = 1_024


def marker(config_path: str) -> str:
    safe = config_path.replace("--", "-")
    return f"<!-- timoni-flux-push: {safe} -->"


def _headline(r: TargetResult) -> str:
    if r.status != "dry-run" or r.diff is None:
        return f"**{md(r.target.id)}**: {r.status}" + (f": {md(r.error)}" if r.error else "")
    c = r.diff.counts()
    new = " (new target: nothing deployed yet)" if r.new_target else ""
    return f"**{md(r.target.id)}**: {c['added']} added, {c['changed']} changed, {c['removed']} removed{new}"


def target_section(r: TargetResult) -> str:
    if r.diff is None or not r.diff.changed:
        return f"- {_headline(r)}"
    parts = [f"<details><summary>{_headline(r)}</summary>", ""]
    for ch in r.diff.changes:
        parts.append(f"{ch.change}: {md(label(ch.key))}")
        parts.append("")
        parts.append(fence(ch.diff, "diff"))
        parts.append("")
    parts.append("</details>")
    return "\n".join(parts)


def _folded(r: TargetResult, where: str) -> str:
    see = ", see the job summary" if where == "this comment" else " (GitHub's 1 MiB limit)"
    return f"- {_headline(r)}: diff too large for {where}{see}"


def fit(sections: list[tuple[TargetResult, str]], budget: int, where: str) -> list[str]:
    """Fold the largest sections into one line until the whole fits in `budget`."""
    out = [s for _, s in sections]
    total = sum(len(s) + 1 for s in out)
    for i in sorted(range(len(out)), key=lambda i: -len(out[i])):
        if total <= budget:
            break
        short = _folded(sections[i][0], where)
        if len(short) < len(out[i]):  # a one-line section is already as short as it gets
            total -= len(out[i]) - len(short)
            out[i] = short
    if total <= budget:
        return out
    while out:  # even one line per target is too much: drop lines until a line saying so fits
        total -= len(out.pop()) + 1
        note = f"- ... and {len(sections) - len(out)} more target(s), listed in the job summary"
        if total + len(note) + 1 <= budget:
            out.append(note)
            break
    return out


def render(results: Sequence[TargetResult], *, config_path: str, run_url: str) -> str:
    head = [marker(config_path), f"### timoni-flux-push dry run ({md(config_path)})", ""]
    changed = [r for r in results if r.status != "dry-run" or (r.diff is not None and r.diff.changed)]
    if not changed:
        head.append(f"No changes: {len(results)} target(s) render exactly what is deployed.")
        return "\n".join(head) + "\n"
    quiet = len(results) - len(changed)
    if quiet:
        head.append(f"{quiet} other target(s) render exactly what is deployed.")
        head.append("")
    tail = ["", f"[Full diff in the job summary]({run_url})" if run_url else "Full diff in the job summary."]
    fixed = "\n".join(head) + "\n" + "\n".join(tail) + "\n"
    budget = COMMENT_LIMIT - MARGIN - len(fixed)
    body = fit([(r, target_section(r)) for r in changed], budget, "this comment")
    return "\n".join(head) + "\n" + "\n".join(body) + "\n" + "\n".join(tail) + "\n"


def summary_diffs(results: Sequence[TargetResult], *, limit: int) -> str:
    changed = [r for r in results if r.diff is not None and r.diff.changed]
    if not changed:
        return ""
    title = "\n### Diff against what each tag holds now\n\n"
    body = fit([(r, target_section(r)) for r in changed], limit - len(title) - MARGIN, "the job summary")
    return title + "\n".join(body) + "\n"
