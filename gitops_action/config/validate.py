"""The configuration against its JSON Schema (`schema/config.schema.json`, draft 2020-12, checked by
`jsonschema`): the first error, the one the user meant, with its key path and line."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterator
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from gitops_action.config import validator_process
from gitops_action.config.yaml_lines import Lines, key_path, line_for
from gitops_action.errors import ConfigError

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError
    from jsonschema.protocols import Validator

# In one place of the document, which failed keyword is reported first: a required key before an
# unknown one (an unknown key next to a missing one is most often that key misspelt).
_ORDER = (
    "type",
    "const",
    "required",
    "additionalProperties",
    "minItems",
    "minLength",
    "maxLength",
    "pattern",
    "oneOf",
)


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


def _pattern(
    validator: Validator, pattern: str, instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    """jsonschema's `pattern` keyword (same message), `$` read as ECMA-262 reads it."""
    from jsonschema.exceptions import ValidationError

    if validator.is_type(instance, "string") and not _regex(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


@cache
def validator() -> Validator:
    """The draft 2020-12 validator of the inlined schema, built once. jsonschema is imported here,
    when a configuration is first validated, not by every import of the package."""
    from jsonschema import Draft202012Validator, validators

    # types-jsonschema leaves `extend` untyped; it returns a validator class like Draft202012Validator.
    checker: type[Validator] = validators.extend(  # type: ignore[no-untyped-call]
        Draft202012Validator, {"pattern": _pattern}
    )
    return checker(inlined_schema())


def validate(data: Any, lines: Lines, file: str) -> None:
    """Raise the ConfigError the user meant, if `data` breaks the schema: checked by the run's
    copy on the other core when it has one (validator_process.py), else here."""
    if not validator_process.check(data, lines, file):
        check_here(data, lines, file)


def check_here(data: Any, lines: Lines, file: str) -> None:
    errors = sorted(
        validator().iter_errors(data),
        key=lambda e: (list(map(str, e.absolute_path)), e.message),
    )
    if not errors:
        return
    err = errors[0]
    best = err
    if err.validator == "oneOf" and err.context:
        # An instance is either explicit or a `match` pattern: report the errors of the one it meant.
        meant = 1 if isinstance(err.instance, dict) and "match" in err.instance else 0
        branch = [e for e in err.context if e.relative_schema_path[0] == meant]
        best = _closest(branch) if branch else err
    path = list(best.absolute_path)
    message = best.message
    if best.validator == "pattern" and isinstance(best.schema, dict):
        description = best.schema.get("description")
        if isinstance(description, str):
            # "'x' does not match '\\{name\\}'" alone says little: add what the field must be.
            message += f" ({description})"
    if best.validator in ("additionalProperties", "required"):
        path, message = _typo(best, path, message)
    raise ConfigError(file, key_path(path), message, line_for(lines, path))


def _closest(branch: list[ValidationError]) -> ValidationError:
    """Like jsonschema's best_match, the error closest to the top of the document; on a tie, the
    first place in document order, and there the first keyword in `_ORDER`."""
    top = min(len(e.absolute_path) for e in branch)
    first = next(e for e in branch if len(e.absolute_path) == top).absolute_path
    return min(
        (e for e in branch if e.absolute_path == first),
        key=lambda e: (
            _ORDER.index(e.validator) if e.validator in _ORDER else len(_ORDER)
        ),
    )


def _typo(
    err: ValidationError, path: list[str | int], message: str
) -> tuple[list[str | int], str]:
    """An unknown key, or a required key missing next to one: most often a typo. Point at the unknown
    key's line and name the key it is closest to (`namesppace:` -> did you mean `namespace`?)."""
    if not isinstance(err.instance, dict) or not isinstance(err.schema, dict):
        return path, message
    allowed = sorted(err.schema.get("properties", {}))
    # a key YAML reads as a date, a number or a boolean is unknown too: named as text
    extra = sorted(str(k) for k in err.instance if k not in allowed)
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
