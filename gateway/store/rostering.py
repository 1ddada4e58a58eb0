"""The rostering reads: SQLAlchemy Core queries per OneRoster entity and per nested relation, and
paging that stays fast in a district of a million users.

What is here, and who uses it: :mod:`gateway.oneroster.service` turns a REST request into a
:class:`RecordQuery` (the WHERE and ORDER BY of one collection read) from the pieces below --
:func:`record_conditions` (district, kind, visibility), :func:`relation_clause` (the nested
collections, each a :class:`Relation` in :data:`RELATIONS`: data, not code), :func:`holds_role`
(what ``/students`` and ``roles.*`` filters mean) -- and reads it with :func:`count_records` and :func:`fetch_page`; :func:`fetch_related` then batch-fetches what a
page embeds (a user's roles and profiles, an org's or session's children): one query per kind of
related row for the whole page, never one per record.

Visibility: every function that reads roster records takes a ``scope`` -- anything with
``where(entity, table)``, in practice a :class:`gateway.sharing.visibility.Visibility` -- and ANDs
its predicate into the query: collections, nested paths (including the link rows a nested path
follows), counts, by-id reads, parent checks and embedded children alike.

Membership rules (status ``tobedeleted`` is served, so apps can sync deletions):

- A collection or by-id read serves records of every status.
- A user's roles are its active role rows, or all of them when none is active: a retired user
  (whose roles an import retired with it) keeps the roles it had, so it is still served with the
  required ``roles`` and still found in ``/students`` by a client syncing deletions, while a user
  who went from student to teacher is a teacher only. ``/students``, ``/teachers`` and ``roles.*``
  filters use the same rule as the records served (:func:`holds_role`).
- Nested lists that follow link rows (enrollments, roles) are current memberships: only active
  enrollments put a user in a class's students or a class in a user's classes. Nested lists that
  follow a record's own reference (a class's school, a course's org) serve every status.

Paging without the two cliffs of a large table (a per-request ``COUNT(*)`` and a deep ``OFFSET``):

*Counts.* ``X-Total-Count`` needs the number of matching rows, and ``COUNT(*)`` over a million
rows costs tens of milliseconds. A district's rows change only through an import, which bumps
``districts.data_version``; so a count is remembered in an in-process LRU (:class:`PageCache`)
under the query's ``cache_key``, which the caller builds from the district, its data version, the
operation, the resolved parent ids, the filter (with resolved ids) and the visibility's identity.
A new import changes the version, so stale entries are simply never asked for again and age out.
Each process pays one count per (version, query) instead of one per request.

*Deep offsets: anchors.* ``OFFSET 500000`` makes the database walk and discard 500,000 rows. The
first time a query is read at an offset of at least ``stride`` (1000 rows), one pass with
``row_number() OVER (ORDER BY ...)`` keeps the sort key of every ``stride``-th row -- the
"anchors", 1,000 small tuples for a million rows -- and remembers them in a second, smaller LRU
under the query's key plus its sort. A read at offset ``k`` then seeks from anchor
``j = k // stride`` (the key of row ``j * stride - 1``) with a keyset predicate ("rows after this
key", an index range on the default primary-key order) and skips only ``k - j * stride`` rows.
Keys are unique because the primary key always ends the sort, so the rows after anchor ``j`` are
exactly the rows from position ``j * stride`` on, and pages are identical to plain ``OFFSET``
ones (the tests compare them for every offset, sort direction and nullable sort column). Anchors
are keyed on the data version too, so an import never leaves a stale one in use.

*The data version itself* is not a query of its own on the hot path: the caller assumes the
version it last saw (:meth:`PageCache.data_version`) and :func:`fetch_page_and_version` reads the
current one in the page's own statement (a scalar subquery on the districts primary key); when
they differ, an import happened and the caller reads again under the new version.

The default order is the primary key (insertion order), served by ``(district_id, id)`` indexes:
every page at offset 0 is an index range that stops after ``limit`` rows, every deep page a seek
from an anchor. Nested collections found through link rows (a class's students) read those few
rows through the link table's index and sort them (:attr:`RecordQuery.selective`). Rows are
fetched without SQLAlchemy's per-value result processing (:func:`_unprocessed`) and handed on as
plain dicts; a page's roles come in one query, its profiles in one more only when one of its users
holds a profile (who does is remembered per data version).
"""
from __future__ import annotations

import dataclasses
import functools
from types import MappingProxyType
from typing import Any, Collection, Hashable, Mapping, Protocol, Sequence

import orjson
from sqlalchemy import (JSON, Column, Integer, Table, and_, bindparam, exists, false, func, or_,
                        select, type_coerce)
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import NullType

from gateway.caching import LRUCache
from gateway.store.models import (AcademicSession, Class, ClassTerm, Course, Demographics, District,
                                  Enrollment, Org, Role, User, UserAgent, UserProfile)
from gateway.store.resources import class_resources, course_resources, resources, user_resources

ACTIVE = "active"
TOBEDELETED = "tobedeleted"

districts: Table = District.__table__
orgs: Table = Org.__table__
academic_sessions: Table = AcademicSession.__table__
courses: Table = Course.__table__
classes: Table = Class.__table__
class_terms: Table = ClassTerm.__table__
users: Table = User.__table__
user_agents: Table = UserAgent.__table__
roles: Table = Role.__table__
user_profiles: Table = UserProfile.__table__
enrollments: Table = Enrollment.__table__
demographics: Table = Demographics.__table__

ENTITY_TABLES: Mapping[str, Table] = MappingProxyType({
    "org": orgs, "academicSession": academic_sessions, "course": courses, "class": classes,
    "user": users, "enrollment": enrollments, "demographics": demographics})
"""The table of each OneRoster rostering entity, by entity name (``gateway.oneroster.schemas``)."""

READ_TABLES: Mapping[str, Table] = MappingProxyType({**ENTITY_TABLES, "resource": resources})
"""The table of every entity the read path serves (the rostering entities and the Resources
service's ``resource``), by entity name: what the page reader looks an entity's table up in."""

LINK_TABLES: Mapping[str, Table] = MappingProxyType({t.name: t for t in (class_terms, user_agents)})
"""The link tables indexing lists of references (a class's terms, a user's agents), by name."""

RESOURCE_LINK_TABLES: Mapping[str, Table] = MappingProxyType({
    t.name: t for t in (class_resources, course_resources, user_resources)})
"""The links of the resources files giving a class, a course or a user its ``resources``, by
name: records of their own, of which only the active ones count."""

# Not part of any representation: the import's fingerprint, a password hash, and the surrogate
# keys (records are named by sourcedId within their district).
_UNSERVED_COLUMNS = frozenset({"row_hash", "password_hash", "id", "district_id", "rendered",
                               "rendered_fields"})


def _unprocessed(column: Column[Any]) -> ColumnElement[Any]:
    """``column`` as the driver returns it, without SQLAlchemy's per-value result processing.

    On the hot path that processing costs more than the query: on SQLite every date is parsed by
    a regular expression and every JSON value by the standard library. Unprocessed, SQLite gives
    dates as ISO strings (the serializer takes those) and JSON as text (parsed by orjson in
    :func:`_records`); psycopg already gives native values.
    """
    return type_coerce(column, NullType()).label(column.name)


_RECORD_COLUMNS: dict[str, tuple[ColumnElement[Any], ...]] = {
    name: tuple(_unprocessed(c) for c in table.c if c.name not in _UNSERVED_COLUMNS)
    for name, table in READ_TABLES.items()}
_RENDERED_COLUMNS: dict[str, tuple[ColumnElement[Any], ...]] = {
    name: tuple(_unprocessed(table.c[c]) for c in ("sourced_id", "rendered", "rendered_fields")
                + (("user_sourced_id",) if name == "enrollment" else ()))
    # Only the rostering tables keep renderings.
    for name, table in ENTITY_TABLES.items()}
_JSON_COLUMNS: dict[str, tuple[str, ...]] = {
    name: tuple(c.name for c in table.c
                if c.name not in _UNSERVED_COLUMNS and isinstance(c.type, JSON))
    for name, table in READ_TABLES.items()}

Record = dict[str, Any]
"""A row as the serializer takes it: values by store column name."""


def _records(result: Any, json_columns: Sequence[str] = ()) -> list[Record]:
    """The rows of ``result`` as dicts (a dict lookup is several times cheaper than one through a
    Row's mapping, and the serializer makes a dozen per row), JSON text parsed."""
    keys = tuple(result.keys())
    records = [dict(zip(keys, row)) for row in result.all()]
    loads = orjson.loads
    for name in json_columns:
        for record in records:
            value = record[name]
            if value.__class__ is str:
                record[name] = loads(value)
    return records


def read_records(conn: Connection, statement: Any, entity: str,
                 params: Mapping[str, Any] | None = None) -> list[Record]:
    """The rows of ``statement`` (columns of ``entity``'s table) as records, JSON parsed."""
    return _records(conn.execute(statement, params or {}), _JSON_COLUMNS[entity])


def write_renderings(conn: Connection, update: str, rows: Sequence[tuple[bytes, int, int]]) -> None:
    """Run ``update`` (an UPDATE with ``{p}`` for each of rendered, rendered_fields and id) for
    every ``rows`` item, in one batch on the driver's cursor (no per-row statement objects)."""
    cursor = conn.connection.cursor()
    try:
        cursor.executemany(update.format(p="%s" if conn.dialect.name == "postgresql" else "?"),
                           rows)
    finally:
        cursor.close()


class RowScope(Protocol):
    """What the store needs of a visibility: a predicate per entity table (None: nothing hidden)."""

    def where(self, entity: str, table: Table) -> ColumnElement[bool] | None:
        """The rows of ``table`` (entity ``entity``) that may be read."""


def _visible(scope: RowScope, entity: str) -> list[ColumnElement[bool]]:
    clause = scope.where(entity, READ_TABLES[entity])
    return [] if clause is None else [clause]


def _current(table: Table) -> ColumnElement[bool]:
    """The row is active. Spelled ``<> 'tobedeleted'`` (status has only the two values): an
    equality would tempt SQLite, lacking statistics, into the (district_id, status) index, which
    reads every active row of the district instead of the few the other terms select."""
    return table.c.status != TOBEDELETED


def rendered_columns(entity: str) -> tuple[ColumnElement[Any], ...]:
    """The columns selected to serve ``entity`` records as rendered: the stored id, the
    rendering and its field bits (NULL when not rendered), and an enrollment's user (the person
    the ledger records)."""
    return _RENDERED_COLUMNS[entity]


def record_columns(entity: str) -> tuple[ColumnElement[Any], ...]:
    """The columns selected for records of ``entity``: all but the unserved ones."""
    return _RECORD_COLUMNS[entity]


# ----------------------------------------------------------------------------- kinds and relations

_other_roles = roles.alias("other_roles")


def holds_role(*conditions: ColumnElement[bool]) -> ColumnElement[bool]:
    """EXISTS one of the user's roles (``users`` row of the enclosing query) meeting
    ``conditions``. A user's roles are its active role rows, or all of them when none is active
    (a retired user's): the roles it is served with, so /students, /teachers and ``roles.*``
    filters agree with the records they return.

    Probes ``ix_roles_district_id_role_user_sourced_id`` (or ``..._user_sourced_id``) per user;
    the inner probe runs only for a retired role row.
    """
    return exists().where(
        roles.c.district_id == users.c.district_id, roles.c.user_sourced_id == users.c.sourced_id,
        *conditions,
        or_(_current(roles),
            # Correlated to the role row (the enclosing query), which names the same user.
            ~exists().where(_other_roles.c.district_id == roles.c.district_id,
                            _other_roles.c.user_sourced_id == roles.c.user_sourced_id,
                            _other_roles.c.status != TOBEDELETED)))


Kind = str | tuple[str, ...] | None
"""A subset of an entity's records (see :func:`kind_clause`)."""


def kind_clause(entity: str, kind: Kind) -> ColumnElement[bool] | None:
    """The condition for the subset ``kind`` of ``entity`` (``endpoints.KIND_RULES``; a tuple of
    org or academic session types: any of them), or None."""
    if kind is None:
        return None
    if isinstance(kind, tuple):
        if entity not in ("org", "academicSession"):
            raise ValueError(f"{entity} records have no types")
        return READ_TABLES[entity].c.type.in_(kind)
    if entity in ("org", "academicSession"):
        return READ_TABLES[entity].c.type == kind
    if entity == "user":
        return holds_role(roles.c.role == kind)
    raise ValueError(f"{entity} records have no kinds")


@functools.lru_cache(maxsize=1024)
def _in_district(entity: str, district_id: int) -> ColumnElement[bool]:
    # Made once per entity and district: building the comparison (its bound parameter, its type
    # coercion) cost a page about 35 µs of CPU, and clauses are immutable, so sharing is safe.
    return READ_TABLES[entity].c.district_id == district_id


def record_conditions(entity: str, district_id: int, scope: RowScope,
                      kind: Kind = None, visible: bool = True) -> list[ColumnElement[bool]]:
    """The district's records of ``entity`` (of ``kind``) that ``scope`` lets through; without
    ``scope``'s own predicate when ``visible`` is false (a :class:`Driver` of the scope's then
    lists the rows), though it is still asked for, so that the scope knows it was used."""
    conditions = [_in_district(entity, district_id)]
    clause = kind_clause(entity, kind)
    if clause is not None:
        conditions.append(clause)
    scoped = _visible(scope, entity)
    if visible:
        conditions.extend(scoped)
    return conditions


@dataclasses.dataclass(frozen=True, slots=True)
class Step:
    """One hop of a nested collection, from the ids reached so far to the next ones: the rows of
    ``table`` whose ``key`` names one of those ids (equals the parent's id on the first hop, is
    IN the previous hop's ids after it), meeting ``conditions``, give the ids in ``value``.
    ``entity``, when the rows are roster records (enrollments, classes), ANDs the visibility's
    predicate for it into the hop."""

    table: Table
    key: Column[Any]
    value: Column[Any]
    conditions: tuple[ColumnElement[bool], ...] = ()
    entity: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Relation:
    """A nested collection (``/schools/{id}/classes``...) as data the page reader follows: the
    ``entity`` records whose ``column`` names the innermost parent directly (no ``steps``), or is
    IN the ids reached by following ``steps`` from it; and meeting ``conditions``."""

    entity: str
    column: Column[Any]
    steps: tuple[Step, ...] = ()
    conditions: tuple[ColumnElement[bool], ...] = ()

    def clause(self, district_id: int, parent_id: str, scope: RowScope) -> ColumnElement[bool]:
        """The condition on the entity's table for the records related to ``parent_id``."""
        if not self.steps:
            return and_(self.column == parent_id, *self.conditions)
        reached: Any = None
        for step in self.steps:
            named = step.key == parent_id if reached is None else step.key.in_(reached)
            visible = _visible(scope, step.entity) if step.entity is not None else []
            reached = select(step.value).where(step.table.c.district_id == district_id, named,
                                               *step.conditions, *visible)
        return and_(self.column.in_(reached), *self.conditions)


# IN (subquery) rather than EXISTS throughout: the planner starts from the parent's few link rows
# (e.g. ix_enrollments_district_id_class_sourced_id_role for a class's students) instead of
# walking every row of the entity's table.
def _class_members(role: str) -> Relation:
    return Relation("user", users.c.sourced_id, (Step(
        enrollments, enrollments.c.class_sourced_id, enrollments.c.user_sourced_id,
        (enrollments.c.role == role, _current(enrollments)), "enrollment"),))


def _enrolled_classes(role: str | None) -> Relation:
    conditions = (_current(enrollments),) + (() if role is None else (enrollments.c.role == role,))
    return Relation("class", classes.c.sourced_id, (Step(
        enrollments, enrollments.c.user_sourced_id, enrollments.c.class_sourced_id, conditions,
        "enrollment"),))


def _school_role_holders(role: str) -> Relation:
    return Relation("user", users.c.sourced_id, (Step(
        roles, roles.c.org_sourced_id, roles.c.user_sourced_id,
        (roles.c.role == role, _current(roles))),))


def _linked_resources(link: Table, owner: Column[Any]) -> Relation:
    return Relation("resource", resources.c.sourced_id, (Step(
        link, owner, link.c.resource_sourced_id, (_current(link),)),))


RELATIONS: Mapping[str, Relation] = MappingProxyType({
    "class_students": _class_members("student"),
    "class_teachers": _class_members("teacher"),
    "course_classes": Relation("class", classes.c.course_sourced_id),
    "school_classes": Relation("class", classes.c.school_sourced_id),
    # The class is checked to be the school's before this runs (see :func:`record_exists`).
    "school_class_enrollments": Relation("enrollment", enrollments.c.class_sourced_id),
    "school_class_students": _class_members("student"),
    "school_class_teachers": _class_members("teacher"),
    "school_courses": Relation("course", courses.c.org_sourced_id),
    "school_enrollments": Relation("enrollment", enrollments.c.school_sourced_id),
    "school_students": _school_role_holders("student"),
    "school_teachers": _school_role_holders("teacher"),
    # Academic sessions carry no org: a school's terms are the terms its classes are taught in.
    # Nested INs, so the plan starts from the school's classes (ix_classes_district_id_school_...)
    # and probes their terms, instead of reading every class_terms row of the district.
    "school_terms": Relation(
        "academicSession", academic_sessions.c.sourced_id,
        (Step(classes, classes.c.school_sourced_id, classes.c.sourced_id, entity="class"),
         Step(class_terms, class_terms.c.class_sourced_id, class_terms.c.term_sourced_id)),
        (academic_sessions.c.type == "term",)),
    "student_classes": _enrolled_classes("student"),
    "teacher_classes": _enrolled_classes("teacher"),
    "term_classes": Relation("class", classes.c.sourced_id, (Step(
        class_terms, class_terms.c.term_sourced_id, class_terms.c.class_sourced_id),)),
    "term_grading_periods": Relation("academicSession", academic_sessions.c.parent_sourced_id,
                                     conditions=(academic_sessions.c.type == "gradingPeriod",)),
    "user_classes": _enrolled_classes(None),
    # The Resources service: a resource is a class's, a course's or a person's through an active
    # link row of the CSV binding's classResources, courseResources or userResources file.
    "class_resources": _linked_resources(class_resources, class_resources.c.class_sourced_id),
    "course_resources": _linked_resources(course_resources, course_resources.c.course_sourced_id),
    "user_resources": _linked_resources(user_resources, user_resources.c.user_sourced_id),
})
"""The nested collections, by the name ``gateway.oneroster.endpoints`` gives them: what each
reads, as data :func:`relation_clause` follows."""

RELATION_NAMES: frozenset[str] = frozenset(RELATIONS)
"""The nested collections implemented here (``gateway.oneroster.endpoints.RELATIONS``)."""


def relation_clause(relation: str, district_id: int, parent_ids: Sequence[str],
                    scope: RowScope) -> ColumnElement[bool]:
    """The condition selecting the records of nested collection ``relation`` for its parents'
    stored sourcedIds (outermost first), the link rows it follows filtered by ``scope``."""
    return RELATIONS[relation].clause(district_id, parent_ids[-1], scope)


def relation_entity(relation: str) -> str:
    """The entity a nested collection returns."""
    return RELATIONS[relation].entity


# A record nested in another: the column of the inner record naming the outer one.
_BELONGS_TO: Mapping[tuple[str, str], Column[Any]] = MappingProxyType({
    ("class", "org"): classes.c.school_sourced_id})


def record_exists(conn: Connection, entity: str, district_id: int, sourced_id: str,
                  scope: RowScope, kind: Kind = None,
                  within: tuple[str, str] | None = None) -> bool:
    """Whether the district has a visible ``entity`` record ``sourced_id`` of ``kind``; ``within``
    (outer entity, its sourcedId) also requires it to belong to that record (a school's class)."""
    table = READ_TABLES[entity]
    conditions = record_conditions(entity, district_id, scope, kind)
    conditions.append(table.c.sourced_id == sourced_id)
    if within is not None:
        conditions.append(_BELONGS_TO[(entity, within[0])] == within[1])
    return conn.execute(select(table.c.id).where(*conditions).limit(1)).first() is not None


def fetch_records(conn: Connection, entity: str, district_id: int,
                  sourced_ids: Sequence[str]) -> list[Record]:
    """The district's ``entity`` records ``sourced_ids`` (already known visible), in that order."""
    table = READ_TABLES[entity]
    found = read_records(conn, select(*record_columns(entity)).where(
        table.c.district_id == district_id, table.c.sourced_id.in_(list(sourced_ids))), entity)
    by_id = {record["sourced_id"]: record for record in found}
    return [by_id[sourced_id] for sourced_id in sourced_ids if sourced_id in by_id]


def find_record(conn: Connection, entity: str, district_id: int, sourced_id: str,
                scope: RowScope, kind: Kind = None) -> Record | None:
    """The visible record ``sourced_id`` of ``entity`` (of ``kind``) in the district, or None.

    One probe of the ``(district_id, sourced_id)`` unique index.
    """
    record, _version = find_record_and_version(conn, entity, district_id, sourced_id, scope, kind)
    return record


def find_record_and_version(conn: Connection, entity: str, district_id: int, sourced_id: str,
                            scope: RowScope, kind: Kind = None, rendered: bool = False
                            ) -> tuple[Record | None, int | None]:
    """:func:`find_record`, and the district's data version read by the same statement (None
    when there is no record). ``rendered``: the record's rendering (:func:`rendered_columns`)
    instead of its columns."""
    table = READ_TABLES[entity]
    columns = rendered_columns(entity) if rendered else record_columns(entity)
    statement = select(*columns, _DATA_VERSION.label(_DATA_VERSION_COLUMN)).where(
        *record_conditions(entity, district_id, scope, kind), table.c.sourced_id == sourced_id)
    found = _records(conn.execute(statement, {"district_id": district_id}),
                     () if rendered else _JSON_COLUMNS[entity])
    if not found:
        return None, None
    record = found[0]
    return record, record.pop(_DATA_VERSION_COLUMN) or 0


_DATA_VERSION = (select(func.coalesce(districts.c.data_version, 0))
                 .where(districts.c.id == bindparam("district_id")).scalar_subquery())
_DATA_VERSION_COLUMN = "_data_version"


def district_data_version(conn: Connection, district_id: int) -> int:
    """The district's data version (bumped by every import that changed something)."""
    version = conn.execute(select(_DATA_VERSION), {"district_id": district_id}).scalar_one_or_none()
    return version or 0


# ---------------------------------------------------------------------------------- related rows

RELATED_FIELDS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "user": ("roles", "userProfiles", "resources"), "org": ("children",),
    "academicSession": ("children",), "class": ("resources",), "course": ("resources",)})
"""The REST fields of each entity read from other rows, which :func:`fetch_related` fetches."""


# Built once: on the hot path, building a statement (and coercing a list literal for IN) costs
# more than running it. Only the columns the serializer reads are selected.
_ROLES_OF_USERS = (
    select(*map(_unprocessed, (roles.c.user_sourced_id, roles.c.status, roles.c.role_type,
                               roles.c.role, roles.c.org_sourced_id,
                               roles.c.user_profile_sourced_id, roles.c.begin_date,
                               roles.c.end_date)))
    .where(roles.c.district_id == bindparam("district_id"),
           roles.c.user_sourced_id.in_(bindparam("ids", expanding=True)))
    .order_by(roles.c.id))
# A profile's stored credential password is not selected: serving it is not a default.
_PROFILES_OF_USERS = (
    select(*map(_unprocessed, (user_profiles.c.user_sourced_id, user_profiles.c.sourced_id,
                               user_profiles.c.profile_type, user_profiles.c.vendor_id,
                               user_profiles.c.application_id, user_profiles.c.description,
                               user_profiles.c.credential_type, user_profiles.c.username)))
    .where(user_profiles.c.district_id == bindparam("district_id"),
           user_profiles.c.user_sourced_id.in_(bindparam("ids", expanding=True)),
           _current(user_profiles))
    .order_by(user_profiles.c.id))
# Few users have profiles. Knowing which (per data version, up to this many) saves the profile
# query on pages that have none of them.
PROFILE_HOLDERS_REMEMBERED = 10_000
_PROFILE_HOLDERS = (
    select(user_profiles.c.user_sourced_id).distinct()
    .where(user_profiles.c.district_id == bindparam("district_id"), _current(user_profiles))
    .limit(PROFILE_HOLDERS_REMEMBERED + 1))


def _profile_holders(conn: Connection, district_id: int, cache: PageCache | None,
                     version: int | None) -> frozenset[str] | None:
    """The users of the district with an active profile, or None when there are too many to
    remember (or nothing to remember them in)."""
    if cache is None or version is None:
        return None
    key = ("profile holders", district_id, version)
    holders = cache.get(key)
    if holders is None:
        found = conn.execute(_PROFILE_HOLDERS, {"district_id": district_id}).scalars().all()
        holders = frozenset(found) if len(found) <= PROFILE_HOLDERS_REMEMBERED else False
        cache.put(key, holders)
    return holders if holders is not False else None


def _resources_of(link: Table, owner: Column[Any]) -> Any:
    """The active resource links of a page of owners (what the Resources service's nested reads
    follow), in link order."""
    return (select(*map(_unprocessed, (owner, link.c.resource_sourced_id)))
            .where(link.c.district_id == bindparam("district_id"),
                   owner.in_(bindparam("ids", expanding=True)), _current(link))
            .order_by(link.c.id))


# A record in scope has every resource it links to in scope (see
# gateway.sharing.scope.Scope._where_resource): the links need no visibility of their own.
_RESOURCES_OF: Mapping[str, Any] = MappingProxyType({
    "user": _resources_of(user_resources, user_resources.c.user_sourced_id),
    "class": _resources_of(class_resources, class_resources.c.class_sourced_id),
    "course": _resources_of(course_resources, course_resources.c.course_sourced_id)})


def _children_of(entity: str, scope: RowScope) -> Any:
    table = READ_TABLES[entity]
    return (select(table.c.parent_sourced_id, table.c.sourced_id)
            .where(table.c.district_id == bindparam("district_id"),
                   table.c.parent_sourced_id.in_(bindparam("ids", expanding=True)),
                   *_visible(scope, entity))
            .order_by(table.c.id))


def fetch_related(conn: Connection, entity: str, district_id: int, sourced_ids: Sequence[str],
                  names: Collection[str], scope: RowScope, cache: PageCache | None = None,
                  version: int | None = None) -> dict[str, list[Record]]:
    """The rows embedded in a page of ``entity`` records, by REST field name, limited to ``names``:
    one query per field for the whole page (``serialize.serialize_page`` groups them). With a
    ``cache`` and the district's data ``version``, the profile query is skipped for pages whose
    users hold none.

    A user's roles are its active ones, or all of them if none is active; its profiles are the
    active ones; an org's or session's children are the visible child records of any status; a
    user's, class's or course's resources are its active links of the resources files.
    """
    found: dict[str, list[Record]] = {}
    if not sourced_ids:
        return found
    params = {"district_id": district_id, "ids": list(dict.fromkeys(sourced_ids))}
    if entity == "user":
        if "roles" in names:
            found["roles"] = _current_roles(_records(conn.execute(_ROLES_OF_USERS, params)))
        if "userProfiles" in names:
            holders = _profile_holders(conn, district_id, cache, version)
            if holders is not None and holders.isdisjoint(params["ids"]):
                found["userProfiles"] = []
            else:
                found["userProfiles"] = _records(conn.execute(_PROFILES_OF_USERS, params))
    elif entity in ("org", "academicSession") and "children" in names:
        found["children"] = _records(conn.execute(_children_of(entity, scope), params))
    if "resources" in names and entity in _RESOURCES_OF:
        found["resources"] = _records(conn.execute(_RESOURCES_OF[entity], params))
    return found


def _current_roles(rows: list[Record]) -> list[Record]:
    by_user: dict[str, list[Record]] = {}
    for row in rows:
        by_user.setdefault(row["user_sourced_id"], []).append(row)
    if all(row["status"] == ACTIVE for row in rows):
        return rows
    current: list[Record] = []
    for user_rows in by_user.values():
        active = [row for row in user_rows if row["status"] == ACTIVE]
        current.extend(active or user_rows)
    return current


# ----------------------------------------------------------------------------------------- paging

@dataclasses.dataclass(frozen=True, slots=True)
class SortKey:
    """One ORDER BY key. NULLs sort as the largest value on both backends (last ascending, first
    descending), as :func:`gateway.oneroster.query.parse_sort` orders them."""

    column: Column[Any]
    descending: bool = False

    @property
    def nullable(self) -> bool:
        """Whether the column can hold NULL (decides the NULL placement and the keyset test)."""
        return bool(getattr(self.column, "nullable", True))

    def order_by(self, selective: bool = False) -> ColumnElement[Any]:
        """The ORDER BY clause for this key. ``selective`` (see :class:`RecordQuery`) orders by
        ``id + 0`` rather than ``id``: same order, but no index can supply it, so the planner
        fetches the few selected rows and sorts them instead of walking the table in id order."""
        column = self.column + 0 if selective and self.column.primary_key else self.column
        clause = column.desc() if self.descending else column.asc()
        if self.nullable:
            # Spelled only for nullable columns, as parse_sort does (SQLite would not use an index).
            clause = clause.nulls_first() if self.descending else clause.nulls_last()
        return clause

    def signature(self) -> tuple[str, str, bool]:
        """What identifies the key in a cache key."""
        return (self.column.table.name, self.column.name, self.descending)


@dataclasses.dataclass(frozen=True, slots=True)
class Driver:
    """A table listing an entity's visible rows by primary key (``row_id``), with the
    ``conditions`` that select the list: a page in primary-key order is then read as a range of
    that list, joined to the entity's rows, instead of by walking the entity's table past every
    row that is not listed (a scope snapshot, :mod:`gateway.sharing.snapshots`)."""

    table: Any
    row_id: ColumnElement[Any]
    conditions: tuple[ColumnElement[bool], ...]


@dataclasses.dataclass(frozen=True, slots=True)
class RecordQuery:
    """The records of one collection read: ``entity``'s rows meeting ``conditions``, in the order
    of ``keys`` (which must end with the primary key, so that every row's key is unique).

    ``cache_key`` identifies the set of rows -- it must change whenever the rows could (district,
    data version, conditions, resolved ids, visibility) -- or is None to cache nothing.
    ``selective`` says the conditions pick few rows through an index of their own (a nested
    collection's link rows): they are then fetched that way and sorted, not found by walking the
    district's rows in key order (which SQLite, without statistics, would otherwise choose).
    ``driver``, for a query that is not selective, lists the rows the conditions may select (see
    :class:`Driver`); the conditions must still hold on their own.
    """

    entity: str
    conditions: tuple[ColumnElement[bool], ...]
    keys: tuple[SortKey, ...]
    cache_key: Hashable | None = None
    selective: bool = False
    driver: Driver | None = None
    rendered: bool = False

    def __post_init__(self) -> None:
        table = READ_TABLES[self.entity]
        if not self.keys or self.keys[-1].column is not table.c.id:
            raise ValueError("the sort keys must end with the primary key")


def default_keys(entity: str, descending: bool = False) -> tuple[SortKey, ...]:
    """The default order: the primary key, i.e. insertion order."""
    return (SortKey(READ_TABLES[entity].c.id, descending),)


class PageCache:
    """The in-process memory of counts, parent checks and page anchors (see the module docstring).

    Every key must include the district's data version; entries for older versions are never
    asked for again and are evicted as the LRU fills. One per application, shared by its threads.
    """

    def __init__(self, stride: int = 1000, max_values: int = 4096, max_anchor_sets: int = 64,
                 max_presented: int = 20_000, max_statements: int = 512) -> None:
        if stride < 1:
            raise ValueError("the anchor stride must be at least 1")
        self.stride = stride
        self._values = LRUCache(max_values)
        self._anchors = LRUCache(max_anchor_sets)
        # Keyed by record and data version (or rendering): a changed record is a new key.
        self._presented = LRUCache(max_presented)
        self._statements = LRUCache(max_statements)
        # One small int per district; a plain dict's item assignment is atomic.
        self._versions: dict[int, int] = {}

    def get(self, key: Hashable) -> Any:
        """A remembered count or check, or None."""
        return self._values.get(key)

    def put(self, key: Hashable, value: Any) -> None:
        """Remember a count or check (never None)."""
        self._values.put(key, value)

    def anchors(self, key: Hashable) -> tuple[tuple[Any, ...], ...] | None:
        """The remembered anchors of a query and sort, or None."""
        return self._anchors.get(key)

    def put_anchors(self, key: Hashable, anchors: tuple[tuple[Any, ...], ...]) -> None:
        """Remember the anchors of a query and sort."""
        self._anchors.put(key, anchors)

    def presented(self, key: Hashable) -> tuple[bytes, int] | None:
        """A rendering as remembered presented for one visibility and selection, or None."""
        return self._presented.get(key)

    def presented_many(self, keys: list[Hashable]) -> list[tuple[bytes, int] | None]:
        """:meth:`presented` of each of ``keys``, in order (one lock for a page)."""
        return self._presented.get_many(keys)

    def put_presented(self, key: Hashable, value: tuple[bytes, int]) -> None:
        """Remember a presented rendering (see :func:`gateway.oneroster.service._presented`)."""
        self._presented.put(key, value)

    def statement(self, key: Hashable) -> Any:
        """A page statement built before for ``key``, or None (see :func:`fetch_page_and_version`)."""
        return self._statements.get(key)

    def put_statement(self, key: Hashable, statement: Any) -> None:
        """Remember a page statement."""
        self._statements.put(key, statement)

    def data_version(self, district_id: int) -> int | None:
        """The data version last seen for the district in this process (None: never seen)."""
        return self._versions.get(district_id)

    def note_data_version(self, district_id: int, version: int) -> None:
        """Remember the district's data version as last seen."""
        self._versions[district_id] = version

    def __len__(self) -> int:
        return len(self._values) + len(self._anchors)


def count_records(conn: Connection, query: RecordQuery, cache: PageCache | None = None) -> int:
    """How many records ``query`` selects; remembered in ``cache`` under its ``cache_key``."""
    key = None if cache is None or query.cache_key is None else ("count", query.cache_key)
    if key is not None:
        remembered = cache.get(key)
        if remembered is not None:
            return remembered
    source, conditions, _keys = _read_plan(query)
    total = conn.execute(select(func.count()).select_from(source).where(*conditions)).scalar_one()
    if key is not None:
        cache.put(key, total)
    return total


def fetch_page(conn: Connection, query: RecordQuery, offset: int, limit: int,
               cache: PageCache | None = None) -> list[Record]:
    """The records of ``query`` at ``offset`` (at most ``limit``), in its order.

    From ``cache.stride`` rows on, the page is read by a keyset seek from the nearest anchor
    (built on first use) plus a short ``OFFSET``; before that, by ``OFFSET`` alone.
    """
    statement, params = _page_statement(conn, query, offset, limit, cache, with_version=False)
    return _records(conn.execute(statement, params), _JSON_COLUMNS[query.entity])


def fetch_page_and_version(conn: Connection, query: RecordQuery, offset: int, limit: int,
                           cache: PageCache | None, district_id: int) -> tuple[list[Record], int]:
    """:func:`fetch_page`, and the district's data version read by the same statement (so that
    a caller that assumed a version learns, at no extra round trip, whether an import has made
    its cached counts and anchors stale). An empty page costs one more query for the version."""
    statement, params = _page_statement(conn, query, offset, limit, cache, with_version=True)
    params["district_id"] = district_id
    records = _records(conn.execute(statement, params),
                       () if query.rendered else _JSON_COLUMNS[query.entity])
    if not records:
        return records, district_data_version(conn, district_id)
    version = 0
    for record in records:
        version = record.pop(_DATA_VERSION_COLUMN)
    return records, version or 0


def _read_plan(query: RecordQuery) -> tuple[Any, list[ColumnElement[bool]], tuple[SortKey, ...]]:
    """What a read of ``query`` selects from, its conditions and its sort keys: through the
    driver when there is one (the primary key then read from the driver's ``row_id``, which
    equals it, so that the driver's index supplies the order and anchors seek in it)."""
    table = READ_TABLES[query.entity]
    driver = query.driver
    if driver is None or query.selective:
        return table, list(query.conditions), query.keys
    keys = tuple(SortKey(driver.row_id, key.descending) if key.column is table.c.id else key
                 for key in query.keys)
    return (driver.table.join(table, table.c.id == driver.row_id),
            [*driver.conditions, *query.conditions], keys)


_PAGE_LIMIT = bindparam("page_limit", type_=Integer)
_PAGE_OFFSET = bindparam("page_offset", type_=Integer)


def _page_statement(conn: Connection, query: RecordQuery, offset: int, limit: int,
                    cache: PageCache | None, *, with_version: bool) -> tuple[Any, dict[str, Any]]:
    """The statement reading ``query``'s page at ``offset`` and its parameters.

    The limit and the offset left after the anchor seek are parameters, so one statement serves
    every page of a query between two anchors: with a ``query.cache_key`` it is built once and
    kept in ``cache``. SQLAlchemy memoizes a statement object's cache key, so a kept statement
    skips both building and keying (a tenth of a page's CPU when rebuilt per request); its
    compiled form comes from the engine's compiled cache as before."""
    step = 0
    if cache is not None and query.cache_key is not None and offset >= cache.stride:
        anchors = _anchors(conn, query, cache)
        step = min(offset // cache.stride, len(anchors))
    skip = offset - step * cache.stride if step else offset
    params: dict[str, Any] = {"page_limit": limit, "page_offset": skip}
    key = None
    if cache is not None and query.cache_key is not None:
        key = ("page", query.cache_key, tuple(k.signature() for k in query.keys),
               query.rendered, step, with_version)
        kept = cache.statement(key)
        if kept is not None:
            return kept, params
    source, conditions, keys = _read_plan(query)
    if step:
        anchor = _anchors(conn, query, cache)[step - 1]
        conditions.append(_after(keys, anchor))
        if keys != query.keys:
            # Read through a driver: the same bound on the entity's own keys, which are equal,
            # lets a merge join start both sides at the anchor (PostgreSQL does not carry a
            # range across the join's equality).
            conditions.append(_after(query.keys, anchor))
    columns = rendered_columns(query.entity) if query.rendered else record_columns(query.entity)
    statement = (select(*columns).select_from(source).where(*conditions)
                 .order_by(*(key.order_by(query.selective) for key in keys))
                 .limit(_PAGE_LIMIT).offset(_PAGE_OFFSET))
    if with_version:
        statement = statement.add_columns(_DATA_VERSION.label(_DATA_VERSION_COLUMN))
    if key is not None:
        cache.put_statement(key, statement)
    return statement, params


def _anchors(conn: Connection, query: RecordQuery, cache: PageCache) -> tuple[tuple[Any, ...], ...]:
    """The sort keys of rows ``stride - 1``, ``2 * stride - 1``... of ``query`` (0-based)."""
    key = ("anchors", query.cache_key, tuple(k.signature() for k in query.keys))
    anchors = cache.anchors(key)
    if anchors is not None:
        return anchors
    source, conditions, keys = _read_plan(query)
    labels = [k.column.label(f"k{i}") for i, k in enumerate(keys)]
    position = func.row_number().over(
        order_by=[k.order_by(query.selective) for k in keys]).label("position")
    ranked = select(*labels, position).select_from(source).where(*conditions).subquery("ranked")
    statement = (select(*(ranked.c[label.name] for label in labels))
                 .where(ranked.c.position % cache.stride == 0).order_by(ranked.c.position))
    anchors = tuple(tuple(row) for row in conn.execute(statement))
    cache.put_anchors(key, anchors)
    return anchors


def _after(keys: Sequence[SortKey], anchor: Sequence[Any]) -> ColumnElement[bool]:
    """The rows strictly after the row whose sort key is ``anchor``, in the order of ``keys``.

    Lexicographic: (k1 after a1) OR (k1 = a1 AND k2 after a2) OR ..., with NULL as the largest
    value. The leading key also gets a plain range bound when it cannot be NULL, which is what lets
    the database start an index range scan at the anchor.
    """
    alternatives: list[ColumnElement[bool]] = []
    equal: list[ColumnElement[bool]] = []
    for key, value in zip(keys, anchor):
        after = _key_after(key, value)
        if after is not None:
            alternatives.append(and_(*equal, after))
        equal.append(key.column.is_(None) if value is None else key.column == _bound(key, value))
    if not alternatives:
        return false()
    condition = or_(*alternatives)
    first, value = keys[0], anchor[0]
    if len(keys) > 1 and value is not None and not first.nullable:
        bound = _bound(first, value)
        condition = and_(first.column <= bound if first.descending else first.column >= bound,
                         condition)
    return condition


def _bound(key: SortKey, value: Any) -> ColumnElement[Any]:
    # An explicit parameter: SQLAlchemy refuses ``column > True`` with a plain Python bool.
    return bindparam(None, value, type_=key.column.type)


def _key_after(key: SortKey, value: Any) -> ColumnElement[bool] | None:
    """The rows whose ``key`` sorts strictly after ``value`` (None: no row can)."""
    column = key.column
    if key.descending:
        # Descending, NULLs first: after NULL come all values; after v, the smaller ones.
        return column.is_not(None) if value is None else column < _bound(key, value)
    if value is None:
        return None  # ascending, NULLs last: nothing sorts after NULL
    after = column > _bound(key, value)
    return or_(after, column.is_(None)) if key.nullable else after
