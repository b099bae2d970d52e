"""Markdown as GitHub shows it: cmark-gfm (GitHub's own Markdown library, with GitHub's extensions),
the HTML read back as the text a person sees, and a page styled roughly like github.com for the
screenshots in docs/ (tools/screenshots.py).

GitHub renders with cmark-gfm and then sanitizes the HTML; the sanitizer keeps <details>,
<summary> and <b>, so raw HTML is allowed here (CMARK_OPT_UNSAFE) the way GitHub lets it through.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

import cmarkgfm
from cmarkgfm.cmark import Options

# GitHub's extensions (table, strikethrough, autolink, tagfilter; cmarkgfm adds tasklist) and the
# `<pre lang="diff">` form GitHub's highlighter reads.
OPTIONS = Options.CMARK_OPT_UNSAFE


def to_html(markdown: str) -> str:
    return alerts(cmarkgfm.github_flavored_markdown_to_html(markdown, options=OPTIONS))


_ALERT = re.compile(r"<blockquote>\n<p>\[!(NOTE|TIP|IMPORTANT|WARNING|CAUTION)\]\n?")


def alerts(rendered: str) -> str:
    """GitHub turns a blockquote that opens with `[!WARNING]` into an alert after cmark-gfm (a step of
    its own pipeline, not of the library): done here the same way, so the page shows what GitHub does."""
    return _ALERT.sub(
        lambda m: (
            f'<blockquote class="alert alert-{m[1].lower()}">\n<p class="alert-title">{m[1].title()}</p>\n<p>'
        ),
        rendered,
    )


@dataclass
class Details:
    # the visible text of its <summary>, None when it has none
    summary: str | None = None
    first_child: str = ""  # the first element inside it


@dataclass
class Code:
    lang: str
    text: str


@dataclass
class Page:
    """What a reader sees: text outside code, code blocks, <details> sections, headings, links."""

    text: str = ""
    code: list[Code] = field(default_factory=list)
    details: list[Details] = field(default_factory=list)
    headings: list[str] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)  # (href, text)
    unclosed: list[str] = field(default_factory=list)


class _Reader(HTMLParser):
    VOID = frozenset({"br", "hr", "img", "input", "meta", "link"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self.stack: list[str] = []
        self.open_details: list[Details] = []
        self.buf: list[str] = []  # text outside <pre>
        self.pre: Code | None = None
        self.heading: list[str] | None = None
        self.summary: list[str] | None = None
        self.link: tuple[str, list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if self.open_details and not self.open_details[-1].first_child:
            self.open_details[-1].first_child = tag
        if tag == "details":
            d = Details()
            self.page.details.append(d)
            self.open_details.append(d)
        elif tag == "summary":
            self.summary = []
        elif tag == "pre":
            self.pre = Code(a.get("lang") or "", "")
        elif tag == "code" and self.pre is not None and not self.pre.lang:
            self.pre.lang = (a.get("class") or "").removeprefix("language-")
        elif re.fullmatch(r"h[1-6]", tag):
            self.heading = []
        elif tag == "a":
            self.link = (a.get("href") or "", [])
        if tag not in self.VOID:
            self.stack.append(tag)
        if tag in (
            "p",
            "li",
            "br",
            "tr",
            "summary",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "blockquote",
        ):
            self.buf.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.page.unclosed.append(
                f"</{tag}> closes <{self.stack[-1] if self.stack else ''}>"
            )
        else:
            self.stack.pop()
        if tag == "details" and self.open_details:
            self.open_details.pop()
        elif tag == "summary" and self.summary is not None and self.open_details:
            self.open_details[-1].summary = "".join(self.summary).strip()
            self.summary = None
        elif tag == "pre" and self.pre is not None:
            self.page.code.append(self.pre)
            self.pre = None
        elif re.fullmatch(r"h[1-6]", tag) and self.heading is not None:
            self.page.headings.append("".join(self.heading).strip())
            self.heading = None
        elif tag == "a" and self.link is not None:
            self.page.links.append((self.link[0], "".join(self.link[1])))
            self.link = None
        if tag in (
            "p",
            "li",
            "td",
            "th",
            "summary",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
        ):
            self.buf.append("\n" if tag != "td" and tag != "th" else " | ")

    def handle_data(self, data: str) -> None:
        if self.pre is not None:
            self.pre.text += data
            return
        self.buf.append(data)
        for part in (self.summary, self.heading, self.link[1] if self.link else None):
            if part is not None:
                part.append(data)

    def close(self) -> None:
        super().close()
        self.page.text = "".join(self.buf)
        self.page.unclosed += [f"<{t}> never closed" for t in self.stack]


def read(rendered: str) -> Page:
    reader = _Reader()
    reader.feed(rendered)
    reader.close()
    return reader.page


CSS = """
body { font-family: -apple-system, BlinkMacSystemFont, "Segoe UI", "Noto Sans", Helvetica, Arial,
  sans-serif; font-size: 14px; line-height: 1.5; color: #1f2328; background: #f6f8fa; margin: 0; }
.comment { max-width: 860px; margin: 16px auto; background: #fff; border: 1px solid #d1d9e0;
  border-radius: 6px; }
.comment-header { background: #f6f8fa; border-bottom: 1px solid #d1d9e0; padding: 8px 16px;
  border-radius: 6px 6px 0 0; color: #59636e; }
.comment-header b { color: #1f2328; }
.markdown-body { padding: 16px; }
.markdown-body > :first-child { margin-top: 0; }
h1, h2, h3, h4 { font-weight: 600; line-height: 1.25; margin: 24px 0 16px; }
h2 { font-size: 1.5em; border-bottom: 1px solid #d1d9e0; padding-bottom: .3em; }
h3 { font-size: 1.25em; } h4 { font-size: 1em; }
p, ul, table, pre, details, blockquote { margin: 0 0 16px; }
a { color: #0969da; text-decoration: none; }
code, pre { font-family: ui-monospace, SFMono-Regular, "SF Mono", Menlo, Consolas, "Liberation Mono",
  monospace; font-size: 85%; }
:not(pre) > code { background: #eff1f3; padding: .2em .4em; border-radius: 6px; }
pre { background: #f6f8fa; padding: 16px; border-radius: 6px; overflow: auto; line-height: 1.45; }
pre code { font-size: 100%; }
table { border-collapse: collapse; display: block; overflow: auto; }
th, td { border: 1px solid #d1d9e0; padding: 6px 13px; }
th { font-weight: 600; } tr:nth-child(2n) { background: #f6f8fa; }
summary { cursor: pointer; }
details > :nth-child(2) { margin-top: 16px; }
blockquote { color: #59636e; border-left: .25em solid #d1d9e0; padding: 0 1em; }
.alert { color: inherit; }
.alert-title { font-weight: 500; margin-bottom: 4px; }
.alert-warning { border-left-color: #9a6700; } .alert-warning .alert-title { color: #9a6700; }
.alert-caution { border-left-color: #d1242f; } .alert-caution .alert-title { color: #d1242f; }
.alert-note { border-left-color: #0969da; } .alert-note .alert-title { color: #0969da; }
.d-add { color: #116329; background: #dafbe1; }
.d-del { color: #82071e; background: #ffebe9; }
.d-hunk { color: #8250df; font-weight: bold; }
.d-file { color: #0550ae; font-weight: bold; }
"""


_DIFF_KINDS = (
    ("@@", "d-hunk"),
    ("+++", "d-file"),
    ("---", "d-file"),
    ("+", "d-add"),
    ("-", "d-del"),
)


def _diff_colours(rendered: str) -> str:
    """GitHub colours a `diff` block line by line (+ green, - red, @@ purple, ---/+++ headers blue):
    the same, with spans."""

    def colour(m: re.Match[str]) -> str:
        lines = []
        for line in m[2].split("\n"):
            kind = next((k for p, k in _DIFF_KINDS if line.startswith(p)), "")
            lines.append(f'<span class="{kind}">{line}</span>' if kind else line)
        return m[1] + "\n".join(lines) + "</code></pre>"

    return re.sub(
        r'(<pre lang="diff"><code>)(.*?)</code></pre>', colour, rendered, flags=re.S
    )


# The frame around each page, as GitHub draws it: a bot's comment, a step's job summary.
HEADERS = {
    "comment": "<b>github-actions</b> bot commented · sections opened for the picture",
    "summary": "<b>preview</b> summary · sections opened for the picture",
}


def page(name: str, markdown: str) -> str:
    """One self-contained HTML page: `markdown` rendered by cmark-gfm in a GitHub-like frame, every
    <details> opened (as after a click) so that the screenshot shows the diffs."""
    body = _diff_colours(to_html(markdown)).replace("<details>", "<details open>")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>timoni-flux-push: {html.escape(name)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f'<div class="comment">\n<div class="comment-header">{HEADERS[name]}</div>\n'
        f'<div class="markdown-body">\n{body}</div>\n</div>\n</body>\n</html>\n'
    )
