"""Issue 19, finding 4: a bundle's `file://` URL is what timoni evaluates, not what a regular
expression finds in the bundle's text.

The attack: a bundle names a module of the repository whose `configmap.cue` embeds (CUE `@embed`) a
symlink to `/proc/self/environ` or `/proc/1/environ` (the entrypoint's, every input), with a URL the
text check could not see: interpolated (`"file://\\(_dir)"`), concatenated (`"fi" + "le://..."`) or
a multi-line string. Before, the module was never walked: the environment went into the dry-run
diff (summary, PR comment) or the pushed artifact. Real timoni, flux, registry and git throughout.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import PR, GitRepo
from support.action import ActionRun, run_action
from support.github_api import GitHubApiServer
from support.registry import Registry
from test_trust_env import EMBED, PASSWORD, TOKEN, everything, inputs, pr_payload

from gitops_action.config.targets import Target
from gitops_action.render import timoni

RUNTIME_TOKEN = "actions-runtime-token-value"
# The three ways to write `file://../modules/leaky` that the regular expression missed.
URLS = {
    "interpolated": '_dir: "../modules/leaky"\nbundle: instances: leak: module: url: "file://\\(_dir)"\n',
    "concatenated": 'bundle: instances: leak: module: url: "fi" + "le://../modules/leaky"\n',
    "multi-line": 'bundle: instances: leak: module: url: """\n\tfile://../modules/leaky\n\t"""\n',
}
BUNDLE = """bundle: {
	apiVersion: "v1alpha1"
	name:       "leak"
	instances: leak: {
		namespace: "leak"
		values: image: {repository: "ghcr.io/stefanprodan/podinfo", tag: "6.5.0"}
	}
}
"""
CONFIG = '  - name: leak\n    files: [bundles/leak.cue]\n    artifact: "{registry}/leak"\n    tags: [live]\n'
REFUSED = "modules/leaky/templates/env.txt resolves outside the repository (symlink): refusing to read it"
NAMED = (
    '; named by bundles/leak.cue: instance leak, module url "file://../modules/leaky"'
)


def plant(repo: GitRepo, url: str, source: str) -> None:
    """modules/leaky: the webapp module embedding `templates/env.txt` -> `source`; bundles/leak.cue
    names it with `url`; the configuration builds it."""
    leaky = repo.path / "modules/leaky"
    shutil.copytree(repo.path / "modules/webapp", leaky)
    (leaky / "templates/configmap.cue").write_text(EMBED)
    (leaky / "templates/env.txt").symlink_to(source)
    repo.write("bundles/leak.cue", BUNDLE + url)
    repo.write(
        ".timoni-flux.yaml", (repo.path / ".timoni-flux.yaml").read_text() + CONFIG
    )


def assert_refused(run: ActionRun, source: str) -> None:
    by_name = run.by_name()
    leak = by_name["leak"]
    assert leak["status"] == "failed", leak
    assert leak["error"].startswith(REFUSED) and leak["error"].endswith(NAMED), leak[
        "error"
    ]
    assert "/environ)" in leak["error"]  # where the link leads (/proc/<pid>/environ)
    # The platform bundle names clean modules, but its render could import any package of the
    # repository: no bundle is rendered while a symlink of the repository leaves it.
    platform = by_name["platform-staging"]
    assert platform["status"] == "failed" and platform["error"].startswith(REFUSED), (
        platform
    )
    assert platform["error"].endswith(
        "a bundle is not rendered while a symlink of the repository leaves it"
    )


@pytest.mark.parametrize("form", sorted(URLS))
def test_a_hidden_bundle_url_to_an_embedding_module_is_refused_in_a_pr_dry_run(
    example_repo: GitRepo,
    auth_registry: Registry,
    api: GitHubApiServer,
    tmp_path: Path,
    form: str,
) -> None:
    assert auth_registry.ca_file is not None
    registry = f"oci://{auth_registry.host}/trust-bundles-pr-{form}"
    base = example_repo.head()
    plant(example_repo, URLS[form], "/proc/self/environ")
    # two other targets in the PR
    for other in ("apps/webapp/staging.yaml", "bundles/staging.cue"):
        example_repo.write(other, (example_repo.path / other).read_text() + "\n")
    head = example_repo.commit_all(f"a bundle naming an embedding module ({form})")
    env = {"SSL_CERT_FILE": str(auth_registry.ca_file), "GITHUB_API_URL": api.base_url,
           "ACTIONS_RUNTIME_TOKEN": RUNTIME_TOKEN}  # fmt: skip
    pr = run_action(example_repo.path, tmp_path / "pr", event_name="pull_request", sha=head,
                    payload=pr_payload(base, head), ref_name=f"{PR}/merge", inputs=inputs(registry),
                    env=env)  # fmt: skip
    comments = [str(c["body"]) for c in api.comments]
    seen = everything(pr, comments)
    for secret in (PASSWORD, TOKEN, RUNTIME_TOKEN, "INPUT_", "ACTIONS_"):
        assert secret not in seen, f"{secret} is in a channel of the run"
    # timoni's own environment is allow-listed (no input in it), but it must not show up either:
    assert "KUBECONFIG=" not in seen, (
        "an environment reached the summary or the comment"
    )
    assert pr.returncode == 1, pr.stdout + pr.stderr
    assert_refused(pr, "/proc/self/environ")
    # the other targets still ran
    assert pr.by_name()["webapp-staging"]["status"] == "dry-run"
    assert (
        len(comments) == 1
        and "modules/leaky/templates/env.txt resolves outside" in comments[0]
    )


@pytest.mark.parametrize(
    ("form", "source"),
    [("interpolated", "/proc/self/environ"), ("concatenated", "/proc/self/environ"),
     ("multi-line", "/proc/1/environ")],
)  # fmt: skip
def test_a_hidden_bundle_url_to_an_embedding_module_is_not_pushed(
    example_repo: GitRepo,
    registry: Registry,
    prefix: str,
    tmp_path: Path,
    form: str,
    source: str,
) -> None:
    """(/proc/1/environ is unreadable on the test machine: there the old code failed in the build.)"""
    plant(example_repo, URLS[form], source)
    example_repo.commit_all(f"a bundle naming an embedding module ({form})")
    run = run_action(example_repo.path, tmp_path / "push", payload={"before": "0" * 40, "created": True},
                     inputs={"registry": prefix, "all": "true", "registry-username": "ci-user",
                             "registry-password": PASSWORD, "github-token": TOKEN},
                     env={"ACTIONS_RUNTIME_TOKEN": RUNTIME_TOKEN})  # fmt: skip
    seen = everything(run, [])
    for secret in (PASSWORD, TOKEN, RUNTIME_TOKEN):
        assert secret not in seen, f"{secret} is in a channel of the run"
    assert run.returncode == 1, run.stdout + run.stderr
    assert_refused(run, source)
    path = prefix.split("/", 3)[3]
    assert registry.tags(f"{path}/leak") == []  # nothing of it reached the registry
    # (a shared prefix)
    assert run.by_name()["webapp-staging"]["status"] in ("pushed", "unchanged")


@pytest.mark.parametrize("form", ["absolute", "relative", "json"])
def test_a_computed_bundle_url_outside_the_repository_is_refused(
    example_repo: GitRepo, registry: Registry, prefix: str, tmp_path: Path, form: str
) -> None:
    """A module next to the repository (a valid one, timoni would render it), named by an
    interpolated `file:///<absolute path>` or `file://../../<...>`; or by a string made by
    `json.Unmarshal`, which has no file: timoni resolves it against the repository root, not the
    bundle's directory (checked with timoni v0.31.0), so `../x` there is outside."""
    outside = tmp_path / "outside-module"
    shutil.copytree(example_repo.path / "modules/webapp", outside)
    where = {
        "absolute": str(outside),
        "relative": f"../../{outside.name}",
        "json": f"../{outside.name}",
    }[form]
    url = f'_dir: "{where}"\nbundle: instances: leak: module: url: "file://\\(_dir)"\n'
    if form == "json":
        url = f'import "encoding/json"\nbundle: instances: leak: module: url: json.Unmarshal(#""file://{where}""#)\n'
    example_repo.write("bundles/leak.cue", url + BUNDLE)
    config = example_repo.path / ".timoni-flux.yaml"
    config.write_text(config.read_text() + CONFIG)
    example_repo.commit_all(f"a bundle naming a module outside the repository ({form})")
    run = run_action(example_repo.path, tmp_path / "push", payload={"before": "0" * 40, "created": True},
                     inputs={"registry": prefix, "all": "true"})  # fmt: skip
    assert run.returncode == 1, run.stdout + run.stderr
    by_name = run.by_name()
    shown = where if form != "relative" else f"../{outside.name}"
    real = outside.resolve()
    assert by_name["leak"]["error"] == (
        f"{shown} resolves outside the repository (path): refusing to read it (bundles[1]: {real})"
        f'; named by bundles/leak.cue: instance leak, module url "file://{where}"'
    ), by_name["leak"]["error"]
    assert registry.tags(f"{prefix.split('/', 3)[3]}/leak") == []
    # (the cases share a prefix)
    assert by_name["platform-staging"]["status"] in ("pushed", "unchanged")


TRICKY = r'''bundle: {
	apiVersion: "v1alpha1"
	name:       "tricky"
	instances: {
		"web-app": {
			module: url: "file://../modules/web\u0061pp"
			namespace: "x"
			values: {
				message:  "a \"quoted\" \\(not interpolated) \t tab \u00e9 url: \"file:///etc\""
				multi:    "line one\nurl: \"file:///etc\"\n\"\"\"\n"
				replicas: *2 | int
				list: [1, "two", {url: "file:///etc"}]
			}
		}
		billing: {
			module: url: """
				file://../modules/credentials
				"""
			namespace: "x"
			values: endpoint: "https://billing.example.com"
		}
	}
}
'''


def test_the_urls_are_read_exactly_from_what_timoni_prints(
    example_repo: GitRepo, tmp_path: Path
) -> None:
    """Values full of quotes, escapes, newlines and `file://` strings; a quoted instance name."""
    example_repo.write("bundles/tricky.cue", TRICKY)
    target = Target(id="t", kind="bundle", name="t", artifact="oci://x/y", tags=("t",),
                    files=("bundles/tricky.cue",), key="bundles[1]")  # fmt: skip
    done = timoni.evaluate_bundle(target, repo_root=example_repo.path, cache_dir=tmp_path / "cache",
                                  timeout=120, runtime_from_env=False)  # fmt: skip
    assert (done.stderr, done.error) == ("", "")
    assert done.modules == (
        ("web-app", "file://../modules/webapp"),
        ("billing", "file://../modules/credentials"),
    )


def test_a_default_url_is_refused_not_guessed(
    example_repo: GitRepo, tmp_path: Path
) -> None:
    """`url: *"file://..." | string`: timoni resolves a default against its own virtual directory
    (under /tmp), not the bundle's (checked with timoni v0.31.0); the value is not a plain string."""
    example_repo.write(
        "bundles/default.cue",
        BUNDLE + 'bundle: instances: leak: module: url: *"file://../x" | string\n',
    )
    target = Target(id="t", kind="bundle", name="t", artifact="oci://x/y", tags=("t",),
                    files=("bundles/default.cue",), key="bundles[1]")  # fmt: skip
    done = timoni.evaluate_bundle(target, repo_root=example_repo.path, cache_dir=tmp_path / "cache",
                                  timeout=120, runtime_from_env=False)  # fmt: skip
    assert done.modules == () and done.error == (
        "bundles/default.cue: cannot tell which module each instance reads "
        "(bundle.instances.leak.module.url is not a plain string): refusing it"
    )


IMPORTING = """import "example.com/gitops/lib"

bundle: {
	apiVersion: "v1alpha1"
	name:       "leak"
	instances: leak: {
		module: url: "file://../modules/webapp"
		namespace: "leak"
		values: {
			image: {repository: "ghcr.io/stefanprodan/podinfo", tag: "6.5.0"}
			message: lib.leaked
		}
	}
}
"""


def test_a_bundle_importing_a_package_that_embeds_an_environment_is_not_pushed(
    example_repo: GitRepo, registry: Registry, prefix: str, tmp_path: Path
) -> None:
    """No `file://` trick at all: with a `cue.mod` at the repository root, a bundle imports any
    package of the repository, and that package embeds `lib/env.txt` -> /proc/self/environ into a
    value (timoni v0.31.0 renders it into the ConfigMap). The repository is walked before timoni
    evaluates the bundle."""
    example_repo.write(
        "cue.mod/module.cue",
        'module: "example.com/gitops@v0"\nlanguage: version: "v0.17.0"\n',
    )
    example_repo.write(
        "lib/lib.cue",
        "@extern(embed)\n\npackage lib\n\nleaked: _ @embed(file=env.txt, type=text)\n",
    )
    (example_repo.path / "lib/env.txt").symlink_to("/proc/self/environ")
    example_repo.write("bundles/leak.cue", IMPORTING)
    example_repo.write(
        ".timoni-flux.yaml",
        (example_repo.path / ".timoni-flux.yaml").read_text() + CONFIG,
    )
    example_repo.commit_all("a bundle importing an embedding package")
    run = run_action(example_repo.path, tmp_path / "push", payload={"before": "0" * 40, "created": True},
                     inputs={"registry": prefix, "all": "true", "registry-password": PASSWORD,
                             "registry-username": "ci-user"})  # fmt: skip
    assert PASSWORD not in everything(run, [])
    assert run.returncode == 1, run.stdout + run.stderr
    error = run.by_name()["leak"]["error"]
    assert error.startswith(
        "lib/env.txt resolves outside the repository (symlink): refusing to read it (bundles[1]: /proc/"
    )
    assert error.endswith(
        "; a bundle is not rendered while a symlink of the repository leaves it"
    ), error
    assert registry.tags(f"{prefix.split('/', 3)[3]}/leak") == []
    assert run.by_name()["webapp-staging"]["status"] == "pushed"
