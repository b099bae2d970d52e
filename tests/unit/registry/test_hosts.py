"""registry.hosts: plain HTTP only for loopback and private hosts (as flux), token realms by
go-containerregistry's rules, credentials in plain HTTP only to this machine."""

from __future__ import annotations

import ipaddress

import pytest

from gitops_action.registry.hosts import (
    address,
    may_be_plain_http,
    may_carry_credentials,
    realm_refused,
)


def test_address() -> None:
    assert address("localhost:5000") == ipaddress.ip_address("127.0.0.1")
    assert address("[::1]:5000") == ipaddress.ip_address("::1")
    assert address("10.0.0.7") == ipaddress.ip_address("10.0.0.7")
    assert address("registry.example.com:443") is None
    assert address("") is None


@pytest.mark.parametrize(
    ("host", "plain"),
    [
        ("localhost:5000", True),
        ("127.0.0.1:5000", True),
        ("[::1]:5000", True),
        ("10.1.2.3", True),
        ("192.168.0.2:5000", True),
        ("ghcr.io", False),
        ("8.8.8.8:5000", False),
        ("localhost.example.com", False),
    ],
)
def test_may_be_plain_http(host: str, plain: bool) -> None:
    assert may_be_plain_http(host) is plain


@pytest.mark.parametrize(
    ("realm", "registry", "scheme", "why"),
    [
        ("https://auth.example.com/token", "r.example.com", "https", ""),
        ("https://8.8.8.8/token", "r.example.com", "https", ""),
        ("ftp://auth.example.com/token", "r.example.com", "https", "is not https"),
        ("file:///etc/passwd", "r.example.com", "https", "is not https"),
        ("http://auth.example.com/token", "r.example.com", "https", "plain-HTTP realm"),
        ("http://auth.example.com/token", "r.example.com", "http", ""),
        # the registry's own host:port always, even a loopback one
        ("http://127.0.0.1:5000/token", "127.0.0.1:5000", "http", ""),
        # but another port of a loopback host is not the registry
        ("http://127.0.0.1:6000/token", "127.0.0.1:5000", "http", "private or link"),
        ("https://169.254.169.254/latest", "r.example.com", "https", "link-local"),
        ("https://10.0.0.1/token", "r.example.com", "https", "private"),
        ("https://[::1]/token", "r.example.com", "https", "private"),
        ("https://0.0.0.0/token", "r.example.com", "https", "private"),
        ("https://224.0.0.1/token", "r.example.com", "https", "private"),
    ],
)
def test_realm_refused(realm: str, registry: str, scheme: str, why: str) -> None:
    answer = realm_refused(realm, registry, scheme)
    assert (why in answer and answer != "") if why else answer == ""


@pytest.mark.parametrize(
    ("url", "carries"),
    [
        ("https://ghcr.io/v2/", True),
        ("https://10.0.0.1/v2/", True),
        ("http://127.0.0.1:5000/v2/", True),
        ("http://localhost:5000/v2/", True),
        ("http://[::1]:5000/v2/", True),
        # flux would send one to a private address: this reader does not
        ("http://10.0.0.5:5000/v2/", False),
        ("http://ghcr.io/v2/", False),
    ],
)
def test_may_carry_credentials(url: str, carries: bool) -> None:
    assert may_carry_credentials(url) is carries
