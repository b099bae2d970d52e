"""What the user asked for: action inputs (INPUT_* variables) or command-line flags, one shape."""

from __future__ import annotations

import argparse
import os
import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path

from gitops_action import defaults
from gitops_action.errors import SettingsError
from gitops_action.secrets import basic_auth, pem_parts

MODES = (
    "auto",
    "push",
    "dry-run",
    "plan",
    "promote",
    "flux-config",
    "deployment-status",
)
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
    # dry-run: the PR comment's Markdown also goes here (command line only)
    comment_file: str = ""
    timeout: str = defaults.TIMEOUT
    allow_pull_request_target: bool = False
    workspace: Path = Path(".")
    summary_file: str = ""
    output_file: str = ""
    sign: str = defaults.SIGN  # none | cosign
    # PEM private key; empty with `cosign`: keyless
    cosign_key: str = field(default="", repr=False)
    cosign_password: str = field(default="", repr=False)
    fulcio_url: str = defaults.FULCIO_URL
    rekor_url: str = defaults.REKOR_URL
    # mode promote: point tag `to_tag` at the digest of `from_tag`; `force` allows a rollback
    from_tag: str = ""
    to_tag: str = ""
    force: bool = False
    # mode flux-config: where the files go (else one YAML stream), and a tag to follow instead of
    # each target's first tag
    output_dir: str = ""
    flux_tag: str = ""
    # a push records a GitHub Deployment per pushed target (deployments.py)
    deployments: bool = False

    @cached_property
    def timeout_seconds(self) -> float:
        """`timeout` in seconds, parsed once (flux takes the string itself: its own `--timeout`)."""
        return duration_seconds(self.timeout)

    def secrets(self) -> tuple[str, ...]:
        """Every value that must never be shown: the inputs, the docker config's `auth` value, and a
        PEM key line by line too (a log line never holds all of it)."""
        auth = (
            basic_auth(self.registry_username, self.registry_password)
            if self.registry_password
            else ""
        )
        key_lines = pem_parts(self.cosign_key)
        found = (
            self.registry_password,
            self.github_token,
            auth,
            self.cosign_password,
            self.cosign_key,
        )
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
        raise SettingsError(
            f"input `{name}`: expected a number, got {value!r}"
        ) from exc
    if n < 0:
        raise SettingsError(f"input `{name}`: must not be negative")
    return n


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s)")


def duration_seconds(value: str) -> float:
    """A Go duration (`5m`, `90s`, `1m30s`) in seconds, as flux --timeout reads it."""
    parts = _DURATION.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise SettingsError(
            f"input `timeout`: expected a duration like 90s or 5m, got {value!r}"
        )
    scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    return sum(float(n) * scale[u] for n, u in parts)


REVISION_FIELDS = ("ref_name", "sha", "short_sha")


def _check_impossible(s: Settings) -> None:
    """Inputs no run could honour: said before anything starts, not as a failure of every target."""
    if s.timeout_seconds <= 0:
        raise SettingsError(
            f"input `timeout`: {s.timeout!r} leaves no time for any call: give e.g. 90s or 5m"
        )
    config = posixpath.normpath(s.config)
    if (
        "\0" in s.config
        or posixpath.isabs(config)
        or config == ".."
        or config.startswith("../")
    ):
        raise SettingsError(
            f"input `config`: {s.config!r} is outside the repository: give a path relative to its root"
        )
    unknown = sorted(set(re.findall(r"\{(\w*)\}", s.revision)) - set(REVISION_FIELDS))
    if unknown:
        known = ", ".join(f"{{{f}}}" for f in REVISION_FIELDS)
        raise SettingsError(
            f"input `revision`: unknown placeholder {{{unknown[0]}}} (known: {known})"
        )


def _check(s: Settings) -> Settings:
    _check_impossible(s)
    if s.mode not in MODES:
        raise SettingsError(
            f"input `mode`: expected one of {', '.join(MODES)}, got {s.mode!r}"
        )
    if s.provider not in PROVIDERS:
        raise SettingsError(
            f"input `provider`: expected one of {', '.join(PROVIDERS)}, got {s.provider!r}"
        )
    if bool(s.registry_username) != bool(s.registry_password):
        raise SettingsError(
            "inputs `registry-username` and `registry-password` must be given together"
        )
    if s.registry and not s.registry.startswith("oci://"):
        raise SettingsError(
            f"input `registry`: must start with oci://, got {s.registry!r}"
        )
    _check_signing(s)
    if s.mode == "promote":
        _check_promote(s)
    if s.flux_tag and not TAG.fullmatch(s.flux_tag):
        raise SettingsError(
            f"input `tag` (--tag): {s.flux_tag!r} is not a valid OCI tag"
        )
    return s


def _check_signing(s: Settings) -> None:
    if s.sign not in SIGN_MODES:
        raise SettingsError(
            f"input `sign`: expected one of {', '.join(SIGN_MODES)}, got {s.sign!r}"
        )
    if s.cosign_password and not s.cosign_key:
        raise SettingsError("input `cosign-password` is set but `cosign-key` is empty")
    # never echo it: it is a secret
    if s.cosign_key and "-----BEGIN " not in s.cosign_key:
        raise SettingsError(
            "input `cosign-key`: expected a PEM private key (`cosign generate-key-pair`)"
        )
    for name, url in (("fulcio-url", s.fulcio_url), ("rekor-url", s.rekor_url)):
        if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", url):
            raise SettingsError(
                f"input `{name}`: expected an http(s):// URL, got {url!r}"
            )


def _check_promote(s: Settings) -> None:
    for name, tag in (("from", s.from_tag), ("to", s.to_tag)):
        if not tag:
            raise SettingsError(
                f"mode promote needs input `{name}` (a tag, e.g. from: staging, to: production)"
            )
        if not TAG.fullmatch(tag):
            raise SettingsError(f"input `{name}`: {tag!r} is not a valid OCI tag")
    if s.from_tag == s.to_tag:
        raise SettingsError(
            f"inputs `from` and `to` are the same tag ({s.from_tag!r}): nothing to promote"
        )


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
            skip_unchanged=_bool(
                "skip-unchanged", get("skip-unchanged", "true") or "true"
            ),
            comment=_bool("comment", get("comment", "true") or "true"),
            timeout=get("timeout") or defaults.TIMEOUT,
            allow_pull_request_target=_bool(
                "allow-pull-request-target", get("allow-pull-request-target", "false")
            ),
            workspace=Path(env.get("GITHUB_WORKSPACE") or "."),
            sign=get("sign") or defaults.SIGN,
            cosign_key=env.get("INPUT_COSIGN-KEY", "").strip(),
            cosign_password=env.get("INPUT_COSIGN-PASSWORD", ""),
            fulcio_url=get("fulcio-url") or defaults.FULCIO_URL,
            rekor_url=get("rekor-url") or defaults.REKOR_URL,
            from_tag=get("from"),
            to_tag=get("to"),
            force=_bool("force", get("force", "false")),
            output_dir=get("output-dir"),
            flux_tag=get("tag"),
            deployments=_bool("deployments", get("deployments", "false")),
        )
    )


COMMANDS: dict[str, str] = {
    "plan": "list the targets a push would deliver, and why (nothing rendered or written)",
    "push": "render the affected targets and push them with flux",
    "dry-run": "render the affected targets and diff them against what each target's first tag holds",
    "promote": "point tag --to at the digest of tag --from (nothing rendered)",
    "flux-config": "write the Flux OCIRepository and Kustomization of every target",
}


def parser() -> argparse.ArgumentParser:
    """One subcommand per mode, each with the flags it uses only: shared flags come from parents."""
    p = argparse.ArgumentParser(
        prog="python -m gitops_action",
        description="Render the Timoni instances and bundles a commit affects and push them with flux "
        "(or plan them, or dry-run them with a diff against what the registry holds). "
        "`python -m gitops_action COMMAND --help` lists the flags of one command.",
    )
    p.add_argument(
        "--version", action=_Version, nargs=0, help="show the versions and exit"
    )
    repo, select, reads, output = (
        _repo_flags(),
        _select_flags(),
        _read_flags(),
        _output_flags(),
    )
    build, signs = _build_flags(), _sign_flags()
    sub = p.add_subparsers(dest="mode", title="commands", metavar="COMMAND")
    parents = {
        # signs: records and tags count only when signed
        "plan": [repo, select, reads, signs, output],
        "push": [repo, select, reads, build, signs, output],
        "dry-run": [repo, select, reads, build, output],
        "promote": [repo, reads, build, signs, output],
        "flux-config": [repo, output],
    }
    for name, helptext in COMMANDS.items():
        c = sub.add_parser(
            name, parents=parents[name], help=helptext, description=helptext + "."
        )
        _command_flags(name, c)
    return p


def _repo_flags() -> argparse.ArgumentParser:
    """Every command: where the repository and its configuration are, and which targets."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("repository")
    g.add_argument(
        "--repo",
        metavar="DIR",
        default=".",
        help="the git repository (default: current directory)",
    )
    g.add_argument(
        "--config",
        metavar="FILE",
        default=defaults.CONFIG,
        help="configuration file, relative to --repo",
    )
    g.add_argument(
        "--head",
        metavar="COMMIT",
        default="",
        help="the commit to read (default: HEAD; a dirty work tree is not read)",
    )
    g.add_argument(
        "--targets",
        metavar="NAMES",
        default="",
        help="comma-separated target names to restrict the run to",
    )
    g.add_argument(
        "--registry",
        metavar="oci://HOST/PREFIX",
        default="",
        help="override the configuration's `registry` (oci://host/prefix)",
    )
    return p


def _select_flags() -> argparse.ArgumentParser:
    """plan, push, dry-run: which commits decide what is affected, and the revision pushed."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("what is affected")
    g.add_argument(
        "--all", action="store_true", help="ignore the diff and take every target"
    )
    g.add_argument(
        "--base",
        metavar="COMMIT",
        default="",
        help="base commit to diff against (default: what each tag holds)",
    )
    g.add_argument(
        "--revision",
        metavar="TEMPLATE",
        default=defaults.REVISION,
        help="flux --revision template; {ref_name}, {sha} and {short_sha} are filled in",
    )
    return p


def _read_flags() -> argparse.ArgumentParser:
    """The commands that talk to the registry."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("registry")
    g.add_argument(
        "--registry-username",
        metavar="USER",
        default="",
        help="registry user; the password is read from the "
        "REGISTRY_PASSWORD environment variable (never a command-line argument)",
    )
    g.add_argument(
        "--provider",
        default=defaults.PROVIDER,
        choices=PROVIDERS,
        help="flux --provider for registry login",
    )
    g.add_argument(
        "--timeout",
        metavar="DURATION",
        default=defaults.TIMEOUT,
        help=f"timeout of each flux call, e.g. 90s or 5m (default: {defaults.TIMEOUT})",
    )
    return p


def _build_flags() -> argparse.ArgumentParser:
    """push, dry-run and promote: the commands that work on many targets at once."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("concurrency")
    g.add_argument(
        "--parallel",
        metavar="N",
        type=int,
        default=0,
        help="targets handled at once (default: CPU count)",
    )
    return p


def _sign_flags() -> argparse.ArgumentParser:
    """push and promote: the commands that write a digest someone may verify."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("signing")
    g.add_argument(
        "--sign",
        default=defaults.SIGN,
        choices=SIGN_MODES,
        help="cosign: sign every pushed digest with the PEM key in the COSIGN_KEY environment variable "
        "(password: COSIGN_PASSWORD; never a command-line argument); without COSIGN_KEY, keyless "
        "with the GitHub OIDC token of the job (a workflow step with id-token: write)",
    )
    g.add_argument(
        "--fulcio-url",
        metavar="URL",
        default=defaults.FULCIO_URL,
        help="Fulcio for keyless signing",
    )
    g.add_argument(
        "--rekor-url",
        metavar="URL",
        default=defaults.REKOR_URL,
        help="Rekor for keyless signing and verifying",
    )
    return p


def _output_flags() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("reports")
    g.add_argument(
        "--summary-file",
        metavar="FILE",
        default="",
        help="write the markdown summary here (default: stdout)",
    )
    g.add_argument(
        "--output-file",
        metavar="FILE",
        default="",
        help="write the outputs (artifacts, matrix, pushed, failed) as JSON",
    )
    return p


def _command_flags(name: str, c: argparse.ArgumentParser) -> None:
    """The flags of one command alone."""
    if name == "push":
        c.add_argument(
            "--skip-unchanged",
            action=argparse.BooleanOptionalAction,
            default=True,
            help="do not push when the tag already holds the same content (default: on)",
        )
        c.add_argument(
            "--deployments",
            action="store_true",
            help="record a GitHub Deployment per pushed target (needs GITHUB_TOKEN and GITHUB_REPOSITORY)",
        )
    if name == "dry-run":
        c.add_argument(
            "--comment",
            action=argparse.BooleanOptionalAction,
            default=False,
            help="on a pull request: keep one PR comment up to date (needs GITHUB_TOKEN)",
        )
        c.add_argument(
            "--comment-file",
            metavar="FILE",
            default="",
            help="write the pull request comment's Markdown here (any CI, no token needed)",
        )
    if name in ("plan", "dry-run"):
        c.add_argument(
            "--allow-pull-request-target",
            action="store_true",
            help="in a pull_request_target run: read the pull request's head without credentials",
        )
    if name == "promote":
        c.add_argument(
            "--from",
            metavar="TAG",
            dest="from_tag",
            default="",
            help="the tag to promote (e.g. staging)",
        )
        c.add_argument(
            "--to",
            metavar="TAG",
            dest="to_tag",
            default="",
            help="the tag to point at it (e.g. production)",
        )
        c.add_argument(
            "--force",
            action="store_true",
            help="allow moving --to back to an older commit",
        )
    if name == "flux-config":
        c.add_argument(
            "--output-dir",
            metavar="DIR",
            default="",
            help="write one file per target here (default: stdout)",
        )
        c.add_argument(
            "--tag",
            metavar="TAG",
            dest="flux_tag",
            default="",
            help="the tag to follow (default: each target's first)",
        )
        c.add_argument(
            "--sign",
            default=defaults.SIGN,
            choices=SIGN_MODES,
            help="cosign: the Flux objects verify the signature (the key's Secret `cosign-pub` when "
            "COSIGN_KEY is set, else the keyless identity of this workflow)",
        )


class _Version(argparse.Action):
    """`--version`, read only when asked (argparse's own action would read it on every start)."""

    def __call__(self, p: argparse.ArgumentParser, *_: object) -> None:
        print(version_text())
        p.exit()


def version_text() -> str:
    """This package's version; per tool the version it was tested with (in a source checkout) and
    the one found on PATH, or that none is: the run needs them there."""
    root = Path(__file__).resolve().parents[2]
    lines = [f"timoni-flux-push {_package_version(root)}"]
    pins = root / "tools" / "versions.env"
    text = pins.read_text() if pins.is_file() else ""
    pinned = dict(re.findall(r"^(TIMONI|FLUX|COSIGN)_VERSION=(\S+)$", text, re.M))
    for tool in ("timoni", "flux", "cosign"):
        pin = pinned.get(tool.upper())
        lines.append(f"{tool} " + (f"{pin} (pinned), " if pin else "") + _found(tool))
    return "\n".join(lines)


# How each tool says its version: `timoni version 0.31.0`, `flux version 2.9.4`, cosign's JSON.
_VERSION_ARGS = {"timoni": ["-v"], "flux": ["-v"], "cosign": ["version", "--json"]}


def _found(tool: str) -> str:
    """`found VERSION (PATH)`, or `not found on PATH`."""
    import shutil
    import subprocess

    path = shutil.which(tool)
    if not path:
        return "not found on PATH"
    try:
        done = subprocess.run(
            [path, *_VERSION_ARGS[tool]],
            capture_output=True,
            text=True,
            timeout=15,
            check=False,
        )
        said = re.search(r"\bv?(\d+\.\d+\.\d+[\w.+-]*)", done.stdout + done.stderr)
    except (OSError, subprocess.SubprocessError):
        said = None
    return f"found {said.group(1) if said else 'an unknown version'} ({path})"


def _package_version(root: Path) -> str:
    """The pyproject next to the package first (the source being run), else the installed metadata."""
    project = root / "pyproject.toml"
    if project.is_file():
        import tomllib

        found = tomllib.loads(project.read_text()).get("project", {}).get("version")
        if isinstance(found, str):
            return found
    from importlib import metadata

    try:
        return metadata.version("timoni-flux-push")
    except metadata.PackageNotFoundError:
        return "unknown"


def _owners(flag: str) -> list[str]:
    """The commands that take `flag` (for the message about a flag given to another command)."""
    sub = next(
        a for a in parser()._actions if isinstance(a, argparse._SubParsersAction)
    )
    return [n for n, c in sub.choices.items() if flag in c._option_string_actions]


# A flag a user may guess for a secret: its value must never be echoed (it is in the CI log then).
_SECRET_FLAG = re.compile(r"^--?[\w-]*(password|token|key|secret)[\w-]*$", re.I)
_SECRET_VARS = {
    "--registry-password": "REGISTRY_PASSWORD (with --registry-username)",
    "--cosign-key": "COSIGN_KEY (with --sign cosign)",
    "--cosign-password": "COSIGN_PASSWORD (with --sign cosign)",
    "--github-token": "GITHUB_TOKEN",
}
SECRET_ENV = "REGISTRY_PASSWORD, COSIGN_KEY, COSIGN_PASSWORD and GITHUB_TOKEN"


def _flag_before_command(argv: Sequence[str]) -> None:
    """`--base main plan`: argparse would say "invalid choice: 'main'"; say where flags go instead."""
    if (
        not argv
        or not argv[0].startswith("-")
        or argv[0] in ("-h", "--help", "--version")
    ):
        return
    command = next((x for x in argv if x in COMMANDS), "")
    if command:
        rest = [x for x in argv if x != command]
        raise SettingsError(
            f"flags go after the command: python -m gitops_action {command} {' '.join(rest)}"
        )


def _secret_flag(argv: Sequence[str]) -> None:
    """A secret given as a flag is refused before argparse sees it (its messages quote the
    arguments), naming the flag and never its value; secrets come from the environment only."""
    for x in argv:
        if x == "--":
            return
        flag = x.split("=", 1)[0]
        if x.startswith("-") and _SECRET_FLAG.match(flag):
            where = _SECRET_VARS.get(flag.lower())
            use = (
                f"set the environment variable {where}"
                if where
                else f"it reads them from {SECRET_ENV}"
            )
            raise SettingsError(
                f"{flag} is not a flag: secrets are never command-line arguments (they would show in the "
                f"process list, the shell history and the CI log); {use}. Its value was not printed"
            )


def from_args(argv: Sequence[str], env: Mapping[str, str]) -> Settings:
    _secret_flag(argv)
    _flag_before_command(argv)
    a, extra = parser().parse_known_args(list(argv))
    if a.mode is None:
        raise SettingsError(
            f"give a command: {', '.join(COMMANDS)} (python -m gitops_action --help)"
        )
    if extra:
        flag = next((x.split("=", 1)[0] for x in extra if x.startswith("--")), "")
        owners = _owners(flag) if flag else []
        if owners:
            raise SettingsError(
                f"{flag} is not a flag of `{a.mode}` (it is one of: {', '.join(owners)})"
            )
        names = [x.split("=", 1)[0] for x in extra if x.startswith("-")]
        said = ", ".join(names) or f"{len(extra)} value(s)"
        raise SettingsError(
            f"`{a.mode}`: unrecognized arguments: {said} (values are not printed)"
        )
    given = vars(a)
    # flags named like their field
    as_given = {k: v for k, v in given.items() if k in _FIELDS}
    sign = given.get("sign", "none")
    return _check(
        Settings(
            **(as_given | {"comment": given.get("comment", False)}),
            targets=_targets(a.targets),
            registry_password=env.get("REGISTRY_PASSWORD", "")
            if given.get("registry_username")
            else "",
            github_token=env.get("GITHUB_TOKEN", ""),
            workspace=Path(a.repo),
            cosign_key=env.get("COSIGN_KEY", "").strip() if sign == "cosign" else "",
            cosign_password=env.get("COSIGN_PASSWORD", "") if sign == "cosign" else "",
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
    return (
        len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else (os.cpu_count() or 1)
    )
