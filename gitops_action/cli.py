"""Command line: `python -m gitops_action plan|push|dry-run ...` (any CI), and the action's entry."""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from collections.abc import Sequence
from typing import NoReturn

from gitops_action.errors import EXIT_USAGE, SettingsError
from gitops_action.inputs.settings import Settings, from_args, from_inputs


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = from_args(sys.argv[1:] if argv is None else argv, os.environ)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    # after the flags: --help, --version and a usage error answer at once
    return _run(settings)


def action_main() -> int:
    """GitHub's Docker-action environment: inputs as INPUT_*, workspace owned by another uid."""
    # git refuses a checkout owned by another uid ("dubious ownership"). Trust the workspace for
    # our own git processes through the environment: no file is written, not even in $HOME.
    workspace = os.environ.get("GITHUB_WORKSPACE", ".")
    count = int(os.environ.get("GIT_CONFIG_COUNT", "0") or 0)
    os.environ[f"GIT_CONFIG_KEY_{count}"] = "safe.directory"
    os.environ[f"GIT_CONFIG_VALUE_{count}"] = workspace
    os.environ["GIT_CONFIG_COUNT"] = str(count + 1)
    try:
        settings = from_inputs(os.environ)
    except SettingsError as exc:
        return _bad_input(str(exc))
    return _run(settings)


def _run(settings: Settings) -> int:
    """The run, with the configuration's schema check on the other core, started before the
    package's imports so that the two overlap (config/validator_process.py)."""
    from gitops_action.config import validate, validator_process

    if settings.mode != "deployment-status":  # the one mode that reads no configuration
        validator_process.start(validate.check_here, validate.validator)
    try:
        from gitops_action import app

        return app.main(settings, os.environ)
    finally:
        validator_process.stop()


def _bad_input(message: str) -> int:
    """An input no run can use: the annotation, the summary and the outputs still say so (exit 2)."""
    import github_action_utils as gha

    from gitops_action.text import md

    gha.error(message, title="timoni-flux-push: bad input")
    summary = os.environ.get("GITHUB_STEP_SUMMARY", "")
    if summary:
        with open(summary, "a", encoding="utf-8", errors="backslashreplace") as fh:
            fh.write(f"## timoni-flux-push\n\nNothing was built: {md(message)}\n")
    if os.environ.get("GITHUB_OUTPUT"):
        from gitops_action.report.finish import NO_ARTIFACTS

        for name, value in NO_ARTIFACTS.items():
            gha.set_output(name, value)
    return EXIT_USAGE


def leave(code: int) -> NoReturn:
    """End the process once a run returned `code`: everything it writes is written and closed by
    then. What the interpreter would still do after the exit handlers (tear down each of the ~450
    modules a run imports, collect every object: 25-35 ms of every run's wall time) changes nothing
    anyone sees, so it is skipped: the exit handlers run (`atexit`), the standard streams are
    flushed, and the process ends. The usual exit instead while a thread that is not a daemon still
    runs (the interpreter would wait for it) and under a profiler or a tracer (coverage: they write
    their data at the very end). A run that ends by an exception (a signal's SystemExit included)
    never gets here: it exits the usual way."""
    others = [
        t
        for t in threading.enumerate()
        if t is not threading.main_thread() and not t.daemon and t.is_alive()
    ]
    if others or sys.getprofile() is not None or sys.gettrace() is not None:
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(
            OSError, ValueError
        ):  # a closed pipe: nothing reaches it
            stream.flush()
    os._exit(code)
