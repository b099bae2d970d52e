"""registry.retry: the one retry policy. A transient failure is tried again, the wait doubling,
up to `attempts` calls; a success, a refusal, a missing tag or a fatal failure is final at once."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gitops_action.registry.oci import Call, Failure, Pulled
from gitops_action.registry.retry import Retry

OK = Call(True, "", "", 0.0)


def failing(failure: Failure) -> Call:
    return Call(False, failure, f"{failure or 'no'} failure", 0.0)


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr("gitops_action.registry.retry.time.sleep", slept.append)
    return slept


def calls(*answers: Call) -> tuple[list[Call], Callable[[], Call]]:
    made: list[Call] = []
    left = list(answers)

    def action() -> Call:
        made.append(left.pop(0))
        return made[-1]

    return made, action


def test_a_transient_failure_is_tried_again_the_wait_doubling(
    waits: list[float],
) -> None:
    made, action = calls(failing("transient"), failing("transient"), OK)
    log: list[str] = []
    assert Retry(attempts=4, backoff=1.0).run(action, log, "push") == OK
    assert len(made) == 3 and waits == [1.0, 2.0]
    assert log == [
        "push: transient failure (attempt 1/4), retrying in 1s: transient failure",
        "push: transient failure (attempt 2/4), retrying in 2s: transient failure",
    ]


def test_the_last_attempt_answers_whatever_it_got(waits: list[float]) -> None:
    made, action = calls(*[failing("transient")] * 3)
    log: list[str] = []
    got = Retry(attempts=3, backoff=0.5).run(action, log, "tag")
    assert got == failing("transient") and len(made) == 3
    assert waits == [0.5, 1.0] and len(log) == 2


@pytest.mark.parametrize("failure", ["auth", "missing", "fatal"])
def test_anything_but_a_transient_failure_is_final(
    failure: Failure, waits: list[float]
) -> None:
    made, action = calls(failing(failure), OK)
    log: list[str] = []
    got = Retry().run(action, log, "pull")
    assert got == failing(failure) and len(made) == 1 and waits == [] and log == []


def test_a_pull_is_judged_by_its_call(waits: list[float]) -> None:
    answers = [Pulled(failing("transient")), Pulled(OK, revision="main@sha1:abc")]
    log: list[str] = []
    got = Retry(attempts=2).run(lambda: answers.pop(0), log, "pull")
    assert got == Pulled(OK, revision="main@sha1:abc") and waits == [1.0]
