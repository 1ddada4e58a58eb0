"""Scope snapshots: a restricted policy's row scope, materialized once per policy revision and
district data version, so that requests probe a table instead of re-deriving the scope.

Why: a policy's scope (:mod:`gateway.sharing.scope`) is defined over the district's classes,
grades and enrollments. Evaluated per statement, a district of a million users pays for it on
every request: the in-scope classes are recomputed (JSON grade tests over every class), and a
page of visible users in id order walks every invisible user before it, so a restricted page
costs in proportion to the district rather than to the page (``benchmarks/rostering_bench.py``
measures it). But
the scope only changes when the policy does or when an import changes the district's data, and
both are rare, so it is computed then and kept:

- ``scope_snapshots``: one row per (policy id, policy revision, district data version);
- ``scope_members``: its rows, by kind: ``c`` in-scope classes, ``u`` visible users, ``s``
  visible students (only when the policy shares demographics and not every user), each with the
  row's primary key and sourcedId.

The snapshot is built from the very predicates it replaces (``Scope`` without a snapshot), in the
transaction that changes its inputs: :func:`refresh_district_snapshots` in an import's, after the
data version is bumped; :func:`refresh_policy_snapshot` in ``set_policy``'s. A reader therefore
never sees a data version (or revision) without its snapshot, and older snapshots can be deleted
in the same transaction (readers of the older version keep reading their own, MVCC). A database
migrated from before snapshots existed, or data changed another way, has none for the current
version: :func:`snapshot_ready` says so, the request falls back to the live predicates (same
rows, slower) and :func:`build_missing_snapshot` builds it on a connection of its own. After
the building transaction commits, :func:`settle_snapshots` readies the new rows for index-only
reads on PostgreSQL.

Requests name their snapshot by :func:`current_snapshot_id`, a scalar subquery resolved by each
statement against the policy revision and data version *that statement* sees, so a statement can
never pair one version's data with another version's scope.
"""
from __future__ import annotations

import datetime as dt
import functools
import logging
from typing import Any

from sqlalchemy import (Engine, and_, bindparam, delete, exists, func, insert, literal, select,
                        union_all)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from gateway.sharing.policy import Policy, PolicyError, parse_policy
from gateway.sharing.scope import CLASS_MEMBER, STUDENT_MEMBER, USER_MEMBER, Scope
from gateway.store.models import Class, District, User, utcnow
from gateway.store.events import append_events
from gateway.store.rostering import district_data_version
from gateway.store.sharing import ScopeMember, ScopeSnapshot, SharingPolicy

logger = logging.getLogger(__name__)

_SNAPSHOTS = ScopeSnapshot.__table__
_MEMBERS = ScopeMember.__table__
_POLICIES = SharingPolicy.__table__
_DISTRICTS = District.__table__
_CLASSES = Class.__table__
_USERS = User.__table__


def needs_snapshot(policy: Policy | None) -> bool:
    """Whether the policy hides anything of a district's rows (a whole-district policy needs no
    scope, and no policy sees nothing)."""
    return policy is not None and not policy.whole_district


def shares_students_apart(policy: Policy) -> bool:
    """Whether the snapshot keeps visible students apart from visible users: only demographics
    ask which users are students, and with ``allUsers`` they ask for every visible user."""
    return policy.shares_entity("demographics") and not policy.all_users


# Built once: aliasing tables is the costly part of building this per request.
_CUR_SNAPSHOT = _SNAPSHOTS.alias("cur_snapshot")
_CUR_POLICY = _POLICIES.alias("cur_policy")
_CUR_DISTRICT = _DISTRICTS.alias("cur_district")
_CUR_FROM = (_CUR_SNAPSHOT
             .join(_CUR_POLICY, and_(_CUR_POLICY.c.id == _CUR_SNAPSHOT.c.policy_id,
                                     _CUR_POLICY.c.revision == _CUR_SNAPSHOT.c.policy_revision))
             .join(_CUR_DISTRICT, and_(_CUR_DISTRICT.c.id == _CUR_SNAPSHOT.c.district_id,
                                       _CUR_DISTRICT.c.data_version == _CUR_SNAPSHOT.c.data_version)))


@functools.lru_cache(maxsize=4096)
def current_snapshot_id(app_id: int, district_id: int) -> ColumnElement[Any]:
    """A scalar subquery: the snapshot of the app's current policy revision at the district's
    current data version, as the statement it is part of sees them (NULL if there is none).
    Immutable, so made once per app and district."""
    return (select(_CUR_SNAPSHOT.c.id).select_from(_CUR_FROM)
            .where(_CUR_POLICY.c.app_id == app_id, _CUR_POLICY.c.district_id == district_id)
            .correlate(None).scalar_subquery())


_READY = (select(_CUR_SNAPSHOT.c.id).select_from(_CUR_FROM)
          .where(_CUR_POLICY.c.app_id == bindparam("app"),
                 _CUR_POLICY.c.district_id == bindparam("district")))


def snapshot_ready(session: Session, app_id: int, district_id: int) -> bool:
    """Whether the app's current policy has its snapshot at the district's current data version."""
    found = session.execute(_READY, {"app": app_id, "district": district_id}).scalar()
    return found is not None


def _insert_snapshot(conn: Connection, values: dict[str, Any]) -> int | None:
    """Claim the snapshot row; None if another transaction already built (or is building) it."""
    builder = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = builder(_SNAPSHOTS).values(**values).on_conflict_do_nothing().returning(_SNAPSHOTS.c.id)
    return conn.execute(statement).scalar()


def build_snapshot(conn: Connection, *, policy_id: int, revision: int, district_id: int,
                   data_version: int, policy: Policy, app_id: int | None = None,
                   now: dt.datetime | None = None) -> int | None:
    """Materialize ``policy``'s scope for this revision and data version, and drop the policy's
    other snapshots; returns the new snapshot's id (None: it already existed).

    With ``app_id``, the users and classes that entered or left the scope since the policy's
    previous snapshot go to the change feed as that app's ``entered``/``left`` events (an
    import's refresh: the data moved the scope; :func:`gateway.sharing.service.set_policy`
    records a policy's own changes itself)."""
    snapshot_id = _insert_snapshot(conn, {
        "policy_id": policy_id, "policy_revision": revision, "district_id": district_id,
        "data_version": data_version, "built_at": utcnow()})
    if snapshot_id is None:
        return None
    # The live predicates, evaluated once over the district: "sets" computes each set once per
    # statement instead of probing per row.
    scope = Scope(policy, district_id, conn.dialect.name, strategy="sets")
    columns = ["snapshot_id", "kind", "row_id", "sourced_id"]
    k, u = _CLASSES.alias("snap_class"), _USERS.alias("snap_user")
    parts = [(CLASS_MEMBER, k, scope.where("class", k)), (USER_MEMBER, u, scope.where("user", u))]
    if shares_students_apart(policy):
        s = _USERS.alias("snap_student")
        parts.append((STUDENT_MEMBER, s, and_(s.c.district_id == district_id,
                                       scope.student_visible(s.c.sourced_id, s.c.grades))))
    for kind, table, condition in parts:
        conn.execute(insert(_MEMBERS).from_select(columns, select(
            literal(snapshot_id), literal(kind), table.c.id, table.c.sourced_id).where(condition)))
    if conn.dialect.name == "postgresql":
        # The planner's row estimates for the new members (autovacuum would come much later),
        # before the scope moves below are compared with them.
        conn.exec_driver_sql("ANALYZE scope_members")
    if app_id is not None:
        _record_scope_moves(conn, policy_id, snapshot_id, app_id, district_id, now or utcnow())
    _drop_snapshots(conn, and_(_SNAPSHOTS.c.policy_id == policy_id, _SNAPSHOTS.c.id != snapshot_id))
    return snapshot_id


_MOVED_KINDS = {CLASS_MEMBER: "class", USER_MEMBER: "user"}


def _record_scope_moves(conn: Connection, policy_id: int, snapshot_id: int, app_id: int,
                        district_id: int, now: dt.datetime) -> int:
    """Append the app's ``entered``/``left`` events: members of the new snapshot missing from
    the policy's previous one and the reverse (nothing without a previous snapshot, whose scope
    is unknown here). Set-based: two anti-joins per kind over the scope, not over the district."""
    previous = conn.execute(select(func.max(_SNAPSHOTS.c.id)).where(
        _SNAPSHOTS.c.policy_id == policy_id, _SNAPSHOTS.c.id != snapshot_id)).scalar()
    if previous is None:
        return 0
    parts = []
    for member_kind, entity in _MOVED_KINDS.items():
        for event, here, there in (("entered", snapshot_id, previous),
                                   ("left", previous, snapshot_id)):
            a, b = _MEMBERS.alias(), _MEMBERS.alias()
            parts.append(select(
                literal(app_id).label("app_id"), literal(entity).label("entity"),
                a.c.sourced_id.label("sourced_id"), literal(event).label("kind"),
                a.c.row_id.label("ord"))
                .where(a.c.snapshot_id == here, a.c.kind == member_kind,
                       ~exists().where(b.c.snapshot_id == there, b.c.kind == member_kind,
                                       b.c.row_id == a.c.row_id)))
    return append_events(conn, district_id, union_all(*parts), "ord", now)


def _drop_snapshots(conn: Connection, which: ColumnElement[bool]) -> None:
    ids = select(_SNAPSHOTS.c.id).where(which)
    conn.execute(delete(_MEMBERS).where(_MEMBERS.c.snapshot_id.in_(ids)))
    conn.execute(delete(_SNAPSHOTS).where(which))


def refresh_policy_snapshot(conn: Connection, policy_id: int, *,
                            record_moves: bool = False) -> int | None:
    """Bring one stored policy's snapshot to its current revision and its district's current data
    version (or drop its snapshots, if it restricts nothing). Call it in the transaction that
    changed either. ``record_moves``: the change feed gets what entered or left the scope."""
    row = conn.execute(select(_POLICIES.c.id, _POLICIES.c.revision, _POLICIES.c.district_id,
                              _POLICIES.c.app_id, _POLICIES.c.document)
                       .where(_POLICIES.c.id == policy_id)).one()
    try:
        policy = parse_policy(row.document)
    except PolicyError:
        # A stored document that no longer parses is refused at request time as well.
        logger.warning("sharing policy %s does not parse; no scope snapshot built", policy_id)
        return None
    if not needs_snapshot(policy):
        _drop_snapshots(conn, _SNAPSHOTS.c.policy_id == policy_id)
        return None
    return build_snapshot(conn, policy_id=row.id, revision=row.revision,
                          district_id=row.district_id,
                          data_version=district_data_version(conn, row.district_id), policy=policy,
                          app_id=row.app_id if record_moves else None)


def refresh_district_snapshots(conn: Connection, district_id: int, *,
                               record_moves: bool = True) -> int:
    """Refresh the snapshots of every policy of the district (after an import changed its data);
    returns how many were built. ``record_moves``: what entered or left each app's scope goes to
    the change feed (off for a repair, which changes no data)."""
    policy_ids = conn.execute(select(_POLICIES.c.id).where(
        _POLICIES.c.district_id == district_id).order_by(_POLICIES.c.id)).scalars().all()
    return sum(refresh_policy_snapshot(conn, policy_id, record_moves=record_moves) is not None
               for policy_id in policy_ids)


def settle_snapshots(engine: Engine) -> None:
    """After a transaction that built snapshots has committed: on PostgreSQL, VACUUM (and
    ANALYZE) the members table, so that requests probing it get index-only scans at once.

    Why: until a vacuum marks the new rows' pages all-visible, every index-only probe of
    ``scope_members`` also visits the heap (a measurable share of a restricted app's deep pages,
    see ``benchmarks/rostering_bench.py``), and autovacuum comes a minute or more
    later. VACUUM cannot run inside a transaction, hence a separate call on an autocommit
    connection. SQLite needs nothing. Failures are logged, not raised: the snapshot is valid
    without it, only slower to read."""
    if engine.dialect.name != "postgresql":
        return
    try:
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                "VACUUM (ANALYZE) scope_members, scope_snapshots")
    except SQLAlchemyError:
        logger.exception("could not vacuum the scope snapshots")


def build_missing_snapshot(bind: Engine | Connection, app_id: int, district_id: int) -> bool:
    """Build the app's current snapshot in a transaction of its own (the caller's transaction only
    reads, and on SQLite must not become a writer). Only with an engine (a caller bound to one
    connection cannot get a second one); returns whether a snapshot was built. Failures are
    logged, not raised: the caller still has the live predicates."""
    if not isinstance(bind, Engine):
        return False
    try:
        with bind.begin() as conn:
            policy_id = conn.execute(select(_POLICIES.c.id).where(
                _POLICIES.c.app_id == app_id, _POLICIES.c.district_id == district_id)).scalar()
            if policy_id is None:
                return False
            # Not settled here: the calling request's open transaction is older than these
            # rows, so a VACUUM now could not mark them all-visible; autovacuum will.
            return refresh_policy_snapshot(conn, policy_id) is not None
    except SQLAlchemyError:
        logger.exception("could not build the scope snapshot of app %s in district %s",
                         app_id, district_id)
        return False
