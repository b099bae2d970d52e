"""config.validator_process: the schema check in a forked copy gives the answers the run would give
itself (same error, same key, same line), and the copy ends with the run. Each case runs in a fresh
interpreter: a fork is refused while another thread runs, as in pytest's own process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

SCRIPT = r"""
import json, os, sys, threading
from gitops_action.config import validator_process, validate
from gitops_action.config.yaml_lines import parse_yaml
from gitops_action.errors import ConfigError

def answer(fn, text):
    data, lines = parse_yaml(text, "c.yaml")
    try:
        fn(data, lines, "c.yaml")
        return None
    except ConfigError as exc:
        return [exc.file, exc.key, exc.message, exc.line]

texts = json.loads(sys.stdin.read())
validator_process.start(validate.check_here, validate.validator)
started = bool(validator_process._running)
pid = validator_process._running[0].pid if started else 0
remote = [answer(validate.validate, t) for t in texts]
imported_here = "jsonschema" in sys.modules
validator_process.stop()
gone = True
if pid:
    try:
        os.kill(pid, 0)
        gone = False
    except ProcessLookupError:
        pass
local = [answer(validate.check_here, t) for t in texts]
print(json.dumps({"started": started, "remote": remote, "local": local,
                  "imported_here": imported_here, "gone": gone}))
"""

TEXTS = [
    "version: 1\nregistry: oci://r.example/x\ninstances:\n  - name: web\n    module: m\n"
    "    namespace: ns\n    values: [a.cue]\n",
    "version: 1\ninstances:\n  - name: web\n    namesppace: ns\n    module: m\n",
    "version: 2\n",
    "version: 1\ninstances:\n  - name: 'Bad Name'\n    module: m\n    namespace: ns\n",
    "version: 1\nbogus: true\n",
]


def run(texts: list[str]) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    found: dict[str, object] = json.loads(out.stdout)
    return found


@pytest.mark.unit
def test_the_copy_answers_as_the_run_would_and_ends_with_it() -> None:
    found = run(TEXTS)
    assert found["started"] is True
    assert found["remote"] == found["local"]
    # the broken ones are refused, with a key and a line
    assert [a is None for a in found["local"]] == [True, False, False, False, False]  # type: ignore[union-attr]
    # the run itself never imported jsonschema: the copy did the checking
    assert found["imported_here"] is False
    assert found["gone"] is True


@pytest.mark.unit
def test_a_configuration_too_deep_to_send_is_checked_by_the_run() -> None:
    """Nesting that parses and that the run's own check answers, but deeper than pickle goes: the
    run checks it itself (the user's configuration error, exit 2), not a RecursionError (exit 1)."""
    deep = "version: 1\nx: " + "[" * 900 + "]" * 900 + "\n"
    found = run([deep])
    assert found["started"] is True
    assert found["remote"] == found["local"]
    assert found["local"] == [["c.yaml", "x", found["local"][0][2], 2]]  # type: ignore[index]


BUSY = r"""
import os, signal, sys, threading, time
from gitops_action.config import validator_process, validate
from gitops_action.config.yaml_lines import parse_yaml

text = "version: 1\ninstances:\n" + "".join(
    f"  - name: web{i}\n    module: m\n    namespace: ns\n" for i in range(30000)
)
data, lines = parse_yaml(text, "c.yaml")
validator_process.start(validate.check_here, validate.validator)
pid = validator_process._running[0].pid
threading.Thread(target=validator_process.check, args=(data, lines, "c.yaml"), daemon=True).start()
time.sleep(0.5)  # the copy is checking
start = time.monotonic()
validator_process.stop()
print(time.monotonic() - start)
"""


@pytest.mark.unit
def test_the_run_ends_at_once_while_its_copy_is_busy() -> None:
    """A run that stops mid-check (a cancelled job's signal) does not wait for the copy to finish a
    large configuration first: the copy is ended, not awaited."""
    out = subprocess.run(
        [sys.executable, "-c", BUSY],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
        timeout=60,
    )
    assert float(out.stdout) < 0.5
