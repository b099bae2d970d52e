"""Issue 7: a target whose values are missing, do not parse, have the wrong type or lead outside the
repository fails alone, its error pointing at the file and line; every other target is pushed.
Real timoni, flux, registry and git.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conftest import GitRepo
from support import example_runs
from support.action import ActionRun, annotations
from support.example_runs import (
    CONFIG,
    edit_config,
    line_of,
    log_of,
    push,
    statuses,
)

# This module's fixtures, from support/example_runs.py.
prefix = example_runs.prefix


def failed_alone(
    run: ActionRun, broken: set[str], others: set[str]
) -> dict[str, dict[str, Any]]:
    """The run failed (exit 1) only the broken targets; every other one was pushed."""
    assert run.returncode == 1, log_of(run)
    assert statuses(run) == {
        **dict.fromkeys(broken, "failed"),
        **dict.fromkeys(others, "pushed"),
    }
    assert run.outputs["failed"] == str(len(broken))
    return {name: art for name, art in run.by_name().items() if name in broken}


def error_notes(run: ActionRun) -> list[tuple[str, str]]:
    return [
        (a["file"], a["line"])
        for a in annotations(run.stdout)
        if a["level"] == "error" and "file" in a
    ]


def test_values_file_that_does_not_exist_fails_its_target(
    example_repo: GitRepo, prefix: str, tmp_path: Path
) -> None:
    edit_config(
        example_repo,
        "apps/webapp/common.cue, apps/webapp/staging.yaml]",
        "apps/webapp/common.cue, apps/webapp/staging-typo.yaml]",
    )
    entry = line_of(example_repo, CONFIG, "name: webapp-staging")
    run = push(
        example_repo,
        tmp_path / "run",
        prefix,
        targets="webapp-staging,webapp-production",
    )
    broken = failed_alone(run, {"webapp-staging"}, {"webapp-production"})
    assert broken["webapp-staging"]["error"] == (
        f"apps/webapp/staging-typo.yaml does not exist (listed in {CONFIG} instances[0] line {entry})"
    )
    assert (CONFIG, str(entry)) in error_notes(run)


def test_cue_syntax_error_in_a_values_file_points_at_it(
    example_repo: GitRepo, prefix: str, tmp_path: Path
) -> None:
    common = example_repo.path / "apps/webapp/common.cue"
    common.write_text(
        common.read_text().replace('tag:        "6.5.0"', 'tag:        "6.5.0" +++')
    )
    example_repo.commit_all("syntax error")
    run = push(
        example_repo,
        tmp_path / "run",
        prefix,
        targets="webapp-staging,webapp-production,staging/billing",
    )
    broken = failed_alone(
        run, {"webapp-staging", "webapp-production"}, {"staging/billing"}
    )
    # timoni parses values it read into memory: CUE's syntax error carries no position, and timoni
    # echoes the whole file instead of naming it. The action names the file (line 1: all it knows).
    for art in broken.values():
        assert art["error"] == (
            "timoni build failed (apps/webapp/common.cue:1): apps/webapp/common.cue: "
            "expected operand, found '}' (and 1 more errors)"
        ), art["error"]
    assert ("apps/webapp/common.cue", "1") in error_notes(run), run.stdout
    assert 'repository: "ghcr.io/stefanprodan/podinfo"' not in log_of(
        run
    )  # the echo was replaced


def test_cue_type_error_in_a_values_file_points_at_the_line(
    example_repo: GitRepo, prefix: str, tmp_path: Path
) -> None:
    billing = example_repo.path / "clusters/staging/billing.cue"
    billing.write_text(
        billing.read_text().replace(
            'endpoint: "https://billing.staging.example.com"', "endpoint: 443"
        )
    )
    example_repo.commit_all("type error")
    run = push(
        example_repo,
        tmp_path / "run",
        prefix,
        targets="staging/billing,production/billing",
    )
    broken = failed_alone(run, {"staging/billing"}, {"production/billing"})
    err = broken["staging/billing"]["error"]
    line = line_of(example_repo, "clusters/staging/billing.cue", "endpoint: 443")
    assert err.startswith(
        f"timoni build failed (clusters/staging/billing.cue:{line})"
    ), err
    assert "values.endpoint" in err
    assert ("clusters/staging/billing.cue", str(line)) in error_notes(run), run.stdout


def test_values_file_symlinked_outside_the_repository_fails_its_target(
    example_repo: GitRepo, prefix: str, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.yaml"
    outside.write_text('values:\n  message: "read from outside the repository"\n')
    staging = example_repo.path / "apps/webapp/staging.yaml"
    staging.unlink()
    staging.symlink_to(outside)
    example_repo.commit_all("symlink out")
    run = push(
        example_repo,
        tmp_path / "run",
        prefix,
        targets="webapp-staging,webapp-production",
    )
    broken = failed_alone(run, {"webapp-staging"}, {"webapp-production"})
    assert broken["webapp-staging"]["error"].startswith(
        "apps/webapp/staging.yaml resolves outside the repository (symlink): refusing to read it"
    )
    assert "read from outside" not in log_of(run) + run.summary
