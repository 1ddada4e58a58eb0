"""The disclosure ledger: an append-only, hash-chained record of what left for which app.

Every response that carries records about people (users, enrollments, demographics) appends one
entry: the app, district, channel (``rest``, ``csv``, ``lti``...), endpoint, time, entity, the
top-level fields that left as sent (``familyName:initial``, ``sourcedId:pseudonym``), how many
records, and which users' records (by stored sourcedId). This answers the FERPA record of
disclosures (34 CFR §99.32) and parents' "who received my child's data" requests:
:func:`student_disclosures` reads one user's entries through the ``(district, user, seq)`` index.

Tamper evidence: each district has its own chain. An entry's hash is the SHA-256 of the canonical
JSON (sorted keys, no spaces, UTF-8) of its content and the previous entry's hash, so
:func:`verify_ledger` detects an edited entry (its hash no longer matches), a removed or inserted
one (a gap, or a previous-hash that does not match) and a reordering (an entry that follows another
than its predecessor). The chain's head (last seq and hash) is kept apart, so removing the newest
entries is detected as well; print it (``gateway ledger verify``) and keep it elsewhere to detect
even a rewrite of the whole chain.

Retention: :func:`prune_ledger` removes a prefix of the chain and records a checkpoint (the last
removed entry's seq and hash), from which the rest still verifies.

Appending locks the district's head row (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite has one
writer at a time anyway), so concurrent requests never fork the chain. It runs in the caller's
session and transaction: a request that fails records nothing, and nothing leaves unrecorded.
On SQLite the ledger's tables are in a file of their own, attached to every connection (see
:func:`gateway.store.ledger_database_path`): appends take that file's write lock, never the
store's, so apps' reads are recorded while an import holds the store.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
from typing import Any, Callable, Iterable, Sequence

import orjson
from sqlalchemy import (Dialect, Text, bindparam, cast, delete, func, insert, select, tuple_,
                        union_all, update)
from sqlalchemy.orm import Session

from gateway.metrics import count_ledger_append
from gateway.store.apps import App
from gateway.store.models import District, User, utcnow
from gateway.store.sharing import (LedgerCheckpoint, LedgerEntry, LedgerEntryUser, LedgerHead,
                                   LedgerUserIndex)

GENESIS = "0" * 64
"""The previous hash of a chain's first entry."""

_ENTRIES = LedgerEntry.__table__
_USERS = LedgerEntryUser.__table__
_INDEX = LedgerUserIndex.__table__
_HEADS = LedgerHead.__table__
_CHECKPOINTS = LedgerCheckpoint.__table__
# Rows per batch when verifying: bounded memory on ledgers of any size.
VERIFY_BATCH = 20_000
# How many problems a verification reports in full (a damaged ledger can have millions).
MAX_PROBLEMS = 100
INDEX_BATCH = 256
"""Entries appended before their users are copied into ``ledger_user_index`` in one batch:
inserting a page's hundred users into a by-user index one append at a time touches a hundred
scattered pages per request, a batch touches each page once. Lookups read the unindexed tail
(fewer than this many entries) from ``ledger_entry_users`` directly."""


def canonical_json(value: Any) -> bytes:
    """The canonical JSON of ``value``: sorted keys, no whitespace, UTF-8 (orjson's output, which
    for the strings, integers and lists of an entry is ``json.dumps(value, sort_keys=True,
    separators=(",", ":"), ensure_ascii=False)``)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def entry_hash(*, prev_hash: str, district_id: int, app_id: int, channel: str, endpoint: str,
               disclosed_at: dt.datetime, entity: str, fields: Sequence[str], record_count: int,
               users: Iterable[str]) -> str:
    """The hash of a ledger entry: SHA-256 (hex) of the canonical JSON of its content."""
    return _content_hash(prev_hash=prev_hash, district_id=district_id, app_id=app_id,
                         channel=channel, endpoint=endpoint, disclosed_at=disclosed_at,
                         entity=entity, fields=fields, record_count=record_count,
                         sorted_users=sorted(users))


def _content_hash(*, prev_hash: str, district_id: int, app_id: int, channel: str, endpoint: str,
                  disclosed_at: dt.datetime, entity: str, fields: Sequence[str],
                  record_count: int, sorted_users: list[str]) -> str:
    # entry_hash for users already sorted (the append has just sorted them).
    content = {"prev": prev_hash, "district": district_id, "app": app_id, "channel": channel,
               "endpoint": endpoint, "at": disclosed_at.isoformat(timespec="microseconds"),
               "entity": entity, "fields": list(fields), "records": record_count,
               "users": sorted_users}
    return hashlib.sha256(canonical_json(content)).hexdigest()


# The append goes to the driver's cursor directly: SQLAlchemy's per-statement work (execution
# context, result set-up, events) costs more than SQLite takes to run these statements. The
# entry's time and fields are still converted by the columns' own types (see _append_plan).
_HEAD_COLUMNS = "seq, hash, indexed_seq"
_CREATE_HEAD = ("INSERT INTO ledger_heads (district_id, seq, hash, indexed_seq) "
                "VALUES ({p}, 0, {p}, 0) ON CONFLICT DO NOTHING")
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
                  "record_count, prev_hash, hash")
_INSERT_ENTRY_SQLITE = (f"INSERT INTO ledger_entries ({_ENTRY_COLUMNS}) "
                        f"VALUES ({', '.join('?' * 11)})")
# The users go as one JSON array, on both backends: one statement instead of an executemany of a
# hundred rows, and cheaper for the driver to send than a PostgreSQL array.
_INSERT_USERS_SQLITE = ("INSERT INTO ledger_entry_users (district_id, seq, user_sourced_id) "
                        "SELECT ?, ?, value FROM json_each(?)")
_UPDATE_HEAD_SQLITE = "UPDATE ledger_heads SET seq = ?, hash = ? WHERE district_id = ?"
# PostgreSQL: the entry, its users and the head in one statement (one round trip); data-modifying
# WITH clauses run exactly once whether or not the main statement reads them.
_APPEND_POSTGRESQL = (
    f"WITH entry AS (INSERT INTO ledger_entries ({_ENTRY_COLUMNS}) VALUES (%(district)s, "
    "%(seq)s, %(app)s, %(channel)s, %(endpoint)s, %(at)s, %(entity)s, %(fields)s::json, "
    "%(records)s, %(prev)s, %(hash)s)), "
    "users AS (INSERT INTO ledger_entry_users (district_id, seq, user_sourced_id) "
    "SELECT %(district)s, %(seq)s, json_array_elements_text(%(users)s::json)) "
    "UPDATE ledger_heads SET seq = %(seq)s, hash = %(hash)s WHERE district_id = %(district)s")


@dataclasses.dataclass(frozen=True)
class _AppendPlan:
    """How to append on one dialect: the statements that lock and read the head (the last one
    returns it), the one that creates it, and the conversions of an entry's time and fields
    (exactly as the ORM would store them)."""

    postgresql: bool
    lock_head: tuple[str, ...]
    create_head: str
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
                       bind_time=binder(_ENTRIES.c.disclosed_at),
                       bind_fields=binder(_ENTRIES.c.fields))


def _lock_head(session: Session, district_id: int) -> tuple[int, str, int]:
    """The district's head (seq, hash, indexed_seq), locked until the transaction ends; created
    if missing."""
    connection = session.connection()
    cursor = connection.connection.cursor()
    try:
        return _lock_head_with(cursor, _append_plan(connection.dialect), district_id)
    finally:
        cursor.close()


def _lock_head_with(cursor: Any, plan: _AppendPlan, district_id: int) -> tuple[int, str, int]:
    # _lock_head on a driver cursor.
    for statement in plan.lock_head:
        cursor.execute(statement, (district_id,))
    head = cursor.fetchall()
    if not head:
        # Two first appends may race here: one inserts, the other's insert does nothing, and
        # both then lock the same row.
        cursor.execute(plan.create_head, (district_id, GENESIS))
        for statement in plan.lock_head:
            cursor.execute(statement, (district_id,))
        head = cursor.fetchall()
    seq, digest, indexed_seq = head[0]
    return seq, digest, indexed_seq


_INDEX_TAIL = insert(_INDEX).from_select(
    ["district_id", "user_sourced_id", "seq"],
    select(_USERS.c.district_id, _USERS.c.user_sourced_id, _USERS.c.seq).where(
        _USERS.c.district_id == bindparam("district"), _USERS.c.seq > bindparam("after"),
        _USERS.c.seq <= bindparam("upto")).order_by(_USERS.c.user_sourced_id, _USERS.c.seq))
_MARK_INDEXED = update(_HEADS).where(_HEADS.c.district_id == bindparam("district")).values(
    indexed_seq=bindparam("upto"))


def index_ledger(session: Session, district_id: int) -> int:
    """Copy the users of the district's unindexed entries into ``ledger_user_index`` (one
    set-based statement, under the head's lock); returns how many entries that covered."""
    seq, _, indexed_seq = _lock_head(session, district_id)
    return _index_tail(session, district_id, indexed_seq, seq)


def _index_tail(session: Session, district_id: int, after: int, upto: int) -> int:
    if upto <= after:
        return 0
    session.execute(_INDEX_TAIL, {"district": district_id, "after": after, "upto": upto})
    session.execute(_MARK_INDEXED, {"district": district_id, "upto": upto})
    return upto - after


def record_disclosure(session: Session, *, app_id: int, district_id: int, channel: str,
                      endpoint: str, entity: str, fields: Sequence[str], users: Iterable[str],
                      record_count: int, now: dt.datetime) -> int:
    """Append one entry to the district's chain and return its seq (flushes, never commits).

    After the head lock (which on SQLite also reads the head), three statements on SQLite (the
    entry, its users, the head) and one on PostgreSQL; and every :data:`INDEX_BATCH` entries,
    the batch copy into the by-user index.
    """
    users = sorted(set(users))
    fields = list(fields)
    connection = session.connection()
    plan = _append_plan(connection.dialect)
    cursor = connection.connection.cursor()
    try:
        head_seq, prev, indexed_seq = _lock_head_with(cursor, plan, district_id)
        seq = head_seq + 1
        digest = _content_hash(prev_hash=prev, district_id=district_id, app_id=app_id,
                               channel=channel, endpoint=endpoint, disclosed_at=now,
                               entity=entity, fields=fields, record_count=record_count,
                               sorted_users=users)
        at, stored_fields = plan.bind_time(now), plan.bind_fields(fields)
        if plan.postgresql:
            cursor.execute(_APPEND_POSTGRESQL, {
                "district": district_id, "seq": seq, "app": app_id, "channel": channel,
                "endpoint": endpoint, "at": at, "entity": entity, "fields": stored_fields,
                "records": record_count, "prev": prev, "hash": digest,
                "users": orjson.dumps(users).decode()})
        else:
            cursor.execute(_INSERT_ENTRY_SQLITE, (district_id, seq, app_id, channel, endpoint,
                                                  at, entity, stored_fields, record_count, prev,
                                                  digest))
            if users:
                cursor.execute(_INSERT_USERS_SQLITE,
                               (district_id, seq, orjson.dumps(users).decode()))
            cursor.execute(_UPDATE_HEAD_SQLITE, (seq, digest, district_id))
    finally:
        cursor.close()
    if seq - indexed_seq >= INDEX_BATCH:
        _index_tail(session, district_id, indexed_seq, seq)
    # Counted when appended to the transaction: the rare request whose commit then fails is
    # counted too (and answered with a 500).
    count_ledger_append(channel)
    return seq


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

    def flush(self) -> list[int]:
        """Append the noted entries, in order, in the session's current transaction (flushes,
        never commits); returns their seqs."""
        entries, self.pending = self.pending, []
        return [record_disclosure(self.session, app_id=self.app_id, district_id=self.district_id,
                                  **entry) for entry in entries]


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
class AppDisclosures:
    """What one app received about a user: how often, first and last time, which fields."""

    app_id: int
    app_name: str | None
    count: int
    first: dt.datetime
    last: dt.datetime
    fields: dict[str, tuple[str, ...]]  # entity -> fields that ever left


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


def student_entries_statement(district_id: int, user_sourced_id: str) -> Any:
    """The SELECT of the entries naming a user, newest first: (seq, app_id, channel, endpoint,
    disclosed_at, entity, fields as JSON text).

    The seqs come from the by-user index up to the head's ``indexed_seq`` and from the short
    unindexed tail after it (a primary-key range scan of ``ledger_entry_users``); the entries
    are then read by primary key.
    """
    indexed = func.coalesce(select(_HEADS.c.indexed_seq).where(
        _HEADS.c.district_id == district_id).scalar_subquery(), 0)
    seqs = union_all(
        select(_INDEX.c.seq).where(_INDEX.c.district_id == district_id,
                                   _INDEX.c.user_sourced_id == user_sourced_id,
                                   _INDEX.c.seq <= indexed),
        select(_USERS.c.seq).where(_USERS.c.district_id == district_id, _USERS.c.seq > indexed,
                                   _USERS.c.user_sourced_id == user_sourced_id),
    ).subquery("user_seqs")
    # Read as text: one decoding per distinct list (there are few), not one per entry.
    return (select(seqs.c.seq, _ENTRIES.c.app_id, _ENTRIES.c.channel, _ENTRIES.c.endpoint,
                   _ENTRIES.c.disclosed_at, _ENTRIES.c.entity, cast(_ENTRIES.c.fields, Text))
            .select_from(seqs)
            .join(_ENTRIES, (_ENTRIES.c.district_id == district_id)
                  & (_ENTRIES.c.seq == seqs.c.seq))
            .order_by(seqs.c.seq.desc()))


def student_disclosures(session: Session, district_id: int, user_sourced_id: str, *,
                        limit: int | None = 100) -> StudentDisclosures:
    """Every disclosure of ``user_sourced_id``'s records in the district, summarized per app, with
    the ``limit`` newest entries in full (None: all).

    One statement (:func:`student_entries_statement`); rows stay plain tuples and each distinct
    field list is decoded once.
    """
    rows = session.execute(student_entries_statement(district_id, user_sourced_id)).all()
    decoded: dict[str, tuple[str, ...]] = {}
    per_app: dict[int, list[Any]] = {}  # app -> [count, first, last, {entity: set(fields)}]
    for _, app_id, _, _, at, entity, fields in rows:
        names = decoded.get(fields)
        if names is None:
            names = decoded[fields] = tuple(orjson.loads(fields))
        summary = per_app.get(app_id)
        if summary is None:
            summary = per_app[app_id] = [0, at, at, {}]
        summary[0] += 1
        # Newest first: each row is the app's earliest so far, unless clocks went backwards.
        if at < summary[1]:
            summary[1] = at
        if at > summary[2]:
            summary[2] = at
        found = summary[3].get(entity)
        if found is None:
            summary[3][entity] = set(names)
        else:
            found.update(names)
    app_names = dict(session.execute(select(App.id, App.name).where(
        App.id.in_(sorted(per_app)))).all()) if per_app else {}
    apps = tuple(AppDisclosures(app_id=app_id, app_name=app_names.get(app_id), count=count,
                                first=first, last=last,
                                fields={entity: tuple(sorted(found))
                                        for entity, found in sorted(by_entity.items())})
                 for app_id, (count, first, last, by_entity) in sorted(per_app.items()))
    shown = rows if limit is None else rows[:limit]
    entries = tuple(Disclosure(seq=seq, app_id=app_id, app_name=app_names.get(app_id),
                               channel=channel, endpoint=endpoint, disclosed_at=at, entity=entity,
                               fields=decoded[fields])
                    for seq, app_id, channel, endpoint, at, entity, fields in shown)
    return StudentDisclosures(district_id=district_id, user_sourced_id=user_sourced_id,
                              total=len(rows), apps=apps, entries=entries)


# ----------------------------------------------------------------------------------- verifying

@dataclasses.dataclass(frozen=True)
class LedgerProblem:
    """Where a district's chain is broken, and how (``edited``, ``missing``, ``reordered``,
    ``unlinked``, ``head``, ``orphan``)."""

    seq: int | None
    kind: str
    message: str


@dataclasses.dataclass(frozen=True)
class LedgerVerification:
    """The outcome of verifying one district's chain."""

    district_id: int
    entries: int
    first_seq: int | None
    last_seq: int | None
    head_seq: int
    head_hash: str
    checkpoint_seq: int | None
    problems: tuple[LedgerProblem, ...]
    problem_count: int

    @property
    def ok(self) -> bool:
        """Whether the chain is intact."""
        return self.problem_count == 0


def chain_heads(session: Session) -> dict[int, tuple[int, str]]:
    """Each district's chain head as recorded: district id -> (last seq, its hash). Kept apart
    from the ledger (``gateway ledger heads``), these let a restored copy be checked later."""
    return {district_id: (seq, digest) for district_id, seq, digest in session.execute(
        select(_HEADS.c.district_id, _HEADS.c.seq, _HEADS.c.hash).order_by(_HEADS.c.district_id))}


def ledger_district_ids(session: Session) -> list[int]:
    """Every district that has a ledger chain (or a district row: an empty chain verifies)."""
    ids = set(session.execute(select(_HEADS.c.district_id)).scalars())
    ids.update(session.execute(select(_CHECKPOINTS.c.district_id).distinct()).scalars())
    ids.update(session.execute(select(District.id)).scalars())
    return sorted(ids)


def verify_ledger(session: Session, district_id: int) -> LedgerVerification:
    """Recompute one district's chain from its checkpoint (or its start) to its head.

    Reads the entries and their users in seq order, in batches, and reports each break: an entry
    whose content does not match its hash (edited), a gap in the seqs (removed), an entry whose
    previous hash is not its predecessor's (removed, inserted or moved), one that follows an
    earlier entry instead of its predecessor (reordered), users recorded for no entry, and a head
    that does not match the last entry (entries removed at the end).
    """
    problems: list[LedgerProblem] = []
    count = 0

    def report(seq: int | None, kind: str, message: str) -> None:
        nonlocal count
        count += 1
        if len(problems) < MAX_PROBLEMS:
            problems.append(LedgerProblem(seq, kind, message))

    checkpoint = session.execute(
        select(_CHECKPOINTS.c.seq, _CHECKPOINTS.c.hash).where(_CHECKPOINTS.c.district_id == district_id)
        .order_by(_CHECKPOINTS.c.seq.desc()).limit(1)).one_or_none()
    head = session.execute(select(_HEADS.c.seq, _HEADS.c.hash).where(
        _HEADS.c.district_id == district_id)).one_or_none()
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
        users: dict[int, list[str]] = {}
        for seq, user in session.execute(
                select(_USERS.c.seq, _USERS.c.user_sourced_id).where(
                    _USERS.c.district_id == district_id, _USERS.c.seq >= low, _USERS.c.seq <= high)):
            users.setdefault(seq, []).append(user)
        for row in batch:
            count_before = count
            if row.seq > expected_seq:
                missing = (f"entry {expected_seq} is missing" if row.seq == expected_seq + 1 else
                           f"entries {expected_seq} to {row.seq - 1} are missing")
                report(row.seq, "missing", f"{missing} (removed before entry {row.seq})")
            digest = entry_hash(prev_hash=row.prev_hash, district_id=row.district_id,
                                app_id=row.app_id, channel=row.channel, endpoint=row.endpoint,
                                disclosed_at=row.disclosed_at, entity=row.entity,
                                fields=row.fields, record_count=row.record_count,
                                users=users.pop(row.seq, ()))
            if digest != row.hash:
                report(row.seq, "edited",
                       f"entry {row.seq} was edited: its content does not match its hash")
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
        for seq in sorted(users):
            report(seq, "orphan", f"users are recorded for entry {seq}, which does not exist")
        after = high
    orphans = session.execute(select(func.count()).select_from(_USERS).where(
        _USERS.c.district_id == district_id, _USERS.c.seq > (last_seq or expected_seq - 1))
    ).scalar_one()
    if orphans:
        report(None, "orphan", f"{orphans} user rows are recorded after the last entry")
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
    return LedgerVerification(district_id=district_id, entries=entries, first_seq=first_seq,
                              last_seq=last_seq, head_seq=head_seq, head_hash=head_hash,
                              checkpoint_seq=checkpoint.seq if checkpoint else None,
                              problems=tuple(problems), problem_count=count)


# ------------------------------------------------------------------------------------- pruning

@dataclasses.dataclass(frozen=True)
class Pruning:
    """What a pruning run removed from one district's chain."""

    district_id: int
    entries: int
    checkpoint_seq: int | None


def prune_ledger(session: Session, district_id: int, *, before: dt.datetime,
                 now: dt.datetime) -> Pruning:
    """Remove the district's entries disclosed before ``before`` (a prefix of the chain: the
    first entry at or after ``before`` and everything after it stay) and record a checkpoint."""
    head_seq, head_hash, _ = _lock_head(session, district_id)
    first_kept = session.execute(select(func.min(_ENTRIES.c.seq)).where(
        _ENTRIES.c.district_id == district_id, _ENTRIES.c.disclosed_at >= before)).scalar_one()
    last_pruned = head_seq if first_kept is None else first_kept - 1
    first_present = session.execute(select(func.min(_ENTRIES.c.seq)).where(
        _ENTRIES.c.district_id == district_id)).scalar_one()
    if first_present is None or last_pruned < first_present:
        return Pruning(district_id=district_id, entries=0, checkpoint_seq=None)
    if last_pruned == head_seq:
        last_hash = head_hash
    else:
        last_hash = session.execute(select(_ENTRIES.c.hash).where(
            _ENTRIES.c.district_id == district_id, _ENTRIES.c.seq == last_pruned)).scalar_one()
    # The index rows of the pruned entries, found through them (seeks, not a scan of the index).
    session.execute(delete(_INDEX).where(
        _INDEX.c.district_id == district_id,
        tuple_(_INDEX.c.user_sourced_id, _INDEX.c.seq).in_(
            select(_USERS.c.user_sourced_id, _USERS.c.seq).where(
                _USERS.c.district_id == district_id, _USERS.c.seq <= last_pruned))))
    session.execute(delete(_USERS).where(_USERS.c.district_id == district_id,
                                         _USERS.c.seq <= last_pruned))
    removed = session.execute(delete(_ENTRIES).where(_ENTRIES.c.district_id == district_id,
                                                     _ENTRIES.c.seq <= last_pruned)).rowcount
    session.execute(insert(_CHECKPOINTS).values(district_id=district_id, seq=last_pruned,
                                                hash=last_hash, pruned_at=now, entry_count=removed,
                                                cutoff=before))
    return Pruning(district_id=district_id, entries=removed, checkpoint_seq=last_pruned)
