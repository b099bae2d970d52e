"""Issue 19, finding 7a: a secret is hidden in every form it takes on the way out. A registry
password with a backslash, a double quote and non-ASCII letters, written by a pull request into a
ConfigMap (the dry-run diff) and into a CUE conflict (CUE quotes it, escaped, in its error). Before:
only the raw form was redacted, and the escaped one reached the annotation, summary, outputs and
PR comment. Real timoni, flux, registry and git; the GitHub API is the test double."""

from __future__ import annotations

import base64
import json
import urllib.parse
from pathlib import Path

import yaml
from conftest import PR, GitRepo
from support.action import ActionRun, run_action
from support.github_api import GitHubApiServer
from test_secrets_scan import pr_payload

PASSWORD = 'Pa\\ss"wörd-☃-Hidden9'
USER = "ci-user"


def every_form(secret: str) -> dict[str, str]:
    """How the secret could show: raw, escaped by each serialiser, encoded."""
    out = {
        "raw": secret,
        "JSON": json.dumps(secret)[1:-1],
        "JSON, unicode": json.dumps(secret, ensure_ascii=False)[1:-1],
        "YAML double-quoted": yaml.safe_dump(secret, default_style='"')
        .strip()
        .removesuffix("...")[1:-1],
        "URL-encoded": urllib.parse.quote(secret, safe=""),
        "base64": base64.b64encode(secret.encode()).decode(),
        "docker auth": base64.b64encode(f"{USER}:{secret}".encode()).decode(),
    }
    return out


def shown(run: ActionRun, api: GitHubApiServer) -> str:
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


def cue_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def test_escaped_secret_hidden_everywhere(
    example_repo: GitRepo, prefix: str, api: GitHubApiServer, tmp_path: Path
) -> None:
    creds = {"registry": prefix, "registry-username": USER, "registry-password": PASSWORD,
             "github-token": "ghs_test-token"}  # fmt: skip
    deploy = run_action(
        example_repo.path, tmp_path / "deploy", inputs={**creds, "all": "true"}
    )
    assert deploy.returncode == 0, deploy.stdout + deploy.stderr
    base = example_repo.head()
    staging = example_repo.path / "apps/webapp/staging.yaml"
    yaml_value = json.dumps(PASSWORD)  # a YAML double-quoted scalar: \\ and \" escaped
    staging.write_text(staging.read_text().replace('"hello from staging"', yaml_value))
    overlay = example_repo.path / "bundles/staging.cue"
    overlay.write_text(  # conflicting values: CUE quotes both, escaped
        overlay.read_text().replace(
            "password:", f"endpoint: {cue_string(PASSWORD)}\n\t\tpassword:"
        )
    )
    head = example_repo.commit_all("a password in plain values")
    pr = run_action(example_repo.path, tmp_path / "pr", event_name="pull_request", sha=head,
                    payload=pr_payload(base, head), ref_name=f"{PR}/merge", inputs=creds,
                    env={"GITHUB_API_URL": api.base_url})  # fmt: skip
    by_name = pr.by_name()
    assert by_name["webapp-staging"]["status"] == "dry-run", pr.stdout + pr.stderr
    assert by_name["platform-staging"]["status"] == "failed"
    assert "conflicting values" in by_name["platform-staging"]["error"]
    assert "***" in by_name["platform-staging"]["error"]
    assert "message" in pr.summary and len(api.comments) == 1
    text = shown(pr, api)
    leaked = {name: form for name, form in every_form(PASSWORD).items() if form in text}
    assert not leaked, {
        k: text[max(0, text.index(v) - 60) : text.index(v) + 20]
        for k, v in leaked.items()
    }
