"""Each local `module:` of the configuration being built is a Timoni module: a wrong path is a
configuration error at its line (exit 2) before anything runs, not a failure at push time."""

from __future__ import annotations

import difflib
from dataclasses import replace
from typing import TYPE_CHECKING

from gitops_action.config.globs import PLACEHOLDER
from gitops_action.errors import ConfigError

if TYPE_CHECKING:
    from gitops_action.config.model import Target

MODULE_FILE = "cue.mod/module.cue"


def module_problem(module: str, repo_files: frozenset[str]) -> str:
    """Why the local module directory `module` cannot be built ("" when it can be tried)."""
    if f"{module}/{MODULE_FILE}" in repo_files:
        return ""
    if any(f.startswith(f"{module}/") for f in repo_files):
        return f"{module} is not a Timoni module (no {module}/{MODULE_FILE})"
    modules = sorted(
        {
            f.removesuffix(f"/{MODULE_FILE}")
            for f in repo_files
            if f.endswith(f"/{MODULE_FILE}")
        }
    )
    near = difflib.get_close_matches(module, modules, n=1, cutoff=0.75)
    hint = f": did you mean `./{near[0]}`?" if near else ""
    return f"module directory {module} does not exist{hint}"


def checked_modules(
    targets: list[Target],
    module: str,
    file: str,
    key: str,
    line: int | None,
    repo_files: frozenset[str],
) -> list[Target]:
    """An entry's targets, their local module checked. A literal path that is wrong stops the run
    (every target of the entry would fail alike); a path a `match` placeholder filled in fails that
    target alone, with the `module:` line."""
    if not targets or not module or module.startswith("oci://"):
        return targets
    if not PLACEHOLDER.search(module):
        local = targets[0].local_module
        problem = module_problem(local, repo_files) if local else ""
        if problem:
            raise ConfigError(file, key, problem, line)
        return targets
    out = []
    for t in targets:
        problem = (
            module_problem(t.local_module, repo_files)
            if t.local_module and not t.problem
            else ""
        )
        where = f"{file}:{line} {key}" if line else f"{file} {key}"
        why = f"{problem} ({where}: {module!r} filled in for {t.files[-1]})"
        out.append(replace(t, problem=why, line=line) if problem else t)
    return out
