"""manifests.py directly: parsing a stream into keyed objects, the canonical diff, Secret values."""

from __future__ import annotations

import pytest

from gitops_action.render import manifests
from gitops_action.render.manifests import (
    HIDDEN,
    ManifestError,
    ObjectChange,
    StreamDiff,
)

STREAM = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: app, namespace: shop}
data: {mode: fast}
---
# a comment-only document is nothing
---
apiVersion: v1
kind: Namespace
metadata:
  name: shop
"""


def test_parse_keys_by_kind_namespace_and_name() -> None:
    objects = manifests.parse(STREAM)
    assert list(objects) == [("ConfigMap", "shop", "app"), ("Namespace", "", "shop")]
    assert objects[("ConfigMap", "shop", "app")]["data"] == {"mode": "fast"}
    assert manifests.parse("") == {}


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("kind: [unclosed", "not valid YAML"),
        ("- a\n- b\n", "not a Kubernetes object"),
        ("metadata: {name: x}\n", "not a Kubernetes object"),
    ],
)
def test_parse_refuses_what_is_not_a_manifest_stream(text: str, why: str) -> None:
    with pytest.raises(ManifestError, match=why):
        manifests.parse(text)


def test_label_leaves_out_an_empty_namespace() -> None:
    assert manifests.label(("Deployment", "shop", "app")) == "Deployment shop/app"
    assert manifests.label(("Namespace", "", "shop")) == "Namespace shop"


def test_field_order_and_formatting_are_not_changes() -> None:
    old = manifests.parse(
        "kind: ConfigMap\nmetadata: {name: a}\ndata: {x: '1', y: '2'}\n"
    )
    new = manifests.parse(
        "data:\n  y: '2'\n  x: '1'\nmetadata:\n  name: a\nkind: ConfigMap\n"
    )
    assert manifests.diff(old, new) == StreamDiff((), unchanged=1)
    assert not manifests.diff(old, new).changed


def test_added_removed_and_changed_objects_in_key_order() -> None:
    old = manifests.parse(
        "kind: A\nmetadata: {name: gone}\n---\nkind: B\nmetadata: {name: b}\nspec: 1\n"
    )
    new = manifests.parse(
        "kind: B\nmetadata: {name: b}\nspec: 2\n---\nkind: C\nmetadata: {name: new}\n"
    )
    d = manifests.diff(old, new)
    assert [(c.key, c.change) for c in d.changes] == [
        (("A", "", "gone"), "removed"),
        (("B", "", "b"), "changed"),
        (("C", "", "new"), "added"),
    ]
    assert d.counts() == {"added": 1, "changed": 1, "removed": 1}
    assert d.unchanged == 0
    assert d.changes[0].diff == "@@ -1,3 +0,0 @@\n-kind: A\n-metadata:\n-  name: gone\n"
    assert d.changes[2].diff == "@@ -0,0 +1,3 @@\n+kind: C\n+metadata:\n+  name: new\n"
    assert d.changes[1].diff.splitlines()[:2] == [
        "--- deployed/B b",
        "+++ rendered/B b",
    ]
    assert (
        "-spec: 1" in d.changes[1].diff.splitlines()
        and "+spec: 2" in d.changes[1].diff.splitlines()
    )


def test_secret_values_never_leave_the_module() -> None:
    secret = (
        "kind: Secret\nmetadata: {{name: s, namespace: n}}\n"
        "data: {{user: {u}, pass: {p}}}\nstringData: {{k: {k}}}\n"
    )
    old = manifests.parse(secret.format(u="YWRtaW4=", p="b2xkLXBhc3M=", k="plain-old"))
    new = manifests.parse(secret.format(u="YWRtaW4=", p="bmV3LXBhc3M=", k="plain-old"))
    (change,) = manifests.diff(old, new).changes
    assert change == ObjectChange(("Secret", "n", "s"), "changed", change.diff)
    for value in ("YWRtaW4=", "b2xkLXBhc3M=", "bmV3LXBhc3M=", "plain-old"):
        assert value not in change.diff
    assert f"+  pass: {HIDDEN} (changed)" in change.diff.splitlines()
    # the same value: hidden, not said to change
    assert f"   user: {HIDDEN}" in change.diff.splitlines()
    (added,) = manifests.diff({}, new).changes
    assert "bmV3LXBhc3M=" not in added.diff and f"pass: {HIDDEN}\n" in added.diff


def test_only_secrets_are_hidden() -> None:
    cm = manifests.parse(
        "kind: ConfigMap\nmetadata: {name: c}\ndata: {password: shown-in-a-configmap}\n"
    )
    (added,) = manifests.diff({}, cm).changes
    assert "shown-in-a-configmap" in added.diff
