"""The OneRoster 1.2 query parameters: ``limit``/``offset``, ``filter``, ``sort``/``orderBy`` and
``fields`` (1.2 Rostering REST binding §3.4, "Pagination", "Sorting", "Filtering", "Field
Selection"). Pure Python and SQLAlchemy Core: the web layer hands in the raw strings and gets back
values, an AST or SQL clauses; it never parses anything itself.

Filter grammar (a small hand-written tokenizer and recursive-descent parser, run per request)::

    filter     := or_expr END
    or_expr    := and_expr ( OR and_expr )*          -- AND binds tighter than OR
    and_expr   := primary ( AND primary )*
    primary    := "(" or_expr ")" | predicate
    predicate  := field op value
    field      := name ( "." name )*                  -- e.g. status, roles.org.sourcedId
    name       := [A-Za-z_] [A-Za-z0-9_-]*
    op         := "=" | "!=" | ">" | ">=" | "<" | "<=" | "~"   -- "~" contains, case-insensitive
    value      := "'" ( any character but "'" | "''" )* "'"     -- "''" is one quote: 'O''Brien'

Whitespace is allowed around every token. ``AND``/``OR`` are matched case-insensitively: the spec
writes them in capitals, but the words cannot be mistaken for anything else where a connective is
expected, and refusing ``and`` would only break clients. Because of that they cannot be field names.
Values must be quoted, as the binding's examples all are; a bare ``status=active`` is refused with
a message saying so. Parentheses may nest up to :data:`MAX_NESTING` levels (deeper input is an
attack, not a roster query). Error descriptions give the 1-based character position at which the
filter broke and what was expected there.

Semantics decided here (see :func:`compile_filter`): a value is always a bound parameter; ``!=``
matches rows where the field is absent (NULL), since a record without an email is "not equal" to
any email; dates given with an offset are converted to naive UTC, which is how the store keeps them.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal, Union

from sqlalchemy import Boolean, String, and_, bindparam, case, cast, exists, func, not_, or_
from sqlalchemy import column as sql_column
from sqlalchemy import literal, literal_column, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

from gateway.errors import InvalidData, InvalidFilterField, InvalidSelectionField

__all__ = [
    "And", "FieldType", "FilterExpr", "FilterField", "MAX_NESTING", "OPERATORS", "Or", "Paging",
    "Predicate", "compare_column", "compile_filter", "filter_fields", "format_filter",
    "parse_fields", "parse_filter", "parse_paging", "parse_sort",
]

# The OpenAPI document declares limit and offset as int32 (REST binding §3.4, Pagination).
INT32_MAX = 2**31 - 1
MAX_NESTING = 32
OPERATORS = ("=", "!=", ">", ">=", "<", "<=", "~")


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


# ---------------------------------------------------------------------------------- filter AST

@dataclasses.dataclass(frozen=True, slots=True)
class Predicate:
    """One comparison ``field op 'value'``; ``position`` is its 0-based offset in the filter."""

    field: str
    op: str
    value: str
    position: int = dataclasses.field(default=0, compare=False)


@dataclasses.dataclass(frozen=True, slots=True)
class And:
    """Every operand holds. Operands are never ``And`` themselves (the parser flattens them)."""

    operands: tuple[FilterExpr, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class Or:
    """At least one operand holds. Operands are never ``Or`` themselves."""

    operands: tuple[FilterExpr, ...]


FilterExpr = Union[Predicate, And, Or]


def filter_fields(expr: FilterExpr) -> frozenset[str]:
    """The field names ``expr`` mentions (so a sharing policy can refuse withheld fields)."""
    names: set[str] = set()
    stack: list[FilterExpr] = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, Predicate):
            names.add(node.field)
        else:
            stack.extend(node.operands)
    return frozenset(names)


def format_filter(expr: FilterExpr) -> str:
    """The canonical filter text for ``expr``; :func:`parse_filter` reads it back unchanged."""
    if isinstance(expr, Predicate):
        return f"{expr.field}{expr.op}'{expr.value.replace(chr(39), chr(39) * 2)}'"
    if isinstance(expr, And):
        # An OR inside an AND needs parentheses; nothing else does, since AND binds tighter.
        return " AND ".join(f"({format_filter(operand)})" if isinstance(operand, Or)
                            else format_filter(operand) for operand in expr.operands)
    return " OR ".join(format_filter(operand) for operand in expr.operands)


# ------------------------------------------------------------------------------- filter parser

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<op>!=|>=|<=|=|>|<|~)
  | (?P<string>'(?:[^']|'')*+')   # possessive: a dangling '' must not end the value
  | (?P<word>[^\s()'=!<>~]+)
  | (?P<other>.)
""", re.VERBOSE | re.DOTALL)
_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*(?:\.[A-Za-z_][A-Za-z0-9_\-]*)*")
_KEYWORDS = frozenset({"AND", "OR"})
_END = "end"


@dataclasses.dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    text: str
    position: int


def _describe(token: _Token) -> str:
    if token.kind == _END:
        return "the end of the filter"
    return repr(token.text) if len(token.text) <= 40 else repr(token.text[:37] + "...")


def _syntax_error(token: _Token, expected: str) -> InvalidData:
    return InvalidData(f"Invalid filter at character {token.position + 1}: expected {expected}, "
                       f"found {_describe(token)}.")


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    match = _TOKEN.match
    while position < len(text):
        found = match(text, position)
        assert found is not None  # the last alternative matches any single character
        kind = found.lastgroup
        if kind == "other":
            if found.group() == "'":
                raise InvalidData(f"Invalid filter at character {position + 1}: the quoted value "
                                  "starting here has no closing quote.")
            raise InvalidData(f"Invalid filter at character {position + 1}: unexpected character "
                              f"{found.group()!r}; operators are " + ", ".join(OPERATORS) + ".")
        if kind != "ws":
            tokens.append(_Token(kind, found.group(), position))
        position = found.end()
    tokens.append(_Token(_END, "", len(text)))
    return tokens


class _Parser:
    """Recursive descent over the token list; recursion happens only at parentheses."""

    __slots__ = ("tokens", "index")

    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.index = 0

    def peek(self) -> _Token:
        return self.tokens[self.index]

    def take(self) -> _Token:
        token = self.tokens[self.index]
        if token.kind != _END:
            self.index += 1
        return token

    def keyword(self) -> str | None:
        token = self.peek()
        if token.kind == "word" and token.text.upper() in _KEYWORDS:
            return token.text.upper()
        return None

    def parse(self) -> FilterExpr:
        if self.peek().kind == _END:
            raise InvalidData("Invalid filter: the filter is empty; expected a predicate such as "
                              "status='active'.")
        expr = self.or_expr(0)
        token = self.peek()
        if token.kind == "rparen":
            raise InvalidData(f"Invalid filter at character {token.position + 1}: ')' has no "
                              "matching '('.")
        if token.kind != _END:
            raise _syntax_error(token, "AND, OR or the end of the filter")
        return expr

    def or_expr(self, depth: int) -> FilterExpr:
        operands = [self.and_expr(depth)]
        while self.keyword() == "OR":
            self.take()
            operands.append(self.and_expr(depth))
        return _join(Or, operands)

    def and_expr(self, depth: int) -> FilterExpr:
        operands = [self.primary(depth)]
        while self.keyword() == "AND":
            self.take()
            operands.append(self.primary(depth))
        return _join(And, operands)

    def primary(self, depth: int) -> FilterExpr:
        token = self.peek()
        if token.kind == "lparen":
            if depth >= MAX_NESTING:
                raise InvalidData(f"Invalid filter at character {token.position + 1}: parentheses "
                                  f"are nested more than {MAX_NESTING} levels deep.")
            self.take()
            expr = self.or_expr(depth + 1)
            closing = self.peek()
            if closing.kind != "rparen":
                if closing.kind == _END:
                    raise InvalidData(f"Invalid filter at character {closing.position + 1}: "
                                      f"expected ')' to close the '(' at character "
                                      f"{token.position + 1}, found the end of the filter.")
                raise _syntax_error(closing, f"AND, OR or ')' to close the '(' at character "
                                             f"{token.position + 1}")
            self.take()
            return expr
        return self.predicate()

    def predicate(self) -> Predicate:
        previous = self.tokens[self.index - 1] if self.index else None
        token = self.take()
        if token.kind != "word" or token.text.upper() in _KEYWORDS:
            after = ""
            if previous is not None and previous.kind in ("word", "lparen"):
                after = f" after {previous.text}"
            raise _syntax_error(token, f"a field name or '('{after}")
        if not _FIELD.fullmatch(token.text):
            raise InvalidData(f"Invalid filter at character {token.position + 1}: {token.text!r} "
                              "is not a field name (names are letters, digits, '_' and '-', "
                              "joined by '.').")
        op = self.take()
        if op.kind != "op":
            raise _syntax_error(op, f"an operator ({' '.join(OPERATORS)}) after {token.text!r}")
        value = self.take()
        if value.kind != "string":
            raise _syntax_error(value, f"a value in single quotes after {token.text}{op.text}")
        return Predicate(token.text, op.text, value.text[1:-1].replace("''", "'"),
                         token.position)


def _join(kind: type[And] | type[Or], operands: list[FilterExpr]) -> FilterExpr:
    if len(operands) == 1:
        return operands[0]
    flat: list[FilterExpr] = []
    for operand in operands:
        # (a OR b) OR c is a OR b OR c: one canonical tree per meaning keeps the AST comparable.
        if isinstance(operand, kind):
            flat.extend(operand.operands)
        else:
            flat.append(operand)
    return kind(tuple(flat))


def parse_filter(text: str) -> FilterExpr:
    """Parse a ``filter`` parameter (REST binding §3.4, Filtering) into a :data:`FilterExpr`.

    Raises :class:`InvalidData` saying at which character the filter broke and what was expected.
    """
    return _Parser(_tokenize(text)).parse()


# ------------------------------------------------------------------------------ filter to SQL

FieldType = Literal["string", "date", "datetime", "boolean", "integer", "list"]
_FIELD_TYPES = frozenset({"string", "date", "datetime", "boolean", "integer", "list"})
_ORDERED = frozenset({"=", "!=", ">", ">=", "<", "<="})
_ALLOWED_OPS: dict[str, frozenset[str]] = {
    "string": frozenset(OPERATORS),
    "date": _ORDERED,
    "datetime": _ORDERED,
    "integer": _ORDERED,
    "boolean": frozenset({"=", "!="}),
    "list": frozenset({"=", "!=", "~"}),
}
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq, "!=": operator.ne, ">": operator.gt, ">=": operator.ge,
    "<": operator.lt, "<=": operator.le,
}


@dataclasses.dataclass(frozen=True, slots=True)
class FilterField:
    """How one filterable field maps to SQL.

    ``column`` is the SQL expression compared against; ``type`` says how the quoted value is read
    (``string``, ``date`` YYYY-MM-DD, ``datetime`` ISO 8601, ``boolean`` true/false, ``integer``,
    or ``list``: a JSON array of strings, where ``=`` means some element equals the value and ``~``
    some element contains it). A ``builder`` replaces the column for fields that need more than a
    comparison (``roles.role`` as an EXISTS over the roles table): it is called with the operator
    and the value already converted to ``type``, and must bind the value as a parameter.
    ``nullable`` (default: read from the column) decides whether ``!=`` adds ``OR column IS NULL``.
    """

    column: ColumnElement[Any] | None = None
    type: FieldType = "string"
    builder: Callable[[str, Any], ColumnElement[bool]] | None = None
    nullable: bool | None = None

    def __post_init__(self) -> None:
        if self.type not in _FIELD_TYPES:
            raise ValueError(f"unknown filter field type {self.type!r}")
        if self.column is None and self.builder is None:
            raise ValueError("a FilterField needs a column or a builder")


# re.ASCII: \d would otherwise accept digits of every script, and int() would read them.
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})", re.ASCII)
_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}(?::?\d{2})?)?)?", re.ASCII)


def _parse_date(field: str, value: str) -> dt.date:
    found = _DATE.fullmatch(value)
    try:
        if found is None:
            raise ValueError
        return dt.date(int(found[1]), int(found[2]), int(found[3]))
    except ValueError:
        raise InvalidData(f"Invalid filter value for {field}: {value!r} is not a date "
                          "(expected YYYY-MM-DD).") from None


def _parse_datetime(field: str, value: str) -> dt.datetime:
    found = _DATETIME.fullmatch(value)
    try:
        if found is None:
            raise ValueError
        year, month, day, hour, minute, second, fraction, zone = found.groups()
        micro = int((fraction or "0")[:6].ljust(6, "0"))
        moment = dt.datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0),
                             int(second or 0), micro)
        if zone and zone != "Z":
            digits = zone[1:].replace(":", "")
            offset = dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0))
            if offset >= dt.timedelta(days=1):
                raise ValueError
            # The store keeps naive UTC; a local time minus its offset is UTC.
            moment = moment - offset if zone[0] == "+" else moment + offset
        return moment
    except (ValueError, OverflowError):
        raise InvalidData(f"Invalid filter value for {field}: {value!r} is not a date-time "
                          "(expected ISO 8601, e.g. 2026-01-01T10:00:00Z or 2026-01-01).") from None


def _convert(field: str, spec: FilterField, value: str) -> Any:
    if spec.type == "date":
        return _parse_date(field, value)
    if spec.type == "datetime":
        return _parse_datetime(field, value)
    if spec.type == "boolean":
        # The binding writes booleans as the strings "true"/"false"; any case is accepted.
        lowered = value.lower()
        if lowered not in ("true", "false"):
            raise InvalidData(f"Invalid filter value for {field}: {value!r} is not a boolean "
                              "(expected 'true' or 'false').")
        return lowered == "true"
    if spec.type == "integer":
        if not re.fullmatch(r"[+-]?[0-9]{1,18}", value):
            raise InvalidData(f"Invalid filter value for {field}: {value!r} is not an integer.")
        return int(value)
    return value


def _is_nullable(spec: FilterField) -> bool:
    if spec.nullable is not None:
        return spec.nullable
    # A Column knows; any other expression (a function, a JSON path) may well yield NULL.
    return bool(getattr(spec.column, "nullable", True))


def compare_column(column: ColumnElement[Any], op: str, value: Any) -> ColumnElement[bool]:
    """``column op value`` with ``value`` bound as a parameter; ``~`` is a case-insensitive
    substring match in which the value's ``%`` and ``_`` are literal. NULLs are not special-cased:
    this is the building block for :attr:`FilterField.builder` functions.
    """
    if op == "~":
        # autoescape makes the user's %, _ and / literal; the pattern is still a bound parameter.
        return column.icontains(value, autoescape=True)
    return _COMPARE[op](column, bindparam(None, value, type_=column.type))


def _compile_predicate(predicate: Predicate,
                       fields: Mapping[str, FilterField]) -> ColumnElement[bool]:
    spec = fields.get(predicate.field)
    if spec is None:
        known = ", ".join(sorted(fields)) or "none"
        raise InvalidFilterField(f"Invalid filter at character {predicate.position + 1}: "
                                 f"{predicate.field!r} is not a field this collection can be "
                                 f"filtered on (filterable fields: {known}).")
    allowed = _ALLOWED_OPS[spec.type]
    if predicate.op not in allowed:
        usable = " ".join(op for op in OPERATORS if op in allowed)
        raise InvalidData(f"Invalid filter at character {predicate.position + 1}: the operator "
                          f"{predicate.op!r} does not apply to {predicate.field} ({spec.type}); "
                          f"use one of {usable}.")
    value = _convert(predicate.field, spec, predicate.value)
    if spec.builder is not None:
        return spec.builder(predicate.op, value)
    column = spec.column
    assert column is not None
    if spec.type == "list":
        matches = _list_match(column, value, substring=predicate.op == "~")
        if predicate.op == "!=":
            return or_(not_(matches), column.is_(None))
        return matches
    clause = compare_column(column, predicate.op, value)
    if predicate.op == "!=" and _is_nullable(spec):
        # SQL's NULL <> 'x' is unknown, which would drop records lacking the field; a record
        # without an email is, to a client, "not equal" to any email.
        clause = or_(clause, column.is_(None))
    return clause


def compile_filter(expr: FilterExpr, fields: Mapping[str, FilterField]) -> ColumnElement[bool]:
    """The SQL condition for ``expr`` over the filterable ``fields`` (REST binding §3.4, Filtering).

    Raises :class:`InvalidFilterField` for a field not in ``fields`` and :class:`InvalidData` for a
    value of the wrong type or an operator the field's type does not support. ``~`` is a
    case-insensitive substring match (``lower(col) LIKE``; PostgreSQL renders ``ILIKE``; SQLite's
    lower() folds ASCII only). Every value is a bound parameter.
    """
    if isinstance(expr, Predicate):
        return _compile_predicate(expr, fields)
    parts = [compile_filter(operand, fields) for operand in expr.operands]
    return and_(*parts) if isinstance(expr, And) else or_(*parts)


# ------------------------------------------------------------------------- JSON list matching

class _PerDialect(ColumnElement[bool]):
    """A boolean condition spelled differently on SQLite and on PostgreSQL."""

    inherit_cache = True
    type = Boolean()
    _traverse_internals = [("sqlite", InternalTraversal.dp_clauseelement),
                           ("postgresql", InternalTraversal.dp_clauseelement)]

    def __init__(self, sqlite: ColumnElement[bool], postgresql: ColumnElement[bool]) -> None:
        self.sqlite = sqlite
        self.postgresql = postgresql


@compiles(_PerDialect)
def _compile_per_dialect(element: _PerDialect, compiler: Any, **kw: Any) -> str:
    # The store runs on SQLite or PostgreSQL only (gateway.store.make_engine); any other dialect
    # here is str(statement) for a log or a debugger, which reads best in the SQLite spelling.
    return compiler.process(element.sqlite, **kw)


@compiles(_PerDialect, "postgresql")
def _compile_per_dialect_postgresql(element: _PerDialect, compiler: Any, **kw: Any) -> str:
    return compiler.process(element.postgresql, **kw)


def _list_match(column: ColumnElement[Any], value: str, substring: bool) -> ColumnElement[bool]:
    """Some element of the JSON array in ``column`` equals (or contains) ``value``.

    Done with each database's JSON functions rather than LIKE over the JSON text: matching the
    text depends on how the array was serialized (escapes of quotes, backslashes and non-ASCII)
    and can match across element boundaries; unpacking the array cannot. Works on JSON columns and
    on text columns holding JSON; a SQL NULL or JSON null array matches nothing.
    """
    # SQLite: json_each yields one row per element (a JSON null yields a single NULL element).
    elements = func.json_each(column).table_valued(sql_column("value", String))
    if substring:
        sqlite_test = elements.c.value.icontains(value, autoescape=True)
    else:
        sqlite_test = elements.c.value == bindparam(None, value, type_=String)
    sqlite = exists(select(literal_column("1")).select_from(elements).where(sqlite_test))
    # PostgreSQL: cast to jsonb so json and jsonb (and text) columns all work.
    as_jsonb = cast(column, JSONB)
    if substring:
        # jsonb_array_elements_text raises on a non-array (a stored JSON null), hence the CASE.
        array = case((func.jsonb_typeof(as_jsonb) == literal("array"), as_jsonb),
                     else_=cast(literal("[]"), JSONB))
        element = func.jsonb_array_elements_text(array, type_=String).column_valued("element")
        postgresql = exists(select(literal_column("1")).where(
            element.icontains(value, autoescape=True)))
    else:
        # Containment is exact, needs no subquery, and is false (not an error) for non-arrays.
        postgresql = as_jsonb.op("@>", return_type=Boolean)(
            func.jsonb_build_array(cast(bindparam(None, value, type_=String), String)))
    return _PerDialect(sqlite, postgresql)


# ------------------------------------------------------------------------------------- sorting

def _split_list(text: str, parameter: str) -> list[str]:
    items = [item.strip() for item in text.split(",")]
    if any(not item for item in items):
        raise InvalidData(f"The {parameter} parameter has an empty entry: {text!r}.")
    return items


def parse_sort(sort: str | None, order_by: str | None, sortable: Mapping[str, ColumnElement[Any]],
               tiebreaker: ColumnElement[Any]) -> list[ColumnElement[Any]]:
    """ORDER BY clauses for ``sort``/``orderBy`` (REST binding §3.4, Sorting).

    ``sort`` names one field, or several separated by commas (all in the ``orderBy`` direction);
    ``orderBy`` is ``asc`` (the default) or ``desc``. ``tiebreaker`` (the primary key) is always
    appended so that offset paging is deterministic. NULLs sort as the largest value on every
    backend (PostgreSQL's default; SQLite is told so), so a page boundary does not depend on the
    database.
    """
    if order_by is None or order_by == "asc":
        descending = False
    elif order_by == "desc":
        descending = True
    else:
        raise InvalidData(f"The orderBy parameter must be 'asc' or 'desc', got {order_by!r}.")
    clauses: list[ColumnElement[Any]] = []
    if sort is not None:
        names = _split_list(sort, "sort")
        unknown = [name for name in names if name not in sortable]
        if unknown:
            raise InvalidData("The sort parameter names " + ", ".join(map(repr, unknown)) +
                              ", which this collection cannot be sorted on (sortable fields: " +
                              (", ".join(sorted(sortable)) or "none") + ").")
        for name in dict.fromkeys(names):
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
