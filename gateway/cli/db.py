"""``gateway db``: schema migrations."""
from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from gateway.cli.context import echo_json, json_option
from gateway.database import get_database
from gateway.store.migrate import current_revision, upgrade_database


@click.group("db")
def db_group() -> None:
    """Manage the database schema."""


@db_group.command("upgrade")
@json_option
@with_appcontext
def upgrade_command(as_json: bool) -> None:
    """Apply pending schema migrations."""
    database = get_database(current_app)
    revision = upgrade_database(database)
    if as_json:
        echo_json({"revision": revision})
        return
    click.echo(f"database {database.engine.url.render_as_string(hide_password=True)} at revision {revision}")


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
