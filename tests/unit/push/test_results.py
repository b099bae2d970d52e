"""push.results: the run's exit code follows its targets (1 when any failed, whatever the others
did), and a result's URL names its digest."""

from __future__ import annotations

import pytest

from gitops_action.config.targets import Target
from gitops_action.push.results import Status, TargetResult, exit_code

WEB = Target("web", "instance", "web", "oci://r.example/web", ("latest",), ("w.cue",))
NOT_FAILED: tuple[Status, ...] = (
    "pushed",
    "unchanged",
    "dry-run",
    "planned",
    "removed",
    "skipped",
)


def result(status: Status, digest: str | None = None) -> TargetResult:
    return TargetResult(WEB, status, digest=digest)


def test_a_run_with_no_target_succeeds() -> None:
    assert exit_code([]) == 0


@pytest.mark.parametrize("status", NOT_FAILED)
def test_only_a_failed_target_fails_the_run(status: Status) -> None:
    assert exit_code([result(status)]) == 0
    assert exit_code([result(status), result("failed")]) == 1
    assert exit_code([result("failed"), result(status)]) == 1


def test_every_outcome_but_failed_together_succeeds() -> None:
    assert exit_code([result(s) for s in NOT_FAILED]) == 0


def test_the_url_names_the_digest_or_nothing() -> None:
    assert result("pushed", "sha256:ab").url == "oci://r.example/web@sha256:ab"
    assert result("failed").url is None
    assert result("pushed", "").url is None
