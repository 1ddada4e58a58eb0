"""The gateway's kinds of job: an import of a bundle, a pull from a district's SIS, a rebuild of
a district's sharing scopes. Exports and webhook deliveries will be kinds of their own, each a
function and a :func:`~gateway.jobs.register_kind` call like these.

Why a killed import may be retried: an import is one transaction (nothing of it is written
unless all of it is), so an attempt killed before its commit left the store as it was and the
retry starts clean. An attempt killed after its commit but before the queue heard of it would be
applied twice; the import notes its run's id when the run starts, and a retry that finds a noted
run applied reports that run instead of importing again. (A delta applied twice would change
nothing anyway, its upserts and deletions finding the records as they left them; a bulk file
too. The note makes that not matter, and keeps the import history to one applied run.)
"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any, Mapping

from sqlalchemy import select

from gateway.importing import run_import
from gateway.jobs import IMPORTS_QUEUE, JobContext, JobKind, register_kind
from gateway.oneroster.csv.bundle import BundleError
from gateway.oneroster.csv.importer import ImportOptions
from gateway.oneroster.csv.limits import ImportLimits
from gateway.sharing.snapshots import refresh_district_snapshots, settle_snapshots
from gateway.sis.pull import PullSettings, run_source
from gateway.store import StoreBusy
from gateway.store.models import District, ImportRun

IMPORT_SETTINGS = ("MASS_CHANGE_THRESHOLD", "IMPORT_MAX_REPORTED_ERRORS",
                   *(setting[len("GATEWAY_"):] for setting in ImportLimits.SETTINGS.values()))
"""The settings an import is checked against: those of the host that queued it, carried in the
job, so that a bundle is judged the same wherever it runs."""


def import_params(path: str, *, source: str, options: Mapping[str, Any],
                  settings: Mapping[str, Any], spooled: bool) -> dict[str, Any]:
    """The parameters of an import job: the bundle's ``path`` (as the worker reads it), its
    ``source`` label for the history, the import's options (dry_run, force, district,
    district_name, strict, format), the queuing host's import settings, and whether ``path``
    is a spooled copy the job removes once it has reported."""
    return {"path": path, "source": source, "options": dict(options), "spooled": spooled,
            "settings": {name: settings[name] for name in IMPORT_SETTINGS}}


def _applied_before(context: JobContext) -> dict[str, Any] | None:
    """The result of an earlier attempt of this job whose run was applied, if any."""
    run_ids = context.notes.get("import_runs") or []
    if not run_ids:
        return None
    with context.database.session_scope() as session:
        run = session.execute(select(ImportRun).where(ImportRun.id.in_(run_ids),
                                                      ImportRun.outcome == "applied")).scalar()
        if run is None:
            return None
        district = session.get(District, run.district_id) if run.district_id else None
        return {"report": {"source": run.source, "format": None, "outcome": "applied",
                           "district": district.sourced_id if district else None,
                           "files": run.counts, "problem_count": 0, "problems": [],
                           "notices": [], "refusal": None},
                "district_name": district.name if district else None, "run_id": run.id,
                "snapshots_refreshed": 0, "error": None,
                "note": f"applied by an earlier attempt of this job (import run #{run.id}); "
                        "not applied again"}


def import_bundle_job(context: JobContext, params: Mapping[str, Any]) -> dict[str, Any]:
    """Import a bundle (see :func:`gateway.importing.run_import`). The result holds the report,
    the run's id and how many apps' scopes were rebuilt, or ``error``: why the bundle was
    refused unread (not a bundle, the store busy too long)."""
    earlier = _applied_before(context)
    if earlier is not None:
        discard_spooled(params)
        return earlier
    settings = params["settings"]
    options = ImportOptions(**params["options"],
                            mass_change_threshold=settings["MASS_CHANGE_THRESHOLD"],
                            max_reported_problems=settings["IMPORT_MAX_REPORTED_ERRORS"],
                            limits=ImportLimits.from_config(settings))

    def started(run_id: int) -> None:
        context.note(import_runs=[*context.notes.get("import_runs", []), run_id])

    try:
        outcome = run_import(context.database, params["path"], options, context.progress,
                             source=params["source"], on_start=started)
    except (BundleError, StoreBusy) as error:
        discard_spooled(params)
        runs = context.notes.get("import_runs") or [None]
        return {"report": None, "run_id": runs[-1], "snapshots_refreshed": 0,
                "error": str(error)}
    # A run that raised otherwise keeps its spooled bundle: the job may be retried.
    discard_spooled(params)
    if outcome.report.outcome == "applied":
        _deliver_after(context, outcome.report.district)
    return {"report": outcome.report.to_dict(), "district_name": outcome.report.district_name,
            "run_id": outcome.run_id, "snapshots_refreshed": outcome.snapshots_refreshed,
            "error": None}


def _deliver_after(context: JobContext, district: str | None) -> None:
    """The import has committed: start delivering its events to the district's webhooks
    (gateway.events.jobs); never the import's failure if that cannot start."""
    from gateway.events.jobs import start_deliveries

    try:
        district_id = None
        if district is not None:
            with context.database.session_scope() as session:
                district_id = session.execute(select(District.id).where(
                    District.sourced_id == district)).scalar()
        start_deliveries(context.database, context.settings, district_id)
    except Exception:  # noqa: BLE001 -- `gateway webhooks deliver` catches up later
        logging.getLogger("gateway.webhooks").exception("could not start webhook deliveries")


def discard_spooled(params: Mapping[str, Any]) -> None:
    """Remove an import job's spooled copy of its bundle, if it has one."""
    if params.get("spooled"):
        # The job's own folder in the spool (see gateway.jobs.spool).
        shutil.rmtree(Path(params["path"]).parent, ignore_errors=True)


def _describe_import(params: Mapping[str, Any]) -> str:
    dry = " (dry run)" if params["options"].get("dry_run") else ""
    return f"import {params['source']}{dry}"


def sis_pull_job(context: JobContext, params: Mapping[str, Any]) -> dict[str, Any]:
    """Pull a district's SIS source and import what it holds (see
    :func:`gateway.sis.pull.run_source`); the result is the pull's outcome as ``sources run
    --json`` prints it. A retry pulls again: a pull's import is atomic like any other, and a
    delta asks from before the last applied pull, so records fetched twice change nothing."""
    settings = PullSettings.from_config(context.settings, context.instance_path)

    class _Progress:
        def fetched(self, collection: str, done: int, total: int | None) -> None:
            context.progress(done, total or done)

        def importing(self, done: int, total: int) -> None:
            context.progress(done, total)

    outcome = run_source(context.database, int(params["source_id"]), settings,
                         force=bool(params.get("force")), full=bool(params.get("full")),
                         progress=_Progress())
    if outcome is not None and outcome.to_dict().get("outcome") == "applied":
        _deliver_after(context, None)
    return outcome.to_dict() if outcome is not None else {"outcome": "not due"}


def snapshots_job(context: JobContext, params: Mapping[str, Any]) -> dict[str, Any]:
    """Rebuild the sharing scopes of every app of a district (as an import does), in one
    transaction; the result counts the scopes built. Safe to run again: a rebuild replaces."""
    database = context.database
    with database.session_scope(write=True) as session:
        district_id = session.execute(select(District.id).where(
            District.sourced_id == params["district"])).scalar_one()
        built = refresh_district_snapshots(session.connection(), district_id)
    if built:
        settle_snapshots(database.engine)
    return {"district": params["district"], "snapshots_refreshed": built}


register_kind(JobKind("import", import_bundle_job, queue=IMPORTS_QUEUE, retries=1,
                      describe=_describe_import))
register_kind(JobKind("sis-pull", sis_pull_job, queue=IMPORTS_QUEUE, retries=1,
                      describe=lambda params: f"pull SIS source {params['source_id']}"))


def console_import_job(_context: JobContext, params: Mapping[str, Any]) -> dict[str, Any]:
    """An import uploaded in the admin console (:func:`gateway.admin.imports.run_job`): its
    progress and report go to the job's folder, where the console's pages read them."""
    from gateway.admin.imports import read_job
    from gateway.admin.imports import run_job as run_console_import

    folder = Path(params["job_dir"])
    run_console_import(folder)
    job = read_job(folder)
    return {"status": job.status, "error": job.error,
            "outcome": (job.report or {}).get("outcome")}


# Not retried: the console's job folder says how far the attempt got, and an apply that a kill
# cut short is for the admin to start again from the page.
register_kind(JobKind("console-import", console_import_job, queue=IMPORTS_QUEUE,
                      describe=lambda params: f"console import {Path(params['job_dir']).name}"))
register_kind(JobKind("snapshots", snapshots_job, retries=1,
                      describe=lambda params: f"rebuild sharing scopes of {params['district']}"))

# Grades back to an LMS (the tool role): a kind of its own module, like exports will be.
import gateway.lti.tool.grade_jobs  # noqa: E402,F401  (registers lms-grades)
import gateway.events.jobs  # noqa: E402,F401  (registers webhooks)
