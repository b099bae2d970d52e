"""Issue 7: a corpus of bad inputs (a broken configuration, an event payload missing a field, a
repository name the registry would refuse) stops the run before anything is built, with exit 2
and one error naming the file, the key path and the line; a `match` that matches nothing is a
warning. Real timoni, flux, registry and git; the action run as GitHub runs it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import GitRepo
from support import example_runs
from support.action import ActionRun, annotations, run_action
from support.example_runs import (
    ALL,
    CONFIG,
    edit_config,
    line_of,
    log_of,
    push,
    registry_name,
    statuses,
)
from support.registry import Registry

# This module's fixtures, from support/example_runs.py.
prefix = example_runs.prefix


def stopped(run: ActionRun) -> dict[str, str]:
    """A run stopped before building (exit 2): its one error annotation."""
    assert run.returncode == 2, log_of(run)
    assert run.outputs["artifacts"] == "[]" and run.outputs["failed"] == "0"
    assert "Nothing was built" in run.summary
    errors = [a for a in annotations(run.stdout) if a["level"] == "error"]
    assert len(errors) == 1, run.stdout
    return errors[0]


def test_invalid_yaml_stops_with_file_and_line(
    example_repo: GitRepo, prefix: str, tmp_path: Path
) -> None:
    line = edit_config(
        example_repo,
        "    tags: [staging]\n  - name: webapp-production",
        "    tags: [staging\n  - name: webapp-production",
    )
    error = stopped(push(example_repo, tmp_path / "run", prefix))
    assert error["file"] == CONFIG and "invalid YAML" in error["message"]
    assert line <= int(error["line"]) <= line + 2, (
        line,
        error,
    )  # the unclosed `[` or just after it


def test_schema_violation_names_key_path_and_line(
    example_repo: GitRepo, prefix: str, tmp_path: Path
) -> None:
    line = edit_config(
        example_repo, "    tags: [production, stable]", "    tags: production"
    )
    error = stopped(push(example_repo, tmp_path / "run", prefix))
    assert (error["file"], error["line"]) == (CONFIG, str(line))
    assert (
        "instances[1].tags" in error["message"]
        and "is not of type 'array'" in error["message"]
    )


def test_unknown_key_is_an_error_not_ignored(
    example_repo: GitRepo, prefix: str, tmp_path: Path
) -> None:
    line = edit_config(
        example_repo,
        "    tags: [staging]\n  - name: webapp-production",
        "    tagz: [staging]\n  - name: webapp-production",
    )
    error = stopped(push(example_repo, tmp_path / "run", prefix))
    assert (error["file"], error["line"]) == (CONFIG, str(line))
    assert (
        "instances[0].tagz" in error["message"]
        and "unknown key 'tagz'" in error["message"]
    )


def test_path_escaping_the_repository_stops(
    example_repo: GitRepo, prefix: str, tmp_path: Path
) -> None:
    line = edit_config(
        example_repo,
        "apps/webapp/common.cue, apps/webapp/staging.yaml]",
        "apps/webapp/common.cue, apps/../../outside.yaml]",
    )
    error = stopped(push(example_repo, tmp_path / "run", prefix))
    assert (error["file"], error["line"]) == (CONFIG, str(line))
    assert (
        "instances[0].values[1]" in error["message"]
        and "leaves the repository" in error["message"]
    )


@pytest.mark.parametrize(
    ("payload", "event", "field"),
    [
        ({"after": "x", "created": False, "deleted": False}, "push", "`before`"),
        (
            {
                "number": 7,
                "pull_request": {
                    "number": 7,
                    "base": {"ref": "main"},
                    "head": {"sha": "x"},
                },
            },
            "pull_request",
            "`pull_request.base.sha`",
        ),
        ({"action": "opened"}, "pull_request", "`pull_request.number`"),
    ],
    ids=[
        "push without before",
        "pull_request without base.sha",
        "pull_request without pull_request",
    ],
)
def test_event_payload_missing_a_field_stops(
    payload: dict[str, Any],
    event: str,
    field: str,
    example_repo: GitRepo,
    prefix: str,
    tmp_path: Path,
) -> None:
    run = run_action(
        example_repo.path,
        tmp_path / "run",
        inputs={"registry": prefix},
        event_name=event,
        payload=payload,
        sha=example_repo.head(),
    )
    error = stopped(run)
    assert error["message"] == f"{event} event payload has no {field}", error


def test_upper_case_repository_stops_but_upper_case_tags_are_pushed(
    example_repo: GitRepo, registry: Registry, prefix: str, tmp_path: Path
) -> None:
    # OCI repository names are lower case: caught when the configuration is loaded.
    line = edit_config(
        example_repo,
        'artifact: "{registry}/webapp"\n    tags: [staging]',
        'artifact: "{registry}/WebApp"\n    tags: [staging]',
    )
    error = stopped(push(example_repo, tmp_path / "upper-repo", prefix))
    assert (error["file"], error["line"]) == (CONFIG, str(line))
    assert "lower case" in error["message"] and "WebApp" in error["message"]
    # Tags may hold upper case (the OCI tag grammar is [A-Za-z0-9_][A-Za-z0-9._-]*): flux and the
    # registry take them, so the action does too.
    edit_config(
        example_repo,
        'artifact: "{registry}/WebApp"\n    tags: [staging]',
        'artifact: "{registry}/webapp"\n    tags: [Staging-V1.2_RC]',
    )
    run = push(example_repo, tmp_path / "upper-tag", prefix, targets="webapp-staging")
    assert run.returncode == 0, log_of(run)
    assert statuses(run) == {"webapp-staging": "pushed"}
    assert registry.tags(f"{registry_name(prefix)}/webapp") == ["Staging-V1.2_RC"]
    found = registry.manifest(f"{registry_name(prefix)}/webapp", "Staging-V1.2_RC")
    assert found is not None and found[0] == run.by_name()["webapp-staging"]["digest"]


def test_repository_name_the_registry_would_refuse_stops(
    example_repo: GitRepo, prefix: str, tmp_path: Path
) -> None:
    # A component ending in `-` (as a prefix cut at a fixed length can): the registry answers such a
    # name with 404 on the blob upload, halfway through a push. The action refuses it up front.
    error = stopped(push(example_repo, tmp_path / "run", prefix + "-"))
    assert (error["file"], error["line"]) == (
        CONFIG,
        str(line_of(example_repo, CONFIG, 'artifact: "{registry}/webapp"')),
    )
    assert (
        f"'{registry_name(prefix)}-/webapp' is not a valid OCI repository name"
        in error["message"]
    ), error


def test_module_path_that_is_not_a_module_is_a_configuration_error(
    example_repo: GitRepo, prefix: str, tmp_path: Path
) -> None:
    """A literal `module:` path is checked when the configuration loads (issue 20): exit 2 at its
    line, nothing built (a path a `match` placeholder fills in fails that target alone instead)."""
    edit_config(
        example_repo,
        "  - name: webapp-production\n    namespace: apps\n    module: ./modules/webapp",
        "  - name: webapp-production\n    namespace: apps\n    module: ./apps/webapp",
    )
    run = push(
        example_repo,
        tmp_path / "run",
        prefix,
        targets="webapp-staging,webapp-production",
    )
    assert run.returncode == 2, run.stdout + run.stderr
    assert "instances[1].module: apps/webapp is not a Timoni module" in run.stdout
    assert "Nothing was built" in run.summary


def test_match_that_matches_nothing_is_a_warning(
    example_repo: GitRepo, prefix: str, tmp_path: Path
) -> None:
    line = edit_config(
        example_repo,
        "bundles:\n",
        '  - match: "regions/{env}/{name}.cue"\n'
        '    module: ./modules/credentials\n    namespace: "{env}"\nbundles:\n',
    )
    run = push(example_repo, tmp_path / "run", prefix, mode="plan")
    assert run.returncode == 0, log_of(run)
    assert statuses(run) == dict.fromkeys(ALL, "planned")
    warnings = [a for a in annotations(run.stdout) if a["level"] == "warning"]
    assert any(
        f"{CONFIG}:{line}: instances[3].match: pattern 'regions/{{env}}/{{name}}.cue' matches no file"
        in w["message"]
        for w in warnings
    ), run.stdout
    assert "matches no file" in run.summary
