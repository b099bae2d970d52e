"""Progress while targets render and push: the pipeline calls `Progress.event` as each target starts
and finishes (from its worker threads).

- Every target gets one line as it finishes (its status, time, artifact or error), so a long run
  is never silent and each target is listed once.
- On a terminal, a status line below them is rewritten in place (done/total, failures so far, the
  targets in flight), fitted to the terminal's width by whole words: it never wraps, never cuts a
  name in half.
- In the Actions log and a file, the finished lines alone. In the Actions log a line carries only a
  counter, the target's id, its status, its time, its artifact and its error on one line: it never
  starts with `::`, so untrusted text (file names, CUE errors) cannot be read as a workflow command.
"""

from __future__ import annotations

import re
import shutil
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TextIO

from gitops_action.push.results import Event, TargetResult

if TYPE_CHECKING:
    pass

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


def one_line(text: str, limit: int = 300) -> str:
    """Untrusted text on one line: control characters (newlines, escapes) become spaces."""
    flat = " ".join(_CONTROL.sub(" ", text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def finished_line(
    done: int, total: int, result: TargetResult, *, whole: bool = False
) -> str:
    """One line; `whole` (outside Actions): the error in full, each of its lines indented below."""
    line = f"[{done}/{total}] {one_line(result.target.id, 120)}: {_status(result)} ({result.seconds:.2f}s)"
    # a dry run's digest is what is deployed: not news
    if result.url and result.status != "dry-run":
        line += f" {result.url}"
    if result.error and whole:
        said = [one_line(x, 100_000) for x in result.error.splitlines()]
        line += ":" + "".join(f"\n    {x}" for x in said if x)
    elif result.error:
        line += f": {one_line(result.error)}"
    return line


def _status(result: TargetResult) -> str:
    """The status; for a dry run, what its diff found."""
    diff = result.diff
    if result.status != "dry-run" or diff is None:
        return result.status
    if result.new_target:
        return "dry-run: new target"
    c = diff.counts()
    if not diff.changed:
        return "dry-run: no change"
    return (
        f"dry-run: {c['added']} added, {c['changed']} changed, {c['removed']} removed"
    )


@dataclass
class Progress:
    """Counts what it is told; prints to `stream`. `live`: rewrite a status line (a terminal) of at
    most `width` columns (0: the terminal's width, asked at each redraw: a window may be resized)."""

    total: int
    stream: TextIO
    live: bool = False
    width: int = 0
    whole: bool = False  # errors in full, on lines of their own (not the Actions log)
    clock: float = field(default_factory=time.monotonic)
    done: int = 0
    failed: int = 0
    # target id -> when it started
    in_flight: dict[str, float] = field(default_factory=dict)
    # target id -> the status its line gave
    said: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _shown: bool = False  # a status line is on the screen

    def event(self, event: Event) -> None:
        with self._lock:
            key = event.target.id
            if event.phase == "started":
                self.in_flight[key] = time.monotonic()
            else:
                self.in_flight.pop(key, None)
                self.done += 1
                result = event.result
                if result is not None:
                    self._finished(result)
            if self.live:
                self._status()

    def _finished(self, result: TargetResult) -> None:
        self.said[result.target.id] = result.status
        if result.status == "failed":
            self.failed += 1
        self._clear()
        self.stream.write(
            finished_line(self.done, self.total, result, whole=self.whole) + "\n"
        )
        self.stream.flush()

    def status_line(self) -> str:
        """`[2/5] 1 failed (12s) in flight: a 3s, b 1s, +2 more`, whole names only, within the width."""
        now = time.monotonic()
        width = self.width or shutil.get_terminal_size().columns
        # the last column would wrap the cursor on some terminals
        width = max(width - 1, 20)
        head = f"[{self.done}/{self.total}]" + (
            f" {self.failed} failed" if self.failed else ""
        )
        head += f" ({now - self.clock:.0f}s)"
        by_start = sorted(self.in_flight.items(), key=lambda kv: kv[1])
        running = [
            f"{one_line(k, 10_000)} {now - t:.0f}s" for k, t in by_start
        ]  # a name is whole or not shown
        if not running:
            return _fit(head, width)
        for shown in range(len(running), -1, -1):
            more = len(running) - shown
            names = running[:shown] + ([f"+{more} more"] if more else [])
            line = f"{head} in flight: " + ", ".join(names)
            if len(line) <= width:
                return line
        return _fit(f"{head} in flight: {len(running)}", width)

    def _status(self) -> None:
        self.stream.write("\r\x1b[K" + self.status_line())
        self.stream.flush()
        self._shown = True

    def _clear(self) -> None:
        if self._shown:
            self.stream.write("\r\x1b[K")
            self._shown = False

    def close(self, results: Sequence[TargetResult]) -> None:
        """The end of the run: the status line goes; one line of counts stays (a terminal)."""
        with self._lock:
            if not self.live:
                return
            self._clear()
            counts: dict[str, int] = {}
            for r in results:
                counts[r.status] = counts.get(r.status, 0) + 1
            said = ", ".join(f"{n} {status}" for status, n in counts.items())
            self.stream.write(
                f"{len(results)} target(s) in {time.monotonic() - self.clock:.0f}s: {said}\n"
            )
            self.stream.flush()


def _fit(text: str, width: int) -> str:
    """`text` in `width` columns, cut at a space (never inside a word)."""
    if len(text) <= width:
        return text
    cut = text[: width - 1].rsplit(" ", 1)[0]
    return cut + "…"


def for_run(total: int, stream: TextIO, *, in_actions: bool) -> Progress:
    """A line per finished target; a live status line too on an interactive terminal outside Actions."""
    live = not in_actions and stream.isatty()
    return Progress(total, stream, live=live, whole=not in_actions)
