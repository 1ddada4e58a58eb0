"""Reading one rostering file of a bundle: header check, then each row checked and converted to
the values the store keeps (1.2.1 CSV binding §3).

Rows come out as tuples in a fixed column order (see :class:`FileLayout`), already in the form
both SQLite and PostgreSQL accept from the driver: dates as ``YYYY-MM-DD`` strings, date-times as
``YYYY-MM-DD HH:MM:SS.ffffff`` UTC strings, booleans as 1/0, arrays as JSON text. That lets the
importer hand batches to the driver without per-value adaptation on the hot path.
"""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from typing import Callable, Iterator

import orjson

from gateway.oneroster import vocabulary
from gateway.oneroster.csv import binding
from gateway.oneroster.csv.binding import Column, CsvFile
from gateway.oneroster.csv.limits import bounded_lines
from gateway.oneroster.csv.problems import Notice, Problem
from gateway.passwords import PASSWORD_RULE, follows_password_rule, hash_password
from gateway.store.schema import metadata as store_metadata

# Columns every staged row starts with, before the entity's own columns.
LEADING_COLUMNS = ("line", "sourced_id", "status", "date_last_modified", "metadata", "row_hash")

_USER_ID = re.compile(r"\{([^{}:]+):([^{}]*)\}")
_USER_IDS = re.compile(r"\{[^{}:]+:[^{}]*\}(\s*,\s*\{[^{}:]+:[^{}]*\})*")
_YEAR = re.compile(r"\d{4}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# PostgreSQL refuses NUL in text; SQLite would keep it. Neither is a value a SIS means to send.
_NUL = "\x00"
# Values longer than this are shortened in problem reports (the line and column locate them).
_SHOWN_VALUE_LENGTH = 80
# Kinds whose values are never echoed in a problem report.
_SECRET_KINDS = ("password", "discarded")
# Kinds that a length check would only shadow: their own check already bounds them.
_SELF_BOUNDED_KINDS = ("status", "year", "datetime", "date", "bool", "password", "discarded",
                       "float", "moment")


class _Invalid(Exception):
    """A value failed its column's check; the message says what was expected."""


def _text(required: bool) -> Callable[[str], str | None]:
    if required:
        def convert(raw: str) -> str:
            if not raw:
                raise _Invalid("a non-empty value")
            return raw
        return convert
    return lambda raw: raw or None


def _enum(allowed: frozenset[str], required: bool) -> Callable[[str], str | None]:
    expected = "one of " + ", ".join(sorted(allowed)) + " (or an ext: value)"

    def convert(raw: str) -> str | None:
        if not raw:
            if required:
                raise _Invalid(expected)
            return None
        if raw in allowed or vocabulary.EXTENSION_VALUE.fullmatch(raw):
            return raw
        raise _Invalid(expected)
    return convert


def _bool(required: bool) -> Callable[[str], int | None]:
    def convert(raw: str) -> int | None:
        if not raw:
            if required:
                raise _Invalid("true or false")
            return None
        lowered = raw.lower()
        if lowered == "true":
            return 1
        if lowered == "false":
            return 0
        raise _Invalid("true or false")
    return convert


def _date(required: bool) -> Callable[[str], str | None]:
    def convert(raw: str) -> str | None:
        if not raw:
            if required:
                raise _Invalid("a date YYYY-MM-DD")
            return None
        if not _DATE.fullmatch(raw):
            raise _Invalid("a date YYYY-MM-DD")
        try:
            dt.date.fromisoformat(raw)
        except ValueError:
            raise _Invalid("a real calendar date YYYY-MM-DD") from None
        return raw
    return convert


def parse_datetime(raw: str) -> dt.datetime:
    """Parse an ISO 8601 date-time (``Z`` or an offset; none means UTC) to naive UTC."""
    value = dt.datetime.fromisoformat(raw)
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value


def format_datetime(value: dt.datetime) -> str:
    """The stored form of a naive UTC date-time (SQLAlchemy's SQLite format; PostgreSQL reads it)."""
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


def _datetime(required: bool) -> Callable[[str], str | None]:
    expected = "an ISO 8601 date-time such as 2026-09-01T08:00:00.000Z"

    def convert(raw: str) -> str | None:
        if not raw:
            if required:
                raise _Invalid(expected)
            return None
        if "T" not in raw and " " not in raw:
            raise _Invalid(expected)
        try:
            return format_datetime(parse_datetime(raw))
        except ValueError:
            raise _Invalid(expected) from None
    return convert


def _year(required: bool) -> Callable[[str], str | None]:
    def convert(raw: str) -> str | None:
        if not raw:
            if required:
                raise _Invalid("a four-digit year YYYY")
            return None
        if not _YEAR.fullmatch(raw):
            raise _Invalid("a four-digit year YYYY")
        return raw
    return convert


def split_list(raw: str) -> list[str]:
    """Split a comma-separated CSV list field, trimming blanks around items."""
    return [item.strip() for item in raw.split(",") if item.strip()]


def _list(required: bool, max_item_length: int | None = None) -> Callable[[str], str | None]:
    too_long = f"values of at most {max_item_length} characters each"

    def convert(raw: str) -> str | None:
        items = split_list(raw) if raw else []
        if not items:
            if required:
                raise _Invalid("at least one value")
            return None
        if max_item_length is not None and any(len(item) > max_item_length for item in items):
            raise _Invalid(too_long)
        return orjson.dumps(items).decode()
    return convert


def _user_ids(required: bool) -> Callable[[str], str | None]:
    expected = "identifiers as {type:identifier},{type:identifier}"

    def convert(raw: str) -> str | None:
        if not raw:
            if required:
                raise _Invalid(expected)
            return None
        if not _USER_IDS.fullmatch(raw.strip()):
            raise _Invalid(expected)
        pairs = [{"type": t.strip(), "identifier": i.strip()} for t, i in _USER_ID.findall(raw)]
        return orjson.dumps(pairs).decode()
    return convert


def _float(required: bool) -> Callable[[str], float | None]:
    def convert(raw: str) -> float | None:
        if not raw:
            if required:
                raise _Invalid("a number")
            return None
        try:
            value = float(raw)
        except ValueError:
            raise _Invalid("a number such as 92.5") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise _Invalid("a finite number")
        return value
    return convert


def _moment(required: bool) -> Callable[[str], str | None]:
    # Gradebook dates: the 1.1 tables call assignDate and dueDate dates, 1.2 date-times; both are
    # read, a date as midnight UTC (no notice: either is the binding's form).
    expected = "a date YYYY-MM-DD or an ISO 8601 date-time such as 2026-09-01T08:00:00.000Z"
    as_date = _date(required)
    as_datetime = _datetime(required)

    def convert(raw: str) -> str | None:
        if not raw:
            if required:
                raise _Invalid(expected)
            return None
        if len(raw) == 10:
            as_date(raw)
            return raw + " 00:00:00.000000"
        try:
            return as_datetime(raw)
        except _Invalid:
            raise _Invalid(expected) from None
    return convert


_SCALE_VALUE = re.compile(r"\{([^{}:]+):([^{}]*)\}")
_SCALE_VALUES = re.compile(r"\{[^{}:]+:[^{}]*\}(\s*,\s*\{[^{}:]+:[^{}]*\})*")


def _scale_values(required: bool) -> Callable[[str], str | None]:
    expected = "score scale values as {itemValueLHS:itemValueRHS},{itemValueLHS:itemValueRHS}"

    def convert(raw: str) -> str | None:
        if not raw:
            if required:
                raise _Invalid(expected)
            return None
        if not _SCALE_VALUES.fullmatch(raw.strip()):
            raise _Invalid(expected)
        pairs = [{"itemValueLHS": lhs.strip(), "itemValueRHS": rhs.strip()}
                 for lhs, rhs in _SCALE_VALUE.findall(raw)]
        return orjson.dumps(pairs).decode()
    return convert


def _password(required: bool) -> Callable[[str], str | None]:
    # The portal's rule applies to imported passwords too; an empty value sets none.
    expected = f"{PASSWORD_RULE} (the portal's password rule), or an empty value for no portal password"

    def convert(raw: str) -> str | None:
        if not raw:
            return None
        if not follows_password_rule(raw):
            raise _Invalid(expected)
        return hash_password(raw)
    return convert


def _discarded(raw: str) -> None:
    return None


def stored_length(csv_file: CsvFile, column: Column) -> int | None:
    """The most characters the store keeps for ``column`` of ``csv_file``, read from the store's
    column types so the import refuses exactly what PostgreSQL would (SQLite checks no length);
    for a list of references, the length of each item. None when nothing bounds it but the
    field length limit (JSON and TEXT columns) or its own check does."""
    if column.kind in _SELF_BOUNDED_KINDS or column.kind in ("list", "userids"):
        return None
    if column.kind == "reflist":
        assert column.target is not None
        target = store_metadata.tables[binding.ROSTERING_BY_NAME[column.target].table]
        return target.c["sourced_id"].type.length
    return getattr(store_metadata.tables[csv_file.table].c[column.attribute].type, "length", None)


def _status(mode: str) -> Callable[[str], str]:
    # Bulk rows leave status blank (1.2.1 CSV §2.3): a blank or active row is active.
    def convert(raw: str) -> str:
        if not raw:
            if mode == "delta":
                raise _Invalid("active or tobedeleted (delta rows must carry a status)")
            return "active"
        if raw not in vocabulary.STATUSES:
            raise _Invalid("active or tobedeleted")
        return raw
    return convert


def _converter(column: Column, mode: str, max_item_length: int | None = None) -> Callable[[str], object]:
    kind, required = column.kind, column.required
    if kind == "id":
        return _text(True)
    if kind == "status":
        return _status(mode)
    if kind == "datetime":
        return _datetime(mode == "delta")
    if kind in ("text", "ref"):
        return _text(required)
    if kind == "enum":
        assert column.enum is not None
        return _enum(column.enum, required)
    if kind == "bool":
        return _bool(required)
    if kind == "date":
        return _date(required)
    if kind == "year":
        return _year(required)
    if kind in ("list", "reflist"):
        return _list(required, max_item_length)
    if kind == "userids":
        return _user_ids(required)
    if kind == "password":
        return _password(required)
    if kind == "float":
        return _float(required)
    if kind == "moment":
        return _moment(required)
    if kind == "scalevalues":
        return _scale_values(required)
    if kind == "discarded":
        return _discarded
    raise ValueError(f"unknown column kind {kind!r}")


@dataclass
class FileLayout:
    """How one file's rows are staged: the staged column names, in the order of row tuples."""

    csv_file: CsvFile
    mode: str

    @property
    def entity_columns(self) -> tuple[Column, ...]:
        """The entity's own columns (everything after sourcedId, status, dateLastModified)."""
        return self.csv_file.columns[3:]

    @property
    def staged_columns(self) -> tuple[str, ...]:
        """Names of the staged columns, matching the tuples :func:`read_rows` yields."""
        return LEADING_COLUMNS + tuple(c.attribute for c in self.entity_columns)


def check_header(csv_file: CsvFile, header: list[str]) -> tuple[list[Problem], list[str]]:
    """Compare a file's header with the binding; return problems and the metadata column names."""
    problems: list[Problem] = []
    expected = csv_file.header
    if header and header[0].startswith("\ufeff"):
        header[0] = header[0][1:]
    given = tuple(header[: len(expected)])
    metadata = [name for name in header[len(expected):]]
    if given != expected:
        missing = [name for name in expected if name not in header]
        if missing:
            problems.append(Problem(csv_file.filename, 1, ", ".join(missing), None,
                                    "the required column(s) in the header: " + ",".join(expected)))
        else:
            for position, (want, got) in enumerate(zip(expected, given), start=1):
                if want != got:
                    problems.append(Problem(csv_file.filename, 1, got, got,
                                            f"column {position} to be {want} (header order is fixed: "
                                            + ",".join(expected) + ")"))
                    break
    bad_metadata = [name for name in metadata if not name.startswith("metadata.") or name == "metadata."]
    if bad_metadata and not problems:
        problems.append(Problem(csv_file.filename, 1, ", ".join(bad_metadata), None,
                                "only metadata.* extension columns after the binding's columns"))
    return problems, metadata


_BOOLEANS = {"true": 1, "false": 0}
_DATE_ONLY = "a date without a time, read as midnight UTC"
_CASE_ONLY = "differs from the binding's value only in case"


_UNBRACED = "identifiers without their braces, read as {type:identifier}"
_UNBRACED_USER_IDS = re.compile(r"[^{}:,]+:[^{}:,]*(\s*,\s*[^{}:,]+:[^{}:,]*)*")


def _braced_user_ids(raw: str) -> str | None:
    """``type:id,type:id`` as ``{type:id},{type:id}`` (a common export slip, unambiguous when
    each item has exactly one colon and no braces), or None."""
    if not _UNBRACED_USER_IDS.fullmatch(raw.strip()):
        return None
    return ",".join("{" + item.strip() + "}" for item in raw.split(","))


def _case_map(allowed: frozenset[str]) -> dict[str, str]:
    return {value.lower(): value for value in allowed}


def _fix_case(cases: dict[str, str], i: int, value: str, errors: list, fixes: list,
              expected: str) -> str | None:
    """The binding's value for one that differs from it only in case (noted in ``fixes``), or an
    error in ``errors``."""
    fixed = cases.get(value.lower())
    if fixed is None:
        errors.append((i, expected))
        return None
    fixes.append((i, value, fixed, _CASE_ONLY))
    return fixed



def _metadata_json(keys: list[str], values: list[str]) -> str | None:
    extension = {k: v for k, v in zip(keys, values) if v != ""}
    return orjson.dumps(extension).decode() if extension else None


def compile_row_converter(csv_file: CsvFile, mode: str,
                          metadata_keys: list[str]) -> Callable[[list[str], int, list, list], tuple]:
    """Build ``convert(fields, line, errors, fixes)``: one row's fields to its staged tuple.

    The function is generated from the binding so that every check of the common kinds (text,
    references, enums, booleans, dates, the status, the length the store keeps, the fingerprint)
    is inline code rather than one Python call per field: conversion is most of an import's
    Python time. Problems go to the ``errors`` list as (column index, expected); the tuple is
    meaningless when there are any. Values normalized because their meaning is unambiguous (an
    enumeration value in another case, a date-only dateLastModified) go to ``fixes`` as
    (column index, value read, value stored, what was done), for the import's notices.
    """
    columns = csv_file.columns
    width = len(columns)
    namespace: dict[str, object] = {
        "_Invalid": _Invalid, "_BOOLEANS": _BOOLEANS, "_EXT": vocabulary.EXTENSION_VALUE.fullmatch,
        "_fromiso": dt.date.fromisoformat, "_STATUSES": vocabulary.STATUSES, "_fix": _fix_case,
        "_blake2b": hashlib.blake2b, "_from_bytes": int.from_bytes, "_metadata": _metadata_json,
        "_KEYS": metadata_keys, "_STATUS_CASES": _case_map(vocabulary.STATUSES)}
    lines = ["def convert(f, line, errors, fixes):"]
    results = []
    for i, column in enumerate(columns):
        name = f"v{i}"
        results.append(name)
        kind, required = column.kind, column.required
        missing = f"        errors.append(({i}, {{expected!r}}))" if required else "        pass"
        limit = stored_length(csv_file, column)
        checks = lines
        if limit is not None and kind != "reflist":
            # Longer than the store keeps: reported alone (the value's other checks would only
            # repeat the problem), the column's own checks nested below.
            lines += [f"    if len(f[{i}]) > {limit}:",
                      f"        errors.append(({i}, {f'a value of at most {limit} characters'!r}))",
                      f"        {name} = None",
                      "    else:"]
            checks = []
        if kind in ("id", "text", "ref") and (required or kind == "id"):
            checks += [f"    {name} = f[{i}]",
                       f"    if not {name}: errors.append(({i}, 'a non-empty value'))"]
        elif kind in ("text", "ref"):
            checks.append(f"    {name} = f[{i}] or None")
        elif kind == "status":
            # Bulk rows leave status blank (1.2.1 CSV §2.3): a blank or active row is active.
            # Delta rows must say which.
            if mode == "bulk":
                checks.append(f"    {name} = f[{i}] or 'active'")
            else:
                checks += [f"    {name} = f[{i}]",
                           f"    if not {name}: errors.append(({i}, "
                           "'active or tobedeleted (delta rows must carry a status)'))"]
            checks += [f"    if {name} and {name} not in _STATUSES:",
                       f"        {name} = _fix(_STATUS_CASES, {i}, {name}, errors, fixes, 'active or tobedeleted')"]
        elif kind == "enum":
            namespace[f"E{i}"] = column.enum
            namespace[f"L{i}"] = _case_map(column.enum)
            expected = "one of " + ", ".join(sorted(column.enum)) + " (or an ext: value)"
            checks += [f"    {name} = f[{i}] or None",
                       f"    if {name} is None:", missing.format(expected=expected),
                       f"    elif {name} not in E{i} and not _EXT({name}):",
                       f"        {name} = _fix(L{i}, {i}, {name}, errors, fixes, {expected!r})"]
        elif kind == "datetime":
            namespace[f"c{i}"] = _converter(column, mode, limit)
            checks += [f"    {name} = f[{i}]",
                       f"    if len({name}) == 10 and {name}[4] == '-' and {name}[7] == '-':",
                       f"        fixes.append(({i}, {name}, {name} + 'T00:00:00Z', {_DATE_ONLY!r}))",
                       f"        {name} += 'T00:00:00Z'",
                       "    try:",
                       f"        {name} = c{i}({name})",
                       "    except _Invalid as exc:",
                       f"        errors.append(({i}, str(exc)))",
                       f"        {name} = None"]
        elif kind == "bool":
            checks += [f"    {name} = f[{i}]",
                       f"    if {name}:",
                       f"        {name} = _BOOLEANS.get({name}, _BOOLEANS.get({name}.lower(), -1))",
                       f"        if {name} == -1: errors.append(({i}, 'true or false'))",
                       "    else:",
                       f"        {name} = None",
                       missing.format(expected="true or false")]
        elif kind == "date":
            checks += [f"    {name} = f[{i}] or None",
                       f"    if {name} is None:", missing.format(expected="a date YYYY-MM-DD"),
                       f"    elif len({name}) != 10 or {name}[4] != '-' or {name}[7] != '-':",
                       f"        errors.append(({i}, 'a date YYYY-MM-DD'))",
                       "    else:",
                       "        try:",
                       f"            _fromiso({name})",
                       "        except ValueError:",
                       f"            errors.append(({i}, 'a real calendar date YYYY-MM-DD'))"]
        elif kind == "userids":
            namespace[f"c{i}"] = _converter(column, mode, limit)
            namespace["_braced"] = _braced_user_ids
            checks += ["    try:",
                       f"        {name} = c{i}(f[{i}])",
                       "    except _Invalid as exc:",
                       f"        {name} = _braced(f[{i}])",
                       f"        if {name} is None:",
                       f"            errors.append(({i}, str(exc)))",
                       "        else:",
                       f"            fixes.append(({i}, f[{i}], {name}, {_UNBRACED!r}))",
                       f"            {name} = c{i}({name})"]
        else:
            namespace[f"c{i}"] = _converter(column, mode, limit)
            checks += ["    try:",
                       f"        {name} = c{i}(f[{i}])",
                       "    except _Invalid as exc:",
                       f"        errors.append(({i}, str(exc)))",
                       f"        {name} = None"]
        if checks is not lines:
            lines += ["    " + check for check in checks]
    # The fingerprint covers everything a client would see change: not the sourcedId (the key),
    # status (compared on its own), dateLastModified (ours to set) or the password (never shown).
    # A discarded value keeps its place as an empty string: the fingerprints of rows that never
    # had one stay what they were, and no trace of a secret is kept in them.
    content = ["''" if c.kind == "discarded" else f"f[{i}]" for i, c in enumerate(columns)
               if c.kind not in ("id", "status", "datetime", "password")]
    content += [f"f[{i}]" for i in range(width, width + len(metadata_keys))]
    lines.append(f"    fingerprint = _from_bytes(_blake2b('\\x1f'.join(({', '.join(content)},)).encode(), "
                 "digest_size=8).digest(), 'big', signed=True)")
    metadata = f"_metadata(_KEYS, f[{width}:])" if metadata_keys else "None"
    # Staged order: line, sourcedId, status, dateLastModified, metadata, fingerprint, the rest.
    lines.append(f"    return (line, v0, v1, v2, {metadata}, fingerprint, {', '.join(results[3:])},)")
    exec("\n".join(lines), namespace)  # noqa: S102 -- generated from the binding, not from input
    return namespace["convert"]  # type: ignore[return-value]


def read_rows(layout: FileLayout, rows: Iterator[tuple[int, list[str]]], metadata_columns: list[str],
              problems: Callable[[Problem], None], rejected: Callable[[str], None],
              notices: Callable[[Notice], None] | None = None, source: str | None = None,
              source_columns: dict[str, str] | None = None) -> Iterator[tuple]:
    """Check and convert each data row of a file (the header already consumed).

    ``rows`` are (line, fields) pairs, the fields in the binding's column order followed by the
    metadata columns; ``source`` and ``source_columns`` name the file and columns the district
    sent, when the rows were converted from another form (a OneRoster 1.1 file, another export
    format), so that problems point at what the district can fix.

    Yields one tuple per valid row, in ``layout.staged_columns`` order; reports each invalid
    value through ``problems`` (a row with any problem is not yielded, and its sourcedId, if any,
    goes to ``rejected`` so that rows referring to it are not reported a second time) and each
    normalized value through ``notices``.
    """
    csv_file = layout.csv_file
    filename = source or csv_file.filename
    columns = csv_file.columns
    total_width = len(columns) + len(metadata_columns)
    metadata_keys = [name[len("metadata."):] for name in metadata_columns]
    convert = compile_row_converter(csv_file, layout.mode, metadata_keys)
    renamed = source_columns or {}
    names = [renamed.get(column.name, column.name) for column in columns] + metadata_columns
    secret = {i for i, column in enumerate(columns) if column.kind in _SECRET_KINDS}
    # A rejected row's sourcedId is remembered only if it could be a real one.
    id_length = stored_length(csv_file, columns[0])

    def shown(i: int, value: str) -> str:
        if i in secret:
            return "(not shown)"
        return value if len(value) <= _SHOWN_VALUE_LENGTH else value[:_SHOWN_VALUE_LENGTH] + "..."

    errors: list[tuple[int, str]] = []
    fixes: list[tuple[int, str, str, str]] = []
    for line, fields in rows:
        if len(fields) != total_width:
            if len(fields) == 1 and fields[0] == "" or not fields:
                problems(Problem(filename, line, None, "", "no blank lines inside a CSV file"))
            else:
                problems(Problem(filename, line, None, f"{len(fields)} fields",
                                 f"{total_width} fields, one per header column"))
            continue
        if _NUL in "".join(fields):
            errors += [(i, "text without NUL characters (U+0000)") for i, value in enumerate(fields)
                       if _NUL in value]
        else:
            staged = convert(fields, line, errors, fixes)
        if fixes:
            if notices is not None:
                for i, read, stored, what in fixes:
                    notices(Notice(filename, line, names[i], shown(i, read), shown(i, stored), what))
            fixes.clear()
        if errors:
            for i, expected in errors:
                problems(Problem(filename, line, names[i], shown(i, fields[i]), expected))
            errors.clear()
            if fields[0] and len(fields[0]) <= id_length and _NUL not in fields[0]:
                rejected(fields[0])
            continue
        yield staged


def iter_csv(handle, max_line_length: int) -> Iterator[list[str]]:
    """RFC 4180 rows of an open text file, each physical line read with a bound (raises
    :class:`~gateway.oneroster.csv.limits.LineTooLong` past ``max_line_length``)."""
    return csv.reader(bounded_lines(handle, max_line_length), strict=True)
