"""The package's shape, from its imports: no cycle, and data flows one way, so no module imports
from a stage later than its own. The stage order is written here, once."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

PACKAGE = Path(__file__).resolve().parents[2] / "gitops_action"

# Earliest first. A module may import from its own stage or an earlier one. The top-level base
# modules come first, the wiring (app, cli, __main__) last.
STAGES = [
    "gitops_action.errors gitops_action.defaults gitops_action.runner gitops_action.secrets"
    " gitops_action.text",
    "gitops_action.inputs",
    "gitops_action.changes",
    "gitops_action.config",
    "gitops_action.registry",
    "gitops_action.plan",
    "gitops_action.render",
    "gitops_action.push",
    "gitops_action.sign",
    "gitops_action.report",
    "gitops_action.cluster",
    # the clients a run needs (login, docker config, flux, reader, signer), built from Settings
    "gitops_action.clients",
    "gitops_action.modes",
    "gitops_action.app gitops_action.cli gitops_action.__main__",
]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported(path: Path, known: set[str]) -> Iterator[str]:
    """Every package module `path` imports, at the top or inside a function (a lazy import is
    still a dependency), TYPE_CHECKING ones too (a type is a dependency of the reader)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            assert node.level == 0, f"{path}: relative import"
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                if full in known:
                    yield full
                elif node.module in known:
                    yield node.module
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in known:
                    yield alias.name


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {
        name: {m for m in imported(path, known) if m != name and m != "gitops_action"}
        for name, path in found.items()
    }


def stage(name: str) -> int:
    for i, members in enumerate(STAGES):
        for member in members.split():
            if name == member or name.startswith(member + "."):
                return i
    raise AssertionError(f"{name} is in no stage: add it to STAGES")


def test_every_module_has_a_stage() -> None:
    for name in modules():
        if name != "gitops_action":
            stage(name)


def test_no_module_imports_from_a_later_stage() -> None:
    upward = sorted(
        f"{name} ({STAGES[stage(name)].split()[0]}) imports {dep}"
        for name, deps in graph().items()
        if name != "gitops_action"
        for dep in deps
        if stage(dep) > stage(name)
    )
    assert not upward, "\n".join(upward)


def test_no_import_cycle() -> None:
    edges = graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for dep in sorted(edges.get(name, ())):
            if state.get(dep) == 1:
                cycles.append([*path[path.index(dep) :], dep])
            elif dep not in state:
                visit(dep, [*path, dep])
        state[name] = 2

    for name in sorted(edges):
        if name not in state:
            visit(name, [name])
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_the_checks_see_a_violation() -> None:
    """The graph is read from the source: a known import shows up (else the checks above pass
    vacuously)."""
    edges = graph()
    assert "gitops_action.push.results" in edges["gitops_action.push.pipeline"]
    assert "gitops_action.errors" in edges["gitops_action.app"]
