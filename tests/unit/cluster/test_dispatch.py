"""cluster.dispatch.parse: the Flux event inside a `repository_dispatch` payload (built as
notification-controller sends it: support/payloads.flux_dispatch, on the real example envelope),
and every payload that is not Flux's, or not for this repository, refused saying what is wrong."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from support import payloads

from gitops_action.cluster.dispatch import MAX_REVISION, FluxEvent, Refused, parse

REPOSITORY = "octo-org/gitops"
DIGEST = "sha256:" + "d" * 64
ORIGIN = "main@sha1:" + "a" * 40


def event(**changes: Any) -> dict[str, Any]:
    given: dict[str, Any] = {
        "name": "webapp-staging",
        "artifact_revision": f"staging@{DIGEST}",
        "origin_revision": ORIGIN,
    }
    return payloads.flux_dispatch(**(given | changes))


def test_a_finished_reconciliation_is_a_success() -> None:
    assert parse(event(), REPOSITORY) == FluxEvent(
        name="webapp-staging",
        namespace="flux-system",
        environment="staging",
        digest=DIGEST,
        revision=ORIGIN,
        state="success",
        message="Reconciliation finished in 2.1s, next run in 60m0s",
    )


def test_the_state_follows_severity_and_commit_status() -> None:
    assert parse(event(severity="error"), REPOSITORY).state == "failure"
    # An info event that ends nothing (a dependency wait, a progress note): no status.
    assert parse(event(commit_status=False), REPOSITORY).state is None


def test_the_repository_is_compared_without_case() -> None:
    assert parse(event(), "Octo-Org/GitOps").name == "webapp-staging"


def test_the_message_becomes_one_printable_line_of_at_most_140_characters() -> None:
    noisy = "line one\nline\ttwo\x1b[31m red" + " x" * 200
    message = parse(event(message=noisy), REPOSITORY).message
    assert "\n" not in message and "\x1b" not in message
    assert message.startswith("line one line two[31m red x")
    assert len(message) == 140 and message.endswith("…")


def with_change(edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    payload = copy.deepcopy(event())
    edit(payload)
    return payload


def about_a_helm_release(p: dict[str, Any]) -> None:
    p["action"] = "HelmRelease/webapp-staging.flux-system"
    p["client_payload"]["involvedObject"]["kind"] = "HelmRelease"


REFUSED: dict[str, tuple[dict[str, Any], str]] = {
    "another repository": (
        event(repository="mallory/gitops"),
        "the event is for repository 'mallory/gitops', this run is 'octo-org/gitops'",
    ),
    "an event_type that is not Flux's": (
        with_change(lambda p: p.update(action="deploy")),
        "event_type 'deploy' is not Flux's <Kind>/<name>.<namespace>",
    ),
    "client_payload not an object": (
        with_change(lambda p: p.update(client_payload="{}")),
        "client_payload is not a Flux event (an object)",
    ),
    "involvedObject other than the event_type's": (
        with_change(
            lambda p: p["client_payload"]["involvedObject"].update(name="other")
        ),
        "client_payload.involvedObject does not name the object of the event_type",
    ),
    "not a Kustomization": (
        with_change(about_a_helm_release),
        "the event is about a HelmRelease: only Kustomization events record deployments",
    ),
    "a revision that is not <tag>@sha256:<digest>": (
        event(artifact_revision="staging@sha1:" + "a" * 40),
        "client_payload.metadata has no `revision`",
    ),
    "an originRevision too long": (
        event(origin_revision="x" * (MAX_REVISION + 1)),
        "client_payload.metadata has no `revision`",
    ),
    "an empty originRevision": (
        event(origin_revision=""),
        "client_payload.metadata has no `revision`",
    ),
    "a severity Flux does not send": (
        event(severity="warning"),
        "client_payload.severity 'warning' is not info or error",
    ),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_payload_that_is_not_flux_s_is_refused(case: str) -> None:
    payload, says = REFUSED[case]
    with pytest.raises(Refused) as e:
        parse(payload, REPOSITORY)
    assert str(e.value).startswith(says), str(e.value)
