"""The OneRoster 1.2 rostering read service: what a GET under ``/ims/oneroster/rostering/v1p2``
returns, free of flask (the HTTP layer parses, authorizes, calls one function here, dumps JSON).

- :func:`parse_collection_params` validates the query parameters that do not depend on the
  entity (``limit``, ``offset``, ``filter`` syntax); :func:`list_records` and :func:`get_record`
  validate the rest against the entity and the caller's visibility and read the store
  (:mod:`gateway.store.rostering`).
- Every read honours a :class:`~gateway.sharing.visibility.Visibility`: its ``where`` is ANDed
  into every query (collection, by-id, nested, counts, parent checks, embedded children); only its
  ``fields`` are offered to ``fields=`` and served; ``filter``/``sort`` accept only its
  ``filterable`` fields (a withheld field is refused exactly like an unknown one); path ids and
  sourcedId filter values go through ``resolve_id``; each record leaves through ``present``; and
  each response carrying records is reported to ``disclosed``.
- Filters (REST binding §3.4) are parsed by :mod:`gateway.oneroster.query` and compiled to bound
  SQL over the field map of :mod:`gateway.oneroster.schemas`, plus the dotted paths listed in
  :func:`filter_field_names`: ``x.sourcedId`` for every reference, ``terms.sourcedId``,
  ``agents.sourcedId``, ``roles.*`` (``roles.role``, ``roles.roleType``, ``roles.org.sourcedId``,
  ``roles.beginDate``...), ``userProfiles.*`` and ``metadata.<key>``. A path into a list means
  "some item matches"; with ``!=`` it means "no item equals".
- Counts and deep pages are cached per district data version (see the store module); the cache
  key built here names everything the result depends on. The visibility's part of it is the SQL
  and bound values of the predicates it contributed, compiled once per request when there are
  any; a visibility may instead offer a ``cache_identity`` attribute (any hashable that changes
  whenever one of its predicates would, e.g. app id and policy version) to skip that compilation.

A dotted filter field is allowed when the visibility's ``filterable`` (None: everything) lists it
or its first segment, and the first segment is among its ``fields``. Id resolution applies to
``=`` and ``!=``; a visibility that pseudonymizes ids should keep the id fields out of
``filterable`` if ordering or ``~`` on them must not work on stored ids.
"""
from __future__ import annotations

import dataclasses
import functools
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Callable, Collection, Hashable, Iterator, Mapping, Sequence

import orjson

from sqlalchemy import Table, exists, false, or_, true
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from gateway.errors import NotFound
from gateway.oneroster.endpoints import Endpoint
from gateway.oneroster.query import (FilterExpr, FilterField, Paging, compare_column, compile_filter,
                                     format_filter, parse_fields, parse_filter, parse_paging,
                                     parse_sort)
from gateway.oneroster.rendering import (RENDERED_ENTITIES, absolute_hrefs, field_names,
                                         fields_of)
from gateway.oneroster.schemas import ENTITIES, FIELD_MAPS, Entity, FieldSpec
from gateway.oneroster.serialize import serialize_page
from gateway.store import rostering as store
from gateway.store.rostering import PageCache, RecordQuery, SortKey

if TYPE_CHECKING:
    from gateway.sharing.visibility import Visibility

CHANNEL = "oneroster-rest"
"""The channel name this service reports to :meth:`Visibility.disclosed`."""

_FILTER_TYPES = {"string": "string", "enum": "string", "boolean": "boolean", "date": "date",
                 "datetime": "datetime"}
_OBJECT_TABLES = {"roles": store.roles, "userProfiles": store.user_profiles}


# ------------------------------------------------------------------------------------- parameters

@dataclasses.dataclass(frozen=True, slots=True)
class CollectionParams:
    """A collection read's query parameters, as far as they can be checked without the entity."""

    paging: Paging
    filter: FilterExpr | None = None
    sort: str | None = None
    order_by: str | None = None
    fields: tuple[str, ...] | None = None


def _given(value: str | None) -> str | None:
    # An empty parameter (``filter=``) is what some clients send for "none".
    return value if value else None


def parse_collection_params(*, limit: str | None = None, offset: str | None = None,
                            filter: str | None = None, sort: str | None = None,
                            order_by: str | None = None, fields: Sequence[str] = (),
                            default_limit: int = 100, max_limit: int = 10000) -> CollectionParams:
    """Check ``limit``/``offset`` and parse ``filter`` (REST binding §3.4); ``fields`` are the
    values of every ``fields`` parameter. Empty values count as absent. Raises InvalidData."""
    paging = parse_paging(_given(limit), _given(offset), default_limit, max_limit)
    text = _given(filter)
    chosen = tuple(value for value in fields if value)
    return CollectionParams(paging=paging, filter=parse_filter(text) if text is not None else None,
                            sort=_given(sort), order_by=_given(order_by),
                            fields=chosen or None)


# ---------------------------------------------------------------------------------------- results

@dataclasses.dataclass(frozen=True, slots=True)
class Page:
    """One page of a collection: the records as sent, and where they sit in the whole.

    ``fragments`` are the records' JSON as sent, with hrefs relative to the service base (see
    :func:`gateway.oneroster.rendering.absolute_hrefs`); ``records`` decodes them under
    ``base_url``, for callers that want objects."""

    fragments: list[bytes]
    total: int
    offset: int
    limit: int
    base_url: str = ""

    @property
    def records(self) -> list[dict[str, Any]]:
        """The records as objects, hrefs absolute."""
        return [decode_fragment(fragment, self.base_url) for fragment in self.fragments]


def decode_fragment(fragment: bytes, base_url: str) -> dict[str, Any]:
    """One record's JSON as sent (relative hrefs) as an object with absolute hrefs."""
    return orjson.loads(absolute_hrefs(fragment, base_url))


class _RecordingScope:
    """The visibility's row predicates, asked once per entity per request and remembered, so the
    cache key can name exactly the predicates the queries used."""

    __slots__ = ("visibility", "clauses", "compiled")

    def __init__(self, visibility: Visibility) -> None:
        self.visibility = visibility
        self.clauses: dict[str, ColumnElement[bool] | None] = {}
        self.compiled: dict[str, tuple[str, str, str]] = {}

    def where(self, entity: str, table: Table) -> ColumnElement[bool] | None:
        """The visibility's predicate for ``entity`` (asked once)."""
        if entity not in self.clauses:
            self.clauses[entity] = self.visibility.where(entity, table)
        return self.clauses[entity]

    def driver(self, entity: str, table: Table) -> store.Driver | None:
        """The visibility's list of the visible rows of ``entity`` to read pages through, if it
        keeps one."""
        return self.visibility.driver(entity, table)

    def key(self, conn: Connection) -> Hashable:
        """The identity of the predicates used so far: the visibility's own ``cache_identity``
        if it has one (a hashable that changes whenever any of its predicates would), else their
        SQL and bound values (nothing to compile when it hides nothing, as Unrestricted)."""
        identity = getattr(self.visibility, "cache_identity", None)
        if identity is not None:
            return ("identity", identity)
        parts = []
        for entity, clause in sorted(self.clauses.items()):
            if clause is None:
                continue
            if entity not in self.compiled:
                compiled = clause.compile(dialect=conn.dialect)
                self.compiled[entity] = (entity, str(compiled),
                                         repr(sorted(compiled.params.items())))
            parts.append(self.compiled[entity])
        return tuple(parts)


# ---------------------------------------------------------------------------------------- fields

def offered_fields(entity: Entity, visibility: Visibility) -> tuple[str, ...]:
    """The fields ``fields=`` may select and that are served: the entity's served fields that the
    visibility lets out, in schema order."""
    allowed = visibility.fields(entity.name)
    return tuple(name for name, spec in entity.fields.items()
                 if spec.served and (allowed is None or name in allowed))


def _filter_allowed(name: str, allowed: frozenset[str] | None,
                    filterable: frozenset[str] | None) -> bool:
    top = name.split(".", 1)[0]
    if allowed is not None and top not in allowed:
        return False
    return filterable is None or name in filterable or top in filterable


class _IdResolver:
    """Maps sourcedIds in filter values through the visibility, noting each answer for the key."""

    __slots__ = ("visibility", "answers")

    def __init__(self, visibility: Visibility) -> None:
        self.visibility = visibility
        self.answers: list[tuple[str, str, str | None]] = []

    def __call__(self, entity: str, value: str) -> str | None:
        stored = self.visibility.resolve_id(entity, value)
        self.answers.append((entity, value, stored))
        return stored


# A filterable field, given the request's id resolver.
_FieldFactory = Callable[[_IdResolver], FilterField]


def _plain(field: FilterField) -> _FieldFactory:
    return lambda resolve: field


def _id_field(column: ColumnElement[Any], entity: str) -> _FieldFactory:
    """A sourcedId (own or referenced), compared as the stored id behind the app's id."""
    nullable = bool(getattr(column, "nullable", True))

    def factory(resolve: _IdResolver) -> FilterField:
        def build(op: str, value: str) -> ColumnElement[bool]:
            if op in ("=", "!="):
                stored = resolve(entity, value)
                if stored is None:  # names nothing the app may see
                    return true() if op == "!=" else false()
                value = stored
            clause = compare_column(column, op, value)
            if op == "!=" and nullable:
                clause = or_(clause, column.is_(None))
            return clause
        return FilterField(builder=build)

    return factory


def _some_item(matches: Callable[[ColumnElement[bool]], ColumnElement[bool]],
               column: ColumnElement[Any], field_type: str,
               ref_type: str | None = None) -> _FieldFactory:
    """A field of the items of a list (rows of another table): ``op`` means some item matches,
    ``!=`` that no item equals. ``matches(condition)`` is the EXISTS over the owner's items;
    ``ref_type`` says the values are sourcedIds of that entity."""

    def factory(resolve: _IdResolver) -> FilterField:
        def build(op: str, value: Any) -> ColumnElement[bool]:
            if ref_type is not None and op in ("=", "!="):
                value = resolve(ref_type, value)
                if value is None:
                    return true() if op == "!=" else false()
            if op == "!=":
                return ~matches(column == value)
            return matches(compare_column(column, op, value))
        return FilterField(builder=build, type=field_type)

    return factory


def _link_exists(owner: Table, link: Table,
                 key: str) -> Callable[[ColumnElement[bool]], ColumnElement[bool]]:
    def matches(condition: ColumnElement[bool]) -> ColumnElement[bool]:
        return exists().where(link.c.district_id == owner.c.district_id,
                              link.c[key] == owner.c.sourced_id, condition)
    return matches


def _profile_exists(condition: ColumnElement[bool]) -> ColumnElement[bool]:
    profiles = store.user_profiles
    return exists().where(profiles.c.district_id == store.users.c.district_id,
                          profiles.c.user_sourced_id == store.users.c.sourced_id,
                          profiles.c.status != store.TOBEDELETED, condition)


@functools.lru_cache(maxsize=None)
def _filter_factories(entity_name: str) -> Mapping[str, _FieldFactory]:
    """Every filterable field of an entity (before any visibility's cut), by dotted name."""
    entity = ENTITIES[entity_name]
    table = store.ENTITY_TABLES[entity_name]
    fields: dict[str, _FieldFactory] = {}
    for name, spec in entity.fields.items():
        if not spec.served:
            continue
        if spec.scalar:
            column = table.c[spec.column]
            fields[name] = (_id_field(column, entity_name) if name == "sourcedId"
                            else _plain(FilterField(column=column, type=_FILTER_TYPES[spec.kind])))
        elif spec.kind == "strings":
            fields[name] = _plain(FilterField(column=table.c[spec.column], type="list"))
        elif spec.kind == "ref":
            fields[f"{name}.sourcedId"] = _id_field(table.c[spec.column], spec.ref_type)
        elif spec.kind == "refs" and spec.related is not None and spec.related.table != entity.table:
            # A class's terms, a user's agents: their link tables. (An org's or session's children
            # are not offered: they are rows of the same table, seen through another record.)
            link = store.LINK_TABLES[spec.related.table]
            fields[f"{name}.sourcedId"] = _some_item(
                _link_exists(table, link, spec.related.key), link.c[spec.related.value], "string",
                spec.ref_type)
        elif spec.kind == "objects" and name in _OBJECT_TABLES:
            fields.update(_object_filter_factories(name, spec))
    return MappingProxyType(fields)


def _object_filter_factories(name: str, spec: FieldSpec) -> dict[str, _FieldFactory]:
    """``roles.*`` and ``userProfiles.*``: the scalar fields and references of a user's items.
    A role counts as :func:`gateway.store.rostering.holds_role` says, a profile when active."""
    table = _OBJECT_TABLES[name]
    matches = store.holds_role if name == "roles" else _profile_exists
    fields: dict[str, _FieldFactory] = {}
    for item_name, item in FIELD_MAPS[spec.item].items():
        if not item.served or item.column is None:
            continue
        column = table.c[item.column]
        if item.scalar:
            fields[f"{name}.{item_name}"] = _some_item(matches, column, _FILTER_TYPES[item.kind])
        elif item.kind == "ref":
            fields[f"{name}.{item_name}.sourcedId"] = _some_item(matches, column, "string",
                                                                 item.ref_type)
    return fields


def filter_field_names(entity: str) -> tuple[str, ...]:
    """The fields (dotted paths included) a collection of ``entity`` can be filtered on when
    nothing is withheld; ``metadata.*`` stands for any ``metadata.<key>``."""
    names = tuple(_filter_factories(entity))
    return names + (("metadata.*",) if "metadata" in ENTITIES[entity].fields else ())


class _FilterFields(Mapping[str, FilterField]):
    """The fields a request may filter on: built on demand (a filter names few of the dozens an
    entity offers), the visibility's cut applied, ``metadata.<key>`` for any key."""

    def __init__(self, entity: Entity, visibility: Visibility, resolve: _IdResolver) -> None:
        self.factories = _filter_factories(entity.name)
        self.resolve = resolve
        self.allowed = visibility.fields(entity.name)
        self.filterable = visibility.filterable(entity.name)
        self.metadata = None
        if "metadata" in entity.fields and self._allowed("metadata.*"):
            self.metadata = store.ENTITY_TABLES[entity.name].c.metadata

    def _allowed(self, name: str) -> bool:
        return _filter_allowed(name, self.allowed, self.filterable)

    def __getitem__(self, name: str) -> FilterField:
        factory = self.factories.get(name)
        if factory is not None and self._allowed(name):
            return factory(self.resolve)
        if self.metadata is not None and name.startswith("metadata."):
            path = tuple(name.split(".")[1:])
            target = self.metadata[path[0]] if len(path) == 1 else self.metadata[path]
            return FilterField(column=target.as_string(), type="string", nullable=True)
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        # What "filterable fields: ..." error messages list.
        yield from (name for name in self.factories if self._allowed(name))
        if self.metadata is not None:
            yield "metadata.*"

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _sort_keys(entity: Entity, visibility: Visibility, sort: str | None,
               order_by: str | None) -> tuple[SortKey, ...]:
    """The ORDER BY keys for ``sort``/``orderBy``; errors as :func:`query.parse_sort` words them."""
    table = store.ENTITY_TABLES[entity.name]
    sortable: dict[str, Any] = {}
    if sort is not None:
        allowed = visibility.fields(entity.name)
        filterable = visibility.filterable(entity.name)
        sortable = {name: table.c[spec.column] for name, spec in entity.fields.items()
                    if spec.scalar and _filter_allowed(name, allowed, filterable)}
    # parse_sort validates the names and orderBy and says what is wrong; the store builds the
    # ORDER BY itself from the keys, so that its keyset seeks and its ordering cannot disagree.
    parse_sort(sort, order_by, sortable, table.c.id)
    descending = order_by == "desc"
    names = [] if sort is None else [item.strip() for item in sort.split(",")]
    keys = [SortKey(sortable[name], descending) for name in dict.fromkeys(names)]
    keys.append(SortKey(table.c.id, descending))
    return tuple(keys)


# ------------------------------------------------------------------------------------- the reads

def _not_found(what: str, sourced_id: str) -> NotFound:
    return NotFound(f"There is no {what} with sourcedId {sourced_id!r}.")


def _resolve_parents(conn: Connection, endpoint: Endpoint, path_ids: Sequence[str],
                     district_id: int, version: int, visibility: Visibility,
                     scope: _RecordingScope, cache: PageCache | None) -> tuple[str, ...]:
    """The stored ids of the records a nested path names, each checked to exist, be visible and
    be of its kind (and a class to be the school's); NotFound otherwise (REST binding:
    unknownobject for an unknown parent)."""
    stored: list[str] = []
    for index, (parent, given) in enumerate(zip(endpoint.parents, path_ids)):
        what = parent.kind or parent.entity
        resolved = visibility.resolve_id(parent.entity, given)
        if resolved is None:
            raise _not_found(what, given)
        within = (endpoint.parents[index - 1].entity, stored[-1]) if index else None
        scope.where(parent.entity, store.ENTITY_TABLES[parent.entity])
        key = None
        if cache is not None:
            key = ("parent", district_id, version, parent.entity, parent.record_kind, resolved, within,
                   scope.key(conn))
            if cache.get(key):
                stored.append(resolved)
                continue
        if not store.record_exists(conn, parent.entity, district_id, resolved, scope,
                                   parent.record_kind, within):
            raise _not_found(what, given)
        if key is not None:
            cache.put(key, True)
        stored.append(resolved)
    return tuple(stored)


def list_records(session: Session, endpoint: Endpoint, path_ids: Sequence[str],
                 params: CollectionParams, *, district_id: int, visibility: Visibility,
                 base_url: str, cache: PageCache | None = None, channel: str = CHANNEL) -> Page:
    """A page of the collection ``endpoint`` serves (top-level or nested) for ``district_id``.

    ``path_ids`` are the path parameters in path order (the parents' ids, as the app sent them);
    ``base_url`` is the service base that references point into; ``channel`` is what the page is
    reported to the ledger as leaving through (another channel serving the same pages, the CSV
    export, names itself). Raises InvalidData (400 with the binding's code minor) for a bad field,
    filter or sort, NotFound for an unknown parent.
    """
    entity = ENTITIES[endpoint.entity]
    selected = _selection(entity, visibility, params.fields)
    resolver = _IdResolver(visibility)
    condition = None
    if params.filter is not None:
        condition = compile_filter(params.filter,
                                   _FilterFields(entity, visibility, resolver))
    keys = _sort_keys(entity, visibility, params.sort, params.order_by)

    conn = session.connection()
    paging = params.paging
    rendered = _servable_as_rendered(entity.name, visibility)
    # The data version keys every cached count, check and anchor. The one last seen is assumed and
    # the page query reads the current one alongside its rows; after an import it differs, and
    # the read is done again for the new version (imports do not come faster than reads; if they
    # did, the third read's rows would still be consistent with the version it saw).
    version = cache.data_version(district_id) if cache is not None else None
    if version is None:
        version = store.district_data_version(conn, district_id)
    for _attempt in range(3):
        scope = _RecordingScope(visibility)
        parents = _resolve_parents(conn, endpoint, path_ids, district_id, version, visibility,
                                   scope, cache)
        selective = endpoint.relation is not None
        # A filter may select few rows through an index of its own (an email, a sourcedId): its
        # rows are then found that way and checked, not looked for along the driver's list.
        driver = None if selective or condition is not None else scope.driver(
            entity.name, store.ENTITY_TABLES[entity.name])
        # Read through a driver, the rows are the driver's: the visibility's predicate for them
        # would only be checked again (and PostgreSQL plans it as a scan of the whole list).
        conditions = store.record_conditions(entity.name, district_id, scope, endpoint.kind,
                                             visible=driver is None)
        if endpoint.relation is not None:
            conditions.append(store.relation_clause(endpoint.relation, district_id, parents,
                                                    scope))
        if condition is not None:
            conditions.append(condition)
        filter_key = None if params.filter is None else (format_filter(params.filter),
                                                          tuple(resolver.answers))
        cache_key = (district_id, version, endpoint.operation_id, parents, filter_key,
                     scope.key(conn))
        query = RecordQuery(entity.name, tuple(conditions), keys, cache_key,
                            selective=selective, driver=driver, rendered=rendered)
        total = store.count_records(conn, query, cache)
        if paging.offset < total:
            rows, current = store.fetch_page_and_version(conn, query, paging.offset,
                                                         paging.limit, cache, district_id)
        else:
            rows, current = [], store.district_data_version(conn, district_id)
        if cache is not None:
            cache.note_data_version(district_id, current)
        if current == version:
            break
        version = current
    fragments = _send(conn, endpoint, entity, rows, selected, district_id, visibility, scope,
                      cache, version, rendered, channel)
    return Page(fragments=fragments, total=total, offset=paging.offset, limit=paging.limit,
                base_url=base_url)


def get_record(session: Session, endpoint: Endpoint, sourced_id: str,
               fields: Sequence[str] = (), *, district_id: int, visibility: Visibility,
               base_url: str, cache: PageCache | None = None) -> dict[str, Any]:
    """The record ``sourced_id`` (as the app sent it) that a single-record ``endpoint`` serves.

    A record that does not exist, is of another district, is not of the endpoint's kind or is
    hidden by the visibility is the same NotFound (unknownobject). ``cache`` lets the embedded
    rows skip queries that the district's data version says would find nothing.
    """
    return decode_fragment(get_record_fragment(
        session, endpoint, sourced_id, fields, district_id=district_id, visibility=visibility,
        cache=cache), base_url)


def get_record_fragment(session: Session, endpoint: Endpoint, sourced_id: str,
                        fields: Sequence[str] = (), *, district_id: int, visibility: Visibility,
                        cache: PageCache | None = None) -> bytes:
    """:func:`get_record` as the record's JSON as sent, hrefs relative to the service base."""
    entity = ENTITIES[endpoint.entity]
    selected = _selection(entity, visibility, tuple(value for value in fields if value) or None)
    what = endpoint.kind or entity.name
    stored = visibility.resolve_id(entity.name, sourced_id)
    if stored is None:
        raise _not_found(what, sourced_id)
    conn = session.connection()
    scope = _RecordingScope(visibility)
    rendered = _servable_as_rendered(entity.name, visibility)
    row, version = store.find_record_and_version(conn, entity.name, district_id, stored, scope,
                                                 endpoint.record_kind, rendered=rendered)
    if row is None:
        raise _not_found(what, sourced_id)
    if cache is not None:
        cache.note_data_version(district_id, version)
    return _send(conn, endpoint, entity, [row], selected, district_id, visibility, scope,
                 cache, version, rendered)[0]


def _selection(entity: Entity, visibility: Visibility,
               fields: Sequence[str] | None) -> tuple[str, ...] | None:
    """The fields to serialize: the client's valid selection, else the visibility's cut, else
    None (everything). An unknown or withheld field is InvalidSelectionField."""
    allowed = visibility.fields(entity.name)
    if fields is None and allowed is None:
        return None
    offered = offered_fields(entity, visibility)
    if fields is None:
        # Everything the entity serves is no selection at all.
        return None if len(offered) == _served_count(entity.name) else offered
    return parse_fields(list(fields), offered)


@functools.lru_cache(maxsize=None)
def _served_count(entity: str) -> int:
    return sum(1 for spec in ENTITIES[entity].fields.values() if spec.served)


def _servable_as_rendered(entity: str, visibility: Visibility) -> bool:
    """Whether ``entity``'s records can be served from their renderings for ``visibility``: they
    are rendered, and nothing in them depends on what the visibility hides (an org's or a
    session's children are the visible ones only, so a visibility that hides some of those is
    served as before)."""
    if entity not in RENDERED_ENTITIES:
        return False
    if entity in ("org", "academicSession"):
        return visibility.where(entity, store.ENTITY_TABLES[entity]) is None
    return True


def _send(conn: Connection, endpoint: Endpoint, entity: Entity, rows: Sequence[Any],
          selected: tuple[str, ...] | None, district_id: int, visibility: Visibility,
          scope: _RecordingScope, cache: PageCache | None, version: int | None,
          rendered: bool, channel: str = CHANNEL) -> list[bytes]:
    """Rows (their renderings, or their columns) to records' JSON as the app receives them
    (selected, presented; hrefs relative to the service base), reported to the ledger."""
    if not rows:
        return []
    if rendered and any(row["rendered"] is None for row in rows):
        # Not rendered yet (a store migrated since its last import): the page as before.
        rows = store.fetch_records(conn, entity.name, district_id,
                                   [row["sourced_id"] for row in rows])
        rendered = False
    if not rendered:
        records = _serialize(conn, endpoint, entity, rows, selected, district_id, visibility,
                             scope, "", cache, version, channel)
        dumps = orjson.dumps
        return [dumps(record) for record in records]
    verbatim = getattr(visibility, "verbatim", None)
    report = getattr(visibility, "disclosed_fields", None)
    if selected is None and verbatim is not None and verbatim(entity.name):
        fragments = [row["rendered"] for row in rows]
        bits = 0
        for row in rows:
            bits |= row["rendered_fields"]
        names: Collection[str] = field_names(entity.name, bits)
    else:
        fragments, names = _presented(entity, rows, selected, visibility, cache)
    if report is None:
        visibility.disclosed(channel, endpoint.operation_id, entity.name,
                             [orjson.loads(fragment) for fragment in fragments],
                             [row["sourced_id"] for row in rows])
    else:
        people = "user_sourced_id" if entity.name == "enrollment" else "sourced_id"
        report(channel, endpoint.operation_id, entity.name, names, len(rows),
               [row[people] for row in rows])
    return fragments


def _presented(entity: Entity, rows: Sequence[Any], selected: tuple[str, ...] | None,
               visibility: Visibility, cache: PageCache | None) -> tuple[list[bytes], set[str]]:
    """The renderings of ``rows`` selected and presented for ``visibility`` (masked,
    pseudonymized), and the top-level fields that left. Each result is remembered per
    visibility identity, selection and rendering, so a record is transformed once per policy
    version and change, not once per request."""
    identity = getattr(visibility, "cache_identity", None)
    remember = cache is not None and identity is not None
    keep = None if selected is None else frozenset(selected)
    present = visibility.present
    loads, dumps = orjson.loads, orjson.dumps
    fragments: list[bytes] = []
    bits = 0
    for row in rows:
        rendering = row["rendered"]
        key = (identity, entity.name, keep, rendering) if remember else None
        found = cache.presented(key) if remember else None
        if found is None:
            record = loads(rendering)
            if keep is not None:
                record = {name: value for name, value in record.items() if name in keep}
            record = present(entity.name, record)
            found = (dumps(record), fields_of(entity.name, record))
            if remember:
                cache.put_presented(key, found)
        fragments.append(found[0])
        bits |= found[1]
    return fragments, set(field_names(entity.name, bits))


def _serialize(conn: Connection, endpoint: Endpoint, entity: Entity, rows: Sequence[Any],
               selected: tuple[str, ...] | None, district_id: int, visibility: Visibility,
               scope: _RecordingScope, base_url: str, cache: PageCache | None = None,
               version: int | None = None, channel: str = CHANNEL) -> list[dict[str, Any]]:
    """Rows to records as the app receives them (presented), reported to the ledger."""
    if not rows:
        return []
    wanted = [name for name in store.RELATED_FIELDS.get(entity.name, ())
              if selected is None or name in selected]
    stored_ids = [row["sourced_id"] for row in rows]
    related = store.fetch_related(conn, entity.name, district_id, stored_ids, wanted, scope,
                                  cache, version) if wanted else None
    records = serialize_page(entity.name, rows, base_url, related=related, fields=selected)
    present = visibility.present
    records = [present(entity.name, record) for record in records]
    visibility.disclosed(channel, endpoint.operation_id, entity.name, records, stored_ids)
    return records
