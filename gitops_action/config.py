"""The configuration file: load, validate against the JSON Schema, expand into targets.

Loading is pure: it takes the file's text and the list of files in the repository at one commit,
so the planner can expand the configuration at the base and at the head commit alike.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, Literal

import yaml

from . import schema_check
from .errors import ConfigError

DEFAULT_TAGS = ("latest",)
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
REPOSITORY_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")  # the OCI distribution spec's name grammar


@dataclass(frozen=True)
class Target:
    """One thing that is rendered and pushed: a module instance or a bundle."""

    id: str
    kind: Literal["instance", "bundle"]
    name: str  # timoni instance name, or the bundle's name
    artifact: str  # oci://repository, no tag
    tags: tuple[str, ...]
    files: tuple[str, ...]  # values files (instances) or bundle files, repo-relative, in order
    namespace: str = ""
    module: str = ""  # repo-relative directory, or oci://...
    version: str = ""
    watch: tuple[str, ...] = ()
    # Where the target comes from, for messages; not part of its identity.
    key: str = field(default="", compare=False)
    line: int | None = field(default=None, compare=False)

    @property
    def local_module(self) -> str | None:
        return None if not self.module or self.module.startswith("oci://") else self.module


@dataclass(frozen=True)
class Config:
    path: str
    registry: str
    source: str
    targets: tuple[Target, ...]
    warnings: tuple[str, ...] = ()

    def by_id(self) -> dict[str, Target]:
        return {t.id: t for t in self.targets}


@cache
def schema() -> dict[str, Any]:
    text = resources.files("gitops_action").joinpath("schema/config.schema.json").read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def key_path(parts: Iterable[str | int]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class _DuplicateKey(Exception):
    def __init__(self, path: tuple[str | int, ...], line: int) -> None:
        super().__init__(path, line)
        self.path, self.line = path, line


def _node_lines(
    node: yaml.Node, path: tuple[str | int, ...], lines: dict[tuple[str | int, ...], int]
) -> None:
    """Record the 1-based line of every key path, so errors can point at the file."""
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            sub = (*path, str(key_node.value))
            if sub in lines:  # YAML keeps the last of two equal keys: silently dropping the first
                raise _DuplicateKey(sub, key_node.start_mark.line + 1)
            _node_lines(value_node, sub, lines)
            lines[sub] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _node_lines(item, (*path, i), lines)


def parse_yaml(text: str, file: str) -> tuple[Any, dict[tuple[str | int, ...], int]]:
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
    lines: dict[tuple[str | int, ...], int] = {}
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


def _line_for(lines: dict[tuple[str | int, ...], int], path: Sequence[str | int]) -> int | None:
    p = tuple(path)
    while p not in lines and p:
        p = p[:-1]
    return lines.get(p)


def _inline_refs(node: Any, root: dict[str, Any]) -> Any:
    """The schema with every local `$ref` replaced by what it points at (the schema has no cycles):
    reference lookups were most of the validation time on large configurations."""
    if isinstance(node, list):
        return [_inline_refs(x, root) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: _inline_refs(v, root) for k, v in node.items() if k not in ("$ref", "$defs")}
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


def validate(data: Any, lines: dict[tuple[str | int, ...], int], file: str) -> None:
    errors = sorted(
        schema_check.iter_errors(inlined_schema(), data), key=lambda e: (list(map(str, e.path)), e.message)
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
    if best.validator == "additionalProperties":
        extra = sorted(set(best.instance) - set(best.schema.get("properties", {})))
        if extra:
            path = [*path, extra[0]]
            message = f"unknown key {extra[0]!r} (allowed: {', '.join(sorted(best.schema['properties']))})"
    raise ConfigError(file, key_path(path), message, _line_for(lines, path))


def _safe_relpath(value: str, file: str, key: str, line: int | None) -> str:
    if value.startswith("/") or "\\" in value:
        raise ConfigError(file, key, f"{value!r} must be a path relative to the repository root", line)
    norm = posixpath.normpath(value)
    if norm == ".." or norm.startswith("../"):
        raise ConfigError(file, key, f"{value!r} leaves the repository", line)
    return "" if norm == "." else norm


def fill(template: str, values: dict[str, str], file: str, key: str, line: int | None) -> str:
    def sub(m: re.Match[str]) -> str:
        word = m.group(1)
        if word not in values:
            known = ", ".join("{" + k + "}" for k in sorted(values))
            raise ConfigError(file, key, f"unknown placeholder {{{word}}} (known here: {known})", line)
        return values[word]

    return PLACEHOLDER.sub(sub, template)


@dataclass(frozen=True)
class MatchPattern:
    regex: re.Pattern[str]
    words: tuple[str, ...]
    literal_prefix: str


# Glob syntax shared by `match` patterns and `watch` globs: `**/` is any number of directories,
# `**` anything, `*` and `?` stay within one path segment.
_GLOB = (("**/", "(?:[^/]+/)*"), ("**", ".*"), ("*", "[^/]*"), ("?", "[^/]"))


def _translate(pattern: str, placeholder: Callable[[re.Match[str]], str] | None = None) -> str:
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


def _check_tag(tag: str, file: str, key: str, line: int | None) -> None:
    if not TAG_RE.match(tag):
        raise ConfigError(
            file,
            key,
            f"{tag!r} is not a valid OCI tag (letters, digits, _ . -; not starting with . or -)",
            line,
        )


def load(
    text: str,
    *,
    file: str,
    repo_files: Sequence[str] | None,
    registry_override: str = "",
    default_source: str = "",
) -> Config:
    """Parse, validate and expand the configuration. `repo_files` lists the repository's files at
    the commit the configuration belongs to (needed to expand `match` patterns)."""
    data, lines = parse_yaml(text, file)
    if data is None:
        raise ConfigError(file, "", "the file is empty (expected at least `version: 1`)", 1)
    validate(data, lines, file)
    registry = (registry_override or data.get("registry") or "").rstrip("/")
    source = data.get("source") or default_source
    targets: list[Target] = []
    warnings: list[str] = []

    def where(*parts: str | int) -> tuple[str, int | None]:
        return key_path(parts), _line_for(lines, parts)

    def paths(
        raw: dict[str, Any], key: str, values: dict[str, str], base: tuple[str | int, ...]
    ) -> tuple[str, ...]:
        """The entry's list of repository paths under `key`, placeholders filled, kept inside."""
        out = []
        for i, template in enumerate(raw.get(key, [])):
            k, line = where(*base, key, i)
            out.append(_safe_relpath(fill(template, values, file, k, line), file, k, line))
        return tuple(out)

    def resolve_common(
        raw: dict[str, Any], values: dict[str, str], base: tuple[str | int, ...]
    ) -> dict[str, Any]:
        def f(k: str, s: str, *more: int) -> str:
            key, line = where(*base, k, *more)
            return fill(s, values, file, key, line)

        module = f("module", raw["module"]) if "module" in raw else ""
        if module and not module.startswith("oci://"):
            key, line = where(*base, "module")
            module = _safe_relpath(module.removeprefix("file://"), file, key, line)
        artifact_t = raw.get("artifact") or "{registry}/{name}"
        if "{registry}" in artifact_t and not registry:
            key, line = where(*base, "artifact" if "artifact" in raw else "")
            raise ConfigError(
                file, key, "no registry: set `registry` in the file or the `registry` input", line
            )
        artifact = f("artifact", artifact_t)
        if not artifact.startswith("oci://"):
            key, line = where(*base, "artifact")
            raise ConfigError(file, key, f"artifact {artifact!r} must start with oci://", line)
        if artifact != artifact.lower():
            key, line = where(*base, "artifact")
            raise ConfigError(
                file, key, f"artifact {artifact!r}: OCI repository names must be lower case", line
            )
        repository = artifact.removeprefix("oci://").partition("/")[2]
        if not (2 <= len(repository) <= 255 and REPOSITORY_RE.fullmatch(repository)):
            # Caught here, not as a 404 halfway through a push (the registry refuses such names).
            key, line = where(*base, "artifact")
            raise ConfigError(
                file,
                key,
                f"artifact {artifact!r}: {repository!r} is not a valid OCI repository name (components of "
                "a-z and 0-9 joined by one of . _ __ -, separated by /)",
                line,
            )
        tags = tuple(f("tags", t, i) for i, t in enumerate(raw.get("tags") or DEFAULT_TAGS))
        for i, tag in enumerate(tags):
            _check_tag(tag, file, *where(*base, "tags", i))
        watch = tuple(
            _safe_relpath(f("watch", w, i), file, *where(*base, "watch", i))
            for i, w in enumerate(raw.get("watch", []))
        )
        return {
            "namespace": f("namespace", raw["namespace"]) if "namespace" in raw else "",
            "module": module,
            "version": f("version", raw["version"]) if "version" in raw else "",
            "artifact": artifact,
            "tags": tags,
            "watch": watch,
        }

    for index, raw in enumerate(data.get("instances", [])):
        base: tuple[str | int, ...] = ("instances", index)
        entry_key, entry_line = where(*base)
        if "name" in raw:
            values = {"name": raw["name"], "registry": registry}
            common = resolve_common(raw, values, base)
            files = paths(raw, "values", values, base)
            targets.append(
                Target(
                    id=raw["name"],
                    kind="instance",
                    name=raw["name"],
                    files=files,
                    key=entry_key,
                    line=entry_line,
                    **common,
                )
            )
            continue
        mkey, mline = where(*base, "match")
        pattern = compile_match(_safe_relpath(raw["match"], file, mkey, mline), file, mkey, mline)
        found = 0
        for path in repo_files or ():
            if not path.startswith(pattern.literal_prefix):
                continue
            m = pattern.regex.match(path)
            if not m:
                continue
            found += 1
            captured = m.groupdict()
            values = {**captured, "registry": registry}
            tid = (
                fill(raw["id"], values, file, *where(*base, "id"))
                if "id" in raw
                else "/".join(captured[w] for w in pattern.words)
            )
            common = resolve_common(raw, values, base)
            extra = paths(raw, "values", values, base)
            targets.append(
                Target(
                    id=tid,
                    kind="instance",
                    name=captured["name"],
                    files=(*extra, path),
                    key=f"{entry_key} ({path})",
                    line=entry_line,
                    **common,
                )
            )
        if not found and repo_files is not None:
            warnings.append(f"{file}:{mline}: {mkey}: pattern {raw['match']!r} matches no file")

    for index, raw in enumerate(data.get("bundles", [])):
        base = ("bundles", index)
        entry_key, entry_line = where(*base)
        values = {"name": raw["name"], "registry": registry}
        common = resolve_common(raw, values, base)
        files = paths(raw, "files", values, base)
        targets.append(
            Target(
                id=raw["name"],
                kind="bundle",
                name=raw["name"],
                files=files,
                key=entry_key,
                line=entry_line,
                **common,
            )
        )

    _check_unique(targets, file)
    return Config(
        path=file, registry=registry, source=source, targets=tuple(targets), warnings=tuple(warnings)
    )


def _check_unique(targets: Sequence[Target], file: str) -> None:
    ids: dict[str, Target] = {}
    pushes: dict[tuple[str, str], Target] = {}
    for t in targets:
        if t.id in ids:
            raise ConfigError(file, t.key, f"target id {t.id!r} is also used by {ids[t.id].key}", t.line)
        ids[t.id] = t
        where = (t.artifact, t.tags[0])
        if where in pushes:
            other = pushes[where]
            raise ConfigError(
                file,
                t.key,
                f"{t.artifact}:{t.tags[0]} is also the artifact and tag of {other.key} ({other.id})",
                t.line,
            )
        pushes[where] = t
