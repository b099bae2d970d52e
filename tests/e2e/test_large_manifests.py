"""Issue 7: a 50 MB manifest is pushed whole, byte for byte, and none of it lands in the log, the
summary or the outputs. Real timoni, flux, registry and git.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

from conftest import GitRepo
from support import example_runs
from support.example_runs import (
    BIG_MODULE,
    edit_config,
    layer_content,
    log_of,
    push,
    registry_name,
    statuses,
)
from support.registry import Registry

# This module's fixtures, from support/example_runs.py.
prefix = example_runs.prefix


def test_fifty_megabyte_manifest_is_pushed_whole(
    example_repo: GitRepo, registry: Registry, prefix: str, tmp_path: Path
) -> None:
    for rel, text in BIG_MODULE.items():
        example_repo.write(rel, text)
    edit_config(
        example_repo,
        "bundles:\n",
        "  - name: big\n    namespace: apps\n    module: ./modules/big\n"
        '    values: [apps/big/values.cue]\n    artifact: "{registry}/big"\nbundles:\n',
    )
    expected = subprocess.run(
        [
            "timoni",
            "build",
            "big",
            "./modules/big",
            "-n",
            "apps",
            "-f",
            "apps/big/values.cue",
        ],
        cwd=example_repo.path,
        env={
            **os.environ,
            "TIMONI_CACHE_DIR": str(tmp_path / "cache"),
            "KUBECONFIG": os.devnull,
        },
        capture_output=True,
        check=True,
    ).stdout
    assert len(expected) > 50 * 1024 * 1024
    run = push(example_repo, tmp_path / "run", prefix, targets="big,webapp-staging")
    assert run.returncode == 0, log_of(run)
    assert statuses(run) == {"big": "pushed", "webapp-staging": "pushed"}
    repository = f"{registry_name(prefix)}/big"
    found = registry.manifest(repository, "latest")
    assert found is not None and found[0] == run.by_name()["big"]["digest"]
    content = layer_content(registry, repository, found[1])
    assert (
        hashlib.sha256(content).digest() == hashlib.sha256(expected).digest()
    )  # all 50 MB, byte for byte
    # None of it lands in the log, the summary or the outputs.
    assert "0123456789abcdef0123456789abcdef" not in log_of(
        run
    ) + run.summary + json.dumps(run.outputs)
    assert len(run.stdout) + len(run.summary) < 20_000

    # (`all`: a re-run of a new-branch event plans nothing now that the tag holds this commit.)
    again = push(example_repo, tmp_path / "again", prefix, targets="big", all="true")
    assert again.returncode == 0, log_of(again)
    assert statuses(again) == {"big": "unchanged"}
    assert again.by_name()["big"]["digest"] == found[0]
