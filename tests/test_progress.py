"""Progress while targets render and push: the pipeline's callback, the terminal line, the Actions
log lines (gitops_action/progress.py)."""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys
import threading
from pathlib import Path

from conftest import ROOT, GitRepo
from support.action import run_action
from support.registry import Registry

from gitops_action import progress
from gitops_action.config import Target
from gitops_action.pipeline import TargetResult


def target(name: str) -> Target:
    return Target(name, "instance", name, f"oci://r.example/{name}", ("latest",), (f"{name}.yaml",))


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_log_lines_one_per_finished_target_and_untrusted_text_stays_on_its_line() -> None:
    out = io.StringIO()
    shown = progress.for_run(3, out, in_actions=True)
    assert not shown.live
    for name in ("a", "b", "c"):
        shown.event(progress.Event("started", target(name)))
    shown.event(progress.Event("finished", target("b"), TargetResult(target("b"), "pushed", seconds=1.25)))
    assert out.getvalue() == "[1/3] b: pushed (1.25s)\n"
    evil = TargetResult(target("a"), "failed", error="bad\n::set-output name=x::1\x1b[2J")
    shown.event(progress.Event("finished", target("a"), evil))
    lines = out.getvalue().splitlines()
    assert lines[1] == "[2/3] a: failed (0.00s): bad ::set-output name=x::1 [2J"
    assert not any(line.startswith("::") for line in lines)
    shown.close([])
    assert len(out.getvalue().splitlines()) == 2  # no table off a terminal


def test_terminal_shows_counts_in_flight_failures_and_a_final_table() -> None:
    out = Terminal()
    shown = progress.for_run(3, out, in_actions=False)
    assert shown.live
    shown.event(progress.Event("started", target("web-1")))
    shown.event(progress.Event("started", target("web-2")))
    assert shown.status_line().startswith("[0/3] in flight: web-1 0s, web-2 0s")
    ok = TargetResult(target("web-1"), "pushed", digest="sha256:" + "a" * 64, seconds=0.5)
    shown.event(progress.Event("finished", target("web-1"), ok))
    assert "web-1: pushed" not in out.getvalue()  # successes wait for the table
    bad = TargetResult(target("web-2"), "failed", error="timoni build failed (web-2.yaml:3)")
    shown.event(progress.Event("finished", target("web-2"), bad))
    assert "\r\x1b[K[2/3] web-2: failed (0.00s): timoni build failed (web-2.yaml:3)\n" in out.getvalue()
    assert shown.status_line().startswith("[2/3] 1 failed (")
    shown.close([ok, bad])
    table = out.getvalue().rsplit("\r\x1b[K", 1)[1].splitlines()
    assert table[0].split() == ["target", "status", "time", "digest", "/", "error"]
    assert table[1].split() == ["web-1", "pushed", "0.50s", "sha256:" + "a" * 64]
    assert table[2].split()[:3] == ["web-2", "failed", "0.00s"]


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


def test_the_actions_log_has_a_line_per_target_as_it_finishes(
    example_repo: GitRepo, registry: Registry, prefix: str, tmp_path: Path
) -> None:
    run = run_action(example_repo.path, tmp_path / "run", inputs={"registry": prefix, "all": "true"})
    assert run.returncode == 0, run.stdout + run.stderr
    lines = [line for line in run.stdout.splitlines() if line.startswith("[")]
    assert len(lines) == 5, run.stdout
    assert {line.split("] ", 1)[1].split(":")[0] for line in lines} == {a["name"] for a in run.artifacts()}
    assert sorted(line.split("]")[0] for line in lines) == [f"[{i}/5" for i in range(1, 6)]
    assert all(": pushed (" in line for line in lines)
    # The lines come before the log groups written at the end of the run.
    assert run.stdout.index(lines[-1]) < run.stdout.index("::group ::")


def test_a_terminal_run_ends_with_the_table(example_repo: GitRepo, registry: Registry, prefix: str) -> None:
    """The CLI on a real pseudo-terminal: a live line, then the table of every target."""
    main, child = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "INPUT_"))}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-m", "gitops_action", "push", "--all", "--registry", prefix],
        cwd=example_repo.path,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=child,
        timeout=600,
        check=False,
    )
    os.close(child)
    chunks = []
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(main)
    shown = b"".join(chunks).decode()
    assert done.returncode == 0, shown
    assert "\r\x1b[K[0/5] in flight: " in shown or "\r\x1b[K[1/5]" in shown
    table = shown.rsplit("\r\x1b[K", 1)[1].splitlines()
    assert table[0].split()[:3] == ["target", "status", "time"]
    assert {row.split()[0] for row in table[1:6]} == {
        "webapp-staging",
        "webapp-production",
        "staging/billing",
        "production/billing",
        "platform-staging",
    }
