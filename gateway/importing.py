"""Running one import the way every entry point runs it (``gateway import``, scheduled SIS pulls):
the run is in the history from its start, the bundle is validated and merged in one writer
transaction, the apps' sharing scopes follow the new data in that same transaction, and the
history records how the run ended, whatever way it ended.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from gateway.oneroster.csv.bundle import BundleError
from gateway.oneroster.csv.importer import (ImportOptions, ImportReport, ProgressCallback,
                                            import_bundle, record_import_run, rejected_outcome)
from gateway.sharing.snapshots import refresh_district_snapshots, settle_snapshots
from gateway.store import Database, StoreBusy
from gateway.store.import_runs import running_import
from gateway.store.models import District, utcnow


@dataclass
class ImportOutcome:
    """What a run did: the import's report, its history row, and how many apps' scopes it rebuilt."""

    report: ImportReport
    run_id: int
    snapshots_refreshed: int = 0


def run_import(database: Database, path: str | Path, options: ImportOptions,
               progress: ProgressCallback | None = None, source: str | None = None,
               started_at: dt.datetime | None = None,
               on_start: Callable[[int], None] | None = None) -> ImportOutcome:
    """Import the bundle at ``path`` and record the run in the import history (as ``source``,
    by default the path).

    Raises :class:`BundleError` when ``path`` is not a bundle at all and :class:`StoreBusy` when
    another writer holds the store too long; either way the run is recorded as refused. Any other
    failure is recorded as ``failed`` and re-raised. The store changes only when the report's
    outcome is ``applied``.

    ``on_start`` is called with the run's id once the run is in the history, before anything is
    imported: a job notes it, so that a retry can tell whether the run it retries was applied.
    """
    label = source or str(path)
    started = started_at or utcnow()
    # The run is in the history from its start (committed apart), so a run whose process dies
    # shows as interrupted; each way out below records how it ended instead.
    # On SQLite the run's row waits, like the import, for another import to finish.
    with running_import(database.writer_engine, label, started) as run_id:
        refreshed = 0
        if on_start is not None:
            on_start(run_id)
        try:
            # A dry run writes nothing and need not wait for another import.
            with database.session_scope(write=not options.dry_run) as session:
                report = import_bundle(session, path, options, progress)
                report.source = label
                if report.outcome == "applied":
                    # The apps' scopes follow the new data in the same transaction (see
                    # gateway.sharing.snapshots): no request sees the data without them.
                    district_id = session.execute(select(District.id).where(
                        District.sourced_id == report.district)).scalar_one()
                    refreshed = refresh_district_snapshots(session.connection(), district_id)
                    record_import_run(session, report, started, run_id=run_id)
                else:
                    session.rollback()
        except (BundleError, StoreBusy) as exc:
            try:
                with database.session_scope() as session:
                    record_import_run(session, ImportReport(source=label,
                                                            outcome=rejected_outcome(options.dry_run)),
                                      started, message=str(exc), run_id=run_id)
            except OperationalError:
                # After StoreBusy the other import may hold the store still: the history will
                # show this run interrupted, and the caller says why it ended.
                if not isinstance(exc, StoreBusy):
                    raise
            raise
        except Exception as exc:
            # The import's transaction was rolled back; keep a trace of the attempt for admins.
            with database.session_scope() as session:
                failed = ImportReport(source=label, outcome="failed")
                record_import_run(session, failed, started,
                                  message=f"{type(exc).__name__}: {exc}"[:2000], run_id=run_id)
            raise
        if report.outcome != "applied":
            # The refused run is recorded in a transaction of its own: the import's was rolled back.
            with database.session_scope() as session:
                record_import_run(session, report, started, run_id=run_id)
    if refreshed:
        settle_snapshots(database.engine)
    return ImportOutcome(report=report, run_id=run_id, snapshots_refreshed=refreshed)
