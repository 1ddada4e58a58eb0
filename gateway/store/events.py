"""The change feed's tables: events, each district's event counter, and the apps' webhooks.

Why one row per changed record per district (never per app): an import changing 10,000 records
in a district with 100 apps writes 10,000 rows, not a million. Which app may see which event is
decided when it is read or delivered, against the app's scope and fields as they are then (the
REST service's own predicates, :mod:`gateway.events.feed`). Only what is about one app alone --
a record entering or leaving *its* scope when its policy or the district's data changes -- is a
row naming that app.

Cursors are a per-district sequence, ``seq``, handed out by :func:`append_events` under the
district's ``event_heads`` row lock, which the writing transaction holds until it commits: the
next writer of the district waits for it and continues after its last ``seq``. Sequence order is
therefore commit order and has no gaps, so a reader that has seen ``seq`` N never later finds
an event N-1 committed behind its back (an autoincrement id would, on PostgreSQL). An import
takes the lock only at its end, once its merge is done, so other writers wait milliseconds.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Sequence

from sqlalchemy import (BigInteger, DateTime, ForeignKey, Index, Integer, LargeBinary, String,
                        Text, func, literal, select, update)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql import Select

from gateway.store.models import Base, utcnow

KINDS = ("created", "updated", "deleted", "entered", "left")
"""What happened to the record: ``created``, ``updated``, ``deleted`` (marked ``tobedeleted``)
by an import or a write to the gradebook, for every app whose scope holds it; ``entered`` or
``left`` one app's scope."""


class Event(Base):
    """One change to one record of a district (``app_id`` None), or one record entering or
    leaving one app's scope (``app_id`` set). Ids only: what the record holds is read from the
    store, through the app's policy, by whoever asks."""

    __tablename__ = "events"
    __table_args__ = (
        # Pruning by age (gateway.events.feed.prune_events).
        Index("ix_events_occurred", "occurred_at"),
        {"sqlite_with_rowid": False},
    )

    district_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    app_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The OneRoster entity: org, academicSession, course, class, user, enrollment, demographics,
    # resource, or a gradebook entity (lineItem, result, category, scoreScale, assessment...).
    entity: Mapped[str] = mapped_column(String(32))
    sourced_id: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[dt.datetime] = mapped_column(DateTime)


class EventHead(Base):
    """A district's last event ``seq``, and the last one pruned (older cursors have expired)."""

    __tablename__ = "event_heads"

    district_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    pruned_seq: Mapped[int] = mapped_column(BigInteger, default=0)


class Webhook(Base):
    """An app's webhook in one district: where its events go, the secret they are signed with
    (sealed under the gateway's secret key), and how far delivery has come."""

    __tablename__ = "webhooks"
    __table_args__ = (Index("ix_webhooks_app", "app_id", "district_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    district_id: Mapped[int] = mapped_column(ForeignKey("districts.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(Text)
    sealed_secret: Mapped[bytes] = mapped_column(LargeBinary)
    # The last seq delivered (acknowledged with a 2xx); the next delivery starts after it.
    cursor: Mapped[int] = mapped_column(BigInteger, default=0)
    # Consecutive failed attempts, and when the next may be made (exponential backoff).
    failures: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_delivered_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    # Until when one delivery run holds the webhook (see gateway.events.webhooks.deliver_webhook).
    lease_until: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


EVENTS = Event.__table__
HEADS = EventHead.__table__
WEBHOOKS = Webhook.__table__


def _insert(conn: Connection):
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


def lock_head(conn: Connection, district_id: int) -> int:
    """Take the district's event counter (held until the transaction ends) and return its seq."""
    conn.execute(_insert(conn)(HEADS).values(district_id=district_id, seq=0, pruned_seq=0)
                 .on_conflict_do_nothing())
    # An UPDATE, not a SELECT: it takes the row lock, waiting for another writer to commit,
    # and then sees that writer's seq (PostgreSQL re-reads the row it waited for).
    return conn.execute(update(HEADS).where(HEADS.c.district_id == district_id)
                        .values(seq=HEADS.c.seq).returning(HEADS.c.seq)).scalar_one()


def append_events(conn: Connection, district_id: int, rows: Select, order_by: str,
                  now: dt.datetime) -> int:
    """Append the events ``rows`` selects -- columns ``app_id``, ``entity``, ``sourced_id``,
    ``kind`` and ``order_by`` (their order) -- to the district's feed, numbered after its last
    seq, in the caller's transaction; returns how many were appended."""
    base = lock_head(conn, district_id)
    source = rows.subquery("new_events")
    numbered = select(
        literal(district_id), literal(base) + func.row_number().over(order_by=source.c[order_by]),
        source.c.app_id, source.c.entity, source.c.sourced_id, source.c.kind, literal(now))
    conn.execute(EVENTS.insert().from_select(
        ["district_id", "seq", "app_id", "entity", "sourced_id", "kind", "occurred_at"],
        numbered))
    # The new head from the rows themselves: a driver's rowcount of INSERT ... SELECT is not
    # reliable everywhere (psycopg may say -1). One probe of the primary key.
    last = conn.execute(select(func.max(EVENTS.c.seq)).where(
        EVENTS.c.district_id == district_id, EVENTS.c.seq > base)).scalar()
    if last is None:
        return 0
    conn.execute(update(HEADS).where(HEADS.c.district_id == district_id).values(seq=last))
    return int(last) - base


CHANGED_DISTRICTS = "gateway.changed_districts"
"""The key, in a session's ``info``, of the districts whose events the session's transaction
appended outside an import (:func:`note_changed`)."""


def note_changed(session: Any, district_id: int) -> None:
    """Mark ``session``'s transaction as having appended events of ``district_id``: once it
    commits, the district's webhooks are delivered (:mod:`gateway.events.trigger`)."""
    session.info.setdefault(CHANGED_DISTRICTS, set()).add(district_id)


def append_changes(conn: Connection, district_id: int,
                   changes: Sequence[tuple[str, str, str]], now: dt.datetime) -> int:
    """Append district-wide events for a few records written one by one (a gradebook write):
    ``changes`` are (entity, sourcedId, kind), numbered in that order after the district's last
    seq, in the caller's transaction; returns how many were appended."""
    if not changes:
        return 0
    base = lock_head(conn, district_id)
    conn.execute(EVENTS.insert(), [
        {"district_id": district_id, "seq": base + number, "app_id": None, "entity": entity,
         "sourced_id": sourced_id, "kind": kind, "occurred_at": now}
        for number, (entity, sourced_id, kind) in enumerate(changes, start=1)])
    conn.execute(update(HEADS).where(HEADS.c.district_id == district_id)
                 .values(seq=base + len(changes)))
    return len(changes)


def head_of(conn: Any, district_id: int) -> tuple[int, int]:
    """The district's last seq and last pruned seq ((0, 0) before its first event)."""
    row = conn.execute(select(HEADS.c.seq, HEADS.c.pruned_seq)
                       .where(HEADS.c.district_id == district_id)).first()
    return (int(row.seq), int(row.pruned_seq)) if row is not None else (0, 0)
