"""Facts about URLs that more than one part of the gateway checks (LTI tool registration, pulls
from a SIS), no flask: whether a host is this machine, and a URL's origin."""
from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

DEFAULT_PORTS = {"https": 443, "http": 80}
"""The port each scheme a URL may name uses when it names none."""


def is_loopback_host(host: str | None) -> bool:
    """Whether ``host`` (a URL's hostname) is this machine: ``localhost`` or a loopback address;
    plain http is acceptable only there."""
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_origin(url: str) -> str | None:
    """The origin (RFC 6454 §4) of an absolute http(s) URL as ``scheme://host:port`` (scheme and
    host lowercased, the default port written out); None when the URL has none (relative, another
    scheme, no host, a port that is not a number)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError:
        return None
    return f"{scheme}://{parts.hostname}:{port}"
