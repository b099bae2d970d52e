"""JSON Schema validation for the configuration schema: the keywords it uses, nothing else.

`jsonschema` took about a third of the action's start-up (its import alone, ~30 ms, paid by every
run). This checks the subset of draft 2020-12 that `schema/config.schema.json` uses, with
jsonschema's messages; `tests/unit/config/test_schema_subset.py` holds it to jsonschema's verdicts
on a corpus of broken configurations and fails if the schema starts using a keyword not handled
here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any

# Keywords that only describe; everything else in a schema must be handled below.
ANNOTATIONS = frozenset({"$schema", "$id", "title", "description", "$defs"})
HANDLED = frozenset(
    {
        "type",
        "const",
        "required",
        "properties",
        "additionalProperties",
        "items",
        "minItems",
        "minLength",
        "maxLength",
        "pattern",
        "oneOf",
    }
)

_TYPES: dict[str, Any] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


@dataclass
class SchemaError:
    """One failed keyword, shaped like jsonschema's ValidationError (the parts config.py reads)."""

    message: str
    validator: str  # the keyword
    path: tuple[str | int, ...]  # where in the document
    schema: dict[str, Any]
    instance: Any
    # oneOf: every branch's errors
    context: list[SchemaError] = field(default_factory=list)
    branch: int = -1  # in a oneOf context: which branch this error came from


def _same(a: Any, b: Any) -> bool:
    """JSON equality: true is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


@cache
def _regex(pattern: str) -> re.Pattern[str]:
    """The schema's (ECMA-262) regex in Python: its `$` is the end of the text, while Python's `$`
    also matches before a final newline (`"webapp\\n"` would pass `^[a-z0-9-]+$`)."""
    out, i, in_class = [], 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        in_class = (in_class and c != "]") or c == "["
        out.append(r"\Z" if c == "$" and not in_class else c)
        i += 1
    return re.compile("".join(out))


def iter_errors(
    schema: dict[str, Any], instance: Any, path: tuple[str | int, ...] = ()
) -> Iterator[SchemaError]:
    """Every failed keyword, like jsonschema's `iter_errors` (schema with its `$ref`s inlined)."""
    unknown = set(schema) - HANDLED - ANNOTATIONS
    if unknown:
        raise ValueError(f"schema keyword not supported: {sorted(unknown)}")

    def error(keyword: str, message: str, **more: Any) -> SchemaError:
        return SchemaError(message, keyword, path, schema, instance, **more)

    if "type" in schema and not _TYPES[schema["type"]](instance):
        yield error("type", f"{instance!r} is not of type {schema['type']!r}")
    if "const" in schema and not _same(instance, schema["const"]):
        yield error("const", f"{schema['const']!r} was expected")
    if isinstance(instance, dict):
        for name in schema.get("required", ()):
            if name not in instance:
                yield error("required", f"{name!r} is a required property")
        properties = schema.get("properties", {})
        for name, sub in properties.items():
            if name in instance:
                yield from iter_errors(sub, instance[name], (*path, name))
        if schema.get("additionalProperties") is False:
            extra = [k for k in instance if k not in properties]
            if extra:
                listed = ", ".join(repr(k) for k in extra)
                verb = "was" if len(extra) == 1 else "were"
                yield error(
                    "additionalProperties",
                    f"Additional properties are not allowed ({listed} {verb} unexpected)",
                )
    if isinstance(instance, list):
        if len(instance) < schema.get("minItems", 0):
            yield error("minItems", _too_short(instance, schema["minItems"]))
        if "items" in schema:
            for i, item in enumerate(instance):
                yield from iter_errors(schema["items"], item, (*path, i))
    if isinstance(instance, str):
        if len(instance) < schema.get("minLength", 0):
            yield error("minLength", _too_short(instance, schema["minLength"]))
        if "maxLength" in schema and len(instance) > schema["maxLength"]:
            yield error("maxLength", f"{instance!r} is too long")
        if "pattern" in schema and not _regex(schema["pattern"]).search(instance):
            yield error("pattern", f"{instance!r} does not match {schema['pattern']!r}")
    if "oneOf" in schema:
        context: list[SchemaError] = []
        valid = 0
        for n, sub in enumerate(schema["oneOf"]):
            found = list(iter_errors(sub, instance, path))
            for e in found:
                e.branch = n
            context += found
            valid += not found
        if valid == 0:
            yield error(
                "oneOf",
                f"{instance!r} is not valid under any of the given schemas",
                context=context,
            )
        elif valid > 1:
            yield error(
                "oneOf", f"{instance!r} is valid under each of the given schemas"
            )


def _too_short(instance: Any, least: int) -> str:
    return (
        f"{instance!r} should be non-empty"
        if least == 1
        else f"{instance!r} is too short"
    )
