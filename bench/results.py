"""The benchmark's arithmetic, apart from the runs (unit-tested in tests/unit/bench/test_results.py):
medians, ratios against the bare pipeline, verdicts, and where one action run's time went, from
the trace the action writes with $TIMONI_FLUX_PUSH_TRACE (gitops_action/runner.py)."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Goal:
    # "ratio": action / bare; "extra": action - bare, seconds; "seconds": the action's own
    kind: str
    limit: float


@dataclass(frozen=True)
class Timed:
    seconds: float  # wall clock
    cpu: float  # CPU of the run's processes and of the registry serving it


@dataclass
class Row:
    scenario: str
    goal: Goal
    runs: dict[str, list[Timed]] = field(
        default_factory=lambda: {"action": [], "bare": []}
    )

    def median(self, side: str) -> float:
        return statistics.median(t.seconds for t in self.runs[side])

    def cpu(self, side: str) -> float:
        return statistics.median(t.cpu for t in self.runs[side])

    @property
    def value(self) -> float:
        """What the goal is about: the ratio of medians, or the action's extra seconds over bare."""
        if self.goal.kind == "ratio":
            return self.median("action") / self.median("bare")
        if self.goal.kind == "extra":
            return self.median("action") - self.median("bare")
        return self.median("action")

    @property
    def verdict(self) -> str:
        return "PASS" if self.value <= self.goal.limit else "MISS"

    def shown(self) -> str:
        unit = "x" if self.goal.kind == "ratio" else "s"
        return f"{self.value:.3f}{unit} (goal <= {self.goal.limit:.2f}{unit}) {self.verdict}"


@dataclass(frozen=True)
class Span:
    start: float
    end: float
    what: str  # "timoni build", "flux push", "git rev-parse", ...

    @property
    def seconds(self) -> float:
        return self.end - self.start


def parse_trace(text: str) -> list[Span]:
    spans = []
    for line in text.splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3:
            spans.append(Span(float(parts[0]), float(parts[1]), parts[2].strip()))
    return sorted(spans, key=lambda s: s.start)


def covered(spans: Iterable[Span], start: float, end: float) -> float:
    """Seconds of [start, end] during which at least one of `spans` ran (overlaps counted once)."""
    total, reach = 0.0, start
    for s in sorted(spans, key=lambda s: s.start):
        lo, hi = max(s.start, reach), min(s.end, end)
        if hi > lo:
            total += hi - lo
            reach = hi
    return total


def breakdown(spans: Sequence[Span], started: float, ended: float) -> dict[str, float]:
    """Where one run's wall time went, in order: start-up before the first render (git calls in
    it apart), the renders, what lies between the last render and the first push, the pushes, and
    the tail after the last push (the settle wait, the re-read, the report, the exit)."""
    renders = [s for s in spans if s.what.startswith("timoni")]
    pushes = [s for s in spans if s.what.startswith("flux push")]
    if not renders:
        return {"start-up": ended - started}
    first_render = renders[0].start
    git_before = covered(
        (s for s in spans if s.what.startswith("git")), started, first_render
    )
    out = {
        "start-up: python, imports, config, plan": first_render - started - git_before,
        "start-up: git": git_before,
        "renders (timoni)": covered(renders, first_render, ended),
    }
    if pushes:
        out["between render and push (reads, checks)"] = max(
            0.0, pushes[0].start - max(r.end for r in renders)
        )
        out["pushes (flux)"] = covered(pushes, pushes[0].start, ended)
        after = max(p.end for p in pushes)
        waits = [s for s in spans if s.what == "settle wait"]
        verifies = [s for s in spans if s.what == "settle verify"]
        if waits and verifies:
            last = max(verifies, key=lambda s: s.end)
            out["after the last push: settle wait"] = covered(waits, after, ended)
            out["after the last push: verify (re-read the tag)"] = covered(
                verifies, after, ended
            )
            out["after the last push: report, clean-up, exit"] = ended - max(
                last.end, after
            )
        else:
            out["after the last push (settle wait, re-read, report, exit)"] = (
                ended - after
            )
    return out


def startup(spans: Sequence[Span], started: float) -> float | None:
    """Seconds from the process start to the first render; None when nothing rendered."""
    renders = [s.start for s in spans if s.what.startswith("timoni")]
    return min(renders) - started if renders else None


def median_breakdown(runs: Sequence[dict[str, float]]) -> dict[str, float]:
    keys = [k for k in runs[0] if all(k in r for r in runs)] if runs else []
    return {k: statistics.median(r[k] for r in runs) for k in keys}
