"""bench/results.py: how the benchmark decides its ratios, verdicts and breakdowns (the benchmark
itself runs in `make bench`, not here)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))

import results as r


def row(kind: str, limit: float, action: list[float], bare: list[float]) -> r.Row:
    out = r.Row("x", r.Goal(kind, limit))
    out.runs["action"] = [r.Timed(s, s / 2) for s in action]
    out.runs["bare"] = [r.Timed(s, s) for s in bare]
    return out


def test_ratio_is_of_medians_and_the_goal_is_inclusive() -> None:
    many = row("ratio", 0.60, [3.0, 1.2, 9.0], [2.0, 100.0, 1.0])
    assert many.value == pytest.approx(3.0 / 2.0)
    assert many.verdict == "MISS"
    exact = row("ratio", 0.50, [1.0], [2.0])
    assert exact.verdict == "PASS" and exact.shown() == "0.500x (goal <= 0.50x) PASS"
    assert many.cpu("action") == 1.5 and many.cpu("bare") == 2.0


def test_extra_seconds_and_own_seconds() -> None:
    one = row("extra", 0.25, [0.50, 0.52, 0.90], [0.30, 0.31, 0.10])
    assert one.value == pytest.approx(0.22)
    assert one.verdict == "PASS" and one.shown().endswith("s (goal <= 0.25s) PASS")
    start = row("seconds", 0.15, [0.2, 0.1, 0.16], [])
    assert start.value == pytest.approx(0.16) and start.verdict == "MISS"


def test_trace_parsing_and_covered_time_counts_overlaps_once() -> None:
    spans = r.parse_trace(
        "10.5 10.7 flux push\n10.0 10.4 timoni build\nbroken\n10.1 10.3 timoni build\n"
    )
    assert [s.what for s in spans] == ["timoni build", "timoni build", "flux push"]
    assert r.covered(spans[:2], 10.0, 11.0) == pytest.approx(0.4)
    assert r.covered(spans, 10.2, 10.6) == pytest.approx(0.3)  # clipped to the window
    assert r.covered([], 0.0, 1.0) == 0.0


def test_breakdown_of_one_run_adds_up_to_its_wall_time() -> None:
    trace = "\n".join(
        [
            "100.02 100.03 git rev-parse",
            "100.025 100.04 git diff",
            "100.10 100.20 timoni build",
            "100.21 100.31 flux push",
        ]
    )
    spans = r.parse_trace(trace)
    parts = r.breakdown(spans, 100.0, 100.6)
    assert parts == pytest.approx(
        {
            "start-up: python, imports, config, plan": 0.08,
            "start-up: git": 0.02,
            "renders (timoni)": 0.10,
            "between render and push (reads, checks)": 0.01,
            "pushes (flux)": 0.10,
            "after the last push (settle wait, re-read, report, exit)": 0.29,
        }
    )
    assert sum(parts.values()) == pytest.approx(0.6)
    assert r.startup(spans, 100.0) == pytest.approx(0.10)
    assert r.startup([], 100.0) is None
    assert r.breakdown([], 1.0, 1.3) == pytest.approx({"start-up": 0.3})


def test_median_breakdown_keeps_the_keys_every_run_has() -> None:
    runs = [{"a": 1.0, "b": 2.0}, {"a": 3.0, "b": 4.0}, {"a": 2.0}]
    assert r.median_breakdown(runs) == {"a": 2.0}
    assert r.median_breakdown([]) == {}


def test_the_tail_is_split_when_the_trace_has_the_settle_steps() -> None:
    spans = r.parse_trace(
        "1.0 1.1 timoni build\n1.1 1.2 flux push\n1.2 1.4 settle wait\n1.4 1.41 settle verify\n"
    )
    parts = r.breakdown(spans, 0.9, 1.5)
    assert parts["after the last push: settle wait"] == pytest.approx(0.2)
    assert parts["after the last push: verify (re-read the tag)"] == pytest.approx(0.01)
    assert parts["after the last push: report, clean-up, exit"] == pytest.approx(0.09)
    assert sum(parts.values()) == pytest.approx(0.6)


def test_the_limit_is_the_machines_busy_time_over_its_cores() -> None:
    out = r.Row("x", r.Goal("limit", 1.15), cores=2)
    out.runs["action"] = [r.Timed(1.5, 2.0, 1.8, 2.4), r.Timed(1.2, 2.0, 1.8, 2.0)]
    assert out.limit("action") == pytest.approx(1.1)  # median busy 2.2 s / 2 cores
    assert out.in_use("action") == pytest.approx((1.6 + 2.0 / 1.2) / 2)
    # per run: wall / (busy / cores)
    assert out.value == pytest.approx((1.25 + 1.2) / 2)
    assert out.verdict == "MISS" and out.shown().endswith("x (goal <= 1.15x) MISS")


def test_idle_core_seconds_come_from_the_samples_inside_the_window() -> None:
    # 2 cores; 1.0-1.1: one core busy (0.1 of 0.2 core-s); 1.1-1.2: both busy.
    samples = [(1.0, 10.0, 20.0), (1.1, 10.1, 20.2), (1.2, 10.3, 20.4)]
    assert r.idle(samples, 2, 1.0, 1.2) == pytest.approx(0.1)
    assert r.idle(samples, 2, 1.05, 1.2) == pytest.approx(0.05)
    assert r.idle(samples, 2, 2.0, 3.0) == 0.0


def test_a_run_is_cut_into_phases_by_the_programs_running() -> None:
    spans = r.parse_trace(
        "\n".join(
            [
                "1.0 1.2 timoni build t0",
                "1.1 1.3 timoni build t1",
                "1.2 1.25 step last-look t0",
                "1.25 1.4 flux push t0",
                "1.6 1.61 settle verify t0",
                "1.0 1.01 step read t0",
                "1.3 1.31 step read-content t1",
            ]
        )
    )
    cut = r.phases(spans, 0.8, 1.7)
    assert cut[0] == ("start-up: process start to the first render", 0.8, 1.0)
    assert [(n.split(": ")[-1], round(hi - lo, 3)) for n, lo, hi in cut[1:-2]] == [
        ("1 program running", 0.1),
        ("2 or more programs running", 0.1),
        ("1 program running", 0.05),
        ("2 or more programs running", 0.05),
        ("1 program running", 0.1),
    ]
    assert cut[-2] == ("after the last push: settle wait", 1.4, 1.6)
    assert cut[-1] == ("after the last push: verify, report, exit", 1.6, 1.7)
    busy = [(0.0, 0.0, 0.0), (2.0, 2.0, 4.0)]  # half the machine idle all along
    prof = r.idle_profile(spans, 0.8, 1.7, busy, 2)
    assert sum(w for w, _ in prof.values()) == pytest.approx(0.9)
    assert prof["renders and pushes: 1 program running"][0] == pytest.approx(0.25)
    assert sum(i for _, i in prof.values()) == pytest.approx(0.9)
    assert r.reads(spans) == {
        "step read": 1,
        "step read-content": 1,
        "step last-look": 1,
        "settle verify": 1,
    }
    assert set(r.step_idle(spans, busy, 2)) >= {"timoni", "flux", "step read"}


def test_start_up_is_split_at_the_plan_when_the_trace_has_it() -> None:
    spans = r.parse_trace(
        "0.10 0.14 phase plan\n0.11 0.12 git diff\n0.2 0.3 timoni build t0\n"
        "0.3 0.35 flux push t0\n"
    )
    cut = r.phases(spans, 0.0, 0.4)
    assert cut[:3] == [
        ("start-up: interpreter, imports, settings", 0.0, 0.10),
        ("start-up: plan (git, configuration)", 0.10, 0.14),
        ("start-up: plan to the first render (login, checks, read)", 0.14, 0.2),
    ]
    assert cut[-1] == ("after the last push: report, exit", 0.35, 0.4)
