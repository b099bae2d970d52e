"""The realistic module (examples/k8s-webapp) with the Kubernetes CUE schemas that
tools/test-material.sh generates, and a GitOps tree of N instances of it. Used by the tests and by
bench/bench_pipeline.py."""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODULE_SRC = ROOT / "examples" / "k8s-webapp"
SCHEMAS = ROOT / ".tools" / "k8s-cue"
MODULE = "modules/k8s-webapp"  # where the tree puts it
COMMON = "apps/k8s-webapp/common.cue"
NAMESPACE = "apps"
KINDS = (
    "ServiceAccount",
    "Service",
    "Deployment",
    "HorizontalPodAutoscaler",
    "Ingress",
)

# Values every instance shares: every kind of the module on, fields of the Kubernetes schemas set.
COMMON_VALUES = """\
values: {
	autoscaling: {enabled: true, minReplicas: 2, maxReplicas: 6, cpu: 75}
	ingress: {enabled: true, className: "nginx", tls: true}
	env: {LOG_LEVEL: "info", OTEL_SERVICE_NAME: "webapp"}
	resources: limits: cpu: "500m"
	tolerations: [{key: "workload", operator: "Equal", value: "web", effect: "NoSchedule"}]
	affinity: podAntiAffinity: preferredDuringSchedulingIgnoredDuringExecution: [{
		weight: 100
		podAffinityTerm: {
			topologyKey: "kubernetes.io/hostname"
			labelSelector: matchLabels: "app.kubernetes.io/part-of": "webapp"
		}
	}]
}
"""


class MaterialMissing(RuntimeError):
    pass


def schemas() -> Path:
    gen = SCHEMAS / "gen"
    if not (gen / "k8s.io" / "api" / "apps" / "v1").is_dir():
        raise MaterialMissing(
            f"{gen} is missing: run tools/test-material.sh (make test does)"
        )
    return gen


def assemble(dest: Path) -> Path:
    """The module at `dest`, its cue.mod/gen holding the generated schemas, as a vendored module has."""
    gen = schemas()
    shutil.copytree(MODULE_SRC, dest)
    shutil.copytree(gen, dest / "cue.mod" / "gen")
    return dest


def name(i: int) -> str:
    return f"web-{i}"


def values_file(i: int) -> str:
    return f"apps/k8s-webapp/{name(i)}.yaml"


def values_text(i: int, rev: str) -> str:
    return f'values:\n  replicas: {1 + i % 3}\n  message: "{name(i)} at {rev}"\n'


def config_text(count: int) -> str:
    lines = [
        "version: 1",
        "registry: oci://registry.example.com/apps  # overridden with the registry input",
        "instances:",
    ]
    for i in range(1, count + 1):
        lines += [
            f"  - name: {name(i)}",
            f"    namespace: {NAMESPACE}",
            f"    module: ./{MODULE}",
            f"    values: [{COMMON}, {values_file(i)}]",
            f'    artifact: "{{registry}}/{name(i)}"',
            "    tags: [latest]",
        ]
    return "\n".join(lines) + "\n"


def write_tree(root: Path, count: int) -> None:
    """A GitOps tree: the module, shared values, one values file per instance, the configuration."""
    assemble(root / MODULE)
    (root / COMMON).parent.mkdir(parents=True, exist_ok=True)
    (root / COMMON).write_text(COMMON_VALUES, "utf-8")
    for i in range(1, count + 1):
        (root / values_file(i)).write_text(values_text(i, "initial"), "utf-8")
    (root / ".timoni-flux.yaml").write_text(config_text(count), "utf-8")
