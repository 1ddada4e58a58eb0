"""``gateway webhooks``: register the URLs apps receive their change feed at, list and remove
them, replay from a cursor and deliver what is due; ``gateway events prune``."""
from __future__ import annotations

import datetime as dt

import click
import requests
from flask import current_app
from flask.cli import with_appcontext

from gateway.cli.context import echo_json, json_option, store_session
from gateway.database import get_database
from gateway.errors import GatewayError
from gateway.events import webhooks
from gateway.events.feed import parse_cursor, prune_events
from gateway.sharing import service as sharing
from gateway.store.models import District, utcnow


@click.group("webhooks")
def webhooks_group() -> None:
    """Deliver apps' change feeds to their URLs, signed (see the README's "Change feed")."""


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") + "Z" if value is not None else None


@webhooks_group.command("add")
@click.option("--app", "app_id", required=True, metavar="APP_OR_CLIENT_ID", help="The app.")
@click.option("--url", required=True, help="Where deliveries are POSTed (http or https).")
@click.option("--district", metavar="SOURCEDID", help="The district (default: the app's only one).")
@json_option
@with_appcontext
def add_command(app_id: str, url: str, district: str | None, as_json: bool) -> None:
    """Register URL for APP's events (from the next one on) and print its signing secret, only
    this once."""
    try:
        with store_session(write=True) as session:
            app = sharing.find_app(session, app_id)
            district_id = sharing.app_district_id(session, app.id, district)
            added = webhooks.add_webhook(session, app_id=app.id, district_id=district_id, url=url,
                                         secret_key=current_app.config["SECRET_KEY"],
                                         now=utcnow())
    except GatewayError as error:
        raise click.ClickException(str(error)) from error
    if as_json:
        echo_json({"id": added.id, "app_id": added.app_id, "district": added.district,
                   "url": added.url, "secret": added.secret, "cursor": str(added.cursor)})
    else:
        click.echo(f"webhook {added.id}: app {added.app_id}, district {added.district}, {added.url}")
        click.echo(f"secret: {added.secret}")
    click.echo("Warning: the secret is shown only this once; the receiver verifies "
               f"{webhooks.SIGNATURE_HEADER} with it.", err=True)


@webhooks_group.command("list")
@click.option("--app", "app_id", metavar="APP_OR_CLIENT_ID", help="Only this app's webhooks.")
@json_option
@with_appcontext
def list_command(app_id: str | None, as_json: bool) -> None:
    """List webhooks: URL, cursor, failures and when the next attempt is due."""
    try:
        with store_session() as session:
            only = sharing.find_app(session, app_id).id if app_id else None
            rows = [{"id": h.id, "app_id": h.app_id,
                     "district": session.get(District, h.district_id).sourced_id, "url": h.url,
                     "cursor": str(h.cursor), "failures": h.failures,
                     "next_attempt_at": _iso(h.next_attempt_at), "last_error": h.last_error,
                     "last_delivered_at": _iso(h.last_delivered_at)}
                    for h in webhooks.list_webhooks(session, only)]
    except GatewayError as error:
        raise click.ClickException(str(error)) from error
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no webhooks: add one with `gateway webhooks add --app APP --url URL`")
    for row in rows:
        state = (f"failing ({row['failures']}x, next {row['next_attempt_at']}: {row['last_error']})"
                 if row["failures"] else "ok")
        click.echo(f"{row['id']}  app {row['app_id']}  {row['district']}  {row['url']}  "
                   f"cursor {row['cursor']}  {state}")


@webhooks_group.command("remove")
@click.argument("webhook_id", type=int)
@with_appcontext
def remove_command(webhook_id: int) -> None:
    """Remove webhook WEBHOOK_ID (and its secret): nothing more is delivered to it."""
    try:
        with store_session(write=True) as session:
            webhooks.remove_webhook(session, webhook_id)
    except GatewayError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"webhook {webhook_id} removed")


@webhooks_group.command("replay")
@click.option("--app", "app_id", required=True, metavar="APP_OR_CLIENT_ID", help="The app.")
@click.option("--from", "from_cursor", required=True, metavar="CURSOR",
              help="Deliver again every event after this cursor (0: every event kept).")
@click.option("--district", metavar="SOURCEDID", help="The district (default: the app's only one).")
@with_appcontext
def replay_command(app_id: str, from_cursor: str, district: str | None) -> None:
    """Deliver APP's events after CURSOR again to its webhook(s), now."""
    try:
        after = parse_cursor(from_cursor) or 0
        with store_session(write=True) as session:
            app = sharing.find_app(session, app_id)
            district_id = sharing.app_district_id(session, app.id, district)
            hooks = [h for h in webhooks.list_webhooks(session, app.id)
                     if h.district_id == district_id]
            if not hooks:
                raise webhooks.WebhookError(f"app {app.id} has no webhook in that district")
            for hook in hooks:
                webhooks.replay_webhook(session, hook, after)
            ids = [h.id for h in hooks]
    except GatewayError as error:
        raise click.ClickException(str(error)) from error
    with requests.Session() as http:
        results = webhooks.deliver_due(get_database(current_app), webhook_ids=ids,
                                       secret_key=current_app.config["SECRET_KEY"],
                                       post=http.post, settings=current_app.config)
    _echo_results(results)


@webhooks_group.command("deliver")
@click.option("--now", "force", is_flag=True, help="Also the webhooks still waiting out a backoff.")
@json_option
@with_appcontext
def deliver_command(force: bool, as_json: bool) -> None:
    """Deliver what is due to every webhook (failed ones once their backoff has passed) and
    prune old events: run it from cron where there is no job queue (GATEWAY_REDIS_URL)."""
    from gateway.events.jobs import prune_old_events

    database = get_database(current_app)
    with store_session():
        pass  # the schema is brought up to date first, as every command does
    with requests.Session() as http:
        results = webhooks.deliver_due(database, secret_key=current_app.config["SECRET_KEY"],
                                       post=http.post, settings=current_app.config, force=force)
    pruned = prune_old_events(database, current_app.config)
    if as_json:
        echo_json({"results": [r.__dict__ for r in results], "pruned": pruned})
    else:
        _echo_results(results)
    if any(r.error for r in results):
        raise SystemExit(1)


def _echo_results(results: list[webhooks.DeliveryResult]) -> None:
    if not results:
        click.echo("no webhook is due")
    for r in results:
        if r.error:
            click.echo(f"webhook {r.webhook_id}: failed ({r.error}) after {r.events} event(s); "
                       "retried after its backoff")
        else:
            click.echo(f"webhook {r.webhook_id}: delivered {r.events} event(s) in "
                       f"{r.batches} request(s)")


@click.group("events")
def events_group() -> None:
    """The change feed that apps read at GET /events."""


@events_group.command("prune")
@click.option("--older-than", "days", type=int, metavar="DAYS",
              help="Remove events older than DAYS (default GATEWAY_EVENTS_RETENTION_DAYS, 90).")
@json_option
@with_appcontext
def prune_command(days: int | None, as_json: bool) -> None:
    """Remove old events; cursors before them answer 410 (cursor_expired) from then on."""
    days = days if days is not None else int(current_app.config["EVENTS_RETENTION_DAYS"])
    if days < 0:
        raise click.ClickException("--older-than must be 0 or more")
    with store_session(write=True) as session:
        removed = prune_events(session, utcnow() - dt.timedelta(days=days))
    if as_json:
        echo_json({"removed": removed})
    else:
        click.echo(f"removed {removed} event(s) older than {days} day(s)")


def register(cli: click.Group) -> None:
    """Attach the ``webhooks`` and ``events`` groups."""
    cli.add_command(webhooks_group)
    cli.add_command(events_group)
