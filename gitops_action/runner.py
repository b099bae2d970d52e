"""The one place that starts external programs: argument lists, never a shell."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from gitops_action.errors import ToolMissing

# a file: one line per program run (bench/bench_pipeline.py reads it)
TRACE = "TIMONI_FLUX_PUSH_TRACE"


_where = (
    threading.local()
)  # the trace's label for what this thread works on ("t3": a target)


def trace(args: Sequence[str], start: float, end: float) -> None:
    """With $TIMONI_FLUX_PUSH_TRACE set (the benchmark), append `start end program subcommand label`
    (wall clock seconds; the program's name and first argument only, never its other arguments; the
    label of the thread's target, see `label`)."""
    path = os.environ.get(TRACE)
    if path:
        rest = list(args[3:] if list(args[1:2]) == ["-C"] else args[1:])
        what = f"{os.path.basename(args[0])} {rest[0] if rest else ''}"
        mark = getattr(_where, "label", "")
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(f"{start:.6f} {end:.6f} {what}{' ' + mark if mark else ''}\n")


def label(mark: str) -> None:
    """What this thread's trace lines are about from now on ("t3": the fourth target; "": none)."""
    _where.label = mark


@contextmanager
def span(*what: str) -> Iterator[None]:
    """A step of the run in the trace (`span("step", "render")`): its start and end; nothing is
    written without $TIMONI_FLUX_PUSH_TRACE."""
    if not os.environ.get(TRACE):
        yield
        return
    start = time.time()
    try:
        yield
    finally:
        trace(what, start, time.time())


# Where each program the run starts comes from, for the message when it is not installed.
INSTALL = {
    "timoni": "https://timoni.sh/install/",
    "flux": "https://fluxcd.io/flux/installation/#install-the-flux-cli",
    "cosign": "https://docs.sigstore.dev/cosign/system_config/installation/",
    "git": "your system's package manager",
}


def missing(program: str) -> ToolMissing:
    """A program not on PATH: a setup problem, said with where to get it (not an internal error)."""
    name = os.path.basename(program)
    where = INSTALL.get(name)
    if where is None:
        return ToolMissing(f"{name} not found on PATH")
    pinned = (
        ""
        if name == "git"
        else "; `make tools` in a checkout of this action installs the pinned one"
    )
    return ToolMissing(f"{name} not found on PATH (install it: {where}{pinned})")


@dataclass(frozen=True)
class Completed:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    # standard output as bytes, with `binary=True` (stdout is then "")
    output: bytes = b""

    @property
    def ok(self) -> bool:
        return self.returncode == 0


# A child process sees only what it needs: never the action's inputs (INPUT_*), the runner's tokens
# (ACTIONS_*) or anything else a render could read back through /proc/self/environ.
PROXY = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
)
TLS = ("SSL_CERT_FILE", "SSL_CERT_DIR")


def allowed(names: Sequence[str] = (), prefixes: Sequence[str] = ()) -> dict[str, str]:
    """PATH and the listed variables (exact names, or names starting with one of `prefixes`) of
    this process's environment: the base of every child's environment."""
    keep = {"PATH", *names}
    return {
        k: v
        for k, v in os.environ.items()
        if k in keep or (prefixes and k.startswith(tuple(prefixes)))
    }


def run(
    args: Sequence[str],
    *,
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    stdin: str | bytes | None = None,
    stdout_path: Path | None = None,
    binary: bool = False,
) -> Completed:
    """Run a program to completion and capture its output as text.

    `env` is the child's whole environment (build it from `allowed`); None: PATH alone. With `stdout_path`,
    standard output goes straight to that file (large manifests never sit in memory twice). A timeout becomes
    returncode 124 with a message on stderr, like coreutils' `timeout`, so callers classify
    it together with the program's own failures. With `binary`, standard output is kept as bytes
    (`output`): git's NUL-separated names and archives are not text.
    """
    full_env = dict(env) if env is not None else allowed()
    wall = time.time()
    start = time.monotonic()
    out_file = open(stdout_path, "wb") if stdout_path else None  # noqa: SIM115 (closed below)
    try:
        proc = subprocess.run(
            list(args),
            cwd=cwd,
            env=full_env,
            input=stdin.encode() if isinstance(stdin, str) else stdin,
            stdout=out_file or subprocess.PIPE,
            stderr=subprocess.PIPE,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as exc:
        raise missing(args[0]) from exc
    except subprocess.TimeoutExpired as exc:
        out = (
            exc.stdout.decode("utf-8", "replace")
            if isinstance(exc.stdout, bytes)
            else exc.stdout or ""
        )
        err = (
            exc.stderr.decode("utf-8", "replace")
            if isinstance(exc.stderr, bytes)
            else exc.stderr or ""
        )
        return Completed(
            124,
            out,
            err + f"\ntimed out after {timeout:.0f}s",
            time.monotonic() - start,
        )
    finally:
        if out_file:
            out_file.close()
    stdout = "" if out_file or binary else proc.stdout.decode("utf-8", "replace")
    output = proc.stdout if binary and not out_file else b""
    err = proc.stderr.decode("utf-8", "replace")
    trace(args, wall, time.time())
    return Completed(proc.returncode, stdout, err, time.monotonic() - start, output)


def go_gc() -> dict[str, str]:
    """GC setting for the short-lived Go programs we start (flux, timoni): with GOGC=400 a call spends
    about a quarter less CPU (no further gain from GOGC=off). The heap may grow to 5x the live data
    instead of 2x; peak RSS of the example's renders and pushes stayed at 40-55 MB. A user's own GOGC
    or GOMEMLIMIT wins."""
    own = {k: os.environ[k] for k in ("GOGC", "GOMEMLIMIT") if k in os.environ}
    return own or {"GOGC": "400"}
