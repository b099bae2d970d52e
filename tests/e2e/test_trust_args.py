"""Issue 12, item 4: arguments are data, not options.

`base`, the head and the event's commits reach git only when they are a commit SHA or a ref name
(`git check-ref-format` rules), and after `--end-of-options`. The attack: `base: --upload-pack=CMD`,
which `git fetch origin <base>` would run as a program.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import GitRepo, run_cli
from support.action import run_action

from gitops_action.changes.gitrepo import BadRevision, check_revision


@pytest.fixture
def clone(example_repo: GitRepo, tmp_path: Path) -> GitRepo:
    """A shallow clone with an `origin`, as actions/checkout leaves it: a missing base is fetched."""
    return example_repo.shallow_clone(tmp_path / "clone")


def test_an_option_as_base_is_a_usage_error_and_runs_nothing(
    clone: GitRepo, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    run = run_action(clone.path, tmp_path / "run", inputs={"base": f"--upload-pack=touch {marker};false",
                                                           "registry": "oci://127.0.0.1:1/x"})  # fmt: skip
    assert not marker.exists()
    assert run.returncode == 2, run.stdout + run.stderr
    assert (
        "input \\`base\\`" in run.summary
        and "neither a commit SHA nor a valid ref name" in run.summary
    )
    assert run.outputs["pushed"] == "0" and run.outputs["artifacts"] == "[]"


def test_an_option_in_the_event_payload_is_a_usage_error(
    clone: GitRepo, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    run = run_action(clone.path, tmp_path / "run", inputs={"registry": "oci://127.0.0.1:1/x"},
                     payload={"before": f"--upload-pack=touch {marker};false"})  # fmt: skip
    assert not marker.exists()
    assert run.returncode == 2, run.stdout + run.stderr
    assert "neither a commit SHA nor a valid ref name" in run.summary


def test_the_cli_refuses_an_option_as_base_or_head(
    clone: GitRepo, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    for flag in ("--base", "--head"):
        done = run_cli(clone, "plan", f"{flag}=--upload-pack=touch {marker};false")
        assert done.returncode == 2, done.stderr
        assert "neither a commit SHA nor a valid ref name" in done.stderr
    assert not marker.exists()


def test_a_ref_name_or_a_sha_still_works(clone: GitRepo, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    done = run_cli(clone, "plan", "--base", "main", "--output-file", str(out))
    assert done.returncode == 0, done.stderr
    assert "is the head commit itself: nothing changed" in done.stdout + done.stderr
    done = run_cli(
        clone, "plan", "--base", clone.head()[:12], "--output-file", str(out)
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    "bad",
    [
        "-x",
        "--upload-pack=x",
        "a..b",
        "HEAD~x",
        "~1",
        "a b",
        "x.lock",
        "a/.b",
        "a//b",
        "@",
        "a@{1}",
        "x/",
        "x.",
        "",
    ],
)
def test_check_ref_format_rules(bad: str) -> None:
    with pytest.raises(BadRevision):
        check_revision(bad, "base")


@pytest.mark.parametrize(
    "good",
    [
        "main",
        "origin/main",
        "refs/heads/feature/a-b",
        "v1.0",
        "0" * 40,
        "abc1234",
        "HEAD~2",
        "main^",
    ],
)
def test_good_names(good: str) -> None:
    assert check_revision(good, "base") == good
