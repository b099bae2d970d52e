"""flux exits 1 for every failure: the action tells them apart by stderr. These are messages the
real flux v2.9.4 printed in this suite's runs against the real registry."""

from __future__ import annotations

import pytest

from gitops_action.registry.flux import classify, message

pytestmark = pytest.mark.unit  # no timoni, flux or registry: `make unit` runs these

SEEN = [
    (
        "✗ GET http://127.0.0.1:5999/v2/demo/x/manifests/latest: MANIFEST_UNKNOWN: manifest unknown; "
        "map[Tag:latest]",
        "missing",
    ),
    (
        "✗ GET https://127.0.0.1:42595/v2/creds/webapp/manifests/staging: UNAUTHORIZED: authentication "
        "required; [map[Action:pull Class: Name:creds/webapp Type:repository]]",
        "auth",
    ),
    (
        "✗ pushing artifact failed: PUT http://127.0.0.1:41203/v2/p/webapp/manifests/production: multiple "
        "errors returned: DIGEST_INVALID: provided digest did not match uploaded content; "
        "MANIFEST_BLOB_UNKNOWN: blob unknown to registry; sha256:5b94",
        "transient",
    ),
    (
        '✗ error setting up transport: Get "http://127.0.0.1:1/v2/": dial tcp 127.0.0.1:1: connect: '
        "connection refused",
        "transient",
    ),
    (
        "✗ GET http://127.0.0.1:1234/v2/p/x/manifests/a: UNKNOWN: Service Unavailable",
        "transient",
    ),
    (
        '✗ Get "https://no-such-host.invalid/v2/": dial tcp: lookup no-such-host.invalid: no such host',
        "fatal",
    ),
    # A repository named like an error must not be read as one.
    (
        "✗ GET http://127.0.0.1:5999/v2/forbidden-unauthorized/x/manifests/a: MANIFEST_UNKNOWN: manifest "
        "unknown",
        "missing",
    ),
]


@pytest.mark.parametrize(("stderr", "kind"), SEEN)
def test_classify(stderr: str, kind: str) -> None:
    assert classify(stderr) == kind


def test_message_is_the_last_failure_line() -> None:
    stderr = (
        "► pushing artifact to 127.0.0.1:1/x:latest\n✗ first\n✗ the one that matters\n"
    )
    assert message(stderr) == "the one that matters"
