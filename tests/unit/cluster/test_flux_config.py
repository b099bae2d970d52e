"""cluster.flux_config: each target's OCIRepository and Kustomization, settings merged in the
documented order, names checked, and byte-identical YAML for the same configuration."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from gitops_action.cluster.flux_config import (
    generate,
    objects_for,
    settings_for,
    to_yaml,
    write_files,
)
from gitops_action.config.model import Config, FluxSettings, Target, flatten
from gitops_action.errors import ConfigError

CONFIG = ".timoni-flux.yaml"


def target(
    id: str = "web/staging",
    *,
    kind: str = "instance",
    namespace: str = "apps",
    tags: tuple[str, ...] = ("staging", "stable"),
    flux: FluxSettings = (),
    line: int = 4,
) -> Target:
    return Target(
        id,
        "bundle" if kind == "bundle" else "instance",
        id.rsplit("/", 1)[-1],
        f"oci://r.example.com/{id}",
        tags,
        ("values.cue",),
        namespace=namespace,
        flux=flux,
        key=f"instances[{line}]",
        line=line,
    )


def config(*targets: Target, flux: FluxSettings = ()) -> Config:
    return Config(CONFIG, "oci://r.example.com", "", targets, flux=flux)


def test_defaults_of_an_instance() -> None:
    s = settings_for(target(), ())
    assert s["name"] == "web-staging"  # the id, / as -
    assert s["namespace"] == "flux-system"
    assert s["source.tag"] == "staging"  # the first tag
    assert s["kustomization.targetNamespace"] == "apps"
    assert s["kustomization.prune"] is True and s["source.insecure"] is False


def test_a_bundle_gets_no_target_namespace() -> None:
    s = settings_for(target("platform", kind="bundle"), ())
    assert "kustomization.targetNamespace" not in s


def test_settings_precedence() -> None:
    defaults = flatten({"namespace": "ops", "source": {"interval": "5m", "tag": "d"}})
    own = flatten({"source": {"interval": "10m"}, "name": "own-name"})
    s = settings_for(target(flux=own), defaults)
    # built-in < file defaults < the target's own
    assert (s["namespace"], s["source.interval"], s["name"]) == (
        "ops",
        "10m",
        "own-name",
    )
    assert s["source.tag"] == "d"
    # the command line's tag over all of them
    assert settings_for(target(flux=own), defaults, "cli")["source.tag"] == "cli"


def test_objects_of_one_target() -> None:
    t = target()
    source, sync = objects_for(t, settings_for(t, ()))
    meta = {"name": "web-staging", "namespace": "flux-system"}
    assert source == {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "OCIRepository",
        "metadata": meta,
        "spec": {
            "interval": "1m",
            "url": "oci://r.example.com/web/staging",
            "ref": {"tag": "staging"},
            "provider": "generic",
        },
    }
    assert sync == {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": meta,
        "spec": {
            "interval": "60m",
            "retryInterval": "5m",
            "timeout": "3m",
            "sourceRef": {"kind": "OCIRepository", "name": "web-staging"},
            "path": "./",
            "prune": True,
            "wait": True,
            "targetNamespace": "apps",
        },
    }


def test_optional_fields() -> None:
    t = target(
        flux=flatten(
            {
                "source": {"secretRef": "pull", "insecure": True},
                "kustomization": {"serviceAccountName": "deployer"},
            }
        )
    )
    verify = {"provider": "cosign", "secretRef": {"name": "keys"}}
    source, sync = objects_for(t, settings_for(t, ()), verify=verify)
    assert source["spec"]["secretRef"] == {"name": "pull"}
    assert source["spec"]["insecure"] is True
    assert source["spec"]["verify"] == verify
    assert sync["spec"]["serviceAccountName"] == "deployer"


def test_generate_in_configuration_order() -> None:
    a, b = target("b/one"), target("a/two", line=9)
    syncs = generate(config(a, b), [a, b])
    assert [(s.name, s.file_name) for s in syncs] == [
        ("b-one", "b-one.yaml"),
        ("a-two", "a-two.yaml"),
    ]


def test_two_targets_with_one_name_collide() -> None:
    # "a/b" and "a-b" both become a-b
    first, second = target("a/b"), target("a-b", line=12)
    with pytest.raises(
        ConfigError, match="a-b and a/b would both be named 'a-b'"
    ) as err:
        generate(config(first, second), [first, second])
    assert (err.value.key, err.value.line) == ("instances[12]", 12)


@pytest.mark.parametrize(
    ("flux", "key"),
    [
        (flatten({"name": "Web_App"}), "instances[4].flux.name"),
        (flatten({"namespace": "-ops"}), "instances[4].flux.namespace"),
        (
            flatten({"source": {"secretRef": "a" * 254}}),
            "instances[4].flux.source.secretRef",
        ),
        (flatten({"source": {"tag": "no tag"}}), "instances[4].flux.source.tag"),
        (flatten({"source": {"tag": ".dot"}}), "instances[4].flux.source.tag"),
    ],
)
def test_invalid_names(flux: FluxSettings, key: str) -> None:
    t = target(flux=flux)
    with pytest.raises(ConfigError) as err:
        generate(config(t), [t])
    assert err.value.key == key


def test_an_uppercase_id_asks_for_flux_name() -> None:
    t = target("Web")
    with pytest.raises(ConfigError, match=re.escape("set `flux.name`")):
        generate(config(t), [t])


EXPECTED = """\
---
# Flux sync configuration of instance web/staging (.timoni-flux.yaml).
# Written by timoni-flux-push flux-config: change the configuration and generate it again.
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata:
  name: web-staging
  namespace: flux-system
spec:
  interval: 1m
  url: oci://r.example.com/web/staging
  ref:
    tag: staging
  provider: generic
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: web-staging
  namespace: flux-system
spec:
  interval: 60m
  retryInterval: 5m
  timeout: 3m
  sourceRef:
    kind: OCIRepository
    name: web-staging
  path: ./
  prune: true
  wait: true
  targetNamespace: apps
"""


def test_yaml_is_deterministic() -> None:
    t = target()
    assert to_yaml(generate(config(t), [t]), CONFIG) == EXPECTED
    two = [t, target("api/staging")]
    assert to_yaml(generate(config(*two), two), CONFIG) == to_yaml(
        generate(config(*two), two), CONFIG
    )
    assert to_yaml(generate(config(*two), two), CONFIG).count("\n---\n# Flux sync") == 1


def test_write_files_once_and_never_through_a_link(tmp_path: Path) -> None:
    t = target()
    syncs = generate(config(t), [t])
    out = tmp_path / "flux"
    [path] = write_files(syncs, CONFIG, out)
    assert path == out / "web-staging.yaml" and path.read_text() == EXPECTED
    os.utime(path, (1_000_000, 1_000_000))
    write_files(syncs, CONFIG, out)
    assert path.stat().st_mtime == 1_000_000  # the same bytes: not written again
    outside = tmp_path / "outside.yaml"
    outside.write_text("keep")
    path.unlink()
    path.symlink_to(outside)
    write_files(syncs, CONFIG, out)
    assert outside.read_text() == "keep"
    assert not path.is_symlink() and path.read_text() == EXPECTED
