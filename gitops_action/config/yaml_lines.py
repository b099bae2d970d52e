"""The configuration's YAML, parsed once with the line of every key path, so that each error can
point at the file and line it is about. A key given twice is an error (YAML keeps the last one)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import yaml

from gitops_action.errors import ConfigError

Lines = dict[tuple[str | int, ...], int]  # key path -> 1-based line


def key_path(parts: Iterable[str | int]) -> str:
    out = ""
    for part in parts:
        out += (
            f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
        )
    return out


class _DuplicateKey(Exception):
    def __init__(self, path: tuple[str | int, ...], line: int) -> None:
        super().__init__(path, line)
        self.path, self.line = path, line


def _node_lines(node: yaml.Node, path: tuple[str | int, ...], lines: Lines) -> None:
    """Record the 1-based line of every key path, so errors can point at the file."""
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            sub = (*path, str(key_node.value))
            # YAML keeps the last of two equal keys: silently dropping the first
            if sub in lines:
                raise _DuplicateKey(sub, key_node.start_mark.line + 1)
            _node_lines(value_node, sub, lines)
            lines[sub] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _node_lines(item, (*path, i), lines)


def parse_yaml(text: str, file: str) -> tuple[Any, Lines]:
    # Parse once (compose, then construct from the same node tree), with libyaml when present:
    # the pure-Python parser dominated planning on large configurations.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(file, "", f"invalid YAML: {problem}", line) from exc
    finally:
        loader.dispose()
    lines: Lines = {}
    if node is not None:
        try:
            _node_lines(node, (), lines)
        except _DuplicateKey as dup:
            raise ConfigError(
                file,
                key_path(dup.path),
                "duplicate key (YAML would silently keep only the last one)",
                dup.line,
            ) from None
    return data, lines


def line_for(lines: Lines, path: Sequence[str | int]) -> int | None:
    p = tuple(path)
    while p not in lines and p:
        p = p[:-1]
    return lines.get(p)
