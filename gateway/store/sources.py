"""The SIS sources a district's rosters are pulled from (``gateway sources``): where the SIS's
OneRoster 1.2 REST service is, the client credentials to reach it (the secret encrypted, see
:mod:`gateway.sis.secrets`), how often to pull, and how the last pull went.

``synced_through`` is the anchor of the next delta: the moment the last *applied* pull started,
by the source's clock. It moves only when a pull's import was applied, so a refused or failed
pull is simply tried again from the same point.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Sequence

from sqlalchemy import (DateTime, ForeignKey, Index, Integer, LargeBinary, String, Text,
                        UniqueConstraint, select, update)
from sqlalchemy.orm import Mapped, Session, mapped_column

from gateway.store.models import Base, District, Role, UserProfile

TOBEDELETED = "tobedeleted"
# Bound parameters per IN list: well inside every backend's limit.
_IDS_PER_QUERY = 500


class SisSource(Base):
    """One district's roster source: a SIS's OneRoster 1.2 REST service, pulled on a schedule."""

    __tablename__ = "sis_sources"
    __table_args__ = (UniqueConstraint("district_sourced_id", "base_url",
                                       name="uq_sis_sources_district_url"),
                      Index("ix_sis_sources_next_due_at", "next_due_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The district's sourcedId, not a foreign key: the district exists only after the first pull.
    district_sourced_id: Mapped[str] = mapped_column(String(255))
    district_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    base_url: Mapped[str] = mapped_column(String(2048))
    token_url: Mapped[str] = mapped_column(String(2048))
    client_id: Mapped[str] = mapped_column(String(255))
    # nonce || AES-256-GCM(secret), bound to the URLs and client_id (gateway.sis.secrets).
    client_secret_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    interval_seconds: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    next_due_at: Mapped[dt.datetime] = mapped_column(DateTime)
    synced_through: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    last_started_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    last_finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    # applied | rejected | failed | unchanged (a delta with nothing new)
    last_outcome: Mapped[str | None] = mapped_column(String(20), nullable=True)
    last_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Import runs are never deleted; the link only says which history row the last pull wrote.
    last_import_run_id: Mapped[int | None] = mapped_column(ForeignKey("import_runs.id"),
                                                           nullable=True)


def list_sources(session: Session) -> Sequence[SisSource]:
    """Every source, oldest first."""
    return session.execute(select(SisSource).order_by(SisSource.id)).scalars().all()


def due_source_ids(session: Session, now: dt.datetime) -> list[int]:
    """The ids of the sources whose next pull is due at ``now``, the longest overdue first."""
    return list(session.execute(select(SisSource.id).where(SisSource.next_due_at <= now)
                                .order_by(SisSource.next_due_at, SisSource.id)).scalars())


def claim_due_source(session: Session, source_id: int, now: dt.datetime,
                     next_due_at: dt.datetime) -> bool:
    """Move a due source's next pull to ``next_due_at`` if it is still due at ``now``; whether
    this caller got it. Two ``sources run --due`` at once (a cron job overlapping a slow pull)
    each claim a source in one conditional UPDATE, so only one of them pulls it."""
    claimed = session.execute(update(SisSource).where(
        SisSource.id == source_id, SisSource.next_due_at <= now).values(next_due_at=next_due_at))
    return claimed.rowcount == 1


def active_user_parts(session: Session, district_sourced_id: str,
                      user_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """The active roles and user profiles the district's ``user_ids`` hold in the store, by
    table name (``roles``, ``user_profiles``), each row by column name."""
    found: dict[str, list[dict[str, Any]]] = {}
    district = select(District.id).where(
        District.sourced_id == district_sourced_id).scalar_subquery()
    for model in (Role, UserProfile):
        table = model.__table__
        rows: list[dict[str, Any]] = []
        for start in range(0, len(user_ids), _IDS_PER_QUERY):
            rows += [dict(row) for row in session.execute(select(table).where(
                table.c.district_id == district,
                table.c.user_sourced_id.in_(user_ids[start:start + _IDS_PER_QUERY]),
                table.c.status != TOBEDELETED)).mappings()]
        found[table.name] = rows
    return found
