"""``gateway worker`` and ``gateway jobs``: the processes that run queued jobs, and what the
queues hold. Thin commands over :mod:`gateway.jobs.queue`; both need ``GATEWAY_REDIS_URL``."""
from __future__ import annotations

from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext

from gateway.cli.context import echo_json, json_option
from gateway.database import get_database
from gateway.jobs import QUEUES
from gateway.jobs.queue import (JobFailed, connect_queue_redis, enqueue_job, list_jobs,
                                run_worker, wait_for_job)
from gateway.store.migrate import ensure_schema

_NO_QUEUE = ("no job queue: GATEWAY_REDIS_URL is empty, so jobs run in the command that starts "
             "them (see `gateway imports` for the import history)")


def queue_redis() -> Any | None:
    """A Redis client for the app's job queues, or None in embedded mode."""
    url = current_app.config.get("REDIS_URL")
    return connect_queue_redis(url) if url else None


def queue_job(redis: Any, kind: str, params: dict[str, Any]) -> str:
    """Queue a job of ``kind`` on the app's queues; its id. A Redis that does not answer is the
    command's error."""
    from redis.exceptions import RedisError

    try:
        return enqueue_job(redis, current_app.config["REDIS_KEY_PREFIX"], kind, params,
                           default_timeout=int(current_app.config["JOB_TIMEOUT_SECONDS"]))
    except (RedisError, OSError) as error:
        raise click.ClickException(f"the job queue (GATEWAY_REDIS_URL) does not answer: "
                                   f"{error}; nothing was queued") from None


def waited_job(redis: Any, job_id: str, progress: Any = None) -> dict[str, Any]:
    """The result of queued job ``job_id``, waited for; a job that failed for good is the
    command's error."""
    try:
        return wait_for_job(redis, job_id, progress)
    except JobFailed as failure:
        raise click.ClickException(f"job {job_id} failed: {failure}") from None


def _queues(_ctx, _param, value: str | None) -> tuple[str, ...]:
    names = tuple(name.strip() for name in (value or ",".join(QUEUES)).split(",") if name.strip())
    unknown = [name for name in names if name not in QUEUES]
    if unknown or not names:
        raise click.BadParameter(f"the queues are {', '.join(QUEUES)}")
    return names


@click.command("worker")
@click.option("--queues", callback=_queues, metavar="NAMES",
              help=f"Comma-separated queues to work, in priority order [default: {','.join(QUEUES)}].")
@click.option("--burst", is_flag=True, help="Stop once the queues are empty.")
@click.option("--name", help="The worker's name in listings [default: host and process id].")
@with_appcontext
def worker_command(queues: tuple[str, ...], burst: bool, name: str | None) -> None:
    """Run queued jobs (imports, SIS pulls, scope rebuilds), each in a process of its own, until
    stopped: SIGTERM finishes the job at hand first. Run as many as you like, on any host that
    reaches the database, Redis and the spool."""
    redis = queue_redis()
    if redis is None:
        raise click.ClickException("GATEWAY_REDIS_URL is empty: there is no queue to work "
                                   "(without Redis, jobs run in the command that starts them)")
    ensure_schema(get_database(current_app))
    run_worker(redis, current_app.config["REDIS_KEY_PREFIX"], dict(current_app.config),
               current_app.instance_path, queues, burst=burst, name=name)


def _progress(job: dict[str, Any]) -> str:
    progress = job.get("progress")
    if not progress or not progress.get("total"):
        return ""
    return f" {100 * progress['done'] // max(progress['total'], 1)}%"


def _summary(job: dict[str, Any]) -> str:
    result = job.get("result")
    if job["status"] == "failed":
        return job["reason"] or ""
    if job["status"] == "scheduled":
        # A retry waiting: why the attempt before failed.
        return f"retry after: {job['reason']}" if job["reason"] else ""
    if not isinstance(result, dict):
        return ""
    if result.get("error"):
        return result["error"]
    report = result.get("report") or result
    run = f" (import run #{result['run_id']})" if result.get("run_id") else ""
    return f"{report.get('outcome', '')}{run}"


@click.command("jobs")
@click.option("--finished", "finished_limit", default=20, show_default=True,
              type=click.IntRange(1, 10000), help="How many finished jobs to list per queue.")
@json_option
@with_appcontext
def jobs_command(finished_limit: int, as_json: bool) -> None:
    """List the queued, running, failed and recently finished jobs, with their progress."""
    redis = queue_redis()
    if redis is None:
        if as_json:
            echo_json([])
        else:
            click.echo(_NO_QUEUE)
        return
    jobs = list_jobs(redis, current_app.config["REDIS_KEY_PREFIX"], finished_limit=finished_limit)
    if as_json:
        echo_json(jobs)
        return
    if not jobs:
        click.echo("no jobs")
        return
    for job in jobs:
        when = job["ended_at"] or job["started_at"] or job["enqueued_at"] or "-"
        where = f" on {job['host']}" if job["host"] and job["status"] == "started" else ""
        click.echo(f"{job['id']}  {job['queue']:<8} {job['status']:<9}{_progress(job):<5} {when} "
                   f"{job['description']}{where}")
        summary = _summary(job)
        if summary:
            click.echo(f"    {summary}")


def register(cli: click.Group) -> None:
    """Attach the job commands."""
    cli.add_command(worker_command)
    cli.add_command(jobs_command)
