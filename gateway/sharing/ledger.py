"""The disclosure ledger: an append-only, hash-chained record of what left for which app, and
per-person disclosure spans that answer "who received this child's data, which fields, when".

Every response that carries records about people (users, enrollments, demographics) appends one
entry: the app, district, channel (``rest``, ``csv``, ``lti``...), endpoint, time, entity, the
top-level fields that left as sent (``familyName:initial``, ``sourcedId:pseudonym``), how many
records, and a digest of which people's records (the SHA-256 of the canonical JSON of their sorted
stored sourcedIds). The people themselves wait beside the entry, in one ``ledger_pending`` row
(never one row per person), until a fold moves them into spans: per (person, app, field plan) the
first and last time, the count and the last entry, updated in place. The ledger thus grows with
people x apps x field plans, and by one entry row per response, not by a hundred rows per page.
This answers the FERPA record of disclosures (34 CFR §99.32) and parents' "who received my child's
data" requests: :func:`student_disclosures` reads one person's spans (a primary-key range) and
the pending entries naming them, in one statement.

Tamper evidence: each district has its own chain. An entry's hash is the SHA-256 of the canonical
JSON (sorted keys, no spaces, UTF-8) of its content (the people digest included) and the previous
entry's hash, so :func:`verify_ledger` detects an edited entry, a removed or inserted one, a
reordering, and pending people that no longer match their entry's digest. Each fold appends a
seal, chained in turn: the entries it folded (and the hash of the last, which anchors the seal in
the entry chain), the people it counted, a digest of the spans it changed, and the set hash of all
the district's spans afterwards (a sum of SHAKE-256 values modulo 2**2048, updated by the fold as
it replaces a span: no need to rehash the others). Verify recomputes that set hash from the spans,
so an edited, added or removed span is detected, and checks the seals against each other, the
entries and the fold head (``ledger_folds``), which like the chain's head is kept apart: print
both (``gateway ledger verify``) and keep them elsewhere to detect even a rewrite of everything.

Folding (:func:`fold_ledger`) runs in whichever transaction calls it: the appender whose entry's
seq is a multiple of :data:`FOLD_EVERY`, and ``gateway ledger fold``. It locks the district's fold
row (never the chain's head), skipping the fold when an appender finds another fold running, so
appends go on while ``gateway ledger fold`` works and a district has one folder at a time in any
number of processes.

Retention: :func:`prune_ledger` folds, then removes a prefix of the chain and records a checkpoint
(the last removed entry's seq and hash), from which the rest still verifies. Spans and seals stay.

Appending locks the district's head row (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite has one
writer at a time anyway), so concurrent requests never fork the chain. It runs in the caller's
session and transaction: a request that fails records nothing, and nothing leaves unrecorded.
On SQLite the ledger's tables are in a file of their own, attached to every connection (see
:func:`gateway.store.ledger_database_path`): appends take that file's write lock, never the
store's, so apps' reads are recorded while an import holds the store.
"""
from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import functools
import hashlib
import itertools
import tempfile
from typing import Any, Callable, Iterable, Iterator, Sequence

import orjson
from sqlalchemy import (Dialect, Text, cast, delete, func, insert, literal,
                        select, union_all, update)
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.orm import Session

from gateway.metrics import count_ledger_append
from gateway.store import LedgerFile
from gateway.store.apps import App
from gateway.store.models import District, User, utcnow
from gateway.store.sharing import (LedgerCheckpoint, LedgerEntry, LedgerFold, LedgerHead,
                                   LedgerPending, LedgerPlan, LedgerSeal, LedgerSpan)

GENESIS = "0" * 64
"""The previous hash of a chain's first entry (and of a district's first seal)."""

_ENTRIES = LedgerEntry.__table__
_PENDING = LedgerPending.__table__
_PLANS = LedgerPlan.__table__
_SPANS = LedgerSpan.__table__
_FOLDS = LedgerFold.__table__
_SEALS = LedgerSeal.__table__
_HEADS = LedgerHead.__table__
_CHECKPOINTS = LedgerCheckpoint.__table__
# Rows per batch when verifying: bounded memory on ledgers of any size.
VERIFY_BATCH = 20_000
# How many problems a verification reports in full (a damaged ledger can have millions).
MAX_PROBLEMS = 100
FOLD_EVERY = 256
"""The appender of every entry whose seq is a multiple of this folds the district's pending
entries (unless another fold is running): a fold reads and rewrites each span it touches once
for all the entries it folds, so the bigger the batch, the fewer span writes per entry; the
pending table, which lookups read whole, stays a few hundred rows."""
FOLD_MAX = 4096
"""Entries one fold takes at most (a backlog is folded by several)."""
ACCUMULATOR_BITS = 2048
_MODULUS = 1 << ACCUMULATOR_BITS
EMPTY_SET = "0" * (ACCUMULATOR_BITS // 4)
"""The set hash of no spans."""


def canonical_json(value: Any) -> bytes:
    """The canonical JSON of ``value``: sorted keys, no whitespace, UTF-8 (orjson's output, which
    for the strings, integers and lists of an entry is ``json.dumps(value, sort_keys=True,
    separators=(",", ":"), ensure_ascii=False)``)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def people_digest(users: Iterable[str]) -> str:
    """The digest of the people an entry disclosed: SHA-256 (hex) of the canonical JSON of their
    sorted, distinct stored sourcedIds (exactly the text ``ledger_pending`` keeps)."""
    return hashlib.sha256(canonical_json(sorted(set(users)))).hexdigest()


def entry_hash(*, prev_hash: str, district_id: int, app_id: int, channel: str, endpoint: str,
               disclosed_at: dt.datetime, entity: str, fields: Sequence[str], record_count: int,
               users: Iterable[str] | None = None, people: str | None = None) -> str:
    """The hash of a ledger entry: SHA-256 (hex) of the canonical JSON of its content, where the
    people are their digest (``people``, or computed from ``users``)."""
    return _content_hash(prev_hash=prev_hash, district_id=district_id, app_id=app_id,
                         channel=channel, endpoint=endpoint, disclosed_at=disclosed_at,
                         entity=entity, fields=fields, record_count=record_count,
                         people=people if people is not None else people_digest(users or ()))


def _content_hash(*, prev_hash: str, district_id: int, app_id: int, channel: str, endpoint: str,
                  disclosed_at: dt.datetime, entity: str, fields: Sequence[str],
                  record_count: int, people: str) -> str:
    content = {"prev": prev_hash, "district": district_id, "app": app_id, "channel": channel,
               "endpoint": endpoint, "at": disclosed_at.isoformat(timespec="microseconds"),
               "entity": entity, "fields": list(fields), "records": record_count,
               "people": people}
    return hashlib.sha256(canonical_json(content)).hexdigest()


def plan_digest(entity: str, fields: Sequence[str]) -> str:
    """The digest that names a field plan: SHA-256 of the canonical JSON ``[entity, fields]``."""
    return hashlib.sha256(canonical_json([entity, list(fields)])).hexdigest()


def span_line(district_id: int, user_sourced_id: str, app_id: int, entity: str, fields: str,
              first: dt.datetime, last: dt.datetime, count: int, last_seq: int) -> bytes:
    """A span's canonical form (its plan by content, ``fields`` as the plan's JSON text): what
    the set hash and a seal's digest of changes cover."""
    return canonical_json([district_id, user_sourced_id, app_id, entity, fields,
                           first.isoformat(timespec="microseconds"),
                           last.isoformat(timespec="microseconds"), count, last_seq])


class _IsoTimes(dict):
    """datetime -> its isoformat, computed once: a fold's spans share a few hundred times."""

    def __missing__(self, key: dt.datetime) -> str:
        value = self[key] = key.isoformat(timespec="microseconds")
        return value


def span_element(line: bytes) -> int:
    """A span's term in the set hash: SHAKE-256 of its line, read as a 2048-bit integer. The set
    hash is the sum of the terms modulo 2**2048 (an additive multiset hash: replacing one span
    subtracts its old term and adds the new one; its modulus is wide enough that no k-sum
    search finds another set with the same sum)."""
    return int.from_bytes(hashlib.shake_256(line).digest(ACCUMULATOR_BITS // 8), "big")


def set_hash_hex(value: int) -> str:
    """The stored form of a set hash."""
    return format(value % _MODULUS, f"0{ACCUMULATOR_BITS // 4}x")


def seal_hash(*, prev_hash: str, district_id: int, seq: int, from_seq: int, to_seq: int,
              entry_hash: str, people: int, spans: int, changes: str, accumulator: str,
              sealed_at: dt.datetime, legacy_hash: str | None) -> str:
    """The hash of a seal: SHA-256 (hex) of the canonical JSON of its content."""
    content = {"prev": prev_hash, "district": district_id, "seq": seq, "from": from_seq,
               "to": to_seq, "entry": entry_hash, "people": people, "spans": spans,
               "changes": changes, "set": accumulator,
               "at": sealed_at.isoformat(timespec="microseconds"), "legacy": legacy_hash}
    return hashlib.sha256(canonical_json(content)).hexdigest()


# The append goes to the driver's cursor directly: SQLAlchemy's per-statement work (execution
# context, result set-up, events) costs more than SQLite takes to run these statements. The
# entry's time and fields are still converted by the columns' own types (see _append_plan).
_HEAD_COLUMNS = "seq, hash"
_CREATE_HEAD = ("INSERT INTO ledger_heads (district_id, seq, hash) "
                "VALUES ({p}, 0, {p}) ON CONFLICT DO NOTHING")
# With its head, a district's fold row, so that it exists (committed) before anyone folds: an
# appender that finds it locked skips the fold instead of waiting for another's insert.
_CREATE_FOLD = ("INSERT INTO ledger_folds (district_id, folded_seq, seal_seq, seal_hash, "
                "accumulator, people) VALUES ({p}, 0, 0, {p}, {p}, 0) ON CONFLICT DO NOTHING")
# SQLite: this UPDATE both takes the write lock and reads the head. Taking the lock before
# reading matters: a transaction whose first write follows a read fails at once
# (SQLITE_BUSY_SNAPSHOT) when another writer committed in between, whereas waiting for the lock
# is what busy_timeout does. (Deferred writers start a fresh transaction, see LedgerWriter.)
_LOCK_HEAD_SQLITE = (f"UPDATE ledger_heads SET seq = seq WHERE district_id = ? "
                     f"RETURNING {_HEAD_COLUMNS}")
# The same in two statements, for SQLite before 3.35 (no RETURNING).
_LOCK_HEAD_SQLITE_OLD = ("UPDATE ledger_heads SET seq = seq WHERE district_id = ?",
                         f"SELECT {_HEAD_COLUMNS} FROM ledger_heads WHERE district_id = ?")
_LOCK_HEAD_POSTGRESQL = (f"SELECT {_HEAD_COLUMNS} FROM ledger_heads WHERE district_id = %s "
                         "FOR UPDATE")
_ENTRY_COLUMNS = ("district_id, seq, app_id, channel, endpoint, disclosed_at, entity, fields, "
                  "record_count, people_digest, prev_hash, hash")
_INSERT_ENTRY_SQLITE = (f"INSERT INTO ledger_entries ({_ENTRY_COLUMNS}) "
                        f"VALUES ({', '.join('?' * 12)})")
# The people go as one JSON array in one row, on both backends: one short row per entry instead
# of a hundred, and the exact text whose SHA-256 is the entry's people digest.
_INSERT_PENDING_SQLITE = "INSERT INTO ledger_pending (district_id, seq, people) VALUES (?, ?, ?)"
_UPDATE_HEAD_SQLITE = "UPDATE ledger_heads SET seq = ?, hash = ? WHERE district_id = ?"
# PostgreSQL: the entry, its people and the head in one statement (one round trip);
# data-modifying WITH clauses run exactly once whether or not the main statement reads them.
_APPEND_POSTGRESQL = (
    f"WITH entry AS (INSERT INTO ledger_entries ({_ENTRY_COLUMNS}) VALUES (%(district)s, "
    "%(seq)s, %(app)s, %(channel)s, %(endpoint)s, %(at)s, %(entity)s, %(fields)s::json, "
    "%(records)s, %(digest)s, %(prev)s, %(hash)s)), "
    "people AS (INSERT INTO ledger_pending (district_id, seq, people) "
    "VALUES (%(district)s, %(seq)s, %(people)s)) "
    "UPDATE ledger_heads SET seq = %(seq)s, hash = %(hash)s WHERE district_id = %(district)s")


@dataclasses.dataclass(frozen=True)
class _AppendPlan:
    """How to append on one dialect: the statements that lock and read the head (the last one
    returns it), the one that creates it, and the conversions of an entry's time and fields
    (exactly as the ORM would store them)."""

    postgresql: bool
    lock_head: tuple[str, ...]
    create_head: str
    create_fold: str
    bind_time: Callable[[Any], Any]
    bind_fields: Callable[[Any], Any]


@functools.lru_cache(maxsize=8)
def _append_plan(dialect: Dialect) -> _AppendPlan:
    """The append plan of ``dialect`` (made once per dialect)."""
    def binder(column) -> Callable[[Any], Any]:
        process = column.type.dialect_impl(dialect).bind_processor(dialect)
        return process or (lambda value: value)

    postgresql = dialect.name == "postgresql"
    if postgresql:
        lock_head = (_LOCK_HEAD_POSTGRESQL,)
    elif (dialect.server_version_info or (0,)) >= (3, 35):
        lock_head = (_LOCK_HEAD_SQLITE,)
    else:
        lock_head = _LOCK_HEAD_SQLITE_OLD
    return _AppendPlan(postgresql=postgresql, lock_head=lock_head,
                       create_head=_CREATE_HEAD.format(p="%s" if postgresql else "?"),
                       create_fold=_CREATE_FOLD.format(p="%s" if postgresql else "?"),
                       bind_time=binder(_ENTRIES.c.disclosed_at),
                       bind_fields=binder(_ENTRIES.c.fields))


def _lock_head(session: Session, district_id: int) -> tuple[int, str]:
    """The district's head (seq, hash), locked until the transaction ends; created if missing."""
    connection = session.connection()
    cursor = connection.connection.cursor()
    try:
        return _lock_head_with(cursor, _append_plan(connection.dialect), district_id)
    finally:
        cursor.close()


def _lock_head_with(cursor: Any, plan: _AppendPlan, district_id: int) -> tuple[int, str]:
    # _lock_head on a driver cursor.
    for statement in plan.lock_head:
        cursor.execute(statement, (district_id,))
    head = cursor.fetchall()
    if not head:
        # Two first appends may race here: one inserts, the other's insert does nothing, and
        # both then lock the same row.
        cursor.execute(plan.create_head, (district_id, GENESIS))
        cursor.execute(plan.create_fold, (district_id, GENESIS, EMPTY_SET))
        for statement in plan.lock_head:
            cursor.execute(statement, (district_id,))
        head = cursor.fetchall()
    seq, digest = head[0]
    return seq, digest


def ledger_head(session: Session, district_id: int) -> tuple[int, str]:
    """The district's chain head as committed: (last seq, its hash); (0, GENESIS) when empty.
    Keep it apart (with :func:`fold_head`) to detect a rewrite of the whole ledger later."""
    head = session.execute(select(_HEADS.c.seq, _HEADS.c.hash).where(
        _HEADS.c.district_id == district_id)).one_or_none()
    return (head.seq, head.hash) if head is not None else (0, GENESIS)


def fold_head(session: Session, district_id: int) -> tuple[int, str]:
    """The district's seal chain head: (last seal seq, its hash); (0, GENESIS) before any fold."""
    head = session.execute(select(_FOLDS.c.seal_seq, _FOLDS.c.seal_hash).where(
        _FOLDS.c.district_id == district_id)).one_or_none()
    return (head.seal_seq, head.seal_hash) if head is not None else (0, GENESIS)


def _append_entry(cursor: Any, plan: _AppendPlan, *, app_id: int, district_id: int,
                  channel: str, endpoint: str, entity: str, fields: Sequence[str],
                  users: Iterable[str], record_count: int, now: dt.datetime) -> int:
    # record_disclosure's append on a driver cursor, in the cursor's transaction: the entry's seq.
    users = sorted(set(users))
    fields = list(fields)
    people = canonical_json(users)
    digest_of_people = hashlib.sha256(people).hexdigest()
    people_text = people.decode()
    head_seq, prev = _lock_head_with(cursor, plan, district_id)
    seq = head_seq + 1
    digest = _content_hash(prev_hash=prev, district_id=district_id, app_id=app_id,
                           channel=channel, endpoint=endpoint, disclosed_at=now,
                           entity=entity, fields=fields, record_count=record_count,
                           people=digest_of_people)
    at, stored_fields = plan.bind_time(now), plan.bind_fields(fields)
    if plan.postgresql:
        cursor.execute(_APPEND_POSTGRESQL, {
            "district": district_id, "seq": seq, "app": app_id, "channel": channel,
            "endpoint": endpoint, "at": at, "entity": entity, "fields": stored_fields,
            "records": record_count, "digest": digest_of_people, "prev": prev,
            "hash": digest, "people": people_text})
    else:
        cursor.execute(_INSERT_ENTRY_SQLITE, (district_id, seq, app_id, channel, endpoint,
                                              at, entity, stored_fields, record_count,
                                              digest_of_people, prev, digest))
        cursor.execute(_INSERT_PENDING_SQLITE, (district_id, seq, people_text))
        cursor.execute(_UPDATE_HEAD_SQLITE, (seq, digest, district_id))
    return seq


def record_disclosure(session: Session, *, app_id: int, district_id: int, channel: str,
                      endpoint: str, entity: str, fields: Sequence[str], users: Iterable[str],
                      record_count: int, now: dt.datetime, fold_inline: bool = True) -> int:
    """Append one entry to the district's chain and return its seq (flushes, never commits).

    After the head lock (which on SQLite also reads the head), three statements on SQLite (the
    entry, its people, the head) and one on PostgreSQL; and when the seq is a multiple of
    :data:`FOLD_EVERY`, a fold of the district's pending entries (unless one is running).
    """
    connection = session.connection()
    plan = _append_plan(connection.dialect)
    cursor = connection.connection.cursor()
    try:
        seq = _append_entry(cursor, plan, app_id=app_id, district_id=district_id,
                            channel=channel, endpoint=endpoint, entity=entity, fields=fields,
                            users=users, record_count=record_count, now=now)
    finally:
        cursor.close()
    if fold_inline and fold_due(seq):
        fold_ledger(session, district_id, now=now, wait=False)
    # Counted when appended to the transaction: the rare request whose commit then fails is
    # counted too (and answered with a 500).
    count_ledger_append(channel)
    return seq


# ------------------------------------------------------------------------------------- folding

def fold_due(seq: int) -> bool:
    """Whether the append of entry ``seq`` is the one that folds its district's pending entries
    (every :data:`FOLD_EVERY`-th; a caller appending with ``fold_inline=False`` folds after its
    commit instead, see :func:`gateway.http.visibility`)."""
    return seq % FOLD_EVERY == 0


@dataclasses.dataclass(frozen=True)
class Fold:
    """What one fold did in one district: entries folded, person-disclosures they named, spans
    written, the seal appended (None when nothing was folded), and why it stopped early."""

    district_id: int
    entries: int
    people: int
    spans: int
    seal_seq: int | None
    stopped: str | None = None


def _insert_for(session: Session):
    """The dialect's INSERT construct (for ON CONFLICT)."""
    name = session.get_bind().dialect.name
    return pg_dialect.insert if name == "postgresql" else sqlite_dialect.insert


def _lock_fold(session: Session, district_id: int, *, wait: bool) -> Any:
    """The district's fold row, locked until the transaction ends (created if missing); None when
    ``wait`` is false and another transaction holds it (PostgreSQL; SQLite has one writer)."""
    sqlite = session.get_bind().dialect.name == "sqlite"
    query = select(_FOLDS).where(_FOLDS.c.district_id == district_id).with_for_update(
        skip_locked=not wait)
    for attempt in range(2):
        if sqlite:
            # Take the write lock before reading (see _LOCK_HEAD_SQLITE).
            session.execute(update(_FOLDS).where(_FOLDS.c.district_id == district_id).values(
                folded_seq=_FOLDS.c.folded_seq))
        row = session.execute(query).one_or_none()
        if row is not None or attempt:
            return row
        if not wait and session.execute(select(_FOLDS.c.district_id).where(
                _FOLDS.c.district_id == district_id)).first() is not None:
            return None  # it exists: someone holds it
        session.execute(_insert_for(session)(_FOLDS).values(
            district_id=district_id, folded_seq=0, seal_seq=0, seal_hash=GENESIS,
            accumulator=EMPTY_SET, people=0).on_conflict_do_nothing())
    return None


def _plan_ids(session: Session, wanted: dict[tuple[str, str], None]) -> dict[tuple[str, str],
                                                                            tuple[int, str]]:
    """Plan id and canonical fields text of each (entity, stored fields JSON text), creating the
    plans that do not exist yet (concurrent folds of other districts may create the same one)."""
    content = {}
    for entity, stored in wanted:
        fields = list(orjson.loads(stored))
        content[(entity, stored)] = (plan_digest(entity, fields), canonical_json(fields).decode())
    digests = {digest: (entity, text) for (entity, _), (digest, text) in content.items()}
    found = dict(session.execute(select(_PLANS.c.digest, _PLANS.c.id).where(
        _PLANS.c.digest.in_(sorted(digests)))).all())
    missing = [{"digest": d, "entity": e, "fields": t} for d, (e, t) in digests.items()
               if d not in found]
    if missing:
        session.execute(_insert_for(session)(_PLANS).on_conflict_do_nothing(), missing)
        found = dict(session.execute(select(_PLANS.c.digest, _PLANS.c.id).where(
            _PLANS.c.digest.in_(sorted(digests)))).all())
    return {key: (found[digest], text) for key, (digest, text) in content.items()}


# A fold reads and writes its spans through the driver, all keys in one statement each way:
# through SQLAlchemy, compiling an IN list of thousands of keys per chunk cost more than the
# database's work. The keys and values go as one JSON text on both (psycopg's text dump of large
# arrays costs more than orjson and the server's JSON parser together). SQLite's
# CROSS JOIN keeps the keys as the outer loop: one primary-key seek per key, never a scan.
_READ_SPANS_SQLITE = (
    "SELECT s.user_sourced_id, s.app_id, s.plan_id, s.first_at, s.last_at, s.count, s.last_seq "
    "FROM json_each(?) AS k CROSS JOIN ledger_spans AS s ON s.district_id = ? "
    "AND s.user_sourced_id = json_extract(k.value, '$[0]') "
    "AND s.app_id = json_extract(k.value, '$[1]') AND s.plan_id = json_extract(k.value, '$[2]')")
_READ_SPANS_POSTGRESQL = (
    "SELECT s.user_sourced_id, s.app_id, s.plan_id, s.first_at, s.last_at, s.count, s.last_seq "
    "FROM json_array_elements(%s::json) AS k(v) JOIN ledger_spans AS s "
    "ON s.district_id = %s AND s.user_sourced_id = k.v->>0 AND s.app_id = (k.v->>1)::int "
    "AND s.plan_id = (k.v->>2)::int")
_SPAN_UPDATE = ("ON CONFLICT (district_id, user_sourced_id, app_id, plan_id) DO UPDATE SET "
                "first_at = excluded.first_at, last_at = excluded.last_at, "
                "count = excluded.count, last_seq = excluded.last_seq")
_WRITE_SPANS_SQLITE = ("INSERT INTO ledger_spans (district_id, user_sourced_id, app_id, plan_id, "
                       "first_at, last_at, count, last_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                       + _SPAN_UPDATE)
_WRITE_SPANS_POSTGRESQL = (
    "INSERT INTO ledger_spans (district_id, user_sourced_id, app_id, plan_id, first_at, last_at, "
    "count, last_seq) SELECT %s, k.v->>0, (k.v->>1)::int, (k.v->>2)::int, (k.v->>3)::timestamp, "
    "(k.v->>4)::timestamp, (k.v->>5)::bigint, (k.v->>6)::bigint "
    "FROM json_array_elements(%s::json) AS k(v) " + _SPAN_UPDATE)


def _read_spans(cursor: Any, plan: _AppendPlan, district_id: int,
                keys: list[tuple[str, int, int]]) -> list[tuple]:
    """The current (user, app, plan, first, last, count, last seq) of those of ``keys`` that
    exist."""
    if plan.postgresql:
        cursor.execute(_READ_SPANS_POSTGRESQL, (orjson.dumps(keys).decode(), district_id))
        return cursor.fetchall()
    cursor.execute(_READ_SPANS_SQLITE, (orjson.dumps(keys).decode(), district_id))
    parse = dt.datetime.fromisoformat
    return [(user, app_id, plan_id, parse(first), parse(last), count, last_seq)
            for user, app_id, plan_id, first, last, count, last_seq in cursor.fetchall()]


def _write_spans(cursor: Any, plan: _AppendPlan, district_id: int,
                 spans: dict[tuple[str, int, int], list[Any]], iso: _IsoTimes) -> None:
    """Insert or update ``spans`` ((user, app, plan) -> [first, last, count, last seq])."""
    if plan.postgresql:
        rows = [(user, app_id, plan_id, iso[first], iso[last], count, last_seq)
                for (user, app_id, plan_id), (first, last, count, last_seq) in spans.items()]
        cursor.execute(_WRITE_SPANS_POSTGRESQL, (district_id, orjson.dumps(rows).decode()))
        return
    # SQLAlchemy stores SQLite datetimes as "YYYY-MM-DD HH:MM:SS.ffffff": the isoformat with a
    # space (the span's own line has the "T").
    cursor.executemany(_WRITE_SPANS_SQLITE, [
        (district_id, user, app_id, plan_id, iso[first].replace("T", " "),
         iso[last].replace("T", " "), count, last_seq)
        for (user, app_id, plan_id), (first, last, count, last_seq) in spans.items()])


def _fold_stream(changed: dict[tuple[str, int, int], list[Any]], app_id: int, plan_id: int,
                 stream: list[tuple[dt.datetime, int, list[str]]]) -> None:
    """Add to ``changed`` ((user, app, plan) -> [first, last, count, last seq]) the spans of one
    app and field plan's entries, ``stream`` ((time, seq, distinct people) in seq order).

    A fold runs for every person-disclosure (a hundred per page), so the usual case, entries
    whose times follow their seqs, is counted by the dict and Counter methods (C loops): each
    person's count, the time and seq of the last entry naming them, and the time of the first.
    Times out of seq order (appenders on hosts whose clocks differ) take the plain loop.
    """
    times = [at for at, _, _ in stream]
    if all(earlier <= later for earlier, later in zip(times, times[1:])):
        counts: collections.Counter[str] = collections.Counter()
        last: dict[str, tuple[dt.datetime, int]] = {}
        first: dict[str, dt.datetime] = {}
        for at, seq, users in stream:
            counts.update(users)
            last.update(zip(users, itertools.repeat((at, seq))))
        for at, _, users in reversed(stream):
            first.update(zip(users, itertools.repeat(at)))
        for user, count in counts.items():
            last_at, last_seq = last[user]
            changed[(user, app_id, plan_id)] = [first[user], last_at, count, last_seq]
        return
    for at, seq, users in stream:
        for user in users:
            span = changed.get((user, app_id, plan_id))
            if span is None:
                changed[(user, app_id, plan_id)] = [at, at, 1, seq]
            else:
                span[0], span[1] = min(span[0], at), max(span[1], at)
                span[2] += 1
                span[3] = seq  # in seq order


def fold_ledger(session: Session, district_id: int, *, now: dt.datetime | None = None,
                wait: bool = True, limit: int | None = None) -> Fold:
    """Fold the district's pending entries (up to ``limit``, default :data:`FOLD_MAX`, in seq
    order) into its spans and append a seal (flushes, never commits).

    Locks the district's fold row (``wait`` false: give up at once when another transaction
    holds it). Stops before an entry whose people do not match its digest, or that is missing:
    folding them would erase the evidence; ``verify`` reports them.
    """
    limit = FOLD_MAX if limit is None else limit
    state = _lock_fold(session, district_id, wait=wait)
    if state is None:
        return Fold(district_id, 0, 0, 0, None, "another fold is running")
    rows = session.execute(
        select(_PENDING.c.seq, _PENDING.c.people, _ENTRIES.c.app_id, _ENTRIES.c.entity,
               cast(_ENTRIES.c.fields, Text), _ENTRIES.c.disclosed_at, _ENTRIES.c.people_digest,
               _ENTRIES.c.hash)
        .select_from(_PENDING.outerjoin(_ENTRIES, (_ENTRIES.c.district_id == district_id)
                                        & (_ENTRIES.c.seq == _PENDING.c.seq)))
        .where(_PENDING.c.district_id == district_id, _PENDING.c.seq > state.folded_seq)
        .order_by(_PENDING.c.seq).limit(limit)).all()
    taken, stopped = [], None
    for row in rows:
        expected = state.folded_seq + len(taken) + 1
        if row.seq != expected or row.app_id is None:
            stopped = f"entry {expected} is missing or has no people recorded"
            break
        if hashlib.sha256(row.people.encode()).hexdigest() != row.people_digest:
            stopped = f"the people recorded for entry {row.seq} do not match its digest"
            break
        taken.append(row)
    if not taken:
        return Fold(district_id, 0, 0, 0, None, stopped)
    plans = _plan_ids(session, dict.fromkeys((row.entity, row[4]) for row in taken))
    plan_content = {plan_id: (entity, text) for (entity, _), (plan_id, text) in plans.items()}
    streams: dict[tuple[int, int], list[tuple[dt.datetime, int, list[str]]]] = {}
    people = 0
    for row in taken:
        users = orjson.loads(row.people)
        people += len(users)
        streams.setdefault((row.app_id, plans[(row.entity, row[4])][0]), []).append(
            (row.disclosed_at, row.seq, users))
    changed: dict[tuple[str, int, int], list[Any]] = {}
    for (app_id, plan_id), stream in streams.items():
        _fold_stream(changed, app_id, plan_id, stream)
    accumulator = int(state.accumulator, 16)
    connection = session.connection()
    plan = _append_plan(connection.dialect)
    cursor = connection.connection.cursor()
    iso = _IsoTimes()
    try:
        # span_line, inlined: this loop runs for every person-disclosure folded.
        for user, app_id, plan_id, first, last, count, last_seq in _read_spans(
                cursor, plan, district_id, list(changed)):
            entity, text = plan_content[plan_id]
            accumulator -= span_element(canonical_json([district_id, user, app_id, entity, text,
                                                        iso[first], iso[last], count, last_seq]))
            span = changed[(user, app_id, plan_id)]
            span[0], span[1] = min(span[0], first), max(span[1], last)
            span[2] += count
            span[3] = max(span[3], last_seq)
        lines = []
        for (user, app_id, plan_id), (first, last, count, last_seq) in changed.items():
            entity, text = plan_content[plan_id]
            line = canonical_json([district_id, user, app_id, entity, text, iso[first],
                                   iso[last], count, last_seq])
            accumulator += span_element(line)
            lines.append(line)
        _write_spans(cursor, plan, district_id, changed, iso)
    finally:
        cursor.close()
    last_seq = taken[-1].seq
    session.execute(delete(_PENDING).where(_PENDING.c.district_id == district_id,
                                           _PENDING.c.seq > state.folded_seq,
                                           _PENDING.c.seq <= last_seq))
    lines.sort()
    changes = hashlib.sha256(b"\n".join(lines)).hexdigest()
    accumulator_hex = set_hash_hex(accumulator)
    seal = {"district_id": district_id, "seq": state.seal_seq + 1,
            "from_seq": state.folded_seq + 1, "to_seq": last_seq, "entry_hash": taken[-1].hash,
            "people": people, "spans": len(changed), "changes": changes,
            "accumulator": accumulator_hex, "sealed_at": now or utcnow(), "legacy_hash": None,
            "prev_hash": state.seal_hash}
    seal["hash"] = seal_hash(**seal)
    session.execute(insert(_SEALS).values(**seal))
    session.execute(update(_FOLDS).where(_FOLDS.c.district_id == district_id).values(
        folded_seq=last_seq, seal_seq=seal["seq"], seal_hash=seal["hash"],
        accumulator=accumulator_hex, people=state.people + people))
    return Fold(district_id, len(taken), people, len(changed), seal["seq"], stopped)


def fold_all(session: Session, district_id: int, *, now: dt.datetime | None = None) -> list[Fold]:
    """Fold until nothing is pending (or a fold stops early); the folds done, in order."""
    done = []
    while True:
        fold = fold_ledger(session, district_id, now=now)
        if fold.entries:
            done.append(fold)
        if not fold.entries or fold.stopped:
            return done


class LedgerWriter:
    """Appends the disclosures of one app in one district, in the caller's session.

    ``deferred``: :meth:`record` only notes the entry (with its time) and :meth:`flush` appends
    what was noted. A request that reads a roster and then discloses it defers, and flushes once
    its reads are done, so the head of the chain stays locked only for the append itself; on
    SQLite in a transaction of its own, so that the append never has to upgrade a read snapshot
    to a write (which SQLite refuses outright when another request wrote meanwhile).
    """

    def __init__(self, session: Session, *, app_id: int, district_id: int,
                 clock: Callable[[], dt.datetime] = utcnow, deferred: bool = False) -> None:
        self.session = session
        self.app_id = app_id
        self.district_id = district_id
        self.clock = clock
        self.deferred = deferred
        self.pending: list[dict[str, Any]] = []

    def record(self, *, channel: str, endpoint: str, entity: str, fields: Sequence[str],
               users: Iterable[str], record_count: int) -> int | None:
        """Append an entry (see :func:`record_disclosure`) and return its seq; when deferred,
        note it for :meth:`flush` and return None."""
        entry = dict(channel=channel, endpoint=endpoint, entity=entity, fields=list(fields),
                     users=list(users), record_count=record_count, now=self.clock())
        if self.deferred:
            self.pending.append(entry)
            return None
        return record_disclosure(self.session, app_id=self.app_id, district_id=self.district_id,
                                 **entry)

    def flush(self, fold_inline: bool = True) -> list[int]:
        """Append the noted entries, in order, in the session's current transaction (flushes,
        never commits); returns their seqs. ``fold_inline=False``: a fold that falls due is left
        to the caller (:func:`fold_due`), to run after its commit."""
        seqs = [record_disclosure(self.session, app_id=self.app_id, district_id=self.district_id,
                                  fold_inline=fold_inline, **entry) for entry in self.noted()]
        self.discard()
        return seqs

    def noted(self) -> Iterator[dict[str, Any]]:
        """The noted entries, in order (keyword arguments of :func:`record_disclosure`)."""
        return iter(self.pending)

    def discard(self) -> None:
        """Forget every noted entry."""
        self.pending = []


def append_noted(ledger_file: LedgerFile, dialect: Dialect,
                 writers: Sequence[LedgerWriter]) -> list[tuple[int, int]]:
    """Append the entries the deferred ``writers`` noted to a SQLite store's ledger, in one
    transaction of the ledger file's own connection (see :class:`gateway.store.LedgerFile`),
    committed when this returns; the writers forget them. Returns each entry's (district, seq);
    folds that fall due (:func:`fold_due`) are left to the caller.

    ``dialect``: the store's, whose column types convert an entry's time and fields exactly as
    :func:`record_disclosure` stores them.
    """
    plan = _append_plan(dialect)
    appended, channels = [], []
    with ledger_file.transaction() as cursor:
        for writer in writers:
            for entry in writer.noted():
                appended.append((writer.district_id, _append_entry(
                    cursor, plan, app_id=writer.app_id, district_id=writer.district_id,
                    **entry)))
                channels.append(entry["channel"])
    for writer in writers:
        writer.discard()
    for channel in channels:
        count_ledger_append(channel)
    return appended


class SpooledLedgerWriter(LedgerWriter):
    """A deferred :class:`LedgerWriter` that notes its entries in an anonymous temporary file
    instead of memory: a CSV export of a million-user district notes a million people before it
    may append them, which a list would hold whole. :meth:`flush` appends them one entry at a
    time (so one page's people at most are in memory), in the order noted; :meth:`discard`
    forgets them (an export read again from the start). The file vanishes when closed."""

    def __init__(self, session: Session, *, app_id: int, district_id: int,
                 clock: Callable[[], dt.datetime] = utcnow, folder: str | None = None) -> None:
        super().__init__(session, app_id=app_id, district_id=district_id, clock=clock,
                         deferred=True)
        self._spool = tempfile.TemporaryFile(dir=folder)
        self._noted = 0

    @property
    def pending(self) -> int:
        """How many entries wait to be appended (truthy when any do, as a list would be)."""
        return self._noted

    @pending.setter
    def pending(self, value: Any) -> None:
        # LedgerWriter.__init__ starts with an empty list; nothing else sets it here.
        if value:
            raise ValueError("a spooled writer notes entries through record()")

    def record(self, *, channel: str, endpoint: str, entity: str, fields: Sequence[str],
               users: Iterable[str], record_count: int) -> int | None:
        """Note an entry (with its time) in the spool; :meth:`flush` appends it."""
        self._spool.write(orjson.dumps(dict(
            channel=channel, endpoint=endpoint, entity=entity, fields=list(fields),
            users=list(users), record_count=record_count, now=self.clock().isoformat())) + b"\n")
        self._noted += 1
        return None

    def noted(self) -> Iterator[dict[str, Any]]:
        """The noted entries, in order, read back from the spool one at a time."""
        self._spool.flush()
        self._spool.seek(0)
        for line in self._spool:
            entry = orjson.loads(line)
            entry["now"] = dt.datetime.fromisoformat(entry["now"])
            yield entry

    def discard(self) -> None:
        """Forget every noted entry."""
        self._spool.seek(0)
        self._spool.truncate()
        self._noted = 0

    def close(self) -> None:
        """Remove the spool (whatever it still holds is never appended)."""
        self._spool.close()


# ------------------------------------------------------------------------------------- reading

@dataclasses.dataclass(frozen=True)
class Disclosure:
    """One ledger entry that concerns a given user."""

    seq: int
    app_id: int
    app_name: str | None
    channel: str
    endpoint: str
    disclosed_at: dt.datetime
    entity: str
    fields: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class PlanDisclosures:
    """What one app received about a user under one field plan (an entity and the exact fields
    that left together): how often, first and last time."""

    entity: str
    fields: tuple[str, ...]
    count: int
    first: dt.datetime
    last: dt.datetime


@dataclasses.dataclass(frozen=True)
class AppDisclosures:
    """What one app received about a user: how often, first and last time, which fields (all
    plans together, and each plan on its own)."""

    app_id: int
    app_name: str | None
    count: int
    first: dt.datetime
    last: dt.datetime
    fields: dict[str, tuple[str, ...]]  # entity -> fields that ever left
    plans: tuple[PlanDisclosures, ...] = ()


@dataclasses.dataclass(frozen=True)
class StudentDisclosures:
    """Which apps received a user's data, which fields and when (newest entries first)."""

    district_id: int
    user_sourced_id: str
    total: int
    apps: tuple[AppDisclosures, ...]
    entries: tuple[Disclosure, ...]


def find_district_id(session: Session, sourced_id: str | None) -> int:
    """The id of the district ``sourced_id`` (or of the only district when None)."""
    from gateway.errors import UsageError

    if sourced_id is None:
        found = session.execute(select(District.id).limit(2)).scalars().all()
        if len(found) != 1:
            raise UsageError("several districts exist: name one with --district"
                             if found else "no districts exist yet")
        return found[0]
    district_id = session.execute(
        select(District.id).where(District.sourced_id == sourced_id)).scalar_one_or_none()
    if district_id is None:
        raise UsageError(f"unknown district {sourced_id!r}")
    return district_id


def person_exists(session: Session, district_id: int, user_sourced_id: str) -> bool:
    """Whether the district's store has a user (of any status) with this sourcedId."""
    return session.execute(select(User.id).where(
        User.district_id == district_id, User.sourced_id == user_sourced_id).limit(1)
    ).first() is not None


def _like_escaped(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def student_disclosures_statement(district_id: int, user_sourced_id: str) -> Any:
    """One SELECT (one snapshot, so a fold committing meanwhile is seen whole or not at all) of
    what concerns a person: their spans (a primary-key range), then the pending entries whose
    people contain them (the pending table is short; the caller confirms each match).

    Columns: kind (``s`` span / ``p`` pending), app_id, entity, fields JSON text, first, last,
    count, last seq, people JSON text (pending only).
    """
    spans = (select(literal("s").label("kind"), _SPANS.c.app_id, _PLANS.c.entity,
                    _PLANS.c.fields.label("fields"), _SPANS.c.first_at, _SPANS.c.last_at,
                    _SPANS.c.count, _SPANS.c.last_seq, cast(literal(None), Text).label("people"))
             .select_from(_SPANS.join(_PLANS, _PLANS.c.id == _SPANS.c.plan_id))
             .where(_SPANS.c.district_id == district_id,
                    _SPANS.c.user_sourced_id == user_sourced_id))
    token = "%" + _like_escaped(orjson.dumps(user_sourced_id).decode()) + "%"
    pending = (select(literal("p"), _ENTRIES.c.app_id, _ENTRIES.c.entity,
                      cast(_ENTRIES.c.fields, Text), _ENTRIES.c.disclosed_at,
                      _ENTRIES.c.disclosed_at, literal(1), _ENTRIES.c.seq, _PENDING.c.people)
               .select_from(_PENDING.join(_ENTRIES, (_ENTRIES.c.district_id == district_id)
                                          & (_ENTRIES.c.seq == _PENDING.c.seq)))
               .where(_PENDING.c.district_id == district_id,
                      _PENDING.c.people.like(token, escape="\\")))
    return union_all(spans, pending)


def student_disclosures(session: Session, district_id: int, user_sourced_id: str, *,
                        limit: int | None = 100) -> StudentDisclosures:
    """Every disclosure of ``user_sourced_id``'s records in the district, summarized per app
    (count, first and last time, fields per entity), exact whether folded or pending; and, newest
    first, up to ``limit`` entries in full (None: all): each span's last entry and every pending
    entry naming the person (entries pruned since are left out).

    Two statements: :func:`student_disclosures_statement`, then the listed entries by key.
    """
    decoded: dict[str, tuple[str, ...]] = {}
    # (app, entity, fields) -> [count, first, last]
    per_plan: dict[tuple[int, str, tuple[str, ...]], list[Any]] = {}
    listed: set[int] = set()
    total = 0
    for kind, app_id, entity, fields, first, last, count, last_seq, people in session.execute(
            student_disclosures_statement(district_id, user_sourced_id)):
        if kind == "p" and user_sourced_id not in orjson.loads(people):
            continue  # the text matched inside another id
        names = decoded.get(fields)
        if names is None:
            names = decoded[fields] = tuple(orjson.loads(fields))
        total += count
        listed.add(last_seq)
        summary = per_plan.get((app_id, entity, names))
        if summary is None:
            per_plan[(app_id, entity, names)] = [count, first, last]
            continue
        summary[0] += count
        summary[1] = min(summary[1], first)
        summary[2] = max(summary[2], last)
    per_app: dict[int, list[Any]] = {}  # app -> [count, first, last, {entity: set(fields)}, plans]
    for (app_id, entity, names), (count, first, last) in sorted(per_plan.items()):
        plan = PlanDisclosures(entity=entity, fields=names, count=count, first=first, last=last)
        summary = per_app.get(app_id)
        if summary is None:
            per_app[app_id] = [count, first, last, {entity: set(names)}, [plan]]
            continue
        summary[0] += count
        summary[1] = min(summary[1], first)
        summary[2] = max(summary[2], last)
        summary[3].setdefault(entity, set()).update(names)
        summary[4].append(plan)
    app_names = dict(session.execute(select(App.id, App.name).where(
        App.id.in_(sorted(per_app)))).all()) if per_app else {}
    apps = tuple(AppDisclosures(app_id=app_id, app_name=app_names.get(app_id), count=count,
                                first=first, last=last,
                                fields={entity: tuple(sorted(found))
                                        for entity, found in sorted(by_entity.items())},
                                plans=tuple(plans))
                 for app_id, (count, first, last, by_entity, plans) in sorted(per_app.items()))
    shown = sorted(listed, reverse=True)
    if limit is not None:
        shown = shown[:limit]
    entries: tuple[Disclosure, ...] = ()
    if shown:
        rows = session.execute(
            select(_ENTRIES.c.seq, _ENTRIES.c.app_id, _ENTRIES.c.channel, _ENTRIES.c.endpoint,
                   _ENTRIES.c.disclosed_at, _ENTRIES.c.entity, cast(_ENTRIES.c.fields, Text))
            .where(_ENTRIES.c.district_id == district_id, _ENTRIES.c.seq.in_(shown))
            .order_by(_ENTRIES.c.seq.desc())).all()
        entries = tuple(Disclosure(seq=seq, app_id=app_id, app_name=app_names.get(app_id),
                                   channel=channel, endpoint=endpoint, disclosed_at=at,
                                   entity=entity, fields=tuple(orjson.loads(fields)))
                        for seq, app_id, channel, endpoint, at, entity, fields in rows)
    return StudentDisclosures(district_id=district_id, user_sourced_id=user_sourced_id,
                              total=total, apps=apps, entries=entries)


@dataclasses.dataclass(frozen=True)
class LedgerEntryRow(Disclosure):
    """One ledger entry as a search lists it: who received what, how many records, when."""

    record_count: int


@dataclasses.dataclass(frozen=True)
class LedgerSearchPage:
    """One page of a ledger search, newest first; ``older`` is the ``before`` of the next page
    (None: this is the last)."""

    entries: tuple[LedgerEntryRow, ...]
    older: int | None


def search_entries(session: Session, district_id: int, *, app_id: int | None = None,
                   since: dt.datetime | None = None, until: dt.datetime | None = None,
                   before: int | None = None, limit: int = 50) -> LedgerSearchPage:
    """The district's ledger entries of ``app_id`` (None: every app) disclosed in
    [``since``, ``until``), newest first, ``limit`` per page; ``before``: the ``older`` of the
    previous page. Indexed reads (by app and time, or by time), one page at a time: the
    ledger may hold millions of entries."""
    query = (select(_ENTRIES.c.seq, _ENTRIES.c.app_id, _ENTRIES.c.channel, _ENTRIES.c.endpoint,
                    _ENTRIES.c.disclosed_at, _ENTRIES.c.entity, cast(_ENTRIES.c.fields, Text),
                    _ENTRIES.c.record_count)
             .where(_ENTRIES.c.district_id == district_id)
             .order_by(_ENTRIES.c.seq.desc()).limit(limit + 1))
    if app_id is not None:
        query = query.where(_ENTRIES.c.app_id == app_id)
    if since is not None:
        query = query.where(_ENTRIES.c.disclosed_at >= since)
    if until is not None:
        query = query.where(_ENTRIES.c.disclosed_at < until)
    if before is not None:
        query = query.where(_ENTRIES.c.seq < before)
    rows = session.execute(query).all()
    older = rows[limit - 1][0] if len(rows) > limit else None
    rows = rows[:limit]
    apps = sorted({row[1] for row in rows})
    names = dict(session.execute(select(App.id, App.name).where(App.id.in_(apps))).all()) if apps else {}
    return LedgerSearchPage(tuple(
        LedgerEntryRow(seq=seq, app_id=app, app_name=names.get(app), channel=channel,
                       endpoint=endpoint, disclosed_at=at, entity=entity,
                       fields=tuple(orjson.loads(fields)), record_count=count)
        for seq, app, channel, endpoint, at, entity, fields, count in rows), older)


def entry_people(session: Session, district_id: int, seq: int) -> list[str] | None:
    """The people of an entry not folded yet (sorted stored sourcedIds); None once folded (they
    are then counted in spans) or when there is no such entry."""
    people = session.execute(select(_PENDING.c.people).where(
        _PENDING.c.district_id == district_id, _PENDING.c.seq == seq)).scalar_one_or_none()
    return None if people is None else orjson.loads(people)


# ----------------------------------------------------------------------------------- verifying

@dataclasses.dataclass(frozen=True)
class LedgerProblem:
    """Where a district's ledger is broken, and how (``edited``, ``missing``, ``reordered``,
    ``unlinked``, ``head``, ``orphan``, ``seal``, ``span``). ``seq`` is an entry's."""

    seq: int | None
    kind: str
    message: str


@dataclasses.dataclass(frozen=True)
class LedgerVerification:
    """The outcome of verifying one district's chain, seals and spans."""

    district_id: int
    entries: int
    first_seq: int | None
    last_seq: int | None
    head_seq: int
    head_hash: str
    checkpoint_seq: int | None
    problems: tuple[LedgerProblem, ...]
    problem_count: int
    seals: int = 0
    spans: int = 0
    folded_seq: int = 0
    seal_seq: int = 0
    seal_hash: str = GENESIS

    @property
    def ok(self) -> bool:
        """Whether the chain, the seals and the spans are intact."""
        return self.problem_count == 0


def chain_heads(session: Session) -> dict[int, tuple[int, str]]:
    """Each district's chain head as recorded: district id -> (last seq, its hash). Kept apart
    from the ledger (``gateway ledger heads``), these let a restored copy be checked later (see
    :func:`ledger_head` for one district, :func:`fold_head` for the seal chain's)."""
    return {district_id: (seq, digest) for district_id, seq, digest in session.execute(
        select(_HEADS.c.district_id, _HEADS.c.seq, _HEADS.c.hash).order_by(_HEADS.c.district_id))}


def ledger_district_ids(session: Session) -> list[int]:
    """Every district that has a ledger chain (or a district row: an empty chain verifies)."""
    ids = set(session.execute(select(_HEADS.c.district_id)).scalars())
    ids.update(session.execute(select(_CHECKPOINTS.c.district_id).distinct()).scalars())
    ids.update(session.execute(select(_FOLDS.c.district_id)).scalars())
    ids.update(session.execute(select(District.id)).scalars())
    return sorted(ids)


def verify_ledger(session: Session, district_id: int) -> LedgerVerification:
    """Recompute one district's chain from its checkpoint (or its start) to its head, its seals,
    and the set hash of its spans.

    Reads the entries and their pending people in seq order, in batches, and reports each break:
    an entry whose content does not match its hash (edited), pending people that do not match
    their entry's digest (edited), a gap in the seqs (removed), an entry whose previous hash is
    not its predecessor's (removed, inserted or moved), one that follows an earlier entry instead
    of its predecessor (reordered), people recorded for no entry, and a head that does not match
    the last entry (entries removed at the end). Then the seals: each one's hash, link, the range
    it folded, the hash of the entry it ends at, and the fold head; and the spans, whose set hash
    must be the last seal's.
    """
    problems: list[LedgerProblem] = []
    count = 0

    def report(seq: int | None, kind: str, message: str) -> None:
        nonlocal count
        count += 1
        if len(problems) < MAX_PROBLEMS:
            problems.append(LedgerProblem(seq, kind, message))

    checkpoint = session.execute(
        select(_CHECKPOINTS.c.seq, _CHECKPOINTS.c.hash).where(
            _CHECKPOINTS.c.district_id == district_id)
        .order_by(_CHECKPOINTS.c.seq.desc()).limit(1)).one_or_none()
    head = session.execute(select(_HEADS.c.seq, _HEADS.c.hash).where(
        _HEADS.c.district_id == district_id)).one_or_none()
    # Shared lock on PostgreSQL (SQLite reads one snapshot anyway): no fold commits while the
    # seals, the pending people and the spans are read, or they would disagree.
    fold = session.execute(select(_FOLDS).where(_FOLDS.c.district_id == district_id)
                           .with_for_update(read=True)).one_or_none()
    folded_seq = fold.folded_seq if fold is not None else 0
    anchors, seals = _verify_seals(session, district_id, fold, report)
    expected_seq = checkpoint.seq + 1 if checkpoint else 1
    expected_prev = checkpoint.hash if checkpoint else GENESIS
    # Recent hashes by seq, to say "follows entry j" when an entry is out of place.
    seen: dict[str, int] = {expected_prev: expected_seq - 1}
    first_seq = last_seq = None
    last_hash = expected_prev
    entries = 0
    after = expected_seq - 1 if checkpoint else None
    if checkpoint is not None:
        stale = session.execute(select(func.count()).select_from(_ENTRIES).where(
            _ENTRIES.c.district_id == district_id, _ENTRIES.c.seq <= checkpoint.seq)).scalar_one()
        if stale:
            report(None, "orphan", f"{stale} entries at or before the pruning checkpoint "
                                   f"(seq {checkpoint.seq}) are still present")
    while True:
        query = select(_ENTRIES).where(_ENTRIES.c.district_id == district_id)
        if after is not None:
            query = query.where(_ENTRIES.c.seq > after)
        batch = session.execute(query.order_by(_ENTRIES.c.seq).limit(VERIFY_BATCH)).all()
        if not batch:
            break
        low, high = batch[0].seq, batch[-1].seq
        pending = dict(session.execute(select(_PENDING.c.seq, _PENDING.c.people).where(
            _PENDING.c.district_id == district_id, _PENDING.c.seq >= low,
            _PENDING.c.seq <= high)).all())
        for row in batch:
            count_before = count
            if row.seq > expected_seq:
                missing = (f"entry {expected_seq} is missing" if row.seq == expected_seq + 1 else
                           f"entries {expected_seq} to {row.seq - 1} are missing")
                report(row.seq, "missing", f"{missing} (removed before entry {row.seq})")
            digest = _content_hash(prev_hash=row.prev_hash, district_id=row.district_id,
                                   app_id=row.app_id, channel=row.channel, endpoint=row.endpoint,
                                   disclosed_at=row.disclosed_at, entity=row.entity,
                                   fields=row.fields, record_count=row.record_count,
                                   people=row.people_digest)
            people = pending.pop(row.seq, None)
            if digest != row.hash:
                report(row.seq, "edited",
                       f"entry {row.seq} was edited: its content does not match its hash")
            elif row.seq > folded_seq:
                if people is None:
                    report(row.seq, "edited", f"the people of entry {row.seq}, not folded yet, "
                                              f"were removed")
                elif hashlib.sha256(people.encode()).hexdigest() != row.people_digest:
                    report(row.seq, "edited", f"the people of entry {row.seq} were edited: they "
                                              f"do not match its digest")
            elif people is not None:
                report(row.seq, "orphan", f"entry {row.seq} is folded (seal head at entry "
                                          f"{folded_seq}) but people are still pending for it")
            anchor = anchors.pop(row.seq, None)
            if anchor is not None and anchor[1] != row.hash:
                report(row.seq, "seal", f"seal {anchor[0]} ends at entry {row.seq} with another "
                                        f"hash: the entry or the seal was altered")
            if row.prev_hash != expected_prev and count == count_before:
                predecessor = seen.get(row.prev_hash)
                if predecessor is not None and predecessor != row.seq - 1:
                    report(row.seq, "reordered",
                           f"entry {row.seq} follows entry {predecessor} instead of entry "
                           f"{row.seq - 1}: entries were reordered")
                else:
                    report(row.seq, "unlinked",
                           f"entry {row.seq} does not follow entry {row.seq - 1} (its previous "
                           f"hash is not that entry's hash): an entry was removed, inserted or "
                           f"replaced, or entries were reordered")
            seen[row.hash] = row.seq
            if len(seen) > 4 * VERIFY_BATCH:
                # Keep memory bounded: forget the older half.
                for key in list(seen)[:2 * VERIFY_BATCH]:
                    del seen[key]
            expected_prev = row.hash
            expected_seq = row.seq + 1
            if first_seq is None:
                first_seq = row.seq
            last_seq, last_hash = row.seq, row.hash
            entries += 1
        for seq in sorted(pending):
            report(seq, "orphan", f"people are recorded for entry {seq}, which does not exist")
        after = high
    orphans = session.execute(select(func.count()).select_from(_PENDING).where(
        _PENDING.c.district_id == district_id, _PENDING.c.seq > (last_seq or expected_seq - 1))
    ).scalar_one()
    if orphans:
        report(None, "orphan", f"{orphans} pending people rows are recorded after the last entry")
    head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS)
    end_seq = last_seq if last_seq is not None else expected_seq - 1
    if (head_seq, head_hash) != (end_seq, last_hash):
        if head_seq > end_seq:
            report(head_seq, "head", f"the chain ends at entry {end_seq} but its head records "
                                     f"entry {head_seq}: entries at the end were removed")
        else:
            report(end_seq, "head", f"the chain ends at entry {end_seq} but its head records "
                                    f"entry {head_seq} with another hash: the head or the last "
                                    f"entries were altered")
    first_present = first_seq if first_seq is not None else expected_seq
    for to_seq, (seal_seq, _) in sorted(anchors.items()):
        if to_seq >= first_present:
            report(to_seq, "seal", f"seal {seal_seq} ends at entry {to_seq}, which does not exist")
    spans = _verify_spans(session, district_id, fold, report)
    return LedgerVerification(district_id=district_id, entries=entries, first_seq=first_seq,
                              last_seq=last_seq, head_seq=head_seq, head_hash=head_hash,
                              checkpoint_seq=checkpoint.seq if checkpoint else None,
                              problems=tuple(problems), problem_count=count, seals=seals,
                              spans=spans, folded_seq=folded_seq,
                              seal_seq=fold.seal_seq if fold is not None else 0,
                              seal_hash=fold.seal_hash if fold is not None else GENESIS)


def _verify_seals(session: Session, district_id: int, fold: Any,
                  report: Callable[[int | None, str, str], None]
                  ) -> tuple[dict[int, tuple[int, str]], int]:
    """Check the seal chain against itself and the fold head; returns the entry each seal ends
    at (entry seq -> (seal seq, entry hash)), to check against the entries, and the seal count."""
    anchors: dict[int, tuple[int, str]] = {}
    prev, expected_seq, expected_from = GENESIS, 1, None
    last = None
    people = 0
    broken = False
    for seal in session.execute(select(_SEALS).where(_SEALS.c.district_id == district_id)
                                .order_by(_SEALS.c.seq)):
        computed = seal_hash(prev_hash=seal.prev_hash, district_id=seal.district_id,
                             seq=seal.seq, from_seq=seal.from_seq, to_seq=seal.to_seq,
                             entry_hash=seal.entry_hash, people=seal.people, spans=seal.spans,
                             changes=seal.changes, accumulator=seal.accumulator,
                             sealed_at=seal.sealed_at, legacy_hash=seal.legacy_hash)
        if computed != seal.hash:
            report(None, "seal", f"seal {seal.seq} was edited: its content does not match its "
                                 f"hash")
        elif seal.seq != expected_seq:
            report(None, "seal", f"seal {expected_seq} is missing (before seal {seal.seq})")
        elif seal.prev_hash != prev:
            report(None, "seal", f"seal {seal.seq} does not follow seal {seal.seq - 1}: a seal "
                                 f"was removed, inserted or replaced")
        elif expected_from is not None and seal.from_seq != expected_from:
            report(None, "seal", f"seal {seal.seq} folds entries from {seal.from_seq}, but the "
                                 f"seal before it ended at entry {expected_from - 1}")
        else:
            anchors[seal.to_seq] = (seal.seq, seal.entry_hash)
        broken = broken or computed != seal.hash
        prev, expected_seq, expected_from = seal.hash, seal.seq + 1, seal.to_seq + 1
        people += seal.people
        last = seal
    head = ((fold.seal_seq, fold.seal_hash) if fold is not None else (0, GENESIS))
    if head != (expected_seq - 1, prev):
        report(None, "seal", f"the seals end at seal {expected_seq - 1} but the fold head "
                             f"records seal {head[0]}: seals were removed or altered")
    elif not broken and fold is not None and last is not None and (
            fold.folded_seq, fold.accumulator, fold.people) != (last.to_seq, last.accumulator,
                                                                people):
        report(None, "seal", f"the fold head does not match seal {last.seq}: it was altered")
    return anchors, expected_seq - 1


def _verify_spans(session: Session, district_id: int, fold: Any,
                  report: Callable[[int | None, str, str], None]) -> int:
    """Recompute the set hash of the district's spans and compare it with the fold head's
    (which :func:`_verify_seals` checked against the last seal); returns the span count."""
    accumulator = people = spans = 0
    folded_seq = fold.folded_seq if fold is not None else 0
    late = 0
    rows = session.execute(
        select(_SPANS.c.user_sourced_id, _SPANS.c.app_id, _PLANS.c.entity, _PLANS.c.fields,
               _SPANS.c.first_at, _SPANS.c.last_at, _SPANS.c.count, _SPANS.c.last_seq)
        .select_from(_SPANS.outerjoin(_PLANS, _PLANS.c.id == _SPANS.c.plan_id))
        .where(_SPANS.c.district_id == district_id),
        execution_options={"yield_per": VERIFY_BATCH})
    for user, app_id, entity, fields, first, last, count, last_seq in rows:
        accumulator += span_element(span_line(district_id, user, app_id, entity or "",
                                              fields or "", first, last, count, last_seq))
        people += count
        spans += 1
        if last_seq > folded_seq:
            late += 1
    expected = fold.accumulator if fold is not None else EMPTY_SET
    if set_hash_hex(accumulator) != expected:
        seal = fold.seal_seq if fold is not None else 0
        report(None, "span", f"the {spans} spans do not match seal {seal}: a span (or a field "
                             f"plan) was edited, added or removed")
    elif late:
        report(None, "span", f"{late} spans name entries after the last folded one")
    return spans


# ------------------------------------------------------------------------------------- pruning

@dataclasses.dataclass(frozen=True)
class Pruning:
    """What a pruning run removed from one district's chain."""

    district_id: int
    entries: int
    checkpoint_seq: int | None


def prune_ledger(session: Session, district_id: int, *, before: dt.datetime,
                 now: dt.datetime) -> Pruning:
    """Fold the district's pending entries, then remove its entries disclosed before ``before``
    (a prefix of the chain: the first entry at or after ``before`` and everything after it
    stay; never an entry not folded) and record a checkpoint. Spans and seals stay: they are
    the per-person record, and they are bounded."""
    head_seq, head_hash = _lock_head(session, district_id)
    fold_all(session, district_id, now=now)
    folded_seq = session.execute(select(_FOLDS.c.folded_seq).where(
        _FOLDS.c.district_id == district_id)).scalar_one_or_none() or 0
    first_kept = session.execute(select(func.min(_ENTRIES.c.seq)).where(
        _ENTRIES.c.district_id == district_id, _ENTRIES.c.disclosed_at >= before)).scalar_one()
    last_pruned = min(head_seq if first_kept is None else first_kept - 1, folded_seq)
    first_present = session.execute(select(func.min(_ENTRIES.c.seq)).where(
        _ENTRIES.c.district_id == district_id)).scalar_one()
    if first_present is None or last_pruned < first_present:
        return Pruning(district_id=district_id, entries=0, checkpoint_seq=None)
    if last_pruned == head_seq:
        last_hash = head_hash
    else:
        last_hash = session.execute(select(_ENTRIES.c.hash).where(
            _ENTRIES.c.district_id == district_id, _ENTRIES.c.seq == last_pruned)).scalar_one()
    removed = session.execute(delete(_ENTRIES).where(_ENTRIES.c.district_id == district_id,
                                                     _ENTRIES.c.seq <= last_pruned)).rowcount
    session.execute(insert(_CHECKPOINTS).values(district_id=district_id, seq=last_pruned,
                                                hash=last_hash, pruned_at=now, entry_count=removed,
                                                cutoff=before))
    return Pruning(district_id=district_id, entries=removed, checkpoint_seq=last_pruned)
