"""Where the rows of each OneRoster 1.2 rostering file come from.

The importer validates and stages rows in the 1.2.1 CSV binding's shape, whatever the district
sent. A :class:`FileFeed` says which file of the bundle feeds one 1.2 file and how its rows are
turned into 1.2 rows: unchanged for a 1.2 bundle, converted for a OneRoster 1.1 bundle or another
export format (see :mod:`gateway.formats`). Problems and notices name the file, line and column
the district sent, so that it knows what to fix in its own export.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator

from gateway.oneroster.csv import binding
from gateway.oneroster.csv.binding import CsvFile
from gateway.oneroster.csv.problems import Notice, Problem
from gateway.oneroster.csv.reader import check_header

NumberedRows = Iterator[tuple[int, list[str]]]
"""(line, fields) pairs: the line of the source file a row was read from (1 is the header)."""


@dataclass
class FeedContext:
    """What a feed may ask while it converts rows: where to report, and what the bundle and the
    store already say about orgs (a OneRoster 1.1 ``administrator`` becomes a district or a site
    administrator by the type of its org)."""

    problem: Callable[[Problem], None]
    notice: Callable[[Notice], None]
    org_type: Callable[[str], str | None] = lambda sourced_id: None
    # Set by the importer while a feed's rows are read: a row that the feed itself refuses
    # (after reporting why) names its sourcedId here, so that rows referring to it are not
    # reported a second time.
    reject: Callable[[str], None] = lambda sourced_id: None


@dataclass
class OpenedFeed:
    """A feed's source file after its header was read: the header's problems (the file is not
    read further when there are any), the ``metadata.*`` columns kept, the rows as 1.2 rows, and
    the source's name for each 1.2 column that it names differently."""

    problems: list[Problem]
    metadata_columns: list[str] = field(default_factory=list)
    rows: Callable[[Iterator[list[str]]], NumberedRows] = lambda rows: enumerate(rows, start=2)
    source_columns: dict[str, str] = field(default_factory=dict)


@dataclass
class FileFeed:
    """One 1.2 rostering file as fed from the bundle.

    ``source``: the bundle's file that is read (``users.csv`` feeds both users and roles in a
    1.1 bundle). Several feeds may feed one 1.2 file, one after the other (Clever's
    students.csv and teachers.csv both feed users): a plan lists them next to each other.
    ``open``: given that file's header, how its rows are read. ``replace_by``: for
    rows derived from an owner (the roles of a 1.1 user), the owner column whose listed owners
    have exactly the rows fed, so that a delta retires the rows an owner no longer has.
    """

    csv_file: CsvFile
    mode: str
    source: str
    open: Callable[[list[str], FeedContext], OpenedFeed]
    replace_by: str | None = None
    # Derived from a file another feed reads too: that feed reports the file's header and emptiness.
    derived: bool = False

    @property
    def name(self) -> str:
        """The 1.2 file's name (``users``, ``roles``...)."""
        return self.csv_file.name


def same_as_binding(csv_file: CsvFile) -> Callable[[list[str], FeedContext], OpenedFeed]:
    """The opener of a file in the 1.2 binding's own shape: its header is checked as is and its
    rows are read unchanged."""
    def open_feed(header: list[str], context: FeedContext) -> OpenedFeed:
        problems, metadata = check_header(csv_file, header)
        return OpenedFeed(problems, metadata)
    return open_feed


def find_file(names: set[str], filename: str, notice: Callable[[Notice], None]) -> str | None:
    """The bundle's file called ``filename``, or one whose name differs only in case (noted)."""
    if filename in names:
        return filename
    matches = sorted(name for name in names if name.lower() == filename.lower())
    if len(matches) == 1:
        notice(Notice(matches[0], None, None, None, None,
                      f"file name differs from the binding's {filename} only in case; read as {filename}"))
        return matches[0]
    return None


def numbered_rows(source: Iterator[list[str]], width: int, filename: str,
                  problem: Callable[[Problem], None] | None) -> Iterator[tuple[int, list[str]]]:
    """Number the data rows of a file converted to 1.2 rows (the header is line 1) and set aside
    those without one field per header column, reported through ``problem`` when given (once
    per file: by the feed that reports the file's problems)."""
    line = 1
    for fields in source:
        line += 1
        if len(fields) != width:
            if problem is not None:
                if not fields or fields == [""]:
                    problem(Problem(filename, line, None, "", "no blank lines inside a CSV file"))
                else:
                    problem(Problem(filename, line, None, f"{len(fields)} fields",
                                    f"{width} fields, one per header column"))
            continue
        yield line, fields


def rostering_file(name: str) -> CsvFile:
    """The binding's rostering file called ``name``."""
    return binding.ROSTERING_BY_NAME[name]


def by_header_name(csv_file: CsvFile, expected: tuple[str, ...] | None = None
                   ) -> Callable[[list[str], FeedContext], OpenedFeed]:
    """The opener of a file read by its header's names rather than their order (the gradebook
    files, whose column order the gateway could not confirm from the binding document): any
    order, ``metadata.*`` columns anywhere after the others, a missing optional column read as
    empty. ``expected``: the header to name in problems (default: the binding's)."""
    expected = expected or csv_file.header
    known = {column.name for column in csv_file.columns}

    def open_feed(header: list[str], context: FeedContext) -> OpenedFeed:
        if header and header[0].startswith("\ufeff"):
            header[0] = header[0][1:]
        problems: list[Problem] = []
        columns = [name for name in header if not name.startswith("metadata.")]
        metadata = [name for name in header if name.startswith("metadata.") and name != "metadata."]
        missing = [column.name for column in csv_file.columns[:3] + tuple(
            c for c in csv_file.columns if c.required) if column.name not in header]
        if missing:
            problems.append(Problem(csv_file.filename, 1, ", ".join(dict.fromkeys(missing)), None,
                                    "the required column(s) in the header: " + ",".join(expected)))
        unknown = [name for name in columns if name not in known]
        if unknown:
            problems.append(Problem(csv_file.filename, 1, ", ".join(unknown), None,
                                    "only the binding's columns (" + ",".join(expected)
                                    + ") and metadata.* extension columns"))
        repeated = sorted({name for name in header if header.count(name) > 1})
        if repeated:
            problems.append(Problem(csv_file.filename, 1, ", ".join(repeated), None,
                                    "each column once in the header"))
        if problems:
            return OpenedFeed(problems)
        position = {name: i for i, name in enumerate(header)}
        picks = [position.get(column.name) for column in csv_file.columns] + \
            [position[name] for name in metadata]
        width = len(header)

        def rows(source: Iterator[list[str]]) -> NumberedRows:
            for line, fields in numbered_rows(source, width, csv_file.filename, context.problem):
                yield line, ["" if i is None else fields[i] for i in picks]
        return OpenedFeed([], metadata, rows)
    return open_feed
