"""Command line: `python -m gitops_action plan|push|dry-run ...` (any CI), and the action's entry."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from gitops_action.errors import EXIT_USAGE, SettingsError
from gitops_action.inputs.settings import from_args, from_inputs


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = from_args(sys.argv[1:] if argv is None else argv, os.environ)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    # after the flags: --help, --version and a usage error answer at once
    from gitops_action import app

    return app.main(settings, os.environ)


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
    from gitops_action import app

    return app.main(settings, os.environ)


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
