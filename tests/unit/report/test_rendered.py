"""The PR comment and the job summary as GitHub shows them (issue 20): rendered with cmark-gfm, GitHub's
own Markdown library, and read back as the text a person sees. No Markdown syntax may show as text,
every collapsible section has a title, diffs are `diff` blocks with + and - lines, and the comment
opens with a verdict that names its commit."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from support import gfm
from support.samples import (
    DIGEST,
    HEAD,
    NEW_TARGET,
    RUN_URL,
    STAMP,
    annotation,
    comment_markdown,
    dry_results,
    plan,
    result,
    stream_diff,
    summary_markdown,
)

from gitops_action.report import comment
from gitops_action.report import summary as report

DOCS = Path(__file__).resolve().parents[3] / "docs"
RENDERED = {"comment": comment_markdown, "summary": summary_markdown}
# A backslash escape that cmark-gfm would have consumed outside HTML: seen as text, it is a bug.
ESCAPE = re.compile(r"\\[!-/:-@\[-`{-~]")


@pytest.fixture(params=sorted(RENDERED))
def page(request: pytest.FixtureRequest) -> gfm.Page:
    return gfm.read(gfm.to_html(RENDERED[request.param]()))


def test_no_markdown_syntax_shows_as_text(page: gfm.Page) -> None:
    text = page.text
    assert "**" not in text
    assert "```" not in text
    assert not ESCAPE.search(text), ESCAPE.findall(text)
    for tag in ("<details", "</details", "<summary", "<b>", "</b>"):
        assert tag not in text
    assert page.unclosed == []


def test_every_section_has_a_title(page: gfm.Page) -> None:
    assert page.details, "one collapsible section per target"
    for d in page.details:
        assert d.summary, d
        assert d.first_child == "summary"
        assert "**" not in d.summary and "\\" not in d.summary


def test_diffs_are_diff_blocks_added_objects_with_plus_removed_with_minus(
    page: gfm.Page,
) -> None:
    diffs = [c for c in page.code if c.lang == "diff"]
    assert {c.lang for c in page.code} <= {"diff", "text"}
    everything = "\n".join(c.text for c in diffs)
    for line in (
        "-  replicas: '1'",
        "+  replicas: '2'",
        "+kind: Service",
        "+  - port: 80",
    ):
        assert line in everything.splitlines()
    # the new target's ConfigMap
    added = next(c.text for c in diffs if "name: search" in c.text)
    assert all(ln.startswith(("+", "@@")) for ln in added.splitlines()), added
    # removed from a target
    gone = next(c.text for c in diffs if "name: webapp-legacy" in c.text)
    assert all(ln.startswith(("-", "@@")) for ln in gone.splitlines()), gone
    assert "s3cret" not in everything and "password: <hidden> (changed)" in everything


def test_a_failure_is_shown_in_its_own_section_as_written(page: gfm.Page) -> None:
    assert any(h.startswith("Failed") for h in page.headings), page.headings
    errors = [
        c.text for c in page.code if "conflicting values 443 and string" in c.text
    ]
    assert errors, "the error, as timoni wrote it, in a code block"
    assert "values.port ~ <int> & @someone [see **docs**]" in errors[0]
    assert "apps/billing/values.cue:3:8" in errors[0]


def test_the_verdict_comes_first_and_names_the_commit(page: gfm.Page) -> None:
    assert page.headings[0].endswith(": 1 changed, 1 added, 1 removed, 1 failed"), (
        page.headings[0]
    )
    # the line under the verdict
    first = [ln for ln in page.text.split("\n") if ln.strip()][1]
    assert first.startswith(
        "1 unchanged · commit c0ffee1 · updated 2026-12-06 19:55 UTC"
    ), first
    assert (
        "https://github.com/octo-org/gitops/commit/" + HEAD,
        "c0ffee1",
    ) in page.links


def test_a_complete_comment_does_not_send_the_reader_to_the_summary() -> None:
    """First hour: "Full diff in the job summary." under a comment that holds every diff."""
    page = gfm.read(gfm.to_html(comment_markdown()))
    assert "Full diff in the job summary" not in page.text
    assert all(url != RUN_URL for url, _ in page.links)


@pytest.mark.parametrize("name", sorted(RENDERED))
def test_docs_show_what_the_renderer_makes_now(name: str) -> None:
    """docs/<name>.html (screenshotted into docs/<name>.png by tools/screenshots.py, shown in the
    README) is exactly today's rendering: after a change to the Markdown, run the tool again."""
    kept = (DOCS / f"{name}.html").read_text("utf-8")
    assert kept == gfm.page(name, RENDERED[name]()), (
        "run: .venv/bin/python tools/screenshots.py"
    )


def valid(body: str) -> gfm.Page:
    page = gfm.read(gfm.to_html(body))
    assert (
        "**" not in page.text
        and "```" not in page.text
        and not ESCAPE.search(page.text)
    )
    assert page.unclosed == [] and all(
        d.summary and d.first_child == "summary" for d in page.details
    )
    return page


def test_a_comment_too_large_folds_whole_targets_and_still_renders() -> None:
    old = "".join(
        f"---\nkind: ConfigMap\nmetadata: {{name: c{i}, namespace: bulk}}\ndata: {{salt: a}}\n"
        for i in range(400)
    )
    bulk = result(
        "bulk",
        "dry-run",
        diff=stream_diff(old, old.replace("salt: a", "salt: " + "b" * 200)),
    )
    body = comment.render(
        [bulk, *dry_results()],
        config_path=".timoni-flux.yaml",
        run_url=RUN_URL,
        stamp=STAMP,
    )
    assert len(body) <= comment.COMMENT_LIMIT
    page = valid(body)
    assert (
        "bulk · changed: 0 added, 400 changed, 0 removed object(s): diff too large for this comment, "
        "see the job summary"
    ) in page.text
    # the small target keeps its diff
    assert any("+  replicas: '2'" in c.text for c in page.code)
    assert any(h.startswith("Failed") for h in page.headings)
    # a diff is not here: the run has it
    assert (RUN_URL, "Full diff in the job summary") in page.links


def test_more_targets_than_one_line_each_fits_still_renders() -> None:
    diff = stream_diff("", NEW_TARGET)
    many = [
        result(f"target-{i:04}", "dry-run", diff=diff, new_target=True)
        for i in range(900)
    ]
    body = comment.render(
        many, config_path=".timoni-flux.yaml", run_url=RUN_URL, stamp=STAMP
    )
    assert len(body) <= comment.COMMENT_LIMIT
    page = valid(body)
    assert "more target(s), listed in the job summary" in page.text
    assert page.headings[0].endswith(": 0 changed, 900 added, 0 removed, 0 failed")


def test_a_push_summary_with_a_hostile_target_id_renders() -> None:
    hostile = "billing|<script>alert(1)</script>**x**"
    rs = [
        result("webapp", "pushed", digest=DIGEST, reasons=("apps/webapp/values.cue modified",)),
        result(hostile, "failed", error="values.port: conflicting values 443 and string (x)",
               annotations=[annotation("apps/billing/values.cue", 3, 1, "values.port: conflicting")]),
        result("platform", "skipped", error="an older commit: the tag holds a newer one"),
    ]  # fmt: skip
    text = report.summary(plan(rs), rs, mode="push", stamp=STAMP)
    rendered = gfm.to_html(text)
    assert "<script" not in rendered
    page = gfm.read(rendered)
    assert page.headings[0] == "timoni-flux-push push: 1 pushed, 0 removed, 1 failed"
    # shown as text, in the table
    assert "billing|<script>alert(1)</script>" in page.text
    assert [d.summary for d in page.details][:2] == [
        f"{hostile} · failed",
        "platform · skipped",
    ]
    assert page.unclosed == [] and "\\" not in page.text
