"""report.notice: a warning is an Actions annotation in Actions (workflow-command escaped, control
characters gone) and a `warning:` line on stderr elsewhere."""

from __future__ import annotations

import pytest

from gitops_action.inputs.context import Context
from gitops_action.report.notice import warn


def test_in_actions_an_annotation_on_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    warn(Context.from_env({"GITHUB_ACTIONS": "true"}), "50% done\x07\nnext line")
    out, err = capsys.readouterr()
    # BEL removed; % and the newline escaped so the command stays one line
    assert out == "::warning title=timoni-flux-push::50%25 done%0Anext line\n"
    assert err == ""


def test_a_forged_command_stays_inside_the_message(
    capsys: pytest.CaptureFixture[str],
) -> None:
    warn(Context.from_env({"GITHUB_ACTIONS": "true"}), "x\r\n::error::forged")
    out, _ = capsys.readouterr()
    assert out.count("\n") == 1 and "\n::error" not in out


def test_elsewhere_a_line_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    warn(Context.from_env({}), "pattern matches no file")
    out, err = capsys.readouterr()
    assert (out, err) == ("", "warning: pattern matches no file\n")
