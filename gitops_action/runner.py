"""The one place that starts external programs: argument lists, never a shell."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

TRACE = "TIMONI_FLUX_PUSH_TRACE"  # a file: one line per program run (bench/bench_pipeline.py reads it)


def trace(args: Sequence[str], start: float, end: float) -> None:
    """With $TIMONI_FLUX_PUSH_TRACE set (the benchmark), append `start end program subcommand` (wall
    clock seconds; the program's name and first argument only, never its other arguments)."""
    path = os.environ.get(TRACE)
    if path:
        rest = list(args[3:] if list(args[1:2]) == ["-C"] else args[1:])
        what = f"{os.path.basename(args[0])} {rest[0] if rest else ''}"
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(f"{start:.6f} {end:.6f} {what}\n")


@dataclass(frozen=True)
class Completed:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class ToolMissing(RuntimeError):
    """An external program is not installed or not executable."""


def run(
    args: Sequence[str],
    *,
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    stdin: str | None = None,
    stdout_path: Path | None = None,
) -> Completed:
    """Run a program to completion and capture its output as text.

    `env` is added to the current environment, not a replacement for it. With `stdout_path`,
    standard output goes straight to that file (large manifests never sit in memory twice). A timeout becomes
    returncode 124 with a message on stderr, like coreutils' `timeout`, so callers classify
    it together with the program's own failures.
    """
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    wall = time.time()
    start = time.monotonic()
    out_file = open(stdout_path, "wb") if stdout_path else None  # noqa: SIM115 (closed below)
    try:
        proc = subprocess.run(
            list(args),
            cwd=cwd,
            env=full_env,
            input=stdin.encode() if stdin is not None else None,
            stdout=out_file or subprocess.PIPE,
            stderr=subprocess.PIPE,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as exc:
        raise ToolMissing(f"{args[0]}: not found on PATH") from exc
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode("utf-8", "replace") if isinstance(exc.stdout, bytes) else exc.stdout or ""
        err = exc.stderr.decode("utf-8", "replace") if isinstance(exc.stderr, bytes) else exc.stderr or ""
        return Completed(
            tuple(args), 124, out, err + f"\ntimed out after {timeout:.0f}s", time.monotonic() - start
        )
    finally:
        if out_file:
            out_file.close()
    stdout = "" if out_file else proc.stdout.decode("utf-8", "replace")
    trace(args, wall, time.time())
    return Completed(
        tuple(args), proc.returncode, stdout, proc.stderr.decode("utf-8", "replace"), time.monotonic() - start
    )
