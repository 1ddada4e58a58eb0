"""OneRoster 1.2 filtering (1.2 Rostering REST binding §3.4, "Filtering"), in one place: the
filter grammar and its compilation to SQL, and each entity's filterable fields (the catalogue a
collection read offers, before a visibility's cut). Free of flask.

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

The catalogue (:func:`filter_field_names`, :class:`EntityFilterFields`): every scalar field of the
entity's schema (:mod:`gateway.oneroster.schemas`), plus the dotted paths ``x.sourcedId`` for
every reference, ``terms.sourcedId``, ``agents.sourcedId``, ``resources.sourcedId`` (the
binding's filter parameter is a free string over the entity's fields: the official document
lists no narrower set, so a list of references is filtered like a class's terms), ``roles.*`` (``roles.role``,
``roles.roleType``, ``roles.org.sourcedId``, ``roles.beginDate``...), ``userProfiles.*`` and
``metadata.<key>``. A path into a list means "some item matches"; with ``!=`` it means "no item
equals". A dotted field is allowed when the visibility's ``filterable`` (None: everything) lists it
or its first segment, and the first segment is among its ``fields``. Id resolution applies to
``=`` and ``!=``; a visibility that pseudonymizes ids should keep the id fields out of
``filterable`` if ordering or ``~`` on them must not work on stored ids.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import operator
import re
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, Union

from sqlalchemy import Boolean, String, Table, and_, bindparam, case, cast, exists, false, func
from sqlalchemy import column as sql_column
from sqlalchemy import literal, literal_column, not_, or_, select, true
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

from gateway.errors import InvalidData, InvalidFilterField
from gateway.oneroster.schemas import ALL_ENTITIES, FIELD_MAPS, Entity, FieldSpec
from gateway.store import rostering as store

if TYPE_CHECKING:
    from gateway.sharing.visibility import Visibility

MAX_NESTING = 32
OPERATORS = ("=", "!=", ">", ">=", "<", "<=", "~")

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


# ------------------------------------------------------------------------- each entity's fields

_FILTER_TYPES = {"string": "string", "enum": "string", "boolean": "boolean", "date": "date",
                 "datetime": "datetime"}
_OBJECT_TABLES = {"roles": store.roles, "userProfiles": store.user_profiles}


def field_allowed(name: str, allowed: frozenset[str] | None,
                    filterable: frozenset[str] | None) -> bool:
    """Whether a (dotted) field may be filtered or sorted on under a visibility's ``fields``
    (``allowed``) and ``filterable`` cuts (None: no cut)."""
    top = name.split(".", 1)[0]
    if allowed is not None and top not in allowed:
        return False
    return filterable is None or name in filterable or top in filterable


class IdResolver:
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
_FieldFactory = Callable[[IdResolver], FilterField]


def _plain(field: FilterField) -> _FieldFactory:
    return lambda resolve: field


def _id_field(column: ColumnElement[Any], entity: str) -> _FieldFactory:
    """A sourcedId (own or referenced), compared as the stored id behind the app's id."""
    nullable = bool(getattr(column, "nullable", True))

    def factory(resolve: IdResolver) -> FilterField:
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

    def factory(resolve: IdResolver) -> FilterField:
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


def _link_exists(owner: Table, link: Table, key: str, active: bool = False
                 ) -> Callable[[ColumnElement[bool]], ColumnElement[bool]]:
    """EXISTS a row of ``link`` naming the owner in ``key`` (an ``active`` one: ``link`` rows
    are records with a status) and meeting the condition."""
    current = (link.c.status != store.TOBEDELETED,) if active else ()

    def matches(condition: ColumnElement[bool]) -> ColumnElement[bool]:
        return exists().where(link.c.district_id == owner.c.district_id,
                              link.c[key] == owner.c.sourced_id, *current, condition)
    return matches


def _profile_exists(condition: ColumnElement[bool]) -> ColumnElement[bool]:
    profiles = store.user_profiles
    return exists().where(profiles.c.district_id == store.users.c.district_id,
                          profiles.c.user_sourced_id == store.users.c.sourced_id,
                          profiles.c.status != store.TOBEDELETED, condition)


@functools.lru_cache(maxsize=None)
def _filter_factories(entity_name: str) -> Mapping[str, _FieldFactory]:
    """Every filterable field of an entity (before any visibility's cut), by dotted name."""
    entity = ALL_ENTITIES[entity_name]
    table = store.READ_TABLES[entity_name]
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
        elif spec.kind == "refs" and spec.related is not None and (
                spec.related.table in store.RESOURCE_LINK_TABLES):
            # A user's, class's or course's resources: its active links of the resources files,
            # the same the record is served with.
            link = store.RESOURCE_LINK_TABLES[spec.related.table]
            fields[f"{name}.sourcedId"] = _some_item(
                _link_exists(table, link, spec.related.key, active=True),
                link.c[spec.related.value], "string", spec.ref_type)
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
    return names + (("metadata.*",) if "metadata" in ALL_ENTITIES[entity].fields else ())


class EntityFilterFields(Mapping[str, FilterField]):
    """The fields a request may filter on: built on demand (a filter names few of the dozens an
    entity offers), the visibility's cut applied, ``metadata.<key>`` for any key."""

    def __init__(self, entity: Entity, visibility: Visibility, resolve: IdResolver) -> None:
        self.factories = _filter_factories(entity.name)
        self.resolve = resolve
        self.allowed = visibility.fields(entity.name)
        self.filterable = visibility.filterable(entity.name)
        self.metadata = None
        if "metadata" in entity.fields and self._allowed("metadata.*"):
            self.metadata = store.READ_TABLES[entity.name].c.metadata

    def _allowed(self, name: str) -> bool:
        return field_allowed(name, self.allowed, self.filterable)

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
