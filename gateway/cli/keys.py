"""``gateway keys``: the LTI platform's signing keys."""
from __future__ import annotations

import json

import click
from flask import current_app
from flask.cli import with_appcontext

from gateway.cli.context import echo_json, json_option, store_session
from sqlalchemy import select

from gateway.lti.keys import derive_encryption_key, rotate_keys
from gateway.lti.platform.settings import LtiSettings
from gateway.store.lti import PlatformKey
from gateway.store.models import utcnow


@click.group("keys")
def keys_group() -> None:
    """Manage the keys the LTI platform signs launches with."""


@keys_group.command("rotate")
@json_option
@with_appcontext
def rotate_command(as_json: bool) -> None:
    """Start signing with a new key; the old one stays published until its tokens expire."""
    settings = LtiSettings.from_config(current_app.config)
    with store_session(write=True) as session:
        rotation = rotate_keys(session, derive_encryption_key(current_app.config["SECRET_KEY"]),
                               utcnow(), settings.key_window)
    if as_json:
        echo_json({"kid": rotation.kid, "retired": rotation.retired,
                   "dropped": list(rotation.dropped)})
        return
    click.echo(f"signing key: {rotation.kid}")
    if rotation.retired:
        seconds = int(settings.key_window.total_seconds())
        click.echo(f"retired:     {rotation.retired} (published {seconds} s more, until every "
                   "token it signed has expired)")
    for kid in rotation.dropped:
        click.echo(f"dropped:     {kid}")


@keys_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@with_appcontext
def list_command(as_json: bool) -> None:
    """List the platform's keys, newest first."""
    settings = LtiSettings.from_config(current_app.config)
    now = utcnow()
    with store_session() as session:
        rows = [(k.kid, k.created_at, k.retired_at) for k in session.execute(
            select(PlatformKey).order_by(PlatformKey.created_at.desc())).scalars()]
    entries = []
    for kid, created, retired in rows:
        state = ("signing" if retired is None else
                 "published" if retired > now - settings.key_window else "expired")
        entries.append({"kid": kid, "created_at": created.isoformat(timespec="seconds") + "Z",
                        "retired_at": retired.isoformat(timespec="seconds") + "Z" if retired else None,
                        "state": state})
    if as_json:
        click.echo(json.dumps(entries))
        return
    if not entries:
        click.echo("no keys yet: one is made on first use, or run `gateway keys rotate`")
    for entry in entries:
        click.echo(f"{entry['kid']}  {entry['state']:<9}  created {entry['created_at']}"
                   + (f"  retired {entry['retired_at']}" if entry["retired_at"] else ""))


def register(cli: click.Group) -> None:
    """Attach the ``keys`` group."""
    cli.add_command(keys_group)
