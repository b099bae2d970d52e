"""Command line: `python -m gitops_action plan|push|dry-run ...` (any CI), and the action's entry."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from . import app
from .errors import SettingsError
from .settings import from_args, from_inputs


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = from_args(sys.argv[1:] if argv is None else argv, os.environ)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
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
        print(f"::error title=timoni-flux-push: bad input::{exc}", flush=True)
        return 2
    return app.main(settings, os.environ)
