"""Packaging checks: action.yml, the Dockerfile, the workflows and the README agree with each other,
with tools/versions.env and with the user-facing contract. Linters run as the Makefile runs them;
a missing linter is a failure, never a skip."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
ACTION_YML = ROOT / "action.yml"
WORKFLOWS = ROOT / ".github" / "workflows"
REUSABLE_WORKFLOW = WORKFLOWS / "timoni-flux-push.yml"

# The action inputs and outputs promised by the contract (/work/shared/CONTRACT.md, "Action inputs"
# and "Outputs"). Hard-coded on purpose: action.yml may add to them but never drop one.
CONTRACT_INPUTS = {
    "config",
    "mode",
    "all",
    "base",
    "targets",
    "revision",
    "registry-username",
    "registry-password",
    "provider",
    "github-token",
    "parallel",
    "skip-unchanged",
    "comment",
    "sign",
    "cosign-key",
    "cosign-password",
    "deployments",
}
CONTRACT_OUTPUTS = {"artifacts", "matrix", "pushed", "failed"}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def action() -> dict[str, Any]:
    data = load_yaml(ACTION_YML)
    assert isinstance(data, dict), "action.yml is not a mapping"
    return data


def action_inputs() -> list[str]:
    return list(action().get("inputs") or {})


def action_outputs() -> list[str]:
    return list(action().get("outputs") or {})


def versions_env() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in (
        (ROOT / "tools" / "versions.env").read_text(encoding="utf-8").splitlines()
    ):
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip().strip("\"'")
    return values


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with line continuations joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, rest = full.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
    return instructions


# --- (a) the Dockerfile builds the versions that tools/versions.env pins, with tools/install.sh ---


def test_dockerfile_args_match_versions_env() -> None:
    pins = versions_env()
    args: dict[str, list[str]] = {}
    for keyword, rest in dockerfile_instructions():
        if keyword == "ARG" and "=" in rest:
            for item in rest.split():
                name, _, value = item.partition("=")
                args.setdefault(name, []).append(value.strip("\"'"))
    for name in ("TIMONI_VERSION", "FLUX_VERSION", "COSIGN_VERSION"):
        assert name in pins, f"tools/versions.env has no {name}"
        assert args.get(name), f"Dockerfile declares no `ARG {name}=...`"
        assert set(args[name]) == {pins[name]}, (
            f"Dockerfile ARG {name} = {args[name]}, tools/versions.env says {pins[name]}"
        )


def test_dockerfile_builds_tools_with_install_script() -> None:
    instructions = dockerfile_instructions()
    # `--platform=...` flags dropped: the tools stage runs on the build platform (it cross-compiles).
    froms = [
        " ".join(w for w in rest.split() if not w.startswith("--"))
        for k, rest in instructions
        if k == "FROM"
    ]
    assert froms and froms[0].split()[0].startswith("golang:1.26-bookworm"), froms
    assert froms[-1].split()[0].startswith("python:3.11-slim-bookworm"), froms
    assert not any(f.split()[0].startswith("golang") for f in froms[1:]), (
        "Go image after the builder"
    )
    runs = [rest for keyword, rest in instructions if keyword == "RUN"]
    install = [r for r in runs if "tools/install.sh" in r]
    assert install, "no RUN calls tools/install.sh"
    assert "--no-apt" in install[0] and re.search(
        r"--only\s+timoni,flux,cosign\b", install[0]
    ), install[0]
    # Each tool the builder makes is copied into the final image.
    tool_copies = [
        r.split()[1:-1] for k, r in instructions if k == "COPY" and "--from=tools" in r
    ]
    assert any(
        {"/out/timoni", "/out/flux", "/out/cosign"} <= set(c) for c in tool_copies
    ), tool_copies
    copies = [rest for keyword, rest in instructions if keyword == "COPY"]
    assert any(c.split()[0].rstrip("/") == "tools" for c in copies), (
        "tools/ is not copied"
    )
    assert (
        "ENTRYPOINT",
        '["/opt/venv/bin/python", "/app/entrypoint.py"]',
    ) in instructions
    env = " ".join(rest for keyword, rest in instructions if keyword == "ENV")
    for setting in ("PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1", "TZ=UTC"):
        assert setting in env, f"Dockerfile ENV lacks {setting}"
    assert any("--require-hashes" in r and "requirements.lock" in r for r in runs)


def test_dockerfile_copy_sources_exist_and_are_not_dockerignored() -> None:
    ignored = {
        line.strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    for keyword, rest in dockerfile_instructions():
        if keyword != "COPY" or rest.startswith("--from"):
            continue
        for source in rest.split()[:-1]:
            top = source.strip("/").split("/")[0]
            assert (ROOT / source).exists(), (
                f"Dockerfile copies {source}, which does not exist"
            )
            assert top not in ignored, (
                f".dockerignore excludes {top}, which the Dockerfile copies"
            )


# --- (b) hadolint, (c) actionlint: as `make lint` runs them ---


def run_linter(argv: list[str]) -> None:
    result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, (
        f"{' '.join(argv)} exited {result.returncode}:\n{result.stdout}{result.stderr}"
    )


def test_hadolint_passes() -> None:
    # Next to the interpreter running the tests (the venv's bin dir); not resolved through symlinks.
    hadolint = Path(sys.executable).parent / "hadolint"
    assert hadolint.is_file(), (
        f"{hadolint} is missing: install the dev lock (make venv)"
    )
    run_linter([str(hadolint), "--no-color", "Dockerfile"])


def test_actionlint_passes() -> None:
    actionlint = ROOT / ".tools" / "bin" / "actionlint"
    assert actionlint.is_file(), (
        f"{actionlint} is missing: run tools/install.sh --only actionlint"
    )
    run_linter([str(actionlint)])


# --- (d) the README documents every input and output ---


def test_readme_tables_name_every_input_and_output() -> None:
    readme = ROOT / "README.md"
    names = action_inputs() + action_outputs()
    assert readme.is_file(), (
        f"README.md is missing; it must document: {', '.join(names)}"
    )
    documented: set[str] = set()
    for line in readme.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("|"):
            documented.update(re.findall(r"`([^`\s]+)`", line))
    missing = [name for name in names if name not in documented]
    assert not missing, f"README.md has no table row naming `{'`, `'.join(missing)}`"


# --- (e) action.yml keeps the contract ---


def test_action_inputs_and_outputs_cover_the_contract() -> None:
    assert not CONTRACT_INPUTS - set(action_inputs()), sorted(
        CONTRACT_INPUTS - set(action_inputs())
    )
    extra_outputs = {"changed", "unchanged"}
    missing = (CONTRACT_OUTPUTS | extra_outputs) - set(action_outputs())
    assert not missing, sorted(missing)


def test_action_metadata() -> None:
    data = action()
    assert data["name"] == "timoni-flux-push"
    assert data.get("description") and data.get("branding")
    runs = data["runs"]
    assert runs["using"] == "docker" and runs["image"] == "Dockerfile"
    assert "args" not in runs, (
        "inputs travel as INPUT_* variables, never on a command line"
    )
    inputs = data["inputs"]
    assert inputs["github-token"]["default"] == "${{ github.token }}"
    assert inputs["timeout"]["default"] == "5m"
    assert inputs["registry"]["default"] == ""
    for name, spec in inputs.items():
        assert spec.get("description"), f"input {name} has no description"
        if "default" in spec:
            assert isinstance(spec["default"], str), (
                f"input {name}: default must be a string"
            )
    for name, spec in data["outputs"].items():
        assert spec.get("description"), f"output {name} has no description"


# --- (f) the package reads every input ---


def package_strings() -> set[str]:
    strings: set[str] = set()
    for path in sorted((ROOT / "gitops_action").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                strings.add(node.value.lower())
    return strings


def test_package_reads_every_input() -> None:
    strings = package_strings()
    assert strings, "gitops_action/ has no Python source yet"
    # An input counts as read when a string literal names it: "name", "INPUT_NAME" or "--name".
    missing = [
        name
        for name in action_inputs()
        if not {name, f"input_{name}", f"--{name}"} & strings
    ]
    assert not missing, (
        f"no string literal in gitops_action/ names the inputs {missing} "
        "(as 'name', 'INPUT_NAME' or '--name')"
    )


# --- the reusable workflow forwards its inputs to the action ---


def test_reusable_workflow_forwards_inputs_to_the_action() -> None:
    workflow = load_yaml(REUSABLE_WORKFLOW)
    # PyYAML reads the bare key `on` as True.
    trigger = workflow.get("on", workflow.get(True))
    call = trigger["workflow_call"]
    steps = [s for job in workflow["jobs"].values() for s in job.get("steps", [])]
    action_steps = [
        s for s in steps if str(s.get("uses", "")).startswith("org/timoni-flux-push@")
    ]
    assert len(action_steps) == 1, (
        "the reusable workflow must run org/timoni-flux-push@<ref> once"
    )
    passed = set(action_steps[0].get("with", {}))
    unknown = passed - set(action_inputs())
    assert not unknown, (
        f"the reusable workflow passes inputs action.yml lacks: {sorted(unknown)}"
    )
    forwarded = set(call["inputs"]) - {"runs-on"}
    assert not forwarded - passed, (
        f"workflow inputs not passed on: {sorted(forwarded - passed)}"
    )
    assert not set(call["secrets"]) - passed, "every secret is passed to the action"
    assert {"artifacts", "pushed", "failed"} <= set(call["outputs"])
    for job in workflow["jobs"].values():
        assert job["concurrency"]["cancel-in-progress"] is False


def _schema_keys(node: object, found: set[str]) -> set[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                found.update(value)
            _schema_keys(value, found)
    elif isinstance(node, list):
        for item in node:
            _schema_keys(item, found)
    return found


def test_readme_configuration_reference_matches_the_schema() -> None:
    """Every key the JSON Schema allows is documented in the README's reference table, and the
    table documents no key the schema would reject."""
    schema = json.loads(
        (ROOT / "gitops_action/config/schema/config.schema.json").read_text()
    )
    keys = _schema_keys(schema, set())
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Configuration reference", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([A-Za-z]+)` \|", section, re.M))
    assert keys - documented == set(), (
        f"schema keys missing from the README: {sorted(keys - documented)}"
    )
    assert documented - keys == set(), (
        f"README documents unknown keys: {sorted(documented - keys)}"
    )


def test_install_script_builds_cosign_by_default() -> None:
    """`make test` on a fresh machine runs install.sh without --only: cosign must be in that default,
    built from its Go module at the pinned version (the tests require the binary)."""
    script = (ROOT / "tools" / "install.sh").read_text(encoding="utf-8")
    default = re.search(r'^only="([^"]*)"', script, re.M)
    assert default and "cosign" in default.group(1).split(","), default
    assert re.search(
        r"build_from_module github\.com/sigstore/cosign/v3 \"v\$COSIGN_VERSION\"",
        script,
    )
    assert versions_env()["COSIGN_VERSION"].startswith("3."), (
        "the signing flags are cosign v3's"
    )
