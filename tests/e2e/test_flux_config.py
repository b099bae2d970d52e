"""flux-config: the OCIRepository and Kustomization of every target, and the notification Provider
and Alert of every environment, checked against the real Flux CRDs (source-controller and
kustomize-controller v1.9.4, notification-controller v1.9.3: the versions flux v2.9.4 pins; fetched
by tools/test-material.sh into .tools/crds/)."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from conftest import ROOT, run_cli
from support.action import run_action
from support.repos import GitRepo

from gitops_action.cluster import flux_config, notifications
from gitops_action.config import targets as cfg

CRDS = ROOT / ".tools" / "crds"
CRD_FILES = {
    "OCIRepository": "source.toolkit.fluxcd.io_ocirepositories.yaml",
    "Kustomization": "kustomize.toolkit.fluxcd.io_kustomizations.yaml",
    "Provider": "notification.toolkit.fluxcd.io_providers.yaml",
    "Alert": "notification.toolkit.fluxcd.io_alerts.yaml",
}
# The one version each kind's CRD serves in Flux 2.9 (notification's Provider and Alert: v1beta3).
SERVED = {
    "OCIRepository": "v1",
    "Kustomization": "v1",
    "Provider": "v1beta3",
    "Alert": "v1beta3",
}
ENVIRONMENTS = ("staging", "production")  # the tags the example's Kustomizations follow
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"


def _closed(schema: Any) -> Any:
    """The API server drops unknown fields, jsonschema lets them pass: close every object schema
    that does not preserve unknown fields, so a misspelt field fails here."""
    if isinstance(schema, dict):
        out = {k: _closed(v) for k, v in schema.items()}
        preserves = out.get("x-kubernetes-preserve-unknown-fields")
        if "properties" in out and "additionalProperties" not in out and not preserves:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_closed(x) for x in schema]
    return schema


@cache
def crd(kind: str) -> tuple[str, dict[str, Any]]:
    """(apiVersion served, the openAPIV3Schema) of the kind's CRD."""
    path = CRDS / CRD_FILES[kind]
    if not path.is_file():
        pytest.fail(f"{path} is missing: run tools/test-material.sh", pytrace=False)
    doc = yaml.safe_load(path.read_text())
    assert doc["spec"]["names"]["kind"] == kind
    served = [v for v in doc["spec"]["versions"] if v.get("served")]
    assert [v["name"] for v in served] == [SERVED[kind]], (
        f"Flux 2.9 serves only {SERVED[kind]}"
    )
    schema = served[0]["schema"]["openAPIV3Schema"]
    # metadata is only `type: object` in a CRD: hold the two fields we write to the API's rules.
    schema = copy.deepcopy(schema)
    schema["properties"]["metadata"] = {
        "type": "object",
        "required": ["name", "namespace"],
        "properties": {
            "name": {"type": "string", "maxLength": 253, "pattern": DNS_SUBDOMAIN},
            "namespace": {
                "type": "string",
                "maxLength": 63,
                "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
            },
        },
    }
    return f"{doc['spec']['group']}/{SERVED[kind]}", _closed(schema)


def _defaulted(schema: dict[str, Any], value: Any) -> Any:
    """Fill the schema's defaults first, as the API server does before validating (e.g. the
    required `verify.provider` defaults to cosign)."""
    if not isinstance(value, dict):
        return value
    out = dict(value)
    for name, sub in schema.get("properties", {}).items():
        if name not in out and "default" in sub:
            out[name] = sub["default"]
        if name in out:
            out[name] = _defaulted(sub, out[name])
    return out


def crd_errors(obj: dict[str, Any]) -> list[str]:
    api_version, schema = crd(obj["kind"])
    errors = [f"apiVersion {obj['apiVersion']} is not the served {api_version}"]
    errors = errors if obj["apiVersion"] != api_version else []
    validator = jsonschema.Draft7Validator(schema)
    errors += [
        f"{list(e.path)}: {e.message}"
        for e in validator.iter_errors(_defaulted(schema, obj))
    ]
    return errors


def objects(stream: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(stream) if d is not None]


def plain_config(repo: GitRepo) -> str:
    """The example's configuration without its `flux:` block, for tests that write their own."""
    return without_flux_block((repo.path / ".timoni-flux.yaml").read_text())


def without_flux_block(text: str) -> str:
    """The configuration without the example's `flux:` block (its comment up to `instances:`)."""
    return text[: text.index("# The cluster side")] + text[text.index("instances:\n") :]


def example_targets(repo: GitRepo) -> list[cfg.Target]:
    files = repo.git("ls-files").splitlines()
    text = (repo.path / ".timoni-flux.yaml").read_text()
    return list(cfg.load(text, file=".timoni-flux.yaml", repo_files=files).targets)


def test_example_output_validates_against_both_crds(example_repo: GitRepo) -> None:
    out = run_cli(example_repo, "flux-config")
    assert out.returncode == 0, out.stderr
    docs = objects(out.stdout)
    targets = example_targets(example_repo)
    # Two objects per target, then a Provider and an Alert of each type per environment.
    assert len(targets) == 5 and len(docs) == 2 * len(targets) + 4 * len(ENVIRONMENTS)
    for obj in docs:
        assert crd_errors(obj) == [], (obj, crd_errors(obj))
    docs = docs[: 2 * len(targets)]
    for t, (source, sync) in zip(
        targets, zip(docs[::2], docs[1::2], strict=True), strict=True
    ):
        assert (source["kind"], sync["kind"]) == ("OCIRepository", "Kustomization")
        name = t.id.replace("/", "-")
        assert (
            source["metadata"]
            == sync["metadata"]
            == {"name": name, "namespace": "flux-system"}
        )
        assert source["spec"]["url"] == t.artifact and source["spec"]["ref"] == {
            "tag": t.tags[0]
        }
        assert sync["spec"]["sourceRef"] == {"kind": "OCIRepository", "name": name}
        # The guide's (flux-oci-sync's) defaults.
        assert source["spec"]["interval"] == "1m"
        spec = sync["spec"]
        assert (spec["interval"], spec["retryInterval"], spec["timeout"]) == (
            "60m",
            "5m",
            "3m",
        )
        assert (spec["path"], spec["prune"], spec["wait"]) == ("./", True, True)
        assert spec.get("targetNamespace") == (
            t.namespace if t.kind == "instance" else None
        )


def test_the_crd_check_catches_bad_objects() -> None:
    """The schemas are strict enough to fail: a wrong type, a missing required field, a misspelt one."""
    good = flux_config.objects_for(
        cfg.Target("a", "instance", "a", "oci://r.example/a", ("staging",), ()),
        flux_config.settings_for(
            cfg.Target("a", "instance", "a", "oci://r.example/a", ("staging",), ()), ()
        ),
    )
    assert [crd_errors(o) for o in good] == [[], []]
    source, sync = copy.deepcopy(good[0]), copy.deepcopy(good[1])
    sync["spec"]["prune"] = "yes"
    assert any("'yes' is not of type 'boolean'" in e for e in crd_errors(sync))
    del sync["spec"]["sourceRef"]
    assert any("'sourceRef' is a required property" in e for e in crd_errors(sync))
    source["spec"]["intervall"] = "1m"
    assert any("intervall" in e for e in crd_errors(source))
    source = copy.deepcopy(good[0])
    source["spec"]["url"] = "https://r.example/a"
    assert crd_errors(source), "url must be oci://"


def test_each_environment_reports_back_to_the_repository(example_repo: GitRepo) -> None:
    """Per tag Flux follows: commit statuses (github) and dispatch events (githubdispatch), each a
    Provider with the repository's URL and the named Secret, and an Alert on exactly the
    Kustomizations that follow that tag."""
    docs = objects(run_cli(example_repo, "flux-config").stdout)
    follows: dict[str, list[str]] = {}
    for o in docs:
        if o["kind"] == "OCIRepository":
            follows.setdefault(o["spec"]["ref"]["tag"], []).append(
                o["metadata"]["name"]
            )
    assert sorted(follows) == sorted(ENVIRONMENTS)
    by_name = {(o["kind"], o["metadata"]["name"]): o for o in docs}
    for env, names in follows.items():
        for prefix, kind in (
            ("github-status", "github"),
            ("github-dispatch", "githubdispatch"),
        ):
            provider, alert = (
                by_name[("Provider", f"{prefix}-{env}")],
                by_name[("Alert", f"{prefix}-{env}")],
            )
            assert provider["spec"] == {
                "type": kind,
                "address": "https://github.com/octo-org/gitops",
                "secretRef": {"name": "github-token"},
            }
            assert alert["spec"]["providerRef"] == {"name": f"{prefix}-{env}"}
            # the Ready event too, not errors only
            assert alert["spec"]["eventSeverity"] == "info"
            assert alert["spec"]["eventSources"] == [
                {"kind": "Kustomization", "name": n} for n in names
            ]
            assert (
                provider["metadata"]["namespace"]
                == alert["metadata"]["namespace"]
                == "flux-system"
            )
            assert crd_errors(provider) == crd_errors(alert) == []


def _edited(repo: GitRepo, old: str, new: str) -> list[dict[str, Any]]:
    path = repo.path / ".timoni-flux.yaml"
    text = path.read_text()
    assert text.count(old) == 1
    path.write_text(text.replace(old, new))
    repo.commit_all(f"{old.strip()} -> {new.strip()}")
    out = run_cli(repo, "flux-config")
    assert out.returncode == 0, out.stderr
    return objects(out.stdout)


def test_one_notification_setting_changes_every_object_it_shapes(
    example_repo: GitRepo,
) -> None:
    before = objects(run_cli(example_repo, "flux-config").stdout)
    after = _edited(
        example_repo, "    secretRef: github-token\n", "    secretRef: flux-github\n"
    )
    changed = [
        (o["kind"], o["metadata"]["name"])
        for o, n in zip(before, after, strict=True)
        if o != n
    ]
    # Every Provider (2 per environment) and nothing else.
    assert sorted(changed) == sorted(
        ("Provider", f"{p}-{e}")
        for p in ("github-status", "github-dispatch")
        for e in ENVIRONMENTS
    )
    assert all(
        n["spec"]["secretRef"] == {"name": "flux-github"}
        for n in after
        if n["kind"] == "Provider"
    )
    assert all(crd_errors(o) == [] for o in after)
    moved = _edited(
        example_repo, "  notification:\n", "  namespace: gitops-sync\n  notification:\n"
    )
    assert len(moved) == len(after) and all(
        m["metadata"]["namespace"] == "gitops-sync" != a["metadata"]["namespace"]
        for m, a in zip(moved, after, strict=True)
    )
    fewer = _edited(example_repo, "    dispatch: true\n", "    dispatch: false\n")
    assert [
        o for o in moved if not o["metadata"]["name"].startswith("github-dispatch-")
    ] == fewer


def test_the_repository_url_defaults_to_the_run_and_else_is_asked_for(
    example_repo: GitRepo,
) -> None:
    path = example_repo.path / ".timoni-flux.yaml"
    path.write_text(
        path.read_text().replace(
            "    address: https://github.com/octo-org/gitops\n", ""
        )
    )
    example_repo.commit_all("no address")
    github = {
        "GITHUB_REPOSITORY": "acme/fleet",
        "GITHUB_SERVER_URL": "https://ghe.example.com",
    }
    for env, url in (
        (github, "https://ghe.example.com/acme/fleet"),
        ({}, None),
    ):
        out = run_cli(example_repo, "flux-config", env=env)
        if url is None:
            assert out.returncode == 2 and "flux.notification.address" in out.stderr, (
                out.stderr
            )
            continue
        assert out.returncode == 0, out.stderr
        providers = [o for o in objects(out.stdout) if o["kind"] == "Provider"]
        assert providers and {p["spec"]["address"] for p in providers} == {url}
    example_repo.git("remote", "add", "origin", "git@github.com:acme/fleet.git")
    out = run_cli(example_repo, "flux-config")
    assert out.returncode == 0, out.stderr
    assert {
        o["spec"]["address"] for o in objects(out.stdout) if o["kind"] == "Provider"
    } == {"https://github.com/acme/fleet"}


def test_the_crd_check_catches_bad_notification_objects() -> None:
    provider, alert = notifications.pair(
        "github-status-staging",
        "flux-system",
        "github",
        "https://github.com/o/r",
        "tok",
        ["a", "b"],
    )
    assert crd_errors(provider) == crd_errors(alert) == []
    bad = copy.deepcopy(provider)
    bad["spec"]["type"] = "githb"
    assert any("githb" in e for e in crd_errors(bad))
    bad = copy.deepcopy(alert)
    del bad["spec"]["providerRef"]
    assert any("'providerRef' is a required property" in e for e in crd_errors(bad))
    bad = copy.deepcopy(alert)
    bad["spec"]["eventSources"][0]["kind"] = "Deployment"
    assert crd_errors(bad)
    bad = copy.deepcopy(alert)
    bad["apiVersion"] = "notification.toolkit.fluxcd.io/v1"
    assert crd_errors(bad)


FLUX_SECTION = """
flux:
  namespace: gitops-sync
  source:
    interval: 5m
    provider: aws
    secretRef: registry-login
  kustomization:
    interval: 30m
    retryInterval: 2m
    timeout: 10m
    prune: false
    wait: false
    serviceAccountName: deployer
  notification:
    secretRef: flux-github
    address: https://github.com/octo-org/gitops
    dispatch: true
"""


def test_a_changed_flux_default_changes_every_object(example_repo: GitRepo) -> None:
    before = objects(run_cli(example_repo, "flux-config").stdout)
    path = example_repo.path / ".timoni-flux.yaml"
    path.write_text(plain_config(example_repo) + FLUX_SECTION)
    example_repo.commit_all("flux defaults")
    out = run_cli(example_repo, "flux-config")
    assert out.returncode == 0, out.stderr
    after = objects(out.stdout)
    assert len(after) == len(before) == 18
    for old, new in zip(before, after, strict=True):
        assert new != old
        assert (
            new["metadata"]["namespace"]
            == "gitops-sync"
            != old["metadata"]["namespace"]
        )
        assert crd_errors(new) == []
        if new["kind"] == "OCIRepository":
            assert new["spec"]["interval"] == "5m" and new["spec"]["provider"] == "aws"
            assert new["spec"]["secretRef"] == {"name": "registry-login"}
        elif new["kind"] == "Provider":
            assert new["spec"]["secretRef"] == {"name": "flux-github"}
        elif new["kind"] == "Alert":
            assert {e["kind"] for e in new["spec"]["eventSources"]} == {"Kustomization"}
        else:
            spec = new["spec"]
            assert (spec["interval"], spec["retryInterval"], spec["timeout"]) == (
                "30m",
                "2m",
                "10m",
            )
            assert (spec["prune"], spec["wait"], spec["serviceAccountName"]) == (
                False,
                False,
                "deployer",
            )


def test_a_target_overrides_the_defaults_with_placeholders(
    example_repo: GitRepo,
) -> None:
    path = example_repo.path / ".timoni-flux.yaml"
    text = path.read_text().replace(
        '    tags: ["{env}"]\n',
        '    tags: ["{env}"]\n    flux:\n      name: "billing-{env}"\n'
        "      kustomization: {interval: 7m, targetNamespace: billing}\n",
    )
    path.write_text(without_flux_block(text) + FLUX_SECTION)
    example_repo.commit_all("per-target flux")
    docs = {
        (o["kind"], o["metadata"]["name"]): o
        for o in objects(run_cli(example_repo, "flux-config").stdout)
    }
    sync = docs[("Kustomization", "billing-staging")]["spec"]
    assert (sync["interval"], sync["targetNamespace"], sync["retryInterval"]) == (
        "7m",
        "billing",
        "2m",
    )
    assert docs[("OCIRepository", "billing-production")]["spec"]["interval"] == "5m"
    assert docs[("Kustomization", "webapp-staging")]["spec"]["interval"] == "30m"
    assert all(crd_errors(o) == [] for o in docs.values())


def test_output_is_byte_identical_on_a_second_run(
    example_repo: GitRepo, tmp_path: Path
) -> None:
    first, second = (
        run_cli(example_repo, "flux-config"),
        run_cli(example_repo, "flux-config"),
    )
    assert first.returncode == 0 and first.stdout == second.stdout and first.stdout
    out = tmp_path / "clusters" / "flux"
    run = run_cli(example_repo, "flux-config", "--output-dir", str(out))
    assert run.returncode == 0, run.stderr
    files = {
        p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(out.iterdir())
    }
    names = [f"{t.id.replace('/', '-')}.yaml" for t in example_targets(example_repo)]
    names += [f"_notifications.flux-system.{e}.yaml" for e in ENVIRONMENTS]
    assert sorted(files) == sorted(names)
    # One file per target, then per environment, holds exactly its part of the stream.
    assert b"".join(files[n][0] for n in names) == first.stdout.encode()
    again = run_cli(example_repo, "flux-config", "--output-dir", str(out))
    assert again.returncode == 0
    assert {
        p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(out.iterdir())
    } == files


def test_verify_block_is_emitted_when_given(example_repo: GitRepo) -> None:
    text = (example_repo.path / ".timoni-flux.yaml").read_text()
    conf = cfg.load(
        text,
        file=".timoni-flux.yaml",
        repo_files=example_repo.git("ls-files").splitlines(),
    )
    verify = {
        "provider": "cosign",
        "matchOIDCIdentity": [
            {
                "issuer": r"^https://token\.actions\.githubusercontent\.com$",
                "subject": r"^https://github\.com/octo-org/gitops/\.github/workflows/deploy\.yml@refs/heads/main$",
            }
        ],
    }
    syncs = flux_config.generate(conf, conf.targets, verify=verify)
    for s in syncs:
        source, sync = s.objects
        assert source["spec"]["verify"] == verify and "verify" not in sync["spec"]
        assert crd_errors(source) == []
    # Key-based: only the secret; the CRD's default fills the required provider.
    keyed = flux_config.generate(
        conf, conf.targets[:1], verify={"secretRef": {"name": "cosign-pub"}}
    )
    assert crd_errors(keyed[0].objects[0]) == []
    assert all(
        "verify" not in s.objects[0]["spec"]
        for s in flux_config.generate(conf, conf.targets)
    )


@pytest.mark.parametrize(
    ("snippet", "key", "offset", "needle"),
    [
        (
            "flux:\n  source:\n    interval: 1 minute\n",
            "flux.source.interval",
            3,
            "does not match",
        ),
        (
            "flux:\n  kustomization:\n    prune: yes please\n",
            "flux.kustomization.prune",
            3,
            "is not of type",
        ),
        ("flux:\n  sourc: {}\n", "flux.sourc", 2, "unknown key 'sourc'"),
        ("flux:\n  name: one-for-all\n", "flux.name", 2, "unknown key 'name'"),
    ],
)
def test_a_bad_flux_section_names_key_and_line(
    example_repo: GitRepo, snippet: str, key: str, offset: int, needle: str
) -> None:
    path = example_repo.path / ".timoni-flux.yaml"
    lines = plain_config(example_repo).count("\n")
    path.write_text(plain_config(example_repo) + snippet)
    example_repo.commit_all("bad flux section")
    out = run_cli(example_repo, "flux-config")
    assert out.returncode == 2, out.stderr
    assert f"error: .timoni-flux.yaml:{lines + offset}: {key}: " in out.stderr, (
        out.stderr
    )
    assert needle in out.stderr and "Traceback" not in out.stderr


def test_a_name_flux_cannot_take_is_an_error_naming_the_target(
    example_repo: GitRepo,
) -> None:
    example_repo.write(
        "clusters/staging/new_billing.cue",
        (example_repo.path / "clusters/staging/billing.cue").read_text(),
    )
    example_repo.commit_all("an id that is no Kubernetes name")
    out = run_cli(example_repo, "flux-config")
    assert out.returncode == 2
    assert (
        "'staging-new_billing' is not a valid Kubernetes name" in out.stderr
        and "flux.name" in out.stderr
    )


def test_action_mode_writes_the_files(example_repo: GitRepo, tmp_path: Path) -> None:
    run = run_action(
        example_repo.path,
        tmp_path / "action",
        inputs={"mode": "flux-config", "output-dir": "clusters/flux"},
    )
    assert run.returncode == 0, run.stderr + run.stdout
    written = sorted(p.name for p in (example_repo.path / "clusters/flux").iterdir())
    names = [f"{t.id.replace('/', '-')}.yaml" for t in example_targets(example_repo)]
    assert written == sorted(
        names + [f"_notifications.flux-system.{e}.yaml" for e in ENVIRONMENTS]
    )
    assert "clusters/flux/webapp-staging.yaml" in run.summary
    assert json.loads(run.outputs["artifacts"]) == []


def test_action_mode_never_writes_outside_the_workspace(
    example_repo: GitRepo, tmp_path: Path
) -> None:
    """A directory of the checkout may be a symlink the repository planted; so may a file in it."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (example_repo.path / "sync").symlink_to(outside)
    (example_repo.path / "clusters/flux").mkdir(parents=True)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    (example_repo.path / "clusters/flux/webapp-staging.yaml").symlink_to(victim)
    example_repo.commit_all("planted links")
    run = run_action(
        example_repo.path,
        tmp_path / "a1",
        inputs={"mode": "flux-config", "output-dir": "sync"},
    )
    assert run.returncode == 2 and "resolves outside the workspace" in run.stdout
    assert list(outside.iterdir()) == []
    run = run_action(
        example_repo.path,
        tmp_path / "a2",
        inputs={"mode": "flux-config", "output-dir": "clusters/flux"},
    )
    assert run.returncode == 0, run.stdout
    assert victim.read_text() == "keep me\n"
    written = example_repo.path / "clusters/flux/webapp-staging.yaml"
    assert not written.is_symlink() and "kind: OCIRepository" in written.read_text()


def test_a_flux_block_change_rebuilds_nothing(
    example_repo: GitRepo, tmp_path: Path
) -> None:
    """The `flux:` settings shape the cluster's sync, not the artifact: no target is affected."""
    base = example_repo.head()
    path = example_repo.path / ".timoni-flux.yaml"
    text = plain_config(example_repo).replace(
        "    tags: [staging]\n", "    tags: [staging]\n    flux: {name: web}\n", 1
    )
    path.write_text(text + FLUX_SECTION)
    example_repo.commit_all("flux settings only")
    out_file = tmp_path / "plan.json"
    run = run_cli(example_repo, "plan", "--base", base, "--output-file", str(out_file))
    assert run.returncode == 0, run.stderr
    assert json.loads(json.loads(out_file.read_text())["artifacts"]) == []
    # While the same kind of edit to a field of the artifact does affect its target.
    path.write_text(
        path.read_text().replace("    flux: {name: web}\n", "    watch: [docs]\n", 1)
    )
    example_repo.commit_all("watch")
    run = run_cli(example_repo, "plan", "--base", base, "--output-file", str(out_file))
    assert [
        a["name"] for a in json.loads(json.loads(out_file.read_text())["artifacts"])
    ] == ["webapp-staging"]


def test_action_input_tag_is_the_tag_followed(
    example_repo: GitRepo, tmp_path: Path
) -> None:
    """The action's `tag` input is the command line's --tag: every OCIRepository follows it."""
    run = run_action(
        example_repo.path,
        tmp_path / "action",
        inputs={
            "mode": "flux-config",
            "output-dir": "clusters/flux",
            "tag": "production",
        },
    )
    assert run.returncode == 0, run.stderr + run.stdout
    repos = [
        o
        for f in sorted((example_repo.path / "clusters/flux").iterdir())
        for o in yaml.safe_load_all(f.read_text())
        if o and o["kind"] == "OCIRepository"
    ]
    assert len(repos) == len(example_targets(example_repo))
    assert {o["spec"]["ref"]["tag"] for o in repos} == {"production"}
    bad = run_action(
        example_repo.path, tmp_path / "bad", inputs={"mode": "flux-config", "tag": "-x"}
    )
    assert bad.returncode == 2 and "input `tag`" in bad.stdout
