"""Ledger at state scale: per-person disclosure spans instead of per-request per-person rows.

Entries now carry a digest of the people they disclosed (their hash covers it); the people wait in
``ledger_pending`` (one row per entry) until folded into ``ledger_spans`` (district, person, app,
field plan -> first, last, count, last entry), each fold sealed in ``ledger_seals``. See
``gateway.sharing.ledger``.

Upgrade: each district's chain is checked in the old form (hashes over the user lists) and rehashed
in the new one (hashes over the people digest), from its pruning checkpoint if any; a chain that
does not verify stops the upgrade (run ``gateway ledger verify`` and keep that ledger: it is
evidence). The old per-person rows become spans, sealed by one seal per district whose
``legacy_hash`` is the old hash of the last entry (the head an operator may have kept), so an old
head still vouches for the new chain. ``ledger_entry_users`` and ``ledger_user_index`` go, and
the head's ``indexed_seq`` with them.

Downgrade: only while the ledger holds no entry and no span: the per-person rows that spans replace
cannot be rebuilt from them, and the disclosure record must not be lost.

Uses the hash functions of ``gateway.sharing.ledger`` (the formats a verify checks).

Revision ID: 0013
Revises: 0011
Create Date: 2026-12-05 06:40:00
"""
from __future__ import annotations

import hashlib
import json

from alembic import op
import sqlalchemy as sa
from sqlalchemy import text


revision = '0013'
down_revision = '0011'
branch_labels = None
depends_on = None

BATCH = 20_000


def _schema() -> str | None:
    return "ledger" if op.get_bind().dialect.name == "sqlite" else None


def _name(table: str) -> str:
    schema = _schema()
    return f"{schema}.{table}" if schema else table


def _create_tables(schema: str | None) -> None:
    op.create_table(
        'ledger_pending',
        sa.Column('district_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column('people', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('district_id', 'seq'),
        schema=schema, sqlite_with_rowid=False)
    op.create_table(
        'ledger_plans',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('entity', sa.String(length=32), nullable=False),
        sa.Column('fields', sa.Text(), nullable=False),
        sa.Column('digest', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('digest'),
        schema=schema)
    op.create_table(
        'ledger_spans',
        sa.Column('district_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('user_sourced_id', sa.String(length=255), nullable=False),
        sa.Column('app_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('plan_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('first_at', sa.DateTime(), nullable=False),
        sa.Column('last_at', sa.DateTime(), nullable=False),
        sa.Column('count', sa.BigInteger(), nullable=False),
        sa.Column('last_seq', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('district_id', 'user_sourced_id', 'app_id', 'plan_id'),
        schema=schema, sqlite_with_rowid=False)
    if op.get_bind().dialect.name == "postgresql":
        # Folds update spans in place: room on each page lets PostgreSQL keep the new version
        # beside the old one (a HOT update, no new index entry), and vacuum reclaims the old.
        op.execute("ALTER TABLE ledger_spans SET (fillfactor = 70)")
    op.create_table(
        'ledger_folds',
        sa.Column('district_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('folded_seq', sa.BigInteger(), nullable=False),
        sa.Column('seal_seq', sa.BigInteger(), nullable=False),
        sa.Column('seal_hash', sa.String(length=64), nullable=False),
        sa.Column('accumulator', sa.Text(), nullable=False),
        sa.Column('people', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('district_id'),
        schema=schema)
    op.create_table(
        'ledger_seals',
        sa.Column('district_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column('from_seq', sa.BigInteger(), nullable=False),
        sa.Column('to_seq', sa.BigInteger(), nullable=False),
        sa.Column('entry_hash', sa.String(length=64), nullable=False),
        sa.Column('people', sa.BigInteger(), nullable=False),
        sa.Column('spans', sa.BigInteger(), nullable=False),
        sa.Column('changes', sa.String(length=64), nullable=False),
        sa.Column('accumulator', sa.Text(), nullable=False),
        sa.Column('sealed_at', sa.DateTime(), nullable=False),
        sa.Column('legacy_hash', sa.String(length=64), nullable=True),
        sa.Column('prev_hash', sa.String(length=64), nullable=False),
        sa.Column('hash', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('district_id', 'seq'),
        schema=schema)


def _entries_table(name: str, schema: str | None, with_digest: bool) -> None:
    columns = [
        sa.Column('district_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column('app_id', sa.Integer(), nullable=False),
        sa.Column('channel', sa.String(length=32), nullable=False),
        sa.Column('endpoint', sa.String(length=255), nullable=False),
        sa.Column('disclosed_at', sa.DateTime(), nullable=False),
        sa.Column('entity', sa.String(length=32), nullable=False),
        sa.Column('fields', sa.JSON(), nullable=False),
        sa.Column('record_count', sa.Integer(), nullable=False)]
    if with_digest:
        columns.append(sa.Column('people_digest', sa.String(length=64), nullable=False))
    columns += [sa.Column('prev_hash', sa.String(length=64), nullable=False),
                sa.Column('hash', sa.String(length=64), nullable=False),
                sa.PrimaryKeyConstraint('district_id', 'seq')]
    op.create_table(name, *columns, schema=schema, sqlite_with_rowid=False)


def _v1_hash(prev: str, row, users: list[str]) -> str:
    """The hash of an entry as revisions 0003 to 0011 wrote it (over its user list)."""
    from gateway.sharing.ledger import canonical_json

    content = {"prev": prev, "district": row.district_id, "app": row.app_id,
               "channel": row.channel, "endpoint": row.endpoint,
               "at": row.disclosed_at.isoformat(timespec="microseconds"), "entity": row.entity,
               "fields": list(row.fields), "records": row.record_count, "users": users}
    return hashlib.sha256(canonical_json(content)).hexdigest()


def _rehash(conn, district_id: int, old, new, users_table) -> tuple | None:
    """Check one district's old chain and copy it, rehashed, into the new entries table;
    returns (first seq, last seq, new last hash, old last hash) or None when it has no entry."""
    from gateway.sharing.ledger import GENESIS, entry_hash, people_digest

    checkpoint = conn.execute(text(
        f"SELECT seq, hash FROM {_name('ledger_checkpoints')} WHERE district_id = :d "
        "ORDER BY seq DESC LIMIT 1"), {"d": district_id}).one_or_none()
    expected = checkpoint.seq + 1 if checkpoint else 1
    prev_old = prev_new = checkpoint.hash if checkpoint else GENESIS
    first = last = None
    while True:
        batch = conn.execute(sa.select(old).where(old.c.district_id == district_id,
                                                  old.c.seq >= expected)
                             .order_by(old.c.seq).limit(BATCH)).all()
        if not batch:
            break
        users: dict[int, list[str]] = {}
        for seq, user in conn.execute(sa.select(users_table.c.seq, users_table.c.user_sourced_id)
                                      .where(users_table.c.district_id == district_id,
                                             users_table.c.seq >= batch[0].seq,
                                             users_table.c.seq <= batch[-1].seq)):
            users.setdefault(seq, []).append(user)
        rows = []
        for row in batch:
            people = sorted(set(users.get(row.seq, ())))
            if (row.seq != expected or row.prev_hash != prev_old
                    or _v1_hash(prev_old, row, people) != row.hash):
                raise RuntimeError(
                    f"the disclosure ledger of district #{district_id} does not verify at entry "
                    f"{row.seq}: run `gateway ledger verify` with the previous version, and keep "
                    "this ledger (it is evidence) before upgrading")
            digest = people_digest(people)
            new_hash = entry_hash(prev_hash=prev_new, district_id=district_id, app_id=row.app_id,
                                  channel=row.channel, endpoint=row.endpoint,
                                  disclosed_at=row.disclosed_at, entity=row.entity,
                                  fields=row.fields, record_count=row.record_count, people=digest)
            rows.append({"district_id": district_id, "seq": row.seq, "app_id": row.app_id,
                         "channel": row.channel, "endpoint": row.endpoint,
                         "disclosed_at": row.disclosed_at, "entity": row.entity,
                         "fields": row.fields, "record_count": row.record_count,
                         "people_digest": digest, "prev_hash": prev_new, "hash": new_hash})
            first = row.seq if first is None else first
            last = (row.seq, new_hash, row.hash)
            prev_old, prev_new, expected = row.hash, new_hash, row.seq + 1
        conn.execute(sa.insert(new), rows)
    head = conn.execute(text(f"SELECT seq FROM {_name('ledger_heads')} WHERE district_id = :d"),
                        {"d": district_id}).scalar()
    if last is None:
        return None
    if head != last[0]:
        raise RuntimeError(f"the disclosure ledger of district #{district_id} ends at entry "
                           f"{last[0]} but its head records entry {head}: run `gateway ledger "
                           "verify` with the previous version before upgrading")
    conn.execute(text(f"UPDATE {_name('ledger_heads')} SET hash = :h WHERE district_id = :d"),
                 {"h": last[1], "d": district_id})
    return first, last[0], last[1], last[2]


def upgrade() -> None:
    from gateway.sharing.ledger import (EMPTY_SET, GENESIS, canonical_json, plan_digest,
                                        seal_hash, set_hash_hex, span_element, span_line)
    from gateway.store.models import utcnow

    conn = op.get_bind()
    sqlite = conn.dialect.name == "sqlite"
    schema = _schema()
    _create_tables(schema)
    if sqlite:
        conn.execute(text("ALTER TABLE ledger.ledger_entries RENAME TO ledger_entries_0012"))
    else:
        conn.execute(text("ALTER TABLE ledger_entries RENAME TO ledger_entries_0012"))
        conn.execute(text("ALTER TABLE ledger_entries_0012 RENAME CONSTRAINT ledger_entries_pkey "
                          "TO ledger_entries_0012_pkey"))
    _entries_table('ledger_entries', schema, with_digest=True)
    meta = sa.MetaData()
    old = sa.Table('ledger_entries_0012', meta, *[
        sa.Column(name, kind) for name, kind in (
            ('district_id', sa.Integer()), ('seq', sa.BigInteger()), ('app_id', sa.Integer()),
            ('channel', sa.String()), ('endpoint', sa.String()), ('disclosed_at', sa.DateTime()),
            ('entity', sa.String()), ('fields', sa.JSON()), ('record_count', sa.Integer()),
            ('prev_hash', sa.String()), ('hash', sa.String()))], schema=schema)
    new = sa.Table('ledger_entries', meta, *[sa.Column(c.name, c.type) for c in old.columns],
                   sa.Column('people_digest', sa.String()), schema=schema)
    users = sa.Table('ledger_entry_users', meta, sa.Column('district_id', sa.Integer()),
                     sa.Column('seq', sa.BigInteger()),
                     sa.Column('user_sourced_id', sa.String()), schema=schema)
    plans = sa.Table('ledger_plans', meta, sa.Column('id', sa.Integer()),
                     sa.Column('entity', sa.String()), sa.Column('fields', sa.Text()),
                     sa.Column('digest', sa.String()), schema=schema)
    districts = [d for d, in conn.execute(text(
        f"SELECT DISTINCT district_id FROM {_name('ledger_heads')} ORDER BY district_id"))]
    sealed = {d: _rehash(conn, d, old, new, users) for d in districts}

    # The field plans of the old entries, and which stored field text is which plan.
    conn.execute(text("CREATE TEMPORARY TABLE ledger_plan_map_0013 (entity VARCHAR(32), "
                      "fields_text TEXT, plan_id INTEGER)"))
    for entity, stored in conn.execute(text(
            f"SELECT DISTINCT entity, CAST(fields AS TEXT) FROM {_name('ledger_entries_0012')}"
            )).all():
        fields = list(json.loads(stored))
        digest = plan_digest(entity, fields)
        plan_id = conn.execute(sa.select(plans.c.id).where(plans.c.digest == digest)).scalar()
        if plan_id is None:
            plan_id = conn.execute(sa.insert(plans).values(
                entity=entity, fields=canonical_json(fields).decode(), digest=digest
            ).returning(plans.c.id)).scalar_one()
        conn.execute(text("INSERT INTO ledger_plan_map_0013 VALUES (:e, :f, :p)"),
                     {"e": entity, "f": stored, "p": plan_id})
    conn.execute(text(
        f"INSERT INTO {_name('ledger_spans')} (district_id, user_sourced_id, app_id, plan_id, "
        "first_at, last_at, count, last_seq) "
        "SELECT u.district_id, u.user_sourced_id, e.app_id, m.plan_id, min(e.disclosed_at), "
        "max(e.disclosed_at), count(*), max(e.seq) "
        f"FROM {_name('ledger_entry_users')} u JOIN {_name('ledger_entries_0012')} e "
        "ON e.district_id = u.district_id AND e.seq = u.seq "
        "JOIN ledger_plan_map_0013 m ON m.entity = e.entity "
        "AND m.fields_text = CAST(e.fields AS TEXT) "
        "GROUP BY u.district_id, u.user_sourced_id, e.app_id, m.plan_id"))
    conn.execute(text("DROP TABLE ledger_plan_map_0013"))

    spans = sa.Table('ledger_spans', meta, *[sa.Column(n, t) for n, t in (
        ('district_id', sa.Integer()), ('user_sourced_id', sa.String()), ('app_id', sa.Integer()),
        ('plan_id', sa.Integer()), ('first_at', sa.DateTime()), ('last_at', sa.DateTime()),
        ('count', sa.BigInteger()), ('last_seq', sa.BigInteger()))], schema=schema)
    now = utcnow()
    for district_id, chain in sealed.items():
        if chain is None:
            conn.execute(text(
                f"INSERT INTO {_name('ledger_folds')} (district_id, folded_seq, seal_seq, "
                "seal_hash, accumulator, people) VALUES (:d, 0, 0, :h, :a, 0)"),
                {"d": district_id, "h": GENESIS, "a": EMPTY_SET})
            continue
        first, last, new_hash, old_hash = chain
        accumulator = people = count = 0
        lines = []
        for row in conn.execute(
                sa.select(spans, plans.c.entity, plans.c.fields)
                .select_from(spans.join(plans, plans.c.id == spans.c.plan_id))
                .where(spans.c.district_id == district_id)):
            line = span_line(district_id, row.user_sourced_id, row.app_id, row.entity,
                             row.fields, row.first_at, row.last_at, row.count, row.last_seq)
            accumulator += span_element(line)
            lines.append(line)
            people += row.count
            count += 1
        lines.sort()
        seal = {"district_id": district_id, "seq": 1, "from_seq": first, "to_seq": last,
                "entry_hash": new_hash, "people": people, "spans": count,
                "changes": hashlib.sha256(b"\n".join(lines)).hexdigest(),
                "accumulator": set_hash_hex(accumulator) if count else EMPTY_SET,
                "sealed_at": now, "legacy_hash": old_hash, "prev_hash": GENESIS}
        seal["hash"] = seal_hash(**seal)
        conn.execute(text(
            f"INSERT INTO {_name('ledger_seals')} (district_id, seq, from_seq, to_seq, "
            "entry_hash, people, spans, changes, accumulator, sealed_at, legacy_hash, prev_hash, "
            "hash) VALUES (:district_id, :seq, :from_seq, :to_seq, :entry_hash, :people, :spans, "
            ":changes, :accumulator, :sealed_at, :legacy_hash, :prev_hash, :hash)"), seal)
        conn.execute(text(
            f"INSERT INTO {_name('ledger_folds')} (district_id, folded_seq, seal_seq, seal_hash, "
            "accumulator, people) VALUES (:d, :f, 1, :h, :a, :p)"),
            {"d": district_id, "f": last, "h": seal["hash"], "a": seal["accumulator"],
             "p": people})
    op.drop_table('ledger_user_index', schema=schema)
    op.drop_table('ledger_entry_users', schema=schema)
    op.drop_table('ledger_entries_0012', schema=schema)
    conn.execute(text(f"ALTER TABLE {_name('ledger_heads')} DROP COLUMN indexed_seq"))


def downgrade() -> None:
    conn = op.get_bind()
    schema = _schema()
    kept = sum(conn.execute(text(f"SELECT count(*) FROM {_name(table)}")).scalar_one()
               for table in ("ledger_entries", "ledger_spans", "ledger_pending"))
    if kept:
        raise RuntimeError("the disclosure ledger holds entries or spans: the per-person rows of "
                           "revision 0011 cannot be rebuilt from spans, and the record must not be "
                           "lost. Keep this version (or restore a backup taken before 0013).")
    for table in ("ledger_seals", "ledger_folds", "ledger_spans", "ledger_plans",
                  "ledger_pending", "ledger_entries"):
        op.drop_table(table, schema=schema)
    _entries_table('ledger_entries', schema, with_digest=False)
    op.create_table(
        'ledger_entry_users',
        sa.Column('district_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column('user_sourced_id', sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint('district_id', 'seq', 'user_sourced_id'),
        schema=schema, sqlite_with_rowid=False)
    op.create_table(
        'ledger_user_index',
        sa.Column('district_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('user_sourced_id', sa.String(length=255), nullable=False),
        sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint('district_id', 'user_sourced_id', 'seq'),
        schema=schema, sqlite_with_rowid=False)
    conn.execute(text(f"ALTER TABLE {_name('ledger_heads')} ADD COLUMN indexed_seq BIGINT "
                      "NOT NULL DEFAULT 0"))
