"""Run-level errors are caught once, in app.main: usage and configuration errors exit 2, anything
else is an internal error (exit 1). Either way the summary and the outputs are written, and no
traceback is printed. These runs stop before timoni or flux would be started."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import run_cli
from support.repos import GitRepo

from gitops_action import app, errors
from gitops_action.inputs.settings import Settings

NO_OUTPUTS = {
    "artifacts": "[]",
    "matrix": '{"include": []}',
    "pushed": "0",
    "failed": "0",
    "unchanged": "0",
    "changed": "false",
}


def files(tmp_path: Path) -> tuple[str, ...]:
    return (
        "--summary-file",
        str(tmp_path / "summary.md"),
        "--output-file",
        str(tmp_path / "out.json"),
    )


def test_git_missing_from_path_is_a_setup_error(
    example_repo: GitRepo, tmp_path: Path
) -> None:
    """A program to install, not a bug (first hour 4.11: it said "internal error")."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    proc = run_cli(example_repo, "plan", *files(tmp_path), env={"PATH": str(empty)})
    assert proc.returncode == 1, proc.stderr
    said = "git not found on PATH (install it: your system's package manager)"
    assert proc.stderr == f"error: {said}\n"
    summary = (tmp_path / "summary.md").read_text()
    escaped = said.replace("(", "\\(").replace(")", "\\)")  # the summary is Markdown
    assert (
        summary
        == f"## timoni-flux-push\n\nThe run stopped: a program it needs is missing: {escaped}\n"
    )
    assert json.loads((tmp_path / "out.json").read_text()) == NO_OUTPUTS


def test_an_export_that_fails_is_an_internal_error(
    example_repo: GitRepo, tmp_path: Path
) -> None:
    """A dirty work tree makes the run export HEAD; a blob git cannot read makes the export fail."""
    example_repo.write("docs/notes.txt", "no target reads this file\n")
    example_repo.commit_all("notes")
    blob = example_repo.git("rev-parse", "HEAD:docs/notes.txt")
    (example_repo.path / ".git/objects" / blob[:2] / blob[2:]).unlink()
    (example_repo.path / "untracked.txt").write_text("dirty\n")
    proc = run_cli(
        example_repo, "push", "--registry", "oci://127.0.0.1:9/never", *files(tmp_path)
    )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "\nerror: internal error: git archive --format=tar " in proc.stderr, (
        proc.stderr
    )
    summary = (tmp_path / "summary.md").read_text()
    assert summary.startswith(
        "## timoni-flux-push\n\nThe run stopped on an internal error: git archive"
    )
    assert json.loads((tmp_path / "out.json").read_text()) == NO_OUTPUTS


def test_a_usage_error_exits_2_and_says_nothing_was_built(
    example_repo: GitRepo, tmp_path: Path
) -> None:
    proc = run_cli(
        example_repo, "plan", "--targets", "no-such-target", *files(tmp_path)
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == "error: `targets` names unknown target(s): no-such-target\n"
    summary = (tmp_path / "summary.md").read_text()
    # escaped for markdown
    said = "\\`targets\\` names unknown target\\(s\\): no-such-target"
    assert summary == f"## timoni-flux-push\n\nNothing was built: {said}\n"


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (errors.ConfigError(".timoni-flux.yaml", "instances[0]", "bad", 3), 2),
        (errors.EventError("payload has no `after`"), 2),
        (errors.SettingsError("input `mode`: bad"), 2),
        (errors.GitError("git diff: fatal"), 1),
        (errors.ToolMissing("git: not found on PATH"), 1),
        (KeyError("a bug"), 1),
    ],
)
def test_each_kind_of_error_has_its_exit_code(
    exc: Exception,
    code: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def boom(*_: object) -> int:
        raise exc

    monkeypatch.setattr(app, "_main", boom)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    out = tmp_path / "out.json"
    settings = Settings(summary_file=str(tmp_path / "s.md"), output_file=str(out))
    assert (
        app.main(
            settings,
            {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")},
        )
        == code
    )
    assert json.loads(out.read_text()) == NO_OUTPUTS
    err = capsys.readouterr().err
    # a missing program is no bug
    bug = code == 1 and not isinstance(exc, errors.ToolMissing)
    assert err.startswith("error: internal error: " if bug else "error: ")
    assert err.startswith("error: internal error: ") is bug
    assert ("KeyError: 'a bug'" in err) is isinstance(exc, KeyError)


def _a_bug() -> int:
    return ()[0]  # type: ignore[misc]  # a real IndexError, raised where a bug would be


@pytest.mark.parametrize("in_actions", [True, False])
def test_an_internal_error_shows_its_traceback_folded(
    in_actions: bool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue 20. Before: `IndexError: tuple index out of range` and no traceback anywhere. Now the
    Actions log holds it in a collapsed group (inside stop-commands), a terminal gets it on stderr;
    the summary keeps the one line."""
    monkeypatch.setattr(app, "_main", lambda *_: _a_bug())
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    if in_actions:
        env["GITHUB_ACTIONS"] = "true"
    summary = tmp_path / "s.md"
    settings = Settings(
        summary_file=str(summary), output_file=str(tmp_path / "out.json")
    )
    assert app.main(settings, env) == 1
    out, err = capsys.readouterr()
    shown = out if in_actions else err
    assert "Traceback (most recent call last):" in shown, (out, err)
    assert "in _a_bug" in shown and "return ()[0]" in shown
    if in_actions:
        group = out.index("::group ::timoni-flux-push: internal error (traceback)")
        assert (
            out.index("::stop-commands ::", group)
            < out.index("Traceback")
            < out.index("::endgroup::")
        )
        assert (
            "::error title=timoni-flux-push%3A internal error::IndexError: tuple index out of range"
            in out
        )
    else:
        assert err.startswith(
            "error: internal error: IndexError: tuple index out of range\n"
        )
    said = summary.read_text()
    assert "IndexError: tuple index out of range" in said and "Traceback" not in said


def test_a_bug_in_one_target_puts_its_traceback_in_that_targets_log() -> None:
    """Issue 20: pipeline._guarded. Before: the error alone, no traceback in the target's log group."""
    from gitops_action.push import pipeline

    log: list[str] = []
    outcome, _ = pipeline._guarded(
        lambda: pipeline.Outcome("pushed", digest=str(_a_bug())), log
    )
    assert outcome.status == "failed"
    assert (
        outcome.error
        == "internal error: IndexError: tuple index out of range (traceback in the log)"
    )
    (entry,) = log
    assert entry.startswith(
        "internal error, traceback:\nTraceback (most recent call last):"
    )
    assert "in _a_bug" in entry


@pytest.mark.parametrize(
    ("failed", "usage", "code"),
    [(False, False, 0), (True, False, 1), (False, True, 2), (True, True, 2)],
)
def test_one_exit_code_rule_for_every_mode(
    failed: bool, usage: bool, code: int
) -> None:
    """errors.exit_code: a usage error wins over a failure, a failure over success."""
    assert errors.exit_code(failed=failed, usage=usage) == code


def test_the_guard_gives_the_steps_value_or_its_bug_as_a_failure() -> None:
    """errors.guarded, the one per-target guard (push, settle, promote): the step's value and its
    time; a bug becomes `failed`'s value of its message, its traceback in the log."""
    log: list[str] = []
    value, seconds = errors.guarded(lambda: "done", lambda error: error, log)
    assert (value, log) == ("done", []) and seconds >= 0
    said, _ = errors.guarded(
        lambda: str(_a_bug()), lambda error: f"failed: {error}", log
    )
    assert said == (
        "failed: internal error: IndexError: tuple index out of range (traceback in the log)"
    )
    (entry,) = log
    assert entry.startswith(errors.INTERNAL_TRACEBACK) and "in _a_bug" in entry
