"""``gateway sources``: districts' rosters pulled from a SIS's OneRoster 1.2 REST service on a
schedule (``sources run --due`` from cron or a systemd timer). Thin commands over
:mod:`gateway.sis.pull`."""
from __future__ import annotations

import sys

import click
from flask import current_app
from flask.cli import with_appcontext

from gateway.cli.context import echo_json, json_option, store_session
from gateway.database import get_database
from gateway.errors import UsageError
from gateway.cli.jobs import queue_job, queue_redis
from gateway.jobs.queue import JobFailed, wait_for_job
from gateway.sis.pull import (PullSettings, add_source, claim_due_sources, describe_source,
                              describe_sources, get_source, parse_interval, remove_source,
                              run_due_sources, run_source)
from gateway.store.migrate import ensure_schema
from gateway.store.models import utcnow

SECRET_ENVVAR = "GATEWAY_SIS_CLIENT_SECRET"


class _PullBars:
    """Click progress bars on a terminal: one per collection read, then the import's."""

    def __init__(self) -> None:
        self.bar = None
        self.label: str | None = None

    def _show(self, label: str, done: int, total: int | None) -> None:
        if not sys.stderr.isatty():
            return
        if self.label != label:
            self.close()
            self.label = label
            self.bar = click.progressbar(length=max(total or done, 1), label=label, file=sys.stderr)
            self.bar.__enter__()
        # A source that announces no count gets a bar that grows with what arrives.
        self.bar.length = max(self.bar.length, total or done, 1)
        self.bar.update(done - self.bar.pos)

    def fetched(self, collection: str, done: int, total: int | None) -> None:
        """A bar per collection, in records."""
        self._show(f"reading {collection}", done, total)

    def importing(self, done: int, total: int) -> None:
        """The import's bar, over the bundle's bytes."""
        self._show("importing", done, total)

    def close(self) -> None:
        """End the bar being drawn, if any."""
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None
            self.label = None


def _interval(_ctx, _param, value: str) -> int:
    try:
        return parse_interval(value)
    except UsageError as error:
        raise click.BadParameter(error.description) from None


@click.group("sources")
def sources_group() -> None:
    """Pull districts' rosters from a SIS's OneRoster 1.2 REST service, on a schedule."""


@sources_group.command("add")
@click.option("--district", required=True, metavar="SOURCEDID",
              help="The district's sourcedId (its org of type district at the SIS).")
@click.option("--district-name", metavar="NAME", help="The district's name, if the SIS has no "
              "org of type district to take it from.")
@click.option("--oneroster-url", required=True, metavar="URL",
              help="The SIS's rostering base URL, ending in /ims/oneroster/rostering/v1p2.")
@click.option("--token-url", metavar="URL", help="The SIS's OAuth 2.0 token URL [default: "
              "/oauth/token beside /ims/oneroster, where this gateway serves it].")
@click.option("--client-id", required=True)
@click.option("--client-secret", envvar=SECRET_ENVVAR, prompt=True, hide_input=True,
              help=f"The client secret (or set {SECRET_ENVVAR}, or type it at the prompt: kept "
                   "out of the shell's history).")
@click.option("--every", "interval", default="24h", show_default=True, callback=_interval,
              help="How often `sources run --due` pulls it: 30m, 6h, 1d...")
@json_option
@with_appcontext
def add_command(district: str, district_name: str | None, oneroster_url: str,
                token_url: str | None, client_id: str, client_secret: str, interval: int,
                as_json: bool) -> None:
    """Add a district's SIS source; its first pull (a full one) is due at once."""
    with store_session(write=True) as session:
        source = add_source(session, district=district, district_name=district_name,
                            base_url=oneroster_url, token_url=token_url, client_id=client_id,
                            client_secret=client_secret, interval_seconds=interval,
                            secret_key=current_app.config["SECRET_KEY"], now=utcnow())
        described = describe_source(source)
    if as_json:
        echo_json(described)
        return
    click.echo(f"source {described['id']}: {described['district']} from "
               f"{described['oneroster_url']} every {described['every']} "
               f"(token URL {described['token_url']})")
    click.echo(f"its first pull is due now: `gateway sources run {described['id']}`, or the next "
               "`gateway sources run --due`")


@sources_group.command("list")
@json_option
@with_appcontext
def list_command(as_json: bool) -> None:
    """List the sources, their schedule and how their last pull went (never the secret)."""
    with store_session() as session:
        sources = describe_sources(session)
    if as_json:
        echo_json(sources)
        return
    if not sources:
        click.echo("no sources yet (`gateway sources add`)")
        return
    for s in sources:
        click.echo(f"#{s['id']} {s['district']}  {s['oneroster_url']}  every {s['every']}  "
                   f"client_id {s['client_id']}")
        last = (f"last pull {s['last_started_at']} {s['last_outcome']}"
                + (f" (import run #{s['last_import_run']})" if s['last_import_run'] else "")
                if s["last_started_at"] else "never pulled")
        since = (f"; synced through {s['synced_through']}" if s["synced_through"]
                 else "; the next pull is a full one")
        click.echo(f"    {last}; next due {s['next_due_at']}{since}")
        if s["last_message"]:
            click.echo(f"    {s['last_message']}")


def _print_outcome(outcome: dict) -> None:
    """A pull's outcome (as ``PullOutcome.to_dict`` gives it, here or from a worker)."""
    run = f" (import run #{outcome['import_run']})" if outcome["import_run"] else ""
    ok = outcome["outcome"] == "applied"
    report = outcome["report"]
    if report is None and not ok:
        # Failed before anything was imported: the reason, in one line, is all there is to say.
        click.echo(f"Error: source {outcome['source']}: {outcome['message']}", err=True)
        return
    since = f" changed since {outcome['since']}" if outcome["since"] else ""
    click.echo(f"source {outcome['source']}: {outcome['mode']} pull of {outcome['district']} "
               f"from {outcome['oneroster_url']}{since}")
    if outcome["rows"]:
        click.echo("  read " + ", ".join(f"{name} {count:,}"
                                         for name, count in outcome["rows"].items()))
    for notice in outcome["notices"]:
        click.echo(f"  note: {notice}")
    if report is not None:
        for name, counts in report["files"].items():
            click.echo(f"  {name + '.csv':<20} {counts['mode']:<6} +{counts['added']} "
                       f"~{counts['changed']} ={counts['unchanged']} -{counts['deleted']}")
    if outcome["sharing_scopes_refreshed"]:
        click.echo(f"  sharing scopes refreshed for {outcome['sharing_scopes_refreshed']} app(s)")
    if ok:
        click.echo(f"  {outcome['message'] or 'import applied'}{run}")
    else:
        click.echo(f"Error: source {outcome['source']}: {outcome['outcome']}: "
                   f"{outcome['message']}{run}", err=True)


def _queued_pulls(source_id: int | None, due: bool, full: bool, force: bool,
                  wait: bool) -> tuple[list[str], list[dict]]:
    """Queue the pulls (with --due, those claimed now); their job ids and, with ``wait``,
    their outcomes, or a failed job's reason, in order."""
    redis = queue_redis()
    database = get_database(current_app)
    if due:
        ids = claim_due_sources(database)
    else:
        with store_session() as session:
            get_source(session, source_id)  # an unknown id is the command's error
        ids = [source_id]
    jobs = [queue_job(redis, "sis-pull", {"source_id": i, "full": full, "force": force})
            for i in ids]
    outcomes = []
    if wait:
        for source, job_id in zip(ids, jobs):
            try:
                outcomes.append(wait_for_job(redis, job_id))
            except JobFailed as failure:
                outcomes.append({"source": source, "outcome": "failed", "import_run": None,
                                 "report": None, "message": f"job {job_id} failed: {failure}"})
    return jobs, outcomes


@sources_group.command("run")
@click.argument("source_id", type=int, required=False)
@click.option("--due", is_flag=True, help="Pull every source that is due (for cron or a timer).")
@click.option("--full", is_flag=True, help="A full (bulk) pull even where a delta would do.")
@click.option("--force", is_flag=True, help="Apply a full pull that retires more than the "
              "mass-change threshold of the district's users, classes or enrollments.")
@click.option("--no-wait", is_flag=True, help="With a job queue (GATEWAY_REDIS_URL): queue the "
              "pulls, print their job ids and return.")
@json_option
@with_appcontext
def run_command(source_id: int | None, due: bool, full: bool, force: bool, no_wait: bool,
                as_json: bool) -> None:
    """Pull source SOURCE_ID now, or with --due every source that is due (exit 1 if a pull
    failed). With GATEWAY_REDIS_URL set, each pull is a job run by a `gateway worker`, waited
    for here unless --no-wait."""
    if (source_id is None) == (not due):
        raise click.UsageError("give a source id or --due (not both)")
    if due and (full or force):
        raise click.UsageError("--full and --force go with one source's id, not --due")
    database = get_database(current_app)
    ensure_schema(database)
    bars = _PullBars()
    try:
        if current_app.config.get("REDIS_URL"):
            jobs, pulled = _queued_pulls(source_id, due, full, force, wait=not no_wait)
            if no_wait:
                if as_json:
                    echo_json(jobs)
                else:
                    click.echo(f"queued {len(jobs)} pull(s): {' '.join(jobs)}" if jobs
                               else "no source is due")
                return
        else:
            settings = PullSettings.from_config(current_app.config, current_app.instance_path)
            if due:
                outcomes = run_due_sources(database, settings, progress=bars)
            else:
                outcomes = [run_source(database, source_id, settings, force=force, full=full,
                                       progress=bars)]
            pulled = [outcome.to_dict() for outcome in outcomes if outcome is not None]
            if any(outcome["outcome"] == "applied" for outcome in pulled):
                # Committed: the pulls' events go to the webhooks (a thread; never the pull's wait).
                from gateway.events.jobs import start_deliveries
                start_deliveries(database, current_app.config)
    except UsageError as error:
        raise click.ClickException(str(error)) from None
    finally:
        bars.close()
    if as_json:
        echo_json(pulled if due else pulled[0])
    elif due and not pulled:
        click.echo("no source is due")
    else:
        for outcome in pulled:
            _print_outcome(outcome)
    if any(outcome["outcome"] != "applied" for outcome in pulled):
        raise SystemExit(1)


@sources_group.command("remove")
@click.argument("source_id", type=int)
@json_option
@with_appcontext
def remove_command(source_id: int, as_json: bool) -> None:
    """Remove a source (its district's data and its runs in the import history stay)."""
    with store_session(write=True) as session:
        removed = remove_source(session, source_id)
    if as_json:
        echo_json(removed)
        return
    click.echo(f"source {removed['id']} removed ({removed['district']} from "
               f"{removed['oneroster_url']}); the district's data stays")


def register(cli: click.Group) -> None:
    """Attach the ``sources`` group."""
    cli.add_command(sources_group)
