"""Path patterns of the configuration: `match` patterns (globs with `{placeholder}` segments that
capture) and `watch` globs, compiled to regexes by one translator."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from gitops_action.errors import ConfigError

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class MatchPattern:
    regex: re.Pattern[str]
    words: tuple[str, ...]
    literal_prefix: str


# Glob syntax shared by `match` patterns and `watch` globs: `**/` is any number of directories,
# `**` anything, `*` and `?` stay within one path segment.
_GLOB = (("**/", "(?:[^/]+/)*"), ("**", ".*"), ("*", "[^/]*"), ("?", "[^/]"))


def _translate(
    pattern: str, placeholder: Callable[[re.Match[str]], str] | None = None
) -> str:
    """The regex for a glob; with `placeholder`, each `{word}` becomes what it returns."""
    out, i = "", 0
    while i < len(pattern):
        glob = next((g for g in _GLOB if pattern.startswith(g[0], i)), None)
        if glob:
            out, i = out + glob[1], i + len(glob[0])
        elif placeholder and (m := PLACEHOLDER.match(pattern, i)):
            out, i = out + placeholder(m), m.end()
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return out


def compile_match(pattern: str, file: str, key: str, line: int | None) -> MatchPattern:
    """Turn `clusters/{env}/{name}/*.cue` into a regex: a placeholder is one path segment."""
    words: list[str] = []

    def capture(m: re.Match[str]) -> str:
        word = m.group(1)
        if word in words:  # a repeated placeholder matches the same segment again
            return f"(?P={word})"
        words.append(word)
        return f"(?P<{word}>[^/]+)"

    out = _translate(pattern, capture)
    if "name" not in words:
        raise ConfigError(file, key, "a match pattern must capture {name}", line)
    prefix = re.split(r"[*?{]", pattern, maxsplit=1)[0]
    # DOTALL: `**` must also match file names holding a newline (git allows them).
    return MatchPattern(re.compile(out + r"\Z", re.DOTALL), tuple(words), prefix)


@cache
def glob_regex(glob: str) -> re.Pattern[str]:
    # A plain directory name watches everything below it.
    return re.compile(_translate(glob) + r"(?:/.*)?\Z", re.DOTALL)
