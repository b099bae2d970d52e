"""Run jobs at a due time, while other work goes on: each pushed target's settle re-read
(settle.py) happens once its own wait is over, alongside the renders and pushes of
the targets still running, instead of after one wait at the end of the run that leaves the cores
idle. Used as a context manager: leaving it waits for every job it was given."""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType

from gitops_action import runner


class Timer:
    def __init__(self, workers: int) -> None:
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, workers), thread_name_prefix="settle"
        )
        self._due: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()  # equal due times keep the order they came in
        self._cond = threading.Condition()
        self._closing = False
        self._running: list[Future[None]] = []
        self._thread = threading.Thread(
            target=self._loop, name="settle-timer", daemon=True
        )
        self._thread.start()

    def at(self, due: float, job: Callable[[], None]) -> None:
        """Run `job` once `time.monotonic()` reaches `due`, on a worker of this timer."""
        asked = time.time()
        wall_due = asked + due - time.monotonic()

        def timed() -> None:
            start = time.time()
            job()
            # for the benchmark's breakdown
            runner.trace(["settle", "wait"], asked, wall_due)
            runner.trace(["settle", "verify"], start, time.time())

        with self._cond:
            heapq.heappush(self._due, (due, next(self._order), timed))
            self._cond.notify()

    def _loop(self) -> None:
        with self._cond:
            while True:
                if not self._due:
                    if self._closing:
                        return
                    self._cond.wait()
                    continue
                due, _, job = self._due[0]
                wait = due - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._due)
                self._running.append(self._pool.submit(job))

    def __enter__(self) -> Timer:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join()
        for running in self._running:
            running.result()  # a job's own exception is the pipeline's bug: let it show
        self._pool.shutdown(wait=True)
