"""Progress while targets render and push: the pipeline's callback, the terminal line, the Actions
log lines (gitops_action/progress.py)."""

from __future__ import annotations

import io
import os
import pty
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import ROOT, GitRepo, run_cli
from support.action import run_action
from support.registry import Registry

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


def test_the_actions_log_has_a_line_per_target_as_it_finishes(
    example_repo: GitRepo, registry: Registry, prefix: str, tmp_path: Path
) -> None:
    run = run_action(
        example_repo.path, tmp_path / "run", inputs={"registry": prefix, "all": "true"}
    )
    assert run.returncode == 0, run.stdout + run.stderr
    lines = [line for line in run.stdout.splitlines() if line.startswith("[")]
    assert len(lines) == 5, run.stdout
    assert {line.split("] ", 1)[1].split(":")[0] for line in lines} == {
        a["name"] for a in run.artifacts()
    }
    assert sorted(line.split("]")[0] for line in lines) == [
        f"[{i}/5" for i in range(1, 6)
    ]
    assert all(": pushed (" in line for line in lines)
    # The lines come before the log groups written at the end of the run.
    assert run.stdout.index(lines[-1]) < run.stdout.index("::group ::")


def screen(raw: str) -> list[str]:
    """What a terminal keeps on screen: `\r\x1b[K` erases the line being written (the status line)."""
    lines, current = [], ""
    for part in re.split(r"(\r\x1b\[K|\r?\n)", raw):
        if part == "\r\x1b[K":
            current = ""
        elif part in ("\n", "\r\n"):
            lines.append(current)
            current = ""
        else:
            current += part
    return [*lines, current] if current else lines


def on_a_terminal(repo: GitRepo, *args: str) -> tuple[int, str]:
    """The CLI with stdout and stderr on one real pseudo-terminal, as a person runs it."""
    main, child = pty.openpty()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "INPUT_"))
    }
    env |= {"PYTHONPATH": str(ROOT), "COLUMNS": "80"}
    done = subprocess.run(
        [sys.executable, "-m", "gitops_action", *args],
        cwd=repo.path,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=child,
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
    return done.returncode, b"".join(chunks).decode()


EXAMPLE_IDS = (
    "webapp-staging",
    "webapp-production",
    "staging/billing",
    "production/billing",
    "platform-staging",
)


def test_a_terminal_lists_each_target_once(
    example_repo: GitRepo, registry: Registry, prefix: str
) -> None:
    """A live line while targets run, then one line per target on the screen: not a table, the
    log lines and the Markdown summary besides."""
    code, raw = on_a_terminal(example_repo, "push", "--all", "--registry", prefix)
    assert code == 0, raw
    lines = screen(raw)
    for name in EXAMPLE_IDS:
        said = [
            line for line in lines if re.search(rf"(^|\W){re.escape(name)}(\W|$)", line)
        ]
        assert len(said) == 1, (name, lines)
        assert ": pushed (" in said[0] and "@sha256:" in said[0]
    assert "\r\x1b[K[0/5] (" in raw  # the live line was there
    assert all(len(line) < 80 or ": pushed (" in line for line in lines), lines
    assert "5 target(s) in " in raw and "--summary-file" in raw

    # A dry run on a terminal: its line says what the diff found, and the diff itself is printed.
    staging = example_repo.path / "apps/webapp/staging.yaml"
    staging.write_text(staging.read_text().replace("replicas: 1", "replicas: 4"))
    example_repo.commit_all("scale")
    code, raw = on_a_terminal(example_repo, "dry-run", "--registry", prefix)
    assert code == 0, raw
    lines = screen(raw)
    assert [x for x in lines if "webapp-staging: " in x] == [
        next(
            x
            for x in lines
            if x.startswith(
                "[1/1] webapp-staging: dry-run: 0 added, 1 changed, 0 removed ("
            )
        )
    ]
    assert "+  replicas: 4" in lines and "-  replicas: 1" in lines


def test_off_a_terminal_each_target_has_one_plain_line(
    example_repo: GitRepo, registry: Registry, prefix: str
) -> None:
    out = run_cli(example_repo, "push", "--all", "--registry", prefix)
    assert out.returncode == 0, out.stderr
    assert "\x1b" not in out.stderr and "\r" not in out.stderr
    for name in EXAMPLE_IDS:
        said = [
            line
            for line in out.stderr.splitlines()
            if f" {name}: " in line or line.startswith(f"{name}:")
        ]
        assert len(said) == 1, (name, out.stderr)
        assert re.fullmatch(
            rf"\[\d/5\] {re.escape(name)}: pushed \(\d+\.\d\ds\) oci://\S+@sha256:\w+",
            said[0],
        )
    # the Markdown summary: stdout is not a terminal
    assert out.stdout.startswith("## ")


def test_plan_on_a_terminal_lists_each_target_once_with_its_reasons(
    example_repo: GitRepo, registry: Registry, prefix: str
) -> None:
    code, raw = on_a_terminal(example_repo, "plan", "--registry", prefix)
    assert code == 0, raw
    lines = screen(raw)
    for name in EXAMPLE_IDS:
        at = [
            i
            for i, line in enumerate(lines)
            if re.search(rf"(^|\W){re.escape(name)}(\W|$)", line)
        ]
        assert len(at) == 1, (name, lines)
        assert lines[at[0]] == f"{name}: planned"
        # why: its tag holds nothing yet
        assert lines[at[0] + 1].startswith("  new target: ")
    # no Markdown
    assert not any(line.startswith(("#", "|", "<")) for line in lines), lines
