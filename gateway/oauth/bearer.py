"""The resource side, one check for every service: turn a presented bearer token into an
:class:`AccessGrant`, and check scopes (RFC 6750).

The OneRoster REST service and the LTI services (NRPS, AGS) take tokens of their own kind from
the one token table (:class:`gateway.store.apps.AccessToken`); a token of another kind is as
unknown to them as a made-up one. Each service is a :class:`BearerRealm`: the realm its RFC 6750
§3 challenges name, the kind of token it takes, and the errors it answers with, which carry the
challenge and know their status and body (OneRoster's ``imsx_StatusInfo`` for REST, RFC 6749
§5.2-shaped JSON for the LTI services).
"""
from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from gateway.caching import LRUCache
from gateway.errors import Forbidden, GatewayError, Unauthorized
from gateway.oauth.credentials import hash_access_token
from gateway.oauth.scopes import parse_scope
from gateway.sharing.contract import contract_refusal
from gateway.store.apps import TOKEN_ONEROSTER, AccessToken, AppClient
from gateway.store.lti import TOOL_APPROVED, Tool
from gateway.store.sharing import SharingPolicy

BearerError = Callable[..., GatewayError]
"""An error class taking ``(description, headers=...)``."""


@dataclass(frozen=True)
class BearerRealm:
    """A service that takes bearer tokens: its RFC 6750 §3 realm, the kind of token it takes,
    what it says when none is sent, and its 401 and 403 errors."""

    name: str
    token_kind: str
    missing: str
    unauthorized: BearerError
    forbidden: BearerError

    def challenge(self, error: str | None = None, scope: str | None = None) -> dict[str, str]:
        """The ``WWW-Authenticate`` header of a refusal (RFC 6750 §3)."""
        value = f'Bearer realm="{self.name}"'
        if error:
            value += f', error="{error}"'
        if scope:
            value += f', scope="{scope}"'
        return {"WWW-Authenticate": value}

    def invalid_token(self, description: str) -> GatewayError:
        """401 ``invalid_token``: the token is unknown, revoked, expired or out of its contract
        (RFC 6750 §3.1)."""
        return self.unauthorized(description, headers=self.challenge("invalid_token"))


ONEROSTER = BearerRealm(
    name="oneroster", token_kind=TOKEN_ONEROSTER,
    missing="An access token is required: send Authorization: Bearer <token>.",
    unauthorized=Unauthorized, forbidden=Forbidden)
"""The OneRoster REST service: tokens from ``/oauth/token``, OneRoster error bodies."""


@dataclass(frozen=True)
class AccessGrant:
    """What a valid token lets its bearer do: read one district's data within some scopes (a
    OneRoster token), or call the LTI services as one tool (an LTI token)."""

    district_id: int | None
    app_id: int
    client_id: str
    scopes: frozenset[str]
    # (row id, revision, last change) of the district's sharing policy for the app, None if it
    # has none: lets the sharing layer reuse a parsed policy without reading the document on
    # every request. The time guards against a deleted row's id being reused (SQLite may).
    policy_version: tuple[int, int, str] | None = None
    # The tool an LTI token was issued to.
    tool_id: int | None = None


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (RFC 6750 §2.1), else None."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    # The scheme is case-insensitive (RFC 7235 §2.1); other schemes count as no token at all.
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


_TOKENS, _CLIENTS, _TOOLS = AccessToken.__table__, AppClient.__table__, Tool.__table__
_POLICIES = SharingPolicy.__table__
# Built once (Core, bound parameters): every API request runs it, and building or running an ORM
# query costs more than the lookup itself. A token has a client or a tool, never both.
_GRANT_OF_TOKEN = (
    select(_TOKENS.c.district_id, _TOKENS.c.scope, _TOKENS.c.expires_at, _TOKENS.c.revoked_at,
           _TOKENS.c.tool_id, func.coalesce(_CLIENTS.c.app_id, _TOOLS.c.app_id).label("app_id"),
           func.coalesce(_CLIENTS.c.client_id, _TOOLS.c.client_id).label("client_id"),
           _CLIENTS.c.revoked_at.label("client_revoked_at"), _TOOLS.c.status.label("tool_status"),
           _POLICIES.c.contract_start, _POLICIES.c.contract_end,
           _POLICIES.c.id.label("policy_id"), _POLICIES.c.revision.label("policy_revision"),
           _POLICIES.c.updated_at.label("policy_updated_at"))
    .select_from(_TOKENS)
    .outerjoin(_CLIENTS, _CLIENTS.c.id == _TOKENS.c.app_client_id)
    .outerjoin(_TOOLS, _TOOLS.c.id == _TOKENS.c.tool_id)
    .outerjoin(_POLICIES, (_POLICIES.c.app_id == _CLIENTS.c.app_id)
               & (_POLICIES.c.district_id == _TOKENS.c.district_id))
    .where(_TOKENS.c.token_hash == bindparam("token_hash"),
           _TOKENS.c.kind == bindparam("kind")))


class GrantCache:
    """Grants of tokens checked in the last ``recheck_seconds``, so that an app's requests in
    a burst do not each look their token up. Revocation (of the token or its client), a tool's
    suspension, a new policy version and a contract's end therefore take effect within
    ``recheck_seconds`` (the README states the bound); expiry and the contract window are still
    checked against every request's time. Bounded, thread-safe; 0 seconds disables it."""

    def __init__(self, recheck_seconds: float, size: int = 10_000,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.recheck_seconds = recheck_seconds
        self.monotonic = monotonic
        self._grants = LRUCache(size)

    def get(self, token: str, kind: str, now: dt.datetime) -> AccessGrant | None:
        """The grant remembered for ``token`` if it was checked recently enough and is still
        within its lifetime and its contract window at ``now``; else None."""
        if self.recheck_seconds <= 0:
            return None
        found = self._grants.get((token, kind))
        if found is None:
            return None
        grant, checked_at, expires_at, contract_start, contract_end = found
        if (self.monotonic() - checked_at > self.recheck_seconds or expires_at <= now
                or contract_refusal(contract_start, contract_end, now.date()) is not None):
            return None
        return grant

    def put(self, token: str, kind: str, grant: AccessGrant, row: Any) -> None:
        """Remember the grant just checked from its token ``row``."""
        if self.recheck_seconds > 0:
            self._grants.put((token, kind), (grant, self.monotonic(), row.expires_at,
                                             row.contract_start, row.contract_end))


def authenticate_bearer(session: Session, token: str | None, now: dt.datetime,
                        realm: BearerRealm = ONEROSTER,
                        cache: GrantCache | None = None) -> AccessGrant:
    """The grant of a live token of ``realm``'s kind; ``realm.unauthorized`` if it is missing,
    unknown (or of another kind, or its tool is no longer approved), expired or revoked (it or
    its client), or if ``now`` lies outside the contract window of the district's sharing policy
    for the app (a OneRoster token issued inside the window dies with it; an LTI token is
    checked against each district as its calls name one).

    A missing token gets a bare challenge, a bad one ``error="invalid_token"`` (RFC 6750 §3.1).
    """
    if not token:
        raise realm.unauthorized(realm.missing, headers=realm.challenge())
    if cache is not None:
        remembered = cache.get(token, realm.token_kind, now)
        if remembered is not None:
            return remembered
    row = session.connection().execute(_GRANT_OF_TOKEN, {
        "token_hash": hash_access_token(token), "kind": realm.token_kind}).one_or_none()
    if row is None or (row.tool_id is not None and row.tool_status != TOOL_APPROVED):
        raise realm.invalid_token("The access token is not recognised.")
    # A client's revocation also revokes its tokens; checking the client too keeps that true even
    # for a token written concurrently with the revocation.
    if row.revoked_at is not None or row.client_revoked_at is not None:
        raise realm.invalid_token("The access token has been revoked.")
    if row.expires_at <= now:
        raise realm.invalid_token("The access token has expired.")
    refusal = contract_refusal(row.contract_start, row.contract_end, now.date())
    if refusal is not None:
        raise realm.invalid_token(refusal)
    version = None if row.policy_id is None else (
        row.policy_id, row.policy_revision, row.policy_updated_at.isoformat())
    grant = AccessGrant(district_id=row.district_id, app_id=row.app_id, client_id=row.client_id,
                        scopes=frozenset(parse_scope(row.scope)), policy_version=version,
                        tool_id=row.tool_id)
    if cache is not None:
        cache.put(token, realm.token_kind, grant, row)
    return grant


def require_scopes(grant: AccessGrant, any_of: Iterable[str],
                   realm: BearerRealm = ONEROSTER) -> None:
    """Pass if the grant holds at least one of ``any_of`` (any one suffices, as the bindings list
    alternatives per operation); else ``realm.forbidden`` with ``error="insufficient_scope"``."""
    required = sorted(set(any_of))
    if not required:
        # Fail closed: an operation whose scope list came out empty is a bug, not a public path.
        raise ValueError("require_scopes needs at least one scope")
    if grant.scopes.intersection(required):
        return
    # Sorted so that callers passing a set still get a stable message and challenge.
    listed = " ".join(required)
    raise realm.forbidden(f"This operation requires one of these scopes: {listed}",
                          headers=realm.challenge("insufficient_scope", listed))
