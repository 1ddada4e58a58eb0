"""Tables for signing in: portal sessions and the failed-attempt counters that throttle password
and client-secret guessing.

Both live in the database, not in a worker's memory, because many workers on many hosts serve one
gateway: a sign-out on one must end the session on all, and a guesser spread over all of them must
meet one counter.
"""
from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Sequence

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, case, delete, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from gateway.store.models import Base

if TYPE_CHECKING:
    from gateway.throttle import ThrottleRule


class PortalSession(Base):
    """A signed-in browser: the cookie carries a random token, the store only its SHA-256."""

    __tablename__ = "portal_sessions"
    __table_args__ = (Index("ix_portal_sessions_user_id", "user_id"),
                      Index("ix_portal_sessions_expires_at", "expires_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # A user row deleted takes its sessions with it.
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)


class AuthThrottle(Base):
    """Recent failed attempts against one key (an account, a client address, a client_id)."""

    __tablename__ = "auth_throttles"
    __table_args__ = (Index("ix_auth_throttles_window_started_at", "window_started_at"),)

    # Hex SHA-256 of the key's kind and value: a fixed size whatever was typed, and no usernames
    # or addresses kept in clear.
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    window_started_at: Mapped[dt.datetime] = mapped_column(DateTime)
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class SqlThrottleStore:
    """The :class:`gateway.throttle.ThrottleStore` in the database, in ``session``'s transaction."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def locked_until(self, digests: Sequence[str], now: dt.datetime) -> dt.datetime | None:
        """The latest end of a lockout still running on any of ``digests``, or None."""
        return self.session.execute(
            select(func.max(AuthThrottle.locked_until))
            .where(AuthThrottle.key.in_(digests), AuthThrottle.locked_until > now)).scalar()

    def record_failure(self, digest: str, rule: ThrottleRule, now: dt.datetime) -> None:
        """Count one failure against ``digest``: one upsert, so concurrent failures on several
        workers all count. A window that has run out starts again at this failure."""
        table = AuthThrottle.__table__
        insert = (postgresql.insert if self.session.get_bind().dialect.name == "postgresql"
                  else sqlite.insert)
        lock_end = now + rule.lockout
        stale = table.c.window_started_at <= now - rule.window
        # In ON CONFLICT DO UPDATE the columns are the existing row's (both backends).
        failures = case((stale, 1), else_=table.c.failures + 1)
        statement = insert(table).values(
            key=digest, failures=1, window_started_at=now,
            locked_until=lock_end if rule.max_failures <= 1 else None,
        ).on_conflict_do_update(index_elements=[table.c.key], set_={
            "failures": failures,
            "window_started_at": case((stale, now), else_=table.c.window_started_at),
            "locked_until": case((failures >= rule.max_failures, lock_end),
                                 else_=table.c.locked_until),
        })
        self.session.execute(statement)
        # Keep the table to the keys that still matter: windows run out and lockouts ended.
        self.session.execute(delete(AuthThrottle).where(
            AuthThrottle.window_started_at <= now - rule.window,
            or_(AuthThrottle.locked_until.is_(None), AuthThrottle.locked_until <= now)))

    def clear(self, digests: Sequence[str]) -> None:
        """Forget the failures counted against ``digests``."""
        self.session.execute(delete(AuthThrottle).where(AuthThrottle.key.in_(digests)))
