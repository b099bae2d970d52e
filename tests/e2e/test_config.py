"""Issue 3: the configuration file. Broken configurations stop the run with exit code 2 and a
message naming the file, the key path and the line, and nothing is built; `match` patterns,
placeholders and paths expand as the contract says.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import run_cli
from support.registry import Registry
from support.repos import GitRepo
from unit.config.test_targets import CONFIG, GOOD


@dataclass(frozen=True)
class Broken:
    id: str
    old: str  # replaced in GOOD (must occur once) ...
    new: str  # ... by this
    key: str  # the key path the message names
    marker: str  # a text on the line the message names (searched in the broken file)
    message: str  # a part of the message


CASES = [
    Broken(
        "invalid-yaml",
        "    module: ./modules/webapp\n    values: [apps/webapp/common.cue, apps/webapp/s",
        "   module: ./modules/webapp  # misindented\n    values: [apps/webapp/common.cue, apps/webapp/s",
        "(top level)",
        "# misindented",
        "invalid YAML: ",
    ),
    Broken(
        "unclosed-flow-sequence",
        "tags: [production, stable]",
        "tags: [production, stable",
        "(top level)",
        "  - match:",
        "invalid YAML: did not find expected ',' or ']'",
    ),
    Broken(
        "schema-violation-absolute-path",
        "values: [apps/webapp/common.cue, apps/webapp/production.yaml]",
        "values: [/srv/common.cue, apps/webapp/production.yaml]",
        "instances[1].values[0]",
        "values: [/srv/common.cue",
        "'/srv/common.cue' does not match",
    ),
    Broken(
        "schema-violation-type",
        "tags: [production, stable]",
        "tags: production",
        "instances[1].tags",
        "tags: production",
        "'production' is not of type 'array'",
    ),
    Broken(
        "schema-violation-required",
        "  namespace: apps\n    module: ./modules/webapp\n    values: [apps/webapp/common.cue, apps/webapp/p",
        "  module: ./modules/webapp\n    values: [apps/webapp/common.cue, apps/webapp/p",
        "instances[1]",
        "- name: webapp-production",
        "'namespace' is a required property",
    ),
    Broken(
        "schema-violation-version",
        "version: 1",
        "version: 2",
        "version",
        "version: 2",
        "1 was expected",
    ),
    Broken(
        "schema-violation-name",
        "- name: webapp-production",
        "- name: Webapp-Production",
        "instances[1].name",
        "- name: Webapp-Production",
        "'Webapp-Production' does not match",
    ),
    Broken(
        "unknown-key-typo",
        "    values: [apps/webapp/common.cue, apps/webapp/staging.yaml]",
        "    valeus: [apps/webapp/common.cue, apps/webapp/staging.yaml]",
        "instances[0].valeus",
        "valeus:",
        "unknown key 'valeus': did you mean `values`?",
    ),
    Broken(
        "unknown-key-in-match-instance",
        '    tags: ["{env}"]',
        '    tags: ["{env}"]\n    wacth: [shared]',
        "instances[2].wacth",
        "wacth:",
        "unknown key 'wacth'",
    ),
    Broken(
        "unknown-top-level-key",
        "bundles:",
        "bundels:",
        "bundels",
        "bundels:",
        "unknown key 'bundels': did you mean `bundles`?",
    ),
    # issue 20: before, only "'namespace' is a required property" on the entry's line
    Broken(
        "required-key-typo",
        "  - name: webapp-production\n    namespace: apps",
        "  - name: webapp-production\n    namesppace: apps",
        "instances[1].namesppace",
        "namesppace:",
        "unknown key 'namesppace': did you mean `namespace`? (`namespace` is required)",
    ),
    Broken(
        "unknown-key-no-near-name",
        "    tags: [staging]\n  - name: webapp-production",
        "    tags: [staging]\n    colour: red\n  - name: webapp-production",
        "instances[0].colour",
        "colour: red",
        "unknown key 'colour' (allowed: artifact, digest, flux, module, name, namespace, tags, values, "
        "version, watch)",
    ),
    Broken(  # issue 20: before, `plan` passed and `push` failed the targets (exit 1)
        "module-does-not-exist",
        "module: ./modules/credentials",
        "module: ./modules/credential",
        "instances[2].module",
        "module: ./modules/credential",
        "module directory modules/credential does not exist: did you mean `./modules/credentials`?",
    ),
    Broken(
        "module-is-no-timoni-module",
        "module: ./modules/credentials",
        "module: ./clusters",
        "instances[2].module",
        "module: ./clusters",
        "clusters is not a Timoni module (no clusters/cue.mod/module.cue)",
    ),
    Broken(
        "duplicate-yaml-key",
        "    tags: [staging]\n  - name: webapp-production",
        "    tags: [staging]\n    tags: [canary]\n  - name: webapp-production",
        "instances[0].tags",
        "tags: [canary]",
        "duplicate key",
    ),
    Broken(
        "path-escape-values",
        "values: [apps/webapp/common.cue, apps/webapp/production.yaml]",
        "values: [apps/../../secrets/common.cue, apps/webapp/production.yaml]",
        "instances[1].values[0]",
        "apps/../../secrets",
        "'apps/../../secrets/common.cue' leaves the repository",
    ),
    Broken(
        "path-escape-module",
        "module: ./modules/credentials",
        "module: ../shared/modules/credentials",
        "instances[2].module",
        "module: ../shared",
        "leaves the repository",
    ),
    Broken(
        "path-escape-bundle-file",
        "files: [bundles/platform.cue, bundles/staging.cue]",
        "files: [bundles/platform.cue, ../bundles/staging.cue]",
        "bundles[0].files[1]",
        "files: [bundles/platform.cue, ../",
        "'../bundles/staging.cue' leaves the repository",
    ),
    Broken(
        "path-escape-watch",
        "    tags: [staging]\n  - name: webapp-production",
        '    tags: [staging]\n    watch: ["../**"]\n  - name: webapp-production',
        "instances[0].watch[0]",
        'watch: ["../**"]',
        "leaves the repository",
    ),
    Broken(
        "duplicate-id",
        "- name: webapp-production",
        "- name: webapp-staging  # again",
        "instances[1]",
        "# again",
        "target id 'webapp-staging' is also used by instances[0]",
    ),
    Broken(
        "duplicate-id-from-match",
        '    tags: ["{env}"]',
        '    tags: ["{env}"]\n    id: "{name}"',
        "instances[2] (clusters/staging/billing.cue)",
        '- match: "clusters/{env}/{name}.cue"',
        "target id 'billing' is also used by instances[2] (clusters/production/billing.cue)",
    ),
    Broken(
        "duplicate-artifact-and-tag",
        "tags: [production, stable]",
        "tags: [staging, stable]",
        "instances[1]",
        "- name: webapp-production",
        "oci://registry.example.com/gitops/webapp:staging is also the artifact and tag of instances[0] "
        "(webapp-staging)",
    ),
    Broken(
        "upper-case-artifact",
        'artifact: "{registry}/platform"',
        'artifact: "oci://registry.example.com/Gitops/Platform"',
        "bundles[0].artifact",
        "Gitops/Platform",
        "artifact 'oci://registry.example.com/Gitops/Platform': OCI repository names must be lower case",
    ),
    Broken(
        "invalid-tag",
        "tags: [production, stable]",
        "tags: [production, -stable]",
        "instances[1].tags[1]",
        "tags: [production, -stable]",
        "'-stable' is not a valid OCI tag",
    ),
    Broken(
        "invalid-tag-from-placeholder",
        'tags: ["{env}"]',
        'tags: ["{env}+1"]',
        "instances[2].tags[0]",
        'tags: ["{env}+1"]',
        "'production+1' is not a valid OCI tag",
    ),
    Broken(
        "unknown-placeholder",
        'artifact: "{registry}/webapp"\n    tags: [staging]',
        'artifact: "{registry}/{team}/webapp"\n    tags: [staging]',
        "instances[0].artifact",
        "{team}",
        "unknown placeholder {team} (known here: {name}, {registry})",
    ),
    Broken(
        "unknown-placeholder-in-match",
        'namespace: "{env}"',
        'namespace: "{cluster}"',
        "instances[2].namespace",
        'namespace: "{cluster}"',
        "unknown placeholder {cluster} (known here: {env}, {name}, {registry})",
    ),
    Broken(
        "match-without-name",
        'match: "clusters/{env}/{name}.cue"',
        'match: "clusters/{env}/billing.cue"',
        "instances[2].match",
        "match:",
        "must capture {name}",
    ),
]


def break_config(repo: GitRepo, case: Broken) -> str:
    assert GOOD.count(case.old) == 1, case.id
    text = GOOD.replace(case.old, case.new)
    (repo.path / CONFIG).write_text(text)
    repo.commit_all(f"broken: {case.id}")
    return text


def line_of(text: str, marker: str) -> int:
    assert text.count(marker) == 1, marker
    return text[: text.index(marker)].count("\n") + 1


@pytest.fixture
def gitops(example_repo: GitRepo) -> GitRepo:
    """The example repository with GOOD as its configuration (known lines)."""
    (example_repo.path / CONFIG).write_text(GOOD)
    example_repo.commit_all("known configuration")
    return example_repo


def catalog(registry: Registry) -> list[str]:
    status, _, body = registry.request("/v2/_catalog?n=1000", accept="application/json")
    assert status == 200
    return list(json.loads(body).get("repositories") or [])


def test_the_good_configuration_is_good(gitops: GitRepo) -> None:
    proc = run_cli(gitops, "plan")
    assert proc.returncode == 0, proc.stderr
    assert "webapp-staging: planned" in proc.stderr


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_configuration_errors_stop_with_exit_2(
    gitops: GitRepo, case: Broken, tmp_path: Path
) -> None:
    text = break_config(gitops, case)
    out = tmp_path / "outputs.json"
    proc = run_cli(gitops, "plan", "--output-file", str(out))
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    line = line_of(text, case.marker)
    head = f"error: {CONFIG}:{line}: {case.key}: "
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1, proc.stderr
    assert errors[0].startswith(head), (errors[0], head)
    assert case.message in errors[0]
    assert "Nothing was built" in proc.stdout
    outputs = json.loads(out.read_text())
    assert (outputs["artifacts"], json.loads(outputs["matrix"])) == (
        "[]",
        {"include": []},
    )


@pytest.mark.parametrize(
    "case",
    [
        c
        for c in CASES
        if c.id
        in (
            "schema-violation-absolute-path",
            "duplicate-artifact-and-tag",
            "unknown-placeholder",
            "path-escape-module",
        )
    ],
    ids=lambda c: c.id,
)
def test_push_with_a_broken_configuration_builds_nothing(
    gitops: GitRepo, case: Broken, registry: Registry, prefix: str
) -> None:
    break_config(gitops, case)
    proc = run_cli(gitops, "push", "--registry", prefix)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stderr.startswith(f"error: {CONFIG}:"), proc.stderr
    assert (
        case.message.replace("oci://registry.example.com/gitops", prefix) in proc.stderr
    )
    repo_prefix = prefix.removeprefix(f"oci://{registry.host}/")
    assert [r for r in catalog(registry) if r.startswith(repo_prefix)] == []


def test_missing_and_empty_configuration(gitops: GitRepo) -> None:
    proc = run_cli(gitops, "plan", "--config", "nope.yaml")
    assert proc.returncode == 2
    assert proc.stderr.startswith(
        "error: nope.yaml: (top level): configuration file not found at "
    )
    (gitops.path / CONFIG).write_text("# nothing yet\n")
    gitops.commit_all("empty")
    proc = run_cli(gitops, "plan")
    assert proc.returncode == 2
    assert f"error: {CONFIG}:1: (top level): the file is empty" in proc.stderr


def test_error_annotation_in_actions_points_at_the_file_and_line(
    gitops: GitRepo, tmp_path: Path
) -> None:
    case = next(c for c in CASES if c.id == "unknown-key-typo")
    text = break_config(gitops, case)
    event = tmp_path / "event.json"
    event.write_text("{}")
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_WORKSPACE": str(gitops.path),
        "GITHUB_EVENT_NAME": "workflow_dispatch",
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_SHA": gitops.head(),
        "INPUT_MODE": "plan",
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
    }
    # the CLI in an Actions job: the error is an annotation
    proc = run_cli(gitops, "plan", env=env)
    assert proc.returncode == 2
    line = line_of(text, case.marker)
    assert (
        f"::error title=timoni-flux-push%3A configuration or usage error,file={CONFIG},line={line}::"
        in proc.stdout
    )
    assert f"{CONFIG}:{line}: instances[0].valeus: unknown key 'valeus'" in proc.stdout
