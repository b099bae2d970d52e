"""Every write a run makes to the registry: flux push and flux tag, each with retries, one at a time
per OCI repository, each push carrying the same annotations (the first push and a repair alike)."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from gitops_action.config.targets import Target
from gitops_action.plan import catchup
from gitops_action.registry.oci import Call, Pushed
from gitops_action.render import timoni

if TYPE_CHECKING:
    from gitops_action.push.options import Options
    from gitops_action.registry.flux import Flux

RENDER_INPUTS = "timoni-flux-push.render-inputs"
_TIMED_OUT = re.compile(r"deadline exceeded|timed? ?out|Client\.Timeout", re.I)


def render_inputs(t: Target, opts: Options) -> str:
    """What a render of `t` at this commit depends on, hashed; pushed as an annotation. When the tag
    already holds this commit with the same value, rendering again would give the same manifests:
    a re-run reports `unchanged` without running timoni. "" where a render can depend on more than
    the commit's files and timoni: modules from a registry (a tag can move), bundles (runtime
    values from the environment, remote modules), and wherever the content is not compared."""
    if (
        opts.mode != "push"
        or not opts.skip_unchanged
        or t.kind != "instance"
        or not t.local_module
    ):
        return ""
    if not opts.timoni_identity:
        return ""
    inputs = {
        "commit": opts.head,
        "timoni": opts.timoni_identity,
        "args": timoni.build_args(t, runtime_from_env=False),
    }
    return (
        "sha256:"
        + hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()
    )


def push_annotations(t: Target, opts: Options) -> dict[str, str]:
    """Every push records its full commit (the revision template may not: `{short_sha}`), so the plan
    and the never-backwards check work whatever the template, and the render inputs where they apply."""
    inputs = render_inputs(t, opts)
    return {catchup.COMMIT: opts.head, **({RENDER_INPUTS: inputs} if inputs else {})}


def push(t: Target, url: str, path: Path, opts: Options, log: list[str]) -> Pushed:
    """The one push of a target's render: with its annotations, retried, one writer per repository.
    The same content, commit and annotations give the same digest (flux --reproducible)."""
    notes = push_annotations(t, opts)
    with opts.writing(t.artifact):
        return opts.retry.run(
            lambda: opts.flux.push(
                url, path, source=opts.source, revision=opts.revision, annotations=notes
            ),
            log,
            "push",
        )


def tag_others(t: Target, digest: str, opts: Options, log: list[str]) -> str:
    """Point the target's other tags at `digest`; the error, or "" when done."""
    ref = f"{t.artifact}@{digest}"
    with opts.writing(t.artifact):
        tagged = opts.retry.run(lambda: opts.flux.tag(ref, t.tags[1:]), log, "tag")
    return "" if tagged.ok else registry_error("tagging", ref, tagged, opts.flux)


def mark_checked(
    t: Target, digest: str, opts: Options, work: Path, log: list[str]
) -> str:
    """The tag holds an older commit whose render equals this one's (e.g. a module refactor), and
    skip-unchanged leaves it there. Record that this commit renders the same digest, next to the tag,
    so later runs plan from this commit and do not render the target again and again. A failure
    costs only that: the next run renders and checks again. Returns the record (oci://REPO@DIGEST,
    "" when none was written): with signing on it is signed, and a later run trusts only a signed one."""
    record = work / "checked"
    try:
        record.mkdir(parents=True, exist_ok=True)
        (record / "checked.json").write_text(
            json.dumps(
                {"tag": t.tags[0], "digest": digest, "commit": opts.head},
                sort_keys=True,
            )
        )
    except OSError as exc:
        log.append(
            f"could not write the check record (the next run renders again): {exc}"
        )
        return ""
    url = f"{t.artifact}:{catchup.marker_tag(t.tags[0])}"
    notes = {catchup.COMMIT: opts.head, catchup.CHECKED: digest}
    with opts.writing(t.artifact):
        marked = opts.retry.run(
            lambda: opts.flux.push(
                url,
                record,
                source=opts.source,
                revision=opts.revision,
                annotations=notes,
            ),
            log,
            "record",
        )
    if marked.call.ok:
        log.append(f"{url}: recorded that {opts.head[:12]} renders the digest {digest}")
        return f"{t.artifact}@{marked.digest}"
    log.append(
        f"could not record the check at {url} (the next run renders again): {marked.call.error}"
    )
    return ""


def registry_error(doing: str, url: str, call: Call, flux: Flux | None = None) -> str:
    """The message of a failed registry call. A refusal where `flux` sent no credentials to the
    host (`Flux.anonymous`) asks for them rather than blaming the ones given."""
    if call.failure == "auth" and flux is not None and flux.anonymous(url):
        host = url.removeprefix("oci://").split("/", 1)[0]
        # The action's inputs in Actions; on the command line, its flag and environment variable.
        give = (
            "set registry-username and registry-password"
            if os.environ.get("GITHUB_ACTIONS") == "true"
            else "give --registry-username and the REGISTRY_PASSWORD environment variable"
        )
        return (
            f"the registry asked for credentials while {doing} {url} and none were given for {host} "
            f"({give}): {call.error}"
        )
    if call.failure == "auth":
        return f"the registry refused the credentials while {doing} {url}: {call.error}"
    if call.failure == "transient" and _TIMED_OUT.search(call.error):
        # A stall, or flux still retrying 5xx answers when the deadline came: flux cannot tell which.
        return (
            f"timed out while {doing} {url} (gave up after retries; the `timeout` input limits each "
            f"attempt): {call.error}"
        )
    if call.failure == "transient":
        return f"the registry kept failing while {doing} {url} (gave up after retries): {call.error}"
    return f"{doing} {url} failed: {call.error}"


def not_ours(url: str, held: str) -> str:
    return f"{url} holds {held}, not a Flux artifact: not overwriting it (push to another tag or repository)"
