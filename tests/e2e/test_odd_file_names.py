"""Issue 7: file names in Unicode, and names that are not UTF-8 at all, are planned, pushed and
reported (the log and the summary stay valid UTF-8). Real timoni, flux, registry and git.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from conftest import GitRepo
from support import example_runs
from support.example_runs import (
    ALL,
    group,
    log_of,
    push,
    statuses,
)
from support.registry import Registry

# This module's fixtures, from support/example_runs.py.
prefix = example_runs.prefix


def test_unicode_and_non_utf8_file_names_plan_and_push(
    example_repo: GitRepo, registry: Registry, prefix: str, tmp_path: Path
) -> None:
    base = example_repo.head()
    (example_repo.path / "apps/webapp/ünïcødé notes.md").write_text("notes\n")
    (example_repo.path / "modules/webapp/templates/README-ñ.txt").write_text("docs\n")
    os.makedirs(example_repo.path / "docs", exist_ok=True)
    raw = os.fsencode(example_repo.path)
    Path(os.fsdecode(raw + b"/modules/credentials/caf\xe9-notes.txt")).write_text(
        "latin-1 name\n"
    )
    Path(os.fsdecode(raw + b"/docs/\xff\xfe.md")).write_text("not UTF-8 at all\n")
    example_repo.commit_all("odd file names")
    run = push(example_repo, tmp_path / "run", prefix, before=base)
    assert run.returncode == 0, log_of(run)
    assert statuses(run) == dict.fromkeys(ALL, "pushed")
    reasons = {a["name"]: " ".join(a["reasons"]) for a in run.artifacts()}
    assert "modules/webapp/templates/README-ñ.txt" in reasons["webapp-staging"]
    assert "modules/credentials/caf" in reasons["staging/billing"]
    # The log and the summary stay valid UTF-8 (run_action decodes them strictly): a name that is not
    # UTF-8 shows its odd byte escaped; the summary still lists every target.
    assert (
        "README-ñ.txt" in run.summary
        and "modules/credentials/caf\\udce9-notes.txt" in run.summary
    )
    assert "caf\\udce9-notes.txt" in group(run, "staging/billing")
    assert [a["name"] for a in json.loads(run.outputs["artifacts"])] == [
        a["name"] for a in run.artifacts()
    ]
