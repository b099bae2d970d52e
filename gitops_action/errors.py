"""Every error a run reports itself, in one hierarchy caught once, in `app.main`.

`UsageError` and its kinds (configuration, inputs, event payload) stop the run with exit code 2 and
nothing built. Any other `ActionError` (git failing, a tool missing) and any unexpected exception is
an internal error: exit 1, reported in the log, the summary and the outputs like any other failure.
One target's failure is never an exception: it is that target's result (see pipeline.py).
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from typing import TypeVar

INTERNAL_TRACEBACK = "internal error, traceback:"  # the log entry of a target's bug
T = TypeVar("T")

# The exit codes of every mode (app.py says when each is given).
EXIT_OK = 0
EXIT_FAILED = (
    1  # a target failed (after every other one ran), or the run stopped on a bug
)
EXIT_USAGE = 2  # a configuration or usage error: nothing built, pushed or moved


def exit_code(*, failed: bool = False, usage: bool = False) -> int:
    """The one exit-code rule, every mode's: a usage error first, then any failure, else 0."""
    if usage:
        return EXIT_USAGE
    return EXIT_FAILED if failed else EXIT_OK


class ActionError(Exception):
    """Base of the errors the action raises on purpose. `file`/`line` point an annotation at them."""

    file: str = ""
    line: int | None = None


class UsageError(ActionError):
    """Bad inputs, flags or event payload (e.g. an unknown name in `targets`): exit 2, nothing built."""


class ConfigError(UsageError):
    """A configuration problem: the run stops with exit code 2 before anything is built."""

    def __init__(
        self, file: str, key: str, message: str, line: int | None = None
    ) -> None:
        self.file, self.key, self.message, self.line = file, key, message, line
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {key or '(top level)'}: {message}")


class SettingsError(UsageError, ValueError):
    """An input (`INPUT_*`) or command-line flag that cannot be used."""


class EventError(UsageError):
    """The event payload is unusable (missing file or fields)."""


class GitError(ActionError):
    """git failed where the run cannot go on without it (or its output was not what git writes)."""


class ToolMissing(ActionError):
    """An external program is not installed or not executable."""


def internal_error(exc: BaseException, log: list[str]) -> str:
    """The one-line message of a bug in one target's work; its traceback goes to `log` (the
    target's log group in Actions, stderr on the command line: `finish.finish`). A missing
    program is no bug: its own message says what to install, no traceback."""
    if isinstance(exc, ToolMissing):
        return str(exc)
    log.append(
        f"{INTERNAL_TRACEBACK}\n" + "".join(traceback.format_exception(exc)).rstrip()
    )
    return f"internal error: {type(exc).__name__}: {exc} (traceback in the log)"


def guarded(
    step: Callable[[], T], failed: Callable[[str], T], log: list[str]
) -> tuple[T, float]:
    """The one per-target guard: `step`'s value and its seconds. A bug in it fails that target only
    (`failed` of its `internal_error` message, the traceback in the target's `log`), never the
    other targets' run; its time counts."""
    start = time.monotonic()
    try:
        out = step()
    except Exception as exc:  # a bug must not cost the other targets their run
        out = failed(internal_error(exc, log))
    return out, time.monotonic() - start
