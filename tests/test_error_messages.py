"""Issue 12, item 7: bad input gets a clear word, at the right place. Real timoni, flux, registry,
the action run as GitHub runs it; each test names what the code before the fix did."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import PR, GitRepo
from support import payloads
from support.action import ActionRun, annotations, run_action
from support.github_api import GitHubApiServer
from support.registry import Registry

CONFIG = ".timoni-flux.yaml"


def errors(run: ActionRun) -> list[dict[str, str]]:
    return [a for a in annotations(run.stdout) if a["level"] == "error"]


def push(repo: GitRepo, tmp: Path, prefix: str, **inputs: str) -> ActionRun:
    return run_action(repo.path, tmp, inputs={"registry": prefix, "all": "true", **inputs})


def everything_shown(run: ActionRun) -> str:
    shown = [run.outputs.get("artifacts", ""), run.summary]
    shown += [a["message"] + a.get("title", "") + a.get("file", "") for a in annotations(run.stdout)]
    return "\n".join(shown)


def line_of(path: Path, text: str) -> int:
    return next(n for n, t in enumerate(path.read_text().splitlines(), 1) if text in t)


def test_closed_schema_error_names_the_field_at_the_users_line(
    example_repo: GitRepo, prefix: str, tmp_path: Path
) -> None:
    """Before: the error was the bare `timoni build failed: build failed:`, annotated on the
    configuration's line."""
    staging = example_repo.path / "apps/webapp/staging.yaml"
    staging.write_text(staging.read_text() + "  colour: red\n")
    example_repo.commit_all("a field the module does not have")
    run = push(example_repo, tmp_path / "run", prefix, targets="webapp-staging")
    assert run.returncode == 1, run.stdout + run.stderr
    error = run.by_name()["webapp-staging"]["error"]
    line = line_of(staging, "colour")
    assert error == f"timoni build failed (apps/webapp/staging.yaml:{line}): values.colour: field not allowed"
    assert [(a["file"], a["line"]) for a in errors(run)] == [("apps/webapp/staging.yaml", str(line))]
    shown = everything_shown(run)
    assert "ERR" not in shown and "build failed:" not in shown.replace("timoni build failed (", "")


def test_merged_values_are_never_mapped_by_file_name(
    example_repo: GitRepo, prefix: str, tmp_path: Path
) -> None:
    """The user's file is named values.cue too: timoni's `./values.cue:3:2` is its merge, whose line
    3 is not the user's line 6. Before: annotated at apps/webapp/values.cue:3, by name."""
    values = example_repo.write(
        "apps/webapp/values.cue",
        '// Staging overrides, in CUE.\nvalues: {\n\treplicas: 1\n\tmessage:  "hi"\n\n\tcolour: "red"\n}\n',
    )
    config = example_repo.path / CONFIG
    config.write_text(config.read_text().replace("apps/webapp/staging.yaml]", "apps/webapp/values.cue]"))
    example_repo.commit_all("staging values in CUE")
    run = push(example_repo, tmp_path / "run", prefix, targets="webapp-staging")
    assert run.returncode == 1, run.stdout + run.stderr
    line = line_of(values, "colour")
    assert line == 6
    assert [(a["file"], a["line"]) for a in errors(run)] == [("apps/webapp/values.cue", "6")]
    assert "values.colour: field not allowed" in run.by_name()["webapp-staging"]["error"]


def test_closed_schema_error_in_a_bundle_names_instance_and_line(
    example_repo: GitRepo, prefix: str, tmp_path: Path
) -> None:
    """timoni says `build failed for webapp:` and points at the instance's merged `./values.cue`.
    Before: the bare `timoni build failed: build failed for webapp:` on the configuration's line."""
    staging = example_repo.path / "bundles/staging.cue"
    staging.write_text(
        staging.read_text().replace("\t\treplicas: 2\n", '\t\treplicas: 2\n\t\tcolour: "red"\n')
    )
    example_repo.commit_all("a field the webapp module does not have")
    run = push(example_repo, tmp_path / "run", prefix, targets="platform-staging")
    assert run.returncode == 1, run.stdout + run.stderr
    line = line_of(staging, "colour")
    assert run.by_name()["platform-staging"]["error"] == (
        f"timoni build failed (bundles/staging.cue:{line}): "
        "bundle.instances.webapp.values.colour: field not allowed"
    )
    assert [(a["file"], a["line"]) for a in errors(run)] == [("bundles/staging.cue", str(line))]


def test_no_terminal_escapes_or_log_prefixes(example_repo: GitRepo, prefix: str, tmp_path: Path) -> None:
    """timoni echoes a file name as it is, escape sequences included, after its `9:06PM ERR` prefix.
    Before: the escape reached the error output, the summary and the annotation."""
    name = "apps/webapp/\x1b[31mred\x1b[0m.yaml"
    example_repo.write(name, "values:\n  replicas: [1\n")
    config = example_repo.path / CONFIG
    config.write_text(
        config.read_text().replace("apps/webapp/staging.yaml]", f'"{name}"]'.replace("\x1b", "\\e"))
    )
    example_repo.commit_all("an escape in a file name")
    run = push(example_repo, tmp_path / "run", prefix, targets="webapp-staging")
    assert run.returncode == 1, run.stdout + run.stderr
    error = run.by_name()["webapp-staging"]["error"]
    assert "could not extract YAML" in error, error
    shown = everything_shown(run)
    assert "\x1b" not in shown and "\\u001b" not in shown
    assert " ERR " not in shown and "PM ERR" not in shown and "AM ERR" not in shown


def test_at_most_ten_error_annotations_and_the_summary_lists_all(
    example_repo: GitRepo, prefix: str, tmp_path: Path
) -> None:
    """Before: one annotation per error, all of them; GitHub drops those past the tenth, so which
    targets got one was left to chance."""
    billing = (example_repo.path / "clusters/staging/billing.cue").read_text()
    broken = billing.replace('username: "billing-staging"', "username: 42")
    for n in range(12):
        example_repo.write(f"clusters/staging/broken{n:02}.cue", broken)
    example_repo.commit_all("twelve broken instances")
    run = push(example_repo, tmp_path / "run", prefix)
    assert run.returncode == 1, run.stdout + run.stderr
    failed = [a for a in run.artifacts() if a["status"] == "failed"]
    assert len(failed) == 12
    notes = errors(run)
    assert len(notes) == 10
    # The most useful ten: one per failed target, each on the line of its own file.
    assert len({a["file"] for a in notes}) == 10
    line = line_of(example_repo.path / "clusters/staging/broken00.cue", "username")
    assert all(a["file"].startswith("clusters/staging/broken") and a["line"] == str(line) for a in notes)
    for a in failed:
        assert f"<b>{a['name']}</b> · failed" in run.summary
    assert "12 errors: GitHub shows 10 annotations per step" in run.summary


def test_html_in_ids_is_escaped_in_summary_and_comment(
    example_repo: GitRepo, registry: Registry, prefix: str, api: GitHubApiServer, tmp_path: Path
) -> None:
    """A directory name becomes part of a target id. Before: `<img ...>` went raw into the comment's
    <summary> (an HTML block, where a backslash escapes nothing)."""
    base = example_repo.head()
    config = example_repo.path / CONFIG
    config.write_text(
        config.read_text().replace(
            "bundles:",
            '  - match: "hostile/{label}/{name}.cue"\n'
            '    id: "{label}/{name}"\n'
            "    module: ./modules/credentials\n"
            "    namespace: hostile\n"
            '    artifact: "{registry}/hostile/{name}"\n'
            "bundles:",
        )
    )
    hostile = "<img src=x onerror=alert(1)><a href=https:evil>"
    example_repo.write(
        f"hostile/{hostile}/billing.cue", (example_repo.path / "clusters/staging/billing.cue").read_text()
    )
    head = example_repo.commit_all("a hostile directory name")
    run = run_action(
        example_repo.path,
        tmp_path / "pr",
        event_name="pull_request",
        payload=payloads.pull_request(base_sha=base, head_sha=head, number=PR),
        sha=head,
        ref_name=f"{PR}/merge",
        inputs={"registry": prefix, "github-token": "ghs_test-token"},
        env={"GITHUB_API_URL": api.base_url},
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"{hostile}/billing" in run.by_name()
    body = api.comments[0]["body"]
    for text in (body, run.summary):
        assert "<img" not in text and "<a " not in text
    # Inside <summary> (HTML) only HTML is escaped; in a table cell (Markdown) Markdown is too.
    assert "<summary><b>&lt;img src=x onerror=alert(1)&gt;&lt;a href=https:evil&gt;/billing</b>" in body
    assert "&lt;img src=x onerror=alert\\(1\\)&gt;&lt;a href=https:evil&gt;/billing" in run.summary
    assert api.rejections == []


def test_non_utf8_file_name_with_a_render_error_completes_the_run(
    example_repo: GitRepo, prefix: str, tmp_path: Path
) -> None:
    config = example_repo.path / CONFIG
    config.write_text(
        config.read_text().replace(
            "bundles:",
            '  - match: "odd/{name}.cue"\n'
            "    module: ./modules/credentials\n"
            "    namespace: odd\n"
            '    artifact: "{registry}/odd"\n'
            "bundles:",
        )
    )
    broken = (
        (example_repo.path / "clusters/staging/billing.cue").read_text().replace('"billing-staging"', "42")
    )
    odd = os.fsencode(example_repo.path / "odd") + b"/b\xffd.cue"
    os.makedirs(os.fsdecode(os.path.dirname(odd)), exist_ok=True)
    Path(os.fsdecode(odd)).write_text(broken)
    example_repo.commit_all("a file name that is not UTF-8")
    run = push(example_repo, tmp_path / "run", prefix)
    assert "Traceback" not in run.stderr, run.stderr
    assert run.returncode == 1, run.stdout + run.stderr
    odd_target = next(a for a in run.artifacts() if a["name"].startswith("odd/") or "b\udcffd" in a["name"])
    assert odd_target["status"] == "failed" and odd_target["error"]
    assert run.outputs["failed"] == "1" and "### Failed (1)" in run.summary
    assert {a["status"] for a in run.artifacts() if a["name"] != odd_target["name"]} == {"pushed"}


def test_a_matched_file_that_cannot_be_an_instance_fails_alone(
    example_repo: GitRepo, prefix: str, tmp_path: Path
) -> None:
    """Before: `Billing Notes.cue` made the whole run a configuration error (exit 2, nothing built)."""
    example_repo.write("clusters/staging/Billing Notes.cue", "// notes, not an instance\n")
    example_repo.commit_all("notes")
    run = push(example_repo, tmp_path / "run", prefix)
    assert run.returncode == 1, run.stdout + run.stderr
    targets = run.by_name()
    notes = targets["clusters/staging/Billing Notes.cue"]
    assert notes["status"] == "failed" and notes["digest"] is None
    assert notes["error"].startswith(
        "clusters/staging/Billing Notes.cue cannot be an instance of this `match`"
    )
    assert "OCI repository names must be lower case" in notes["error"]
    others = {n: a["status"] for n, a in targets.items() if n != "clusters/staging/Billing Notes.cue"}
    assert set(others.values()) == {"pushed"} and len(others) == 5
    assert any(a.get("file") == CONFIG for a in errors(run))


@pytest.mark.parametrize(
    ("inputs", "said"),
    [
        ({"timeout": "0s"}, "input `timeout`: '0s' leaves no time"),
        ({"config": "../outside.yaml"}, "input `config`: '../outside.yaml' is outside the repository"),
        ({"config": "/etc/passwd"}, "input `config`: '/etc/passwd' is outside the repository"),
        ({"revision": "{branch}@sha1:{sha}"}, "input `revision`: unknown placeholder {branch}"),
        ({"parallel": "-1"}, "input `parallel`: must not be negative"),
    ],
)
def test_impossible_inputs_exit_2_with_a_summary(
    inputs: dict[str, str], said: str, example_repo: GitRepo, prefix: str, tmp_path: Path
) -> None:
    """Before: `timeout: 0s` failed every target one by one, `config` outside the workspace read as
    a missing file, and a refused input wrote no summary and no outputs."""
    run = push(example_repo, tmp_path / "run", prefix, **inputs)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    notes = errors(run)
    assert len(notes) == 1 and notes[0]["message"].startswith(said), notes
    assert run.summary.startswith("## timoni-flux-push\n\nNothing was built: input")
    assert run.outputs["artifacts"] == "[]" and run.outputs["pushed"] == "0"
