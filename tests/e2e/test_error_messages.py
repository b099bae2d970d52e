"""Issue 12, item 7: bad input gets a clear word, at the right place. Real timoni, flux, registry,
the action run as GitHub runs it; each test names what the code before the fix did."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import PR, GitRepo, run_cli
from support import payloads
from support.action import ActionRun, annotations, run_action
from support.github_api import GitHubApiServer
from support.registry import Registry

CONFIG = ".timoni-flux.yaml"


def errors(run: ActionRun) -> list[dict[str, str]]:
    return [a for a in annotations(run.stdout) if a["level"] == "error"]


def push(repo: GitRepo, tmp: Path, prefix: str, **inputs: str) -> ActionRun:
    return run_action(
        repo.path, tmp, inputs={"registry": prefix, "all": "true", **inputs}
    )


def everything_shown(run: ActionRun) -> str:
    shown = [run.outputs.get("artifacts", ""), run.summary]
    shown += [
        a["message"] + a.get("title", "") + a.get("file", "")
        for a in annotations(run.stdout)
    ]
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
    assert (
        error
        == f"timoni build failed (apps/webapp/staging.yaml:{line}): values.colour: field not allowed"
    )
    assert [(a["file"], a["line"]) for a in errors(run)] == [
        ("apps/webapp/staging.yaml", str(line))
    ]
    shown = everything_shown(run)
    assert "ERR" not in shown and "build failed:" not in shown.replace(
        "timoni build failed (", ""
    )


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
    config.write_text(
        config.read_text().replace(
            "apps/webapp/staging.yaml]", "apps/webapp/values.cue]"
        )
    )
    example_repo.commit_all("staging values in CUE")
    run = push(example_repo, tmp_path / "run", prefix, targets="webapp-staging")
    assert run.returncode == 1, run.stdout + run.stderr
    line = line_of(values, "colour")
    assert line == 6
    assert [(a["file"], a["line"]) for a in errors(run)] == [
        ("apps/webapp/values.cue", "6")
    ]
    assert (
        "values.colour: field not allowed" in run.by_name()["webapp-staging"]["error"]
    )


def test_closed_schema_error_in_a_bundle_names_instance_and_line(
    example_repo: GitRepo, prefix: str, tmp_path: Path
) -> None:
    """timoni says `build failed for webapp:` and points at the instance's merged `./values.cue`.
    Before: the bare `timoni build failed: build failed for webapp:` on the configuration's line."""
    staging = example_repo.path / "bundles/staging.cue"
    staging.write_text(
        staging.read_text().replace(
            "\t\treplicas: 2\n", '\t\treplicas: 2\n\t\tcolour: "red"\n'
        )
    )
    example_repo.commit_all("a field the webapp module does not have")
    run = push(example_repo, tmp_path / "run", prefix, targets="platform-staging")
    assert run.returncode == 1, run.stdout + run.stderr
    line = line_of(staging, "colour")
    assert run.by_name()["platform-staging"]["error"] == (
        f"timoni build failed (bundles/staging.cue:{line}): "
        "bundle.instances.webapp.values.colour: field not allowed"
    )
    assert [(a["file"], a["line"]) for a in errors(run)] == [
        ("bundles/staging.cue", str(line))
    ]


def test_no_terminal_escapes_or_log_prefixes(
    example_repo: GitRepo, prefix: str, tmp_path: Path
) -> None:
    """timoni echoes a file name as it is, escape sequences included, after its `9:06PM ERR` prefix.
    Before: the escape reached the error output, the summary and the annotation."""
    name = "apps/webapp/\x1b[31mred\x1b[0m.yaml"
    example_repo.write(name, "values:\n  replicas: [1\n")
    config = example_repo.path / CONFIG
    config.write_text(
        config.read_text().replace(
            "apps/webapp/staging.yaml]", f'"{name}"]'.replace("\x1b", "\\e")
        )
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
    assert all(
        a["file"].startswith("clusters/staging/broken") and a["line"] == str(line)
        for a in notes
    )
    for a in failed:
        assert f"<b>{a['name']}</b> · failed" in run.summary
    # Each error has three positions (issue 20): the value, the module's constraint, timoni.cue.
    assert "36 errors: GitHub shows 10 annotations per step" in run.summary


def test_html_in_ids_is_escaped_in_summary_and_comment(
    example_repo: GitRepo,
    registry: Registry,
    prefix: str,
    api: GitHubApiServer,
    tmp_path: Path,
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
        f"hostile/{hostile}/billing.cue",
        (example_repo.path / "clusters/staging/billing.cue").read_text(),
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
    assert (
        "<summary><b>&lt;img src=x onerror=alert(1)&gt;&lt;a href=https:evil&gt;/billing</b>"
        in body
    )
    assert (
        "&lt;img src=x onerror=alert\\(1\\)&gt;&lt;a href=https:evil&gt;/billing"
        in run.summary
    )
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
        (example_repo.path / "clusters/staging/billing.cue")
        .read_text()
        .replace('"billing-staging"', "42")
    )
    odd = os.fsencode(example_repo.path / "odd") + b"/b\xffd.cue"
    os.makedirs(os.fsdecode(os.path.dirname(odd)), exist_ok=True)
    Path(os.fsdecode(odd)).write_text(broken)
    example_repo.commit_all("a file name that is not UTF-8")
    run = push(example_repo, tmp_path / "run", prefix)
    assert "Traceback" not in run.stderr, run.stderr
    assert run.returncode == 1, run.stdout + run.stderr
    odd_target = next(
        a
        for a in run.artifacts()
        if a["name"].startswith("odd/") or "b\udcffd" in a["name"]
    )
    assert odd_target["status"] == "failed" and odd_target["error"]
    assert run.outputs["failed"] == "1" and "### Failed (1)" in run.summary
    assert {
        a["status"] for a in run.artifacts() if a["name"] != odd_target["name"]
    } == {"pushed"}


def test_a_matched_file_that_cannot_be_an_instance_fails_alone(
    example_repo: GitRepo, prefix: str, tmp_path: Path
) -> None:
    """Before: `Billing Notes.cue` made the whole run a configuration error (exit 2, nothing built)."""
    example_repo.write(
        "clusters/staging/Billing Notes.cue", "// notes, not an instance\n"
    )
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
    others = {
        n: a["status"]
        for n, a in targets.items()
        if n != "clusters/staging/Billing Notes.cue"
    }
    assert set(others.values()) == {"pushed"} and len(others) == 5
    assert any(a.get("file") == CONFIG for a in errors(run))


@pytest.mark.parametrize(
    ("inputs", "said"),
    [
        ({"timeout": "0s"}, "input `timeout`: '0s' leaves no time"),
        (
            {"config": "../outside.yaml"},
            "input `config`: '../outside.yaml' is outside the repository",
        ),
        (
            {"config": "/etc/passwd"},
            "input `config`: '/etc/passwd' is outside the repository",
        ),
        (
            {"revision": "{branch}@sha1:{sha}"},
            "input `revision`: unknown placeholder {branch}",
        ),
        ({"parallel": "-1"}, "input `parallel`: must not be negative"),
    ],
)
def test_impossible_inputs_exit_2_with_a_summary(
    inputs: dict[str, str],
    said: str,
    example_repo: GitRepo,
    prefix: str,
    tmp_path: Path,
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


# --- issue 20: messages that say what to do ---------------------------------------------------


def test_no_credentials_at_all_says_none_were_given(
    example_repo: GitRepo, auth_registry: Registry, tmp_path: Path
) -> None:
    """Before: "the registry refused the credentials" although none were given."""
    assert auth_registry.ca_file is not None
    run = run_action(
        example_repo.path,
        tmp_path / "run",
        inputs={
            "registry": f"oci://{auth_registry.host}/anon",
            "targets": "webapp-staging",
            "all": "true",
        },
        env={"SSL_CERT_FILE": str(auth_registry.ca_file)},
    )
    assert run.returncode == 1, run.stdout + run.stderr
    error = run.by_name()["webapp-staging"]["error"]
    assert "refused the credentials" not in error, error
    assert f"none were given for {auth_registry.host}" in error, error
    assert "set registry-username and registry-password" in error, error


def test_no_credentials_on_the_command_line_names_the_flag_and_the_variable(
    example_repo: GitRepo, auth_registry: Registry, tmp_path: Path
) -> None:
    """First hour 4.5: the command line said "set registry-username and registry-password", the
    action's input names; it takes --registry-username and REGISTRY_PASSWORD."""
    assert auth_registry.ca_file is not None
    proc = run_cli(
        example_repo,
        *("push", "--all", "--targets", "webapp-staging"),
        *(
            "--registry",
            f"oci://{auth_registry.host}/anon",
            "--summary-file",
            str(tmp_path / "s.md"),
        ),
        env={"SSL_CERT_FILE": str(auth_registry.ca_file)},
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    said = "give --registry-username and the REGISTRY_PASSWORD environment variable"
    assert said in proc.stderr, proc.stderr
    assert "set registry-username and registry-password" not in proc.stderr, proc.stderr


def test_a_typo_in_a_required_key_says_did_you_mean(
    example_repo: GitRepo, tmp_path: Path
) -> None:
    """Before: only `instances[1]: 'namespace' is a required property`, on the entry's first line."""
    config = example_repo.path / CONFIG
    text = config.read_text()
    broken = text.replace(
        "  - name: webapp-production\n    namespace: apps",
        "  - name: webapp-production\n    namesppace: apps",
    )
    assert broken != text
    config.write_text(broken)
    example_repo.commit_all("a typo")
    line = line_of(config, "namesppace:")
    proc = run_cli(example_repo, "plan", "--summary-file", str(tmp_path / "summary.md"))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert (
        f"{CONFIG}:{line}: instances[1].namesppace: unknown key 'namesppace': did you mean `namespace`?"
        in proc.stderr
    ), proc.stderr


def test_a_module_path_that_does_not_exist_is_a_configuration_error(
    example_repo: GitRepo, prefix: str, tmp_path: Path
) -> None:
    """Before: `plan` passed (exit 0) and `push` failed the target with exit 1, "not a Timoni module"."""
    config = example_repo.path / CONFIG
    text = config.read_text()
    broken = text.replace(
        "    module: ./modules/webapp\n    values: [apps/webapp/common.cue, apps/webapp/production.yaml]",
        "    module: ./modules/webap\n    values: [apps/webapp/common.cue, apps/webapp/production.yaml]",
    )
    assert broken != text
    config.write_text(broken)
    example_repo.commit_all("a wrong module path")
    line = next(
        n
        for n, t in enumerate(broken.splitlines(), 1)
        if t.strip() == "module: ./modules/webap"
    )
    planned = run_cli(
        example_repo, "plan", "--summary-file", str(tmp_path / "summary.md")
    )
    assert planned.returncode == 2, planned.stdout + planned.stderr
    said = (
        f"{CONFIG}:{line}: instances[1].module: module directory modules/webap does not exist: "
        "did you mean `./modules/webapp`?"
    )
    assert said in planned.stderr, planned.stderr
    run = push(example_repo, tmp_path / "run", prefix)
    assert run.returncode == 2, run.stdout + run.stderr
    (note,) = errors(run)
    assert (note["file"], note["line"]) == (CONFIG, str(line))
    assert run.outputs["artifacts"] == "[]"


def test_a_module_path_from_a_placeholder_fails_that_target_alone(
    example_repo: GitRepo, prefix: str, tmp_path: Path
) -> None:
    """`module: ./modules/{name}` with a file whose name is no module: that target fails (exit 1)
    with the `module:` line; the others are pushed. Before: "not a Timoni module" on the entry's line."""
    config = example_repo.path / CONFIG
    config.write_text(
        config.read_text().replace(
            "bundles:",
            '  - match: "teams/{name}.cue"\n'
            "    module: ./modules/{name}\n"
            "    namespace: teams\n"
            '    artifact: "{registry}/teams/{name}"\n'
            "bundles:",
        )
    )
    example_repo.write(
        "teams/credentials.cue",
        (example_repo.path / "clusters/staging/billing.cue").read_text(),
    )
    example_repo.write(
        "teams/payroll.cue",
        (example_repo.path / "clusters/staging/billing.cue").read_text(),
    )
    example_repo.commit_all("one module per team")
    line = line_of(config, "module: ./modules/{name}")
    run = push(example_repo, tmp_path / "run", prefix)
    assert run.returncode == 1, run.stdout + run.stderr
    statuses = {n: a["status"] for n, a in run.by_name().items()}
    assert statuses.pop("payroll") == "failed"
    assert set(statuses.values()) == {"pushed"}, statuses
    error = run.by_name()["payroll"]["error"]
    assert error == (
        f"module directory modules/payroll does not exist ({CONFIG}:{line} instances[3].module: "
        "'./modules/{name}' filled in for teams/payroll.cue)"
    ), error
    assert (CONFIG, str(line)) in [(a.get("file"), a.get("line")) for a in errors(run)]


def test_plan_says_when_no_tag_could_be_read(
    example_repo: GitRepo, tmp_path: Path
) -> None:
    """Before: exit 0, "Every target is affected: ..." and nothing saying that no tag was read."""
    summary, outputs = tmp_path / "summary.md", tmp_path / "outputs.json"
    proc = run_cli(
        example_repo,
        "plan",
        "--registry",
        "oci://127.0.0.1:9/nowhere",  # the discard port: nothing listens
        "--summary-file",
        str(summary),
        "--output-file",
        str(outputs),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    said = "5 tag(s) could not be read"
    assert f"warning: {said}" in proc.stderr, proc.stderr
    assert "every target is affected" in proc.stderr
    assert "> [!WARNING]\n> 5 tag\\(s\\) could not be read" in summary.read_text()
    assert json.loads(outputs.read_text())["tags-unread"] == "5"


def test_plan_with_tags_read_says_none_unread(
    example_repo: GitRepo, prefix: str, tmp_path: Path
) -> None:
    outputs = tmp_path / "outputs.json"
    proc = run_cli(
        example_repo, "plan", "--registry", prefix, "--output-file", str(outputs)
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "could not be read" not in proc.stderr
    assert json.loads(outputs.read_text())["tags-unread"] == "0"


def test_the_command_line_warns_about_uncommitted_edits(
    example_repo: GitRepo, tmp_path: Path
) -> None:
    """Before: the run read HEAD and said nothing about the edit on disk."""
    staging = example_repo.path / "apps/webapp/staging.yaml"
    staging.write_text(staging.read_text().replace("replicas: 1", "replicas: 5"))
    summary = tmp_path / "summary.md"
    proc = run_cli(example_repo, "plan", "--all", "--summary-file", str(summary))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    said = "the work tree differs from the commit being built"
    assert (
        f"warning: {said}" in proc.stderr and "apps/webapp/staging.yaml" in proc.stderr
    ), proc.stderr
    # first hour: stashing builds nothing
    assert "stash" not in proc.stderr, proc.stderr
    assert said in summary.read_text()
    staging.write_text(staging.read_text().replace("replicas: 5", "replicas: 1"))
    clean = run_cli(
        example_repo, "plan", "--all", "--summary-file", str(tmp_path / "clean.md")
    )
    assert said not in clean.stderr


# --- issue 20: CUE errors at the file and line that hold the value, with the whole cause ----------


def test_a_type_error_in_a_shared_values_file_lands_on_its_line(
    example_repo: GitRepo, prefix: str, tmp_path: Path
) -> None:
    """`port: 0` on line 3 of values/common.yaml, used by two instances, where the module wants
    `int & >0`. Before: each instance's own values file at line 1, and "2 errors in empty
    disjunction:" without its cause."""
    shared = example_repo.write(
        "values/common.yaml", "values:\n  replicas: 2\n  port: 0\n"
    )
    production = example_repo.path / "apps/webapp/production.yaml"
    production.write_text(production.read_text().replace("  port: 9898\n", ""))
    config = example_repo.path / CONFIG
    config.write_text(
        config.read_text().replace(
            "[apps/webapp/common.cue, ", "[apps/webapp/common.cue, values/common.yaml, "
        )
    )
    example_repo.commit_all("a shared values file")
    run = push(
        example_repo,
        tmp_path / "run",
        prefix,
        targets="webapp-staging,webapp-production",
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert line_of(shared, "port: 0") == 3
    said = (
        "values.port: 2 errors in empty disjunction: conflicting values 8080 and 0; "
        "invalid value 0 (out of bound >0)"
    )
    for name in ("webapp-staging", "webapp-production"):
        assert (
            run.by_name()[name]["error"]
            == f"timoni build failed (values/common.yaml:3): {said}"
        )
    notes = [
        (a["file"], a["line"], a["title"].replace("%3A", ":")) for a in errors(run)
    ]
    schema = line_of(example_repo.path / "modules/webapp/templates/config.cue", "port:")
    for name in ("webapp-staging", "webapp-production"):
        assert ("values/common.yaml", "3", f"{name}: timoni build failed") in notes, (
            notes
        )
        assert (
            "modules/webapp/templates/config.cue",
            str(schema),
            f"{name}: timoni build failed",
        ) in notes
    assert not [n for n in notes if n[0].startswith("apps/")], notes


def test_a_disjunction_error_keeps_its_cause(
    example_repo: GitRepo, prefix: str, tmp_path: Path
) -> None:
    """`replicas: *1 | int & >=0` given "three". Before: "values.replicas: 2 errors in empty
    disjunction:" and nothing after it."""
    staging = example_repo.path / "apps/webapp/staging.yaml"
    staging.write_text(staging.read_text().replace("replicas: 1", 'replicas: "three"'))
    example_repo.commit_all("replicas as a word")
    run = push(example_repo, tmp_path / "run", prefix, targets="webapp-staging")
    assert run.returncode == 1, run.stdout + run.stderr
    error = run.by_name()["webapp-staging"]["error"]
    line = line_of(staging, "three")
    where = f"timoni build failed (apps/webapp/staging.yaml:{line}): "
    assert error.startswith(
        where + "values.replicas: 2 errors in empty disjunction: "
    ), error
    assert 'conflicting values "three" and int' in error, error
    assert ("apps/webapp/staging.yaml", str(line)) == (
        errors(run)[0]["file"],
        errors(run)[0]["line"],
    )
    assert 'conflicting values "three" and int' in run.summary


def test_a_matched_file_that_cannot_be_an_instance_on_a_plain_push(
    example_repo: GitRepo, prefix: str, tmp_path: Path
) -> None:
    """Issue 20's `IndexError: tuple index out of range`: planning from the tags read the first tag
    of a target that has none (a matched file that cannot be an instance). Before: the whole run
    stopped on that internal error (exit 1, nothing pushed)."""
    example_repo.write(
        "clusters/staging/Billing Notes.cue", "// notes, not an instance\n"
    )
    example_repo.commit_all("notes")
    run = run_action(
        example_repo.path,
        tmp_path / "run",
        inputs={"registry": prefix},
        # a new branch: planned from the tags
        payload={"before": "0" * 40, "created": True},
    )
    assert "IndexError" not in run.stdout + run.stderr, run.stdout
    assert run.returncode == 1, run.stdout + run.stderr
    statuses = {n: a["status"] for n, a in run.by_name().items()}
    assert statuses.pop("clusters/staging/Billing Notes.cue") == "failed"
    assert set(statuses.values()) == {"pushed"} and len(statuses) == 5, statuses


# --- first hour (FIRST_HOUR.md): the cause and the file kept; a missing program said as such -----


def test_a_values_file_without_the_values_key_names_the_file_and_the_cause(
    example_repo: GitRepo, prefix: str, tmp_path: Path
) -> None:
    """timoni echoes the file as CUE (`loading values from replicas: 2 ... failed: field not found:
    values`). Before: `timoni build failed: loading values from replicas: 2`, on the configuration's
    line: no file, no cause."""
    staging = example_repo.path / "apps/webapp/staging.yaml"
    staging.write_text(
        '# staging, without the top-level key\nreplicas: 2\nmessage: "hello from staging"\n'
    )
    example_repo.commit_all("values without `values:`")
    run = push(example_repo, tmp_path / "run", prefix, targets="webapp-staging")
    assert run.returncode == 1, run.stdout + run.stderr
    error = run.by_name()["webapp-staging"]["error"]
    assert error.startswith("timoni build failed (apps/webapp/staging.yaml:1): "), error
    assert "field not found: values" in error and "top-level `values:` key" in error, (
        error
    )
    assert "replicas" not in error, error  # the file's text is named, not shown
    assert [a["file"] for a in errors(run)] == ["apps/webapp/staging.yaml"], errors(run)


def test_a_missing_timoni_says_so_not_an_internal_error(
    example_repo: GitRepo, prefix: str, tmp_path: Path
) -> None:
    """Before: `internal error: ToolMissing: timoni: not found on PATH (traceback in the log)` per
    target, and no traceback anywhere."""
    import shutil

    from conftest import ROOT

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    git = shutil.which("git")
    assert git is not None
    (bin_dir / "git").symlink_to(git)
    (bin_dir / "flux").symlink_to(ROOT / ".tools" / "bin" / "flux")
    proc = run_cli(
        example_repo,
        *("push", "--all", "--registry", prefix, "--targets", "webapp-staging"),
        *("--summary-file", str(tmp_path / "summary.md")),
        env={"PATH": str(bin_dir)},
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert (
        "timoni not found on PATH (install it: https://timoni.sh/install/"
        in proc.stderr
    ), proc.stderr
    assert (
        "internal error" not in proc.stderr and "traceback" not in proc.stderr.lower()
    ), proc.stderr
    assert "timoni not found on PATH" in (tmp_path / "summary.md").read_text()
