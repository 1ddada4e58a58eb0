"""The gradebook files of a bundle (categories, scoreScales, lineItems, results): what the
importer does for them beyond what it does for every file (:mod:`gateway.oneroster.csv.importer`
stages, checks and counts them like the rostering files).

Gradebook records have two writers: the SIS, through these files, and apps, through the REST
service and LTI AGS (``origin`` ``sis`` or ``app``, :mod:`gateway.store.gradebook`). A bundle
owns only the SIS's records:

- a bulk file replaces the SIS's records of its type (those it leaves out become
  ``tobedeleted``), never what apps wrote;
- a row naming a record an app wrote leaves that record as the app wrote it (noted);
- references may point at the bundle's records or at any record already stored, an app's too.

The values the binding lets a file leave blank are completed from what they belong to: a line
item's school is its class's, a result's class its line item's; a line item's score range
defaults as on REST (0 to 100).
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Callable

from sqlalchemy import DateTime, bindparam, text
from sqlalchemy.engine import Connection

from gateway.oneroster.csv import binding
from gateway.oneroster.csv.problems import Notice, Problem
from gateway.store.gradebook import ORIGIN_APP, ORIGIN_SIS

# Store tables of the gradebook files: their bulk files retire the SIS's records only.
GRADEBOOK_TABLES = frozenset(f.table for f in binding.GRADEBOOK_CSV_FILES)
DEFAULT_RESULT_VALUE_MIN = 0.0
# As on REST (gateway.gradebook.service.DEFAULT_RESULT_VALUE_MAX).
DEFAULT_RESULT_VALUE_MAX = 100.0


def _sql(conn: Connection, sql: str, **params: Any):
    statement = text(sql)
    if "now" in params:
        statement = statement.bindparams(bindparam("now", type_=DateTime()))
    return conn.execute(statement, params)


def sis_only(store_table: str, store_alias: str) -> str:
    """The extra condition on the records a bulk file of ``store_table`` may retire: for a
    gradebook table, the SIS's own; for any other, none (an empty string)."""
    if store_table not in GRADEBOOK_TABLES:
        return ""
    return f" AND {store_alias}.origin = '{ORIGIN_SIS}'"


def kept_by_bulk(target: str) -> str | None:
    """For a reference to a file imported in bulk: which stored records of its type stay
    referable (a gradebook bulk file leaves what apps wrote); None for every other file."""
    if target not in binding.GRADEBOOK_BY_NAME:
        return None
    return f"m.origin <> '{ORIGIN_SIS}'"


def prepare_gradebook(conn: Connection, staging: Any, district_id: int,
                      problem: Callable[[Problem], None], notice: Callable[[Notice], None],
                      limit: int) -> None:
    """Before counting: set aside rows naming records apps wrote, complete the values a file
    may leave blank, and check what only the gradebook needs (a result's class is its line
    item's; one result per student and line item)."""
    tables = {name: staging.tables[name] for name in binding.GRADEBOOK_BY_NAME if name in staging.tables}
    for name, table in tables.items():
        _set_aside_app_records(conn, staging, name, table, district_id, notice)
    line_items = tables.get("lineItems")
    if line_items is not None:
        _run_fill(conn, line_items, "school_sourced_id", staging.tables.get("classes"), "classes",
                  "class_sourced_id", "school_sourced_id", district_id)
        _sql(conn, f"UPDATE {line_items.name} SET result_value_min = :low "
                   "WHERE result_value_min IS NULL", low=DEFAULT_RESULT_VALUE_MIN)
        _sql(conn, f"UPDATE {line_items.name} SET result_value_max = :high "
                   "WHERE result_value_max IS NULL", high=DEFAULT_RESULT_VALUE_MAX)
    results = tables.get("results")
    if results is not None:
        _check_result_classes(conn, staging, results, line_items, district_id, problem, limit)
        _run_fill(conn, results, "class_sourced_id", line_items, "line_items",
                  "line_item_sourced_id", "class_sourced_id", district_id)
        _check_one_result_per_student(conn, staging, results, district_id, problem, limit)


def _set_aside_app_records(conn: Connection, staging: Any, name: str, table: Any,
                           district_id: int, notice: Callable[[Notice], None]) -> None:
    store_table = binding.GRADEBOOK_BY_NAME[name].table
    found = _sql(conn, f"""
        SELECT COUNT(*), MIN(s.line), MIN(s.sourced_id) FROM {table.name} s JOIN {store_table} m
          ON m.district_id = :district AND m.sourced_id = s.sourced_id
        WHERE m.origin = '{ORIGIN_APP}'""", district=district_id).one()
    if not found[0]:
        return
    _sql(conn, f"""
        DELETE FROM {table.name} WHERE sourced_id IN (
          SELECT m.sourced_id FROM {store_table} m
          WHERE m.district_id = :district AND m.origin = '{ORIGIN_APP}')""", district=district_id)
    filename, line, column = staging.locate(name, "sourcedId", found[1])
    notice(Notice(filename, line, column, found[2], None,
                  "the sourcedId of a record an app wrote (REST or LTI AGS): left as the app "
                  "wrote it, the row was not imported", more=found[0] - 1))


def _run_fill(conn: Connection, table: Any, column: str, source_stage: Any, source_table: str,
              key: str, source_column: str, district_id: int) -> None:
    """Fill the staged rows' empty ``column`` with ``source_column`` of the record their ``key``
    names, from the bundle's own rows first, else from the store."""
    candidates = []
    if source_stage is not None:
        candidates.append(f"(SELECT x.{source_column} FROM {source_stage.name} x "
                          f"WHERE x.sourced_id = {table.name}.{key})")
    candidates.append(f"(SELECT m.{source_column} FROM {source_table} m WHERE m.district_id = "
                      f":district AND m.sourced_id = {table.name}.{key})")
    value = candidates[0] if len(candidates) == 1 else f"COALESCE({', '.join(candidates)})"
    _sql(conn, f"UPDATE {table.name} SET {column} = {value} WHERE {column} IS NULL",
         district=district_id)


def _line_item_class(line_items: Any, result_alias: str) -> str:
    """SQL for the class of the line item a staged result names (the bundle's row, else the
    store's)."""
    staged = (f"(SELECT x.class_sourced_id FROM {line_items.name} x "
              f"WHERE x.sourced_id = {result_alias}.line_item_sourced_id), "
              if line_items is not None else "")
    return (f"COALESCE({staged}(SELECT m.class_sourced_id FROM line_items m WHERE m.district_id "
            f"= :district AND m.sourced_id = {result_alias}.line_item_sourced_id))")


def _check_result_classes(conn: Connection, staging: Any, results: Any, line_items: Any,
                          district_id: int, problem: Callable[[Problem], None], limit: int) -> None:
    rows = _sql(conn, f"""
        SELECT s.line, s.class_sourced_id, {_line_item_class(line_items, "s")} AS expected
        FROM {results.name} s WHERE s.class_sourced_id IS NOT NULL
          AND s.class_sourced_id <> {_line_item_class(line_items, "s")}
        ORDER BY s.line LIMIT :cap""", district=district_id, cap=limit + 1)
    for line, given, expected in rows:
        filename, line, column = staging.locate("results", "classSourcedId", line)
        problem(Problem(filename, line, column, given,
                        f"the class of the result's line item ({expected}), or an empty value"))


def _check_one_result_per_student(conn: Connection, staging: Any, results: Any, district_id: int,
                                  problem: Callable[[Problem], None], limit: int) -> None:
    """One result per student and line item (as on REST): within the file, and against the
    active results already stored under other sourcedIds."""
    rows = _sql(conn, f"""
        SELECT s.line, s.student_sourced_id, s.line_item_sourced_id, o.line, NULL FROM {results.name} s
        JOIN {results.name} o ON o.line_item_sourced_id = s.line_item_sourced_id
          AND o.student_sourced_id = s.student_sourced_id AND o.line < s.line
        UNION ALL
        SELECT s.line, s.student_sourced_id, s.line_item_sourced_id, NULL, m.sourced_id
        FROM {results.name} s JOIN results m
          ON m.district_id = :district AND m.line_item_sourced_id = s.line_item_sourced_id
         AND m.student_sourced_id = s.student_sourced_id AND m.sourced_id <> s.sourced_id
        WHERE m.status <> 'tobedeleted'
          AND NOT EXISTS (SELECT 1 FROM {results.name} r WHERE r.sourced_id = m.sourced_id)
        ORDER BY 1 LIMIT :cap""", district=district_id, cap=limit + 1)
    for line, student, item, other_line, other_id in rows:
        filename, line, column = staging.locate("results", "studentSourcedId", line)
        if other_id is None:
            _, other_line, _ = staging.locate("results", "studentSourcedId", other_line)
            where = f"line {other_line}"
        else:
            where = f"result {other_id}, already stored"
        problem(Problem(filename, line, column, student,
                        f"one result per student and line item (student {student} already has "
                        f"one on line item {item}: {where})"))


def merge_gradebook(conn: Connection, staging: Any, report: Any, district_id: int,
                    now: dt.datetime, file_merged: Callable[[str], None]) -> None:
    """Apply the staged gradebook rows (after the rostering files: they point into them), in
    the binding's order (categories and score scales before the line items that use them, line
    items before their results)."""
    for csv_file in binding.GRADEBOOK_CSV_FILES:
        table = staging.tables.get(csv_file.name)
        if table is None:
            continue
        counts = report.files[csv_file.name]
        _note_changes(conn, staging, csv_file, table, counts, district_id)
        _merge_file(conn, staging, csv_file, table, counts, district_id, now)
        file_merged(csv_file.name)


# The change feed's name of each gradebook file's records (gateway.gradebook.records.ENTITIES).
_FEED_ENTITIES = {binding.CATEGORIES.name: "category", binding.SCORE_SCALES.name: "scoreScale",
                  binding.LINE_ITEMS.name: "lineItem", binding.RESULTS.name: "result"}


def _note_changes(conn: Connection, staging: Any, csv_file: binding.CsvFile, table: Any,
                  counts: Any, district_id: int) -> None:
    """Note in the import's change table (the importer's ``stg_changes``, which the change feed
    is written from) the records :func:`_merge_file` is about to create, change, delete or
    retire: before the merge, while the store still tells changed rows from unchanged ones. The
    conditions are the merge's own."""
    changes = staging.metadata.tables["stg_changes"].name
    entity = _FEED_ENTITIES[csv_file.name]
    store_table = csv_file.table
    selects = []
    if counts.changed or counts.deleted - counts.retired:
        selects.append(f"""
            SELECT '{entity}', s.sourced_id,
                   CASE WHEN s.status = 'tobedeleted' AND m.status <> 'tobedeleted'
                        THEN 'deleted' ELSE 'updated' END
            FROM {store_table} m JOIN {table.name} s ON s.sourced_id = m.sourced_id
            WHERE m.district_id = :district
              AND (m.row_hash IS NULL OR m.row_hash <> s.row_hash OR m.status <> s.status)""")
    if counts.added:
        selects.append(f"""
            SELECT '{entity}', s.sourced_id, 'created' FROM {table.name} s
            WHERE NOT EXISTS (SELECT 1 FROM {store_table} m
                              WHERE m.district_id = :district AND m.sourced_id = s.sourced_id)
            ORDER BY {staging.insertion_order}""")
    if counts.retired:
        selects.append(f"""
            SELECT '{entity}', m.sourced_id, 'deleted' FROM {store_table} m
            WHERE m.district_id = :district AND m.status <> 'tobedeleted'
              AND m.origin = '{ORIGIN_SIS}'
              AND NOT EXISTS (SELECT 1 FROM {table.name} s WHERE s.sourced_id = m.sourced_id)""")
    for rows in selects:
        _sql(conn, f"INSERT INTO {changes} (entity, sourced_id, kind) {rows}",
             district=district_id)


def _merge_file(conn: Connection, staging: Any, csv_file: binding.CsvFile, table: Any,
                counts: Any, district_id: int, now: dt.datetime) -> None:
    store_table = csv_file.table
    content = [c.name for c in table.columns
               if c.name not in ("line", "sourced_id", "date_last_modified")]
    # A delta row carries its own dateLastModified; a bulk row gets the time of this import.
    stamp = "COALESCE(s.date_last_modified, :now)" if counts.mode == "delta" else ":now"
    extra_set, extra_insert = {}, {}
    if csv_file is binding.RESULTS:
        item_id = ("(SELECT li.id FROM line_items li WHERE li.district_id = :district "
                   "AND li.sourced_id = s.line_item_sourced_id)")
        extra_set["line_item_id"] = extra_insert["line_item_id"] = item_id
        # A deleted result of the same student and line item gives way (as on REST).
        _sql(conn, f"""
            DELETE FROM results WHERE district_id = :district AND status = 'tobedeleted'
              AND NOT EXISTS (SELECT 1 FROM {table.name} r WHERE r.sourced_id = results.sourced_id)
              AND EXISTS (SELECT 1 FROM {table.name} s
                          WHERE s.line_item_sourced_id = results.line_item_sourced_id
                            AND s.student_sourced_id = results.student_sourced_id)""",
             district=district_id)
    if csv_file is binding.CATEGORIES:
        extra_insert["is_default"] = "false"
    if counts.changed or counts.deleted - counts.retired:
        assignments = ", ".join([f'"{a}" = s."{a}"' for a in content]
                                + [f"{k} = {v}" for k, v in extra_set.items()])
        _sql(conn, f"""
            UPDATE {store_table} SET {assignments}, origin = '{ORIGIN_SIS}',
                   date_last_modified = {stamp}
            FROM {table.name} s
            WHERE {store_table}.district_id = :district AND {store_table}.sourced_id = s.sourced_id
              AND ({store_table}.row_hash IS NULL OR {store_table}.row_hash <> s.row_hash
                   OR {store_table}.status <> s.status)""", district=district_id, now=now)
    if counts.added:
        columns = ", ".join([f'"{a}"' for a in content] + list(extra_insert))
        values = ", ".join([f's."{a}"' for a in content] + list(extra_insert.values()))
        _sql(conn, f"""
            INSERT INTO {store_table} (district_id, sourced_id, {columns}, origin, date_last_modified)
            SELECT :district, s.sourced_id, {values}, '{ORIGIN_SIS}', {stamp}
            FROM {table.name} s
            WHERE NOT EXISTS (SELECT 1 FROM {store_table} m
                              WHERE m.district_id = :district AND m.sourced_id = s.sourced_id)
            ORDER BY {staging.insertion_order}""", district=district_id, now=now)
    if counts.retired:
        _sql(conn, f"""
            UPDATE {store_table} SET status = 'tobedeleted', date_last_modified = :now
            WHERE district_id = :district AND status <> 'tobedeleted' AND origin = '{ORIGIN_SIS}'
              AND NOT EXISTS (SELECT 1 FROM {table.name} s
                              WHERE s.sourced_id = {store_table}.sourced_id)""",
             district=district_id, now=now)
