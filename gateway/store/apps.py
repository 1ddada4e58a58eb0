"""Tables for connected apps: the apps, their OAuth clients (one per district they serve) and the
access tokens issued to those clients.

An app is a learning application; an :class:`AppClient` is that app's connection to one district,
carrying the credentials it authenticates with and the scopes the district granted. Connecting the
same app to a second district is a second client row, so each district controls (and can revoke)
its own connection. Secrets and tokens are stored only as hashes.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text, select
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


class AccessToken(Base):
    """A bearer token issued to a client, known only by its SHA-256 hash."""

    __tablename__ = "access_tokens"
    __table_args__ = (Index("ix_access_tokens_app_client_id", "app_client_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Hex SHA-256 of the token: every API request looks its token up by this unique index.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    app_client_id: Mapped[int] = mapped_column(ForeignKey("app_clients.id", ondelete="CASCADE"))
    # The district the token reads. Today it is always its client's district; it is kept on the
    # token so that a client later serving several districts still issues single-district tokens.
    district_id: Mapped[int] = mapped_column(ForeignKey("districts.id", ondelete="CASCADE"))
    scope: Mapped[str] = mapped_column(Text)
    issued_at: Mapped[dt.datetime] = mapped_column(DateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


def live_client_exists(app_id: Any, district_id: Any) -> ColumnElement[bool]:
    """SQL: the app (an id or a column) has a client in the district that is not revoked."""
    return select(AppClient.id).where(AppClient.app_id == app_id,
                                      AppClient.district_id == district_id,
                                      AppClient.revoked_at.is_(None)).exists()
