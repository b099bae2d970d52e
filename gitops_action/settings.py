"""What the user asked for: action inputs (INPUT_* variables) or command-line flags, one shape."""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

from . import defaults
from .errors import SettingsError

MODES = ("auto", "push", "dry-run", "plan")
PROVIDERS = ("generic", "aws", "azure", "gcp")
TRUE = ("true", "yes", "1", "on")
FALSE = ("false", "no", "0", "off", "")


@dataclass(frozen=True)
class Settings:
    mode: str = defaults.MODE
    config: str = defaults.CONFIG
    all: bool = False
    base: str = ""
    head: str = ""
    targets: tuple[str, ...] = ()
    revision: str = defaults.REVISION
    registry: str = ""
    registry_username: str = field(default="", repr=False)
    registry_password: str = field(default="", repr=False)
    provider: str = defaults.PROVIDER
    github_token: str = field(default="", repr=False)
    parallel: int = 0  # 0: the CPU count
    skip_unchanged: bool = True
    comment: bool = True
    timeout: str = defaults.TIMEOUT
    workspace: Path = Path(".")
    summary_file: str = ""
    output_file: str = ""

    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.registry_password, self.github_token) if s)


def _bool(name: str, value: str) -> bool:
    v = value.strip().lower()
    if v in TRUE:
        return True
    if v in FALSE:
        return False
    raise SettingsError(f"input `{name}`: expected true or false, got {value!r}")


def _int(name: str, value: str) -> int:
    v = value.strip()
    if not v:
        return 0
    try:
        n = int(v)
    except ValueError as exc:
        raise SettingsError(f"input `{name}`: expected a number, got {value!r}") from exc
    if n < 0:
        raise SettingsError(f"input `{name}`: must not be negative")
    return n


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s)")


def duration_seconds(value: str) -> float:
    """A Go duration (`5m`, `90s`, `1m30s`) in seconds, as flux --timeout reads it."""
    parts = _DURATION.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise SettingsError(f"input `timeout`: expected a duration like 90s or 5m, got {value!r}")
    scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    return sum(float(n) * scale[u] for n, u in parts)


def _check(s: Settings) -> Settings:
    duration_seconds(s.timeout)
    if s.mode not in MODES:
        raise SettingsError(f"input `mode`: expected one of {', '.join(MODES)}, got {s.mode!r}")
    if s.provider not in PROVIDERS:
        raise SettingsError(f"input `provider`: expected one of {', '.join(PROVIDERS)}, got {s.provider!r}")
    if bool(s.registry_username) != bool(s.registry_password):
        raise SettingsError("inputs `registry-username` and `registry-password` must be given together")
    if s.registry and not s.registry.startswith("oci://"):
        raise SettingsError(f"input `registry`: must start with oci://, got {s.registry!r}")
    return s


def _targets(value: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in value.replace("\n", ",").split(",") if t.strip())


def from_inputs(env: Mapping[str, str]) -> Settings:
    """Read the action's inputs. The runner passes `INPUT_<NAME>` with hyphens kept."""

    def get(name: str, default: str = "") -> str:
        return env.get(f"INPUT_{name.upper()}", default).strip()

    return _check(
        Settings(
            mode=get("mode") or defaults.MODE,
            config=get("config") or defaults.CONFIG,
            all=_bool("all", get("all", "false")),
            base=get("base"),
            targets=_targets(get("targets")),
            revision=get("revision") or defaults.REVISION,
            registry=get("registry"),
            registry_username=get("registry-username"),
            registry_password=env.get("INPUT_REGISTRY-PASSWORD", ""),
            provider=get("provider") or defaults.PROVIDER,
            github_token=get("github-token"),
            parallel=_int("parallel", get("parallel")),
            skip_unchanged=_bool("skip-unchanged", get("skip-unchanged", "true") or "true"),
            comment=_bool("comment", get("comment", "true") or "true"),
            timeout=get("timeout") or defaults.TIMEOUT,
            workspace=Path(env.get("GITHUB_WORKSPACE") or "."),
        )
    )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m gitops_action",
        description="Render the Timoni instances and bundles a commit affects and push them with flux "
        "(or plan them, or dry-run them with a diff against what the registry holds).",
    )
    p.add_argument(
        "mode",
        choices=("plan", "push", "dry-run"),
        help="plan: list affected targets; push: build and "
        "push them; dry-run: build and diff against the artifact at each target's first tag",
    )
    p.add_argument("--config", default=defaults.CONFIG, help="configuration file, relative to --repo")
    p.add_argument("--repo", default=".", help="the git repository (default: current directory)")
    p.add_argument("--all", action="store_true", help="ignore the diff and take every target")
    p.add_argument("--base", default="", help="base commit to diff against (default: none, so every target)")
    p.add_argument("--head", default="", help="head commit (default: HEAD)")
    p.add_argument("--targets", default="", help="comma-separated target names to restrict the run to")
    p.add_argument(
        "--revision",
        default=defaults.REVISION,
        help="flux --revision template; {ref_name}, {sha} and {short_sha} are filled in",
    )
    p.add_argument(
        "--registry", default="", help="override the configuration's `registry` (oci://host/prefix)"
    )
    p.add_argument(
        "--registry-username",
        default="",
        help="registry user; the password is read from the "
        "REGISTRY_PASSWORD environment variable (never a command-line argument)",
    )
    p.add_argument(
        "--provider", default=defaults.PROVIDER, choices=PROVIDERS, help="flux --provider for registry login"
    )
    p.add_argument(
        "--parallel", type=int, default=0, help="targets built and pushed at once (default: CPU count)"
    )
    p.add_argument(
        "--skip-unchanged",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="do not push when the tag already holds the same content (default: on)",
    )
    p.add_argument(
        "--comment",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="dry-run on a pull request: keep one PR comment up to date (needs GITHUB_TOKEN)",
    )
    p.add_argument(
        "--timeout",
        default=defaults.TIMEOUT,
        help=f"timeout of each flux call, e.g. 90s or 5m (default: {defaults.TIMEOUT})",
    )
    p.add_argument("--summary-file", default="", help="write the markdown summary here (default: stdout)")
    p.add_argument(
        "--output-file", default="", help="write the outputs (artifacts, matrix, pushed, failed) as JSON"
    )
    return p


def from_args(argv: Sequence[str], env: Mapping[str, str]) -> Settings:
    a = parser().parse_args(list(argv))
    as_given = {k: v for k, v in vars(a).items() if k in _FIELDS}  # flags named like their field
    return _check(
        Settings(
            **as_given,
            targets=_targets(a.targets),
            registry_password=env.get("REGISTRY_PASSWORD", "") if a.registry_username else "",
            github_token=env.get("GITHUB_TOKEN", ""),
            workspace=Path(a.repo),
        )
    )


_FIELDS = {f.name for f in fields(Settings)} - {"targets", "registry_password", "github_token", "workspace"}


def parallelism(requested: int) -> int:
    if requested > 0:
        return requested
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
