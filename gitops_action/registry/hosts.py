"""Where a registry read may go, by flux's rules (go-containerregistry): which hosts may answer in
plain HTTP, which token realms may be asked, and where a credential may be sent."""

from __future__ import annotations

import ipaddress
import urllib.parse


def address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    name = urllib.parse.urlsplit(f"//{host}").hostname or ""
    if name == "localhost":
        return ipaddress.ip_address("127.0.0.1")
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


def may_be_plain_http(host: str) -> bool:
    """The hosts flux (go-containerregistry) also tries over plain HTTP when HTTPS fails."""
    ip = address(host)
    return ip is not None and (ip.is_loopback or ip.is_private)


def realm_refused(realm: str, registry: str, registry_scheme: str) -> str:
    """Why flux would not ask this token realm, or "". The rules of go-containerregistry v0.21.8
    (the version flux v2.9.4 builds with), pkg/v1/remote/transport/bearer.go `validateRealmURL`: https
    always; http only when the registry itself answers in plain HTTP; the registry's own host:port
    always; otherwise no IP literal that is loopback, private, link-local or unspecified (the cloud
    metadata address 169.254.169.254 among them)."""
    parts = urllib.parse.urlsplit(realm)
    if parts.scheme not in ("https", "http"):
        return f"realm scheme {parts.scheme!r} is not https"
    if parts.scheme == "http" and registry_scheme != "http":
        return "a plain-HTTP realm for an HTTPS registry"
    if parts.netloc == registry:
        return ""
    try:
        ip = ipaddress.ip_address(parts.hostname or "")
    except ValueError:
        return ""
    if (
        ip.is_loopback
        or ip.is_link_local
        or ip.is_private
        or ip.is_unspecified
        or ip.is_multicast
    ):
        return f"realm host {parts.hostname} is a private or link-local address"
    return ""


def may_carry_credentials(url: str) -> bool:
    """Never a credential in plain HTTP to anything but this machine (flux would send it to a private
    address too: such a read is left to flux, which may)."""
    parts = urllib.parse.urlsplit(url)
    ip = address(parts.netloc)
    return parts.scheme == "https" or (ip is not None and ip.is_loopback)
