"""The benchmark's arithmetic, apart from the runs (unit-tested in tests/unit/bench/test_results.py):
medians, ratios against the bare pipeline, verdicts, and where one action run's time went, from
the trace the action writes with $TIMONI_FLUX_PUSH_TRACE (gitops_action/runner.py)."""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Goal:
    # "ratio": action / bare; "extra": action - bare, seconds; "seconds": the action's own;
    # "limit": the action's wall time / its own limit (the machine's busy time / cores, same run)
    kind: str
    limit: float


@dataclass(frozen=True)
class Timed:
    seconds: float  # wall clock
    cpu: float  # CPU of the run's processes and of the registry serving it
    procs: float = (
        0.0  # CPU of the run's own processes (RUSAGE_CHILDREN), the registry apart
    )
    machine: float = (
        0.0  # the whole machine's busy time (/proc/stat), the registry included
    )


@dataclass
class Row:
    scenario: str
    goal: Goal
    runs: dict[str, list[Timed]] = field(
        default_factory=lambda: {"action": [], "bare": []}
    )
    cores: int = 1

    def median(self, side: str) -> float:
        return statistics.median(t.seconds for t in self.runs[side])

    def cpu(self, side: str) -> float:
        return statistics.median(t.cpu for t in self.runs[side])

    def procs(self, side: str) -> float:
        return statistics.median(t.procs for t in self.runs[side])

    def machine(self, side: str) -> float:
        return statistics.median(t.machine for t in self.runs[side])

    def in_use(self, side: str) -> float:
        """Cores in use: the machine's busy time over the wall time, per run (median)."""
        return statistics.median(t.machine / t.seconds for t in self.runs[side])

    def limit(self, side: str) -> float:
        """The shortest wall time the machine allows for the work it did: busy time / cores."""
        return self.machine(side) / self.cores

    def over_limit(self, side: str) -> float:
        """Wall time over that limit, per run (median): 1.0 is every core busy all along."""
        return statistics.median(
            t.seconds * self.cores / t.machine if t.machine else 0.0
            for t in self.runs[side]
        )

    @property
    def value(self) -> float:
        """What the goal is about: the ratio of medians, or the action's extra seconds over bare."""
        if self.goal.kind == "ratio":
            return self.median("action") / self.median("bare")
        if self.goal.kind == "extra":
            return self.median("action") - self.median("bare")
        if self.goal.kind == "limit":
            return self.over_limit("action")
        return self.median("action")

    @property
    def verdict(self) -> str:
        return "PASS" if self.value <= self.goal.limit else "MISS"

    def shown(self) -> str:
        unit = "x" if self.goal.kind in ("ratio", "limit") else "s"
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
        waits = [s for s in spans if s.what.startswith("settle wait")]
        verifies = [s for s in spans if s.what.startswith("settle verify")]
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


# --- where a core sits idle ---------------------------------------------------------------------

PROGRAMS = ("timoni", "flux", "git", "cosign")
Sample = tuple[
    float, float, float
]  # wall clock, busy and total CPU seconds of the machine so far


def idle(samples: Sequence[Sample], cores: int, start: float, end: float) -> float:
    """Idle core-seconds of the machine in [start, end], from /proc/stat samples: each interval's
    idle share, counted for the part of the interval inside the window."""
    total = 0.0
    for (t0, b0, a0), (t1, b1, a1) in itertools.pairwise(samples):
        lo, hi = max(t0, start), min(t1, end)
        if hi <= lo or t1 <= t0 or a1 <= a0:
            continue
        share = min(1.0, max(0.0, 1.0 - (b1 - b0) / (a1 - a0)))  # jitter of the samples
        total += share * cores * (hi - lo)
    return total


def _running(
    spans: Sequence[Span], start: float, end: float
) -> list[tuple[float, float, int]]:
    """[start, end] cut where the number of programs running changes: (from, to, how many)."""
    edges = sorted(
        {start, end} | {x for s in spans for x in (s.start, s.end) if start < x < end}
    )
    out = []
    for lo, hi in itertools.pairwise(edges):
        mid = (lo + hi) / 2
        out.append((lo, hi, sum(1 for s in spans if s.start <= mid < s.end)))
    return out


def phases(
    spans: Sequence[Span], started: float, ended: float
) -> list[tuple[str, float, float]]:
    """One action run cut into phases, in order (some in pieces): (name, from, to)."""
    programs = [s for s in spans if s.what.split(" ", 1)[0] in PROGRAMS]
    renders = [s.start for s in spans if s.what.startswith("timoni")]
    pushes = [s.end for s in spans if s.what.startswith("flux push")]
    if not renders:
        return [("start-up and the rest (nothing rendered)", started, ended)]
    first = min(renders)
    last = max(pushes) if pushes else max(s.end for s in programs)
    planned = [s for s in spans if s.what.startswith("phase plan") and s.end <= first]
    if planned:
        plan = planned[0]
        out = [
            ("start-up: interpreter, imports, settings", started, plan.start),
            ("start-up: plan (git, configuration)", plan.start, plan.end),
            (
                "start-up: plan to the first render (login, checks, read)",
                plan.end,
                first,
            ),
        ]
    else:
        out = [("start-up: process start to the first render", started, first)]
    names = {0: "no program running", 1: "1 program running"}
    for lo, hi, n in _running(programs, first, last):
        out.append(
            (
                f"renders and pushes: {names.get(n, '2 or more programs running')}",
                lo,
                hi,
            )
        )
    verifies = [
        s for s in spans if s.what.startswith("settle verify") and s.end >= last
    ]
    if verifies:
        begin = max(last, max(s.start for s in verifies))  # the run's last re-read
        out.append(("after the last push: settle wait", last, begin))
        out.append(("after the last push: verify, report, exit", begin, ended))
    else:
        out.append(("after the last push: report, exit", last, ended))
    return out


def idle_profile(
    spans: Sequence[Span],
    started: float,
    ended: float,
    samples: Sequence[Sample],
    cores: int,
) -> dict[str, tuple[float, float]]:
    """Per phase of one run: (wall seconds, idle core-seconds); pieces of a phase added up."""
    out: dict[str, tuple[float, float]] = {}
    for name, lo, hi in phases(spans, started, ended):
        wall, free = out.get(name, (0.0, 0.0))
        out[name] = (wall + hi - lo, free + idle(samples, cores, lo, hi))
    return out


def step_idle(
    spans: Sequence[Span], samples: Sequence[Sample], cores: int
) -> dict[str, float]:
    """Idle core-seconds while each kind of step ran (its spans merged; kinds overlap each other)."""
    kinds: dict[str, list[Span]] = {}
    for s in spans:
        words = s.what.split(" ")
        kind = (
            " ".join(words[:2]) if words[0] in ("step", "settle", "phase") else words[0]
        )
        kinds.setdefault(kind, []).append(s)
    out = {}
    for kind, group in sorted(kinds.items()):
        merged: list[list[float]] = []
        for s in sorted(group, key=lambda s: s.start):
            if merged and s.start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], s.end)
            else:
                merged.append([s.start, s.end])
        out[kind] = sum(idle(samples, cores, lo, hi) for lo, hi in merged)
    return out


READS = ("step read", "step read-content", "step last-look", "settle verify")


def reads(spans: Sequence[Span]) -> dict[str, int]:
    """The registry reads the action makes besides its pushes (the bare pipeline makes none)."""
    out = dict.fromkeys(READS, 0)
    for s in spans:
        for kind in READS:
            if s.what == kind or s.what.startswith(kind + " "):
                out[kind] += 1
    return out


def median_profile(
    runs: Sequence[dict[str, tuple[float, float]]],
) -> dict[str, tuple[float, float]]:
    keys = list(dict.fromkeys(k for r in runs for k in r))
    return {
        k: (
            statistics.median(r.get(k, (0.0, 0.0))[0] for r in runs),
            statistics.median(r.get(k, (0.0, 0.0))[1] for r in runs),
        )
        for k in keys
    }
