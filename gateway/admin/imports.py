"""Imports started from the console, as jobs that run outside the request.

An uploaded bundle is kept in the instance folder (``uploads/JOB/``); a job imports it, a dry run
first, and writes its progress and its report beside it (``job.json``), where any worker of the
gateway reads them to show the page. The job itself is :func:`run_job`, a plain function of a
folder: whatever runs jobs runs it.

What runs it is behind :class:`ImportJobs`. With a job queue (``GATEWAY_REDIS_URL``),
:class:`QueuedImportJobs` puts each job on it (kind ``console-import``), for any ``gateway
worker``; the folders are then in the spool (``GATEWAY_SPOOL_DIR``), which every host mounts. In
the embedded default, without Redis, :class:`ProcessImportJobs` starts each job as a detached
process on the same host (so a job outlives the request and the worker that started it, but not a
restart of the host).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import secrets
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from gateway.store.private import create_private_file, make_private_folder

DRY_RUN, APPLY = "dry-run", "apply"
QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
_JOB_ID_LENGTH = 22


@dataclasses.dataclass
class ImportJob:
    """One import job: what it does, how far it got, and its report when done."""

    id: str
    kind: str  # dry-run | apply
    district: str  # the sourcedId the bundle must be of
    database_url: str
    options: dict[str, Any]
    upload: str  # the job whose upload this is (itself for a dry run)
    status: str = QUEUED
    done: int = 0
    total: int = 0
    report: dict[str, Any] | None = None
    error: str | None = None
    applied_as: str | None = None  # on a dry run: the apply job last started from its upload
    rejected_by: str | None = None  # on a dry run: who rejected its upload, and when (ISO 8601)
    rejected_at: str | None = None

    @property
    def finished(self) -> bool:
        """Whether the job has ended, well or not."""
        return self.status in (DONE, FAILED)


class ImportJobs(Protocol):
    """Starts import jobs; implemented on the job queue at merge."""

    def start(self, job_dir: Path) -> None:
        """Run :func:`run_job` on ``job_dir`` outside the request."""


class ProcessImportJobs:
    """Each job in a detached process of its own (see the module's docstring)."""

    def start(self, job_dir: Path) -> None:
        """Start ``python -m gateway.admin.imports JOB_DIR`` in a session of its own."""
        process = subprocess.Popen([sys.executable, "-m", "gateway.admin.imports", str(job_dir)],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True)
        # Reaped when it ends, so no finished job lingers as a zombie of the worker.
        threading.Thread(target=process.wait, daemon=True).start()


class QueuedImportJobs:
    """Each job on the gateway's job queue, run by a ``gateway worker`` on any host."""

    def __init__(self, redis_url: str, prefix: str, timeout_seconds: int) -> None:
        self.redis_url, self.prefix, self.timeout_seconds = redis_url, prefix, timeout_seconds

    def start(self, job_dir: Path) -> None:
        """Queue a ``console-import`` job of ``job_dir``."""
        from gateway.jobs.queue import connect_queue_redis, enqueue_job

        enqueue_job(connect_queue_redis(self.redis_url), self.prefix, "console-import",
                    {"job_dir": str(job_dir)}, default_timeout=self.timeout_seconds)


def _folder(instance_path: str | os.PathLike[str]) -> Path:
    folder = Path(instance_path) / "uploads"
    make_private_folder(folder)
    return folder


def job_dir(instance_path: str | os.PathLike[str], job_id: str) -> Path | None:
    """The folder of job ``job_id`` (None for anything that is not a job's id)."""
    if len(job_id) != _JOB_ID_LENGTH or not job_id.replace("-", "").replace("_", "").isalnum():
        return None
    found = _folder(instance_path) / job_id
    return found if (found / "job.json").exists() else None


def _write(folder: Path, job: ImportJob) -> None:
    # Written whole, then renamed: a reader never sees half a state.
    partial = folder / "job.json.partial"
    partial.unlink(missing_ok=True)
    with create_private_file(partial).open("w") as out:
        json.dump(dataclasses.asdict(job), out)
    partial.replace(folder / "job.json")


def read_job(folder: Path) -> ImportJob:
    """The job in ``folder`` as it stands."""
    return ImportJob(**json.loads((folder / "job.json").read_text()))


def new_job(instance_path: str | os.PathLike[str], *, kind: str, district: str,
            database_url: str, options: dict[str, Any], upload: BinaryIO | None = None,
            upload_of: str | None = None) -> Path:
    """Make a job's folder: with ``upload``, the bundle saved in it (a dry run); with
    ``upload_of``, the id of an earlier job whose bundle it imports (an apply)."""
    job_id = secrets.token_urlsafe(16)
    folder = _folder(instance_path) / job_id
    make_private_folder(folder)
    if upload is not None:
        with create_private_file(folder / "bundle.zip").open("wb") as out:
            while chunk := upload.read(1024 * 1024):
                out.write(chunk)
    _write(folder, ImportJob(id=job_id, kind=kind, district=district, database_url=database_url,
                             options=options, upload=upload_of or job_id))
    return folder


def mark_applied(folder: Path, apply_job: str) -> None:
    """Note on the dry run in ``folder`` that ``apply_job`` imports its upload: from then on its
    bundle is in use, and the upload can no longer be rejected."""
    job = read_job(folder)
    job.applied_as = apply_job
    _write(folder, job)


def reject_job(folder: Path, by: str, at: dt.datetime) -> ImportJob:
    """Reject the upload of the dry run in ``folder`` (``by`` whom, ``at`` when): it is never
    applied, and its bundle, which holds every student's record, is deleted now rather than kept
    for an import that will not come."""
    job = read_job(folder)
    job.rejected_by, job.rejected_at = by, at.isoformat(timespec="seconds")
    # The state first: were the deletion to fail, the upload is still refused.
    _write(folder, job)
    (folder / "bundle.zip").unlink(missing_ok=True)
    return job


def run_job(folder: Path) -> None:
    """The job: import the bundle (writing nothing on a dry run), its progress and report written
    to the job's folder as it goes."""
    from gateway.importing import run_import
    from gateway.oneroster.csv.bundle import BundleError
    from gateway.oneroster.csv.importer import ImportOptions
    from gateway.oneroster.csv.limits import ImportLimits
    from gateway.store import Database, StoreBusy

    job = read_job(folder)
    job.status = RUNNING
    _write(folder, job)
    options = dict(job.options)
    limits = ImportLimits(**options.pop("limits"))
    bundle = folder.parent / job.upload / "bundle.zip"
    database = Database(job.database_url)

    def progress(done: int, total: int) -> None:
        # A few writes over the run, not one per block read.
        if total and (done == total or done - job.done >= max(total // 20, 1)):
            job.done, job.total = done, total
            _write(folder, job)

    try:
        outcome = run_import(database, bundle, ImportOptions(
            dry_run=job.kind == DRY_RUN, limits=limits, **options), progress,
            source=f"console upload {job.upload}")
        job.report = outcome.report.to_dict()
        job.status = DONE
    except (BundleError, StoreBusy) as error:
        job.status, job.error = FAILED, str(error)
    except Exception as error:  # noqa: BLE001  (the page must say the job ended)
        job.status, job.error = FAILED, f"the import failed: {error}"
        raise
    finally:
        _write(folder, job)
        database.dispose()


if __name__ == "__main__":
    run_job(Path(sys.argv[1]))
