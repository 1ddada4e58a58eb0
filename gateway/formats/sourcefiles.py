"""What the export formats other than OneRoster share: files whose columns are found by name,
rows converted to OneRoster 1.2 rows, and values mapped onto 1.2's vocabularies.

SDS and Clever name their columns (headers are case-sensitive, optional columns may be absent,
order is free), so a file is read through its header rather than by position. Every column the
format documents goes somewhere: to a 1.2 column, or to ``metadata.<column>``; a column the
format does not document is kept as ``metadata.<column>`` too, with a notice. A value mapped
onto 1.2 in a way the district may want to know of (a lossy mapping, another case, another date
form) gives a notice; a value that cannot be mapped is a problem naming the file, line, column
and what the format allows, and its row is refused.
"""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from typing import Callable, Iterator

from gateway.oneroster.csv.binding import CsvFile
from gateway.oneroster.csv.bundle import Bundle
from gateway.oneroster.csv.feeds import (FeedContext, FileFeed, NumberedRows, OpenedFeed, find_file,
                                         numbered_rows)
from gateway.oneroster.csv.limits import LineTooLong
from gateway.oneroster.csv.problems import Notice, Problem
from gateway.oneroster.csv.reader import iter_csv

# The store keeps sourcedIds of at most this many characters; longer derived ids are hashed.
MAX_ID = 255
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_US_DATE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")
_COMPACT_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})")


@dataclass(frozen=True)
class SourceFile:
    """A file of an export format: its name and the columns its documentation lists (exact,
    case-sensitive headers). ``extension`` is a prefix of documented extension columns
    (Clever's ``ext.``), kept as metadata without a notice."""

    format: str
    filename: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    extension: str | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        """Every documented column, required first."""
        return self.required + self.optional


@dataclass
class Header:
    """A file's header, read by name: where each column is, and the undocumented ones."""

    source: SourceFile
    index: dict[str, int]
    width: int
    undocumented: list[str] = field(default_factory=list)
    extensions: list[str] = field(default_factory=list)

    def has(self, name: str) -> bool:
        """Whether the file has column ``name``."""
        return name in self.index


def read_header(source: SourceFile, header: list[str],
                notice: Callable[[Notice], None] | None) -> tuple[list[Problem], Header]:
    """Check a file's header against its format's documentation: every required column there
    (in exact case), none twice. Undocumented columns are kept as metadata (noted through
    ``notice`` when given)."""
    names = list(header)
    if names and names[0].startswith("\ufeff"):
        names[0] = names[0][1:]
    problems: list[Problem] = []
    index: dict[str, int] = {}
    for position, name in enumerate(names):
        if name in index:
            problems.append(Problem(source.filename, 1, name, name,
                                    f"each column once in the header (also column {index[name] + 1})"))
        else:
            index[name] = position
    missing = [name for name in source.required if name not in index]
    if missing:
        lowered = {name.lower(): name for name in names}
        hints = [f"{lowered[m.lower()]!r} differs from {m!r} in case" for m in missing if m.lower() in lowered]
        hint = f" ({'; '.join(hints)}: {source.format} headers are case-sensitive)" if hints else ""
        problems.append(Problem(source.filename, 1, ", ".join(missing), None,
                                f"the required column(s) of {source.format} {source.filename} in the "
                                f"header: {', '.join(source.required)}{hint}"))
    documented = set(source.columns)
    result = Header(source, index, len(names))
    for name in names:
        if name in documented or name == "":
            continue
        if source.extension and name.startswith(source.extension):
            result.extensions.append(name)
            continue
        result.undocumented.append(name)
        if notice is not None and not problems:
            notice(Notice(source.filename, 1, name, None, f"metadata.{name}",
                          f"not a column of {source.format} {source.filename}; kept as metadata.{name}"))
    return problems, result


class Row:
    """One data row of a source file, its values found by column name."""

    __slots__ = ("header", "fields", "line", "context", "refused")

    def __init__(self, header: Header, fields: list[str], line: int, context: FeedContext) -> None:
        self.header = header
        self.fields = fields
        self.line = line
        self.context = context
        self.refused = False

    def __getitem__(self, name: str) -> str:
        position = self.header.index.get(name)
        return "" if position is None else self.fields[position]

    @property
    def file(self) -> str:
        """The source file's name."""
        return self.header.source.filename

    def problem(self, column: str, value: str | None, expected: str) -> None:
        """Report a problem of this row (the row is then refused)."""
        self.refused = True
        self.context.problem(Problem(self.file, self.line, column, value, expected))

    def notice(self, column: str, read: str | None, stored: str | None, what: str) -> None:
        """Note a value this row's conversion normalized."""
        self.context.notice(Notice(self.file, self.line, column, read, stored, what))


Converter = Callable[[Row], "dict[str, str] | list[dict[str, str]] | None"]


def opener(source: SourceFile, target: CsvFile, convert: Converter, source_columns: dict[str, str],
           metadata: tuple[str, ...] = (), computed: tuple[str, ...] = (), derived: bool = False,
           keep_undocumented: bool = True, id_column: str | None = None,
           finish: Callable[[FeedContext], None] | None = None) -> Callable[[list[str], FeedContext], OpenedFeed]:
    """A feed opener for ``source`` feeding 1.2 file ``target``.

    ``convert`` turns a :class:`Row` into the 1.2 values by column name (absent ones are
    empty), a list of them when one source row gives several 1.2 rows, or None to leave the
    row out (having reported why, when it is a problem).
    ``metadata``: documented source columns kept as ``metadata.<column>``; ``computed``:
    ``metadata.<key>`` values that ``convert`` returns under that key. Undocumented and
    extension columns are kept as metadata when ``keep_undocumented``. ``id_column``: the
    column of the row's sourcedId, rejected when ``convert`` refuses the row, so that records
    referring to it are not reported again. A ``derived`` feed
    reads a file another feed reports: it reports nothing of the file itself. ``finish`` runs
    once the rows are read (what a feed can only tell at the end).
    """
    names = [column.name for column in target.columns]

    def open_feed(header: list[str], context: FeedContext) -> OpenedFeed:
        problems, head = read_header(source, header, None if derived or not keep_undocumented
                                     else context.notice)
        if problems:
            if derived:
                return OpenedFeed([], rows=lambda rows: iter(()))
            return OpenedFeed(problems)
        kept = [name for name in metadata if head.has(name)]
        if keep_undocumented:
            kept += head.extensions + head.undocumented
        positions = [head.index[name] for name in kept]
        metadata_columns = [f"metadata.{name}" for name in kept] + [f"metadata.{key}" for key in computed]
        report = None if derived else context.problem

        def rows(source_rows: Iterator[list[str]]) -> NumberedRows:
            for line, fields in numbered_rows(source_rows, head.width, source.filename, report):
                row = Row(head, fields, line, context)
                converted = convert(row)
                if converted is None:
                    if row.refused and id_column is not None and row[id_column]:
                        context.reject(row[id_column])
                    continue
                for values in converted if isinstance(converted, list) else (converted,):
                    yield line, ([values.get(name, "") for name in names] + [fields[i] for i in positions]
                                 + [values.get(f"metadata.{key}", "") for key in computed])
            if finish is not None:
                finish(context)
        return OpenedFeed([], metadata_columns, rows, source_columns)
    return open_feed


def read_side_file(bundle: Bundle, filename: str, source: SourceFile, context: FeedContext,
                   report: bool) -> Iterator[Row]:
    """The rows of a file that no feed reads in full before they are needed (SDS's roles.csv
    grades go into users.csv's users): read once before the import stages anything.
    ``report``: whether this reading reports the file's own problems (header, encoding)."""
    try:
        with bundle.open_text(filename) as handle:
            rows = iter_csv(handle, bundle.limits.max_line_length)
            header = next(rows, None)
            if header is None:
                if report:
                    context.problem(Problem(filename, 1, None, None, "a header row"))
                return
            problems, head = read_header(source, list(header), context.notice if report else None)
            if problems:
                for problem in problems if report else ():
                    context.problem(problem)
                return
            for line, fields in numbered_rows(rows, head.width, filename, context.problem if report else None):
                yield Row(head, fields, line, context)
    except (UnicodeDecodeError, csv.Error, LineTooLong) as exc:
        if report:
            context.problem(Problem(filename, None, None, None, f"UTF-8 RFC 4180 CSV ({exc})"))


class ExportFiles:
    """The files of one export in a bundle, found by name (or by name but for case, noted),
    and the feeds planned from them, every one bulk (these formats are full exports)."""

    def __init__(self, names: set[str], files: tuple[SourceFile, ...], required: tuple[SourceFile, ...],
                 holds: str, context: FeedContext) -> None:
        self.found = {source.filename: find_file(names, source.filename, context.notice) for source in files}
        self.feeds: list[FileFeed] = []
        format_name = files[0].format
        for source in required:
            if self.found[source.filename] is None:
                context.problem(Problem(source.filename, None, None, None,
                                        f"{source.filename} in the bundle ({holds})"))
        known = {source.filename.lower() for source in files}
        for other in sorted(names):
            if other.lower() not in known:
                context.notice(Notice(other, None, None, None, None, f"not a file of {format_name}; it was not read"))

    def __getitem__(self, filename: str) -> str | None:
        """The bundle's name of the format's file ``filename``, or None when it is absent."""
        return self.found[filename]

    def add(self, csv_file: CsvFile, source: SourceFile, open_feed: Callable[[list[str], FeedContext], OpenedFeed],
            derived: bool = False) -> None:
        """Plan a feed of ``csv_file`` from ``source``, when the bundle holds it."""
        filename = self.found[source.filename]
        if filename is not None:
            self.feeds.append(FileFeed(csv_file, "bulk", filename, open_feed, derived=derived))


def derived_id(*parts: str) -> str:
    """A sourcedId made from others (a role from its user and org): the same on every import,
    so that a re-import changes nothing; hashed when it would be longer than the store keeps."""
    joined = ":".join(parts)
    if len(joined) <= MAX_ID:
        return joined
    return "id-" + hashlib.blake2b(joined.encode(), digest_size=20).hexdigest()


def iso_date(row: Row, column: str, month_first: bool = False, quiet: bool = False) -> str:
    """The value of a date column as YYYY-MM-DD. Month/day/year dates (Clever's documented form,
    ``month_first``; the form of SDS's own samples, noted) and YYYYMMDD dates (noted) are
    converted; anything else is passed on for the importer's date check to report. ``quiet``:
    no notes (for a second reading of the same cell)."""
    raw = row[column]
    if not raw or _ISO_DATE.fullmatch(raw):
        return raw
    match = _US_DATE.fullmatch(raw)
    if match:
        month, day, year = (int(g) for g in match.groups())
        converted = f"{year:04d}-{month:02d}-{day:02d}"
        if not (month_first or quiet):
            row.notice(column, raw, converted, "a month/day/year date, read as YYYY-MM-DD")
        return converted
    match = _COMPACT_DATE.fullmatch(raw)
    if match:
        converted = "-".join(match.groups())
        if not quiet:
            row.notice(column, raw, converted, "a YYYYMMDD date, read as YYYY-MM-DD")
        return converted
    return raw


def is_date(value: str) -> bool:
    """Whether ``value`` is a real calendar date YYYY-MM-DD."""
    if not _ISO_DATE.fullmatch(value):
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Mapped:
    """What a format's value becomes in 1.2, and, for a mapping the district should know of
    (lossy, or not the format's own form), why (the notice's text)."""

    value: str
    note: str | None = None


class Vocabulary:
    """A format's enumeration and what each value becomes in 1.2. Values are matched exactly,
    then regardless of case (noted); anything else is a problem listing the format's values."""

    def __init__(self, format_name: str, values: dict[str, Mapped], documented: tuple[str, ...] | None = None):
        self.values = values
        self.by_lower = {key.lower(): key for key in values}
        shown = documented if documented is not None else tuple(values)
        self.expected = f"one of the {format_name} values " + ", ".join(shown)

    def map(self, row: Row, column: str, raw: str | None = None) -> str | None:
        """The 1.2 value for ``raw`` (default: the row's value of ``column``); None when it is
        not a value of the format (reported, the row refused). Empty stays empty."""
        raw = row[column] if raw is None else raw
        if raw == "":
            return ""
        mapped = self.values.get(raw)
        if mapped is None:
            key = self.by_lower.get(raw.strip().lower())
            if key is None:
                row.problem(column, raw, self.expected)
                return None
            mapped = self.values[key]
            row.notice(column, raw, mapped.value, f"differs from the value {key!r} only in case or spaces")
            return mapped.value
        if mapped.note:
            row.notice(column, raw, mapped.value, mapped.note)
        return mapped.value


def same(values: tuple[str, ...] | frozenset[str]) -> dict[str, Mapped]:
    """A vocabulary's values that 1.2 has too, unchanged."""
    return {value: Mapped(value) for value in values}


GRADE_NUMBERS = {str(n): Mapped(f"{n:02d}") for n in range(1, 14)}
"""Grades 1 to 13 as CEDS codes (01...13)."""
