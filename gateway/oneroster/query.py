"""The OneRoster 1.2 query parameters: ``limit``/``offset``, ``filter``, ``sort``/``orderBy`` and
``fields`` (1.2 Rostering REST binding §3.4, "Pagination", "Sorting", "Filtering", "Field
Selection"). Pure Python and SQLAlchemy Core: the web layer hands in the raw strings and gets back
values, an AST or SQL clauses; it never parses anything itself.

Filtering lives in :mod:`gateway.oneroster.filters` (the grammar, its SQL, and each entity's
filterable fields); its names are re-exported here for the callers that import them from this
module. Sorting is parsed once, by :func:`parse_sort_spec`, into a :class:`Sort` that the read
path uses as it is.
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy.sql.elements import ColumnElement

from gateway.errors import InvalidData, InvalidSelectionField
# Re-exported: filtering moved to gateway.oneroster.filters.
from gateway.oneroster.filters import (MAX_NESTING, OPERATORS, And, FieldType, FilterExpr,
                                       FilterField, Or, Predicate, compare_column, compile_filter,
                                       filter_fields, format_filter, parse_filter)

__all__ = [
    "And", "FieldType", "FilterExpr", "FilterField", "MAX_NESTING", "OPERATORS", "Or", "Paging",
    "Predicate", "Sort", "compare_column", "compile_filter", "filter_fields", "format_filter",
    "order_clauses", "parse_fields", "parse_filter", "parse_paging", "parse_sort",
    "parse_sort_spec",
]

# The OpenAPI document declares limit and offset as int32 (REST binding §3.4, Pagination).
INT32_MAX = 2**31 - 1


# --------------------------------------------------------------------------------------- paging

@dataclasses.dataclass(frozen=True, slots=True)
class Paging:
    """The page a collection request asked for: at most ``limit`` records from ``offset``."""

    limit: int
    offset: int


_DIGITS = re.compile(r"[0-9]+")
_MAX_DIGITS = 19


def _non_negative_int(name: str, text: str) -> int:
    # ASCII digits only: int() would also take " 5", "+5", "5_000" and other scripts' digits.
    if not _DIGITS.fullmatch(text):
        raise InvalidData(f"The {name} parameter must be a whole number, got {text!r}.")
    significant = text.lstrip("0") or "0"
    # int() refuses strings of more than 4300 digits with a ValueError (Python's guard against
    # quadratic conversions); a number that long is past every bound the callers check, so any
    # value past those bounds stands for it.
    return int(significant) if len(significant) <= _MAX_DIGITS else 10**_MAX_DIGITS


def parse_paging(limit: str | None, offset: str | None, default_limit: int,
                 max_limit: int) -> Paging:
    """Validate ``limit`` and ``offset`` (REST binding §3.4, Pagination: limit >= 1, offset >= 0).

    A limit above ``max_limit`` is capped to it rather than refused: the binding lets a server
    return fewer records than asked for, and clients (Google Classroom asks for 10000) follow the
    paging links for the rest. An absent limit is ``default_limit`` (the binding's default is 100).
    """
    if limit is None:
        page_size = default_limit
    else:
        page_size = _non_negative_int("limit", limit)
        if page_size < 1:
            raise InvalidData(f"The limit parameter must be at least 1, got {limit!r}.")
    page_size = min(page_size, max_limit)
    if offset is None:
        start = 0
    else:
        start = _non_negative_int("offset", offset)
        if start > INT32_MAX:
            raise InvalidData(f"The offset parameter must be at most {INT32_MAX} (int32), "
                              f"got {offset!r}.")
    return Paging(limit=page_size, offset=start)



# ------------------------------------------------------------------------------------- sorting

def _split_list(text: str, parameter: str) -> list[str]:
    items = [item.strip() for item in text.split(",")]
    if any(not item for item in items):
        raise InvalidData(f"The {parameter} parameter has an empty entry: {text!r}.")
    return items


@dataclasses.dataclass(frozen=True, slots=True)
class Sort:
    """A collection read's ``sort``/``orderBy``, parsed once: the field names in order (duplicates
    dropped; empty when the client sent no ``sort``) and the direction."""

    names: tuple[str, ...] = ()
    descending: bool = False


def parse_sort_spec(sort: str | None, order_by: str | None) -> Sort:
    """Parse ``sort``/``orderBy`` (REST binding §3.4, Sorting) without knowing the entity:
    ``sort`` names one field or several separated by commas (all in the ``orderBy`` direction);
    ``orderBy`` is ``asc`` (the default) or ``desc``. Raises InvalidData."""
    if order_by is None or order_by == "asc":
        descending = False
    elif order_by == "desc":
        descending = True
    else:
        raise InvalidData(f"The orderBy parameter must be 'asc' or 'desc', got {order_by!r}.")
    names = () if sort is None else tuple(dict.fromkeys(_split_list(sort, "sort")))
    return Sort(names, descending)


def check_sort(spec: Sort, sortable: Mapping[str, Any]) -> None:
    """Raise InvalidData naming every field of ``spec`` that is not ``sortable``."""
    unknown = [name for name in spec.names if name not in sortable]
    if unknown:
        raise InvalidData("The sort parameter names " + ", ".join(map(repr, unknown)) +
                          ", which this collection cannot be sorted on (sortable fields: " +
                          (", ".join(sorted(sortable)) or "none") + ").")


def parse_sort(sort: str | None, order_by: str | None, sortable: Mapping[str, ColumnElement[Any]],
               tiebreaker: ColumnElement[Any]) -> list[ColumnElement[Any]]:
    """ORDER BY clauses for ``sort``/``orderBy`` (REST binding §3.4, Sorting), by
    :func:`parse_sort_spec` and :func:`order_clauses`."""
    return order_clauses(parse_sort_spec(sort, order_by), sortable, tiebreaker)


def order_clauses(spec: Sort, sortable: Mapping[str, ColumnElement[Any]],
                  tiebreaker: ColumnElement[Any]) -> list[ColumnElement[Any]]:
    """ORDER BY clauses for a parsed ``sort`` (checked by :func:`check_sort`; raises
    InvalidData).

    ``tiebreaker`` (the primary key) is always appended so that offset paging is deterministic.
    NULLs sort as the largest value on every backend (PostgreSQL's default; SQLite is told so), so
    a page boundary does not depend on the database.
    """
    check_sort(spec, sortable)
    descending = spec.descending
    clauses: list[ColumnElement[Any]] = []
    for name in spec.names:
        column = sortable[name]
        clause = column.desc() if descending else column.asc()
        if getattr(column, "nullable", True):
            # Spelled only for nullable columns: SQLite cannot use an index otherwise.
            clause = clause.nulls_first() if descending else clause.nulls_last()
        clauses.append(clause)
    clauses.append(tiebreaker.desc() if descending else tiebreaker.asc())
    return clauses


# ------------------------------------------------------------------------------ field selection

def parse_fields(fields: str | Iterable[str] | None,
                 available: Sequence[str]) -> tuple[str, ...] | None:
    """The fields a client selected (REST binding §3.4, Field Selection), or None when absent.

    Accepts ``fields=a,b`` (what clients send) and the repeated ``fields=a&fields=b`` form that the
    OpenAPI document's array parameter also allows. Names are trimmed, duplicates dropped, order
    kept. Raises :class:`InvalidSelectionField` naming every unknown field.
    """
    if fields is None:
        return None
    texts = [fields] if isinstance(fields, str) else list(fields)
    if not texts:
        return None
    names: list[str] = []
    for text in texts:
        names.extend(_split_list(text, "fields"))
    known = set(available)
    unknown = list(dict.fromkeys(name for name in names if name not in known))
    if unknown:
        raise InvalidSelectionField("The fields parameter names " + ", ".join(map(repr, unknown)) +
                                    ", which this collection does not have (available fields: " +
                                    ", ".join(available) + ").")
    return tuple(dict.fromkeys(names))
