"""The configuration against its JSON Schema (`schema/config.schema.json`, checked by
`schema_check`): the first error, the one the user meant, with its key path and line."""

from __future__ import annotations

import difflib
import json
from functools import cache
from importlib import resources
from typing import Any

from gitops_action.config import schema_subset as schema_check
from gitops_action.config.yaml_lines import Lines, key_path, line_for
from gitops_action.errors import ConfigError


@cache
def schema() -> dict[str, Any]:
    text = (
        resources.files("gitops_action.config")
        .joinpath("schema/config.schema.json")
        .read_text("utf-8")
    )
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def _inline_refs(node: Any, root: dict[str, Any]) -> Any:
    """The schema with every local `$ref` replaced by what it points at (the schema has no cycles):
    reference lookups were most of the validation time on large configurations."""
    if isinstance(node, list):
        return [_inline_refs(x, root) for x in node]
    if not isinstance(node, dict):
        return node
    out = {
        k: _inline_refs(v, root) for k, v in node.items() if k not in ("$ref", "$defs")
    }
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target[part]
        out = {**_inline_refs(target, root), **out}
    elif ref is not None:
        out["$ref"] = ref
    return out


@cache
def inlined_schema() -> dict[str, Any]:
    return dict(_inline_refs(schema(), schema()))


def validate(data: Any, lines: Lines, file: str) -> None:
    errors = sorted(
        schema_check.iter_errors(inlined_schema(), data),
        key=lambda e: (list(map(str, e.path)), e.message),
    )
    if not errors:
        return
    err = errors[0]
    best = err
    if err.validator == "oneOf" and err.context:
        # An instance is either explicit or a `match` pattern: report the errors of the one it meant.
        meant = 1 if isinstance(err.instance, dict) and "match" in err.instance else 0
        branch = [e for e in err.context if e.branch == meant]
        # jsonschema's best_match: the error closest to the top of the document, the first one on a tie.
        best = min(branch, key=lambda e: len(e.path)) if branch else err
    path = list(best.path)
    message = best.message
    if best.validator == "pattern" and isinstance(best.schema.get("description"), str):
        # "'x' does not match '\\{name\\}'" alone says little: add what the field must be.
        message += f" ({best.schema['description']})"
    if best.validator in ("additionalProperties", "required"):
        path, message = _typo(best, path, message)
    raise ConfigError(file, key_path(path), message, line_for(lines, path))


def _typo(
    err: schema_check.SchemaError, path: list[str | int], message: str
) -> tuple[list[str | int], str]:
    """An unknown key, or a required key missing next to one: most often a typo. Point at the unknown
    key's line and name the key it is closest to (`namesppace:` -> did you mean `namespace`?)."""
    if not isinstance(err.instance, dict):
        return path, message
    allowed = sorted(err.schema.get("properties", {}))
    extra = sorted(k for k in err.instance if k not in allowed)
    missing = [k for k in err.schema.get("required", ()) if k not in err.instance]
    typos = [(k, _close(k, missing)) for k in extra if _close(k, missing)]
    if typos:  # the missing key was written, misspelt
        key, meant = typos[0]
        return [
            *path,
            key,
        ], f"unknown key {key!r}: did you mean `{meant}`? (`{meant}` is required)"
    if err.validator == "required" or not extra:
        return path, message
    meant = _close(extra[0], [k for k in allowed if k not in err.instance])
    hint = (
        f": did you mean `{meant}`?" if meant else f" (allowed: {', '.join(allowed)})"
    )
    return [*path, extra[0]], f"unknown key {extra[0]!r}{hint}"


def _close(word: str, candidates: list[str]) -> str:
    found = difflib.get_close_matches(word, candidates, n=1, cutoff=0.75)
    return found[0] if found else ""
