"""The resource side: turn a presented bearer token into an :class:`AccessGrant`, and check scopes.

Failures are OneRoster errors (401 unauthorisedrequest, 403 forbidden) carrying the RFC 6750 §3
``WWW-Authenticate`` challenge, so the REST service answers them with the binding's error body.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Iterable

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from gateway.errors import Forbidden, Unauthorized
from gateway.oauth.credentials import hash_access_token
from gateway.oauth.scopes import parse_scope
from gateway.sharing.contract import contract_refusal
from gateway.store.apps import AccessToken, AppClient
from gateway.store.sharing import SharingPolicy

REALM = "oneroster"


@dataclass(frozen=True)
class AccessGrant:
    """What a valid token lets its bearer do: read one district's data within some scopes."""

    district_id: int
    app_id: int
    client_id: str
    scopes: frozenset[str]
    # (row id, revision, last change) of the district's sharing policy for the app, None if it
    # has none: lets the sharing layer reuse a parsed policy without reading the document on
    # every request. The time guards against a deleted row's id being reused (SQLite may).
    policy_version: tuple[int, int, str] | None = None


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (RFC 6750 §2.1), else None."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    # The scheme is case-insensitive (RFC 7235 §2.1); other schemes count as no token at all.
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def _invalid_token(description: str) -> Unauthorized:
    return Unauthorized(description, headers={
        "WWW-Authenticate": f'Bearer realm="{REALM}", error="invalid_token"'})


_TOKENS, _CLIENTS, _POLICIES = AccessToken.__table__, AppClient.__table__, SharingPolicy.__table__
# Built once (Core, bound parameter): every API request runs it, and building or running an ORM
# query costs more than the lookup itself.
_GRANT_OF_TOKEN = (
    select(_TOKENS.c.district_id, _TOKENS.c.scope, _TOKENS.c.expires_at, _TOKENS.c.revoked_at,
           _CLIENTS.c.app_id, _CLIENTS.c.client_id,
           _CLIENTS.c.revoked_at.label("client_revoked_at"), _POLICIES.c.contract_start,
           _POLICIES.c.contract_end, _POLICIES.c.id.label("policy_id"),
           _POLICIES.c.revision.label("policy_revision"),
           _POLICIES.c.updated_at.label("policy_updated_at"))
    .select_from(_TOKENS)
    .join(_CLIENTS, _CLIENTS.c.id == _TOKENS.c.app_client_id)
    .outerjoin(_POLICIES, (_POLICIES.c.app_id == _CLIENTS.c.app_id)
               & (_POLICIES.c.district_id == _TOKENS.c.district_id))
    .where(_TOKENS.c.token_hash == bindparam("token_hash")))


def authenticate_bearer(session: Session, token: str | None, now: dt.datetime) -> AccessGrant:
    """The grant of a live token; :class:`Unauthorized` if it is missing, unknown, expired or
    revoked, or if ``now`` lies outside the contract window of the district's sharing policy for
    the app (a token issued inside the window dies with it).

    A missing token gets a bare challenge, a bad one ``error="invalid_token"`` (RFC 6750 §3.1).
    """
    if not token:
        raise Unauthorized("An access token is required: send Authorization: Bearer <token>.",
                           headers={"WWW-Authenticate": f'Bearer realm="{REALM}"'})
    row = session.connection().execute(_GRANT_OF_TOKEN,
                                       {"token_hash": hash_access_token(token)}).one_or_none()
    if row is None:
        raise _invalid_token("The access token is not recognised.")
    # A client's revocation also revokes its tokens; checking the client too keeps that true even
    # for a token written concurrently with the revocation.
    if row.revoked_at is not None or row.client_revoked_at is not None:
        raise _invalid_token("The access token has been revoked.")
    if row.expires_at <= now:
        raise _invalid_token("The access token has expired.")
    refusal = contract_refusal(row.contract_start, row.contract_end, now.date())
    if refusal is not None:
        raise _invalid_token(refusal)
    version = None if row.policy_id is None else (
        row.policy_id, row.policy_revision, row.policy_updated_at.isoformat())
    return AccessGrant(district_id=row.district_id, app_id=row.app_id, client_id=row.client_id,
                       scopes=frozenset(parse_scope(row.scope)), policy_version=version)


def require_scopes(grant: AccessGrant, any_of: Iterable[str]) -> None:
    """Pass if the grant holds at least one of ``any_of`` (any one suffices, as the binding lists
    alternatives per operation); else :class:`Forbidden` with ``error="insufficient_scope"``."""
    required = sorted(set(any_of))
    if not required:
        # Fail closed: an operation whose scope list came out empty is a bug, not a public path.
        raise ValueError("require_scopes needs at least one scope")
    if grant.scopes.intersection(required):
        return
    # Sorted so that callers passing a set still get a stable message and challenge.
    listed = " ".join(required)
    raise Forbidden(f"This operation requires one of these scopes: {listed}",
                    headers={"WWW-Authenticate": f'Bearer realm="{REALM}", '
                                                 f'error="insufficient_scope", scope="{listed}"'})
