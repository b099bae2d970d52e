"""Run the action the way GitHub's runner does: INPUT_* variables, event payload file,
GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files, entrypoint.py as the process."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class ActionRun:
    returncode: int
    stdout: str
    stderr: str
    outputs: dict[str, str]
    summary: str

    def artifacts(self) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = json.loads(self.outputs["artifacts"])
        return data

    def by_name(self) -> dict[str, dict[str, Any]]:
        return {a["name"]: a for a in self.artifacts()}


def parse_output_file(text: str) -> dict[str, str]:
    """Parse `name<<DELIM` blocks (and `name=value` lines) exactly as the runner does."""
    out: dict[str, str] = {}
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delim = line.split("<<", 1)
            j = lines.index(delim, i + 1)
            out[name] = "\n".join(lines[i + 1 : j])
            i = j + 1
        elif "=" in line:
            name, value = line.split("=", 1)
            out[name] = value
            i += 1
        else:
            i += 1
    return out


def run_action(
    repo: Path,
    work: Path,
    *,
    inputs: dict[str, str],
    event_name: str = "push",
    payload: dict[str, Any] | None = None,
    sha: str = "",
    ref_name: str = "main",
    env: dict[str, str] | None = None,
    timeout: float = 600,
    started: list[subprocess.Popen[bytes]] | None = None,
) -> ActionRun:
    work.mkdir(parents=True, exist_ok=True)
    event_path = work / "event.json"
    event_path.write_text(json.dumps(payload or {}))
    output, summary = work / "output.txt", work / "summary.md"
    for f in (output, summary):
        f.write_text("")
    full = {
        k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "INPUT_"))
    }
    full.update(
        {
            "GITHUB_ACTIONS": "true",
            "CI": "true",
            "GITHUB_WORKSPACE": str(repo),
            "GITHUB_EVENT_NAME": event_name,
            "GITHUB_EVENT_PATH": str(event_path),
            "GITHUB_SHA": sha
            or subprocess.run(
                ["git", "-C", str(repo), "rev-parse", "HEAD"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip(),
            "GITHUB_REF_NAME": ref_name,
            "GITHUB_REF": f"refs/heads/{ref_name}",
            "GITHUB_REPOSITORY": "octo-org/gitops",
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_RUN_ID": "4242",
            "GITHUB_OUTPUT": str(output),
            "GITHUB_STEP_SUMMARY": str(summary),
            "PYTHONPATH": str(ROOT),
        }
    )
    for name, value in inputs.items():
        full[f"INPUT_{name.upper()}"] = value
    full.update(env or {})
    if started is not None:  # the caller waits for (or kills) the process itself
        started.append(
            subprocess.Popen(
                [sys.executable, str(ROOT / "entrypoint.py")],
                cwd=repo,
                env=full,
                stdout=(work / "stdout.txt").open("wb"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
        return ActionRun(0, "", "", {}, "")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "entrypoint.py")],
        cwd=repo,
        env=full,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    run = ActionRun(
        proc.returncode,
        proc.stdout,
        proc.stderr,
        parse_output_file(output.read_text()),
        summary.read_text(),
    )
    PRODUCED.append(run)
    return run


# Every run of the session, for the suite-wide secrets scan (tests/e2e/test_secrets_scan.py).
PRODUCED: list[ActionRun] = []


ANNOTATION = re.compile(
    r"^::(error|warning|notice) (?P<props>[^:]*)::(?P<msg>.*)$", re.M
)


def annotations(stdout: str) -> list[dict[str, str]]:
    found = []
    for m in ANNOTATION.finditer(stdout):
        props = dict(p.split("=", 1) for p in m.group("props").split(",") if "=" in p)
        found.append({"level": m.group(1), **props, "message": m.group("msg")})
    return found
