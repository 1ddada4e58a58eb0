"""What every command shares: the app's store, opened the one way commands open it."""
from __future__ import annotations

import contextlib
import json
from typing import Iterator

import click
from flask import current_app
from sqlalchemy.orm import Session

from gateway.database import get_database
from gateway.errors import UsageError
from gateway.store.migrate import ensure_schema


json_option = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
"""``--json``: every command that prints a result can print it as JSON instead."""


def echo_json(value: object) -> None:
    """Print ``value`` as one line of JSON."""
    click.echo(json.dumps(value))


@contextlib.contextmanager
def store_session(write: bool = False) -> Iterator[Session]:
    """The command's one transaction on the app's store (its schema brought up to date first),
    committed if the block succeeds; a :class:`~gateway.errors.UsageError` raised inside becomes
    the command's error message (exit status 1).

    ``write``: the command changes the store; on SQLite it waits for a running import (see
    :meth:`gateway.store.Database.session_scope`).
    """
    database = get_database(current_app)
    ensure_schema(database)
    try:
        with database.session_scope(write=write) as session:
            yield session
    except UsageError as error:
        raise click.ClickException(str(error)) from error
