"""report.finish: `scrub`, the last defence: no known secret in a result's error, log lines or
annotations, whatever form it took on the way; and the report of a run that stopped (exit code,
annotation, summary, outputs, a bug's traceback that can issue no workflow command)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from gitops_action.config.model import Target
from gitops_action.errors import (
    EXIT_FAILED,
    EXIT_USAGE,
    ConfigError,
    ToolMissing,
    UsageError,
)
from gitops_action.inputs.context import Context
from gitops_action.push.results import Annotation, TargetResult
from gitops_action.report.finish import NO_ARTIFACTS, Reporting, scrub, stopped

SECRET = "s3cr3t-Registry-Pa55"
WEB = Target("web", "instance", "web", "oci://r.io/web", ("latest",), ())


def test_scrub_every_shown_field() -> None:
    encoded = base64.b64encode(SECRET.encode()).decode()
    result = TargetResult(
        WEB,
        "failed",
        revision=f"main@{SECRET}",  # not shown as text by the reports: left as it is
        error=f"login with {SECRET} refused",
        log=[f"flux: {encoded}", "plain line"],
        annotations=[Annotation("a.cue", 3, 1, f"value {SECRET!r}")],
    )
    [clean] = scrub([result], [SECRET])
    assert clean.error == "login with *** refused"
    assert clean.log == ["flux: ***", "plain line"]
    assert clean.annotations == [Annotation("a.cue", 3, 1, "value '***'")]
    assert clean.target == WEB and clean.status == "failed"
    # the input is left as it was (results are shared with whoever holds them)
    assert result.error == f"login with {SECRET} refused"


def test_scrub_without_an_error_or_secrets() -> None:
    result = TargetResult(WEB, "pushed", log=["ok"])
    assert scrub([result], [SECRET]) == [result]
    assert scrub([result], []) == [result]
    assert scrub([], [SECRET]) == []


# --- a run that stopped ---


@pytest.fixture
def to(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Reporting:
    for name in ("GITHUB_STEP_SUMMARY", "GITHUB_OUTPUT"):
        monkeypatch.delenv(name, raising=False)
    return Reporting(
        secrets=(SECRET,),
        summary_file=str(tmp_path / "summary.md"),
        output_file=str(tmp_path / "outputs.json"),
    )


def test_a_usage_error_exits_2_and_says_nothing_was_built(
    to: Reporting, capsys: pytest.CaptureFixture[str]
) -> None:
    code = stopped(to, Context.from_env({}), UsageError(f"bad password {SECRET}"))
    assert code == EXIT_USAGE
    out, err = capsys.readouterr()
    assert err == "error: bad password ***\n" and out == ""
    assert Path(to.summary_file).read_text() == (
        "## timoni-flux-push\n\nNothing was built: bad password \\*\\*\\*\n"
    )
    assert json.loads(Path(to.output_file).read_text()) == NO_ARTIFACTS


def test_a_configuration_error_is_annotated_at_its_line(
    to: Reporting, capsys: pytest.CaptureFixture[str]
) -> None:
    exc = ConfigError("c.yaml", "instances[0].name", "not valid", 4)
    code = stopped(to, Context.from_env({"GITHUB_ACTIONS": "true"}), exc)
    assert code == EXIT_USAGE
    out, _ = capsys.readouterr()
    assert out == (
        "::error title=timoni-flux-push%3A configuration or usage error,file=c.yaml,line=4::"
        "c.yaml:4: instances[0].name: not valid\n"
    )


def test_a_missing_program_is_a_setup_error_without_traceback(
    to: Reporting, capsys: pytest.CaptureFixture[str]
) -> None:
    code = stopped(to, Context.from_env({}), ToolMissing("timoni is not installed"))
    assert code == EXIT_FAILED
    _, err = capsys.readouterr()
    assert err == "error: timoni is not installed\n"
    assert (
        "The run stopped: a program it needs is missing"
        in Path(to.summary_file).read_text()
    )


def raised(exc: Exception) -> Exception:
    try:
        raise exc
    except Exception as caught:
        return caught


def test_an_internal_error_shows_its_traceback_without_secrets(
    to: Reporting, capsys: pytest.CaptureFixture[str]
) -> None:
    exc = raised(KeyError(f"key {SECRET}"))
    assert stopped(to, Context.from_env({}), exc) == EXIT_FAILED
    _, err = capsys.readouterr()
    first, *rest = err.splitlines()
    assert first == "error: internal error: KeyError: 'key ***'"
    assert rest[0] == "Traceback (most recent call last):" and SECRET not in err
    assert "The run stopped on an internal error" in Path(to.summary_file).read_text()


def test_an_internal_errors_traceback_in_actions_cannot_issue_commands(
    to: Reporting, capsys: pytest.CaptureFixture[str]
) -> None:
    exc = raised(RuntimeError("line one\n::set-output name=x::y"))
    stopped(to, Context.from_env({"GITHUB_ACTIONS": "true"}), exc)
    out, _ = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].startswith(
        "::error title=timoni-flux-push%3A internal error::RuntimeError"
    )
    # the escaped annotation keeps the message on one line
    assert lines[0].endswith("line one%0A::set-output name=x::y")
    # (github_action_utils writes a command without properties as `::name ::value`)
    assert lines[1] == "::group ::timoni-flux-push: internal error (traceback)"
    stop = lines[2]
    assert stop.startswith("::stop-commands ::stop-")
    token = stop.removeprefix("::stop-commands ::")
    # the forged command sits between stop-commands and its end
    forged = lines.index("::set-output name=x::y")
    assert 2 < forged < lines.index(f"::{token}::")
    assert lines[-1] == "::endgroup::"
