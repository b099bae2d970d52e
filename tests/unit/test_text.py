"""text.md, text.html and text.fence: untrusted text (file names, CUE errors, manifests) in
markdown, in an HTML block and in a code block."""

from __future__ import annotations

import re

import pytest

from gitops_action.text import fence, html, md


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("plain words", "plain words"),
        ("a|b", "a\\|b"),  # would split a table cell
        ("[x](javascript:alert(1))", "\\[x\\]\\(javascript:alert\\(1\\)\\)"),
        # HTML becomes entities: a backslash does not stop it inside <details><summary> (issue 12).
        ("<img src=x onerror=alert(1)>", "&lt;img src=x onerror=alert\\(1\\)&gt;"),
        (
            "**bold** _it_ `code` ~~s~~",
            "\\*\\*bold\\*\\* \\_it\\_ \\`code\\` \\~\\~s\\~\\~",
        ),
        ("# heading + list ! {x}", "\\# heading \\+ list \\! \\{x\\}"),
        ("back\\slash", "back\\\\slash"),
        ("@octocat please", "&#64;octocat please"),  # no mention, no notification
        ("&lt;tag&gt;", "&amp;lt;tag&amp;gt;"),  # an entity shows as written
        # one line: a table row stays one row
        ("two\nlines\r\n\tand tabs", "two lines and tabs"),
    ],
)
def test_md_escapes_everything_markdown_would_act_on(text: str, escaped: str) -> None:
    assert md(text) == escaped


def test_md_leaves_no_markup_character_unescaped() -> None:
    text = "".join(chr(c) for c in range(32, 127))
    out = md(text)
    # Every markup character is escaped by a backslash; & and @ became entities.
    assert not re.search(r"[\\`*_{}\[\]<>()#+!|~]", re.sub(r"\\.|&amp;|&#64;", "", out))
    assert "@" not in out and "&#64;" in out


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("plain words", "plain words"),
        # Inside <summary> no Markdown is read: Markdown characters stay as they are, no backslash.
        ("**bold** a|b (x) ~y~ [z] \\ `c`", "**bold** a|b (x) ~y~ [z] \\ `c`"),
        (
            "<img src=x onerror=alert(1)></summary>",
            "&lt;img src=x onerror=alert(1)&gt;&lt;/summary&gt;",
        ),
        ('say "hi" & @octocat', "say &quot;hi&quot; &amp; &#64;octocat"),
        # a blank line would end the HTML block
        ("two\n\nlines\r\n\tand tabs", "two lines and tabs"),
    ],
)
def test_html_escapes_what_html_reads_and_keeps_one_line(
    text: str, escaped: str
) -> None:
    assert html(text) == escaped


@pytest.mark.parametrize("inner", ["", "`", "``", "```", "``````", "a ```` b"])
def test_fence_is_longer_than_any_backtick_run_inside(inner: str) -> None:
    text = f"before\n{inner}\nafter\n"
    block = fence(text, "diff")
    first, *_, last = block.split("\n")
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    assert first == "`" * max(3, longest + 1) + "diff"
    assert last == "`" * max(3, longest + 1)
    assert block == f"{first}\n{text.rstrip()}\n{last}"
