"""Planning from what each tag holds: a change whose run failed, was cancelled, was killed or never ran
is delivered by the next run; a tag moved back by hand is put back; a render that did not change is
not rendered again and again. Real timoni, flux, git and registry (behind the fault proxy where a
run must fail)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import GitRepo, run_cli
from support.action import ActionRun, run_action
from support.fault_proxy import FaultProxy, fault_proxy
from support.registry import Registry

# What each example target's first tag is, as a repository path under the prefix.
FIRST_TAG = {
    "webapp-staging": ("webapp", "staging"),
    "webapp-production": ("webapp", "production"),
    "production/billing": ("production/billing", "production"),
    "staging/billing": ("staging/billing", "staging"),
    "platform-staging": ("platform", "staging"),
}
ALL = set(FIRST_TAG)


@pytest.fixture
def prefix(registry: Registry, request: pytest.FixtureRequest) -> str:
    return f"oci://{registry.host}/cu-{hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:12]}"


@pytest.fixture
def proxy(registry: Registry) -> Iterator[FaultProxy]:
    with fault_proxy(registry.host) as p:
        yield p


def payload(before: str, after: str) -> dict[str, object]:
    created = before == "0" * 40
    return {
        "before": before,
        "after": after,
        "created": created,
        "deleted": False,
        "forced": False,
    }


def push(
    repo: GitRepo, work: Path, prefix: str, before: str, **inputs: str
) -> ActionRun:
    return run_action(
        repo.path,
        work,
        inputs={"registry": prefix, "timeout": "5s", **inputs},
        payload=payload(before, repo.head()),
        sha=repo.head(),
    )


def edit(
    repo: GitRepo, rel: str, text: str = "// changed\n", message: str = "change"
) -> str:
    with (repo.path / rel).open("a") as fh:
        fh.write(text)
    return repo.commit_all(message)


BUMPS = (
    ('message: "', 'message: "+'),
    ('endpoint: "https://', 'endpoint: "https://x.'),
    ('tag:        "', 'tag:        "1'),
)


def bump(repo: GitRepo, rel: str) -> str:
    """Commit a change to a values file that changes what it renders (a comment would not)."""
    path = repo.path / rel
    text = path.read_text()
    old, new = next((o, n) for o, n in BUMPS if o in text)
    path.write_text(text.replace(old, new, 1))
    return repo.commit_all(f"bump {rel}")


def held(
    registry: Registry, prefix: str, target: str, *, polling: bool = False
) -> str | None:
    """The commit the target's first tag holds, read straight from the registry. (While a push
    writes the tag, the filesystem registry can answer 500: a poll reads again.)"""
    name, tag = FIRST_TAG[target]
    repo = prefix.removeprefix(f"oci://{registry.host}/") + "/" + name
    try:
        revision = registry.revision(repo, tag)
    except AssertionError:
        if polling:
            return None
        raise
    return revision.rsplit(":", 1)[-1] if revision else None


def statuses(run: ActionRun) -> dict[str, str]:
    return {a["name"]: a["status"] for a in run.artifacts()}


def test_a_failed_run_is_caught_up_by_the_next_commit(
    example_repo: GitRepo,
    registry: Registry,
    proxy: FaultProxy,
    prefix: str,
    tmp_path: Path,
) -> None:
    via = prefix.replace(registry.host, proxy.host, 1)
    c1 = example_repo.head()
    first = push(example_repo, tmp_path / "run1", via, "0" * 40)
    assert first.returncode == 0, first.stdout + first.stderr
    c2 = bump(example_repo, "apps/webapp/staging.yaml")
    proxy.status(503)  # the registry is down for the whole run
    failed = push(example_repo, tmp_path / "run2", via, c1)
    assert failed.returncode == 1
    assert statuses(failed) == {"webapp-staging": "failed"}
    proxy.clear()
    c3 = bump(example_repo, "clusters/staging/billing.cue")
    third = push(example_repo, tmp_path / "run3", via, c2)
    assert third.returncode == 0, third.stdout + third.stderr
    assert statuses(third) == {"webapp-staging": "pushed", "staging/billing": "pushed"}
    caught = third.by_name()["webapp-staging"]
    assert caught["caught_up"] is True and caught["base"] == c1
    assert caught["reasons"][0] == (
        f"behind: staging holds main@sha1:{c1[:7]} (2 commits back); "
        "since then: apps/webapp/staging.yaml modified"
    )
    assert "an earlier run failed" in caught["reasons"][-1]
    assert third.by_name()["staging/billing"]["caught_up"] is False
    assert held(registry, prefix, "webapp-staging") == c3
    assert "1 caught up" in third.summary and "pushed ↺" in third.summary


def test_a_commit_that_never_had_a_run_is_delivered(
    example_repo: GitRepo, registry: Registry, prefix: str, tmp_path: Path
) -> None:
    """Three quick pushes: GitHub cancels the pending middle run, so the third run's `before` is a
    commit whose change no run delivered. Run in a depth-1 clone, as actions/checkout leaves it."""
    c1 = example_repo.head()
    assert push(example_repo, tmp_path / "run1", prefix, "0" * 40).returncode == 0
    # c2: both webapp instances; its run never started
    bump(example_repo, "apps/webapp/common.cue")
    c2 = example_repo.head()
    bump(example_repo, "clusters/production/billing.cue")  # c3
    clone = example_repo.shallow_clone(tmp_path / "clone")
    run = push(clone, tmp_path / "run3", prefix, c2)
    assert run.returncode == 0, run.stdout + run.stderr
    assert statuses(run) == {
        "webapp-staging": "pushed",
        "webapp-production": "pushed",
        "production/billing": "pushed",
    }
    assert [
        run.by_name()[n]["caught_up"] for n in ("webapp-staging", "production/billing")
    ] == [True, False]
    assert run.by_name()["webapp-staging"]["reasons"][0].startswith(
        f"behind: staging holds main@sha1:{c1[:7]}"
    )
    # The planning fetched c1 (the clone had only c3), and its history back to c1 for the ancestry.
    assert clone.git("cat-file", "-t", c1) == "commit"


def test_a_killed_run_is_finished_by_the_next_and_delivered_targets_are_left_alone(
    example_repo: GitRepo,
    registry: Registry,
    proxy: FaultProxy,
    prefix: str,
    tmp_path: Path,
) -> None:
    via = prefix.replace(registry.host, proxy.host, 1)
    c1 = example_repo.head()
    assert push(example_repo, tmp_path / "run1", via, "0" * 40).returncode == 0
    # A change to every target's render: the webapp image and every billing endpoint.
    for rel, old, new in (
        ("apps/webapp/common.cue", '"6.5.0"', '"6.5.1"'),
        ("clusters/staging/billing.cue", ".example.com", ".example.org"),
        ("clusters/production/billing.cue", ".example.com", ".example.org"),
        ("bundles/platform.cue", ".example.com", ".example.org"),
    ):
        path = example_repo.path / rel
        assert old in path.read_text()
        path.write_text(path.read_text().replace(old, new))
    c2 = example_repo.commit_all("v2 everywhere")
    # One target at a time, in plan order; the fourth one's manifest upload hangs, then SIGKILL.
    stalled = (
        prefix.removeprefix(f"oci://{registry.host}/")
        + "/staging/billing/manifests/staging$"
    )
    proxy.stall(120, methods={"PUT"}, path=stalled)
    started: list[subprocess.Popen[bytes]] = []
    run_action(
        example_repo.path,
        tmp_path / "killed",
        inputs={"registry": via, "parallel": "1", "timeout": "60s"},
        payload=payload(c1, c2),
        sha=c2,
        started=started,
    )
    delivered = {"webapp-staging", "webapp-production", "production/billing"}
    deadline = time.monotonic() + 60
    while not all(held(registry, prefix, t, polling=True) == c2 for t in delivered):
        assert time.monotonic() < deadline, (
            {t: held(registry, prefix, t) for t in FIRST_TAG},
            c2,
            [(e.method, e.path, e.outcome) for e in proxy.log[-30:]],
        )
        assert started[0].poll() is None, "the run ended before it was killed"
        time.sleep(0.05)
    os.killpg(started[0].pid, signal.SIGKILL)
    started[0].wait()
    proxy.clear()
    digests = {t: registry.manifest(*_repo_tag(registry, prefix, t)) for t in delivered}
    stable = registry.manifest(
        _repo_tag(registry, prefix, "webapp-production")[0], "stable"
    )
    assert stable is not None and stable[0] != digests["webapp-production"][0]  # type: ignore[index]

    c3 = edit(example_repo, "README.md", "notes\n")  # touches no target
    run = push(example_repo, tmp_path / "run3", via, c2)
    assert run.returncode == 0, run.stdout + run.stderr
    # The two the killed run never pushed; webapp-production's `stable` tag it never moved.
    assert statuses(run) == {
        "webapp-production": "unchanged",
        "staging/billing": "pushed",
        "platform-staging": "pushed",
    }
    assert (
        run.by_name()["webapp-production"]["reasons"][0]
        == "stable does not hold production's digest"
    )
    for t in delivered:
        assert registry.manifest(*_repo_tag(registry, prefix, t)) == digests[t]
    stable = registry.manifest(
        _repo_tag(registry, prefix, "webapp-production")[0], "stable"
    )
    assert stable is not None and stable[0] == digests["webapp-production"][0]  # type: ignore[index]
    assert held(registry, prefix, "staging/billing") == c3


def _repo_tag(registry: Registry, prefix: str, target: str) -> tuple[str, str]:
    name, tag = FIRST_TAG[target]
    return prefix.removeprefix(f"oci://{registry.host}/") + "/" + name, tag


def test_a_tag_moved_back_by_hand_is_pushed_again(
    example_repo: GitRepo, registry: Registry, prefix: str, tmp_path: Path
) -> None:
    c1 = example_repo.head()
    assert push(example_repo, tmp_path / "run1", prefix, "0" * 40).returncode == 0
    old = registry.manifest(*_repo_tag(registry, prefix, "webapp-staging"))
    assert old is not None
    c2 = bump(example_repo, "apps/webapp/staging.yaml")
    assert statuses(push(example_repo, tmp_path / "run2", prefix, c1)) == {
        "webapp-staging": "pushed"
    }
    # Someone points the tag back at the first commit's artifact.
    back = subprocess.run(
        ["flux", "tag", "artifact", f"{prefix}/webapp@{old[0]}", "--tag", "staging"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert back.returncode == 0, back.stderr
    assert held(registry, prefix, "webapp-staging") == c1
    edit(example_repo, "README.md", "notes\n")
    run = push(example_repo, tmp_path / "run3", prefix, c2)
    assert run.returncode == 0, run.stdout + run.stderr
    assert statuses(run) == {"webapp-staging": "pushed"}
    reasons = run.by_name()["webapp-staging"]["reasons"]
    assert reasons[0] == (
        f"behind: staging holds main@sha1:{c1[:7]} (2 commits back); "
        "since then: apps/webapp/staging.yaml modified"
    )
    assert "moved back by hand (Git is the source of truth)" in reasons[-1]
    assert held(registry, prefix, "webapp-staging") == example_repo.head()


def test_a_render_that_did_not_change_is_not_rendered_on_every_later_run(
    example_repo: GitRepo, registry: Registry, prefix: str, tmp_path: Path
) -> None:
    c1 = example_repo.head()
    assert push(example_repo, tmp_path / "run1", prefix, "0" * 40).returncode == 0
    # A module refactor that renders the same manifests: a comment.
    c2 = edit(
        example_repo,
        "modules/webapp/templates/service.cue",
        "// refactor: same output\n",
    )
    second = push(example_repo, tmp_path / "run2", prefix, c1)
    assert statuses(second) == dict.fromkeys(
        ("webapp-staging", "webapp-production", "platform-staging"), "unchanged"
    )
    # skip-unchanged left the tag alone
    assert held(registry, prefix, "webapp-staging") == c1
    # A third run, for a commit that touches only billing, renders only billing.
    bump(example_repo, "clusters/staging/billing.cue")
    third = push(example_repo, tmp_path / "run3", prefix, c2)
    assert third.returncode == 0, third.stdout + third.stderr
    assert statuses(third) == {"staging/billing": "pushed"}
    # And a run with no base at all (a dispatch) plans nothing for them either.
    dispatch = run_action(
        example_repo.path,
        tmp_path / "run4",
        inputs={"registry": prefix},
        event_name="workflow_dispatch",
    )
    assert dispatch.returncode == 0, dispatch.stdout + dispatch.stderr
    assert statuses(dispatch) == {}
    assert "Nothing" in dispatch.summary or "0 of 5" in dispatch.summary


def test_the_matrix_and_the_command_line_plan_from_the_tags_and_base_keeps_its_meaning(
    example_repo: GitRepo, registry: Registry, prefix: str, tmp_path: Path
) -> None:
    c1 = example_repo.head()
    assert push(example_repo, tmp_path / "run1", prefix, "0" * 40).returncode == 0
    c2 = bump(example_repo, "apps/webapp/production.yaml")  # never delivered
    c3 = bump(example_repo, "clusters/staging/billing.cue")
    plan = run_action(
        example_repo.path,
        tmp_path / "plan",
        inputs={"registry": prefix, "mode": "plan"},
        payload=payload(c2, c3),
    )
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert plan.outputs["matrix"] == (
        '{"include": [{"target": "webapp-production"}, {"target": "staging/billing"}]}'
    )
    # A matrix job restricted to one target reads only that target's tag.
    one = run_action(
        example_repo.path,
        tmp_path / "one",
        inputs={"registry": prefix, "mode": "plan", "targets": "webapp-production"},
        payload=payload(c2, c3),
    )
    assert statuses(one) == {"webapp-production": "planned"}
    # The command line without --base: exactly what the registry lacks.
    cli = run_cli(
        example_repo,
        "plan",
        "--registry",
        prefix,
        "--output-file",
        str(tmp_path / "cli.json"),
    )
    assert cli.returncode == 0, cli.stderr
    matrix = json.loads(json.loads((tmp_path / "cli.json").read_text())["matrix"])
    assert matrix == {
        "include": [{"target": "webapp-production"}, {"target": "staging/billing"}]
    }
    # An explicit base diffs from that commit only, and the summary says so.
    based = run_action(
        example_repo.path,
        tmp_path / "based",
        inputs={"registry": prefix, "mode": "plan", "base": c2},
        payload=payload(c2, c3),
    )
    assert statuses(based) == {"staging/billing": "planned"}
    assert "Diffed from the `base` input only" in based.summary
    assert c1 != c2


def test_an_instance_whose_files_were_deleted_is_removed_once(
    example_repo: GitRepo, registry: Registry, prefix: str, tmp_path: Path
) -> None:
    """Its tag still holds a commit from before the deletion: the tags must not plan it again (it
    would fail on "does not exist", on every later run)."""
    c1 = example_repo.head()
    assert push(example_repo, tmp_path / "run1", prefix, "0" * 40).returncode == 0
    example_repo.git(
        "rm",
        "-q",
        "apps/webapp/common.cue",
        "apps/webapp/staging.yaml",
        "apps/webapp/production.yaml",
    )
    example_repo.commit_all("webapp gone")
    run = push(example_repo, tmp_path / "run2", prefix, c1)
    assert run.returncode == 0, run.stdout + run.stderr
    assert [(a["name"], a["status"]) for a in run.artifacts()] == [
        ("webapp-staging", "removed"),
        ("webapp-production", "removed"),
    ]
