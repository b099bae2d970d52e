"""The configuration file: load, validate against the JSON Schema, expand into targets.

Loading is pure: it takes the file's text and the list of files in the repository at one commit,
so the planner can expand the configuration at the base and at the head commit alike. The YAML
with its lines is `yaml_lines`, the schema check `validate`, the path patterns `globs`; this
module expands entries into `Target`s and checks what the schema cannot (paths stay inside the
repository, placeholders are known, OCI names and tags are valid, no two targets collide).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from gitops_action.config.globs import PLACEHOLDER, compile_match, glob_regex
from gitops_action.config.model import Config, Target, flatten
from gitops_action.config.modules import checked_modules
from gitops_action.config.validate import inlined_schema, schema, validate
from gitops_action.config.yaml_lines import Lines, key_path, line_for, parse_yaml
from gitops_action.errors import ConfigError

__all__ = [  # what the planner and the tests use from here
    "Config",
    "ConfigError",
    "Target",
    "compile_match",
    "glob_regex",
    "inlined_schema",
    "key_path",
    "load",
    "schema",
    "validate",
]

DEFAULT_TAGS = ("latest",)
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
# the OCI distribution spec's name grammar
REPOSITORY_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")

Parts = tuple[str | int, ...]  # a key path: ("instances", 0, "values", 1)


def _safe_relpath(value: str, file: str, key: str, line: int | None) -> str:
    if value.startswith("/") or "\\" in value:
        raise ConfigError(
            file, key, f"{value!r} must be a path relative to the repository root", line
        )
    norm = posixpath.normpath(value)
    if norm == ".." or norm.startswith("../"):
        raise ConfigError(file, key, f"{value!r} leaves the repository", line)
    return "" if norm == "." else norm


def fill(
    template: str, values: dict[str, str], file: str, key: str, line: int | None
) -> str:
    def sub(m: re.Match[str]) -> str:
        word = m.group(1)
        if word not in values:
            known = ", ".join("{" + k + "}" for k in sorted(values))
            raise ConfigError(
                file, key, f"unknown placeholder {{{word}}} (known here: {known})", line
            )
        return values[word]

    return PLACEHOLDER.sub(sub, template)


def _check_tag(tag: str, file: str, key: str, line: int | None) -> None:
    if not TAG_RE.fullmatch(tag):
        raise ConfigError(
            file,
            key,
            f"{tag!r} is not a valid OCI tag (letters, digits, _ . -; not starting with . or -)",
            line,
        )


@dataclass(frozen=True)
class _Doc:
    """The configuration being expanded: what every message needs (file, key, line)."""

    file: str
    lines: Lines
    registry: str

    def where(self, *parts: str | int) -> tuple[str, int | None]:
        return key_path(parts), line_for(self.lines, parts)

    def fill(self, template: str, values: dict[str, str], *parts: str | int) -> str:
        return fill(template, values, self.file, *self.where(*parts))

    def relpath(self, value: str, *parts: str | int) -> str:
        return _safe_relpath(value, self.file, *self.where(*parts))

    def error(self, message: str, *parts: str | int) -> ConfigError:
        key, line = self.where(*parts)
        return ConfigError(self.file, key, message, line)


def load(
    text: str,
    *,
    file: str,
    repo_files: Sequence[str] | None,
    registry_override: str = "",
    default_source: str = "",
    check_modules: bool = False,
) -> Config:
    """Parse, validate and expand the configuration. `repo_files` lists the repository's files at
    the commit the configuration belongs to (needed to expand `match` patterns). `check_modules`:
    the configuration being built (not an older one), its local modules checked (config/modules.py)."""
    data, lines = parse_yaml(text, file)
    if data is None:
        raise ConfigError(
            file, "", "the file is empty (expected at least `version: 1`)", 1
        )
    validate(data, lines, file)
    doc = _Doc(
        file, lines, (registry_override or data.get("registry") or "").rstrip("/")
    )
    targets: list[Target] = []
    warnings: list[str] = []
    known = frozenset(repo_files) if check_modules and repo_files is not None else None
    for index, raw in enumerate(data.get("instances", [])):
        base: Parts = ("instances", index)
        if "name" in raw:
            found = [_target(doc, raw, base, {"name": raw["name"]})]
        else:
            found = _matched(doc, raw, base, repo_files)
            if not found and repo_files is not None:
                mkey, mline = doc.where(*base, "match")
                warnings.append(
                    f"{file}:{mline}: {mkey}: pattern {raw['match']!r} matches no file"
                )
        if known is not None:  # each local module a Timoni module
            found = checked_modules(
                found, raw.get("module", ""), file, *doc.where(*base, "module"), known
            )
        targets += found
    for index, raw in enumerate(data.get("bundles", [])):
        targets.append(
            _target(doc, raw, ("bundles", index), {"name": raw["name"]}, kind="bundle")
        )
    _check_unique(targets, file)
    return Config(
        path=file,
        registry=doc.registry,
        source=data.get("source") or default_source,
        targets=tuple(targets),
        warnings=tuple(warnings),
        flux=flatten(data.get("flux")),
    )


def _matched(
    doc: _Doc, raw: dict[str, Any], base: Parts, repo_files: Sequence[str] | None
) -> list[Target]:
    """One target per repository file the entry's `match` pattern matches."""
    pattern = compile_match(
        doc.relpath(raw["match"], *base, "match"), doc.file, *doc.where(*base, "match")
    )
    out = []
    for path in repo_files or ():
        if not path.startswith(pattern.literal_prefix):
            continue
        m = pattern.regex.match(path)
        if not m:
            continue
        captured = m.groupdict()
        try:
            out.append(_matched_target(doc, raw, base, pattern.words, captured, path))
        except ConfigError as exc:
            # The entry itself is broken when a plain file name breaks it too: stop the run.
            try:
                _matched_target(
                    doc, raw, base, pattern.words, dict.fromkeys(captured, "x"), path
                )
            except ConfigError:
                raise exc from None
            entry_key, entry_line = doc.where(*base)
            out.append(
                _unusable(
                    path, captured["name"], f"{entry_key} ({path})", entry_line, exc
                )
            )
    return out


def _matched_target(
    doc: _Doc,
    raw: dict[str, Any],
    base: Parts,
    words: Sequence[str],
    captured: dict[str, str],
    path: str,
) -> Target:
    tid = (
        doc.fill(raw["id"], {**captured, "registry": doc.registry}, *base, "id")
        if "id" in raw
        else "/".join(captured[w] for w in words)
    )
    return _target(doc, raw, base, captured, tid=tid, matched=path)


def _unusable(
    path: str, name: str, key: str, line: int | None, exc: ConfigError
) -> Target:
    """The target of a matched file that cannot be an instance (e.g. `Billing Notes.cue`: no valid
    artifact name): it fails with the configuration's message, its id is the file's path."""
    problem = f"{path} cannot be an instance of this `match`: {exc}"
    return Target(
        path, "instance", name, "", (), (path,), key=key, line=line, problem=problem
    )


def _target(
    doc: _Doc,
    raw: dict[str, Any],
    base: Parts,
    captured: dict[str, str],
    *,
    kind: Literal["instance", "bundle"] = "instance",
    tid: str | None = None,
    matched: str = "",
) -> Target:
    """The target of one entry (with `matched`: of one file its `match` pattern matched)."""
    values = {**captured, "registry": doc.registry}
    entry_key, entry_line = doc.where(*base)
    common = _common(doc, raw, values, base)
    files = _paths(doc, raw, "files" if kind == "bundle" else "values", values, base)
    return Target(
        id=raw["name"] if tid is None else tid,
        kind=kind,
        name=captured["name"],
        files=(*files, matched) if matched else files,
        key=f"{entry_key} ({matched})" if matched else entry_key,
        line=entry_line,
        **common,
    )


def _paths(
    doc: _Doc, raw: dict[str, Any], key: str, values: dict[str, str], base: Parts
) -> tuple[str, ...]:
    """The entry's list of repository paths under `key`, placeholders filled, kept inside."""
    out = []
    for i, template in enumerate(raw.get(key, [])):
        path = doc.relpath(doc.fill(template, values, *base, key, i), *base, key, i)
        # timoni reads `-f a,b` as two files: this one would never be read
        if "," in path:
            raise doc.error(
                f"{path!r}: timoni splits -f on commas; rename the file", *base, key, i
            )
        out.append(path)
    return tuple(out)


def _common(
    doc: _Doc, raw: dict[str, Any], values: dict[str, str], base: Parts
) -> dict[str, Any]:
    """What instances and bundles share: module, artifact, tags, watch, namespace, version."""
    module = doc.fill(raw["module"], values, *base, "module") if "module" in raw else ""
    if module and not module.startswith("oci://"):
        module = doc.relpath(module.removeprefix("file://"), *base, "module")
    artifact = _artifact(doc, raw, values, base)
    tags = tuple(
        doc.fill(t, values, *base, "tags", i)
        for i, t in enumerate(raw.get("tags") or DEFAULT_TAGS)
    )
    for i, tag in enumerate(tags):
        _check_tag(tag, doc.file, *doc.where(*base, "tags", i))
    watch = tuple(
        doc.relpath(doc.fill(w, values, *base, "watch", i), *base, "watch", i)
        for i, w in enumerate(raw.get("watch", []))
    )
    if "digest" in raw and not module.startswith("oci://"):
        raise doc.error(
            "`digest` pins a module from a registry: `module` must be oci://",
            *base,
            "digest",
        )
    flux = tuple(
        (k, doc.fill(v, values, *base, "flux") if isinstance(v, str) else v)
        for k, v in flatten(raw.get("flux"))
    )
    return {
        "namespace": doc.fill(raw["namespace"], values, *base, "namespace")
        if "namespace" in raw
        else "",
        "module": module,
        "version": doc.fill(raw["version"], values, *base, "version")
        if "version" in raw
        else "",
        "artifact": artifact,
        "tags": tags,
        "watch": watch,
        "digest": raw.get("digest", ""),
        "flux": flux,
    }


def _artifact(
    doc: _Doc, raw: dict[str, Any], values: dict[str, str], base: Parts
) -> str:
    """The entry's OCI repository, checked here rather than refused by the registry mid-push."""
    template = raw.get("artifact") or "{registry}/{name}"
    if "{registry}" in template and not doc.registry:
        raise doc.error(
            "no registry: set `registry` in the file or the `registry` input",
            *base,
            "artifact" if "artifact" in raw else "",
        )
    artifact = doc.fill(template, values, *base, "artifact")
    if not artifact.startswith("oci://"):
        raise doc.error(
            f"artifact {artifact!r} must start with oci://", *base, "artifact"
        )
    if artifact != artifact.lower():
        raise doc.error(
            f"artifact {artifact!r}: OCI repository names must be lower case",
            *base,
            "artifact",
        )
    repository = artifact.removeprefix("oci://").partition("/")[2]
    if not (2 <= len(repository) <= 255 and REPOSITORY_RE.fullmatch(repository)):
        raise doc.error(
            f"artifact {artifact!r}: {repository!r} is not a valid OCI repository name (components of "
            "a-z and 0-9 joined by one of . _ __ -, separated by /)",
            *base,
            "artifact",
        )
    return artifact


def _check_unique(targets: Sequence[Target], file: str) -> None:
    ids: dict[str, Target] = {}
    pushes: dict[tuple[str, str], Target] = {}
    for t in targets:
        if t.problem:
            continue
        if t.id in ids:
            raise ConfigError(
                file,
                t.key,
                f"target id {t.id!r} is also used by {ids[t.id].key}",
                t.line,
            )
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
