"""Progress while targets render and push: the pipeline calls `Progress.event` as each target starts
and finishes (from its worker threads).

- On a terminal: one status line rewritten in place (done/total, failures so far, the targets in
  flight), a line for each failure as it happens, and a table of every target at the end.
- Elsewhere (the Actions log, a file): one line per target as it finishes, so a long run is never
  silent. The lines carry only a counter, the target's id, its status, its time and its error on one
  line: they never start with `::`, so untrusted text (file names, CUE errors) cannot be read as a
  workflow command.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, TextIO

if TYPE_CHECKING:  # the pipeline imports this module: types only, no import cycle at run time
    from .config import Target
    from .results import TargetResult

Phase = Literal["started", "finished"]
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")
WIDTH = 100  # the status line is cut to this many characters, so it never wraps on a narrow terminal


@dataclass(frozen=True)
class Event:
    phase: Phase
    target: Target
    result: TargetResult | None = None  # set when finished


def one_line(text: str, limit: int = 300) -> str:
    """Untrusted text on one line: control characters (newlines, escapes) become spaces."""
    flat = " ".join(_CONTROL.sub(" ", text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def finished_line(done: int, total: int, result: TargetResult) -> str:
    line = f"[{done}/{total}] {one_line(result.target.id, 120)}: {result.status} ({result.seconds:.2f}s)"
    if result.error:
        line += f": {one_line(result.error)}"
    return line


@dataclass
class Progress:
    """Counts what it is told; prints to `stream`. `live`: rewrite a status line (a terminal)."""

    total: int
    stream: TextIO
    live: bool = False
    clock: float = field(default_factory=time.monotonic)
    done: int = 0
    failed: int = 0
    in_flight: dict[str, float] = field(default_factory=dict)  # target id -> when it started
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
        if result.status == "failed":
            self.failed += 1
        if self.live and result.status != "failed":
            return  # a terminal shows failures as they happen, everything in the final table
        self._clear()
        self.stream.write(finished_line(self.done, self.total, result) + "\n")
        self.stream.flush()

    def status_line(self) -> str:
        now = time.monotonic()
        line = f"[{self.done}/{self.total}]"
        if self.failed:
            line += f" {self.failed} failed"
        if self.in_flight:
            running = sorted(self.in_flight.items(), key=lambda kv: kv[1])
            line += " in flight: " + ", ".join(f"{one_line(k, 40)} {now - t:.0f}s" for k, t in running)
        line += f" ({now - self.clock:.0f}s)"
        return line[:WIDTH]

    def _status(self) -> None:
        self.stream.write("\r\x1b[K" + self.status_line())
        self.stream.flush()
        self._shown = True

    def _clear(self) -> None:
        if self._shown:
            self.stream.write("\r\x1b[K")
            self._shown = False

    def close(self, results: Sequence[TargetResult]) -> None:
        """The end of the run: on a terminal, the status line gives way to a table of every target."""
        with self._lock:
            if not self.live:
                return
            self._clear()
            if results:
                self.stream.write(table(results) + "\n")
            self.stream.flush()


def table(results: Sequence[TargetResult]) -> str:
    rows = [("target", "status", "time", "digest / error")]
    for r in results:
        detail = one_line(r.error, 80) if r.error else (r.digest or "")
        rows.append((one_line(r.target.id, 60), r.status, f"{r.seconds:.2f}s", detail))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row[:3], widths, strict=True)) + "  " + row[3] for row in rows
    ]
    return "\n".join(line.rstrip() for line in lines)


def for_run(total: int, stream: TextIO, *, in_actions: bool) -> Progress:
    """Live on an interactive terminal outside Actions; one line per finished target otherwise."""
    live = not in_actions and stream.isatty()
    return Progress(total, stream, live=live)
