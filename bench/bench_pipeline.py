"""Benchmark: the action (the full CLI process) against the bare pipeline from the Timoni docs.

    PYTHONPATH=. .venv/bin/python bench/bench_pipeline.py [--reps 5] [--parallel N] [--keep] [--quiet]
        [--action-src DIR]   # time the gitops_action package in DIR instead (before/after numbers)

The bare pipeline is what the Timoni docs show, one target after another, run by bash:

    timoni build NAME MODULE -n NS -f ... | flux push artifact oci://HOST/REPO:TAG --path=- \\
        --source=... --revision=...

Both sides run against one fresh `docker-registry` on 127.0.0.1 (a free port), each under its own
repository prefix (`action/`, `bare/`), so each side pushes new content every repetition. A temp git
repository holds the example webapp module and a generated configuration of 8 instances, each with
its own values file. Every repetition commits a change to 1 (or 8) of those files; the action runs
with `--base <previous commit>` (so it plans exactly those) and the bare pipeline builds and pushes
the same instances at the same revision. Then the action is re-run on the last 8-change commit with
skip-unchanged (everything unchanged), alternating with the bare pipeline pushing those 8 again.

Last, with no goal: a new commit that only adds a comment to each of the 8 values files (renders
the same): the action renders all 8 and compares, the bare pipeline pushes all 8.

One untimed warm-up each side (the first push of all 8: repositories created, binaries and files
in the page cache; the action's bytecode cache written, as the image ships it compiled), then the
median of --reps repetitions, sides alternating first. Each run's CPU (its processes and the
registry's) is counted as well: CPU / cores is the shortest wall time the work allows. Goals: action
<= 1.15x bare for 1 instance, <= 0.75x for 8 (parallel builds on 2 cores), skip-unchanged re-run
<= 0.5x bare for 8. PASS/MISS is reported; the exit code is 0 either way (1 only if the benchmark
itself could not run).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.registry import Registry, start_registry  # noqa: E402

TOOLS = ROOT / ".tools" / "bin"
EXAMPLE = ROOT / "examples" / "gitops"
INSTANCES = 8
NAMESPACE = "bench"
MODULE = "./modules/webapp"
COMMON = "apps/webapp/common.cue"
SAME_CONTENT = "8 same, new commit"
GOALS: dict[str, float | None] = {
    "1 changed": 1.15,
    "8 changed": 0.75,
    "8 unchanged (skip)": 0.5,
    SAME_CONTENT: None,  # recorded, no goal: see measure()
}
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}


class BenchError(RuntimeError):
    """The benchmark itself could not run (not a missed goal)."""


def name(i: int) -> str:
    return f"app-{i}"


def values_file(i: int) -> str:
    return f"apps/bench/{name(i)}.yaml"


def config_text() -> str:
    lines = [
        "version: 1",
        "registry: oci://registry.example.com/bench  # overridden with --registry",
        "instances:",
    ]
    for i in range(1, INSTANCES + 1):
        lines += [
            f"  - name: {name(i)}",
            f"    namespace: {NAMESPACE}",
            f"    module: {MODULE}",
            f"    values: [{COMMON}, {values_file(i)}]",
            f'    artifact: "{{registry}}/{name(i)}"',
            "    tags: [latest]",
        ]
    return "\n".join(lines) + "\n"


def values_text(i: int, rev: str) -> str:
    return f'values:\n  replicas: {1 + i % 3}\n  message: "{name(i)} at {rev}"\n'


@dataclass
class Repo:
    path: Path

    def git(self, *args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(self.path), *args],
            capture_output=True,
            text=True,
            env={**os.environ, **GIT_ENV},
            check=False,
        )
        if done.returncode != 0:
            raise BenchError(f"git {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout.strip()

    def commit(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD")

    def change(self, instances: Sequence[int], rev: str) -> str:
        for i in instances:
            (self.path / values_file(i)).write_text(values_text(i, rev), "utf-8")
        return self.commit(f"change {len(instances)} instance(s): {rev}")


def make_repo(path: Path) -> Repo:
    path.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    shutil.copytree(EXAMPLE / "modules" / "webapp", path / "modules" / "webapp")
    (path / COMMON).parent.mkdir(parents=True)
    shutil.copy(EXAMPLE / COMMON, path / COMMON)
    (path / "apps" / "bench").mkdir(parents=True)
    for i in range(1, INSTANCES + 1):
        (path / values_file(i)).write_text(values_text(i, "initial"), "utf-8")
    (path / ".timoni-flux.yaml").write_text(config_text(), "utf-8")
    repo = Repo(path)
    repo.commit("initial: 8 webapp instances")
    return repo


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a running process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


@dataclass(frozen=True)
class Timed:
    seconds: float  # wall clock
    cpu: float  # CPU of the run's processes and of the registry serving it


@dataclass
class Bench:
    repo: Repo
    registry: Registry
    scratch: Path
    python: str
    parallel: int
    env: dict[str, str]
    source: Path = ROOT  # the directory whose gitops_action package runs

    def timed(self, args: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess[bytes], Timed]:
        cpu = children_cpu() + process_cpu(self.registry.process.pid)
        start = time.perf_counter()
        done = subprocess.run(args, cwd=self.repo.path, env=env, capture_output=True, check=False)
        seconds = time.perf_counter() - start
        cpu = children_cpu() + process_cpu(self.registry.process.pid) - cpu
        return done, Timed(seconds, cpu)

    def action(self, base: str | None, *, expect: dict[str, int]) -> Timed:
        """Time the CLI process from start to exit, as a user runs it; check what it did."""
        out = self.scratch / "outputs.json"
        summary = self.scratch / "summary.md"
        args = [
            self.python,
            "-m",
            "gitops_action",
            "push",
            "--registry",
            f"oci://{self.registry.host}/action",
        ]
        if base:
            args += ["--base", base]
        if self.parallel:
            args += ["--parallel", str(self.parallel)]
        args += ["--summary-file", str(summary), "--output-file", str(out)]
        # The image ships the package byte-compiled; here the warm-up run writes the bytecode (to a
        # cache of our own) so that no timed run compiles the package from source either.
        env = {k: v for k, v in self.env.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env |= {"PYTHONPATH": str(self.source), "PYTHONPYCACHEPREFIX": str(self.scratch / "pycache")}
        done, timed = self.timed(args, env)
        if done.returncode != 0:
            raise BenchError(f"the action exited {done.returncode}:\n{done.stderr.decode(errors='replace')}")
        outputs = json.loads(out.read_text("utf-8"))
        got = {k: int(outputs[k]) for k in expect}
        if got != expect:
            raise BenchError(f"the action did not do what was expected: {got} != {expect}")
        return timed

    def bare(self, instances: Sequence[int], head: str) -> Timed:
        """The Timoni docs' pipeline, one target after another, in one bash process."""
        lines = ["set -euo pipefail"]
        source = f"file://{self.repo.path}"
        for i in instances:
            build = ["timoni", "build", name(i), MODULE, "-n", NAMESPACE, "-f", COMMON, "-f", values_file(i)]
            push = [
                "flux",
                "push",
                "artifact",
                f"oci://{self.registry.host}/bare/{name(i)}:latest",
                "--path=-",
                f"--source={source}",
                f"--revision=main@sha1:{head}",
            ]
            lines.append(f"{shlex.join(build)} | {shlex.join(push)}")
        env = {**self.env, "TIMONI_CACHE_DIR": str(self.scratch / "bare-timoni-cache")}
        done, timed = self.timed(["bash", "-c", "\n".join(lines)], env)
        if done.returncode != 0:
            raise BenchError(
                f"the bare pipeline exited {done.returncode}:\n{done.stderr.decode(errors='replace')}"
            )
        return timed


@dataclass
class Row:
    scenario: str
    runs: dict[str, list[Timed]] = field(default_factory=lambda: {"action": [], "bare": []})

    @property
    def action(self) -> list[float]:
        return [t.seconds for t in self.runs["action"]]

    @property
    def bare(self) -> list[float]:
        return [t.seconds for t in self.runs["bare"]]

    def cpu(self, side: str) -> float:
        return statistics.median(t.cpu for t in self.runs[side])

    @property
    def ratio(self) -> float:
        return statistics.median(self.action) / statistics.median(self.bare)


def both(
    bench: Bench, row: Row, rep: int, base: str, head: str, instances: list[int], expect: dict[str, int]
) -> None:
    """One repetition of a scenario: the action (planning from `base`) and the bare pipeline (the
    same instances at `head`), alternating which goes first."""
    for side in ("action", "bare") if rep % 2 else ("bare", "action"):
        if side == "action":
            row.runs["action"].append(bench.action(base, expect=expect))
        else:
            row.runs["bare"].append(bench.bare(instances, head))


def measure(bench: Bench, reps: int, log: Callable[[str], None]) -> list[Row]:
    everything = list(range(1, INSTANCES + 1))
    head = bench.repo.git("rev-parse", "HEAD")
    log("warm-up (untimed): each side pushes all 8 instances once")
    bench.action(None, expect={"pushed": INSTANCES, "failed": 0})
    bench.bare(everything, head)

    rows = [Row("1 changed"), Row("8 changed")]
    skip = Row("8 unchanged (skip)")
    for rep in range(1, reps + 1):
        for row, changed in ((rows[0], [1 + rep % INSTANCES]), (rows[1], everything)):
            base = bench.repo.git("rev-parse", "HEAD")
            head = bench.repo.change(changed, f"rep {rep} of {row.scenario}")
            expect = {"pushed": len(changed), "unchanged": 0, "failed": 0}
            both(bench, row, rep, base, head, changed, expect)
        log(
            f"rep {rep}/{reps}: "
            + ", ".join(f"{r.scenario}: action {r.action[-1]:.3f}s bare {r.bare[-1]:.3f}s" for r in rows)
        )
    # The last commit changed all 8 and the action pushed them: a re-run finds every tag current. The
    # bare pipeline has no such check and pushes all 8 again (timed alongside: same machine load).
    base, head = bench.repo.git("rev-parse", "HEAD~1"), bench.repo.git("rev-parse", "HEAD")
    expect = {"pushed": 0, "unchanged": INSTANCES, "failed": 0}
    for rep in range(1, reps + 1):
        both(bench, skip, rep, base, head, everything, expect)
        log(f"skip re-run {rep}/{reps}: action {skip.action[-1]:.3f}s bare (8) {skip.bare[-1]:.3f}s")
    # No goal, for the record: a new commit that renders the same as the last one (a comment in each
    # values file). The re-run shortcut does not apply (another commit): the action renders all 8
    # and compares them with what the tags hold; nothing is pushed.
    same = Row(SAME_CONTENT)
    for rep in range(1, reps + 1):
        base = bench.repo.git("rev-parse", "HEAD")
        for i in everything:
            path = bench.repo.path / values_file(i)
            path.write_text(f"# comment {rep}\n" + path.read_text("utf-8"), "utf-8")
        head = bench.repo.commit(f"comments only ({rep})")
        both(bench, same, rep, base, head, everything, expect)
        log(f"same content {rep}/{reps}: action {same.action[-1]:.3f}s bare (8) {same.bare[-1]:.3f}s")
    return [*rows, skip, same]


def verdict(row: Row) -> str:
    goal = GOALS[row.scenario]
    return "" if goal is None else "PASS" if row.ratio <= goal else "MISS"


def report(rows: Sequence[Row], parallel: int) -> str:
    def fmt(xs: Sequence[float]) -> str:
        return f"{statistics.median(xs):7.3f}s ({min(xs):.3f}-{max(xs):.3f})"

    out = [
        "",
        f"timoni-flux-push vs bare `timoni build | flux push` ({INSTANCES} instances configured, "
        f"action --parallel {parallel or 'default (CPU count)'}, {os.cpu_count()} CPUs, medians (min-max))",
        "",
        f"{'scenario':<20} {'action':>26} {'bare pipeline':>26} {'ratio':>7} {'goal':>7}  result",
    ]
    for r in rows:
        goal = GOALS[r.scenario]
        bare_label = fmt(r.bare) + ("" if goal and r.scenario != "8 unchanged (skip)" else " *")
        goal_label = f"{goal:6.2f}x" if goal else "      -"
        times = f"{fmt(r.action):>26} {bare_label:>26}"
        out.append(f"{r.scenario:<20} {times} {r.ratio:6.2f}x {goal_label}  {verdict(r)}")
    out += [
        "",
        "* the action finds all 8 tags current (a re-run of the same commit; then a new commit that renders",
        "  the same, no goal) against the bare pipeline pushing the same 8 again (it has no such check)",
        "",
    ]
    cores = os.cpu_count() or 1
    out.append(
        f"CPU seconds per run (all processes, the registry included; medians) and the shortest wall time "
        f"that CPU allows on {cores} cores:"
    )
    for r in rows:
        action, bare = r.cpu("action"), r.cpu("bare")
        out.append(
            f"  {r.scenario:<20} action {action:.3f}s (>= {action / cores:.3f}s wall)   "
            f"bare {bare:.3f}s (>= {bare / cores:.3f}s wall)"
        )
    out.append("")
    for r in rows:
        goal = GOALS[r.scenario]
        out.append(
            f"ratio {r.scenario}: {r.ratio:.2f}x "
            + (f"(goal <= {goal:.2f}x) {verdict(r)}" if goal else "(no goal)")
        )
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reps", type=int, default=5, help="timed repetitions per scenario (median; default 5)")
    p.add_argument("--parallel", type=int, default=0, help="the action's --parallel (default: its own, CPUs)")
    p.add_argument("--python", default=sys.executable, help="interpreter that runs the action")
    p.add_argument(
        "--action-src",
        type=Path,
        default=ROOT,
        help="directory holding the gitops_action package to time (default: this checkout); e.g. a "
        "`git worktree` of another commit, for before/after numbers",
    )
    p.add_argument("--keep", action="store_true", help="keep the temp directory (repository, registry data)")
    p.add_argument("--quiet", action="store_true", help="print only the table")
    args = p.parse_args(argv)

    def log(msg: str) -> None:
        if not args.quiet:
            print(msg, file=sys.stderr, flush=True)

    path = f"{TOOLS}{os.pathsep}{os.environ.get('PATH', '')}"
    missing = [
        t for t in ("timoni", "flux", "docker-registry", "git", "bash") if not shutil.which(t, path=path)
    ]
    if missing:
        print(f"error: missing {', '.join(missing)} (run `make tools`)", file=sys.stderr)
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    registry: Registry | None = None
    try:
        (tmp / "registry").mkdir()
        registry = start_registry(tmp / "registry")
        log(f"registry {registry.host}, work in {tmp}, action from {args.action_src.resolve()}")
        scratch = tmp / "scratch"
        scratch.mkdir()
        env = {**os.environ, "PATH": path, "KUBECONFIG": os.devnull, "TZ": "UTC"}
        for leak in ("GITHUB_ACTIONS", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "GITHUB_EVENT_NAME"):
            env.pop(leak, None)  # the CLI must behave as outside Actions
        repo = make_repo(tmp / "repo")
        bench = Bench(repo, registry, scratch, args.python, args.parallel, env, args.action_src.resolve())
        rows = measure(bench, max(1, args.reps), log)
    except BenchError as exc:
        print(f"error: the benchmark could not run: {exc}", file=sys.stderr)
        return 1
    finally:
        if registry is not None:
            registry.stop()
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(report(rows, args.parallel))
    return 0


if __name__ == "__main__":
    sys.exit(main())
