"""cli.leave: a finished run ends with os._exit once the exit handlers ran and stdout and stderr
are flushed (the interpreter's teardown is skipped); under a tracer, or while a thread that is not
a daemon runs, the usual exit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(code: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, check=False
    )


def test_buffered_output_arrives_and_the_code_is_the_runs() -> None:
    done = run(
        "import atexit, sys\n"
        "from gitops_action.cli import leave\n"
        "atexit.register(lambda: sys.stderr.write(' handler'))\n"
        "sys.stdout.write('x' * 100000)\n"
        "sys.stderr.write('said')\n"
        "leave(3)\n"
    )
    assert done.returncode == 3
    assert done.stdout == b"x" * 100000 and done.stderr == b"said handler"


def test_a_thread_still_running_is_waited_for() -> None:
    done = run(
        "import sys, threading, time\n"
        "from gitops_action.cli import leave\n"
        "threading.Thread(target=lambda: (time.sleep(0.3), print('done'))).start()\n"
        "leave(5)\n"
    )
    assert done.returncode == 5 and done.stdout == b"done\n"


def test_under_a_tracer_the_interpreter_exits_the_usual_way() -> None:
    done = run(
        "import atexit, sys\n"
        "from gitops_action.cli import leave\n"
        "atexit.register(lambda: print('teardown', file=sys.stderr))\n"
        "sys.settrace(lambda *a: None)\n"
        "leave(4)\n"
    )
    assert done.returncode == 4 and b"teardown" in done.stderr
