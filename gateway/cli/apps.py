"""``gateway apps``: connect learning apps to districts, list them, revoke their access."""
from __future__ import annotations

import datetime as dt
import json

import click
from flask import current_app
from flask.cli import with_appcontext

from gateway.errors import UsageError
from gateway.http.session import get_database
from gateway.oauth import service
from gateway.oauth.scopes import DEFAULT_SCOPES
from gateway.oneroster.vocabulary import SCOPE_PREFIX
from gateway.store.migrate import ensure_schema
from gateway.store.models import utcnow


@click.group("apps")
def apps_group() -> None:
    """Manage the apps that read district data through the OneRoster REST service."""


def _session_scope():
    database = get_database(current_app)
    ensure_schema(database)
    return database.session_scope()


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") + "Z" if value is not None else None


@apps_group.command("create")
@click.option("--district", "district", required=True, metavar="SOURCEDID",
              help="sourcedId of the district the app is connected to.")
@click.option("--name", required=True, help="Name of the app.")
@click.option("--scope", "scopes", multiple=True, metavar="URI",
              help="Scope URI to grant (repeatable). Default: " + ", ".join(DEFAULT_SCOPES))
@click.option("--json", "as_json", is_flag=True, help="Print the credentials as JSON.")
@with_appcontext
def create_command(district: str, name: str, scopes: tuple[str, ...], as_json: bool) -> None:
    """Connect an app to a district and print its client credentials (the secret only this once)."""
    try:
        with _session_scope() as session:
            created = service.register_app(session, name=name, district_sourced_id=district,
                                           scopes=scopes, now=utcnow())
    except UsageError as error:
        raise click.ClickException(str(error)) from error
    if as_json:
        click.echo(json.dumps({"app_id": created.app_id, "client_id": created.client_id,
                               "client_secret": created.client_secret}))
    else:
        click.echo(f"app_id:        {created.app_id}")
        click.echo(f"client_id:     {created.client_id}")
        click.echo(f"client_secret: {created.client_secret}")
    click.echo("Warning: the client secret is shown only this once and cannot be recovered; "
               "store it now.", err=True)


@apps_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@with_appcontext
def list_command(as_json: bool) -> None:
    """List every app's connection to a district, revoked ones included."""
    with _session_scope() as session:
        connections = service.list_app_connections(session)
    if as_json:
        click.echo(json.dumps([
            {"app_id": c.app_id, "name": c.name, "district": c.district, "client_id": c.client_id,
             "scopes": list(c.scopes), "created_at": _iso(c.created_at),
             "revoked_at": _iso(c.revoked_at)}
            for c in connections]))
        return
    if not connections:
        click.echo("no apps yet: add one with `gateway apps create`")
        return
    header = ("APP", "NAME", "DISTRICT", "CLIENT_ID", "SCOPES", "CREATED", "REVOKED")
    rows = [(str(c.app_id), c.name, c.district, c.client_id,
             # The common prefix only makes the table wider.
             ",".join(scope.removeprefix(SCOPE_PREFIX) for scope in c.scopes),
             c.created_at.strftime("%Y-%m-%d %H:%M"),
             c.revoked_at.strftime("%Y-%m-%d %H:%M") if c.revoked_at else "-")
            for c in connections]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


@apps_group.command("revoke")
@click.argument("app_or_client_id")
@with_appcontext
def revoke_command(app_or_client_id: str) -> None:
    """Revoke a client (by client_id) or all clients of an app (by app id), and their tokens."""
    try:
        with _session_scope() as session:
            revocation = service.revoke(session, app_or_client_id, now=utcnow())
    except UsageError as error:
        raise click.ClickException(str(error)) from error
    if not revocation.client_ids and not revocation.token_count:
        click.echo(f"{app_or_client_id} was already revoked: nothing changed")
        return
    click.echo(f"revoked client(s) {', '.join(revocation.client_ids)} "
               f"and {revocation.token_count} live token(s)")


def register(cli: click.Group) -> None:
    """Attach the ``apps`` group."""
    cli.add_command(apps_group)
