"""report.progress: the pipeline's callback, the terminal line and the Actions log lines, fed
results directly."""

from __future__ import annotations

import io
import threading

import pytest

from gitops_action.config.targets import Target
from gitops_action.push.pipeline import TargetResult
from gitops_action.report import progress


def target(name: str) -> Target:
    return Target(
        name,
        "instance",
        name,
        f"oci://r.example/{name}",
        ("latest",),
        (f"{name}.yaml",),
    )


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_log_lines_one_per_finished_target_and_untrusted_text_stays_on_its_line() -> (
    None
):
    out = io.StringIO()
    shown = progress.for_run(3, out, in_actions=True)
    assert not shown.live
    for name in ("a", "b", "c"):
        shown.event(progress.Event("started", target(name)))
    shown.event(
        progress.Event(
            "finished", target("b"), TargetResult(target("b"), "pushed", seconds=1.25)
        )
    )
    assert out.getvalue() == "[1/3] b: pushed (1.25s)\n"
    evil = TargetResult(
        target("a"), "failed", error="bad\n::set-output name=x::1\x1b[2J"
    )
    shown.event(progress.Event("finished", target("a"), evil))
    lines = out.getvalue().splitlines()
    assert lines[1] == "[2/3] a: failed (0.00s): bad ::set-output name=x::1 [2J"
    assert not any(line.startswith("::") for line in lines)
    shown.close([])
    assert len(out.getvalue().splitlines()) == 2  # no table off a terminal


def test_terminal_shows_counts_in_flight_and_one_line_per_target() -> None:
    out = Terminal()
    shown = progress.for_run(3, out, in_actions=False)
    assert shown.live
    shown.event(progress.Event("started", target("web-1")))
    shown.event(progress.Event("started", target("web-2")))
    assert shown.status_line().startswith("[0/3] (0s) in flight: web-1 0s, web-2 0s")
    ok = TargetResult(
        target("web-1"), "pushed", digest="sha256:" + "a" * 64, seconds=0.5
    )
    shown.event(progress.Event("finished", target("web-1"), ok))
    assert (
        f"\r\x1b[K[1/3] web-1: pushed (0.50s) oci://r.example/web-1@sha256:{'a' * 64}\n"
        in out.getvalue()
    )
    bad = TargetResult(
        target("web-2"),
        "failed",
        error="timoni build failed (web-2.yaml:3):\n  a: 1\x1b[2J",
    )
    shown.event(progress.Event("finished", target("web-2"), bad))
    # Off the Actions log the error is whole, each of its lines on a line of its own.
    assert (
        "\r\x1b[K[2/3] web-2: failed (0.00s):\n    timoni build failed (web-2.yaml:3):\n    a: 1 [2J\n"
        in (out.getvalue())
    )
    assert shown.status_line().startswith("[2/3] 1 failed (")
    shown.close([ok, bad])
    end = out.getvalue().rsplit("\r\x1b[K", 1)[1]
    assert end.startswith("2 target(s) in ") and end.endswith(": 1 pushed, 1 failed\n")


def test_the_status_line_fits_the_terminal_by_whole_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A 60-column terminal: never wider (no wrap, no line left behind), never half a name."""
    monkeypatch.setenv("COLUMNS", "60")
    shown = progress.for_run(40, Terminal(), in_actions=False)
    names = [f"production/service-number-{i}-with-a-long-name" for i in range(8)]
    for name in names:
        shown.event(progress.Event("started", target(name)))
    line = shown.status_line()
    assert len(line) < 60, line
    listed = line.split(" in flight: ", 1)[1].split(", ")
    more = [x for x in listed if x.startswith("+")]
    whole = [x.rsplit(" ", 1)[0] for x in listed if not x.startswith("+")]
    assert set(whole) <= set(names)
    assert more == [f"+{len(names) - len(whole)} more"]
    monkeypatch.setenv("COLUMNS", "1000")
    assert shown.status_line().split(" in flight: ", 1)[1].count(", ") == len(names) - 1


def test_events_from_many_threads_are_all_counted() -> None:
    out = io.StringIO()
    shown = progress.for_run(200, out, in_actions=True)

    def work(i: int) -> None:
        t = target(f"t{i}")
        shown.event(progress.Event("started", t))
        shown.event(progress.Event("finished", t, TargetResult(t, "unchanged")))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(200)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    lines = out.getvalue().splitlines()
    assert len(lines) == 200 and shown.done == 200 and not shown.in_flight
    assert sorted(int(line.split("/")[0][1:]) for line in lines) == list(range(1, 201))
