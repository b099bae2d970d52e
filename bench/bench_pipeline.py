"""Benchmark: the action (the full CLI process) against the bare pipeline from the Timoni docs, on
the realistic module (examples/k8s-webapp with the generated Kubernetes schemas) and 16 instances.

    .venv/bin/python bench/bench_pipeline.py [--reps 5] [--parallel N] [--keep] [--quiet]
        [--action-src DIR]   # time the gitops_action package in DIR instead (before/after numbers)
        [--bundle-probe]     # also time one `timoni bundle build` of the 16 against 16 builds

The bare pipeline is what the Timoni docs show, one target after another, run by bash:

    timoni build NAME MODULE -n NS -f ... | flux push artifact oci://HOST/REPO:TAG --path=- \\
        --source=... --revision=...

Both sides run in one run against one fresh `docker-registry` on 127.0.0.1 (a free port), each under
its own repository prefix (`action/`, `bare/`). A temp git repository holds the module (its
cue.mod/gen from tools/test-material.sh), shared values, one values file per instance and the
configuration. Per repetition, sides alternating first:

- 1 changed: one instance's values file changes; the action plans from the previous commit.
- 16 changed: a module edit (the default image tag in the module's values.cue): every instance
  renders differently.
Then a re-run of the last 16-changed commit (16 unchanged; the bare pipeline pushes the 16 again).

For every run, both sides: the wall time, the CPU of its processes (RUSAGE_CHILDREN) and of the
registry, the whole machine's busy time (/proc/stat, other work on the machine included: run it
on an idle machine), the cores in use (busy / wall) and the limit (busy / cores: the shortest wall
time the machine allows for what it did). Issue 24's goals: 16 changed at most 0.75x the bare
pipeline and at most 1.15x its own limit; 1 changed at most 0.25 s over the bare pipeline; 16
unchanged at most 0.12x. With the action's trace ($TIMONI_FLUX_PUSH_TRACE: each program and
each step, per target) and /proc/stat sampled every 10 ms, where its wall time goes with a core
idle, by phase, and the registry reads it makes besides its pushes.

One untimed warm-up each side (the first push of all 16), then the median of --reps (5: about 80 s).
PASS/MISS is reported; the exit code is 0 either way (1 only if the benchmark could not run).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for entry in (ROOT, ROOT / "bench"):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

from results import (  # noqa: E402
    READS,
    Goal,
    Row,
    Sample,
    Span,
    Timed,
    breakdown,
    idle_profile,
    median_breakdown,
    median_profile,
    parse_trace,
    reads,
    startup,
    step_idle,
)

from tests.support import k8s_module as km  # noqa: E402
from tests.support.registry import Registry, start_registry  # noqa: E402

TOOLS = ROOT / ".tools" / "bin"
INSTANCES = 16
ONE, MANY, RERUN = "1 changed", "16 changed (module edit)", "16 unchanged (re-run)"
LIMIT = "16 changed vs its own limit"
START = "start-up before the first render"
# Issue 24's goals; the start-up line is issue 15's (shown, not part of issue 24's).
GOALS = {
    ONE: Goal("extra", 0.25),
    MANY: Goal("ratio", 0.75),
    LIMIT: Goal("limit", 1.15),
    RERUN: Goal("ratio", 0.12),
    START: Goal("seconds", 0.15),
}
MODULE_VALUES = f"{km.MODULE}/values.cue"
TRACE = "TIMONI_FLUX_PUSH_TRACE"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}


class BenchError(RuntimeError):
    """The benchmark itself could not run (not a missed goal)."""


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
            (self.path / km.values_file(i)).write_text(km.values_text(i, rev), "utf-8")
        return self.commit(f"change {len(instances)} instance(s): {rev}")

    def edit_module(self, rev: int) -> str:
        """A module edit every instance renders differently: the default image tag."""
        path = self.path / MODULE_VALUES
        text = path.read_text("utf-8")
        old = next(
            line for line in text.splitlines() if line.strip().startswith("tag:")
        )
        path.write_text(text.replace(old, f'\t\ttag:        "6.7.{rev}"'), "utf-8")
        return self.commit(f"module: image 6.7.{rev}")


def make_repo(path: Path) -> Repo:
    path.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    try:
        km.write_tree(path, INSTANCES)
    except km.MaterialMissing as exc:
        raise BenchError(str(exc)) from exc
    repo = Repo(path)
    repo.commit(f"initial: {INSTANCES} instances of the realistic module")
    return repo


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a running process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def machine_cpu() -> tuple[float, float]:
    """The whole machine's busy and total CPU seconds so far, all cores (/proc/stat's `cpu` line:
    busy is everything but idle and iowait)."""
    fields = [
        int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    ]
    tick = os.sysconf("SC_CLK_TCK")
    total = sum(fields[:8])  # guest time is counted inside user time already
    return (total - fields[3] - fields[4]) / tick, total / tick


class Sampler:
    """/proc/stat every `every` seconds on a thread of its own, for the idle profile."""

    def __init__(self, every: float = 0.01) -> None:
        self.samples: list[Sample] = []
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.time(), *machine_cpu()))
            self._stop.wait(self._every)

    def window(self, start: float, end: float) -> list[Sample]:
        return [s for s in self.samples if start - 0.05 <= s[0] <= end + 0.05]

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Bench:
    repo: Repo
    registry: Registry
    scratch: Path
    python: str
    parallel: int
    env: dict[str, str]
    source: Path = ROOT  # the directory whose gitops_action package runs
    sampler: Sampler | None = None

    def timed(
        self, args: list[str], env: dict[str, str]
    ) -> tuple[subprocess.CompletedProcess[bytes], Timed, float, float]:
        procs, registry = children_cpu(), process_cpu(self.registry.process.pid)
        busy, _ = machine_cpu()
        wall = time.time()
        start = time.perf_counter()
        done = subprocess.run(
            args, cwd=self.repo.path, env=env, capture_output=True, check=False
        )
        seconds = time.perf_counter() - start
        busy = machine_cpu()[0] - busy
        procs = children_cpu() - procs
        registry = process_cpu(self.registry.process.pid) - registry
        timed = Timed(seconds, procs + registry, procs, busy)
        return done, timed, wall, wall + seconds

    def action(
        self, base: str | None, *, expect: dict[str, int]
    ) -> tuple[Timed, list[Span], float, float]:
        """Time the CLI process from start to exit, as a user runs it; check what it did. Also
        returns the programs it ran (its trace) and its start and end (wall clock)."""
        out = self.scratch / "outputs.json"
        summary = self.scratch / "summary.md"
        trace = self.scratch / "trace.txt"
        trace.unlink(missing_ok=True)
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
        env |= {
            "PYTHONPATH": str(self.source),
            "PYTHONPYCACHEPREFIX": str(self.scratch / "pycache"),
            TRACE: str(trace),
        }
        done, timed, started, ended = self.timed(args, env)
        if done.returncode != 0:
            raise BenchError(
                f"the action exited {done.returncode}:\n{done.stderr.decode(errors='replace')}"
            )
        outputs = json.loads(out.read_text("utf-8"))
        got = {k: int(outputs[k]) for k in expect}
        if got != expect:
            raise BenchError(
                f"the action did not do what was expected: {got} != {expect}"
            )
        spans = parse_trace(trace.read_text("utf-8")) if trace.exists() else []
        return timed, spans, started, ended

    def bare(self, instances: Sequence[int], head: str) -> Timed:
        """The Timoni docs' pipeline, one target after another, in one bash process."""
        lines = ["set -euo pipefail"]
        source = f"file://{self.repo.path}"
        for i in instances:
            build = [
                "timoni",
                "build",
                km.name(i),
                f"./{km.MODULE}",
                "-n",
                km.NAMESPACE,
            ]
            build += ["-f", km.COMMON, "-f", km.values_file(i)]
            push = [
                "flux",
                "push",
                "artifact",
                f"oci://{self.registry.host}/bare/{km.name(i)}:latest",
                "--path=-",
                f"--source={source}",
                f"--revision=main@sha1:{head}",
            ]
            lines.append(f"{shlex.join(build)} | {shlex.join(push)}")
        env = {**self.env, "TIMONI_CACHE_DIR": str(self.scratch / "bare-timoni-cache")}
        done, timed, _, _ = self.timed(["bash", "-c", "\n".join(lines)], env)
        if done.returncode != 0:
            raise BenchError(
                f"the bare pipeline exited {done.returncode}:\n{done.stderr.decode(errors='replace')}"
            )
        return timed


@dataclass
class Run:
    """One action run as the profile needs it: its trace, start and end, and the machine's samples."""

    spans: list[Span]
    started: float
    ended: float
    samples: list[Sample]


@dataclass
class Measured:
    rows: list[Row]
    runs: dict[str, list[Run]]  # the action's runs, by scenario
    load: tuple[str, str]  # `uptime`'s load averages before and after


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def rerun_runs(
    bench: Bench,
    rerun: Row,
    action: Callable[[str, Row, str, dict[str, int]], Run],
    reps: int,
    log: Callable[[str], None],
) -> None:
    everything = list(range(1, INSTANCES + 1))
    # The last commit edited the module and the action pushed all 16: a re-run of that event finds
    # every tag current. The bare pipeline has no such check and pushes all 16 again.
    base, head = (
        bench.repo.git("rev-parse", "HEAD~1"),
        bench.repo.git("rev-parse", "HEAD"),
    )
    for rep in range(1, reps + 1):
        for side in ("action", "bare") if rep % 2 else ("bare", "action"):
            if side == "bare":
                rerun.runs["bare"].append(bench.bare(everything, head))
            else:
                expect = {"pushed": 0, "unchanged": INSTANCES, "failed": 0}
                action(RERUN, rerun, base, expect)
        log(
            f"re-run {rep}/{reps}: action {rerun.runs['action'][-1].seconds:.3f}s "
            f"bare {rerun.runs['bare'][-1].seconds:.3f}s"
        )


def measure(bench: Bench, reps: int, log: Callable[[str], None]) -> Measured:
    everything = list(range(1, INSTANCES + 1))
    head = bench.repo.git("rev-parse", "HEAD")
    log(f"warm-up (untimed): each side pushes all {INSTANCES} instances once")
    bench.action(None, expect={"pushed": INSTANCES, "failed": 0})
    bench.bare(everything, head)
    before = load_average()
    cores = os.cpu_count() or 1
    one, many, limit, rerun, start = (
        Row(s, GOALS[s], cores=cores) for s in (ONE, MANY, LIMIT, RERUN, START)
    )
    runs: dict[str, list[Run]] = {ONE: [], MANY: [], RERUN: []}

    def action(scenario: str, row: Row, base: str, expect: dict[str, int]) -> Run:
        timed, spans, t0, t1 = bench.action(base, expect=expect)
        row.runs["action"].append(timed)
        samples = bench.sampler.window(t0, t1) if bench.sampler else []
        runs[scenario].append(Run(spans, t0, t1, samples))
        return runs[scenario][-1]

    for rep in range(1, reps + 1):
        order = ("action", "bare") if rep % 2 else ("bare", "action")
        changed = [1 + rep % INSTANCES]
        base = bench.repo.git("rev-parse", "HEAD")
        head = bench.repo.change(changed, f"rep {rep}")
        for side in order:
            if side == "bare":
                one.runs["bare"].append(bench.bare(changed, head))
                continue
            done = action(ONE, one, base, {"pushed": 1, "unchanged": 0, "failed": 0})
            first = startup(done.spans, done.started)
            if first is not None:
                start.runs["action"].append(Timed(first, 0.0))
        base = head
        head = bench.repo.edit_module(rep)
        for side in order:
            if side == "bare":
                many.runs["bare"].append(bench.bare(everything, head))
                continue
            action(MANY, many, base, {"pushed": INSTANCES, "unchanged": 0, "failed": 0})
        log(
            f"rep {rep}/{reps}: 1 changed: action {one.runs['action'][-1].seconds:.3f}s "
            f"bare {one.runs['bare'][-1].seconds:.3f}s; "
            f"16 changed: action {many.runs['action'][-1].seconds:.3f}s "
            f"bare {many.runs['bare'][-1].seconds:.3f}s (load {load_average()})"
        )
    rerun_runs(bench, rerun, action, reps, log)
    limit.runs = many.runs  # the same runs, against the action's own limit
    start.runs["bare"] = list(start.runs["action"])  # no bare counterpart: seconds
    rows = [one, many, limit, rerun] + ([start] if start.runs["action"] else [])
    return Measured(rows, runs, (before, load_average()))


def bundle_file(names: Sequence[str]) -> str:
    lines = [
        "bundle: {",
        '\tapiVersion: "v1alpha1"',
        '\tname: "bench"',
        "\tinstances: {",
    ]
    for n in names:
        lines += [
            f'\t\t"{n}": {{',
            f'\t\t\tmodule: url: "file://../{km.MODULE}"',
            f'\t\t\tnamespace: "{km.NAMESPACE}"',
            "\t\t}",
        ]
    return "\n".join([*lines, "\t}", "}"]) + "\n"


def split_bundle(stream: str) -> dict[str, str]:
    """`timoni bundle build` output per instance (each section starts `---`, `# Instance: NAME`, `---`)."""
    parts = re.split(r"^---\n# Instance: (\S+)\n---\n", stream, flags=re.M)
    return {parts[k]: parts[k + 1] for k in range(1, len(parts) - 1, 2)}


def bundle_probe(bench: Bench, log: Callable[[str], None]) -> str:
    """Would one timoni process for several instances (a bundle) render faster than one process per
    instance, and byte-identically? 16 instances at the module's defaults (a bundle takes values
    inline, not as files), on this machine's cores: 16 `timoni build`s two at a time against two
    `timoni bundle build`s of 8 at once, and one bundle of 16 alone."""
    root = bench.repo.path
    probe = root / "probe"
    probe.mkdir(exist_ok=True)
    names = [km.name(i) for i in range(1, INSTANCES + 1)]
    halves = [names[: INSTANCES // 2], names[INSTANCES // 2 :]]
    for k, part in enumerate([names, *halves]):
        (probe / f"b{k}.cue").write_text(bundle_file(part), "utf-8")
    env = {**bench.env, "TIMONI_CACHE_DIR": str(bench.scratch / "probe-cache")}
    cores = os.cpu_count() or 1

    def run_all(commands: list[list[str]], at_once: int) -> tuple[float, list[bytes]]:
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=at_once) as pool:
            done = list(
                pool.map(
                    lambda a: subprocess.run(a, cwd=root, env=env, capture_output=True),
                    commands,
                )
            )
        for d in done:
            if d.returncode != 0:
                raise BenchError(
                    f"bundle probe: {d.stderr.decode(errors='replace')[:500]}"
                )
        return time.perf_counter() - start, [d.stdout for d in done]

    singles = [
        ["timoni", "build", n, f"./{km.MODULE}", "-n", km.NAMESPACE] for n in names
    ]
    t_single, t_halves, t_whole = [], [], []
    for _ in range(3):
        took, outs = run_all(singles, cores)
        t_single.append(took)
        took, _ = run_all(
            [["timoni", "bundle", "build", "-f", f"probe/b{k}.cue"] for k in (1, 2)], 2
        )
        t_halves.append(took)
        took, whole = run_all([["timoni", "bundle", "build", "-f", "probe/b0.cue"]], 1)
        t_whole.append(took)
    alone = dict(zip(names, (o.decode() for o in outs), strict=True))
    sections = split_bundle(whole[0].decode())
    exact = sum(1 for n in names if sections.get(n) == alone[n])

    # timoni build ends its stream with `---`; a bundle section ends with a blank line instead.
    def documents(text: str) -> str:
        return re.sub(r"(?:\n---\n?|\n)+$", "", text)

    trimmed = sum(
        1 for n in names if documents(sections.get(n, "")) == documents(alone[n])
    )
    shutil.rmtree(probe)
    log("bundle probe done")
    med = statistics.median
    return (
        f"bundle probe (16 instances, module defaults; medians of 3): 16 x timoni build, {cores} at a time: "
        f"{med(t_single):.3f}s; 2 x timoni bundle build of 8, at once: {med(t_halves):.3f}s; "
        f"1 bundle of 16: {med(t_whole):.3f}s. Per instance, the bundle's section equals timoni build's "
        f"output byte for byte in {exact}/{INSTANCES}, "
        f"and apart from the stream's end (`---` against a blank line) in {trimmed}/{INSTANCES}"
    )


def _seconds(row: Row, side: str) -> str:
    xs = [t.seconds for t in row.runs[side]]
    return f"{statistics.median(xs):.3f} ({min(xs):.3f}-{max(xs):.3f})"


def table(m: Measured, parallel: int) -> list[str]:
    """The compact table (issue 24): per scenario and side, the wall time next to what the machine
    allows for the work done in it."""
    cores = os.cpu_count() or 1
    out = [
        f"issue 24: action vs bare `timoni build | flux push`, realistic module, {INSTANCES} instances, "
        f"{cores} cores, action --parallel {parallel or 'default'}, medians of "
        f"{len(m.rows[0].runs['action'])} (min-max); load average before {m.load[0]}, after {m.load[1]}",
        "",
        f"{'scenario':<26} {'side':<6} {'wall s':>20} {'CPU procs':>9} {'+registry':>9} "
        f"{'machine busy':>12} {'cores used':>10} {'limit s':>8} {'wall/limit':>10} "
        f"{'own CPU/cores':>13}",
    ]
    for r in m.rows:
        if r.scenario in (START, LIMIT):
            continue
        for side in ("action", "bare"):
            out.append(
                f"{r.scenario if side == 'action' else '':<26} {side:<6} {_seconds(r, side):>20} "
                f"{r.procs(side):>9.3f} {r.cpu(side):>9.3f} {r.machine(side):>12.3f} "
                f"{r.in_use(side):>10.2f} {r.limit(side):>8.3f} {r.over_limit(side):>10.2f} "
                f"{r.cpu(side) / cores:>13.3f}"
            )
    out += [
        "",
        "machine busy: every process on the machine (/proc/stat), the registry included; limit: busy /",
        "cores. Work from outside the benchmark counts in both: on a shared machine, read own CPU/cores",
        "(the run's processes and the registry) as the limit instead.",
        "",
        "goals (issue 24):",
    ]
    out += [f"  {r.scenario:<34} {r.shown()}" for r in m.rows if r.scenario != START]
    start = [r for r in m.rows if r.scenario == START]
    if start:
        out.append(f"  ({START}, issue 15's goal: {start[0].shown()})")
    return out


def profile(m: Measured) -> list[str]:
    """Where the action's wall time goes with a core idle, and the registry reads it adds."""
    cores = os.cpu_count() or 1
    out: list[str] = []
    for scenario in (ONE, MANY):
        runs = m.runs[scenario]
        if not runs or not runs[0].samples:
            continue
        prof = median_profile(
            [idle_profile(r.spans, r.started, r.ended, r.samples, cores) for r in runs]
        )
        out += [
            "",
            f"{scenario}, the action: idle core-seconds by phase (whole machine, /proc/stat every "
            "10 ms; medians)",
            f"  {'phase':<58} {'wall s':>7} {'idle core-s':>11}",
        ]
        out += [f"  {k:<58} {w:>7.3f} {i:>11.3f}" for k, (w, i) in prof.items()]
        steps = [step_idle(r.spans, r.samples, cores) for r in runs]
        kinds = list(dict.fromkeys(k for x in steps for k in x))
        said = ", ".join(
            f"{k} {statistics.median(x.get(k, 0.0) for x in steps):.3f}" for k in kinds
        )
        out.append(f"  idle core-s while each step runs (steps overlap): {said}")
        parts = median_breakdown([breakdown(r.spans, r.started, r.ended) for r in runs])
        out.append(
            "  the trace's breakdown: "
            + "; ".join(f"{k} {v:.3f}" for k, v in parts.items())
        )
    counts = []
    for scenario in (ONE, MANY, RERUN):
        if m.runs[scenario]:
            got = [reads(r.spans) for r in m.runs[scenario]]
            each = ", ".join(
                f"{k.split(' ', 1)[1]} {statistics.median(g[k] for g in got):.0f}"
                for k in READS
            )
            counts.append(f"  {scenario}: {each}")
    if counts:
        out += [
            "",
            "registry reads the action adds over the bare pipeline (per run):",
            *counts,
        ]
    return out


def report(m: Measured, parallel: int) -> str:
    return "\n".join(["", *table(m, parallel), *profile(m)])


def stop(bench: Bench | None, registry: Registry | None) -> None:
    if bench is not None and bench.sampler is not None:
        bench.sampler.stop()
    if registry is not None:
        registry.stop()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--reps",
        type=int,
        default=5,
        help="timed repetitions per scenario (median; default 5)",
    )
    p.add_argument(
        "--parallel",
        type=int,
        default=0,
        help="the action's --parallel (default: its own, CPUs)",
    )
    p.add_argument(
        "--python", default=sys.executable, help="interpreter that runs the action"
    )
    p.add_argument(
        "--action-src",
        type=Path,
        default=ROOT,
        help="directory holding the gitops_action package to time (default: this checkout); e.g. a "
        "`git worktree` of another commit, for before/after numbers",
    )
    p.add_argument(
        "--bundle-probe",
        action="store_true",
        help="also time one bundle build of the 16",
    )
    p.add_argument(
        "--keep",
        action="store_true",
        help="keep the temp directory (repository, registry data)",
    )
    p.add_argument("--quiet", action="store_true", help="print only the table")
    args = p.parse_args(argv)

    def log(msg: str) -> None:
        if not args.quiet:
            print(msg, file=sys.stderr, flush=True)

    path = f"{TOOLS}{os.pathsep}{os.environ.get('PATH', '')}"
    missing = [
        t
        for t in ("timoni", "flux", "docker-registry", "git", "bash")
        if not shutil.which(t, path=path)
    ]
    if missing:
        print(
            f"error: missing {', '.join(missing)} (run `make tools`)", file=sys.stderr
        )
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    registry: Registry | None = None
    bench: Bench | None = None
    probe = ""
    try:
        (tmp / "registry").mkdir()
        registry = start_registry(tmp / "registry")
        log(
            f"registry {registry.host}, work in {tmp}, action from {args.action_src.resolve()}"
        )
        scratch = tmp / "scratch"
        scratch.mkdir()
        # The action as its image runs it: byte-compiled (the Dockerfile runs compileall). Without
        # this, PYTHONDONTWRITEBYTECODE=1 (set on some machines) has every run compile the package.
        subprocess.run(
            [
                args.python,
                "-m",
                "compileall",
                "-q",
                str(args.action_src / "gitops_action"),
            ],
            check=True,
        )
        env = {**os.environ, "PATH": path, "KUBECONFIG": os.devnull, "TZ": "UTC"}
        for leak in (
            "GITHUB_ACTIONS",
            "GITHUB_OUTPUT",
            "GITHUB_STEP_SUMMARY",
            "GITHUB_EVENT_NAME",
            TRACE,
        ):
            env.pop(leak, None)  # the CLI must behave as outside Actions
        repo = make_repo(tmp / "repo")
        bench = Bench(
            repo,
            registry,
            scratch,
            args.python,
            args.parallel,
            env,
            args.action_src.resolve(),
        )
        bench.sampler = Sampler()
        measured = measure(bench, max(1, args.reps), log)
        if args.bundle_probe:
            probe = bundle_probe(bench, log)
    except BenchError as exc:
        print(f"error: the benchmark could not run: {exc}", file=sys.stderr)
        return 1
    finally:
        stop(bench, registry)
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(report(measured, args.parallel))
    if probe:
        print("\n" + probe)
    return 0


if __name__ == "__main__":
    sys.exit(main())
