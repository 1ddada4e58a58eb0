"""The import history's view of runs in progress: a run is recorded, committed, when it starts,
and whoever lists the history can tell a run still going from one whose process died.

How a run is known to be alive:

- PostgreSQL: the run's process holds a session-level advisory lock keyed on the run, taken
  before the row that announces the run is committed, on a connection of its own. The server
  releases it when that connection ends, however the process ended (kill -9 included), and
  every host that shares the database sees it in ``pg_locks``.
- SQLite: the database is a local file, so the process is on this host: the run records its
  process id and host name, and the run is alive while that process exists.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import os
import socket
from typing import Iterable, Iterator

from sqlalchemy import Engine, func, insert, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from gateway.store.models import ImportRun

RUNNING = "running"
INTERRUPTED = "interrupted"


def _lock_space(conn: Connection) -> int:
    """The first key of the runs' advisory locks: this schema's import_runs table, so that two
    schemas of one database (or two gateways sharing a server) never mistake each other's runs."""
    return conn.execute(text("SELECT CAST(CAST('import_runs' AS regclass) AS oid)::bigint % 2147483647")
                        ).scalar_one()


@contextlib.contextmanager
def running_import(engine: Engine, source: str, started_at: dt.datetime) -> Iterator[int]:
    """Record a run as ``running`` in a short transaction of its own and keep it provably alive
    until the block ends; yield its id. The block records how the run ended."""
    conn = engine.connect()
    try:
        with conn.begin():
            run_id = conn.execute(insert(ImportRun).values(
                source=source, started_at=started_at, outcome=RUNNING, counts={}, error_count=0,
                pid=os.getpid(), host=socket.gethostname()).returning(ImportRun.id)).scalar_one()
            if conn.dialect.name == "postgresql":
                # Held from before the row is visible to the end of the run (it outlives commits).
                conn.execute(text("SELECT pg_advisory_lock(CAST(:space AS int), :run)"),
                             {"space": _lock_space(conn), "run": run_id})
        if conn.dialect.name != "postgresql":
            conn.close()
        yield run_id
    finally:
        if not conn.closed:
            # Closing alone would return the connection to the pool with the lock still held.
            with contextlib.suppress(DBAPIError):
                if conn.dialect.name == "postgresql" and not conn.invalidated:
                    conn.execute(text("SELECT pg_advisory_unlock_all()"))
                    conn.commit()
            conn.close()


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    return True


def interrupted_runs(conn: Connection, runs: Iterable[ImportRun]) -> set[int]:
    """The ids of those ``runs`` still marked running whose process is gone."""
    running = [run for run in runs if run.outcome == RUNNING]
    if not running:
        return set()
    if conn.dialect.name == "postgresql":
        held = set(conn.execute(text(
            "SELECT objid::bigint FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND objsubid = 2 AND classid::bigint = :space "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"),
            {"space": _lock_space(conn)}).scalars())
        return {run.id for run in running if run.id not in held}
    # A run recorded on another host cannot be checked from here: it stays "running".
    host = socket.gethostname()
    return {run.id for run in running
            if run.host == host and run.pid is not None and not _process_exists(run.pid)}


def import_history_totals(conn: Connection) -> list[tuple[str, int, int, float]]:
    """Per outcome of the import history: (outcome, runs, finished runs, their seconds in all).
    One aggregate over the history table (a few rows a day), for the metrics scrape."""
    started, finished = ImportRun.__table__.c.started_at, ImportRun.__table__.c.finished_at
    if conn.dialect.name == "postgresql":
        seconds = func.extract("epoch", finished - started)
    else:
        # SQLite keeps times as text; julianday() reads them (days, with fractions).
        seconds = (func.julianday(finished) - func.julianday(started)) * 86400.0
    rows = conn.execute(select(ImportRun.__table__.c.outcome, func.count(), func.count(finished),
                               func.coalesce(func.sum(seconds), 0.0))
                        .group_by(ImportRun.__table__.c.outcome)).all()
    return [(outcome, runs, done, float(total)) for outcome, runs, done, total in rows]
