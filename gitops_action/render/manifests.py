"""Kubernetes manifest streams: parse into objects keyed by (kind, namespace, name) and diff them.

Field order and YAML formatting are not changes: objects are compared as data and shown in one
canonical form. Secret values never leave this module: only which keys changed.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml

try:
    _Loader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - PyYAML without libyaml
    _Loader = yaml.SafeLoader

Key = tuple[str, str, str]  # kind, namespace, name
SECRET_FIELDS = ("data", "stringData")
HIDDEN = "<hidden>"


class ManifestError(ValueError):
    pass


def parse(text: str) -> dict[Key, dict[str, Any]]:
    objects: dict[Key, dict[str, Any]] = {}
    try:
        docs = list(yaml.load_all(text, Loader=_Loader))
    except yaml.YAMLError as exc:
        raise ManifestError(f"rendered manifests are not valid YAML: {exc}") from exc
    for doc in docs:
        if doc is None:
            continue
        if not isinstance(doc, dict) or "kind" not in doc:
            raise ManifestError(
                "rendered manifests contain a document that is not a Kubernetes object"
            )
        meta = doc.get("metadata") or {}
        key = (
            str(doc["kind"]),
            str(meta.get("namespace") or ""),
            str(meta.get("name") or ""),
        )
        objects[key] = doc
    return objects


def label(key: Key) -> str:
    kind, ns, name = key
    return f"{kind} {ns}/{name}" if ns else f"{kind} {name}"


def _hide_secret(obj: dict[str, Any], other: dict[str, Any] | None) -> dict[str, Any]:
    """Replace every Secret value with a marker; a value that differs from `other` says so."""
    if obj.get("kind") != "Secret":
        return obj
    out = dict(obj)
    for fld in SECRET_FIELDS:
        values = obj.get(fld)
        if not isinstance(values, dict):
            continue
        before = (other or {}).get(fld) or {}
        out[fld] = {
            k: HIDDEN if other is None or before.get(k) == v else f"{HIDDEN} (changed)"
            for k, v in values.items()
        }
    return out


def canonical(obj: dict[str, Any]) -> str:
    # No folding at any width: PyYAML breaks a long value at a space, which would split a secret
    # with a space across two lines where redaction cannot match it.
    return yaml.safe_dump(
        obj,
        sort_keys=True,
        default_flow_style=False,
        allow_unicode=True,
        width=sys.maxsize,
    )


@dataclass(frozen=True)
class ObjectChange:
    key: Key
    change: str  # added, removed, changed
    # unified diff, Secret values hidden; an added or removed object is all + or - lines
    diff: str


@dataclass(frozen=True)
class StreamDiff:
    changes: tuple[ObjectChange, ...] = field(default=())
    unchanged: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    def counts(self) -> dict[str, int]:
        out = {"added": 0, "changed": 0, "removed": 0}
        for c in self.changes:
            out[c.change] += 1
        return out


def diff(old: dict[Key, dict[str, Any]], new: dict[Key, dict[str, Any]]) -> StreamDiff:
    changes: list[ObjectChange] = []
    unchanged = 0
    for key in _ordered(old, new):
        before, after = old.get(key), new.get(key)
        if before == after:
            unchanged += 1
            continue
        if before is None and after is not None:
            changes.append(
                ObjectChange(
                    key, "added", _unified(None, _hide_secret(after, None), key)
                )
            )
        elif after is None and before is not None:
            changes.append(
                ObjectChange(
                    key, "removed", _unified(_hide_secret(before, None), None, key)
                )
            )
        elif before is not None and after is not None:
            text = _unified(
                _hide_secret(before, None), _hide_secret(after, before), key
            )
            changes.append(ObjectChange(key, "changed", text))
    return StreamDiff(tuple(changes), unchanged)


def _unified(
    before: dict[str, Any] | None, after: dict[str, Any] | None, key: Key
) -> str:
    """A unified diff of the canonical forms. An added or removed object has no `---`/`+++` header
    (the object is named above it): only its hunk, every line `+` (or `-`)."""
    a = canonical(before).splitlines(keepends=True) if before is not None else []
    b = canonical(after).splitlines(keepends=True) if after is not None else []
    lines = list(
        difflib.unified_diff(
            a, b, fromfile=f"deployed/{label(key)}", tofile=f"rendered/{label(key)}"
        )
    )
    return "".join(lines if a and b else lines[2:])


def _ordered(*maps: dict[Key, Any]) -> Iterable[Key]:
    return sorted({k for m in maps for k in m})
