"""Sign pushed digests with cosign, verify each signature, and tell the user Flux's `verify` block.

Signatures use cosign's `.sig` tag format (`REPO:sha256-<hex>.sig`): every Flux source-controller
that verifies cosign signatures reads it, and it needs no referrers API (DESIGN.md, "Signing").
cosign runs with an environment built here, not ours: the private key travels as
`--key env://COSIGN_PRIVATE_KEY`, the password as COSIGN_PASSWORD and the OIDC token as
SIGSTORE_ID_TOKEN, only in that environment and never on a command line.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from gitops_action import runner
from gitops_action.defaults import FULCIO_URL, REKOR_URL
from gitops_action.errors import ToolMissing
from gitops_action.push.results import TargetResult
from gitops_action.runner import go_gc
from gitops_action.secrets import pem_parts, redact
from gitops_action.sign.oidc import (
    Identity,
    OidcError,
    identity,
    oidc_token,
    token_claims,
)
from gitops_action.text import md

KEY_VAR = "COSIGN_PRIVATE_KEY"
# the digests this run put or left at its tags
SIGNED_STATUSES = ("pushed", "unchanged")
# Handed to cosign from our environment: finding programs, proxies and private CAs, a private
# Sigstore's trust root, and the cloud credentials of a non-generic `provider`.
PASSED = (
    "PATH",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "TUF_ROOT",
    "TUF_MIRROR",
    "SIGSTORE_ROOT_FILE",
)
PASSED_PROXY = (
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "NO_PROXY",
    "https_proxy",
    "http_proxy",
    "no_proxy",
)
PASSED_CLOUD = {"aws": ("AWS_",), "azure": ("AZURE_",), "gcp": ("GOOGLE_", "CLOUDSDK_")}


@dataclass(frozen=True)
class Signer:
    """Everything a cosign call needs. Secrets live in `env` only (cosign's whole environment)."""

    env: Mapping[str, str] = field(repr=False)
    # key mode: the PEM public key (verify, and the Secret Flux needs)
    public_key: str = ""
    public_key_file: Path | None = None
    identity: Identity | None = None  # keyless mode
    fulcio_url: str = FULCIO_URL
    rekor_url: str = REKOR_URL
    timeout: float = 300
    # could not be set up: every target that needs a signature fails with it
    error: str = ""
    secrets: tuple[str, ...] = field(default=(), repr=False)
    # Digests found carrying a valid signature during this run (a re-run's digest is checked by the
    # pipeline, then again by sign_results: one `cosign verify` is enough).
    verified: set[str] = field(default_factory=set, compare=False, repr=False)


@dataclass(frozen=True)
class Signed:
    ok: bool
    signature: str = ""  # where the signature is: oci://REPO:sha256-<hex>.sig
    signed_now: bool = False  # False: a valid signature was there already
    error: str = ""
    log: tuple[str, ...] = ()
    seconds: float = 0.0


def cosign_ref(url: str) -> str:
    """oci://host/repo@sha256:... -> host/repo@sha256:... (cosign takes no scheme)."""
    return url.removeprefix("oci://")


def signature_ref(url: str) -> str:
    """The `.sig` tag a signature of `oci://REPO@sha256:HEX` is stored under."""
    repo, _, digest = url.partition("@")
    return f"{repo}:{digest.replace(':', '-')}.sig"


def sign_args(signer: Signer, url: str) -> list[str]:
    """`cosign sign` for one digest, key or keyless, in the `.sig` format. The key or token is in
    the environment: nothing secret is in these arguments."""
    args = [
        "cosign",
        "sign",
        "--yes",
        "--new-bundle-format=false",
        "--use-signing-config=false",
    ]
    if signer.identity is None:
        # Key mode stays private and offline: Flux verifies a key signature without the log.
        args += [f"--key=env://{KEY_VAR}", "--tlog-upload=false"]
    else:
        args += [f"--fulcio-url={signer.fulcio_url}", f"--rekor-url={signer.rekor_url}"]
    return [*args, cosign_ref(url)]


def verify_args(signer: Signer, url: str) -> list[str]:
    """`cosign verify` of one digest against the same key or identity that signs."""
    args = ["cosign", "verify", "--new-bundle-format=false", "--output=json"]
    if signer.identity is None:
        args += [f"--key={signer.public_key_file}", "--insecure-ignore-tlog=true"]
    else:
        args += [
            f"--certificate-oidc-issuer-regexp={go_regexp(signer.identity.issuer)}",
            f"--certificate-identity-regexp={go_regexp(signer.identity.subject)}",
            f"--rekor-url={signer.rekor_url}",
        ]
    return [*args, cosign_ref(url)]


def public_key_args() -> list[str]:
    return ["cosign", "public-key", f"--key=env://{KEY_VAR}"]


def go_regexp(literal: str) -> str:
    """An anchored Go regular expression matching exactly `literal` (Go's regexp.QuoteMeta)."""
    return (
        "^" + "".join("\\" + c if c in "\\.+*?()|[]{}^$" else c for c in literal) + "$"
    )


def cosign_env(
    home: Path,
    docker_config: str,
    provider: str,
    environ: Mapping[str, str],
    secret: Mapping[str, str],
) -> dict[str, str]:
    """cosign's whole environment: a private HOME, the registry credentials flux uses, what PASSED
    names, and `secret` (key and password, or the OIDC token). Nothing else of ours reaches it."""
    env = {k: environ[k] for k in (*PASSED, *PASSED_PROXY) if k in environ}
    prefixes = PASSED_CLOUD.get(provider, ())
    env.update(
        {k: v for k, v in environ.items() if prefixes and k.startswith(prefixes)}
    )
    env.update(
        {
            "HOME": str(home),
            "DOCKER_CONFIG": docker_config,
            "TZ": "UTC",
            **go_gc(),
            **secret,
        }
    )
    return env


def _run(signer: Signer, args: Sequence[str]) -> runner.Completed:
    return runner.run(args, env=signer.env, timeout=signer.timeout)


def _said(done: runner.Completed, secrets: Sequence[str]) -> str:
    """cosign's last `Error:` line (or last line), with secrets removed."""
    lines = [ln.strip() for ln in done.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("Error:")]
    pick = (
        (errors or lines or [f"cosign exited {done.returncode}"])[-1]
        .removeprefix("Error:")
        .strip()
    )
    return redact(pick, list(secrets))


def verify(signer: Signer, url: str) -> runner.Completed:
    return _run(signer, verify_args(signer, url))


def _repository(name: str) -> str:
    """A repository name as cosign writes it into a signature, compared without Docker Hub's aliases."""
    name = name.strip().lower()
    for alias in ("index.docker.io/", "registry-1.docker.io/"):
        name = (
            "docker.io/" + name.removeprefix(alias) if name.startswith(alias) else name
        )
    if name.startswith("docker.io/") and name.count("/") == 1:
        name = name.replace("docker.io/", "docker.io/library/", 1)
    return name


def made_here(stdout: str, url: str) -> bool:
    """Whether one of the signatures `cosign verify --output=json` accepted was made for the
    repository of `url` (its payload's docker-reference). cosign checks only the digest a signature
    names: a signed digest copied with its `.sig` into another target's repository verifies there
    as well, so without this a registry writer could put one target's signed bytes at another's."""
    want = _repository(cosign_ref(url).partition("@")[0])
    try:
        payloads = json.loads(stdout)
    except ValueError:
        return False
    for p in payloads if isinstance(payloads, list) else []:
        identity = (
            (p.get("critical") or {}).get("identity") if isinstance(p, dict) else None
        )
        ref = identity.get("docker-reference") if isinstance(identity, dict) else None
        if isinstance(ref, str) and _repository(ref) == want:
            return True
    return False


def verified(signer: Signer, url: str) -> tuple[bool, str]:
    """A valid signature from this key or identity, made for this repository; or why not."""
    done = verify(signer, url)
    if not done.ok:
        return False, _said(done, signer.secrets)
    if not made_here(done.stdout, url):
        return (
            False,
            f"its signatures name another repository than {cosign_ref(url).partition('@')[0]}",
        )
    return True, ""


def sign_and_verify(signer: Signer, url: str) -> Signed:
    """Make sure `oci://REPO@sha256:...` carries a valid signature from this key or identity: keep a
    valid one that is there, else sign, then verify. The one entry point for every mode."""
    return _timed(
        _sign_and_verify, signer, url, lambda said: f"signing failed for {url}: {said}"
    )


def _timed(
    step: Callable[[Signer, str], Signed],
    signer: Signer,
    url: str,
    failed: Callable[[str], str],
) -> Signed:
    """`step` with its time; cosign missing or a bug fails this digest only (`failed` says how), its
    message with every secret removed."""
    start = time.monotonic()
    try:
        outcome = step(signer, url)
    except Exception as exc:  # the other digests go on
        outcome = Signed(
            False,
            error=failed(redact(f"{type(exc).__name__}: {exc}", list(signer.secrets))),
        )
    return replace(outcome, seconds=time.monotonic() - start)


def _sign_and_verify(signer: Signer, url: str) -> Signed:
    if signer.error:
        return Signed(False, error=f"signing failed: {signer.error}")
    if "@sha256:" not in url:
        return Signed(
            False,
            error=f"signing failed: {url} is not a digest reference (never a tag)",
        )
    where = signature_ref(url)
    if url in signer.verified or verified(signer, url)[0]:
        return Signed(
            True,
            where,
            False,
            log=(f"{url}: already signed ({where}): not signed again",),
        )
    signed = _run(signer, sign_args(signer, url))
    if not signed.ok:
        return Signed(
            False, error=f"signing failed for {url}: {_said(signed, signer.secrets)}"
        )
    ok, why = verified(signer, url)
    if not ok:
        return Signed(
            False,
            error=f"signing failed: the new signature of {url} does not verify: {why}",
        )
    return Signed(True, where, True, log=(f"{url}: signed and verified ({where})",))


def check_signed(signer: Signer, url: str) -> Signed:
    """Whether `oci://REPO@sha256:...` already carries a valid signature from this key or identity.
    Never signs: a promotion moves only what this repository signed, and signs nothing itself."""
    return _timed(
        _check_signed, signer, url, lambda said: f"could not be verified ({said})"
    )


def _check_signed(signer: Signer, url: str) -> Signed:
    if signer.error:
        return Signed(False, error=f"could not be verified ({signer.error})")
    if "@sha256:" not in url:
        return Signed(False, error=f"is not a digest reference ({url})")
    ok, why = (True, "") if url in signer.verified else verified(signer, url)
    if not ok:
        who = "key" if signer.identity is None else "identity"
        return Signed(
            False, error=f"carries no valid signature from this {who} ({why})"
        )
    signer.verified.add(url)
    where = signature_ref(url)
    return Signed(True, where, False, log=(f"{url}: signature verified ({where})",))


def vouches(signer: Signer) -> Callable[[str], bool]:
    """Whether `oci://REPO@DIGEST` carries a valid signature from this key or identity (the
    pipeline's re-run shortcut and the planner's check records ask: their annotations are anyone's).
    A failure to ask (cosign missing, a bug) is "no": the target is rendered."""
    return lambda url: check_signed(signer, url).ok


def verify_only(signer: Signer, url: str) -> Signed:
    """A digest this run did not build: it counts as signed only with a valid signature there."""
    checked = check_signed(signer, url)
    if checked.ok:
        log = (
            f"{url}: already signed ({checked.signature}); not built by this run, so not signed by it",
        )
        return replace(checked, log=log)
    why = (
        f"not signed: {url} was neither pushed nor compared with its render by this run, and "
        f"{checked.error} (a signature is made only for bytes this repository built)"
    )
    return replace(checked, error=why)


def sign_results(
    results: Sequence[TargetResult], signer: Signer, parallel: int = 2
) -> list[TargetResult]:
    """New results with every pushed or unchanged digest signed (or found signed) and verified.
    A signature is made only for a digest a result built (this run pushed it, or compared its whole
    content with its own render) and for the check records this run wrote; any other digest (the
    tag's annotations vouched for it) is only verified, and its target fails without a valid one.
    A digest shared by several targets is signed once; one repository is signed one digest at a time
    (concurrent writes to one repository can fail in the registry)."""
    delivered = {u for r in results if r.status in SIGNED_STATUSES and (u := r.url)}
    built = {
        u for r in results if r.status in SIGNED_STATUSES and r.built and (u := r.url)
    }
    built |= {u for r in results if (u := r.record)}
    urls = sorted(delivered | built)
    by_repo: dict[str, list[str]] = {}
    for url in urls:
        by_repo.setdefault(url.partition("@")[0], []).append(url)

    def repo_batch(batch: list[str]) -> list[tuple[str, Signed]]:
        return [
            (u, sign_and_verify(signer, u) if u in built else verify_only(signer, u))
            for u in batch
        ]

    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        done = dict(
            pair for batch in pool.map(repo_batch, by_repo.values()) for pair in batch
        )
    out = [
        _apply(r, done[r.url]) if r.status in SIGNED_STATUSES and r.url in done else r
        for r in results
    ]
    return [_record(r, done[r.record]) if r.record in done else r for r in out]


def _record(result: TargetResult, outcome: Signed) -> TargetResult:
    """A check record that could not be signed costs only a render on the next run (it is ignored)."""
    said = (
        outcome.log
        if outcome.ok
        else (
            f"the check record is not signed (the next run renders again): {outcome.error}",
        )
    )
    return replace(
        result, log=[*result.log, *said], seconds=result.seconds + outcome.seconds
    )


def _apply(result: TargetResult, outcome: Signed) -> TargetResult:
    log = [*result.log, *outcome.log]
    seconds = result.seconds + outcome.seconds
    if outcome.ok:
        return replace(
            result, signed=True, signature=outcome.signature, log=log, seconds=seconds
        )
    # The push stays: the target fails because Flux (with `verify`) would refuse its digest.
    error = outcome.error if not result.error else f"{outcome.error}; {result.error}"
    return replace(
        result,
        status="failed",
        signed=False,
        signature=None,
        error=error,
        log=log,
        seconds=seconds,
    )


# --- setting up: the key's public half, or the keyless identity -------------------------------


@dataclass(frozen=True)
class Request:
    """What signing needs from the settings and the run."""

    key: str = field(default="", repr=False)
    password: str = field(default="", repr=False)
    fulcio_url: str = FULCIO_URL
    rekor_url: str = REKOR_URL
    provider: str = "generic"
    docker_config: str = ""  # the private docker config of the run's flux calls, if any
    timeout: float = 300


def prepare(request: Request, scratch: Path, environ: Mapping[str, str]) -> Signer:
    """A Signer for this run; on failure a Signer whose `error` fails every target to be signed."""
    home = scratch / "cosign-home"
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    docker = (
        request.docker_config
        or environ.get("DOCKER_CONFIG")
        or str(Path.home() / ".docker")
    )
    base = Signer(
        {},
        fulcio_url=request.fulcio_url,
        rekor_url=request.rekor_url,
        timeout=request.timeout,
    )
    if request.key:
        secret = {KEY_VAR: request.key, "COSIGN_PASSWORD": request.password}
        signer = replace(
            base,
            env=cosign_env(home, docker, request.provider, environ, secret),
            secrets=_secret_parts(request.key, request.password),
        )
        try:
            done = _run(signer, public_key_args())
        except ToolMissing as exc:
            return replace(
                signer, error=f"{exc} (sign: cosign needs the cosign binary)"
            )
        if not done.ok or "PUBLIC KEY" not in done.stdout:
            return replace(signer, error=_key_error(done, signer.secrets))
        pub = scratch / "cosign.pub"
        pub.write_text(done.stdout, "utf-8")
        return replace(signer, public_key=done.stdout.strip(), public_key_file=pub)
    try:
        token = oidc_token(environ)
    except OidcError as exc:
        return replace(base, error=str(exc))
    return replace(
        base,
        env=cosign_env(
            home, docker, request.provider, environ, {"SIGSTORE_ID_TOKEN": token}
        ),
        identity=identity(token_claims(token), environ),
        secrets=(token,),
    )


def _secret_parts(key: str, password: str) -> tuple[str, ...]:
    """The password, the key, and each line of the key (a log line never holds all of a PEM)."""
    return tuple(s for s in (password, key, *pem_parts(key)) if s)


def _key_error(done: runner.Completed, secrets: Sequence[str]) -> str:
    said = _said(done, secrets)
    if "decrypt" in said.lower():
        return "the cosign-key could not be decrypted with cosign-password (wrong password?)"
    return f"cosign could not read the cosign-key: {said}"


# --- what the user pastes into the cluster -----------------------------------------------------


def verify_block(signer: Signer) -> str:
    """The OCIRepository `spec.verify` that accepts exactly this run's signatures."""
    lines = ["spec:", "  verify:", "    provider: cosign"]
    if signer.identity is None:
        return "\n".join([*lines, "    secretRef:", "      name: cosign-pub"])
    quote = json.dumps  # a JSON string is a YAML string: backslashes stay exact
    return "\n".join(
        [
            *lines,
            "    matchOIDCIdentity:",
            f"      - issuer: {quote(go_regexp(signer.identity.issuer))}",
            f"        subject: {quote(go_regexp(signer.identity.subject))}",
        ]
    )


def verify_spec(key: bool, environ: Mapping[str, str]) -> dict[str, object]:
    """`spec.verify` for the Flux objects `flux-config` writes: the key's Secret, or the keyless
    identity of the workflow that signs (GITHUB_WORKFLOW_REF: no token is needed to name it)."""
    if key:
        return {"provider": "cosign", "secretRef": {"name": "cosign-pub"}}
    who = identity({}, environ)
    match = {"issuer": go_regexp(who.issuer), "subject": go_regexp(who.subject)}
    return {"provider": "cosign", "matchOIDCIdentity": [match]}


def summary(signer: Signer, results: Sequence[TargetResult]) -> str:
    """The job summary's signing section, shown once for the run."""
    return summary_text(signer, len({r.url for r in results if r.signed}))


def summary_text(signer: Signer, count: int, promoted: bool = False) -> str:
    """The signing section for `count` signed digests (pushes, or promotions: verified, not signed)."""
    head = ["", "### Signatures", ""]
    if signer.error:
        what = (
            "No `from` digest could be verified, none was promoted"
            if promoted
            else "Nothing was signed"
        )
        return "\n".join([*head, f"{what}: {md(signer.error)}", ""])
    how = (
        "with the key below (no transparency log)"
        if signer.identity is None
        else "keylessly"
    )
    if promoted:
        text = [
            *head,
            f"{count} digest(s) carry a cosign signature made {how}, verified before `to` moved.",
        ]
        text += [
            "A promotion signs nothing: a `from` digest without a valid signature from this key or"
        ]
        text += ["identity is refused, and `to` is not moved.", ""]
    else:
        text = [
            *head,
            f"{count} digest(s) carry a cosign signature made {how}, verified after signing.",
        ]
    text += [
        "Add this to each `OCIRepository` so Flux refuses anything else:",
        "",
        "```yaml",
    ]
    text += [verify_block(signer), "```", ""]
    if signer.identity is None:
        text += [
            "with the public key in a Secret next to it (the key name must end in `.pub`):",
            "",
        ]
        text += ["```sh", "kubectl -n flux-system create secret generic cosign-pub \\"]
        text += [
            "  --from-file=cosign.pub=cosign.pub",
            "```",
            "",
            "```",
            signer.public_key,
            "```",
            "",
        ]
    if signer.identity is not None and (signer.fulcio_url, signer.rekor_url) != (
        FULCIO_URL,
        REKOR_URL,
    ):
        text += [
            "With a private Sigstore, add `trustedRootSecretRef` naming a Secret with its"
        ]
        text += ["`trusted_root.json`.", ""]
    if signer.identity is not None and signer.identity.shared:
        text += [
            "> [!WARNING]",
            "> The signing identity is a workflow of another repository (a reusable workflow): any",
            "> repository that can call it can make signatures with this identity. Sign with a key,",
            "> or run the action from a workflow of this repository.",
            "",
        ]
    return "\n".join(text)
