"""Tables for district sharing: one policy per (app, district), and the disclosure ledger.

The ledger is append-only and hash-chained per district (see :mod:`gateway.sharing.ledger`):

- ``ledger_entries``: one row per response that carried records about people, keyed by
  ``(district_id, seq)``; ``seq`` is the entry's position in its district's chain.
- ``ledger_entry_users``: which users' records an entry disclosed, one row per (entry, user). Its
  primary key ``(district_id, seq, user_sourced_id)`` keeps an entry's users together (the order
  ``verify`` reads them in); the index ``(district_id, user_sourced_id, seq)`` answers "which
  disclosures concern this student" with one range scan, however large the ledger.
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

from sqlalchemy import (JSON, BigInteger, Date, DateTime, ForeignKey, Index, Integer, String,
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
    # Entries up to here have their users in ledger_user_index; later ones are read from
    # ledger_entry_users directly (a short tail, see gateway.sharing.ledger).
    indexed_seq: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class LedgerEntry(Base):
    """One disclosure: a response that carried records about people to an app."""

    __tablename__ = "ledger_entries"
    __table_args__ = {"sqlite_with_rowid": False}

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
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class LedgerEntryUser(Base):
    """A user whose record a ledger entry disclosed (stored sourcedId, never the pseudonym).

    In entry order only, so that an append writes a few adjacent pages; the lookup by user is
    :class:`LedgerUserIndex`.
    """

    __tablename__ = "ledger_entry_users"
    __table_args__ = {"sqlite_with_rowid": False}

    district_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    user_sourced_id: Mapped[str] = mapped_column(String(255), primary_key=True)


class LedgerUserIndex(Base):
    """The entries that disclosed each user, by user: a copy of ``ledger_entry_users`` in the
    other order, filled in batches (up to the head's ``indexed_seq``)."""

    __tablename__ = "ledger_user_index"
    __table_args__ = {"sqlite_with_rowid": False}

    district_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    user_sourced_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)


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
