"""Which scopes a client may be granted, and how a token's scope follows from a request.

Scopes are OneRoster 1.2 scope URIs (1.2 REST binding, "OAuth2CC" security scheme), carried as
space-separated strings as RFC 6749 §3.3 prescribes.
"""
from __future__ import annotations

from typing import Iterable

from gateway.oneroster.vocabulary import GRADEBOOK_SCOPES, RESOURCES_SCOPES, ROSTERING_SCOPES

# The scopes of the services this gateway serves. A new app gets the rostering scopes; the
# resources and gradebook services are granted only when asked for (reading and writing grades
# is a district's explicit choice for an app).
GRANTABLE_SCOPES: tuple[str, ...] = ROSTERING_SCOPES + RESOURCES_SCOPES + GRADEBOOK_SCOPES
DEFAULT_SCOPES: tuple[str, ...] = ROSTERING_SCOPES


def parse_scope(scope: str | None) -> list[str]:
    """The scope URIs of a space-separated scope string, in order, without repeats."""
    return list(dict.fromkeys((scope or "").split()))


def format_scope(scopes: Iterable[str]) -> str:
    """A space-separated scope string (RFC 6749 §3.3)."""
    return " ".join(dict.fromkeys(scopes))


def token_scope(granted: str, asked: str | None) -> str | None:
    """The scope to issue: what was asked for and granted, or everything granted when nothing was
    asked (RFC 6749 §3.3 lets the server narrow the request); None when the two share nothing."""
    granted_scopes = parse_scope(granted)
    asked_scopes = set(parse_scope(asked))
    if not asked_scopes:
        return format_scope(granted_scopes)
    issued = [scope for scope in granted_scopes if scope in asked_scopes]
    return format_scope(issued) if issued else None
