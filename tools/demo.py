"""`make demo`: run the action on the example repository against a local registry.

Starts a real registry on 127.0.0.1, copies examples/gitops into a fresh git repository, pushes
every target, then commits a one-line change and pushes again: only the affected target moves.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support.registry import start_registry  # noqa: E402

GIT = ["git", "-c", "user.name=demo", "-c", "user.email=demo@example.com"]


def run_action(repo: Path, out: Path, *extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [
        sys.executable,
        "-m",
        "gitops_action",
        "push",
        "--summary-file",
        str(out / "summary.md"),
        "--output-file",
        str(out / "outputs.json"),
        *extra,
    ]
    code = subprocess.run(args, cwd=repo, env=env, check=False).returncode
    if code != 0:
        sys.exit(f"demo: the action exited {code}")
    outputs: dict[str, str] = json.loads((out / "outputs.json").read_text())
    return outputs


def show(title: str, outputs: dict[str, str]) -> None:
    print(f"\n== {title}: pushed {outputs['pushed']}, failed {outputs['failed']}")
    for a in json.loads(outputs["artifacts"]):
        print(f"  {a['status']:9} {a['name']:20} {a['url'] or a['artifact']}")


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="timoni-flux-push-demo-"))
    registry = start_registry(work / "registry")
    try:
        repo = work / "gitops"
        shutil.copytree(ROOT / "examples" / "gitops", repo)
        subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
        subprocess.run([*GIT, "-C", str(repo), "add", "-A"], check=True)
        subprocess.run([*GIT, "-C", str(repo), "commit", "-qm", "example repository"], check=True)
        base = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        prefix = f"oci://{registry.host}/demo"
        print(f"registry: {registry.host} (storage in {work / 'registry'})")
        show("first push: every target", run_action(repo, work, "--registry", prefix))

        values = repo / "apps/webapp/staging.yaml"
        values.write_text(values.read_text().replace("replicas: 1", "replicas: 3"))
        subprocess.run([*GIT, "-C", str(repo), "commit", "-qam", "scale webapp in staging"], check=True)
        show(
            "second push: staging.yaml changed", run_action(repo, work, "--registry", prefix, "--base", base)
        )
        print(f"\njob summary of the second run: {work / 'summary.md'}")
    finally:
        registry.stop()


if __name__ == "__main__":
    main()
