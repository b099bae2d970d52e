"""runner.run: the one launcher. Text and bytes modes, timeouts, a missing program."""

from __future__ import annotations

import sys

import pytest

from gitops_action import runner
from gitops_action.errors import ToolMissing

PY = sys.executable


def test_text_mode_decodes_and_passes_text_stdin() -> None:
    done = runner.run(
        [PY, "-c", "import sys; print(sys.stdin.read().upper())"],
        stdin="é\n",
        timeout=30,
    )
    assert (done.ok, done.stdout, done.output) == (True, "É\n\n", b"")


def test_binary_mode_keeps_bytes_both_ways() -> None:
    code = "import sys; sys.stdout.buffer.write(sys.stdin.buffer.read()[::-1])"
    done = runner.run([PY, "-c", code], stdin=b"a\0\xff\n", timeout=30, binary=True)
    assert (done.ok, done.output, done.stdout) == (True, b"\n\xff\0a", "")


def test_a_failure_keeps_its_code_and_stderr() -> None:
    done = runner.run(
        [PY, "-c", "import sys; sys.exit('no good')"], timeout=30, binary=True
    )
    assert (done.ok, done.returncode, done.stderr) == (False, 1, "no good\n")


def test_a_timeout_is_exit_124_with_a_message() -> None:
    done = runner.run([PY, "-c", "import time; time.sleep(30)"], timeout=1, binary=True)
    assert (
        done.returncode == 124
        and done.stderr.endswith("timed out after 1s")
        and done.seconds < 10
    )


def test_a_missing_program_is_tool_missing() -> None:
    with pytest.raises(ToolMissing, match=r"^no-such-program-here not found on PATH$"):
        runner.run(["no-such-program-here"], timeout=5)
    with pytest.raises(
        ToolMissing,
        match=r"^timoni not found on PATH \(install it: https://timoni\.sh/install/",
    ):
        runner.run(["timoni"], env={"PATH": "/nonexistent"}, timeout=5)
