"""push.timer: jobs run once their due time is reached, earliest first (ties in the order given),
on the timer's workers; leaving the timer waits for every job and lets a job's exception show."""

from __future__ import annotations

import threading
import time

import pytest

from gitops_action.push.timer import Timer


def test_jobs_run_by_due_time_not_by_order_given() -> None:
    ran: list[str] = []
    now = time.monotonic()
    with Timer(1) as timer:
        timer.at(now + 0.3, lambda: ran.append("late"))
        timer.at(now + 0.1, lambda: ran.append("early"))
        timer.at(now - 1, lambda: ran.append("overdue"))
    assert ran == ["overdue", "early", "late"]


def test_equal_due_times_keep_their_order() -> None:
    ran: list[int] = []
    due = time.monotonic() + 0.05
    with Timer(1) as timer:
        for i in range(20):
            timer.at(due, lambda i=i: ran.append(i))  # type: ignore[misc]
    assert ran == list(range(20))


def test_a_job_never_runs_before_it_is_due() -> None:
    started: list[float] = []
    due = time.monotonic() + 0.2
    with Timer(2) as timer:
        timer.at(due, lambda: started.append(time.monotonic()))
    assert len(started) == 1 and started[0] >= due


def test_leaving_waits_for_every_job_and_other_work_goes_on() -> None:
    done = threading.Event()
    with Timer(2) as timer:
        timer.at(time.monotonic() + 0.2, done.set)
        # the block itself is not held up by the timer
        assert not done.is_set()
    assert done.is_set()


def test_jobs_run_alongside_on_several_workers() -> None:
    barrier = threading.Barrier(2, timeout=5)
    now = time.monotonic()

    def meet() -> None:
        barrier.wait()

    with Timer(2) as timer:
        # each waits for the other: only two workers at once let both finish
        timer.at(now, meet)
        timer.at(now, meet)
    assert barrier.n_waiting == 0 and not barrier.broken


def test_a_jobs_exception_shows_when_leaving() -> None:
    def broken() -> None:
        raise RuntimeError("a bug in the pipeline")

    with pytest.raises(RuntimeError, match="a bug in the pipeline"), Timer(1) as timer:
        timer.at(time.monotonic(), broken)
