"""`make demo`: the command line on the example repository, against a registry of its own.

Starts a real registry on 127.0.0.1 and copies examples/gitops into a fresh git repository, then
runs, as a user would (each command is shown before it runs):

1. `plan` and `push`: every target is new, every target is pushed.
2. a pull request that scales the webapp in staging: `dry-run` renders it and diffs it against
   what the registry holds; the PR comment it would write is printed (`--comment-file`: no GitHub
   API here).
3. the change merged: `push` moves the one target it affects, nothing else.
4. `flux-config`: the Flux objects a cluster needs to follow the webapp's staging tag.
5. `promote`: in the demo's copy of the configuration, `webapp-production` pushes a candidate tag
   and its clusters follow `production`, a tag only promotions write: `production` is pointed at
   the exact digest the candidate holds. (Promoting onto a tag another target pushes is refused:
   that target's next push would silently put its own render back.)

The registry and the repository live in a temporary directory; the summaries and the comment stay
there (the last line names it).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support.registry import start_registry  # noqa: E402

GIT = ["git", "-c", "user.name=demo", "-c", "user.email=demo@example.com"]
BOLD, DIM, OFF = (
    ("\x1b[1m", "\x1b[2m", "\x1b[0m") if sys.stdout.isatty() else ("", "", "")
)


def step(title: str, text: str = "") -> None:
    print(f"\n{BOLD}== {title}{OFF}", flush=True)
    if text:
        print(text, flush=True)


def cli(repo: Path, out: Path, *args: str, show_stdout: bool = False) -> dict[str, str]:
    """`python -m gitops_action ARGS` in the repository, shown first; its outputs (--output-file)."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "INPUT_"))
    }
    env["PYTHONPATH"] = str(ROOT)
    outputs = out / "outputs.json"
    outputs.unlink(missing_ok=True)
    print(f"{DIM}$ python -m gitops_action {shlex.join(args)}{OFF}", flush=True)
    extra = [
        "--summary-file",
        str(out / f"summary-{args[0]}.md"),
        "--output-file",
        str(outputs),
    ]
    done = subprocess.run(
        [sys.executable, "-m", "gitops_action", *args, *extra],
        cwd=repo,
        env=env,
        stdout=None if show_stdout else subprocess.DEVNULL,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"demo: `{args[0]}` exited {done.returncode} (see its messages above)")
    found: dict[str, str] = json.loads(outputs.read_text()) if outputs.is_file() else {}
    return found


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        [*GIT, "-C", str(repo), *args], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def follow_promotions(config: Path) -> None:
    """webapp-production pushes a candidate; its clusters follow `production`, which promote moves.
    (In examples/gitops it pushes `production` itself: a promotion onto it would be refused.)"""
    text = config.read_text()
    pushed = "    tags: [production, stable]\n"
    if pushed not in text:
        sys.exit(
            "demo: examples/gitops/.timoni-flux.yaml changed: webapp-production's tags not found"
        )
    config.write_text(
        text.replace(
            pushed,
            "    tags: [production-candidate]\n    flux: {source: {tag: production}}\n",
        )
    )


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="timoni-flux-push-demo-"))
    out = work / "out"
    out.mkdir()
    registry = start_registry(work / "registry")
    try:
        repo = work / "gitops"
        shutil.copytree(ROOT / "examples" / "gitops", repo)
        follow_promotions(repo / ".timoni-flux.yaml")
        git(repo.parent, "init", "-q", "-b", "main", str(repo))
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", "example repository")
        prefix = f"oci://{registry.host}/demo"
        print(
            f"The example repository (examples/gitops) is a fresh git repository in {repo}."
        )
        print(
            f"A registry of its own listens on {registry.host}; --registry points every target there."
        )

        step("1. Plan, then push: no tag exists yet, so every target is affected")
        cli(repo, out, "plan", "--registry", prefix)
        cli(repo, out, "push", "--registry", prefix)

        step(
            "2. A pull request scales the webapp in staging: dry-run shows the diff",
            "The PR comment goes to a file here (--comment-file); in GitHub Actions the action "
            "keeps one comment up to date on the pull request instead.",
        )
        git(repo, "checkout", "-qb", "scale-webapp")
        values = repo / "apps/webapp/staging.yaml"
        values.write_text(values.read_text().replace("replicas: 1", "replicas: 3"))
        git(repo, "commit", "-qam", "scale webapp in staging")
        comment = out / "comment.md"
        cli(
            repo,
            out,
            "dry-run",
            "--registry",
            prefix,
            "--base",
            "main",
            "--comment-file",
            str(comment),
        )
        print(
            f"\n{DIM}--- the pull request comment ({comment.name}, Markdown) ---{OFF}"
        )
        print(comment.read_text().rstrip())
        print(f"{DIM}--- end of the comment ---{OFF}")

        step("3. The pull request is merged: push moves only the target it affects")
        git(repo, "checkout", "-q", "main")
        git(repo, "merge", "-q", "--ff-only", "scale-webapp")
        cli(repo, out, "push", "--registry", prefix)

        step(
            "4. flux-config: what a cluster applies to follow the webapp's staging tag"
        )
        cli(
            repo,
            out,
            "flux-config",
            "--registry",
            prefix,
            "--targets",
            "webapp-staging",
            show_stdout=True,
        )

        step(
            "5. promote: production's clusters get the exact digest pushed as a candidate (nothing rendered)",
            "In this copy webapp-production pushes `production-candidate` and its clusters follow "
            "`production` (flux: source: tag), a tag only promote writes (its OCIRepository's `ref.tag`).",
        )
        cli(
            repo,
            out,
            "promote",
            *("--registry", prefix, "--targets", "webapp-production"),
            *("--from", "production-candidate", "--to", "production"),
        )

        print(
            f"\nDone. The job summaries and the comment are in {out}; the registry stops now."
        )
        print(
            "Next: README.md, Quick start: a .timoni-flux.yaml in a repository of your own."
        )
    finally:
        registry.stop()


if __name__ == "__main__":
    main()
