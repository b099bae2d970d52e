"""Progress while targets render and push, in a real run: the Actions log lines and the terminal
(the callback and the lines themselves: tests/unit/report/test_progress.py)."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, GitRepo, run_cli
from support.action import run_action
from support.registry import Registry


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
