"""Untrusted text (file names, CUE errors, manifests, registry answers) made safe to show: without
terminal escapes in a log, escaped in Markdown or in an HTML block, fenced as code. Every stage
that prints or writes such text uses these."""

from __future__ import annotations

import re
from collections.abc import Sequence

# Terminal escapes and control characters but tab and newline.
CONTROL = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-_]?|[\x00-\x08\x0b-\x1f\x7f-\x9f]"
)


def plain(text: str) -> str:
    """Text without terminal escapes or control characters (tabs and newlines stay), and valid
    UTF-8: a file name's undecodable bytes (kept as surrogates) are written as \\udcXX."""
    return CONTROL.sub("", text).encode("utf-8", "backslashreplace").decode("utf-8")


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~])")


def md(text: str) -> str:
    """Escape untrusted text for one markdown line (a table cell, a list item, a paragraph). `<`, `>`
    and `&` become entities. Never inside an HTML block (<summary>): there a backslash shows as text."""
    flat = " ".join(CONTROL.sub("", text).split())
    flat = flat.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    # Undecodable bytes of a file name (surrogates) are shown as \udcXX, after the escaping.
    return plain(_MD_SPECIAL.sub(r"\\\1", flat).replace("@", "&#64;"))


def html(text: str) -> str:
    """Escape untrusted text for one line inside an HTML block (a <summary>): Markdown is not read
    there, so only HTML's characters are escaped. One line: a blank line would end the block."""
    flat = " ".join(CONTROL.sub("", text).split())
    for char, entity in (
        ("&", "&amp;"),
        ("<", "&lt;"),
        (">", "&gt;"),
        ('"', "&quot;"),
        ("@", "&#64;"),
    ):
        flat = flat.replace(char, entity)
    return plain(flat)


def details(title: str, body: Sequence[str], *, opened: bool = False) -> str:
    """A collapsible section GitHub renders: `title` is HTML (escape with `html`), `body` Markdown.
    The blank lines end the HTML block before the Markdown and after </details>."""
    tag = "<details open>" if opened else "<details>"
    return "\n".join([f"{tag}<summary>{title}</summary>", "", *body, "", "</details>"])


def fence(text: str, lang: str = "") -> str:
    """A code block no content can close early: the fence is longer than any backtick run inside."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{lang}\n{text.rstrip()}\n{ticks}"


def folded(title: str, items: Sequence[str]) -> list[str]:
    """A markdown list folded under a <details> title (nothing when the list is empty); `title` is
    HTML (plain words), `items` markdown already."""
    if not items:
        return []
    return ["", *details(title, [f"- {x}" for x in items]).split("\n")]
