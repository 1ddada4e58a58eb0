"""Tables of the admin console: district staff accounts, their sessions, and the audit log of
what they did.

Admin accounts are not roster users: the SIS does not send them and an import never touches them.
Sessions are kept like portal sessions (only the SHA-256 of the cookie's token), so signing out
or disabling an account ends them on every worker.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gateway.store.models import Base


class AdminAccount(Base):
    """A district staff member who may sign in to the console, with one role in one district."""

    __tablename__ = "admin_accounts"
    __table_args__ = (UniqueConstraint("district_id", "email", name="uq_admin_accounts_email"),
                      Index("ix_admin_accounts_email", "email"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    district_id: Mapped[int] = mapped_column(ForeignKey("districts.id", ondelete="CASCADE"))
    # Stored lower-cased: people type their address in any case.
    email: Mapped[str] = mapped_column(String(320))
    # district_admin | tech_lead | help_desk
    role: Mapped[str] = mapped_column(String(20))
    # A tech lead's schools (org sourcedIds); empty for the other roles.
    schools: Mapped[list[str]] = mapped_column(JSON, default=list)
    # None until an invited person sets their password.
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # An invitation's token, as SHA-256; cleared once used.
    invite_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    invite_expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    disabled_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class AdminSession(Base):
    """A signed-in console browser: the cookie carries a random token, the store its SHA-256."""

    __tablename__ = "admin_sessions"
    __table_args__ = (Index("ix_admin_sessions_admin_id", "admin_id"),
                      Index("ix_admin_sessions_expires_at", "expires_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    admin_id: Mapped[int] = mapped_column(ForeignKey("admin_accounts.id", ondelete="CASCADE"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)


class AdminAction(Base):
    """One thing an admin did (or tried to do and was refused), for the district's audit log.

    The actor's address is kept beside the account id so the log still says who after the account
    is deleted."""

    __tablename__ = "admin_actions"
    __table_args__ = (Index("ix_admin_actions_district_at", "district_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    district_id: Mapped[int] = mapped_column(ForeignKey("districts.id", ondelete="CASCADE"))
    admin_id: Mapped[int | None] = mapped_column(
        ForeignKey("admin_accounts.id", ondelete="SET NULL"), nullable=True)
    actor: Mapped[str] = mapped_column(String(320))
    at: Mapped[dt.datetime] = mapped_column(DateTime)
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(Text, default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
