"""Store rows to OneRoster 1.2 JSON, fast (1.2 Rostering REST binding, the ``*DType`` classes).

The hot path of every rostering GET. It builds plain dicts from rows keyed by the store's column
names (a SQLAlchemy ``Row``, a ``RowMapping`` or a dict), following a plan compiled once per entity
from the field map in :mod:`gateway.oneroster.schemas`, so the REST names and columns are defined
in one place; marshmallow is never called here (the tests prove that the output validates against
both the marshmallow schemas and the official JSON schemas).

What the binding demands and this module does:

- references are ``{"href", "sourcedId", "type"}`` with ``href`` an absolute URL under the service
  base URL the caller passes (``/orgs/{id}`` for every org reference, schools included), or for a
  reference into another service (a user's ``resources``) under that service's base;
- booleans are the strings ``"true"``/``"false"``; dates are ``YYYY-MM-DD``; ``dateLastModified``
  is UTC with milliseconds and ``Z`` (``2026-11-28T12:00:00.000Z``);
- no field is ever ``null``: an absent optional field (None, or an empty list) is left out, and
  ``metadata`` appears only when it holds something. A required string the store left empty
  (``org.identifier``, ``course.courseCode`` are nullable columns) is sent as ``""``.

Values kept in other tables are passed in by the caller, fetched once per page: a user's role rows
and user-profile rows, the child rows of orgs and academic sessions, the resource links of users,
classes and courses. Pass them as ``related``, by
REST field name; they are grouped here by the column the field map names.
"""
from __future__ import annotations

import datetime as dt
import functools
import itertools
import re
from typing import Any, Collection, Iterable, Mapping, Sequence
from urllib.parse import quote

from gateway.oneroster.schemas import (ALL_ENTITIES, FIELD_MAPS, OBJECT_SCHEMAS, REF_PATHS,
                                       RESOURCES_FROM_ROSTERING, FieldSpec)

# Plan operations, one per way of turning a stored value into JSON.
_COPY, _BOOL, _DATE, _DATETIME, _STRINGS, _REF, _REFS, _METADATA = range(8)
_OBJECTS, _RELATED_OBJECTS, _RELATED_REFS, _SAME_ROW_OBJECTS = range(8, 12)

_REQUIRED_EMPTY = {_COPY: str, _STRINGS: list, _REFS: list, _OBJECTS: list}

_SAFE_ID = re.compile(r"[A-Za-z0-9._~-]+").fullmatch
_UTC = dt.timezone.utc


def format_datetime(value: dt.datetime | str) -> str:
    """``dateLastModified`` as the binding prints it: UTC, milliseconds, ``Z``."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is not None:
        value = value.astimezone(_UTC).replace(tzinfo=None)
    return value.isoformat(timespec="milliseconds") + "Z"


def format_date(value: dt.date | str) -> str:
    """A date as ``YYYY-MM-DD``."""
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return dt.date.fromisoformat(value).isoformat()


UP_TO_SERVICES = "../../"
"""How a path relative to a service base (``/ims/oneroster/rostering/v1p2``) climbs to the base
of every service (``/ims/oneroster``), to point into another one."""


def service_prefix(base_url: str, path: str) -> str:
    """The href prefix of the records under ``path`` relative to ``base_url``.

    ``path`` is a collection under the base (``orgs``) or, starting with :data:`UP_TO_SERVICES`,
    one of another service (``../../resources/v1p2/resources``). Under an absolute base the
    climb is resolved (RFC 3986 §5.2.4: the base's last two segments go), so no href ever
    carries dot segments; under the empty base (a rendering's) it is kept, as the mark that
    :func:`gateway.oneroster.rendering.absolute_hrefs` resolves when a response leaves."""
    base = base_url.rstrip("/")
    if base and path.startswith(UP_TO_SERVICES):
        base, path = base.rsplit("/", 2)[0], path[len(UP_TO_SERVICES):]
    return f"{base}/{path}/"


@functools.lru_cache(maxsize=64)
def _prefixes(base_url: str) -> dict[str, str]:
    paths = {**REF_PATHS, **RESOURCES_FROM_ROSTERING}
    return {ref_type: service_prefix(base_url, path) for ref_type, path in paths.items()}


@functools.lru_cache(maxsize=1 << 16)
def _href_id(sourced_id: str) -> str:
    # Cached: the same school, course and term ids recur on every row of a page.
    return sourced_id if _SAFE_ID(sourced_id) else quote(sourced_id, safe="")


def make_ref(base_url: str, ref_type: str, sourced_id: str) -> dict[str, str]:
    """A GUIDRef ``{href, sourcedId, type}`` to the record ``sourced_id`` of ``ref_type``."""
    return {"href": _prefixes(base_url)[ref_type] + _href_id(sourced_id), "sourcedId": sourced_id,
            "type": ref_type}


# A compiled step: (REST name, column, operation, argument, required).
_Step = tuple[str, "str | None", int, Any, bool]

_SCALAR_OPS = {"string": _COPY, "enum": _COPY, "boolean": _BOOL, "date": _DATE,
               "datetime": _DATETIME, "strings": _STRINGS, "metadata": _METADATA}


def _step(spec: FieldSpec, table: str, credential_passwords: bool) -> _Step | None:
    """The plan step for one field of a field map, or None for a field never served."""
    if not spec.served:
        return None
    if spec.kind in _SCALAR_OPS:
        return (spec.name, spec.column, _SCALAR_OPS[spec.kind], None, spec.required)
    if spec.kind == "ref":
        return (spec.name, spec.column, _REF, spec.ref_type, spec.required)
    if spec.kind == "refs":
        if spec.column is not None:
            return (spec.name, spec.column, _REFS, spec.ref_type, spec.required)
        return (spec.name, None, _RELATED_REFS, (spec.ref_type, spec.related), spec.required)
    if spec.kind == "objects":
        sub = _plan(spec.item, None, credential_passwords)
        if spec.column is not None:
            return (spec.name, spec.column, _OBJECTS, sub, spec.required)
        if spec.related.table == table and spec.related.key == "sourced_id":
            return (spec.name, None, _SAME_ROW_OBJECTS, sub, spec.required)
        return (spec.name, None, _RELATED_OBJECTS, (sub, spec.related), spec.required)
    raise TypeError(f"cannot serialize field {spec!r}")


@functools.lru_cache(maxsize=256)
def _plan(name: str, fields: frozenset[str] | None, credential_passwords: bool) -> tuple[_Step, ...]:
    """The compiled plan of an entity (or nested object) field map, limited to ``fields``."""
    entity = ALL_ENTITIES.get(name)
    table = entity.table if entity is not None else OBJECT_SCHEMAS[name].table
    steps = []
    # An entity's own field map (the resources service's too), else a nested object's.
    for spec in (entity.fields if entity is not None else FIELD_MAPS[name]).values():
        if fields is not None and spec.name not in fields:
            continue
        if name == "credential" and spec.name == "password" and not credential_passwords:
            continue
        step = _step(spec, table, credential_passwords)
        if step is not None:
            steps.append(step)
    return tuple(steps)


_COMPILED_SELECTIONS = 512
"""How many (entity, ``fields=`` selection) builders are kept. Clients send a few selections
each; a client sending a new one per request only ever evicts the least recently used."""
_BUILDER_NUMBERS = itertools.count(1)


@functools.lru_cache(maxsize=_COMPILED_SELECTIONS)
def _compiled(name: str, fields: frozenset[str] | None, credential_passwords: bool) -> Any:
    """The builder of an entity's field map limited to ``fields``: compiled on first use, kept
    in a bounded cache keyed by the selection's value (nothing to invalidate: field maps are
    fixed for the life of the process)."""
    return _builder(_plan(name, fields, credential_passwords))


def _builder(plan: tuple[_Step, ...]) -> Any:
    """``plan`` compiled to a Python function ``(row, prefixes, related) -> dict``.

    The hot loop of every page: one straight-line function per field map and selection, with no
    per-field dispatch, is several times faster than interpreting the plan row by row. Callers
    keep what they compile (:func:`_compiled`); nested objects' plans are compiled with it.
    """
    namespace: dict[str, Any] = {"_href_id": _href_id, "_datetime": _format_datetime_cached,
                                 "format_date": _format_date_cached, "_date": dt.date,
                                 "_EMPTY": _EMPTY}
    lines = ["def build(row, prefixes, related):", "    out = {}"]
    for index, (name, column, op, arg, required) in enumerate(plan):
        key = repr(name)
        if column is not None:
            lines.append(f"    v = row[{column!r}]")
            lines.append("    if v is None:")
            if required and op in _REQUIRED_EMPTY:
                # Only a nullable column behind a REST-required field (org.identifier,
                # course.courseCode) gets here: send it empty, never null.
                empty = {_COPY: "''", _STRINGS: "[]", _REFS: "[]", _OBJECTS: "[]"}[op]
                lines.append(f"        out[{key}] = {empty}")
            else:
                lines.append("        pass")
            if op == _COPY:
                lines.append(f"    else:\n        out[{key}] = v")
            elif op == _DATETIME:
                lines.append(f"    else:\n        out[{key}] = _datetime(v)")
            elif op == _REF:
                lines.append(f"    else:\n        out[{key}] = {{'href': prefixes[{arg!r}] + _href_id(v), "
                             f"'sourcedId': v, 'type': {arg!r}}}")
            elif op == _DATE:
                lines.append(f"    else:\n        out[{key}] = v.isoformat() if v.__class__ is _date "
                             f"else format_date(v)")
            elif op == _BOOL:
                lines.append(f"    else:\n        out[{key}] = 'true' if v else 'false'")
            elif op in (_STRINGS, _METADATA):
                test = "v or True" if (op == _STRINGS and required) else "v"
                lines.append(f"    elif {test}:\n        out[{key}] = v")
            elif op == _REFS:
                test = "True" if required else "v"
                lines.append(f"    elif {test}:\n        p = prefixes[{arg!r}]\n"
                             f"        out[{key}] = [{{'href': p + _href_id(i), 'sourcedId': i, "
                             f"'type': {arg!r}}} for i in v]")
            elif op == _OBJECTS:
                namespace[f"_sub{index}"] = _builder(arg)
                test = "True" if required else "v"
                lines.append(f"    elif {test}:\n        out[{key}] = [_sub{index}(i, prefixes, None) "
                             f"for i in v]")
            else:
                raise TypeError(f"no column operation {op}")
        elif op == _SAME_ROW_OBJECTS:
            namespace[f"_sub{index}"] = _builder(arg)
            lines.append(f"    out[{key}] = [_sub{index}(row, prefixes, None)]")
        else:
            lines.append(f"    found = related.get({key}, _EMPTY).get(row['sourced_id'], ()) "
                         f"if related else ()")
            test = "True" if required else "found"
            if op == _RELATED_OBJECTS:
                namespace[f"_sub{index}"] = _builder(arg[0])
                lines.append(f"    if {test}:\n        out[{key}] = [_sub{index}(i, prefixes, None) "
                             f"for i in found]")
            else:
                ref_type = arg[0]
                lines.append(f"    if {test}:\n        p = prefixes[{ref_type!r}]\n"
                             f"        out[{key}] = [{{'href': p + _href_id(i), 'sourcedId': i, "
                             f"'type': {ref_type!r}}} for i in found]")
    lines.append("    return out")
    exec(compile("\n".join(lines), f"<serializer {next(_BUILDER_NUMBERS)}>", "exec"), namespace)
    return namespace["build"]


@functools.lru_cache(maxsize=4096)
def _format_datetime_cached(value: dt.datetime | str) -> str:
    # Rows of one import share their dateLastModified: most of a page formats a few values.
    return format_datetime(value)


@functools.lru_cache(maxsize=4096)
def _format_date_cached(value: dt.date | str) -> str:
    # Role and session dates repeat across a page just the same.
    return format_date(value)


_EMPTY: Mapping[str, list] = {}


def _mapping(row: Any) -> Mapping[str, Any]:
    """A SQLAlchemy Row's mapping view; mappings pass through."""
    return getattr(row, "_mapping", row)


def group_related(entity: str, related: Mapping[str, Iterable[Any]] | None
                  ) -> dict[str, dict[str, list]]:
    """Group the related rows passed for ``entity`` by the record they belong to.

    ``related`` maps a REST field name (``roles``, ``userProfiles``, ``children``) to the rows of
    the table the field map names for it, fetched for the whole page; the result maps the field name
    to ``{owner sourcedId: [rows, or the value column for references]}``.
    """
    grouped: dict[str, dict[str, list]] = {}
    if not related:
        return grouped
    fields = ALL_ENTITIES[entity].fields
    for name, rows in related.items():
        spec = fields.get(name)
        if spec is None or spec.related is None or spec.column is not None:
            raise ValueError(f"{entity}.{name} is not read from related rows")
        key, value = spec.related.key, spec.related.value
        index: dict[str, list] = {}
        for row in rows:
            m = _mapping(row)
            index.setdefault(m[key], []).append(m if value is None else m[value])
        grouped[name] = index
    return grouped


def serialize_record(entity: str, row: Any, base_url: str, *,
                     related: Mapping[str, Iterable[Any]] | None = None,
                     fields: Collection[str] | None = None,
                     credential_passwords: bool = False) -> dict[str, Any]:
    """One stored record of ``entity`` as its OneRoster 1.2 JSON object (not wrapped).

    ``related``: see :func:`group_related` (e.g. ``{"roles": role_rows, "userProfiles":
    profile_rows}`` for a user, ``{"children": child_rows}`` for an org or academic session).
    ``fields``: the top-level fields to keep (the ``fields=`` query parameter), None for all.
    ``credential_passwords``: include ``userProfiles[].credentials[].password`` (off by default:
    sharing a stored credential is a decision for the caller's policy, not a default).
    """
    return serialize_page(entity, (row,), base_url, related=related, fields=fields,
                          credential_passwords=credential_passwords)[0]


def serialize_page(entity: str, rows: Iterable[Any], base_url: str, *,
                   related: Mapping[str, Iterable[Any]] | None = None,
                   fields: Collection[str] | None = None,
                   credential_passwords: bool = False) -> list[dict[str, Any]]:
    """A page of stored records of ``entity`` as OneRoster 1.2 JSON objects, in row order.

    The related rows (roles, user profiles, children) are those of the whole page, fetched in one
    query each by the caller; see :func:`serialize_record` for the arguments.
    """
    if isinstance(fields, str):
        raise TypeError("fields must be a collection of field names, not a string")
    build = _compiled(entity, None if fields is None else frozenset(fields), credential_passwords)
    prefixes = _prefixes(base_url)
    grouped = group_related(entity, related) or None
    return [build(_mapping(row), prefixes, grouped) for row in rows]


def select_fields(record: Mapping[str, Any], fields: Collection[str]) -> dict[str, Any]:
    """``record`` limited to the top-level ``fields`` (the ``fields=`` selection), in its order."""
    return {name: value for name, value in record.items() if name in fields}


def wrap_single(entity: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """The body of a single-record GET: ``{"org": {...}}``, ``{"demographics": {...}}``..."""
    return {ALL_ENTITIES[entity].single_key: record}


def wrap_collection(entity: str, records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The body of a collection GET: ``{"orgs": [...]}``, ``{"academicSessions": [...]}``..."""
    return {ALL_ENTITIES[entity].collection_key: records}
