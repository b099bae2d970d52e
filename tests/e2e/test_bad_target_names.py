"""Issue 19, finding 6: a directory a `match` pattern captures that cannot be a target name
(`clusters/staging/Q3 Report/values.cue`) fails its own target alone, in every mode. Before: push
and flux-config stopped with `internal error: IndexError` (nothing pushed, nothing written).
Real timoni, flux, registry and git; the action run as GitHub runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import GitRepo
from support.action import ActionRun, annotations, run_action
from support.github_api import GitHubApiServer
from test_dry_run import dry_run

CONFIG = ".timoni-flux.yaml"
BAD = "clusters/staging/Q3 Report/values.cue"
GOOD = "clusters/staging/report/values.cue"
ENTRY = """  - match: "clusters/{env}/{name}/values.cue"
    module: ./modules/credentials
    namespace: "{env}"
    artifact: "{registry}/reports/{env}/{name}"
    tags: ["{env}"]
"""
VALUES = """values: {
\tusername: "report"
\tpassword: "report-demo-password"
\tendpoint: "https://report.example.com"
}
"""


def add_reports(repo: GitRepo) -> str:
    """The entry, a good directory and the bad one; returns the commit before them."""
    before = repo.head()
    config = repo.path / CONFIG
    config.write_text(config.read_text().replace("bundles:", ENTRY + "bundles:"))
    repo.write(GOOD, VALUES)
    repo.write(BAD, VALUES)
    repo.commit_all("reports")
    return before


def entry_line(repo: GitRepo) -> int:
    lines = (repo.path / CONFIG).read_text().splitlines()
    return next(
        n for n, t in enumerate(lines, 1) if "clusters/{env}/{name}/values.cue" in t
    )


def check_bad_alone(run: ActionRun, good_status: str) -> None:
    said = run.stdout + run.stderr
    assert "Traceback" not in run.stderr and "internal error" not in said, run.stdout[
        -6000:
    ]
    assert run.returncode == 1, run.stdout + run.stderr
    targets = run.by_name()
    bad = targets[BAD]
    assert bad["status"] == "failed" and bad["digest"] is None
    assert bad["error"].startswith(f"{BAD} cannot be an instance of this `match`"), bad[
        "error"
    ]
    assert (
        "not a valid OCI repository name" in bad["error"]
        or "lower case" in bad["error"]
    )
    assert targets["staging/report"]["status"] == good_status
    assert (
        run.outputs["failed"] == "1"
        and "### Failed" in run.summary
        and "Q3 Report" in run.summary
    )
    assert any(
        a.get("file") == CONFIG
        for a in annotations(run.stdout)
        if a["level"] == "error"
    )


def pushed_event(repo: GitRepo, before: str) -> dict[str, object]:
    return {
        "before": before,
        "after": repo.head(),
        "created": False,
        "deleted": False,
        "forced": False,
    }


def test_push_fails_the_bad_name_alone(
    example_repo: GitRepo, prefix: str, tmp_path: Path
) -> None:
    """Before: `internal error: IndexError: tuple index out of range`, exit 1, nothing pushed."""
    base = add_reports(example_repo)
    run = run_action(
        example_repo.path,
        tmp_path / "run",
        inputs={"registry": prefix},
        payload=pushed_event(example_repo, base),
    )
    check_bad_alone(run, "pushed")
    assert {a["status"] for n, a in run.by_name().items() if n != BAD} == {"pushed"}


def test_dry_run_fails_the_bad_name_alone(
    example_repo: GitRepo, prefix: str, api: GitHubApiServer, tmp_path: Path
) -> None:
    base = add_reports(example_repo)
    run = dry_run(example_repo, tmp_path / "pr", prefix, api, base)
    check_bad_alone(run, "dry-run")
    assert BAD in api.comments[-1]["body"] or "Q3 Report" in api.comments[-1]["body"]


def test_plan_fails_the_bad_name_alone(
    example_repo: GitRepo, prefix: str, tmp_path: Path
) -> None:
    """Before: `internal error: IndexError`, no matrix. Now the plan says it fails, and keeps it in the
    matrix with exit 0: its own matrix job fails, while a failed plan job would skip every job."""
    base = add_reports(example_repo)
    run = run_action(
        example_repo.path,
        tmp_path / "run",
        inputs={"registry": prefix, "mode": "plan"},
        payload=pushed_event(example_repo, base),
    )
    said = run.stdout + run.stderr
    assert "Traceback" not in run.stderr and "internal error" not in said, run.stdout[
        -6000:
    ]
    assert run.returncode == 0, run.stdout + run.stderr
    matrix = json.loads(run.outputs["matrix"])
    assert {"target": "staging/report"} in matrix["include"] and {
        "target": BAD
    } in matrix["include"]
    statuses = {n: a["status"] for n, a in run.by_name().items()}
    assert statuses[BAD] == "failed" and statuses["staging/report"] == "planned"
    assert (
        run.outputs["failed"] == "1"
        and "### Failed" in run.summary
        and "Q3 Report" in run.summary
    )
    bad = [a for a in annotations(run.stdout) if a["level"] == "error"]
    assert (
        len(bad) == 1
        and bad[0]["file"] == CONFIG
        and bad[0]["line"] == str(entry_line(example_repo))
    )


@pytest.mark.parametrize("where", ["stdout", "output-dir"])
def test_flux_config_fails_the_bad_name_alone(
    example_repo: GitRepo, tmp_path: Path, where: str
) -> None:
    """Before: `internal error: IndexError`, no objects and no files written."""
    add_reports(example_repo)
    inputs = {
        "mode": "flux-config",
        **({"output-dir": "sync"} if where == "output-dir" else {}),
    }
    run = run_action(example_repo.path, tmp_path / "run", inputs=inputs)
    said = run.stdout + run.stderr
    assert "Traceback" not in run.stderr and "internal error" not in said, run.stdout[
        -6000:
    ]
    assert run.returncode == 1, run.stdout + run.stderr
    if where == "output-dir":
        written = sorted(
            p.name for p in (example_repo.path / "sync").iterdir() if p.name[0] != "_"
        )
        assert "staging-report.yaml" in written and len(written) == 6
        text = (example_repo.path / "sync/staging-report.yaml").read_text()
    else:
        text = run.stdout
    # not the annotations
    stream = "\n".join(ln for ln in text.splitlines() if not ln.startswith("::"))
    names = [d["metadata"]["name"] for d in yaml.safe_load_all(stream) if d]
    assert "staging-report" in names
    assert "Q3 Report" in run.summary and "cannot be an instance" in run.summary
    bad = [a for a in annotations(run.stdout) if a["level"] == "error"]
    assert (
        len(bad) == 1
        and bad[0]["file"] == CONFIG
        and bad[0]["line"] == str(entry_line(example_repo))
    )


def test_promote_fails_the_bad_name_alone(
    example_repo: GitRepo, prefix: str, tmp_path: Path
) -> None:
    """Promote reads no configuration it cannot use either: the others are promoted."""
    base = add_reports(example_repo)
    # the reports' clusters follow `qa`: a tag promote may move
    config = example_repo.path / CONFIG
    config.write_text(
        config.read_text().replace(ENTRY, ENTRY + "    flux: {source: {tag: qa}}\n")
    )
    example_repo.commit_all("reports follow qa")
    push = run_action(
        example_repo.path,
        tmp_path / "push",
        inputs={"registry": prefix},
        payload=pushed_event(example_repo, base),
    )
    assert push.by_name()["staging/report"]["status"] == "pushed", (
        push.stdout + push.stderr
    )
    run = run_action(
        example_repo.path,
        tmp_path / "promote",
        inputs={"registry": prefix, "mode": "promote", "from": "staging", "to": "qa"},
    )
    said = run.stdout + run.stderr
    assert "Traceback" not in run.stderr and "internal error" not in said, run.stdout[
        -6000:
    ]
    assert run.returncode == 1, run.stdout + run.stderr
    targets = run.by_name()
    assert targets[BAD]["status"] == "failed", targets[BAD]
    assert targets[BAD]["error"].startswith(
        f"{BAD} cannot be an instance of this `match`"
    )
    assert targets["staging/report"]["status"] == "promoted"
    assert "Q3 Report" in run.summary and "### Problems" in run.summary


def test_deployments_skip_the_bad_name(
    example_repo: GitRepo, prefix: str, api: GitHubApiServer, tmp_path: Path
) -> None:
    """Found by review: with `deployments: true` the githubdispatch section read the bad target's
    tag after the push (IndexError: the outputs said `pushed: 0`, the summary an internal error)."""
    base = add_reports(example_repo)
    run = run_action(
        example_repo.path,
        tmp_path / "run",
        inputs={"registry": prefix, "deployments": "true", "github-token": api.token},
        payload=pushed_event(example_repo, base),
        sha=example_repo.head(),
        env={"GITHUB_API_URL": api.base_url},
    )
    said = run.stdout + run.stderr
    assert "internal error" not in said, said[-3000:]
    assert run.by_name()[BAD]["status"] == "failed"
    assert (
        run.outputs["pushed"] == str(len(run.by_name()) - 1)
        and "### Deployments" in run.summary
    )
    # no empty host from the bad target
    assert "no registry credentials for :" not in said


def test_no_empty_host_in_the_credentials_warning(
    example_repo: GitRepo, prefix: str, tmp_path: Path
) -> None:
    base = add_reports(example_repo)
    run = run_action(
        example_repo.path,
        tmp_path / "run",
        inputs={
            "registry": prefix,
            "registry-username": "u",
            "registry-password": "p4ssw0rd-x",
        },
        payload=pushed_event(example_repo, base),
        sha=example_repo.head(),
    )
    assert "no registry credentials for :" not in run.stdout + run.stderr
