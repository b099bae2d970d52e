"""push.writes (what needs no registry): the render-inputs hash that lets a re-run skip timoni, the
annotations every push carries, and the message of a failed registry call."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, cast

import pytest

from gitops_action.config.model import Target
from gitops_action.plan import catchup
from gitops_action.push.writes import (
    RENDER_INPUTS,
    not_ours,
    push_annotations,
    registry_error,
    render_inputs,
)
from gitops_action.registry.credentials import Credentials
from gitops_action.registry.flux import Flux
from gitops_action.registry.oci import Call

if TYPE_CHECKING:
    from gitops_action.push.options import Options

WEB = Target(
    "web", "instance", "web", "oci://r.io/web", ("latest",), ("apps/web.cue",),
    namespace="apps", module="modules/web",
)  # fmt: skip
HEAD = "a" * 40


def options(**changes: object) -> Options:
    """The fields render_inputs reads; the rest of Options (git, flux, reader) play no part."""
    fields: dict[str, object] = {
        "mode": "push",
        "skip_unchanged": True,
        "head": HEAD,
        "timoni_identity": "/usr/bin/timoni:123:456",
        **changes,
    }
    return cast("Options", SimpleNamespace(**fields))


def test_render_inputs_is_a_hash_of_commit_timoni_and_arguments() -> None:
    value = render_inputs(WEB, options())
    assert value.startswith("sha256:") and len(value) == len("sha256:") + 64
    assert render_inputs(WEB, options()) == value  # the same inputs, the same value
    assert render_inputs(WEB, options(head="b" * 40)) != value
    assert render_inputs(WEB, options(timoni_identity="/other:1:2")) != value
    assert render_inputs(replace(WEB, files=("apps/other.cue",)), options()) != value
    # what is not an argument of the build does not count
    assert render_inputs(replace(WEB, tags=("prod",), key="x"), options()) == value


@pytest.mark.parametrize(
    ("target", "opts"),
    [
        (WEB, options(mode="dry-run")),
        (WEB, options(skip_unchanged=False)),
        (WEB, options(timoni_identity="")),
        (replace(WEB, module="oci://ghcr.io/m"), options()),  # a tag can move
        (Target("p", "bundle", "p", "oci://r.io/p", ("x",), ("b.cue",)), options()),
    ],
)
def test_no_render_inputs_where_a_render_depends_on_more(
    target: Target, opts: Options
) -> None:
    assert render_inputs(target, opts) == ""


def test_push_annotations() -> None:
    assert push_annotations(WEB, options()) == {
        catchup.COMMIT: HEAD,
        RENDER_INPUTS: render_inputs(WEB, options()),
    }
    assert push_annotations(WEB, options(mode="dry-run")) == {catchup.COMMIT: HEAD}


URL = "oci://r.io/web:latest"


def failed(failure: str, error: str) -> Call:
    return Call(False, failure, error, 1.0)  # type: ignore[arg-type]


def test_registry_error_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    assert registry_error("pushing", URL, failed("auth", "UNAUTHORIZED")) == (
        f"the registry refused the credentials while pushing {URL}: UNAUTHORIZED"
    )
    assert registry_error(
        "pushing", URL, failed("transient", "context deadline exceeded")
    ) == (
        f"timed out while pushing {URL} (gave up after retries; the `timeout` input limits each "
        "attempt): context deadline exceeded"
    )
    assert registry_error(
        "tagging", URL, failed("transient", "503 Service Unavailable")
    ) == (
        f"the registry kept failing while tagging {URL} (gave up after retries): "
        "503 Service Unavailable"
    )
    assert (
        registry_error("pushing", URL, failed("fatal", "bad"))
        == f"pushing {URL} failed: bad"
    )
    assert not_ours(URL, "a container image").startswith(
        f"{URL} holds a container image, not"
    )


def test_a_refusal_without_credentials_asks_for_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("DOCKER_CONFIG", "REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR"):
        monkeypatch.delenv(name, raising=False)
    anonymous = Flux(Credentials("", "").docker_config(set(), tmp_path))
    logged_in = Flux(Credentials("ci", "pw").docker_config({"r.io"}, tmp_path))
    call = failed("auth", "UNAUTHORIZED")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    assert registry_error("pushing", URL, call, anonymous) == (
        f"the registry asked for credentials while pushing {URL} and none were given for r.io "
        "(set registry-username and registry-password): UNAUTHORIZED"
    )
    monkeypatch.delenv("GITHUB_ACTIONS")
    assert (
        "(give --registry-username and the REGISTRY_PASSWORD environment variable)"
        in (registry_error("pushing", URL, call, anonymous))
    )
    # credentials were given for the host: they are what the registry refused
    assert registry_error("pushing", URL, call, logged_in).startswith(
        "the registry refused the credentials"
    )
