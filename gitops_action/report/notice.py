"""A warning as its reader sees it: an annotation in the Actions log, a line on stderr elsewhere.
Its own module, light to import: the run warns while it plans, long before it reports."""

from __future__ import annotations

import sys

import github_action_utils as gha

from gitops_action.inputs.context import Context
from gitops_action.text import plain


def warn(ctx: Context, message: str) -> None:
    if ctx.in_actions:
        gha.warning(plain(message), title="timoni-flux-push")
    else:
        print(f"warning: {message}", file=sys.stderr)
