"""Issue 7: no secret in anything the action produced during the whole test session.

Known secrets: the registry passwords the tests use, the GitHub token, and the Secret values of the
example repository. The one line allowed to carry one is `::add-mask ::VALUE`, which masks it.

What is scanned: every run of the session (tests/support/action.py keeps each `run_action` result:
stdout, stderr, summary, outputs) and every pull-request comment the GitHub API test server held
(kept here before each reset). This module's own test drives the paths most likely to leak; the
session fixture scans again at the very end, so runs of test files that come later are covered too.
"""

from __future__ import annotations

import base64
import re
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import PR, GitRepo
from support import action
from support.action import ActionRun, run_action
from support.github_api import GitHubApiServer
from support.registry import Registry

SECRETS = {
    "registry password (auth_registry)": "s3cr3t-Registry-Pa55",
    "wrong registry password (test_push)": "Wr0ng-Pa55word-Never-Printed",
    "GitHub token": "ghs_test-token",
    "billing password, production": "production-demo-password",
    "billing password, staging": "staging-demo-password",
    "billing API key, staging": "staging-demo-api-key",
    "cosign key password (test_signing)": "Cosign-Key-Pa55-Right",
    "wrong cosign key password (test_signing)": "Cosign-Key-Pa55-Wrong",
}
USER = "ci-user"
MASK = re.compile(r"^::add-mask ?::.*$", re.M)

# PR comments: the API server forgets them at each test's start; keep them first.
COMMENTS: list[str] = []
_servers: list[GitHubApiServer] = []
_reset = GitHubApiServer.reset


def _keep_comments_then_reset(self: GitHubApiServer) -> None:
    COMMENTS.extend(str(c.get("body", "")) for c in getattr(self, "comments", []))
    if self not in _servers:
        _servers.append(self)
    _reset(self)


GitHubApiServer.reset = _keep_comments_then_reset  # type: ignore[method-assign]


def forms(secret: str) -> list[str]:
    """The secret as printed, and the encodings a leak could take (base64, docker `auth`)."""
    return [secret, base64.b64encode(secret.encode()).decode(),
            base64.b64encode(f"{USER}:{secret}".encode()).decode()]  # fmt: skip


def produced() -> Iterator[tuple[str, str]]:
    for i, run in enumerate(action.PRODUCED):
        yield f"run {i} stdout", run.stdout
        yield f"run {i} stderr", run.stderr
        yield f"run {i} summary", run.summary
        for name, value in run.outputs.items():
            yield f"run {i} output {name}", value
    current = [
        str(c.get("body", "")) for s in _servers for c in getattr(s, "comments", [])
    ]
    for i, body in enumerate([*COMMENTS, *current]):
        yield f"comment {i}", body


def leaks(texts: Iterable[tuple[str, str]]) -> list[str]:
    found = []
    for where, text in texts:
        text = MASK.sub("", text)
        for name, secret in SECRETS.items():
            for form in forms(secret):
                if form in text:
                    at = text.index(form)
                    excerpt = text[max(0, at - 80) : at + len(form) + 40].replace(
                        form, "<THE SECRET>"
                    )
                    found.append(f"{name} in {where}: ...{excerpt!r}")
    return found


@pytest.fixture(scope="session")
def whole_session() -> Iterator[None]:
    """At the end of the session, after every test file: nothing anywhere."""
    yield
    found = leaks(produced())
    assert not found, "secrets leaked:\n" + "\n".join(found)


def texts_of(
    runs: Iterable[ActionRun], comments: Iterable[str] = ()
) -> list[tuple[str, str]]:
    out = []
    for i, run in enumerate(runs):
        out += [
            (f"run {i} stdout", run.stdout),
            (f"run {i} stderr", run.stderr),
            (f"run {i} summary", run.summary),
        ]
        out += [(f"run {i} output {k}", v) for k, v in run.outputs.items()]
    return out + [(f"comment {i}", c) for i, c in enumerate(comments)]


def pr_payload(base: str, head: str) -> dict[str, Any]:
    repo = {"full_name": "octo-org/gitops"}
    return {"action": "synchronize", "number": PR, "pull_request": {
        "number": PR, "base": {"sha": base, "ref": "main", "repo": repo},
        "head": {"sha": head, "ref": "feature", "repo": {**repo, "fork": False}}}}  # fmt: skip


def timoni_says(repo: GitRepo, *args: str) -> str:
    done = subprocess.run(
        ["timoni", *args], cwd=repo.path, capture_output=True, text=True, check=False
    )
    assert done.returncode == 1
    return done.stderr


def test_secrets_stay_out_of_logs_summaries_outputs_and_comments(
    whole_session: None,
    example_repo: GitRepo,
    auth_registry: Registry,
    api: GitHubApiServer,
    tmp_path: Path,
) -> None:
    assert auth_registry.ca_file is not None and auth_registry.auth is not None
    password = auth_registry.auth[1]
    registry = f"oci://{auth_registry.host}/secrets"
    env = {"SSL_CERT_FILE": str(auth_registry.ca_file)}
    creds = {
        "registry": registry,
        "registry-username": USER,
        "github-token": SECRETS["GitHub token"],
    }
    runs: list[ActionRun] = []

    def push(name: str, **inputs: str) -> ActionRun:
        run = run_action(example_repo.path, tmp_path / name, inputs={**creds, **inputs},
                         payload={"before": "0" * 40, "created": True}, env=env)  # fmt: skip
        runs.append(run)
        return run

    # Refused credentials, then good ones: every target, Secrets included, pushed.
    wrong = push("wrong", **{"registry-password": SECRETS["wrong registry password (test_push)"]},
                 targets="staging/billing")  # fmt: skip
    assert wrong.by_name()["staging/billing"]["error"].startswith(
        "the registry refused the credentials"
    )
    good = push("good", **{"registry-password": password})
    assert good.returncode == 0 and good.outputs["pushed"] == "5", (
        good.stdout + good.stderr
    )
    deployed = example_repo.head()

    # A CUE syntax error in a file full of secrets: timoni echoes the whole file.
    billing = example_repo.path / "clusters/staging/billing.cue"
    billing.write_text(
        billing.read_text().replace(
            'username: "billing-staging"', 'username: "billing-staging" +'
        )
    )
    example_repo.commit_all("syntax error next to the secrets")
    assert SECRETS["billing password, staging"] in timoni_says(
        example_repo,
        "build",
        "billing",
        "./modules/credentials",
        "-n",
        "staging",
        "-f",
        "clusters/staging/billing.cue",
    )
    syntax = push(
        "syntax", **{"registry-password": password}, targets="staging/billing"
    )
    assert syntax.by_name()["staging/billing"]["status"] == "failed"
    assert (
        "clusters/staging/billing.cue" in syntax.by_name()["staging/billing"]["error"]
    )
    example_repo.git("revert", "--no-edit", "HEAD")

    # Two bundle files give the password different values: CUE quotes both in its error.
    platform = example_repo.path / "bundles/platform.cue"
    platform.write_text(
        platform.read_text().replace(
            'values: endpoint: "https://billing.example.com"',
            'values: {\n\t\t\t\tendpoint: "https://billing.example.com"\n'
            '\t\t\t\tpassword: "platform-default-pw"\n\t\t\t}',
        )
    )
    example_repo.commit_all("conflicting passwords")
    said = timoni_says(
        example_repo,
        "bundle",
        "build",
        "-f",
        "bundles/platform.cue",
        "-f",
        "bundles/staging.cue",
    )
    assert "conflicting values" in said and SECRETS["billing password, staging"] in said
    conflict = push(
        "conflict", **{"registry-password": password}, targets="platform-staging"
    )
    err = conflict.by_name()["platform-staging"]["error"]
    assert conflict.by_name()["platform-staging"]["status"] == "failed"
    assert "values.password: conflicting values" in err and "***" in err, err
    example_repo.git("revert", "--no-edit", "HEAD")

    # A pull request rotating the secrets: the dry-run diff, the summary and the PR comment.
    for name in ("staging", "production"):
        path = example_repo.path / f"clusters/{name}/billing.cue"
        path.write_text(
            path.read_text().replace(
                f"{name}-demo-password", f"rotated-{name}-demo-password"
            )
        )
    example_repo.commit_all("rotate")
    head = example_repo.head()
    pr = run_action(example_repo.path, tmp_path / "pr", event_name="pull_request",
                    payload=pr_payload(deployed, head), sha=head, ref_name=f"{PR}/merge",
                    inputs={**creds, "registry-password": password},
                    env={**env, "GITHUB_API_URL": api.base_url})  # fmt: skip
    runs.append(pr)
    assert pr.returncode == 0, pr.stdout + pr.stderr
    assert {a["name"]: a["status"] for a in pr.artifacts()} == {
        "staging/billing": "dry-run", "production/billing": "dry-run"}  # fmt: skip
    assert (
        len(api.comments) == 1
        and "password: <hidden> (changed)" in api.comments[0]["body"]
    )

    # Each secret this test passed really was masked, and nothing leaked anywhere.
    for run, secret in (
        (wrong, SECRETS["wrong registry password (test_push)"]),
        (good, password),
    ):
        assert (
            run.stdout.startswith(f"::add-mask ::{secret}\n")
            or f"::add-mask ::{secret}\n" in run.stdout
        )
    found = leaks(texts_of(runs, [c["body"] for c in api.comments]))
    assert not found, "\n".join(found)


def test_everything_the_session_produced_so_far_is_clean(whole_session: None) -> None:
    """Runs of every test file collected before this one (the fixture checks the rest at the end)."""
    assert len(action.PRODUCED) >= 5
    found = leaks(produced())
    assert not found, "secrets leaked:\n" + "\n".join(found)


def test_the_scan_finds_a_leak() -> None:
    """The scan itself can fail: a secret anywhere but the mask line is reported, in any form."""
    secret = SECRETS["billing API key, staging"]
    assert leaks([("mask", f"::add-mask ::{secret}\nok")]) == []
    assert leaks([("plain", f"error: {secret}")])
    assert leaks([("base64", base64.b64encode(secret.encode()).decode())])
    assert leaks(
        [("docker auth", base64.b64encode(f"{USER}:{secret}".encode()).decode())]
    )


def test_known_secrets_are_redacted_from_the_diff_the_comment_and_the_annotations(
    whole_session: None,
    example_repo: GitRepo,
    auth_registry: Registry,
    api: GitHubApiServer,
    tmp_path: Path,
) -> None:
    """Issue 12: defence in depth. A pull request that writes the registry password, its docker `auth`
    form and the GitHub token into plain (non-Secret) values: the diff would show them in clear, and
    CUE quotes a bad value in its error (an annotation). Every channel carries *** instead."""
    assert auth_registry.ca_file is not None and auth_registry.auth is not None
    password = auth_registry.auth[1]
    registry = f"oci://{auth_registry.host}/redacted"
    env = {"SSL_CERT_FILE": str(auth_registry.ca_file), "GITHUB_API_URL": api.base_url}
    creds = {"registry": registry, "registry-username": USER, "registry-password": password,
             "github-token": SECRETS["GitHub token"]}  # fmt: skip
    deploy = run_action(
        example_repo.path, tmp_path / "deploy", inputs={**creds, "all": "true"}, env=env
    )
    assert deploy.returncode == 0, deploy.stdout + deploy.stderr
    base = example_repo.head()
    auth = base64.b64encode(f"{USER}:{password}".encode()).decode()
    for name, value in (("staging", password), ("production", auth)):
        path = example_repo.path / f"apps/webapp/{name}.yaml"
        path.write_text(
            path.read_text().replace(
                f'message: "hello from {name}"', f'message: "{value}"'
            )
        )
    overlay = example_repo.path / "bundles/staging.cue"
    overlay.write_text(  # conflicting values: CUE quotes both
        overlay.read_text().replace(
            "password:", f'endpoint: "{SECRETS["GitHub token"]}"\n\t\tpassword:'
        )
    )
    head = example_repo.commit_all("secrets in plain values")
    pr = run_action(example_repo.path, tmp_path / "pr", event_name="pull_request", sha=head,
                    payload=pr_payload(base, head), ref_name=f"{PR}/merge", inputs=creds,
                    env=env)  # fmt: skip
    by_name = pr.by_name()
    assert (
        by_name["webapp-staging"]["status"] == "dry-run"
        and by_name["platform-staging"]["status"] == "failed"
    )
    assert (
        '+  message: "***"' in pr.summary
        or "+  message: '***'" in pr.summary
        or "message: ***" in pr.summary
    ), pr.summary
    assert len(api.comments) == 1 and "***" in api.comments[0]["body"]
    errors = [a for a in action.annotations(pr.stdout) if a["level"] == "error"]
    assert any("***" in a["message"] for a in errors), str(errors)
    found = leaks(texts_of([pr], [c["body"] for c in api.comments]))
    assert not found, "\n".join(found)
