"""Issue 12, item 7: a cancelled job leaves no credentials behind. GitHub cancels a container
action with a signal; before this fix SIGTERM killed the process at once and the docker config with
the registry login stayed in the temp directory (`finally` runs only on a normal exit)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import GitRepo
from support.action import ROOT
from support.fault_proxy import fault_proxy
from support.registry import Registry

PASSWORD = "Cancel-Me-Pa55word"


def configs(tmp: Path) -> list[Path]:
    return list(tmp.glob("timoni-flux-push-*/docker-*/.docker/config.json"))


def wait_for(condition: object, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_removes_the_docker_config(
    signum: signal.Signals, example_repo: GitRepo, registry: Registry, tmp_path: Path
) -> None:
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    with fault_proxy(registry.host) as proxy:
        # every registry request hangs: the run is mid-way when the signal comes
        proxy.stall(60)
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("GITHUB_", "INPUT_"))
        }
        env.update(
            {
                "GITHUB_ACTIONS": "true",
                "GITHUB_WORKSPACE": str(example_repo.path),
                "GITHUB_EVENT_NAME": "workflow_dispatch",
                "GITHUB_EVENT_PATH": "",
                "GITHUB_SHA": example_repo.head(),
                "GITHUB_REF_NAME": "main",
                "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
                "PYTHONPATH": str(ROOT),
                "TMPDIR": str(private_tmp),
                "INPUT_REGISTRY": f"oci://{proxy.host}/cancel",
                "INPUT_REGISTRY-USERNAME": "ci-user",
                "INPUT_REGISTRY-PASSWORD": PASSWORD,
                "INPUT_ALL": "true",
                "INPUT_TIMEOUT": "60s",
            }
        )
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "entrypoint.py")],
            cwd=example_repo.path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            assert wait_for(lambda: configs(private_tmp), 60), (
                "the run never wrote its docker config"
            )
            assert wait_for(lambda: proxy.log, 30)  # and it is talking to the registry
            config = configs(private_tmp)[0]
            assert PASSWORD not in config.read_text()  # base64 in `auth`, but there
            proc.send_signal(signum)
            assert wait_for(lambda: not config.exists(), 5), (
                "the credentials outlived the signal"
            )
        finally:
            proxy.clear()  # release the stalled requests
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    assert proc.returncode == 128 + signum
    assert configs(private_tmp) == []
    assert b"Traceback" not in (proc.stderr.read() if proc.stderr else b"")
