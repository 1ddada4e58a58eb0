"""Connected apps and their credentials: register, list, revoke, and record the tokens issued to
their clients and LTI tools.

Every function takes the session and flushes; the caller (a request's teardown or a CLI command)
commits once.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Iterable

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from gateway.errors import UsageError
from gateway.oauth import credentials
from gateway.oauth.scopes import DEFAULT_SCOPES, GRANTABLE_SCOPES, format_scope, parse_scope
from gateway.store.apps import TOKEN_LTI, TOKEN_ONEROSTER, AccessToken, App, AppClient
from gateway.store.lti import Tool
from gateway.store.models import District


class UnknownDistrict(UsageError):
    """No district has the given sourcedId."""


class UnknownScope(UsageError):
    """A scope URI is not one this gateway can grant."""


class InvalidAppName(UsageError):
    """An app name must be non-empty and at most 255 characters."""


class UnknownAppOrClient(UsageError):
    """Neither an app id nor a client_id matches."""


@dataclass(frozen=True)
class AppCredentials:
    """What a newly registered app is told once: its ids and its client secret in clear."""

    app_id: int
    client_id: str
    client_secret: str


@dataclass(frozen=True)
class AppConnection:
    """One app connected to one district, as ``gateway apps list`` shows it."""

    app_id: int
    name: str
    district: str
    client_id: str
    scopes: tuple[str, ...]
    created_at: dt.datetime
    revoked_at: dt.datetime | None


@dataclass(frozen=True)
class Revocation:
    """What a revocation changed: the clients newly revoked and how many live tokens went with them."""

    client_ids: tuple[str, ...]
    token_count: int


def _validate_scopes(scopes: Iterable[str] | None) -> list[str]:
    chosen = list(dict.fromkeys(scopes)) if scopes else list(DEFAULT_SCOPES)
    unknown = [scope for scope in chosen if scope not in GRANTABLE_SCOPES]
    if unknown:
        raise UnknownScope(f"unknown scope {', '.join(map(repr, unknown))}; grantable scopes: "
                           + ", ".join(GRANTABLE_SCOPES))
    return chosen


def _find_district(session: Session, sourced_id: str) -> District:
    district = session.execute(
        select(District).where(District.sourced_id == sourced_id)).scalar_one_or_none()
    if district is not None:
        return district
    known = session.execute(select(District.sourced_id).order_by(District.sourced_id)).scalars().all()
    hint = ("known districts: " + ", ".join(known)) if known else "no districts exist yet"
    raise UnknownDistrict(f"unknown district {sourced_id!r}; {hint}")


def register_app(session: Session, *, name: str, district_sourced_id: str,
                 scopes: Iterable[str] | None, now: dt.datetime) -> AppCredentials:
    """Create an app connected to one district, with fresh client credentials.

    ``scopes`` defaults to the rostering scopes. The secret is returned here and never again.
    """
    name = name.strip()
    if not name or len(name) > 255:
        raise InvalidAppName(f"invalid app name {name!r}: give 1 to 255 characters")
    granted = _validate_scopes(scopes)
    district = _find_district(session, district_sourced_id)
    app = App(name=name, created_at=now)
    session.add(app)
    session.flush()
    secret = credentials.generate_client_secret()
    client = AppClient(app_id=app.id, district_id=district.id,
                       client_id=credentials.generate_client_id(),
                       client_secret_hash=credentials.hash_client_secret(secret),
                       scope=format_scope(granted), created_at=now)
    session.add(client)
    session.flush()
    return AppCredentials(app_id=app.id, client_id=client.client_id, client_secret=secret)


def rotate_secret(session: Session, client: AppClient) -> AppCredentials:
    """Give a live client a new secret (the old one stops working; tokens already issued live
    on until they expire or are revoked). The secret is returned here and never again."""
    if client.revoked_at is not None:
        raise UsageError(f"client {client.client_id} is revoked: connect the app again instead")
    secret = credentials.generate_client_secret()
    client.client_secret_hash = credentials.hash_client_secret(secret)
    session.flush()
    return AppCredentials(app_id=client.app_id, client_id=client.client_id, client_secret=secret)


def list_app_connections(session: Session) -> list[AppConnection]:
    """Every app's connection to a district, oldest first, revoked ones included."""
    rows = session.execute(
        select(App.id, App.name, District.sourced_id, AppClient.client_id, AppClient.scope,
               AppClient.created_at, AppClient.revoked_at)
        .join(AppClient, AppClient.app_id == App.id)
        .join(District, District.id == AppClient.district_id)
        .order_by(App.id, AppClient.id))
    return [AppConnection(app_id=app_id, name=name, district=district, client_id=client_id,
                          scopes=tuple(parse_scope(scope)), created_at=created_at,
                          revoked_at=revoked_at)
            for app_id, name, district, client_id, scope, created_at, revoked_at in rows]


def revoke(session: Session, app_or_client_id: str, *, now: dt.datetime) -> Revocation:
    """Revoke a client (by client_id) or every client of an app (by app id), and their tokens.

    Revoking again is harmless: it reports nothing newly revoked.
    """
    clients = session.execute(
        select(AppClient).where(AppClient.client_id == app_or_client_id)).scalars().all()
    if not clients and app_or_client_id.isdigit():
        clients = session.execute(
            select(AppClient).where(AppClient.app_id == int(app_or_client_id))
            .order_by(AppClient.id)).scalars().all()
    if not clients:
        raise UnknownAppOrClient(f"no app id or client_id {app_or_client_id!r}; "
                                 "see `gateway apps list`")
    newly_revoked = [client for client in clients if client.revoked_at is None]
    for client in newly_revoked:
        client.revoked_at = now
    # Only live tokens need revoking; expired ones are refused anyway.
    result = session.execute(
        update(AccessToken)
        .where(AccessToken.app_client_id.in_([client.id for client in clients]),
               AccessToken.revoked_at.is_(None), AccessToken.expires_at > now)
        .values(revoked_at=now))
    session.flush()
    return Revocation(client_ids=tuple(client.client_id for client in newly_revoked),
                      token_count=result.rowcount)


def find_active_client(session: Session, client_id: str) -> AppClient | None:
    """The client with this client_id, unless it does not exist or has been revoked."""
    return session.execute(
        select(AppClient).where(AppClient.client_id == client_id,
                                AppClient.revoked_at.is_(None))).scalar_one_or_none()


def record_token(session: Session, owner: AppClient | Tool, *, access_token: str, scope: str,
                 expires_in: int, now: dt.datetime) -> AccessToken:
    """Store an issued token (its hash only), valid for ``expires_in`` seconds from ``now``: a
    OneRoster token for its client's district, or an LTI service token for a tool."""
    if isinstance(owner, AppClient):
        owned = dict(kind=TOKEN_ONEROSTER, app_client_id=owner.id, district_id=owner.district_id)
    else:
        owned = dict(kind=TOKEN_LTI, tool_id=owner.id)
    token = AccessToken(token_hash=credentials.hash_access_token(access_token), scope=scope,
                        issued_at=now, expires_at=now + dt.timedelta(seconds=expires_in), **owned)
    session.add(token)
    session.flush()
    return token


def delete_app(session: Session, app_id: int) -> str:
    """Delete an app with its clients, their tokens, its policies, its LTI tools with their
    deployments and links (the store's foreign keys cascade); returns its name. The disclosure
    ledger keeps what the app was given: its entries name the app by id, not by reference."""
    app = session.get(App, app_id)
    if app is None:
        raise UnknownAppOrClient(f"no app {app_id}")
    name = app.name
    session.execute(delete(App).where(App.id == app_id))
    session.expunge(app)
    session.flush()
    return name
