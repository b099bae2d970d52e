"""registry.reader (the pure parts): which references the HTTP reader reads itself (FluxOnly hands
the rest to flux), what a Flux artifact's manifest must look like, and errors in flux's words."""

from __future__ import annotations

import pytest

from gitops_action.registry.oci import FLUX_LAYER, FluxOnly
from gitops_action.registry.reader import (
    Reference,
    _describe,
    _error_codes,
    _flux_layer,
    _parsed,
)


def test_reference_parse() -> None:
    assert Reference.parse("oci://localhost:5000/a/b:v1.2") == Reference(
        "localhost:5000", "a/b", "v1.2"
    )
    # the tag is after the last colon of the path, not the host's port
    assert Reference.parse("oci://r.io:443/x:y").tag == "y"


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("oci://r.io/repo", "not an oci://HOST/REPOSITORY:TAG"),
        ("oci://r.io/:tag", "not an oci://HOST/REPOSITORY:TAG"),
        ("oci:///repo:tag", "not an oci://HOST/REPOSITORY:TAG"),
        ("oci://r.io:5000", "not an oci://HOST/REPOSITORY:TAG"),
        ("oci://docker.io/library/app:1", "Docker Hub"),
        ("oci://index.docker.io/org/app:1", "Docker Hub"),
    ],
)
def test_references_left_to_flux(url: str, why: str) -> None:
    with pytest.raises(FluxOnly, match=why):
        Reference.parse(url)


def test_a_flux_layer() -> None:
    layer = {"mediaType": FLUX_LAYER, "digest": "sha256:" + "0" * 64, "size": 10}
    manifest = {"layers": [layer], "annotations": {"k": "v", "n": 1}}
    assert _flux_layer(manifest) == (layer, {"k": "v", "n": "1"})
    assert _flux_layer({"layers": [layer]}) == (layer, {})


@pytest.mark.parametrize(
    ("manifest", "why", "layout"),
    [
        ([], "not an image manifest", ""),
        ({"config": {}}, "not an image manifest", ""),
        ({"layers": []}, "not one layer", "0 layers"),
        ({"layers": [{"mediaType": FLUX_LAYER}] * 2}, "not one layer", "2 layers"),
        ({"layers": "x"}, "not one layer", "0 layers"),
        (
            {"layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip"}]},
            "not a flux artifact",
            "a layer of type application/vnd.oci.image.layer.v1.tar+gzip",
        ),
        (
            {"layers": [{"mediaType": FLUX_LAYER}], "annotations": ["x"]},
            "not a flux artifact",
            f"a layer of type {FLUX_LAYER}",
        ),
    ],
)
def test_other_layouts_are_left_to_flux(
    manifest: object, why: str, layout: str
) -> None:
    with pytest.raises(FluxOnly, match=why) as err:
        _flux_layer(manifest)
    assert err.value.layout == layout


def test_parsed() -> None:
    assert _parsed(b'{"a": 1}') == {"a": 1}
    with pytest.raises(FluxOnly, match="not an image manifest"):
        _parsed(b"<html>")


def test_describe_in_flux_words() -> None:
    assert (
        _describe(ConnectionRefusedError(111, "Connection refused"))
        == "connection refused"
    )
    assert _describe(ConnectionResetError()) == "connection reset by peer"
    assert _describe(TimeoutError("read timed out")) == "i/o timeout (read timed out)"
    assert _describe(OSError("boom")) == "OSError: boom"


@pytest.mark.xfail(
    strict=True,
    reason="bug: _describe writes `exc or 'timed out'`, but an exception object is always true, "
    "so a TimeoutError without a message gives 'i/o timeout ()' instead of the fallback",
)
def test_a_timeout_without_a_message() -> None:
    assert _describe(TimeoutError()) == "i/o timeout (timed out)"


def test_error_codes() -> None:
    body = (
        b'{"errors": [{"code": "MANIFEST_UNKNOWN"}, {"code": "NAME_UNKNOWN"}, "x", {}]}'
    )
    assert _error_codes(body) == ["MANIFEST_UNKNOWN", "NAME_UNKNOWN", ""]
    assert _error_codes(b"not json") == []
    assert _error_codes(b"[1]") == []
    assert _error_codes(b'{"errors": null}') == []
