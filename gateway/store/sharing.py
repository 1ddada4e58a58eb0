"""Tables for district sharing: one policy per (app, district), and the disclosure ledger.

The ledger is append-only and hash-chained per district (see :mod:`gateway.sharing.ledger`):

- ``ledger_entries``: one row per response that carried records about people, keyed by
  ``(district_id, seq)``; ``seq`` is the entry's position in its district's chain. Its hash covers
  a digest of the people it disclosed, not one row per person.
- ``ledger_pending``: the people of the entries not yet folded, one row per entry.
- ``ledger_spans``: per (district, person, app, field plan) the first and last time, the count and
  the last entry: updated in place by folds, so the ledger grows with people x apps x plans, not
  with requests. ``ledger_plans`` names the field plans.
- ``ledger_seals``: one per fold, chained; ``ledger_folds`` is each district's fold position and
  seal head (with the set hash of its spans), from which ``verify`` checks the spans.
- ``ledger_heads``: the newest ``seq`` and hash of each district's chain. Appending locks this row
  (``SELECT ... FOR UPDATE``), which serializes a district's appends so the chain never forks, and
  ``verify`` compares it with the last entry, so removing entries at the end is detected too.
- ``ledger_checkpoints``: what pruning removed: the last pruned ``seq`` and its hash, from which
  the remaining chain still verifies.

Ledger rows carry no foreign keys: the record of a disclosure must outlive the app or district it
names. On SQLite the two big ledger tables are ``WITHOUT ROWID`` (clustered on their primary key).
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (JSON, BigInteger, Date, DateTime, ForeignKey, Index, Integer, String, Text,
                        UniqueConstraint)
from sqlalchemy.orm import Mapped, mapped_column

from gateway.store.models import Base, utcnow


class SharingPolicy(Base):
    """The sharing policy of one app for one district (the document as the district wrote it).

    The contract window is also kept in columns so that token issuance and token checks can
    compare dates in SQL without reading the document.
    """

    __tablename__ = "sharing_policies"
    __table_args__ = (UniqueConstraint("app_id", "district_id", name="uq_sharing_policies_app_district"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    district_id: Mapped[int] = mapped_column(ForeignKey("districts.id", ondelete="CASCADE"))
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    contract_start: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    contract_end: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    # Bumped by every replacement, so caches of compiled policies can key on (id, revision).
    revision: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class LedgerHead(Base):
    """The end of one district's disclosure chain: its last ``seq`` and that entry's hash."""

    __tablename__ = "ledger_heads"

    district_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class LedgerEntry(Base):
    """One disclosure: a response that carried records about people to an app."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        # The console's ledger search: by app and time, or by time (gateway.sharing.ledger).
        Index("ix_ledger_entries_app_time", "district_id", "app_id", "disclosed_at"),
        Index("ix_ledger_entries_time", "district_id", "disclosed_at"),
        {"sqlite_with_rowid": False},
    )

    district_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    app_id: Mapped[int] = mapped_column(Integer)
    # rest | csv | lti | nrps ...
    channel: Mapped[str] = mapped_column(String(32))
    endpoint: Mapped[str] = mapped_column(String(255))
    disclosed_at: Mapped[dt.datetime] = mapped_column(DateTime)
    entity: Mapped[str] = mapped_column(String(32))
    # The top-level fields that left, as sent: "givenName", "familyName:initial", "sourcedId:pseudonym".
    fields: Mapped[list[str]] = mapped_column(JSON)
    record_count: Mapped[int] = mapped_column(Integer)
    # SHA-256 of the canonical JSON of the sorted stored sourcedIds of the people disclosed: the
    # entry's hash covers this digest, the people themselves wait in ledger_pending until folded.
    people_digest: Mapped[str] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class LedgerPending(Base):
    """The people of an entry not folded into spans yet: one row per entry (never per person),
    the stored sourcedIds as a JSON array; the fold deletes it."""

    __tablename__ = "ledger_pending"
    __table_args__ = {"sqlite_with_rowid": False}

    district_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    people: Mapped[str] = mapped_column(Text)


class LedgerPlan(Base):
    """A field plan: an entity and the exact fields that left (as an entry records them)."""

    __tablename__ = "ledger_plans"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entity: Mapped[str] = mapped_column(String(32))
    fields: Mapped[str] = mapped_column(Text)  # canonical JSON array
    # SHA-256 of the canonical JSON [entity, fields]: one row per plan, whoever folds first.
    digest: Mapped[str] = mapped_column(String(64), unique=True)


class LedgerSpan(Base):
    """What one app received about one person under one field plan: first and last time, how
    many entries, and the last of them. Updated in place by each fold; clustered on the person."""

    __tablename__ = "ledger_spans"
    __table_args__ = {"sqlite_with_rowid": False}

    district_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    user_sourced_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    app_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    plan_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    first_at: Mapped[dt.datetime] = mapped_column(DateTime)
    last_at: Mapped[dt.datetime] = mapped_column(DateTime)
    count: Mapped[int] = mapped_column(BigInteger)
    last_seq: Mapped[int] = mapped_column(BigInteger)


class LedgerFold(Base):
    """How far one district's entries are folded into spans, and the head of its seal chain:
    the last seal's seq and hash, the set hash of all its spans and how many person-disclosures
    they count. Folding locks this row (never the chain's head), so appends go on meanwhile."""

    __tablename__ = "ledger_folds"

    district_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    folded_seq: Mapped[int] = mapped_column(BigInteger)
    seal_seq: Mapped[int] = mapped_column(BigInteger)
    seal_hash: Mapped[str] = mapped_column(String(64))
    accumulator: Mapped[str] = mapped_column(Text)
    people: Mapped[int] = mapped_column(BigInteger)


class LedgerSeal(Base):
    """One fold, sealed: the entries it folded (``from_seq`` to ``to_seq``, and the hash of entry
    ``to_seq``), the person-disclosures they named, the spans it changed (how many, and a digest of
    their new values), the set hash of all the district's spans afterwards; chained like entries."""

    __tablename__ = "ledger_seals"

    district_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    from_seq: Mapped[int] = mapped_column(BigInteger)
    to_seq: Mapped[int] = mapped_column(BigInteger)
    entry_hash: Mapped[str] = mapped_column(String(64))
    people: Mapped[int] = mapped_column(BigInteger)
    spans: Mapped[int] = mapped_column(BigInteger)
    changes: Mapped[str] = mapped_column(String(64))
    accumulator: Mapped[str] = mapped_column(Text)
    sealed_at: Mapped[dt.datetime] = mapped_column(DateTime)
    # Set only by the seal of migration 0013: entry to_seq's hash before the chain was rehashed
    # (the head an operator may have kept), which that migration checked.
    legacy_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class LedgerCheckpoint(Base):
    """A pruning run: entries up to ``seq`` were removed; ``hash`` was the hash of entry ``seq``."""

    __tablename__ = "ledger_checkpoints"

    district_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(String(64))
    pruned_at: Mapped[dt.datetime] = mapped_column(DateTime)
    # How many entries this run removed, and the cutoff it was asked for.
    entry_count: Mapped[int] = mapped_column(BigInteger)
    cutoff: Mapped[dt.datetime] = mapped_column(DateTime)


class ScopeSnapshot(Base):
    """A policy's row scope, materialized for one revision of the policy and one data version of
    its district (see :mod:`gateway.sharing.snapshots`): which rows are in ``scope_members``."""

    __tablename__ = "scope_snapshots"
    __table_args__ = (UniqueConstraint("policy_id", "policy_revision", "data_version",
                                       name="uq_scope_snapshots_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    policy_id: Mapped[int] = mapped_column(ForeignKey("sharing_policies.id", ondelete="CASCADE"))
    policy_revision: Mapped[int] = mapped_column(Integer)
    district_id: Mapped[int] = mapped_column(Integer)
    data_version: Mapped[int] = mapped_column(Integer)
    built_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class ScopeMember(Base):
    """One row in a snapshot's scope: ``kind`` is ``c`` (an in-scope class), ``u`` (a visible
    user) or ``s`` (a visible student); ``row_id`` is the row's primary key in its table.

    Clustered on ``(snapshot_id, kind, row_id)``, so a page of visible users in id order is one
    range of this table; ``(snapshot_id, kind, sourced_id)`` answers "is this id in scope".
    """

    __tablename__ = "scope_members"
    __table_args__ = (Index("ix_scope_members_sourced_id", "snapshot_id", "kind", "sourced_id"),
                      {"sqlite_with_rowid": False})

    snapshot_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(1), primary_key=True)
    row_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    sourced_id: Mapped[str] = mapped_column(String(255))
