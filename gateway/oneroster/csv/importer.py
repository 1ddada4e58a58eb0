"""Importing a OneRoster 1.2.1 CSV bundle into the store, atomically.

How it works, and why:

1. Each rostering file is streamed through :mod:`reader` (one row in memory at a time) and its
   valid rows are written in batches to a temporary staging table (``executemany`` on SQLite,
   ``COPY`` on PostgreSQL). Python never holds a whole file, so memory stays flat for a
   million-user district.
2. Everything that needs more than one row -- duplicate sourcedIds, references to records in
   other files or already in the store, the mass-change guard, the added/changed/unchanged/
   deleted counts -- is a set-based SQL statement over the staging tables, run by the database.
3. If anything is wrong the caller rolls the one transaction back: the store is exactly as it
   was. Otherwise the merge is a handful of ``INSERT ... SELECT`` / ``UPDATE ... FROM``
   statements in the same transaction.

Bulk files replace the district's records of their type: records absent from the file are
marked ``tobedeleted``, never removed. Delta files apply their rows' status and
dateLastModified. A record's dateLastModified changes only when its content changes (a 64-bit
fingerprint of the content is kept per row), so clients can sync with ``dateLastModified>``.
"""
from __future__ import annotations

import codecs
import csv
import json
import datetime as dt
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

from sqlalchemy import (BigInteger, Column, DateTime, Integer, MetaData, String, Table, bindparam,
                        func, literal, select, text)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from gateway.formats import plan_bundle
from gateway.oneroster.csv import binding
from gateway.oneroster.csv.bundle import Bundle, BundleError, field_too_long, line_too_long
from gateway.oneroster.csv.feeds import FeedContext, FileFeed
from gateway.oneroster.csv.gradebook import kept_by_bulk, merge_gradebook, prepare_gradebook, sis_only
from gateway.oneroster.csv.limits import ImportLimits, LineTooLong, field_size_limit, is_field_too_large
from gateway.oneroster.csv.problems import Notice, Notices, Problem
from gateway.oneroster.csv.reader import FileLayout, compile_row_converter, iter_csv, read_rows
from gateway.oneroster.rendering import RENDERED_ENTITIES, render_district
from gateway.store.rostering import ENTITY_TABLES
from gateway.store.events import append_events
from gateway.store.models import District, ImportRun, utcnow
from gateway.store.schema import metadata as store_metadata

BATCH_SIZE = 5000
# Files whose bulk replacement is guarded against mass deletion (a truncated export).
GUARDED_FILES = ("users", "classes", "enrollments")
# Multi-valued references kept in link tables: (file, column) -> (link table, owner col, target col).
LINK_TABLES = {
    ("classes", "termSourcedIds"): ("class_terms", "class_sourced_id", "term_sourced_id"),
    ("users", "agentSourcedIds"): ("user_agents", "user_sourced_id", "agent_sourced_id"),
}
# Beyond this many rejected rows per file, references to further rejected rows are reported too
# (bounded memory for a pathological file).
MAX_REMEMBERED_REJECTED = 200_000
# Files whose rows are part of how a user is represented: a change re-stamps the user.
USER_PARTS = ("roles", "userProfiles")
# Files whose rows give a record its REST ``resources``: file -> (owner column, entity, owner's
# table). A change re-renders and re-stamps the owner (see _collect_resource_owners).
RESOURCE_LINK_OWNERS = {"classResources": ("class_sourced_id", "class", "classes"),
                        "courseResources": ("course_sourced_id", "course", "courses"),
                        "userResources": ("user_sourced_id", "user", "users")}
# The REST entity of each file whose records the change feed names (roles and profiles change
# their user, see _record_changes).
FILE_ENTITIES = {"orgs": "org", "academicSessions": "academicSession", "courses": "course",
                 "classes": "class", "users": "user", "enrollments": "enrollment",
                 "demographics": "demographics"}

ProgressCallback = Callable[[int, int], None]


@dataclass
class ImportOptions:
    """How to run an import."""

    dry_run: bool = False
    force: bool = False
    # The district a bundle without an org of type district belongs to, and its name (needed
    # only to create it on a first import).
    district: str | None = None
    district_name: str | None = None
    # Refuse what would otherwise be normalized with a notice.
    strict: bool = False
    # An export format's name (gateway.formats.FORMATS); None recognizes it from the files.
    format: str | None = None
    mass_change_threshold: float = 0.25
    max_reported_problems: int = 1000
    now: dt.datetime | None = None
    limits: ImportLimits = field(default_factory=ImportLimits)


@dataclass
class FileCounts:
    """What an import did (or would do) to the records of one file."""

    mode: str
    added: int = 0
    changed: int = 0
    unchanged: int = 0
    deleted: int = 0
    rejected: int = 0
    # Of ``deleted``: records a bulk file retires by leaving them out (the rest are rows that
    # the file itself marks tobedeleted).
    retired: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {k: v for k, v in self.__dict__.items() if k != "retired"}


@dataclass
class ImportReport:
    """The outcome of an import: counts per file, problems, notices."""

    source: str
    # applied | rejected | dry-run (valid, nothing written) | dry-run-rejected
    outcome: str = "rejected"
    format: str | None = None
    district: str | None = None
    district_name: str | None = None
    files: dict[str, FileCounts] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0
    # The 1.2 file that a bundle file named otherwise feeds (students.csv -> users).
    aliases: dict[str, str] = field(default_factory=dict)
    notices: list[Notice] = field(default_factory=list)
    refusal: str | None = None
    # A dry run's few added, changed and retired records per file: {"users": {"added": [ids],
    # "changed": [{"sourcedId", "fields"}], "retired": [ids]}} (see _sample_changes).
    samples: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    # Events an applied import appended to the district's change feed (gateway.store.events).
    events: int = 0

    @property
    def ok(self) -> bool:
        """Whether the bundle was accepted (applied, or would be on a dry run)."""
        return self.outcome in ("applied", "dry-run")

    def add_problem(self, problem: Problem, limit: int) -> None:
        """Record a problem, keeping at most ``limit`` in full."""
        self.problem_count += 1
        if len(self.problems) < limit:
            self.problems.append(problem)
        counts = self.files.get(problem.file[:-4]) if problem.file.endswith(".csv") else None
        if counts is None and problem.file in self.aliases:
            counts = self.files.get(self.aliases[problem.file])
        if counts is not None and problem.line and problem.line > 1:
            counts.rejected += 1

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (the machine-readable report)."""
        return {"source": self.source, "format": self.format, "outcome": self.outcome,
                "district": self.district,
                "files": {k: v.to_dict() for k, v in self.files.items()},
                "problem_count": self.problem_count,
                "problems": [p.to_dict() for p in self.problems],
                "notices": [n.to_dict() for n in self.notices], "refusal": self.refusal,
                **({"samples": self.samples} if self.samples else {})}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ImportReport":
        """The report of :meth:`to_dict` (what a job hands back from the worker that ran it)."""
        return cls(source=data["source"], outcome=data["outcome"], format=data.get("format"),
                   district=data.get("district"), district_name=data.get("district_name"),
                   files={name: FileCounts(**counts) for name, counts in data["files"].items()},
                   problems=[Problem(**p) for p in data["problems"]],
                   problem_count=data["problem_count"],
                   notices=[Notice(**n) for n in data["notices"]], refusal=data.get("refusal"),
                   samples=data.get("samples") or {})


class _Staging:
    """The temporary tables of one import, on the import's connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.dialect = conn.dialect.name
        self.metadata = MetaData()
        self.tables: dict[str, Table] = {}
        self.modes: dict[str, str] = {}
        self.feeds: dict[str, FileFeed] = {}
        # The feeds staged into each 1.2 file, in order: (line offset, feed, the source's column
        # names). Another export format may feed one 1.2 file from several of its files (users
        # from students.csv and teachers.csv): each part's lines are staged after the previous
        # part's, so that a staged line names one file and one line of it.
        self.parts: dict[str, list[tuple[int, FileFeed, dict[str, str]]]] = {}
        self.last_line: dict[str, int] = {}
        self.extra: list[Table] = []
        self.with_duplicates: set[str] = set()
        self.rejected = self._create("stg_rejected", [
            Column("file", String(64)), Column("sourced_id", String(255))])

    def _create(self, name: str, columns: list[Column]) -> Table:
        self.conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
        kwargs = {"postgresql_on_commit": "DROP"} if self.dialect == "postgresql" else {}
        table = Table(name, self.metadata, *columns, prefixes=["TEMPORARY"], **kwargs)
        table.create(self.conn)
        return table

    def create_for(self, layout: FileLayout) -> Table:
        """A staging table shaped like the file's store table, plus the source line."""
        store_table = store_metadata.tables[layout.csv_file.table]
        columns = [Column("line", Integer)]
        for name in layout.staged_columns[1:]:
            if name == "row_hash":
                columns.append(Column(name, BigInteger))
            else:
                columns.append(Column(name, store_table.c[name].type))
        table = self._create(f"stg_{layout.csv_file.table}", columns)
        self.tables[layout.csv_file.name] = table
        self.modes[layout.csv_file.name] = layout.mode
        return table

    def add_part(self, feed: FileFeed) -> int:
        """Record ``feed`` as the next part of its 1.2 file; return the offset of its lines."""
        parts = self.parts.setdefault(feed.name, [])
        offset = self.last_line.get(feed.name, 0)
        parts.append((offset, feed, {}))
        self.feeds.setdefault(feed.name, feed)
        return offset

    def locate(self, name: str, column: str, line: int | None = None) -> tuple[str, int | None, str]:
        """The file, line and column the district sent for ``column`` of a row staged from
        1.2 file ``name`` at ``line``."""
        parts = self.parts.get(name)
        if not parts:
            return f"{name}.csv", line, column
        offset, feed, columns = parts[0]
        if line is not None:
            for part in parts:
                if part[0] < line:
                    offset, feed, columns = part
        return feed.source, None if line is None else line - offset, columns.get(column, column)

    def source_of(self, name: str) -> str:
        """The bundle's file(s) that feed 1.2 file ``name`` (its binding name when not staged)."""
        parts = self.parts.get(name)
        if not parts:
            return f"{name}.csv"
        sources = list(dict.fromkeys(feed.source for _, feed, _ in parts))
        return sources[0] if len(sources) == 1 else ", ".join(sources[:-1]) + " or " + sources[-1]

    def create_changes(self) -> Table:
        """A table of the records this import creates, updates or deletes, in merge order,
        for the change feed (:mod:`gateway.store.events`)."""
        table = self._create("stg_changes", [
            Column("id", Integer, primary_key=True), Column("entity", String(32)),
            Column("sourced_id", String(255)), Column("kind", String(16))])
        self.extra.append(table)
        return table

    def create_touched_users(self) -> Table:
        """A table of the users whose embedded roles or profiles change in this import."""
        table = self._create("stg_touched_users", [Column("user_sourced_id", String(255))])
        self.extra.append(table)
        return table

    def create_touched_records(self) -> Table:
        """A table of the records (entity, sourcedId) whose resource links change in this import."""
        table = self._create("stg_touched_records", [Column("entity", String(32)),
                                                     Column("sourced_id", String(255))])
        self.extra.append(table)
        return table

    def write(self, table: Table, rows: Iterable[tuple]) -> None:
        """Write rows (tuples in the table's column order) with the driver's fastest path."""
        raw = self.conn.connection.driver_connection
        names = [c.name for c in table.columns]
        if self.dialect == "postgresql":
            with raw.cursor() as cursor:
                with cursor.copy(f"COPY {table.name} ({', '.join(_q(n) for n in names)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            return
        sql = f"INSERT INTO {table.name} VALUES ({', '.join('?' for _ in names)})"
        cursor = raw.cursor()
        batch: list[tuple] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= BATCH_SIZE:
                cursor.executemany(sql, batch)
                batch.clear()
        if batch:
            cursor.executemany(sql, batch)
        cursor.close()

    def list_items(self, table: Table, attribute: str) -> str:
        """A FROM-able query of (line, owner sourcedId, item) for each item of a JSON array column.

        Multi-valued references are read back from the staged JSON rather than staged apart while
        the rows stream: PostgreSQL cannot run a second COPY in the middle of the first.
        """
        if self.dialect == "postgresql":
            return (f"SELECT s.line, s.sourced_id AS owner, j.value AS ref FROM {table.name} s "
                    f"CROSS JOIN LATERAL json_array_elements_text(s.{_q(attribute)}) AS j(value) "
                    f"WHERE s.{_q(attribute)} IS NOT NULL")
        return (f"SELECT s.line, s.sourced_id AS owner, j.value AS ref FROM {table.name} s, "
                f"json_each(s.{_q(attribute)}) AS j WHERE s.{_q(attribute)} IS NOT NULL")

    def index(self, table: Table) -> bool:
        """Index a loaded staging table by sourcedId for the joins that follow; return whether
        its sourcedIds are unique (the index is unique then, which costs no extra pass)."""
        savepoint = self.conn.begin_nested()
        try:
            self.conn.exec_driver_sql(f"CREATE UNIQUE INDEX ix_{table.name}_sid ON {table.name} (sourced_id)")
            savepoint.commit()
            return True
        except IntegrityError:
            savepoint.rollback()
        self.conn.exec_driver_sql(f"CREATE INDEX ix_{table.name}_sid ON {table.name} (sourced_id)")
        self.with_duplicates.add(table.name)
        return False

    @property
    def insertion_order(self) -> str:
        """ORDER BY that keeps file order for new records (free on SQLite: rowid is file order)."""
        return "s.rowid" if self.dialect == "sqlite" else "s.line"

    def drop_all(self) -> None:
        """Drop the staging tables (SQLite keeps temp tables for the connection's lifetime)."""
        for table in list(self.tables.values()) + [self.rejected] + self.extra:
            self.conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table.name}")


def _q(name: str) -> str:
    """Quote a column name from the binding (some, like ``primary``, are SQL keywords)."""
    return f'"{name}"'


def _run(conn: Connection, sql: str, **params: Any):
    """Execute ``sql`` with bound parameters; ``now`` is bound as a DateTime."""
    statement = text(sql)
    if "now" in params:
        statement = statement.bindparams(bindparam("now", type_=DateTime()))
    return conn.execute(statement, params)


def import_bundle(session: Session, path: str | Path, options: ImportOptions | None = None,
                  progress: ProgressCallback | None = None) -> ImportReport:
    """Validate a bundle and, unless it has problems or this is a dry run, merge it into the store.

    Works inside the caller's transaction and never commits: the caller commits when the
    report's outcome is ``applied`` and rolls back otherwise, so a rejected bundle, a dry run or
    a crash leaves the store exactly as it was. Raises :class:`BundleError` when the path is not
    a bundle at all.
    """
    options = options or ImportOptions()
    now = options.now or utcnow()
    report = ImportReport(source=str(path), outcome=rejected_outcome(options.dry_run))
    limit = options.max_reported_problems
    notices = Notices()

    def problem(p: Problem) -> None:
        report.add_problem(p, limit)

    with Bundle(path, options.limits) as bundle, field_size_limit(options.limits.max_field_length):
        try:
            _import(session, bundle, options, report, problem, notices, now, progress)
        finally:
            report.notices = list(notices)
        return report


def _import(session: Session, bundle: Bundle, options: ImportOptions, report: ImportReport,
            problem: Callable[[Problem], None], notices: Notices, now: dt.datetime,
            progress: ProgressCallback | None) -> None:
    """The body of :func:`import_bundle`: sets the report's outcome."""
    limit = options.max_reported_problems
    conn = session.connection()
    org_types = _OrgTypes(conn, options.district)
    context = FeedContext(problem, notices.add, org_types)
    plan = plan_bundle(bundle, options.format, context)
    report.format = plan.format
    feeds = plan.feeds
    if not feeds:
        if not report.problem_count:
            problem(Problem(binding.MANIFEST, None, None, None,
                            "at least one rostering file listed as bulk or delta"))
        return
    parts: dict[str, int] = {}
    for feed in feeds:
        report.files.setdefault(feed.name, FileCounts(mode=feed.mode))
        parts[feed.name] = parts.get(feed.name, 0) + 1
        # A problem of a file named unlike the 1.2 file it feeds counts as a row of that file
        # (the file's own feed's, when derived feeds read it too).
        if not feed.derived or feed.source not in report.aliases:
            report.aliases[feed.source] = feed.name

    tuning = _tune_for_bulk_work(conn)
    staging = _Staging(conn)
    try:
        sizes: dict[str, int] = {}
        for feed in feeds:
            sizes[feed.name] = sizes.get(feed.name, 0) + bundle.size(feed.source)
        total_bytes = sum(sizes.values())
        outer_progress = progress
        if progress is not None:
            # The bar covers reading (the data files' bytes, not the manifest's) and then the
            # merge, weighted by the same bytes: each takes a comparable share of the time.
            base = bundle.bytes_read[0]
            progress = lambda done, total: outer_progress(done - base, 2 * total)  # noqa: E731
        unreadable: set[str] = set()
        for feed in feeds:
            if not _stage_file(bundle, feed, staging, context, total_bytes, progress,
                               shared=parts[feed.name] > 1):
                unreadable.add(feed.name)
            if feed.name == "orgs" and "orgs" in staging.tables:
                org_types.read_staged(staging.tables["orgs"])
        for table in staging.tables.values():
            staging.index(table)
        district = _resolve_district(session, staging, options, report, problem, notices.add, now)
        district_id = district.id if district is not None else None
        _check_duplicates(conn, staging, problem, limit)
        _check_references(conn, staging, district_id, unreadable, problem, limit)
        if district_id is not None:
            prepare_gradebook(conn, staging, district_id, problem, notices.add, limit)
        if options.strict:
            for notice in notices:
                problem(notice.as_problem())
        if report.problem_count:
            return
        assert district is not None
        _count_changes(conn, staging, report, district.id)
        if options.dry_run:
            _sample_changes(conn, staging, report, district.id)
        refusal = _mass_change_refusal(conn, staging, report, district.id, options)
        if refusal:
            report.refusal = refusal
            return
        if options.dry_run:
            report.outcome = "dry-run"
            return
        merged = [total_bytes]

        def file_merged(name: str) -> None:
            merged[0] += sizes.get(name, 0)
            if outer_progress is not None:
                outer_progress(merged[0], 2 * total_bytes)

        _merge(conn, staging, report, district.id, now, file_merged)
        merge_gradebook(conn, staging, report, district.id, now, file_merged)
        render_district(conn, district.id)
        report.events = _record_changes(conn, staging, district.id, now)
        _refresh_statistics(conn, staging)
        district.data_version = (district.data_version or 0) + 1
        session.flush()
        report.outcome = "applied"
    finally:
        if report.outcome == "applied":
            staging.drop_all()
        tuning()


class _OrgTypes:
    """The type of an org by sourcedId, from the bundle's orgs (once staged) or else the store's
    orgs of the district: what maps a OneRoster 1.1 ``administrator`` role."""

    def __init__(self, conn: Connection, district: str | None) -> None:
        self.conn = conn
        self.district = district
        self.staged: dict[str, str] = {}
        self.stored: dict[str, str | None] = {}

    def read_staged(self, table: Table) -> None:
        """Take the types of the orgs staged from the bundle (orgs are few, even for a state)."""
        self.staged = {sid: kind for sid, kind in _run(self.conn, f"SELECT sourced_id, type FROM {table.name}")}
        if self.district is None:
            self.district = next((sid for sid, kind in self.staged.items() if kind == "district"), None)

    def __call__(self, sourced_id: str) -> str | None:
        found = self.staged.get(sourced_id)
        if found is not None or self.district is None:
            return found
        if sourced_id not in self.stored:
            self.stored[sourced_id] = _run(self.conn, """
                SELECT o.type FROM orgs o JOIN districts d ON d.id = o.district_id
                WHERE d.sourced_id = :district AND o.sourced_id = :org""",
                district=self.district, org=sourced_id).scalar_one_or_none()
        return self.stored[sourced_id]


def rejected_outcome(dry_run: bool) -> str:
    """How the history names a refused run: a refused dry run is not a refused import."""
    return "dry-run-rejected" if dry_run else "rejected"


def record_import_run(session: Session, report: ImportReport, started_at: dt.datetime,
                      message: str | None = None, run_id: int | None = None) -> ImportRun:
    """Write how a run ended to the import history (``gateway imports``): into the row recorded
    when it started (``run_id``, see :func:`gateway.store.import_runs.running_import`), or as a
    new row."""
    district_id = None
    if report.district:
        district_id = session.execute(select(District.id).where(
            District.sourced_id == report.district)).scalar_one_or_none()
    run = session.get(ImportRun, run_id) if run_id is not None else None
    if run is None:
        run = ImportRun(source=report.source, started_at=started_at)
        session.add(run)
    run.district_id = district_id
    run.finished_at = utcnow()
    run.outcome = report.outcome
    run.counts = {k: v.to_dict() for k, v in report.files.items()}
    run.error_count = report.problem_count
    run.message = message or report.refusal
    session.flush()
    return run


def _tune_for_bulk_work(conn: Connection) -> Callable[[], None]:
    """Give the database working memory sized for bulk work, for this import only; return what
    undoes it. Bounded, whatever the bundle size."""
    if conn.dialect.name == "postgresql":
        # SET LOCAL ends with the transaction. The defaults (4 MB) make the merge's sorts and
        # anti-joins spill to disk; staging tables live in temp_buffers (settable only before a
        # session first touches a temporary table, hence the savepoint).
        conn.exec_driver_sql("SET LOCAL work_mem = '256MB'")
        # Each of the import's few dozen statements runs once: compiling them costs more than
        # it saves.
        conn.exec_driver_sql("SET LOCAL jit = off")
        conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '256MB'")
        savepoint = conn.begin_nested()
        try:
            conn.exec_driver_sql("SET LOCAL temp_buffers = '256MB'")
            savepoint.commit()
        except DBAPIError:
            savepoint.rollback()
        return lambda: None
    previous = conn.exec_driver_sql("PRAGMA cache_size").scalar()
    conn.exec_driver_sql("PRAGMA cache_size=-262144")  # 256 MiB, bounded whatever the bundle size
    return lambda: conn.exec_driver_sql(f"PRAGMA cache_size={int(previous)}")


def _stage_file(bundle: Bundle, feed: FileFeed, staging: _Staging, context: FeedContext,
                total_bytes: int, progress: ProgressCallback | None, shared: bool = False) -> bool:
    """Stream one feed into its staging table (after the rows of the feeds before it that feed
    the same 1.2 file, ``shared``); False if its file could not be read."""
    problem = context.problem
    csv_file = feed.csv_file
    layout = FileLayout(csv_file, feed.mode)
    table = staging.tables.get(feed.name)
    if table is None:
        table = staging.create_for(layout)
    offset = staging.add_part(feed)
    filename = feed.source
    rejected_ids: list[tuple] = []

    def on_rejected(sourced_id: str) -> None:
        if len(rejected_ids) < MAX_REMEMBERED_REJECTED:
            rejected_ids.append((csv_file.name, sourced_id))

    # A derived feed re-reads a file another feed reads and reports: it reports nothing of the
    # file itself (its rows' own problems still are).
    report_file = (lambda p: None) if feed.derived else problem
    readable = [True]
    with bundle.open_text(filename) as handle:
        rows = iter_csv(handle, bundle.limits.max_line_length)
        try:
            header = next(rows, None)
        except UnicodeDecodeError as exc:
            report_file(_decode_problem(bundle, filename, exc))
            return False
        except (csv.Error, LineTooLong) as exc:
            report_file(Problem(filename, 1, None, None, _unreadable(exc, bundle.limits)))
            return False
        if header is None:
            report_file(Problem(filename, 1, None, None, "a header row"))
            return False
        opened = feed.open(list(header), context)
        for p in opened.problems:
            problem(p)
        if opened.problems:
            return False
        staging.parts[feed.name][-1][2].update(opened.source_columns)

        def counted(source):
            # Errors of the CSV layer end the file's stream here rather than propagate: on
            # PostgreSQL an exception inside COPY would abort the whole transaction.
            emitted = 0
            last_line = 1
            try:
                for row in source:
                    last_line = rows.line_num
                    emitted += 1
                    if progress is not None and emitted % 20000 == 0:
                        progress(bundle.bytes_read[0], total_bytes)
                    yield row
            except UnicodeDecodeError as exc:
                readable[0] = False
                report_file(_decode_problem(bundle, filename, exc))
                return
            except LineTooLong as exc:
                # Stopped inside the physical line after the last one the reader took whole.
                readable[0] = False
                report_file(Problem(filename, rows.line_num + 1, None, None, _unreadable(exc, bundle.limits)))
                return
            except csv.Error as exc:
                readable[0] = False
                # The reader fails where the file ends; the broken record began after the last good one.
                report_file(Problem(filename, last_line + 1, None, None, _unreadable(exc, bundle.limits)))
                return
            if rows.line_num <= 1 and not feed.derived:
                what = (f"every {csv_file.name} record of the district will be marked tobedeleted "
                        "(the mass-change guard still applies)" if feed.mode == "bulk" and not shared
                        else "nothing in it to change")
                context.notice(Notice(filename, 1, None, None, None, f"a header and no data rows: {what}"))

        # A derived feed re-reads a file another feed reads: that feed notes its values.
        staged = read_rows(layout, opened.rows(rows), opened.metadata_columns, problem, on_rejected,
                           None if feed.derived else context.notice, filename, opened.source_columns)
        if offset:
            staged = ((row[0] + offset,) + row[1:] for row in staged)
        # A row the feed itself refuses (having said why) is rejected like one the reader refuses.
        context.reject = on_rejected
        try:
            staging.write(table, counted(staged))
        finally:
            context.reject = FeedContext.reject
            # The next part's lines come after every line this one read.
            staging.last_line[feed.name] = offset + max(rows.line_num, 1)
    if rejected_ids:
        staging.write(staging.rejected, rejected_ids)
    if progress is not None:
        progress(bundle.bytes_read[0], total_bytes)
    return readable[0]


def _unreadable(exc: csv.Error | LineTooLong, limits: ImportLimits) -> str:
    if isinstance(exc, LineTooLong):
        return line_too_long(limits)
    if is_field_too_large(exc):
        return field_too_long(limits)
    if "end of data" in str(exc):
        return "RFC 4180 CSV: a closing quote for the quoted field of the record that starts here"
    return f"RFC 4180 CSV ({exc})"


def _decode_problem(bundle: Bundle, filename: str, exc: UnicodeDecodeError) -> Problem:
    """Locate the first byte that is not UTF-8 (the decoder only knows its read block)."""
    # Lines are read with the same bound as the text (in bytes, at most 4 per character), so a
    # long line costs no more here; the pieces of a cut line keep its number, and the
    # incremental decoder carries a character cut between two pieces over to the next.
    chunk = 4 * bundle.limits.max_line_length + 2
    decoder = codecs.getincrementaldecoder("utf-8")()
    with bundle.open_binary(filename) as handle:
        number = 0
        ended = True
        for raw_line in iter(lambda: handle.readline(chunk), b""):
            number += ended
            ended = raw_line.endswith(b"\n")
            try:
                decoder.decode(raw_line)
            except UnicodeDecodeError as bad:
                snippet = raw_line[max(0, bad.start - 10): bad.end + 10].decode("utf-8", "replace")
                return Problem(filename, number, None, snippet.strip(),
                               f"UTF-8 text (byte {raw_line[bad.start]:#04x} at position {bad.start + 1} "
                               "of the line is not UTF-8; re-export the file as UTF-8)")
    return Problem(filename, None, None, None, f"UTF-8 text ({exc.reason})")


IMPORT_LOCK_CLASS = 0x4F52  # "OR": the advisory lock class of district imports (PostgreSQL)


def _wait_for_other_imports(conn: Connection, district_sourced_id: str) -> None:
    """Wait until no other import of this district is running, and keep others waiting until
    this transaction ends: two imports of one district at once would each count their changes
    against the store as it was before the other, and two first imports would both create it.

    PostgreSQL: a transaction-scoped advisory lock per district (imports of other districts go
    on). SQLite: nothing to do here, an import's transaction holds the store's write lock from
    its start (``Database.session_scope(write=True)``).
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:lock_class, hashtext(:district))"),
                     {"lock_class": IMPORT_LOCK_CLASS, "district": district_sourced_id})


def _resolve_district(session: Session, staging: _Staging, options: ImportOptions,
                      report: ImportReport, problem: Callable[[Problem], None],
                      notice: Callable[[Notice], None], now: dt.datetime) -> District | None:
    """Find the bundle's district (its org of type district, or ``--district``), creating it on
    a first import. A bundle without a district org is placed under ``--district``: the district
    gets its org record, and the bundle's orgs without a parent become its children."""
    conn = staging.conn
    found: list[tuple[str, str, int]] = []
    orgs = staging.tables.get("orgs")
    orgs_file = staging.source_of("orgs")
    if orgs is not None:
        found = [tuple(r) for r in _run(conn, f"SELECT sourced_id, name, line FROM {orgs.name} "
                                               "WHERE type = 'district' ORDER BY line")]
    if len(found) > 1:
        orgs_file, line, column = staging.locate("orgs", "type", found[1][2])
        problem(Problem(orgs_file, line, column, "district",
                        "exactly one org of type district per bundle (found "
                        + ", ".join(sid for sid, _, _ in found) + "); import each district separately"))
        return None
    placed = False
    if found:
        sourced_id, name, line = found[0]
        if options.district and options.district != sourced_id:
            orgs_file, line, column = staging.locate("orgs", "sourcedId", line)
            problem(Problem(orgs_file, line, column, sourced_id,
                            f"the district given with --district ({options.district})"))
            return None
    elif options.district:
        sourced_id, name, placed = options.district, None, True
    else:
        problem(Problem(orgs_file if orgs is not None else binding.MANIFEST, None, None, None,
                        "an org of type district in orgs.csv, or --district SOURCEDID (with "
                        "--district-name NAME when the district is new) for a bundle without one"))
        return None
    _wait_for_other_imports(conn, sourced_id)
    district = session.execute(select(District).where(District.sourced_id == sourced_id)).scalar_one_or_none()
    if district is None:
        name = name or options.district_name
        if not name:
            problem(Problem(binding.MANIFEST, None, None, sourced_id,
                            f"--district-name NAME to create district {sourced_id} (it is not in the "
                            "store yet and the bundle has no org of type district for it)"))
            return None
        district = District(sourced_id=sourced_id, name=name, data_version=0)
        session.add(district)
        session.flush()
    elif name and district.name != name:
        district.name = name
    elif placed and options.district_name and district.name != options.district_name:
        district.name = options.district_name
    if placed:
        _place_under_district(session, staging, district, report, notice)
    report.district, report.district_name = district.sourced_id, district.name
    return district


def _place_under_district(session: Session, staging: _Staging, district: District,
                          report: ImportReport, notice: Callable[[Notice], None]) -> None:
    """Give a district named with ``--district`` its org record (staged like a row of the bundle,
    so that a bulk orgs file keeps it and a re-import finds it unchanged), and make the bundle's
    orgs without a parent its children."""
    conn = staging.conn
    orgs = staging.tables.get("orgs")
    if orgs is None:
        stored = _run(conn, "SELECT 1 FROM orgs WHERE district_id = :district AND sourced_id = :sid",
                      district=district.id, sid=district.sourced_id).first()
        if stored is not None:
            return
        orgs = staging.create_for(FileLayout(binding.ORGS, "delta"))
        report.files["orgs"] = FileCounts(mode="delta")
    else:
        orphans = _run(conn, f"SELECT COUNT(*), MIN(line) FROM {orgs.name} "
                             "WHERE parent_sourced_id IS NULL AND sourced_id <> :sid",
                       sid=district.sourced_id).one()
        if orphans[0]:
            _run(conn, f"UPDATE {orgs.name} SET parent_sourced_id = :sid "
                       "WHERE parent_sourced_id IS NULL AND sourced_id <> :sid", sid=district.sourced_id)
            orgs_file, line, column = staging.locate("orgs", "parentSourcedId", orphans[1])
            notice(Notice(orgs_file, line, column, "", district.sourced_id,
                          f"an org without a parent, placed under district {district.sourced_id} "
                          "(--district)", more=orphans[0] - 1))
        if _run(conn, f"SELECT 1 FROM {orgs.name} WHERE sourced_id = :sid",
                sid=district.sourced_id).first() is not None:
            return
    convert = compile_row_converter(binding.ORGS, "bulk", [])
    errors: list = []
    row = convert([district.sourced_id, "", "", district.name, "district", "", ""], 0, errors, [])
    assert not errors, errors
    staging.write(orgs, [row])


def _check_duplicates(conn: Connection, staging: _Staging, problem: Callable[[Problem], None],
                      limit: int) -> None:
    for name, table in staging.tables.items():
        if table.name not in staging.with_duplicates:
            continue
        rows = _run(conn, f"""
            SELECT s.line, s.sourced_id, d.first_line FROM {table.name} s
            JOIN (SELECT sourced_id, MIN(line) AS first_line FROM {table.name}
                  GROUP BY sourced_id HAVING COUNT(*) > 1) d ON d.sourced_id = s.sourced_id
            WHERE s.line > d.first_line ORDER BY s.line LIMIT :cap""", cap=limit + 1)
        for line, sourced_id, first_line in rows:
            filename, line, column = staging.locate(name, "sourcedId", line)
            first_file, first_line, _ = staging.locate(name, "sourcedId", first_line)
            where = "this file" if first_file == filename else f"{staging.source_of(name)}"
            already = f"line {first_line}" if first_file == filename else f"line {first_line} of {first_file}"
            problem(Problem(filename, line, column, sourced_id,
                            f"a sourcedId not used before in {where} (already on {already})"))


def _references(staging: _Staging) -> Iterable[tuple[str, str, str, str]]:
    """(file, column, query of (line, ref), target file) for every reference to check."""
    for name, table in staging.tables.items():
        csv_file = binding.ROSTERING_BY_NAME[name]
        for column in csv_file.columns:
            if column.kind == "ref":
                yield name, column.name, (f"SELECT line, {_q(column.attribute)} AS ref FROM {table.name} "
                                          f"WHERE {_q(column.attribute)} IS NOT NULL"), column.target
            elif column.kind == "reflist":
                yield name, column.name, staging.list_items(table, column.attribute), column.target
        if name == "demographics":
            yield name, "sourcedId", f"SELECT line, sourced_id AS ref FROM {table.name}", "users"


def _check_references(conn: Connection, staging: _Staging, district_id: int | None,
                      unreadable: set[str], problem: Callable[[Problem], None], limit: int) -> None:
    """Every reference must name a record in the bundle or, unless the bundle replaces that
    type wholesale (bulk), one already in the store."""
    for name, column_name, source, target in _references(staging):
        if target in unreadable:
            continue  # the target file's own problems are reported; its ids are unknown
        target_table = binding.ROSTERING_BY_NAME[target].table
        conditions = []
        target_stage = staging.tables.get(target)
        if target_stage is not None:
            conditions.append(f"NOT EXISTS (SELECT 1 FROM {target_stage.name} t WHERE t.sourced_id = s.ref)")
        # A row rejected for its own problems still names a record the SIS meant to send.
        conditions.append(f"NOT EXISTS (SELECT 1 FROM {staging.rejected.name} r "
                          f"WHERE r.file = '{target}' AND r.sourced_id = s.ref)")
        target_mode = staging.modes.get(target, "absent")
        # What a bulk gradebook file leaves in place (apps' records) stays referable.
        kept = kept_by_bulk(target) if target_mode == "bulk" else "1 = 1"
        if kept is not None and district_id is not None:
            conditions.append(f"NOT EXISTS (SELECT 1 FROM {target_table} m "
                              f"WHERE m.district_id = :district AND m.sourced_id = s.ref AND {kept})")
        where = " AND ".join(conditions) or "1 = 1"
        rows = _run(conn, f"SELECT s.line, s.ref FROM ({source}) s WHERE {where} "
                          "ORDER BY s.line LIMIT :cap", district=district_id, cap=limit + 1)
        target_file = staging.source_of(target)
        where_from = target_file if target_mode == "bulk" else f"{target_file} or already imported for this district"
        for line, ref in rows:
            filename, line, column = staging.locate(name, column_name, line)
            problem(Problem(filename, line, column, ref, f"the sourcedId of a record in {where_from}"))


def _count_changes(conn: Connection, staging: _Staging, report: ImportReport,
                   district_id: int) -> None:
    for name, table in staging.tables.items():
        store_table = binding.ROSTERING_BY_NAME[name].table
        counts = report.files[name]
        staged = _run(conn, f"SELECT COUNT(*) FROM {table.name}").scalar_one()
        counts.added = _run(conn, f"""
            SELECT COUNT(*) FROM {table.name} s WHERE NOT EXISTS (
              SELECT 1 FROM {store_table} m WHERE m.district_id = :district AND m.sourced_id = s.sourced_id)
            """, district=district_id).scalar_one()
        differing = _run(conn, f"""
            SELECT COALESCE(SUM(CASE WHEN s.status = 'tobedeleted' AND m.status <> 'tobedeleted'
                                     THEN 1 ELSE 0 END), 0),
                   COUNT(*)
            FROM {table.name} s JOIN {store_table} m
              ON m.district_id = :district AND m.sourced_id = s.sourced_id
            WHERE m.row_hash <> s.row_hash OR m.status <> s.status""", district=district_id).one()
        deleted_by_delta, changed_total = int(differing[0]), int(differing[1])
        counts.changed = changed_total - deleted_by_delta
        counts.deleted = deleted_by_delta
        counts.unchanged = staged - counts.added - changed_total
        owner = _replaced_owner(staging, name)
        if counts.mode == "bulk" or owner:
            counts.retired = _retired_count(conn, table, store_table, district_id, owner)
            counts.deleted += counts.retired


SAMPLE_SIZE = 5


def _sample_changes(conn: Connection, staging: _Staging, report: ImportReport, district_id: int,
                    size: int = SAMPLE_SIZE) -> None:
    """A few added, changed and retired records per file for the dry run's diff: their
    sourcedIds, and for a changed one the columns that change. Each query stops at ``size`` rows
    (LIMIT, no ORDER BY: no sort of the staged table), so memory stays bounded by ``size``."""
    for name, table in staging.tables.items():
        counts = report.files[name]
        store_table = binding.ROSTERING_BY_NAME[name].table
        layout = FileLayout(binding.ROSTERING_BY_NAME[name], counts.mode)
        compared = [a for a in layout.staged_columns[1:]
                    if a not in ("sourced_id", "row_hash", "date_last_modified", "password_hash")]
        sample: dict[str, list[Any]] = {}
        if counts.added:
            sample["added"] = list(_run(conn, f"""
                SELECT s.sourced_id FROM {table.name} s WHERE NOT EXISTS (
                  SELECT 1 FROM {store_table} m
                  WHERE m.district_id = :district AND m.sourced_id = s.sourced_id)
                LIMIT {int(size)}""", district=district_id).scalars())
        if counts.changed or counts.deleted - counts.retired:
            pairs = ", ".join(f"s.{_q(a)}, m.{_q(a)}" for a in compared)
            changed = []
            for row in _run(conn, f"""
                    SELECT s.sourced_id, {pairs} FROM {table.name} s JOIN {store_table} m
                      ON m.district_id = :district AND m.sourced_id = s.sourced_id
                    WHERE m.row_hash <> s.row_hash OR m.status <> s.status
                    LIMIT {int(size)}""", district=district_id):
                fields = [_field_name(a) for i, a in enumerate(compared)
                          if _comparable(row[1 + 2 * i]) != _comparable(row[2 + 2 * i])]
                changed.append({"sourcedId": row[0], "fields": fields})
            sample["changed"] = changed
        if counts.retired:
            owner = _replaced_owner(staging, name)
            sample["retired"] = list(_run(conn, f"""
                SELECT m.sourced_id FROM {store_table} m
                WHERE m.district_id = :district AND m.status <> 'tobedeleted'
                  AND {_retired_condition(table, "m", owner, store_table)}
                LIMIT {int(size)}""", district=district_id).scalars())
        if sample:
            report.samples[name] = sample


def _field_name(attribute: str) -> str:
    """The OneRoster field name of a store column (given_name -> givenName)."""
    head, *rest = attribute.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _comparable(value: Any) -> Any:
    # Staged JSON columns may come back as text where the store's come back decoded (SQLite).
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _replaced_owner(staging: _Staging, name: str) -> str | None:
    """For a delta file whose rows replace their owners' rows (the roles of a 1.1 user), the
    owner column; else None."""
    feed = staging.feeds.get(name)
    if feed is None or feed.mode != "delta":
        return None
    return feed.replace_by


def _retired_condition(table: Table, store_alias: str, owner: str | None,
                       store_table: str | None = None) -> str:
    """The records a file retires: absent from a bulk file, or (``owner``) absent from a delta
    file that lists their owner; of a gradebook ``store_table``, the SIS's own only."""
    condition = f"NOT EXISTS (SELECT 1 FROM {table.name} s WHERE s.sourced_id = {store_alias}.sourced_id)"
    condition += sis_only(store_table or "", store_alias)
    if owner:
        condition += f" AND {store_alias}.{_q(owner)} IN (SELECT {_q(owner)} FROM {table.name})"
    return condition


def _retired_count(conn: Connection, table: Table, store_table: str, district_id: int,
                   owner: str | None = None) -> int:
    """How many of the district's live records a bulk file leaves out (and so retires)."""
    return _run(conn, f"""
        SELECT COUNT(*) FROM {store_table} m
        WHERE m.district_id = :district AND m.status <> 'tobedeleted'
          AND {_retired_condition(table, "m", owner, store_table)}
        """, district=district_id).scalar_one()


def _mass_change_refusal(conn: Connection, staging: _Staging, report: ImportReport,
                         district_id: int, options: ImportOptions) -> str | None:
    """Explain why a bulk import retires too much, or None when it is within bounds or forced."""
    if options.force:
        return None
    reasons = []
    for name in GUARDED_FILES:
        counts = report.files.get(name)
        if counts is None or counts.mode != "bulk" or counts.deleted == 0:
            continue
        store_table = binding.ROSTERING_BY_NAME[name].table
        live = _run(conn, f"SELECT COUNT(*) FROM {store_table} WHERE district_id = :district "
                          "AND status <> 'tobedeleted'", district=district_id).scalar_one()
        if live and counts.deleted / live > options.mass_change_threshold:
            reasons.append(f"{name}.csv would mark {counts.deleted} of {live} active {name} "
                           f"tobedeleted ({counts.deleted / live:.0%})")
    if not reasons:
        return None
    return ("refused: " + "; ".join(reasons) + f", more than the {options.mass_change_threshold:.0%} "
            "allowed. A truncated SIS export would do this. Check the bundle, then run again with "
            "--force if the change is real.")


_RENDERED_TABLES = frozenset(ENTITY_TABLES[entity].name for entity in RENDERED_ENTITIES)


def _merge(conn: Connection, staging: _Staging, report: ImportReport, district_id: int,
           now: dt.datetime, file_merged: Callable[[str], None]) -> None:
    """Apply the staged rows to the store (same transaction as the checks), skipping the
    statements that the counts already show would change nothing."""
    touched = _collect_touched_users(conn, staging, district_id)
    linked = _collect_resource_owners(conn, staging, district_id)
    changes = staging.create_changes()
    _note_resource_changes(conn, staging, report, changes, district_id)
    for name, table in staging.tables.items():
        if name in binding.GRADEBOOK_BY_NAME:
            continue  # merge_gradebook: apps write gradebook records too
        counts = report.files[name]
        csv_file = binding.ROSTERING_BY_NAME[name]
        store_table = csv_file.table
        layout = FileLayout(csv_file, counts.mode)
        attributes = [a for a in layout.staged_columns[1:] if a != "sourced_id"]
        content = [a for a in attributes if a not in ("date_last_modified", "password_hash")]
        # A delta row carries its own dateLastModified; a bulk row gets the time of this import.
        stamp = "COALESCE(s.date_last_modified, :now)" if layout.mode == "delta" else ":now"
        assignments = ", ".join(f"{_q(a)} = s.{_q(a)}" for a in content)
        marked_in_file = counts.deleted - counts.retired
        # A changed or retired record's rendering is stale (see gateway.oneroster.rendering).
        unrendered = ", rendered = NULL" if store_table in _RENDERED_TABLES else ""
        entity = FILE_ENTITIES.get(name)
        # The change feed's rows are noted before each statement below, from the same
        # conditions: afterwards the store no longer tells changed from unchanged rows.
        if entity and (counts.changed or marked_in_file):
            _run(conn, f"""
            INSERT INTO {changes.name} (entity, sourced_id, kind)
            SELECT :entity, s.sourced_id, CASE WHEN s.status = 'tobedeleted' AND m.status <> 'tobedeleted'
                                               THEN 'deleted' ELSE 'updated' END
            FROM {store_table} m JOIN {table.name} s ON s.sourced_id = m.sourced_id
            WHERE m.district_id = :district AND (m.row_hash <> s.row_hash OR m.status <> s.status)
            """, district=district_id, entity=entity)
        if entity and counts.added:
            _run(conn, f"""
            INSERT INTO {changes.name} (entity, sourced_id, kind)
            SELECT :entity, s.sourced_id, 'created' FROM {table.name} s
            WHERE NOT EXISTS (SELECT 1 FROM {store_table} m
                              WHERE m.district_id = :district AND m.sourced_id = s.sourced_id)
            ORDER BY {staging.insertion_order}""", district=district_id, entity=entity)
        if entity and counts.retired:
            _run(conn, f"""
            INSERT INTO {changes.name} (entity, sourced_id, kind)
            SELECT :entity, m.sourced_id, 'deleted' FROM {store_table} m
            WHERE m.district_id = :district AND m.status <> 'tobedeleted'
              AND {_retired_condition(table, "m", _replaced_owner(staging, name))}
            """, district=district_id, entity=entity)
        if counts.changed or marked_in_file:
            _run(conn, f"""
            UPDATE {store_table} SET {assignments}, date_last_modified = {stamp}{unrendered}
            FROM {table.name} s
            WHERE {store_table}.district_id = :district AND {store_table}.sourced_id = s.sourced_id
              AND ({store_table}.row_hash <> s.row_hash OR {store_table}.status <> s.status)
            """, district=district_id, now=now)
        if "password_hash" in attributes and counts.changed + counts.unchanged + marked_in_file:
            _run(conn, f"""
                UPDATE {store_table} SET password_hash = s.password_hash FROM {table.name} s
                WHERE {store_table}.district_id = :district AND {store_table}.sourced_id = s.sourced_id
                  AND s.password_hash IS NOT NULL""", district=district_id)
        inserted = ["sourced_id"] + content + (["password_hash"] if "password_hash" in attributes else [])
        if counts.added:
            with _indexes_deferred_if_empty(conn, store_table):
                _run(conn, f"""
                INSERT INTO {store_table} (district_id, {', '.join(_q(a) for a in inserted)}, date_last_modified)
                SELECT :district, {', '.join('s.' + _q(a) for a in inserted)}, {stamp}
                FROM {table.name} s
                WHERE NOT EXISTS (SELECT 1 FROM {store_table} m
                                  WHERE m.district_id = :district AND m.sourced_id = s.sourced_id)
                ORDER BY {staging.insertion_order}""", district=district_id, now=now)
        if counts.retired:
            _run(conn, f"""
                UPDATE {store_table} SET status = 'tobedeleted', date_last_modified = :now{unrendered}
                WHERE district_id = :district AND status <> 'tobedeleted'
                  AND {_retired_condition(table, store_table, _replaced_owner(staging, name))}
                """, district=district_id, now=now)
        for (file_name, column_name), (link_table, owner, target) in LINK_TABLES.items():
            if file_name == name:
                attribute = csv_file.column(column_name).attribute
                _replace_links(conn, staging, table, attribute, link_table, owner, target, district_id)
        file_merged(name)
    if touched:
        # A user whose roles or profiles changed is a changed user on REST: so in the feed too.
        _run(conn, f"""
            INSERT INTO {changes.name} (entity, sourced_id, kind)
            SELECT DISTINCT 'user', t.user_sourced_id, 'updated' FROM stg_touched_users t
            WHERE EXISTS (SELECT 1 FROM users m
                          WHERE m.district_id = :district AND m.sourced_id = t.user_sourced_id)
            """, district=district_id)
        _run(conn, """
            UPDATE users SET date_last_modified = CASE WHEN date_last_modified < :now THEN :now
                                                      ELSE date_last_modified END,
                             rendered = NULL
            WHERE district_id = :district
              AND sourced_id IN (SELECT user_sourced_id FROM stg_touched_users)""",
             district=district_id, now=now)
    if linked:
        _restamp_resource_owners(conn, changes, district_id, now)
    for name, store_table in (("orgs", "orgs"), ("academicSessions", "academic_sessions")):
        # A record's children are other rows' parents: any change may change any rendering.
        if name in staging.tables:
            _run(conn, f"UPDATE {store_table} SET rendered = NULL WHERE district_id = :district "
                       "AND rendered IS NOT NULL", district=district_id)


# The resources files whose rows the change feed names as a resource, by the column naming it: a
# link row (classResources, courseResources, userResources) added, changed or retired changes
# where its resource is used, which the resource's own representation does not show.
RESOURCE_FILES = {"resources": "sourced_id", "classResources": "resource_sourced_id",
                  "courseResources": "resource_sourced_id", "userResources": "resource_sourced_id"}


def _note_resource_changes(conn: Connection, staging: _Staging, report: ImportReport,
                           changes: Table, district_id: int) -> None:
    """Note in ``changes``, before the merge (afterwards the store no longer tells changed from
    unchanged rows), the resources the import creates, updates or deletes, and the resources
    whose link rows it adds, changes or retires (``updated``)."""
    for name, column in RESOURCE_FILES.items():
        table = staging.tables.get(name)
        if table is None:
            continue
        counts = report.files[name]
        store_table = binding.ROSTERING_BY_NAME[name].table
        own = name == "resources"
        selects = []
        if counts.changed or counts.deleted - counts.retired:
            kind = ("CASE WHEN s.status = 'tobedeleted' AND m.status <> 'tobedeleted' "
                    "THEN 'deleted' ELSE 'updated' END") if own else "'updated'"
            selects.append(f"""
            SELECT 'resource', s.{column}, {kind} FROM {store_table} m JOIN {table.name} s
              ON s.sourced_id = m.sourced_id
            WHERE m.district_id = :district
              AND (m.row_hash <> s.row_hash OR m.status <> s.status)""")
        if counts.added:
            selects.append(f"""
            SELECT 'resource', s.{column}, '{"created" if own else "updated"}' FROM {table.name} s
            WHERE NOT EXISTS (SELECT 1 FROM {store_table} m
                              WHERE m.district_id = :district AND m.sourced_id = s.sourced_id)
            ORDER BY {staging.insertion_order}""")
        if counts.retired:
            selects.append(f"""
            SELECT 'resource', m.{column}, '{"deleted" if own else "updated"}' FROM {store_table} m
            WHERE m.district_id = :district AND m.status <> 'tobedeleted'
              AND {_retired_condition(table, "m", _replaced_owner(staging, name))}""")
        for rows in selects:
            _run(conn, f"INSERT INTO {changes.name} (entity, sourced_id, kind) {rows}",
                 district=district_id)


def _record_changes(conn: Connection, staging: _Staging, district_id: int,
                    now: dt.datetime) -> int:
    """Append the merge's changes to the district's change feed, one event per record (a record
    both created or deleted and touched through its roles keeps the first: ``created`` and
    ``deleted`` sort before ``updated``); returns how many."""
    changes = staging.metadata.tables["stg_changes"]
    rows = (select(literal(None, type_=Integer).label("app_id"), changes.c.entity,
                   changes.c.sourced_id, func.min(changes.c.kind).label("kind"),
                   func.min(changes.c.id).label("ord"))
            .group_by(changes.c.entity, changes.c.sourced_id))
    return append_events(conn, district_id, rows, "ord", now)


def _is_empty(conn: Connection, table: str) -> bool:
    """Whether ``table`` holds no row this transaction can see."""
    return not conn.exec_driver_sql(f"SELECT EXISTS (SELECT 1 FROM {table})").scalar()


@contextmanager
def _indexes_deferred_if_empty(conn: Connection, store_table: str,
                               empty: bool | None = None) -> Iterator[None]:
    """On PostgreSQL, when the store table is empty (a gateway's first import), drop its plain
    indexes for the insert and build them afterwards; otherwise do nothing.

    Why: inserting a large district row by row into half a dozen btrees costs several times
    what building them by sorting does (1M users: the enrollments insert was half the import).
    Indexes behind constraints (primary key, unique sourcedId) stay: they guard correctness.
    The definitions are read back from the catalog, so the rebuilt indexes are exactly what
    the migrations made. DDL is transactional: a rollback restores the indexes. The price is an
    exclusive lock on the table until commit, which on an empty table keeps nobody from data;
    a table that already holds rows (another district's, or this one's) is never locked so.
    ``empty``: what the caller saw before its own deletes (default: look now)."""
    if empty is None:
        empty = _is_empty(conn, store_table)
    if conn.dialect.name != "postgresql" or not empty:
        yield
        return
    definitions = conn.execute(text("""
        SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS definition
        FROM pg_index i
        WHERE i.indrelid = CAST(:table AS regclass)
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
        ORDER BY 1"""), {"table": store_table}).all()
    for name, _ in definitions:
        conn.exec_driver_sql(f"DROP INDEX {name}")
    yield
    for _, definition in definitions:
        conn.exec_driver_sql(definition)


def _refresh_statistics(conn: Connection, staging: _Staging) -> None:
    """Refresh the planner's statistics of the tables the import changed (PostgreSQL), so the
    first requests after a large import get index plans instead of waiting for autovacuum."""
    if staging.dialect != "postgresql":
        return
    tables = {binding.ROSTERING_BY_NAME[name].table for name in staging.tables}
    tables |= {link for (file_name, _), (link, _, _) in LINK_TABLES.items() if file_name in staging.tables}
    for table in sorted(tables):
        conn.exec_driver_sql(f"ANALYZE {table}")


def _replace_links(conn: Connection, staging: _Staging, table: Table, attribute: str,
                   link_table: str, owner: str, target: str, district_id: int) -> None:
    """Make the link table say exactly what the staged rows say for their owners."""
    # Whether the table was empty before this transaction's DELETE: rows it deletes are still
    # there for every other reader, who must not be locked out.
    was_empty = _is_empty(conn, link_table)
    _run(conn, f"DELETE FROM {link_table} WHERE district_id = :district AND {owner} IN "
               f"(SELECT sourced_id FROM {table.name})", district=district_id)
    with _indexes_deferred_if_empty(conn, link_table, empty=was_empty):
        _run(conn, f"""
            INSERT INTO {link_table} (district_id, {owner}, {target})
            SELECT DISTINCT :district, items.owner, items.ref FROM ({staging.list_items(table, attribute)}) items""",
             district=district_id)


def _collect_touched_users(conn: Connection, staging: _Staging, district_id: int) -> bool:
    """Note the users whose roles or profiles this import changes, before they are merged:
    a REST user embeds both, so those users must get a new dateLastModified too."""
    parts = [name for name in USER_PARTS if name in staging.tables]
    if not parts:
        return False
    touched = staging.create_touched_users()
    for name in parts:
        table = staging.tables[name]
        store_table = binding.ROSTERING_BY_NAME[name].table
        # New or changed rows: both the user they name now and the one they named before.
        _run(conn, f"""
            INSERT INTO {touched.name} (user_sourced_id)
            SELECT s.user_sourced_id FROM {table.name} s
            LEFT JOIN {store_table} m ON m.district_id = :district AND m.sourced_id = s.sourced_id
            WHERE m.id IS NULL OR m.row_hash <> s.row_hash OR m.status <> s.status
            UNION
            SELECT m.user_sourced_id FROM {store_table} m JOIN {table.name} s ON s.sourced_id = m.sourced_id
            WHERE m.district_id = :district AND (m.row_hash <> s.row_hash OR m.status <> s.status)""",
             district=district_id)
        owner = _replaced_owner(staging, name)
        if staging.modes[name] == "bulk" or owner:
            # Rows a bulk file leaves out (or a delta's owners no longer have) are about to be retired.
            _run(conn, f"""
                INSERT INTO {touched.name} (user_sourced_id)
                SELECT m.user_sourced_id FROM {store_table} m
                WHERE m.district_id = :district AND m.status <> 'tobedeleted'
                  AND {_retired_condition(table, "m", owner)}""",
                 district=district_id)
    return True


def _collect_resource_owners(conn: Connection, staging: _Staging, district_id: int) -> bool:
    """Note the users, classes and courses whose resource links (classResources, courseResources,
    userResources) this import changes, before they are merged: each is served with its active
    links as ``resources``, so it must be rendered again and re-stamped."""
    parts = [name for name in RESOURCE_LINK_OWNERS if name in staging.tables]
    if not parts:
        return False
    touched = staging.create_touched_records()
    for name in parts:
        owner, entity, _ = RESOURCE_LINK_OWNERS[name]
        table = staging.tables[name]
        store_table = binding.ROSTERING_BY_NAME[name].table
        # New or changed links: both the record they name now and the one they named before.
        _run(conn, f"""
            INSERT INTO {touched.name} (entity, sourced_id)
            SELECT :entity, s.{owner} FROM {table.name} s
            LEFT JOIN {store_table} m ON m.district_id = :district AND m.sourced_id = s.sourced_id
            WHERE m.id IS NULL OR m.row_hash <> s.row_hash OR m.status <> s.status
            UNION
            SELECT :entity, m.{owner} FROM {store_table} m JOIN {table.name} s ON s.sourced_id = m.sourced_id
            WHERE m.district_id = :district AND (m.row_hash <> s.row_hash OR m.status <> s.status)""",
             district=district_id, entity=entity)
        replaced = _replaced_owner(staging, name)
        if staging.modes[name] == "bulk" or replaced:
            # Links a bulk file leaves out are about to be retired.
            _run(conn, f"""
                INSERT INTO {touched.name} (entity, sourced_id)
                SELECT :entity, m.{owner} FROM {store_table} m
                WHERE m.district_id = :district AND m.status <> 'tobedeleted'
                  AND {_retired_condition(table, "m", replaced)}""",
                 district=district_id, entity=entity)
    return True


def _restamp_resource_owners(conn: Connection, changes: Table, district_id: int,
                             now: dt.datetime) -> None:
    """The records :func:`_collect_resource_owners` noted changed on REST: an ``updated`` event
    each, a new dateLastModified (clients sync with ``dateLastModified>``) and no rendering (the
    render pass renders them with their links as they now are)."""
    for _owner, entity, store_table in RESOURCE_LINK_OWNERS.values():
        _run(conn, f"""
            INSERT INTO {changes.name} (entity, sourced_id, kind)
            SELECT DISTINCT t.entity, t.sourced_id, 'updated' FROM stg_touched_records t
            WHERE t.entity = :entity
              AND EXISTS (SELECT 1 FROM {store_table} m
                          WHERE m.district_id = :district AND m.sourced_id = t.sourced_id)
            """, district=district_id, entity=entity)
        _run(conn, f"""
            UPDATE {store_table} SET date_last_modified = CASE WHEN date_last_modified < :now THEN :now
                                                               ELSE date_last_modified END,
                                     rendered = NULL
            WHERE district_id = :district
              AND sourced_id IN (SELECT sourced_id FROM stg_touched_records WHERE entity = :entity)""",
             district=district_id, now=now, entity=entity)
