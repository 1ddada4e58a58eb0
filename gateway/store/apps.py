"""Tables for connected apps: the apps, their OAuth clients (one per district they serve) and the
access tokens issued to an app's clients and to its LTI tools.

An app is a learning application; an :class:`AppClient` is that app's connection to one district,
carrying the credentials it authenticates with and the scopes the district granted. Connecting the
same app to a second district is a second client row, so each district controls (and can revoke)
its own connection. An app's LTI tools are in :mod:`gateway.store.lti`. Secrets and tokens are
stored only as hashes.

Every access token the gateway issues is one :class:`AccessToken` row, whichever token endpoint
issued it; its ``kind`` says which service takes it (``gateway.oauth.bearer`` checks them all).
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Text,
                        select)
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.orm import Mapped, mapped_column

from gateway.store.models import Base, utcnow


class App(Base):
    """A learning application that districts connect to the gateway."""

    __tablename__ = "apps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class AppClient(Base):
    """An app connected to one district: its OAuth 2.0 client credentials and granted scopes."""

    __tablename__ = "app_clients"
    # No uniqueness on (app, district): rotating credentials revokes one client and adds another.
    __table_args__ = (Index("ix_app_clients_app_district", "app_id", "district_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    district_id: Mapped[int] = mapped_column(ForeignKey("districts.id", ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    # "scrypt$n$r$p$salt$hash" (see gateway.oauth.credentials): never the secret itself.
    client_secret_hash: Mapped[str] = mapped_column(String(255))
    # Granted scope URIs, space-separated as in RFC 6749 §3.3.
    scope: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


TOKEN_ONEROSTER = "oneroster"
"""A token ``/oauth/token`` issued to an app's client: it reads one district on the OneRoster
REST service."""
TOKEN_LTI = "lti"
"""A token the LTI token endpoint issued to a tool: it calls the LTI Advantage services (NRPS,
AGS) in the districts the tool is deployed in."""


class AccessToken(Base):
    """A bearer token the gateway issued, known only by its SHA-256 hash: to an app's client
    (kind ``oneroster``, for one district) or to an LTI tool (kind ``lti``)."""

    __tablename__ = "access_tokens"
    __table_args__ = (
        Index("ix_access_tokens_app_client_id", "app_client_id"),
        Index("ix_access_tokens_tool_id", "tool_id"),
        # Each kind has its owner, and only that one: a token is never both or neither.
        CheckConstraint(
            f"(kind = '{TOKEN_ONEROSTER}' AND app_client_id IS NOT NULL AND district_id IS NOT NULL"
            f" AND tool_id IS NULL) OR (kind = '{TOKEN_LTI}' AND tool_id IS NOT NULL"
            " AND app_client_id IS NULL AND district_id IS NULL)",
            name="ck_access_tokens_owner"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Hex SHA-256 of the token: every API request looks its token up by this unique index.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # oneroster | lti: the service that takes the token; any other refuses it as unknown.
    kind: Mapped[str] = mapped_column(String(16))
    app_client_id: Mapped[int | None] = mapped_column(
        ForeignKey("app_clients.id", ondelete="CASCADE"), nullable=True)
    tool_id: Mapped[int | None] = mapped_column(
        ForeignKey("lti_tools.id", ondelete="CASCADE", name="fk_access_tokens_tool_id"),
        nullable=True)
    # The district a OneRoster token reads. Today it is always its client's district; it is kept
    # on the token so that a client later serving several districts still issues single-district
    # tokens. None for an LTI token: each service call names a deployment, which fixes it.
    district_id: Mapped[int | None] = mapped_column(
        ForeignKey("districts.id", ondelete="CASCADE"), nullable=True)
    scope: Mapped[str] = mapped_column(Text)
    issued_at: Mapped[dt.datetime] = mapped_column(DateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


def live_client_exists(app_id: Any, district_id: Any) -> ColumnElement[bool]:
    """SQL: the app (an id or a column) has a client in the district that is not revoked."""
    return select(AppClient.id).where(AppClient.app_id == app_id,
                                      AppClient.district_id == district_id,
                                      AppClient.revoked_at.is_(None)).exists()


def granted_scopes(session: Any, app_id: int, district_id: int) -> frozenset[str]:
    """The scopes granted to the app's live clients in the district (what a token it asks for
    may hold): what its webhooks may carry, as a token's scopes limit its feed."""
    # Split as RFC 6749 §3.3 spells a scope string (gateway.oauth.scopes.parse_scope).
    return frozenset(scope for granted in session.execute(
        select(AppClient.scope).where(AppClient.app_id == app_id,
                                      AppClient.district_id == district_id,
                                      AppClient.revoked_at.is_(None))).scalars()
        for scope in granted.split())
