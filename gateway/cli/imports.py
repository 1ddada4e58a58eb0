"""``gateway import`` and ``gateway imports``: OneRoster CSV ingestion and its history."""
from __future__ import annotations

import sys
from pathlib import Path

import click
import orjson
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from gateway.cli.context import echo_json, json_option
from gateway.cli.jobs import queue_job, queue_redis, waited_job
from gateway.database import get_database
from gateway.formats import FORMATS
from gateway.jobs import JobContext, run_job
from gateway.jobs.kinds import discard_spooled, import_params
from gateway.jobs.spool import spool_bundle, spool_folder
from gateway.oneroster.csv.importer import ImportReport
from gateway.store.import_runs import INTERRUPTED, interrupted_runs
from gateway.store.migrate import ensure_schema
from gateway.store.models import District, ImportRun


_INTERRUPTED_MESSAGE = ("its process ({pid} on {host}) ended before the import did; "
                        "the import's transaction was rolled back, so nothing of it was written")


class _ByteProgress:
    """A click progress bar over the bundle's bytes, shown only on a terminal."""

    def __init__(self) -> None:
        self.bar = None

    def __call__(self, done: int, total: int) -> None:
        if not sys.stderr.isatty():
            return
        if self.bar is None:
            self.bar = click.progressbar(length=max(total, 1), label="importing", file=sys.stderr)
            self.bar.__enter__()
        self.bar.update(done - self.bar.pos)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


def _print_report(report: ImportReport, dry_run: bool) -> None:
    if report.format:
        click.echo(f"read as {report.format}")
    if report.district:
        click.echo(f"district {report.district} ({report.district_name})")
    if report.files:
        click.echo(f"{'file':<22}{'mode':<7}{'added':>9}{'changed':>9}{'unchanged':>11}"
                   f"{'deleted':>9}{'rejected':>10}")
        for name, c in report.files.items():
            click.echo(f"{name + '.csv':<22}{c.mode:<7}{c.added:>9}{c.changed:>9}{c.unchanged:>11}"
                       f"{c.deleted:>9}{c.rejected:>10}")
    for notice in report.notices:
        click.echo(f"note: {notice}")
    if report.problem_count:
        click.echo(f"{report.problem_count} problem(s); the bundle was rejected and nothing was written:",
                   err=True)
        for problem in report.problems:
            click.echo(f"  {problem}", err=True)
        hidden = report.problem_count - len(report.problems)
        if hidden > 0:
            click.echo(f"  ... and {hidden} more (use --report FILE for the first ones as JSON)", err=True)
    if report.refusal:
        click.echo(report.refusal, err=True)


@click.command("import")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--dry-run", is_flag=True, help="Validate and print what would change, writing nothing.")
@click.option("--force", is_flag=True, help="Apply a bulk import even if it retires more than the "
              "mass-change threshold of a district's users, classes or enrollments.")
@click.option("--district", metavar="SOURCEDID",
              help="The district of a bundle without an org of type district (its orgs without a "
              "parent become the district's children).")
@click.option("--district-name", metavar="NAME",
              help="The name of the --district, to create it on a first import.")
@click.option("--strict", is_flag=True, help="Refuse what would otherwise be normalized with a notice "
              "(a date-only timestamp, a value in the wrong case, an unknown manifest key...).")
@click.option("--format", "format_name", type=click.Choice(sorted(FORMATS)),
              help="The export format (default: recognized from the files).")
@click.option("--report", "report_path", type=click.Path(path_type=Path),
              help="Also write the report (counts and problems) as JSON to this file.")
@click.option("--no-wait", is_flag=True, help="With a job queue (GATEWAY_REDIS_URL): queue the "
              "import, print the job's id and return (`gateway jobs` follows it).")
@json_option
@with_appcontext
def import_command(path: Path, dry_run: bool, force: bool, district: str | None,
                   district_name: str | None, strict: bool, format_name: str | None,
                   report_path: Path | None, no_wait: bool, as_json: bool) -> None:
    """Import a roster bundle (a folder or .zip) into the store, all or nothing: OneRoster 1.2 or
    1.1 CSV, or another export format the gateway reads (see --format).

    With GATEWAY_REDIS_URL set the import is a job: the bundle is copied into the spool
    (GATEWAY_SPOOL_DIR), queued, run by a `gateway worker`, and waited for here."""
    database = get_database(current_app)
    ensure_schema(database)
    if district_name and not district:
        raise click.UsageError("--district-name names the district given with --district")
    config = current_app.config
    options = {"dry_run": dry_run, "force": force, "district": district,
               "district_name": district_name, "strict": strict, "format": format_name}
    queued = bool(config.get("REDIS_URL")) and path.exists()
    if queued:
        # A worker on another host reads the copy; a path that does not exist is refused the
        # usual way, in this process, without queuing anything.
        bundle = spool_bundle(path, spool_folder(config, current_app.instance_path))
        params = import_params(str(bundle), source=str(path), options=options, settings=config,
                               spooled=True)
    else:
        params = import_params(str(path), source=str(path), options=options, settings=config,
                               spooled=False)
    progress = _ByteProgress()
    try:
        if queued:
            redis = queue_redis()
            try:
                job_id = queue_job(redis, "import", params)
            except click.ClickException:
                discard_spooled(params)  # nothing was queued
                raise
            result = None if no_wait else waited_job(redis, job_id, progress)
        else:
            # No queue (or nothing to queue): the same job, here and now.
            context = JobContext(database, config, current_app.instance_path, progress=progress)
            job_id, result = None, run_job("import", params, context)
    finally:
        progress.close()
    if result is None:
        if as_json:
            echo_json({"job": job_id})
        else:
            click.echo(f"queued as job {job_id} (`gateway jobs` shows how it goes)")
        return
    if result["error"]:
        raise click.ClickException(result["error"])
    report = ImportReport.from_dict(result["report"])
    report.district_name = result.get("district_name")
    if report_path is not None:
        report_path.write_bytes(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2))
    refreshed = result["snapshots_refreshed"]
    if as_json:
        # The report as --report writes it; the exit status still says whether it was refused.
        echo_json({**report.to_dict(), "sharing_scopes_refreshed": refreshed,
                   **({"job": job_id} if job_id else {})})
    else:
        if job_id:
            click.echo(f"job {job_id}")
        _print_report(report, dry_run)
        if result.get("note"):
            click.echo(f"note: {result['note']}")
        if refreshed:
            click.echo(f"sharing scopes refreshed for {refreshed} app(s)")
        if report.outcome == "applied":
            click.echo("import applied")
        elif report.outcome == "dry-run":
            click.echo("dry run: the bundle is valid; nothing was written")
    if report.outcome not in ("applied", "dry-run"):
        raise SystemExit(1)


@click.command("imports")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10000))
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@with_appcontext
def imports_command(limit: int, as_json: bool) -> None:
    """List recent imports: when, source, outcome and counts."""
    database = get_database(current_app)
    ensure_schema(database)
    with database.session_scope() as session:
        rows = session.execute(
            select(ImportRun, District.sourced_id).outerjoin(District, ImportRun.district_id == District.id)
            .order_by(ImportRun.id.desc()).limit(limit)).all()
        interrupted = interrupted_runs(session.connection(), [run for run, _ in rows])
        runs = [{"id": run.id, "district": district, "source": run.source,
                 "started_at": run.started_at.isoformat(timespec="seconds") + "Z",
                 "finished_at": run.finished_at.isoformat(timespec="seconds") + "Z" if run.finished_at else None,
                 "outcome": INTERRUPTED if run.id in interrupted else run.outcome,
                 "problems": run.error_count, "counts": run.counts,
                 "message": _INTERRUPTED_MESSAGE.format(pid=run.pid, host=run.host)
                 if run.id in interrupted else run.message} for run, district in rows]
    if as_json:
        click.echo(orjson.dumps(runs, option=orjson.OPT_INDENT_2).decode())
        return
    if not runs:
        click.echo("no imports yet")
        return
    for run in runs:
        totals = {k: sum(c.get(k, 0) for c in run["counts"].values())
                  for k in ("added", "changed", "unchanged", "deleted")}
        click.echo(f"#{run['id']} {run['started_at']} {run['outcome']:<8} {run['district'] or '-'} "
                   f"{run['source']}  +{totals['added']} ~{totals['changed']} ={totals['unchanged']} "
                   f"-{totals['deleted']}  problems: {run['problems']}")
        if run["message"]:
            click.echo(f"    {run['message']}")


def register(cli: click.Group) -> None:
    """Attach the import commands."""
    cli.add_command(import_command)
    cli.add_command(imports_command)
