"""flux: push, tag and pull OCI artifacts. Every call is classified from flux's stderr, because
flux exits 1 for every failure."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from gitops_action import defaults, runner
from gitops_action.registry.credentials import docker_login, registry_host
from gitops_action.registry.oci import Call, Failure, FluxOnly, Pulled, Pushed
from gitops_action.runner import go_gc

_MISSING = re.compile(
    r"MANIFEST_UNKNOWN|NAME_UNKNOWN|manifest unknown|unexpected status code 404"
)
_AUTH = re.compile(
    r"UNAUTHORIZED|DENIED|authentication required|\b401 Unauthorized|\b403 Forbidden|status code 40[13]\b"
)
_TRANSIENT = re.compile(
    r"\b50[0-9] [A-Z]|status code 5\d\d|\b429\b|TOOMANYREQUESTS|connection reset|broken pipe|unexpected EOF|"
    r"\bEOF\b|timed? ?out|deadline exceeded|connection refused|temporar|server misbehaving|"
    # flux reports a 5xx answer to a GET by its reason alone: `GET URL: UNKNOWN: Service Unavailable`.
    r"Internal Server Error|Bad Gateway|Service Unavailable|Gateway Time-?out|"
    # Another writer's upload of the same blob raced ours (another run pushing to the repository).
    r"DIGEST_INVALID|BLOB_UNKNOWN|BLOB_UPLOAD_UNKNOWN",
    re.I,
)
_URL = re.compile(r"\b(?:https?|oci)://\S+")
_HTTPS_PROBE = re.compile(
    r'Get "https://[^"]*": (?:tls: first record does not look like a TLS handshake|'
    r"http: server gave HTTP response to HTTPS client); "
)


# The cloud variables flux reads for `--provider` (fluxcd/pkg/auth v0.54.2 and the SDKs it builds on:
# aws-sdk-go-v2 config, azidentity's environment/workload/managed identity, golang.org/x/oauth2/google
# and compute/metadata). Each provider sees its own and no other's.
PROVIDER_ENV: dict[str, tuple[str, ...]] = {
    "aws": ("AWS_",),
    "azure": ("AZURE_", "IDENTITY_", "MSI_", "IMDS_ENDPOINT"),
    "gcp": ("GOOGLE_", "GCE_METADATA_", "CLOUDSDK_"),
}


def environment(provider: str, private: Mapping[str, str]) -> dict[str, str]:
    """Everything a flux process sees: PATH, TLS and proxy settings, its provider's variables, UTC, and
    `private` (the run's own DOCKER_CONFIG and HOME). No input, no token of the runner."""
    base = runner.allowed(
        (*runner.TLS, *runner.PROXY), prefixes=PROVIDER_ENV.get(provider, ())
    )
    return {**base, "TZ": "UTC", **go_gc(), **private}


def classify(stderr: str) -> Failure:
    # Repository names and URLs are the user's words ("forbidden-app"): never classify on them.
    text = _URL.sub("URL", stderr)
    if _AUTH.search(text):
        return "auth"
    if _MISSING.search(text):
        return "missing"
    if _TRANSIENT.search(text):
        return "transient"
    return "fatal"


def message(stderr: str) -> str:
    """flux's last `✗` line, or its last line: the one worth showing."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    marked = [ln for ln in lines if ln.startswith("✗")]
    pick = (marked or lines or ["flux failed without a message"])[-1]
    # For a plain-HTTP registry flux tries HTTPS first and reports both attempts: keep the one that matters.
    pick = _HTTPS_PROBE.sub("", pick)
    return pick.lstrip("✗ ").strip()


@dataclass(frozen=True)
class Flux:
    """Options shared by every flux call of one run."""

    env: Mapping[str, str]
    timeout: str = defaults.TIMEOUT
    provider: str = "generic"
    process_timeout: float = 600

    def anonymous(self, url: str) -> bool:
        """No login for `url`'s host in the run's docker config, and no cloud provider: a refusal
        then says credentials are needed, not that the ones given were wrong."""
        if self.provider != "generic":
            return False
        try:
            return docker_login(registry_host(url), self.env) is None
        except FluxOnly:  # a helper or store may hold one
            return False

    def _run(self, args: Sequence[str]) -> runner.Completed:
        extra = [f"--timeout={self.timeout}"]
        if self.provider != "generic":
            extra.append(f"--provider={self.provider}")
        return runner.run(
            ["flux", *args, *extra],
            env=environment(self.provider, self.env),
            timeout=self.process_timeout,
        )

    @staticmethod
    def _call(done: runner.Completed) -> Call:
        if done.ok:
            return Call(True, "", "", done.seconds)
        failure: Failure = (
            "transient" if done.returncode == 124 else classify(done.stderr)
        )
        return Call(False, failure, message(done.stderr), done.seconds)

    def push(
        self,
        url: str,
        path: Path,
        *,
        source: str,
        revision: str,
        annotations: Mapping[str, str] | None = None,
    ) -> Pushed:
        args = [
            "push",
            "artifact",
            url,
            f"--path={path}",
            f"--source={source}",
            f"--revision={revision}",
            "--reproducible",
            "-o",
            "json",
        ]
        for k, v in (annotations or {}).items():
            args += ["-a", f"{k}={v}"]
        done = self._run(args)
        call = self._call(done)
        if not call.ok:
            return Pushed(call)
        try:
            digest = str(json.loads(done.stdout)["digest"])
        except (ValueError, KeyError, TypeError):
            return Pushed(
                Call(
                    False,
                    "fatal",
                    f"flux printed no digest: {done.stdout[:200]!r}",
                    done.seconds,
                )
            )
        return Pushed(call, digest)

    def tag(self, url: str, tags: Sequence[str]) -> Call:
        args = ["tag", "artifact", url]
        for t in tags:
            args += ["--tag", t]
        return self._call(self._run(args))

    def pull(self, url: str, out_dir: Path) -> Pulled:
        out_dir.mkdir(parents=True, exist_ok=True)
        done = self._run(["pull", "artifact", url, "-o", str(out_dir)])
        call = self._call(done)
        if not call.ok:
            return Pulled(call)
        found = dict(re.findall(r"✔\s+(revision|digest)\s+(\S+)", done.stderr))
        # flux prints the digest as REPO@sha256:...; keep the digest alone.
        return Pulled(
            call,
            found.get("revision", ""),
            found.get("digest", "").rsplit("@", 1)[-1],
            out_dir,
        )
