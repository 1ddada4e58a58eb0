"""``gateway db``: schema migrations."""
from __future__ import annotations

import io
import sys

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from gateway.cli.context import echo_json, json_option
from gateway.database import get_database
from gateway.oneroster.rendering import render_district, unrendered
from gateway.store import Database
from gateway.store.migrate import current_revision, upgrade_database
from gateway.store.models import District


@click.group("db")
def db_group() -> None:
    """Manage the database schema."""


@db_group.command("upgrade")
@json_option
@with_appcontext
def upgrade_command(as_json: bool) -> None:
    """Apply pending schema migrations, then render the records that have no REST rendering
    yet (a store upgraded past migration 0019 would otherwise serve them the slow way until its
    next import), one district at a time, with a progress bar on a terminal."""
    database = get_database(current_app)
    revision = upgrade_database(database)
    rendered = render_unrendered(database, quiet=as_json)
    if as_json:
        echo_json({"revision": revision, "rendered": rendered})
        return
    click.echo(f"database {database.engine.url.render_as_string(hide_password=True)} at revision {revision}")
    if rendered:
        click.echo(f"rendered {rendered:,} records for the REST service")


def render_unrendered(database: Database, *, quiet: bool) -> int:
    """Render every district's unrendered records, each district in one transaction that holds
    the store's write lock (an import would change what is being rendered); how many."""
    with database.engine.connect() as conn:
        districts = conn.execute(select(District.id, District.sourced_id).order_by(
            District.id)).all()
    done = 0
    for district_id, sourced_id in districts:
        with database.writer_engine.begin() as conn:
            wanted = unrendered(conn, district_id)
            if not wanted:
                continue
            show = not quiet and sys.stderr.isatty()
            with click.progressbar(length=wanted, label=f"rendering {sourced_id}",
                                   file=sys.stderr if show else io.StringIO()) as bar:
                done += render_district(conn, district_id, progress=bar.update)
    return done


@db_group.command("current")
@json_option
@with_appcontext
def current_command(as_json: bool) -> None:
    """Print the schema revision the database is at."""
    revision = current_revision(get_database(current_app))
    if as_json:
        echo_json({"revision": revision})
        return
    click.echo(revision or "empty")


def register(cli: click.Group) -> None:
    """Attach the ``db`` group."""
    cli.add_command(db_group)
