"""Issue 5: the pull-request dry run with real timoni, flux and registry, and the OpenAPI-checked
GitHub API test server holding the PR comment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conftest import PR, GitRepo, run_cli
from support.action import ActionRun, annotations, run_action
from support.github_api import GitHubApiServer
from support.registry import Registry

from gitops_action.report.comment import COMMENT_LIMIT

SECRET = "staging-demo-password"
TOKEN = "ghs_test-token"


def pr_payload(base: str, head: str, *, fork: bool = False) -> dict[str, Any]:
    head_repo = "someone/gitops-fork" if fork else "octo-org/gitops"
    return {
        "action": "synchronize",
        "number": PR,
        "pull_request": {
            "number": PR,
            "base": {
                "sha": base,
                "ref": "main",
                "repo": {"full_name": "octo-org/gitops"},
            },
            "head": {
                "sha": head,
                "ref": "feature",
                "repo": {"full_name": head_repo, "fork": fork},
            },
        },
        "repository": {"full_name": "octo-org/gitops"},
    }


def dry_run(
    repo: GitRepo,
    tmp: Path,
    prefix: str,
    api: GitHubApiServer,
    base: str,
    **inputs: str,
) -> ActionRun:
    return run_action(
        repo.path,
        tmp,
        event_name="pull_request",
        payload=pr_payload(base, repo.head()),
        sha=repo.head(),
        ref_name=f"{PR}/merge",
        inputs={"registry": prefix, "github-token": TOKEN, **inputs},
        env={"GITHUB_API_URL": api.base_url},
    )


def deploy(repo: GitRepo, tmp: Path, prefix: str) -> None:
    run = run_action(repo.path, tmp, inputs={"registry": prefix, "all": "true"})
    assert run.returncode == 0, run.stdout + run.stderr


def everything(run: ActionRun, api: GitHubApiServer) -> str:
    # `::add-mask ::SECRET` is how a secret is masked: the one line allowed to name it.
    stdout = "\n".join(
        ln for ln in run.stdout.splitlines() if not ln.startswith("::add-mask ::")
    )
    return "\n".join(
        [
            stdout,
            run.stderr,
            run.summary,
            *run.outputs.values(),
            *(c["body"] for c in api.comments),
        ]
    )


def test_comment_created_then_edited_and_secrets_hidden(
    example_repo: GitRepo,
    registry: Registry,
    prefix: str,
    api: GitHubApiServer,
    tmp_path: Path,
) -> None:
    deploy(example_repo, tmp_path / "deploy", prefix)
    base = example_repo.head()
    staging = example_repo.path / "apps/webapp/staging.yaml"
    staging.write_text(staging.read_text().replace("replicas: 1", "replicas: 5"))
    billing = example_repo.path / "clusters/staging/billing.cue"
    billing.write_text(billing.read_text().replace(SECRET, "rotated-" + SECRET))
    example_repo.commit_all("scale and rotate")

    first = dry_run(example_repo, tmp_path / "pr1", prefix, api, base)
    assert first.returncode == 0, first.stdout + first.stderr
    arts = first.by_name()
    assert set(arts) == {"webapp-staging", "staging/billing"}
    assert {a["status"] for a in arts.values()} == {"dry-run"}
    assert arts["webapp-staging"]["changed"] is True
    assert arts["webapp-staging"]["changes"] == {"added": 0, "changed": 1, "removed": 0}
    assert first.outputs["changed"] == "true" and first.outputs["pushed"] == "0"
    assert len(api.comments) == 1
    body = api.comments[0]["body"]
    assert body.startswith("<!-- timoni-flux-push: .timoni-flux.yaml -->")
    assert "-  replicas: 1" in body and "+  replicas: 5" in body
    assert "password: <hidden> (changed)" in body  # which key changed, never its value
    assert "replicas: 5" in first.summary
    # Nothing pushed: the tag still holds the deployed revision.
    for a in arts.values():
        assert registry.revision(
            a["artifact"].removeprefix(f"oci://{registry.host}/"), a["tags"][0]
        ) != (f"main@sha1:{example_repo.head()}")
    for secret in (SECRET, "rotated-" + SECRET, "staging-demo-api-key", TOKEN):
        assert secret not in everything(first, api)

    # A second push to the PR: the same comment is edited, not a new one.
    staging.write_text(staging.read_text().replace("replicas: 5", "replicas: 6"))
    example_repo.commit_all("scale more")
    second = dry_run(example_repo, tmp_path / "pr2", prefix, api, base)
    assert second.returncode == 0
    assert len(api.comments) == 1
    assert "+  replicas: 6" in api.comments[0]["body"]
    assert [r["method"] for r in api.requests].count("PATCH") == 1
    assert api.rejections == []


def test_no_change_is_one_line(
    example_repo: GitRepo,
    registry: Registry,
    prefix: str,
    api: GitHubApiServer,
    tmp_path: Path,
) -> None:
    deploy(example_repo, tmp_path / "deploy", prefix)
    base = example_repo.head()
    staging = example_repo.path / "apps/webapp/staging.yaml"
    staging.write_text("# formatting only\n" + staging.read_text())
    example_repo.commit_all("comment")
    run = dry_run(example_repo, tmp_path / "pr", prefix, api, base)
    assert run.returncode == 0
    assert run.outputs["changed"] == "false"
    body = api.comments[0]["body"]
    assert (
        "dry run: no changes" in body
        and "1 target(s) render exactly what is deployed" in body
    )
    assert len(body.splitlines()) <= 4
    assert api.rejections == []


BULK_MODULE = {
    "modules/bulk/cue.mod/module.cue": 'module: "timoni.sh/bulk"\nlanguage: version: "v0.9.0"\n',
    "modules/bulk/values.cue": "package main\n\nvalues: count: 1\n",
    "modules/bulk/timoni.cue": """// bulk: renders `count` ConfigMaps (a test module for oversized diffs).
package main

import "list"

values: {
\tcount: int & >=0
\tsalt:  *"" | string
}

timoni: {
\tapiVersion: "v1alpha1"
\tinstance: {
\t\tname:      string @tag(name)
\t\tnamespace: string @tag(namespace)
\t}
\tapply: app: [for i in list.Range(0, values.count, 1) {
\t\tapiVersion: "v1"
\t\tkind:       "ConfigMap"
\t\tmetadata: {name: "\\(instance.name)-\\(i)", namespace: instance.namespace}
\t\tdata: {index: "\\(i)", salt: values.salt}
\t}]
}
""",
}


def test_oversized_diff_fits_the_comment(
    example_repo: GitRepo,
    registry: Registry,
    prefix: str,
    api: GitHubApiServer,
    tmp_path: Path,
) -> None:
    for rel, text in BULK_MODULE.items():
        example_repo.write(rel, text)
    example_repo.write("apps/bulk/values.cue", 'values: {count: 2000, salt: "a"}\n')
    cfg = example_repo.path / ".timoni-flux.yaml"
    cfg.write_text(
        cfg.read_text().replace(
            "instances:\n",
            "instances:\n  - name: bulk\n    namespace: bulk\n"
            "    module: ./modules/bulk\n    values: [apps/bulk/values.cue]\n",
            1,
        )
    )
    example_repo.commit_all("bulk target")
    deploy(example_repo, tmp_path / "deploy", prefix)
    base = example_repo.head()
    example_repo.write("apps/bulk/values.cue", 'values: {count: 2000, salt: "b"}\n')
    staging = example_repo.path / "apps/webapp/staging.yaml"
    staging.write_text(staging.read_text().replace("replicas: 1", "replicas: 2"))
    example_repo.commit_all("2000 objects change, and a small change")
    run = dry_run(example_repo, tmp_path / "pr", prefix, api, base)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert run.by_name()["bulk"]["changes"] == {
        "added": 0,
        "changed": 2000,
        "removed": 0,
    }
    body = api.comments[0]["body"]
    assert len(body) <= COMMENT_LIMIT
    # The huge target is folded into one line; the small one keeps its whole diff.
    assert (
        "**bulk** · changed: 0 added, 2000 changed, 0 removed object(s): diff too large for this comment"
    ) in body
    assert "+  replicas: 2" in body
    assert body.count("<details>") == body.count("</details>")
    assert len([ln for ln in body.splitlines() if ln.startswith("```")]) % 2 == 0
    assert (
        "[Full diff in the job summary](https://github.com/octo-org/gitops/actions/runs/4242)"
        in body
    )
    # The summary holds the full diff.
    assert len(run.summary) > COMMENT_LIMIT
    assert "rendered/ConfigMap bulk/bulk-1999" in run.summary
    assert api.rejections == []


def test_forbidden_comment_is_a_warning(
    example_repo: GitRepo,
    registry: Registry,
    prefix: str,
    api: GitHubApiServer,
    tmp_path: Path,
) -> None:
    base = example_repo.head()
    staging = example_repo.path / "apps/webapp/staging.yaml"
    staging.write_text(staging.read_text().replace("replicas: 1", "replicas: 2"))
    example_repo.commit_all("scale")
    api.forbid_writes = True
    run = dry_run(example_repo, tmp_path / "pr", prefix, api, base)
    assert run.returncode == 0, run.stdout + run.stderr
    warnings = [a for a in annotations(run.stdout) if a["level"] == "warning"]
    assert any("pull-requests: write" in w["message"] for w in warnings), run.stdout
    assert "replicas: 2" in run.summary
    assert api.comments == []
    assert api.rejections == []


def outside_fences(markdown: str) -> str:
    """The markdown with fenced code blocks removed (CommonMark: a fence closes with a run of at
    least as many backticks)."""
    out, fence = [], ""
    for line in markdown.splitlines():
        stripped = line.lstrip()
        run = len(stripped) - len(stripped.lstrip("`"))
        if not fence and run >= 3:
            fence = "`" * run
        elif fence and run >= len(fence) and not stripped.strip("`"):
            fence = ""
        elif not fence:
            out.append(line)
    assert not fence, "a code fence was left open"
    return "\n".join(out)


def test_hostile_values_render_harmlessly(
    example_repo: GitRepo,
    registry: Registry,
    prefix: str,
    api: GitHubApiServer,
    tmp_path: Path,
) -> None:
    deploy(example_repo, tmp_path / "deploy", prefix)
    base = example_repo.head()
    hostile = "</details> ``` ::error::owned %0A::add-mask::x <!-- [x](javascript:alert(1)) | pipe"
    staging = example_repo.path / "apps/webapp/staging.yaml"
    staging.write_text(
        staging.read_text().replace(
            'message: "hello from staging"', f"message: {hostile!r}"
        )
    )
    # an untrusted file name too
    example_repo.write("apps/webapp/`odd` <name>.yaml", "values: {}\n")
    example_repo.commit_all("hostile message")
    run = dry_run(example_repo, tmp_path / "pr", prefix, api, base)
    assert run.returncode == 0, run.stdout + run.stderr
    # No workflow command came from the values.
    assert "::error::owned" not in run.stdout
    assert not [a for a in annotations(run.stdout) if "owned" in a["message"]]
    body = api.comments[0]["body"]
    assert "owned" in body  # it is shown...
    prose = outside_fences(body)
    # ...but only inside a code block
    assert "owned" not in prose and "javascript:" not in prose
    assert prose.count("<details>") == prose.count("</details>")
    assert "````diff" in body  # a fence longer than the hostile ``` run
    assert api.rejections == []


def test_render_error_is_annotated_in_dry_run(
    example_repo: GitRepo,
    registry: Registry,
    prefix: str,
    api: GitHubApiServer,
    tmp_path: Path,
) -> None:
    base = example_repo.head()
    billing = example_repo.path / "clusters/staging/billing.cue"
    billing.write_text(
        billing.read_text().replace('username: "billing-staging"', "username: 42")
    )
    example_repo.commit_all("bad type")
    run = dry_run(example_repo, tmp_path / "pr", prefix, api, base)
    assert run.returncode == 1
    line = next(
        n for n, t in enumerate(billing.read_text().splitlines(), 1) if "username" in t
    )
    files = [
        (a.get("file"), a.get("line"))
        for a in annotations(run.stdout)
        if a["level"] == "error"
    ]
    assert ("clusters/staging/billing.cue", str(line)) in files, run.stdout
    assert SECRET not in everything(run, api)


def test_the_command_line_writes_the_comment_to_a_file(
    example_repo: GitRepo, registry: Registry, prefix: str, tmp_path: Path
) -> None:
    """Any CI (or a look before opening the PR): `dry-run --comment-file` writes the comment's
    Markdown, no token and no GitHub API needed; Secret values stay hidden as in the PR comment."""
    deploy(example_repo, tmp_path / "deploy", prefix)
    base = example_repo.head()
    staging = example_repo.path / "apps/webapp/staging.yaml"
    staging.write_text(staging.read_text().replace("replicas: 1", "replicas: 5"))
    billing = example_repo.path / "clusters/staging/billing.cue"
    billing.write_text(billing.read_text().replace(SECRET, "rotated-" + SECRET))
    example_repo.commit_all("scale and rotate")
    comment = tmp_path / "comment.md"
    out = run_cli(
        example_repo,
        "dry-run",
        "--registry",
        prefix,
        "--base",
        base,
        "--comment-file",
        str(comment),
    )
    assert out.returncode == 0, out.stderr
    assert "] webapp-staging: dry-run: 0 added, 1 changed, 0 removed (" in out.stderr
    body = comment.read_text()
    assert body.startswith("<!-- timoni-flux-push: .timoni-flux.yaml -->")
    assert "webapp-staging" in body and "staging/billing" in body and "replicas" in body
    assert SECRET not in body
    assert "webapp-production" not in body  # not affected: not in the comment
