"""Issue 3: which targets a commit affects, end to end through the action's entry point.

Real git repositories (the example GitOps tree, shallow `file://` clones of it), real event payloads
from npm `@octokit/webhooks-examples` (tests/support/payloads.py), `mode: plan` through
`cli.action_main` with GITHUB_OUTPUT in a temp file; every case checks the EXACT set of targets.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli
from support import payloads
from support.action import parse_output_file
from support.registry import Registry
from support.repos import GitRepo

from gitops_action import cli
from gitops_action.changes.events import CommitRange
from gitops_action.changes.gitrepo import ZERO_SHA, Repo
from gitops_action.plan import planner

CONFIG = ".timoni-flux.yaml"
# In the configuration's order (match instances in file order: production sorts before staging).
ALL = (
    "webapp-staging",
    "webapp-production",
    "production/billing",
    "staging/billing",
    "platform-staging",
)


def planned(*names: str) -> dict[str, str]:
    return dict.fromkeys(names, "planned")


# --- running the action the way GitHub does (in this process: fast, and the real entry point) ---


@dataclass
class Run:
    code: int
    outputs: dict[str, str]
    summary: str
    stdout: str
    stderr: str

    def artifacts(self) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = json.loads(self.outputs["artifacts"])
        return data

    def targets(self) -> dict[str, str]:
        return {a["name"]: a["status"] for a in self.artifacts()}

    def reasons(self, name: str) -> list[str]:
        return next(list(a["reasons"]) for a in self.artifacts() if a["name"] == name)

    def matrix(self) -> list[str]:
        return [m["target"] for m in json.loads(self.outputs["matrix"])["include"]]


@pytest.fixture
def action(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> Callable[..., Run]:
    def run(
        repo: GitRepo,
        event: str,
        payload: dict[str, Any],
        *,
        sha: str = "",
        inputs: dict[str, str] | None = None,
    ) -> Run:
        work = tmp_path / f"run-{len(list(tmp_path.glob('run-*')))}"
        work.mkdir()
        output, summary = work / "github_output", work / "step_summary"
        output.write_text("")
        summary.write_text("")
        for name in list(os.environ):
            if name.startswith(("GITHUB_", "INPUT_")):
                monkeypatch.delenv(name)
        # action_main adds safe.directory through GIT_CONFIG_*: let monkeypatch undo that too.
        for name in ("GIT_CONFIG_COUNT", "GIT_CONFIG_KEY_0", "GIT_CONFIG_VALUE_0"):
            monkeypatch.setenv(name, "0" if name == "GIT_CONFIG_COUNT" else "")
        env = {
            "GITHUB_ACTIONS": "true",
            "GITHUB_WORKSPACE": str(repo.path),
            "GITHUB_EVENT_NAME": event,
            "GITHUB_EVENT_PATH": str(payloads.write(payload, work / "event.json")),
            "GITHUB_SHA": sha or repo.head(),
            "GITHUB_REF_NAME": "main",
            "GITHUB_REPOSITORY": "octo-org/gitops",
            "GITHUB_OUTPUT": str(output),
            "GITHUB_STEP_SUMMARY": str(summary),
            "INPUT_MODE": "plan",
            "INPUT_COMMENT": "false",
        }
        for name, value in (inputs or {}).items():
            env[f"INPUT_{name.upper()}"] = value
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        capsys.readouterr()
        code = cli.action_main()
        captured = capsys.readouterr()
        return Run(
            code,
            parse_output_file(output.read_text()),
            summary.read_text(),
            captured.out,
            captured.err,
        )

    return run


def change(
    repo: GitRepo, edit: Callable[[GitRepo], object], message: str = "change"
) -> tuple[str, str]:
    """Commit `edit` on top of HEAD; returns (before, after)."""
    before = repo.head()
    edit(repo)
    return before, repo.commit_all(message)


def edit_config(repo: GitRepo, old: str, new: str) -> None:
    path = repo.path / CONFIG
    text = path.read_text()
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new))


def append(rel: str, text: str = "// changed\n") -> Callable[[GitRepo], None]:
    def do(repo: GitRepo) -> None:
        p = repo.path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        with p.open("a") as fh:
            fh.write(text)

    return do


def remove(*rels: str) -> Callable[[GitRepo], None]:
    def do(repo: GitRepo) -> None:
        repo.git("rm", "-q", *rels)

    return do


def rename(old: str, new: str) -> Callable[[GitRepo], None]:
    def do(repo: GitRepo) -> None:
        (repo.path / new).parent.mkdir(parents=True, exist_ok=True)
        repo.git("mv", old, new)

    return do


def both(*edits: Callable[[GitRepo], object]) -> Callable[[GitRepo], None]:
    def do(repo: GitRepo) -> None:
        for e in edits:
            e(repo)

    return do


def config_edit(old: str, new: str) -> Callable[[GitRepo], None]:
    return lambda repo: edit_config(repo, old, new)


REMOVE_BUNDLE = (
    "bundles:\n  - name: platform-staging\n    files: [bundles/platform.cue, bundles/staging.cue]\n"
    '    artifact: "{registry}/platform"\n    tags: [staging]\n'
)

# (id, edit, exact {target: status})
PUSH_CASES: list[tuple[str, Callable[[GitRepo], object], dict[str, str]]] = [
    (
        "values-file",
        append("apps/webapp/staging.yaml", "# changed\n"),
        planned("webapp-staging"),
    ),
    (
        "shared-values-file",
        append("apps/webapp/common.cue"),
        planned("webapp-staging", "webapp-production"),
    ),
    (
        "module-file",
        append("modules/webapp/templates/service.cue"),
        planned("webapp-staging", "webapp-production", "platform-staging"),
    ),
    (
        "new-module-file",
        append("modules/credentials/templates/extra.cue", "package templates\n"),
        planned("staging/billing", "production/billing", "platform-staging"),
    ),
    (
        "matched-file",
        append("clusters/staging/billing.cue"),
        planned("staging/billing"),
    ),
    ("bundle-overlay", append("bundles/staging.cue"), planned("platform-staging")),
    (
        "config-entry",
        config_edit("tags: [production, stable]", "tags: [production, stable, v2]"),
        planned("webapp-production"),
    ),
    (
        "new-matched-file",
        append("clusters/qa/billing.cue", "values: {}\n"),
        planned("qa/billing"),
    ),
    (
        "rename-is-delete-plus-add",
        rename("clusters/staging/billing.cue", "clusters/qa/billing.cue"),
        {"qa/billing": "planned", "staging/billing": "removed"},
    ),
    (
        "renamed-values-file-and-entry",
        both(
            rename("apps/webapp/staging.yaml", "apps/webapp/stage.yaml"),
            config_edit("apps/webapp/staging.yaml", "apps/webapp/stage.yaml"),
        ),
        planned("webapp-staging"),
    ),
    (
        "deleted-matched-file",
        remove("clusters/production/billing.cue"),
        {"production/billing": "removed"},
    ),
    ("removed-entry", config_edit(REMOVE_BUNDLE, ""), {"platform-staging": "removed"}),
    (
        "deleted-files-of-an-instance",
        both(
            remove("apps/webapp/production.yaml"),
            config_edit("production.yaml]", "production.yaml]  # gone"),
        ),
        planned(
            "webapp-production"
        ),  # common.cue is still there: planned, failing with a clear error
    ),
    ("unrelated-file", append("README.md", "docs\n"), {}),
]


@pytest.mark.parametrize(
    ("edit", "expected"), [c[1:] for c in PUSH_CASES], ids=[c[0] for c in PUSH_CASES]
)
def test_push_plans_exactly_the_affected_targets(
    example_repo: GitRepo,
    action: Callable[..., Run],
    edit: Callable[[GitRepo], object],
    expected: dict[str, str],
) -> None:
    before, after = change(example_repo, edit)
    run = action(example_repo, "push", payloads.push(before=before, after=after))
    assert run.code == 0, run.stderr
    assert run.targets() == expected
    assert sorted(run.matrix()) == sorted(
        n for n, s in expected.items() if s == "planned"
    )
    assert f"Changes `{before[:12]}`..`{after[:12]}`" in run.summary


def test_reasons_name_the_change(
    example_repo: GitRepo, action: Callable[..., Run]
) -> None:
    before, after = change(
        example_repo,
        both(
            rename("apps/webapp/staging.yaml", "apps/webapp/stage.yaml"),
            config_edit("apps/webapp/staging.yaml", "apps/webapp/stage.yaml"),
            append("modules/credentials/values.cue"),
            remove("clusters/production/billing.cue"),
        ),
    )
    run = action(example_repo, "push", payloads.push(before=before, after=after))
    assert run.targets() == {
        "webapp-staging": "planned",
        "staging/billing": "planned",
        "platform-staging": "planned",
        "production/billing": "removed",
    }
    assert run.reasons("webapp-staging") == [
        f"its entry in {CONFIG} changed (instances[0])",
        "apps/webapp/stage.yaml added",
    ]
    assert run.reasons("staging/billing") == [
        "module modules/credentials changed (modules/credentials/values.cue)"
    ]
    assert run.reasons("platform-staging") == [
        "module modules/credentials changed (modules/credentials/values.cue)"
    ]
    assert run.reasons("production/billing") == [
        "clusters/production/billing.cue deleted"
    ]


def test_an_instance_whose_values_file_is_gone_fails_with_a_clear_error(
    example_repo: GitRepo,
) -> None:
    before, after = change(example_repo, remove("apps/webapp/production.yaml"))
    plan = plan_between(example_repo, before, after)
    (only,) = plan.targets
    assert (only.target.id, only.status) == ("webapp-production", "planned")
    assert only.reasons == ("apps/webapp/production.yaml deleted",)
    assert only.error.startswith(
        f"apps/webapp/production.yaml does not exist (listed in {CONFIG} instances[1]"
    )


def test_a_watch_path_affects_its_target(
    example_repo: GitRepo, action: Callable[..., Run]
) -> None:
    change(
        example_repo,
        config_edit(
            "tags: [staging]\n  - name: webapp-production",
            (
                'tags: [staging]\n    watch: ["docs/**", "policies"]\n  - name: webapp-production'
            ),
        ),
    )
    before, after = change(example_repo, append("docs/deep/er/page.md", "x\n"))
    run = action(example_repo, "push", payloads.push(before=before, after=after))
    assert run.targets() == planned("webapp-staging")
    assert run.reasons("webapp-staging") == [
        "watched path docs/** changed (docs/deep/er/page.md)"
    ]
    before, after = change(example_repo, append("policies/a/b.rego", "x\n"))
    run = action(example_repo, "push", payloads.push(before=before, after=after))
    assert run.targets() == planned("webapp-staging")


ODD_CONFIG = """\
  - name: odd-values
    namespace: apps
    module: ./modules/webapp
    values: ["apps/odd dir/vålues ü.yaml", "apps/odd dir/tab\\there.cue"]
    artifact: "{registry}/odd"
    watch: ["docs/**"]
  - match: "tenants/{name}/*.cue"
    module: ./modules/webapp
    namespace: tenants
    artifact: "{registry}/tenants/{name}"
  - match: "deep/{name}/**"
    module: ./modules/webapp
    namespace: deep
    artifact: "{registry}/deep/{name}"
bundles:
  - name: odd-bundle
    files: ["bundles/odd\\nname.cue"]
    artifact: "{registry}/odd-bundle"
"""


def test_odd_file_names(example_repo: GitRepo, action: Callable[..., Run]) -> None:
    def setup(repo: GitRepo) -> None:
        edit_config(repo, "bundles:\n", ODD_CONFIG)
        repo.write("apps/odd dir/vålues ü.yaml", "values: {}\n")
        repo.write("apps/odd dir/tab\there.cue", "values: {}\n")
        repo.write("tenants/alpha/line\nbreak.cue", "values: {}\n")
        repo.write("deep/beta/one/two\nthree/values.cue", "values: {}\n")
        repo.write(
            "bundles/odd\nname.cue",
            'bundle: instances: b: module: url: "file://../modules/credentials"\n',
        )

    _, base = change(example_repo, setup, "odd names")
    ids = {t.id for t in plan_between(example_repo, base, base).config.targets}
    assert {"odd-values", "alpha", "beta", "odd-bundle"} <= ids

    cases: list[tuple[Callable[[GitRepo], object], dict[str, str]]] = [
        (append("apps/odd dir/vålues ü.yaml", "# x\n"), planned("odd-values")),
        (append("apps/odd dir/tab\there.cue"), planned("odd-values")),
        (append("tenants/alpha/line\nbreak.cue"), planned("alpha")),
        (append("deep/beta/one/two\nthree/values.cue"), planned("beta")),
        (append("docs/new\nline.md", "x\n"), planned("odd-values")),
        (
            append("tenants/gamma/\u00e9t\u00e9 \u2603.cue", "values: {}\n"),
            planned("gamma"),
        ),
        (append("bundles/odd\nname.cue"), planned("odd-bundle")),
        (
            append(
                "modules/credentials/values.cue"
            ),  # the odd bundle's file:// module (read with cat-file -z)
            planned(
                "production/billing",
                "staging/billing",
                "odd-bundle",
                "platform-staging",
            ),
        ),
        (remove("tenants/alpha/line\nbreak.cue"), {"alpha": "removed"}),
    ]
    for edit, expected in cases:
        before, after = change(example_repo, edit)
        run = action(example_repo, "push", payloads.push(before=before, after=after))
        assert run.code == 0, run.stderr
        assert run.targets() == expected, edit
    assert run.reasons("alpha") == ["tenants/alpha/line\nbreak.cue deleted"]


# --- the events ---


def test_new_branch_takes_every_target_with_the_reason(
    example_repo: GitRepo, action: Callable[..., Run]
) -> None:
    head = example_repo.head()
    run = action(
        example_repo, "push", payloads.push(before=ZERO_SHA, after=head, created=True)
    )
    assert run.targets() == planned(*ALL)
    assert run.matrix() == list(ALL)
    why = "a new branch: there is no previous commit to compare with"
    assert all(run.reasons(n) == [why] for n in ALL)
    assert f"Every target is affected: {why}." in run.summary


def forced_push_origin(tmp_path: Path, example_repo: GitRepo) -> tuple[str, str]:
    """A force push on the origin: (lost `before`, new `after`); the old commit is pruned."""
    first = example_repo.head()
    lost = change(example_repo, append("apps/webapp/staging.yaml", "# lost\n"))[1]
    example_repo.git("reset", "-q", "--hard", first)
    after = change(example_repo, append("clusters/staging/billing.cue"))[1]
    example_repo.git("reflog", "expire", "--expire=now", "--all")
    example_repo.git("gc", "-q", "--prune=now")
    return lost, after


def shallow_clone(src: GitRepo, dest: Path) -> GitRepo:
    clone = src.shallow_clone(dest)
    assert clone.git("rev-parse", "--is-shallow-repository") == "true"
    return clone


def test_forced_push_with_unfetchable_before_takes_every_target(
    example_repo: GitRepo, action: Callable[..., Run], tmp_path: Path
) -> None:
    lost, after = forced_push_origin(tmp_path, example_repo)
    clone = shallow_clone(example_repo, tmp_path / "clone")
    run = action(clone, "push", payloads.push(before=lost, after=after, forced=True))
    assert run.code == 0, run.stderr
    assert run.targets() == planned(*ALL)
    (why,) = run.reasons("webapp-staging")
    assert why.startswith(
        f"the push's `before` commit (forced push) {lost[:12]} cannot be fetched ("
    )
    assert why.endswith("): every target is affected")
    assert "Every target is affected: the push" in run.summary


def test_before_missing_from_a_shallow_clone_is_fetched_then_diffed(
    example_repo: GitRepo, action: Callable[..., Run], tmp_path: Path
) -> None:
    first = example_repo.head()
    middle = change(example_repo, append("apps/webapp/staging.yaml", "# one\n"))[1]
    after = change(example_repo, append("clusters/production/billing.cue"))[1]
    clone = shallow_clone(example_repo, tmp_path / "clone")
    assert clone.git("config", "remote.origin.url") == f"file://{example_repo.path}"
    run = action(clone, "push", payloads.push(before=first, after=after))
    assert run.code == 0, run.stderr
    assert run.targets() == planned("webapp-staging", "production/billing")
    # Fetched with --depth=1: the base commit is here now, the one in between still is not.
    assert clone.git("cat-file", "-t", first) == "commit"
    assert (
        subprocess.run(
            ["git", "-C", str(clone.path), "cat-file", "-e", middle], check=False
        ).returncode
        != 0
    )
    assert clone.git("rev-parse", "--is-shallow-repository") == "true"


def test_deleted_branch_has_nothing_to_do(
    example_repo: GitRepo, action: Callable[..., Run]
) -> None:
    head = example_repo.head()
    run = action(
        example_repo,
        "push",
        payloads.push(before=head, after=ZERO_SHA, deleted=True),
        sha=head,
    )
    assert run.code == 0, run.stderr
    assert (run.artifacts(), run.matrix()) == ([], [])
    assert (
        "Nothing to do: the push deleted the branch: nothing to build." in run.summary
    )


def test_base_equal_to_head_is_an_empty_plan_that_says_so(
    example_repo: GitRepo, action: Callable[..., Run]
) -> None:
    head = example_repo.head()
    run = action(example_repo, "push", payloads.push(before=head, after=head))
    assert (run.code, run.artifacts(), run.matrix()) == (0, [], [])
    assert f"{head[:12]} is the head commit itself: nothing changed" in run.summary
    run = action(
        example_repo,
        "workflow_dispatch",
        payloads.workflow_dispatch(),
        inputs={"base": head},
    )
    assert (run.artifacts(), run.matrix()) == ([], [])
    assert (
        f"Nothing to do: the \\`base\\` input {head[:12]} is the head commit itself"
        in run.summary
    )


def test_pull_request_compares_base_sha_with_the_merge_commit(
    example_repo: GitRepo, action: Callable[..., Run]
) -> None:
    repo = example_repo
    repo.git("checkout", "-q", "-b", "feature")
    change(repo, append("clusters/production/billing.cue"))
    repo.git("checkout", "-q", "main")
    base = change(repo, append("apps/webapp/staging.yaml", "# main moved on\n"))[1]
    # GitHub's refs/pull/N/merge: the PR merged into the base branch's tip; GITHUB_SHA points at it.
    repo.git(
        "-c",
        "user.name=GitHub",
        "-c",
        "user.email=noreply@github.com",
        "merge",
        "-q",
        "--no-ff",
        "-m",
        "Merge feature into main",
        "feature",
    )
    merge = repo.head()
    payload = payloads.pull_request(
        base_sha=base, head_sha=repo.git("rev-parse", "feature"), number=12
    )
    run = action(repo, "pull_request", payload, sha=merge)
    assert run.code == 0, run.stderr
    assert run.targets() == planned("production/billing")
    fork = action(
        repo,
        "pull_request",
        payloads.pull_request(base_sha=base, head_sha=merge, fork=True),
        sha=merge,
    )
    assert fork.targets() == planned("production/billing")


@pytest.mark.parametrize("event", ["workflow_dispatch", "schedule"])
def test_dispatch_and_schedule_take_every_target(
    example_repo: GitRepo, action: Callable[..., Run], event: str
) -> None:
    payload = (
        payloads.workflow_dispatch()
        if event == "workflow_dispatch"
        else payloads.schedule()
    )
    run = action(example_repo, event, payload)
    assert run.targets() == planned(*ALL)
    assert run.reasons("platform-staging") == [
        f"a {event} event carries no base commit"
    ]


def test_merge_group_compares_base_sha(
    example_repo: GitRepo, action: Callable[..., Run]
) -> None:
    base = example_repo.head()
    change(example_repo, append("bundles/platform.cue"))
    head = change(example_repo, append("apps/webapp/production.yaml", "# x\n"))[1]
    run = action(
        example_repo, "merge_group", payloads.merge_group(base_sha=base, head_sha=head)
    )
    assert run.targets() == planned("webapp-production", "platform-staging")


def test_base_input_overrides_the_event(
    example_repo: GitRepo, action: Callable[..., Run]
) -> None:
    first = example_repo.head()
    second = change(example_repo, append("clusters/staging/billing.cue"))[1]
    change(example_repo, append("bundles/staging.cue"))
    run = action(
        example_repo,
        "workflow_dispatch",
        payloads.workflow_dispatch(),
        inputs={"base": first},
    )
    assert run.targets() == planned("staging/billing", "platform-staging")
    push = payloads.push(before=first, after=example_repo.head())
    assert action(
        example_repo, "push", push, inputs={"base": second}
    ).targets() == planned("platform-staging")


def test_targets_input_restricts(
    example_repo: GitRepo, action: Callable[..., Run]
) -> None:
    before, after = change(example_repo, append("apps/webapp/common.cue"))
    push = payloads.push(before=before, after=after)
    run = action(example_repo, "push", push, inputs={"targets": "webapp-production"})
    assert (run.targets(), run.matrix()) == (
        planned("webapp-production"),
        ["webapp-production"],
    )
    # Naming a target the change does not affect does not build it (`all` does that).
    run = action(
        example_repo,
        "push",
        push,
        inputs={"targets": "webapp-staging, platform-staging"},
    )
    assert run.targets() == planned("webapp-staging")
    run = action(
        example_repo,
        "push",
        push,
        inputs={"targets": "platform-staging", "all": "true"},
    )
    assert run.targets() == planned("platform-staging")
    run = action(example_repo, "push", push, inputs={"targets": "webapp-prod"})
    assert run.code == 2
    # In Actions, the error is an (escaped) annotation, not a plain print.
    assert (
        "::error title=timoni-flux-push%3A configuration or usage error::" in run.stdout
    )
    assert "`targets` names unknown target(s): webapp-prod" in run.stdout
    assert (run.artifacts(), run.matrix()) == ([], [])


def catalog(registry: Registry) -> list[str]:
    status, _, body = registry.request("/v2/_catalog?n=1000", accept="application/json")
    assert status == 200
    return list(json.loads(body).get("repositories") or [])


def test_plan_mode_writes_outputs_and_builds_nothing(
    example_repo: GitRepo, action: Callable[..., Run], registry: Registry, prefix: str
) -> None:
    run = action(
        example_repo,
        "workflow_dispatch",
        payloads.workflow_dispatch(),
        inputs={"registry": prefix},
    )
    assert run.code == 0, run.stderr
    assert set(run.outputs) >= {"artifacts", "matrix", "pushed", "failed"}
    assert json.loads(run.outputs["matrix"]) == {
        "include": [{"target": n} for n in ALL]
    }
    by_name = {a["name"]: a for a in run.artifacts()}
    assert list(by_name) == list(ALL)
    # The revision a push of this plan would carry.
    assert (
        by_name["production/billing"].pop("revision")
        == f"main@sha1:{example_repo.head()}"
    )
    assert by_name["production/billing"] == {
        "name": "production/billing",
        "kind": "instance",
        "artifact": f"{prefix}/production/billing",
        "tags": ["production"],
        "digest": None,
        "url": None,
        "status": "planned",
        "error": None,
        # Issue 11: a dispatch plans from what each tag holds (here: nothing yet), not "every target".
        "reasons": ["new target: production holds nothing yet"],
        "base": None,
        "caught_up": False,
        # issue 13: every entry says whether a verified signature is on its digest
        "signed": False,
        "signature": None,
    }
    assert by_name["platform-staging"]["kind"] == "bundle"
    assert by_name["webapp-production"]["tags"] == ["production", "stable"]
    assert (run.outputs["pushed"], run.outputs["failed"]) == ("0", "0")
    repo_prefix = prefix.removeprefix(f"oci://{registry.host}/")
    assert [r for r in catalog(registry) if r.startswith(repo_prefix)] == []


def test_plan_through_the_command_line(example_repo: GitRepo, tmp_path: Path) -> None:
    before, _ = change(example_repo, append("apps/webapp/common.cue"))
    out = tmp_path / "outputs.json"
    proc = run_cli(example_repo, "plan", "--base", before, "--output-file", str(out))
    assert proc.returncode == 0, proc.stderr
    outputs = json.loads(out.read_text())
    assert json.loads(outputs["matrix"]) == {
        "include": [{"target": "webapp-staging"}, {"target": "webapp-production"}]
    }
    assert "webapp-staging: planned" in proc.stderr


# --- the planner itself (plan_repository on real repositories) ---


def plan_between(repo: GitRepo, base: str | None, head: str, **kw: Any) -> planner.Plan:
    rng = CommitRange(head=head, base=base, why_all="" if base else "test: no base")
    return planner.plan_repository(Repo(repo.path), rng, config_path=CONFIG, **kw)


def test_configuration_at_base_missing_or_invalid_takes_every_target(
    example_repo: GitRepo,
) -> None:
    first = example_repo.head()
    cfg = example_repo.path / CONFIG
    good = cfg.read_text()
    cfg.write_text(good + "bundels: []\n")
    broken = example_repo.commit_all("broken config")
    cfg.write_text(good)
    fixed = example_repo.commit_all("fixed")
    plan = plan_between(example_repo, broken, fixed)
    assert {p.target.id: p.status for p in plan.targets} == planned(*ALL)
    assert (
        plan.targets[0]
        .reasons[0]
        .startswith(f"the configuration at base {broken[:12]} was invalid (")
    )
    assert "unknown key 'bundels'" in plan.targets[0].reasons[0]

    example_repo.git("mv", CONFIG, "renamed.yaml")
    moved = example_repo.commit_all("moved")
    plan = planner.plan_repository(
        Repo(example_repo.path),
        CommitRange(head=moved, base=first),
        config_path="renamed.yaml",
    )
    assert [p.status for p in plan.targets] == ["planned"] * len(ALL)
    assert plan.targets[0].reasons == (
        f"renamed.yaml did not exist at base {first[:12]}",
    )


def test_the_planning_steps_give_the_whole_plan(example_repo: GitRepo) -> None:
    """read_commits (git) -> configs (pure) -> bundle_texts (git) -> plan (pure), as the benchmark
    times them, is plan_repository."""
    before, after = change(example_repo, append("bundles/platform.cue"))
    rng = CommitRange(head=after, base=before)
    repo = Repo(example_repo.path)
    snap = planner.read_commits(repo, rng, CONFIG)
    loaded = planner.configs(snap, rng, CONFIG, "", "")
    steps = planner.plan_snapshot(
        snap, loaded, rng, planner.bundle_texts(repo, after, loaded[0])
    )
    whole = plan_between(example_repo, before, after)
    assert (
        [p.target.id for p in steps.targets]
        == [p.target.id for p in whole.targets]
        == ["platform-staging"]
    )
