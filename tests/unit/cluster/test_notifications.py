"""cluster.notifications: per (tag, namespace) a `github` Provider and Alert (and `githubdispatch`
ones with dispatch), the repository they report to, deterministic YAML."""

from __future__ import annotations

import re

import pytest

from gitops_action.cluster import notifications as n
from gitops_action.cluster.flux_config import SyncConfig
from gitops_action.cluster.flux_config import generate as sync_configs
from gitops_action.config.model import Config, FluxSettings, Target, flatten
from gitops_action.errors import ConfigError

CONFIG = ".timoni-flux.yaml"
URL = "https://github.com/org/repo"


def target(id: str, tag: str, namespace: str = "") -> Target:
    flux = flatten({"namespace": namespace}) if namespace else ()
    return Target(id, "instance", id, f"oci://r.io/{id}", (tag,), (), flux=flux)


def config(flux: FluxSettings = (), source: str = "") -> Config:
    return Config(CONFIG, "oci://r.io", source, (), flux=flux)


def notify_config(**block: object) -> Config:
    return config(flatten({"notification": block}))


def test_settings() -> None:
    assert not n.settings(config()).on
    notify = n.settings(notify_config(secretRef="gh", address=URL, dispatch=True))
    assert notify == n.Notify("gh", URL, True) and notify.on
    # only a YAML true turns dispatch on
    assert n.settings(notify_config(secretRef="gh", dispatch="true")).dispatch is False
    with pytest.raises(ConfigError) as err:
        n.settings(notify_config(secretRef="GH_Token"))
    assert err.value.key == "flux.notification.secretRef"


@pytest.mark.parametrize(
    ("address", "source", "github", "remote", "url"),
    [
        (f"{URL}.git", "https://x.io/a/b", "https://y.io/c/d", "", URL),
        ("", "https://ghe.example.com/a/b", URL, "", "https://ghe.example.com/a/b"),
        ("not a url", "", URL, "", URL),
        ("", "", "", f"{URL}.git", URL),
        ("", "", "", "git@github.com:org/repo.git", URL),
        ("", "", "", "ssh://git@github.com/org/repo.git", URL),
    ],
)
def test_repository_url(
    address: str, source: str, github: str, remote: str, url: str
) -> None:
    notify = n.Notify("gh", address)
    assert n.repository_url(notify, config(source=source), github, remote) == url


@pytest.mark.parametrize(
    "remote", ["", "https://user:token@github.com/org/repo.git", "/srv/git/repo"]
)
def test_unknown_repository(remote: str) -> None:
    # a remote holding a credential is never copied into the cluster's objects
    with pytest.raises(ConfigError) as err:
        n.repository_url(n.Notify("gh"), config(), "", remote)
    assert err.value.key == "flux.notification.address"


def test_slug() -> None:
    assert n.slug("Release/1.0_RC") == "release-1-0-rc"
    assert n.slug("staging") == "staging"
    assert n.slug("___") == "x"


def syncs(*targets: Target) -> list[SyncConfig]:
    return sync_configs(config(), targets)


def test_off_without_a_secret() -> None:
    assert n.generate(config(), syncs(target("web", "staging")), n.Notify(), URL) == []


def test_one_environment_per_tag_and_namespace() -> None:
    s = syncs(
        target("web", "staging"),
        target("api", "production"),
        target("db", "staging"),
        target("ops", "staging", namespace="ops-system"),
    )
    envs = n.generate(config(), s, n.Notify("gh"), URL)
    assert [(e.tag, e.namespace, e.kustomizations) for e in envs] == [
        ("staging", "flux-system", ("web", "db")),
        ("production", "flux-system", ("api",)),
        ("staging", "ops-system", ("ops",)),
    ]
    assert envs[0].file_name == "_notifications.flux-system.staging.yaml"
    assert [o["kind"] for o in envs[0].objects] == ["Provider", "Alert"]


def test_dispatch_adds_a_githubdispatch_pair() -> None:
    [env] = n.generate(
        config(), syncs(target("web", "qa")), n.Notify("gh", dispatch=True), URL
    )
    assert [(o["kind"], o["metadata"]["name"]) for o in env.objects] == [
        ("Provider", "github-status-qa"),
        ("Alert", "github-status-qa"),
        ("Provider", "github-dispatch-qa"),
        ("Alert", "github-dispatch-qa"),
    ]
    assert env.objects[2]["spec"]["type"] == "githubdispatch"


def test_tags_with_the_same_slug_collide_in_one_namespace() -> None:
    s = syncs(target("web", "v1.0"), target("api", "v1-0"))
    with pytest.raises(ConfigError, match=re.escape("'v1.0' and 'v1-0'")):
        n.generate(config(), s, n.Notify("gh"), URL)
    # in different namespaces they do not
    s = syncs(target("web", "v1.0"), target("api", "v1-0", namespace="other"))
    assert len(n.generate(config(), s, n.Notify("gh"), URL)) == 2


EXPECTED = """\
---
# Flux notifications of environment staging (.timoni-flux.yaml): commit statuses for web, db.
# Written by timoni-flux-push flux-config: change the configuration and generate it again.
apiVersion: notification.toolkit.fluxcd.io/v1beta3
kind: Provider
metadata:
  name: github-status-staging
  namespace: flux-system
spec:
  type: github
  address: https://github.com/org/repo
  secretRef:
    name: gh
---
apiVersion: notification.toolkit.fluxcd.io/v1beta3
kind: Alert
metadata:
  name: github-status-staging
  namespace: flux-system
spec:
  providerRef:
    name: github-status-staging
  eventSeverity: info
  eventSources:
  - kind: Kustomization
    name: web
  - kind: Kustomization
    name: db
"""


def test_yaml_is_deterministic() -> None:
    s = syncs(target("web", "staging"), target("db", "staging"))
    envs = n.generate(config(), s, n.Notify("gh"), URL)
    assert n.to_yaml(envs, CONFIG) == EXPECTED
    dispatch = n.generate(config(), s, n.Notify("gh", dispatch=True), URL)
    assert "commit statuses and repository_dispatch events for web, db." in n.to_yaml(
        dispatch, CONFIG
    )


def test_dispatch_objects_default_secret() -> None:
    text = n.dispatch_objects({("qa", "flux-system"): ["web"]}, n.Notify(), URL)
    assert text.count("kind: Provider") == 1 and text.count("kind: Alert") == 1
    assert "name: github-dispatch-qa" in text and "type: githubdispatch" in text
    assert "secretRef:\n    name: github-token\n" in text
