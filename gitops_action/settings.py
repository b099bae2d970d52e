"""What the user asked for: action inputs (INPUT_* variables) or command-line flags, one shape."""

from __future__ import annotations

import argparse
import os
import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

from . import defaults
from .credentials import basic_auth, pem_parts
from .errors import SettingsError

MODES = ("auto", "push", "dry-run", "plan", "promote", "flux-config")
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
PROVIDERS = ("generic", "aws", "azure", "gcp")
SIGN_MODES = ("none", "cosign")
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
    allow_pull_request_target: bool = False
    workspace: Path = Path(".")
    summary_file: str = ""
    output_file: str = ""
    sign: str = "none"  # none | cosign
    cosign_key: str = field(default="", repr=False)  # PEM private key; empty with `cosign`: keyless
    cosign_password: str = field(default="", repr=False)
    fulcio_url: str = "https://fulcio.sigstore.dev"
    rekor_url: str = "https://rekor.sigstore.dev"
    # mode promote: point tag `to_tag` at the digest of `from_tag`; `force` allows a rollback
    from_tag: str = ""
    to_tag: str = ""
    force: bool = False
    # mode flux-config: where the files go (else one YAML stream), and a tag to follow instead of
    # each target's first tag
    output_dir: str = ""
    flux_tag: str = ""

    def secrets(self) -> tuple[str, ...]:
        """Every value that must never be shown: the inputs, the docker config's `auth` value, and a
        PEM key line by line too (a log line never holds all of it)."""
        auth = basic_auth(self.registry_username, self.registry_password) if self.registry_password else ""
        key_lines = pem_parts(self.cosign_key)
        found = (self.registry_password, self.github_token, auth, self.cosign_password, self.cosign_key)
        return tuple(dict.fromkeys(s for s in (*found, *key_lines) if s))


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


REVISION_FIELDS = ("ref_name", "sha", "short_sha")


def _check_impossible(s: Settings) -> None:
    """Inputs no run could honour: said before anything starts, not as a failure of every target."""
    if duration_seconds(s.timeout) <= 0:
        raise SettingsError(
            f"input `timeout`: {s.timeout!r} leaves no time for any call: give e.g. 90s or 5m"
        )
    config = posixpath.normpath(s.config)
    if "\0" in s.config or posixpath.isabs(config) or config == ".." or config.startswith("../"):
        raise SettingsError(
            f"input `config`: {s.config!r} is outside the repository: give a path relative to its root"
        )
    unknown = sorted(set(re.findall(r"\{(\w*)\}", s.revision)) - set(REVISION_FIELDS))
    if unknown:
        known = ", ".join(f"{{{f}}}" for f in REVISION_FIELDS)
        raise SettingsError(f"input `revision`: unknown placeholder {{{unknown[0]}}} (known: {known})")


def _check(s: Settings) -> Settings:
    _check_impossible(s)
    if s.mode not in MODES:
        raise SettingsError(f"input `mode`: expected one of {', '.join(MODES)}, got {s.mode!r}")
    if s.provider not in PROVIDERS:
        raise SettingsError(f"input `provider`: expected one of {', '.join(PROVIDERS)}, got {s.provider!r}")
    if bool(s.registry_username) != bool(s.registry_password):
        raise SettingsError("inputs `registry-username` and `registry-password` must be given together")
    if s.registry and not s.registry.startswith("oci://"):
        raise SettingsError(f"input `registry`: must start with oci://, got {s.registry!r}")
    _check_signing(s)
    if s.mode == "promote":
        _check_promote(s)
    if s.flux_tag and not TAG.fullmatch(s.flux_tag):
        raise SettingsError(f"--tag: {s.flux_tag!r} is not a valid OCI tag")
    return s


def _check_signing(s: Settings) -> None:
    if s.sign not in SIGN_MODES:
        raise SettingsError(f"input `sign`: expected one of {', '.join(SIGN_MODES)}, got {s.sign!r}")
    if s.cosign_password and not s.cosign_key:
        raise SettingsError("input `cosign-password` is set but `cosign-key` is empty")
    if s.cosign_key and "-----BEGIN " not in s.cosign_key:  # never echo it: it is a secret
        raise SettingsError("input `cosign-key`: expected a PEM private key (`cosign generate-key-pair`)")
    for name, url in (("fulcio-url", s.fulcio_url), ("rekor-url", s.rekor_url)):
        if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", url):
            raise SettingsError(f"input `{name}`: expected an http(s):// URL, got {url!r}")


def _check_promote(s: Settings) -> None:
    for name, tag in (("from", s.from_tag), ("to", s.to_tag)):
        if not tag:
            raise SettingsError(
                f"mode promote needs input `{name}` (a tag, e.g. from: staging, to: production)"
            )
        if not TAG.fullmatch(tag):
            raise SettingsError(f"input `{name}`: {tag!r} is not a valid OCI tag")
    if s.from_tag == s.to_tag:
        raise SettingsError(f"inputs `from` and `to` are the same tag ({s.from_tag!r}): nothing to promote")


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
            allow_pull_request_target=_bool(
                "allow-pull-request-target", get("allow-pull-request-target", "false")
            ),
            workspace=Path(env.get("GITHUB_WORKSPACE") or "."),
            sign=get("sign") or "none",
            cosign_key=env.get("INPUT_COSIGN-KEY", "").strip(),
            cosign_password=env.get("INPUT_COSIGN-PASSWORD", ""),
            fulcio_url=get("fulcio-url") or "https://fulcio.sigstore.dev",
            rekor_url=get("rekor-url") or "https://rekor.sigstore.dev",
            from_tag=get("from"),
            to_tag=get("to"),
            force=_bool("force", get("force", "false")),
            output_dir=get("output-dir"),
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
        choices=("plan", "push", "dry-run", "promote", "flux-config"),
        help="plan: list affected targets; push: build and "
        "push them; dry-run: build and diff against the artifact at each target's first tag; "
        "promote: point tag --to at the digest of tag --from (nothing rendered); flux-config: write "
        "the Flux OCIRepository and Kustomization of every target",
    )
    p.add_argument("--config", default=defaults.CONFIG, help="configuration file, relative to --repo")
    p.add_argument("--repo", default=".", help="the git repository (default: current directory)")
    p.add_argument("--all", action="store_true", help="ignore the diff and take every target")
    p.add_argument("--base", default="", help="base commit to diff against (default: what each tag holds)")
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
    _signing_flags(p)
    _mode_flags(p)
    p.add_argument("--summary-file", default="", help="write the markdown summary here (default: stdout)")
    p.add_argument(
        "--output-file", default="", help="write the outputs (artifacts, matrix, pushed, failed) as JSON"
    )
    return p


def _signing_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--sign",
        default="none",
        choices=SIGN_MODES,
        help="cosign: sign every pushed digest with the PEM key in the COSIGN_KEY environment variable "
        "(password: COSIGN_PASSWORD; never a command-line argument); without COSIGN_KEY, keyless "
        "with the GitHub OIDC token of the job (a workflow step with id-token: write)",
    )
    p.add_argument("--fulcio-url", default="https://fulcio.sigstore.dev", help="Fulcio for keyless signing")
    p.add_argument(
        "--rekor-url", default="https://rekor.sigstore.dev", help="Rekor for keyless signing and verifying"
    )


def _mode_flags(p: argparse.ArgumentParser) -> None:
    """The timeout, and the flags of one mode only (promote, flux-config, pull_request_target)."""
    p.add_argument(
        "--timeout",
        default=defaults.TIMEOUT,
        help=f"timeout of each flux call, e.g. 90s or 5m (default: {defaults.TIMEOUT})",
    )
    p.add_argument("--from", dest="from_tag", default="", help="promote: the tag to promote (e.g. staging)")
    p.add_argument(
        "--to", dest="to_tag", default="", help="promote: the tag to point at it (e.g. production)"
    )
    p.add_argument(
        "--force", action="store_true", help="promote: allow moving --to back to an older commit (rollback)"
    )
    p.add_argument(
        "--output-dir", default="", help="flux-config: write one file per target here (default: stdout)"
    )
    p.add_argument(
        "--tag",
        dest="flux_tag",
        default="",
        help="flux-config: the tag to follow (default: each target's first)",
    )
    p.add_argument(
        "--allow-pull-request-target",
        action="store_true",
        help="in a pull_request_target run: dry-run the pull request's head without credentials",
    )


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
            cosign_key=env.get("COSIGN_KEY", "").strip() if a.sign == "cosign" else "",
            cosign_password=env.get("COSIGN_PASSWORD", "") if a.sign == "cosign" else "",
        )
    )


_FIELDS = {f.name for f in fields(Settings)} - {
    "targets",
    "registry_password",
    "github_token",
    "workspace",
    "cosign_key",
    "cosign_password",
}


def parallelism(requested: int) -> int:
    if requested > 0:
        return requested
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
