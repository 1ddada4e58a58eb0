"""``gateway db``: schema migrations."""
from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from gateway.database import get_database
from gateway.store.migrate import current_revision, upgrade_database


@click.group("db")
def db_group() -> None:
    """Manage the database schema."""


@db_group.command("upgrade")
@with_appcontext
def upgrade_command() -> None:
    """Apply pending schema migrations."""
    database = get_database(current_app)
    revision = upgrade_database(database)
    click.echo(f"database {database.engine.url.render_as_string(hide_password=True)} at revision {revision}")


@db_group.command("current")
@with_appcontext
def current_command() -> None:
    """Print the schema revision the database is at."""
    click.echo(current_revision(get_database(current_app)) or "empty")


def register(cli: click.Group) -> None:
    """Attach the ``db`` group."""
    cli.add_command(db_group)
