"""The OneRoster 1.2 read path: what a GET of any OneRoster service returns (rostering under
``/ims/oneroster/rostering/v1p2``, resources under ``/ims/oneroster/resources/v1p2``), free of
flask (the HTTP layer parses, authorizes, calls one function here, dumps JSON).

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
- Filters (REST binding §3.4) are parsed and compiled by :mod:`gateway.oneroster.filters`, which
  also holds each entity's filterable fields (:func:`filter_field_names`); ``sort``/``orderBy``
  are parsed once, into a :class:`~gateway.oneroster.query.Sort`, by
  :func:`parse_collection_params`.
- Which operation reads what is data: the service's endpoint table
  (:mod:`gateway.oneroster.endpoints`) and the store's relations
  (:data:`gateway.store.rostering.RELATIONS`).
- Counts and deep pages are cached per district data version (see the store module); the cache
  key, computed before the first query, names everything the result depends on: district,
  version, operation, resolved parents, the filter with its resolved ids, and the visibility's
  ``cache_identity`` (a hashable that changes whenever one of its predicates would, e.g. app id
  and policy version).
"""
from __future__ import annotations

import dataclasses
import functools
from typing import TYPE_CHECKING, Any, Collection, Hashable, Sequence

import orjson

from sqlalchemy import Table
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from gateway.caching import Unshared
from gateway.errors import NotFound
from gateway.oneroster.endpoints import Endpoint
from gateway.oneroster.filters import (EntityFilterFields, FilterExpr, IdResolver, compile_filter,
                                       field_allowed, filter_field_names, format_filter,
                                       parse_filter)
from gateway.oneroster.query import (Paging, Sort, check_sort, parse_fields, parse_paging,
                                     parse_sort_spec)
from gateway.oneroster.rendering import (RENDERED_ENTITIES, absolute_hrefs, field_names,
                                         fields_of, foreign_bits)
from gateway.oneroster.schemas import ALL_ENTITIES, Entity
from gateway.oneroster.serialize import serialize_page
from gateway.store import rostering as store
from gateway.store.rostering import PageCache, RecordQuery, SortKey

if TYPE_CHECKING:
    from gateway.sharing.visibility import Visibility

CHANNEL = "oneroster-rest"
"""The channel name this service reports to :meth:`Visibility.disclosed`."""

__all__ = ["CHANNEL", "CollectionParams", "Page", "decode_fragment", "filter_field_names",
           "get_record", "get_record_fragment", "list_records", "offered_fields",
           "parse_collection_params"]


# ------------------------------------------------------------------------------------- parameters

@dataclasses.dataclass(frozen=True, slots=True)
class CollectionParams:
    """A collection read's query parameters, as far as they can be checked without the entity."""

    paging: Paging
    filter: FilterExpr | None = None
    sort: Sort = Sort()
    fields: tuple[str, ...] | None = None


def _given(value: str | None) -> str | None:
    # An empty parameter (``filter=``) is what some clients send for "none".
    return value if value else None


def parse_collection_params(*, limit: str | None = None, offset: str | None = None,
                            filter: str | None = None, sort: str | None = None,
                            order_by: str | None = None, fields: Sequence[str] = (),
                            default_limit: int = 100, max_limit: int = 10000) -> CollectionParams:
    """Check ``limit``/``offset``, parse ``filter`` and ``sort``/``orderBy`` (REST binding
    §3.4); ``fields`` are the values of every ``fields`` parameter. Empty values count as absent.
    Raises InvalidData. Sort names are checked against the entity by :func:`list_records`."""
    paging = parse_paging(_given(limit), _given(offset), default_limit, max_limit)
    text = _given(filter)
    chosen = tuple(value for value in fields if value)
    return CollectionParams(paging=paging, filter=parse_filter(text) if text is not None else None,
                            sort=parse_sort_spec(_given(sort), _given(order_by)),
                            fields=chosen or None)


# ---------------------------------------------------------------------------------------- results

@dataclasses.dataclass(frozen=True, slots=True)
class Page:
    """One page of a collection: the records as sent, and where they sit in the whole.

    ``fragments`` are the records' JSON as sent, with hrefs relative to the service base (see
    :func:`gateway.oneroster.rendering.absolute_hrefs`); ``foreign_hrefs`` says whether some of
    them point into another service (a user's ``resources``); ``records`` decodes them under
    ``base_url``, for callers that want objects."""

    fragments: list[bytes]
    total: int
    offset: int
    limit: int
    base_url: str = ""
    foreign_hrefs: bool = False

    @property
    def records(self) -> list[dict[str, Any]]:
        """The records as objects, hrefs absolute."""
        return [decode_fragment(fragment, self.base_url, self.foreign_hrefs)
                for fragment in self.fragments]


def decode_fragment(fragment: bytes, base_url: str, foreign: bool | None = None) -> dict[str, Any]:
    """One record's JSON as sent (relative hrefs) as an object with absolute hrefs
    (``foreign``: see :func:`gateway.oneroster.rendering.absolute_hrefs`)."""
    return orjson.loads(absolute_hrefs(fragment, base_url, foreign))


def cache_identity(visibility: Visibility) -> Hashable | None:
    """What names ``visibility``'s predicates in the page cache's keys: its ``cache_identity``
    (every Visibility carries one; it changes whenever any of its predicates would). A duck-typed
    stand-in without one has nothing cached for it (None), since nothing else names its
    predicates."""
    identity = getattr(visibility, "cache_identity", None)
    return None if identity is None else ("identity", identity)


class _RecordingScope:
    """The visibility's row predicates, asked once per entity per request and remembered."""

    __slots__ = ("visibility", "clauses")

    def __init__(self, visibility: Visibility) -> None:
        self.visibility = visibility
        self.clauses: dict[str, ColumnElement[bool] | None] = {}

    def where(self, entity: str, table: Table) -> ColumnElement[bool] | None:
        """The visibility's predicate for ``entity`` (asked once)."""
        if entity not in self.clauses:
            self.clauses[entity] = self.visibility.where(entity, table)
        return self.clauses[entity]

    def driver(self, entity: str, table: Table) -> store.Driver | None:
        """The visibility's list of the visible rows of ``entity`` to read pages through, if it
        keeps one."""
        return self.visibility.driver(entity, table)


# ---------------------------------------------------------------------------------------- fields

def offered_fields(entity: Entity, visibility: Visibility) -> tuple[str, ...]:
    """The fields ``fields=`` may select and that are served: the entity's served fields that the
    visibility lets out, in schema order."""
    allowed = visibility.fields(entity.name)
    return tuple(name for name, spec in entity.fields.items()
                 if spec.served and (allowed is None or name in allowed))


def _sort_keys(entity: Entity, visibility: Visibility, sort: Sort) -> tuple[SortKey, ...]:
    """The ORDER BY keys for a parsed ``sort``, ending with the primary key; a name the entity
    cannot be sorted on (unknown, withheld or unfilterable) is InvalidData, as
    :func:`query.check_sort` words it."""
    table = store.READ_TABLES[entity.name]
    if sort.names:
        allowed = visibility.fields(entity.name)
        filterable = visibility.filterable(entity.name)
        sortable = {name: table.c[spec.column] for name, spec in entity.fields.items()
                    if spec.scalar and field_allowed(name, allowed, filterable)}
        check_sort(sort, sortable)
        keys = [SortKey(sortable[name], sort.descending) for name in sort.names]
    else:
        keys = []
    # The store builds the ORDER BY itself from the keys, so that its keyset seeks and its
    # ordering cannot disagree.
    keys.append(SortKey(table.c.id, sort.descending))
    return tuple(keys)


# ------------------------------------------------------------------------------------- the reads

def _not_found(what: str, sourced_id: str) -> NotFound:
    return NotFound(f"There is no {what} with sourcedId {sourced_id!r}.")


def _resolve_parents(conn: Connection, endpoint: Endpoint, path_ids: Sequence[str],
                     district_id: int, version: int, visibility: Visibility,
                     scope: _RecordingScope, cache: PageCache | None,
                     identity: Hashable | None) -> tuple[str, ...]:
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
        key = None
        if cache is not None and identity is not None:
            key = ("parent", district_id, version, parent.entity, parent.record_kind, resolved, within,
                   identity)
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
    entity = ALL_ENTITIES[endpoint.entity]
    selected = _selection(entity, visibility, params.fields)
    resolver = IdResolver(visibility)
    condition = None
    if params.filter is not None:
        condition = compile_filter(params.filter,
                                   EntityFilterFields(entity, visibility, resolver))
    keys = _sort_keys(entity, visibility, params.sort)
    # The cache key's parts that do not depend on the data version, computed once: the
    # visibility's identity (None: nothing is cached for it) and the filter with the stored ids
    # its sourcedIds resolved to.
    identity = cache_identity(visibility)
    filter_key = None if params.filter is None else (format_filter(params.filter),
                                                      tuple(resolver.answers))

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
                                   scope, cache, identity)
        selective = endpoint.relation is not None
        # A filter may select few rows through an index of its own (an email, a sourcedId): its
        # rows are then found that way and checked, not looked for along the driver's list.
        driver = None if selective or condition is not None else scope.driver(
            entity.name, store.READ_TABLES[entity.name])
        # Read through a driver, the rows are the driver's: the visibility's predicate for them
        # would only be checked again (and PostgreSQL plans it as a scan of the whole list).
        conditions = store.record_conditions(entity.name, district_id, scope, endpoint.kind,
                                             visible=driver is None)
        if endpoint.relation is not None:
            conditions.append(store.relation_clause(endpoint.relation, district_id, parents,
                                                    scope))
        if condition is not None:
            conditions.append(condition)
        cache_key = None if identity is None else (
            district_id, version, endpoint.operation_id, parents, filter_key, identity)
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
    fragments, foreign = _send(conn, endpoint, entity, rows, selected, district_id, visibility,
                               scope, cache, version, rendered, channel)
    if endpoint.discloses_parent and fragments:
        # What a person uses is about that person (userResources): the page discloses, of the
        # parent, its id as the app named it and the list the page holds.
        parent = endpoint.parents[-1]
        visibility.disclosed(channel, endpoint.operation_id, parent.entity,
                             [{"sourcedId": path_ids[-1], entity.collection_key: len(fragments)}],
                             [parents[-1]])
    return Page(fragments=fragments, total=total, offset=paging.offset, limit=paging.limit,
                base_url=base_url, foreign_hrefs=foreign)


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
    entity = ALL_ENTITIES[endpoint.entity]
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
                 cache, version, rendered)[0][0]


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
    return sum(1 for spec in ALL_ENTITIES[entity].fields.values() if spec.served)


def _servable_as_rendered(entity: str, visibility: Visibility) -> bool:
    """Whether ``entity``'s records can be served from their renderings for ``visibility``: they
    are rendered, and nothing in them depends on what the visibility hides (an org's or a
    session's children are the visible ones only, so a visibility that hides some of those is
    served as before)."""
    if entity not in RENDERED_ENTITIES:
        return False
    if entity in ("org", "academicSession"):
        return visibility.where(entity, store.READ_TABLES[entity]) is None
    return True


def _send(conn: Connection, endpoint: Endpoint, entity: Entity, rows: Sequence[Any],
          selected: tuple[str, ...] | None, district_id: int, visibility: Visibility,
          scope: _RecordingScope, cache: PageCache | None, version: int | None,
          rendered: bool, channel: str = CHANNEL) -> tuple[list[bytes], bool]:
    """Rows (their renderings, or their columns) to records' JSON as the app receives them
    (selected, presented; hrefs relative to the service base), reported to the ledger; and
    whether some of them hold hrefs into another service (told by their fields, not by
    reading them again)."""
    if not rows:
        return [], False
    if rendered and any(row["rendered"] is None for row in rows):
        # Not rendered yet (a store migrated since its last import): the page as before.
        rows = store.fetch_records(conn, entity.name, district_id,
                                   [row["sourced_id"] for row in rows])
        rendered = False
    if not rendered:
        records = _serialize(conn, endpoint, entity, rows, selected, district_id, visibility,
                             scope, "", cache, version, channel)
        dumps = orjson.dumps
        foreign = field_names(entity.name, foreign_bits(entity.name))
        return ([dumps(record) for record in records],
                bool(foreign) and any(name in record for record in records for name in foreign))
    verbatim = getattr(visibility, "verbatim", None)
    report = getattr(visibility, "disclosed_fields", None)
    if selected is None and verbatim is not None and verbatim(entity.name):
        fragments = [row["rendered"] for row in rows]
        bits = 0
        for row in rows:
            bits |= row["rendered_fields"]
        names: Collection[str] = field_names(entity.name, bits)
    else:
        fragments, names, bits = _presented(entity, rows, selected, visibility, cache, version)
    if report is None:
        visibility.disclosed(channel, endpoint.operation_id, entity.name,
                             [orjson.loads(fragment) for fragment in fragments],
                             [row["sourced_id"] for row in rows])
    else:
        people = "user_sourced_id" if entity.name == "enrollment" else "sourced_id"
        report(channel, endpoint.operation_id, entity.name, names, len(rows),
               [row[people] for row in rows])
    return fragments, bool(bits & foreign_bits(entity.name))


def _presented(entity: Entity, rows: Sequence[Any], selected: tuple[str, ...] | None,
               visibility: Visibility, cache: PageCache | None,
               version: int | None = None) -> tuple[list[bytes], set[str], int]:
    """The renderings of ``rows`` selected and presented for ``visibility`` (masked,
    pseudonymized), and the top-level fields that left (as names, and as field bits). Each result is remembered per
    visibility identity, selection and rendering, so a record is transformed once per policy
    version and change, not once per request.

    A rendering is named by its record's sourcedId and the district's data ``version`` the page
    was read at, when known: only an import changes a rendering, and it moves the version (the
    render pass of ``gateway db upgrade`` only fills renderings that were missing, which were
    never presented from). Hashing a ~600-byte rendering for every row of every page cost more
    than the rest of the lookup. Without a version, the rendering itself is the name."""
    identity = getattr(visibility, "cache_identity", None)
    # An unshared identity's presentations would serve no other request: not remembered.
    remember = cache is not None and identity is not None and not isinstance(identity, Unshared)
    keep = None if selected is None else frozenset(selected)
    present = visibility.present
    loads, dumps = orjson.loads, orjson.dumps
    if remember:
        kind = entity.name
        keys: list[Any] = (
            [(identity, kind, keep, version, row["sourced_id"]) for row in rows]
            if version is not None else
            [(identity, kind, keep, row["rendered"]) for row in rows])
        remembered = cache.presented_many(keys)
    else:
        remembered = [None] * len(rows)
    fragments: list[bytes] = []
    bits = 0
    for index, found in enumerate(remembered):
        if found is None:
            record = loads(rows[index]["rendered"])
            if keep is not None:
                record = {name: value for name, value in record.items() if name in keep}
            record = present(entity.name, record)
            found = (dumps(record), fields_of(entity.name, record))
            if remember:
                cache.put_presented(keys[index], found)
        fragments.append(found[0])
        bits |= found[1]
    return fragments, set(field_names(entity.name, bits)), bits


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
