"""``gateway users``: portal accounts of the people imported from the SIS."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from gateway.cli.context import echo_json, json_option, store_session
from gateway.lti.platform.portal import revoke_sessions, set_password


@click.group("users")
def users_group() -> None:
    """Manage people's portal sign-in."""


@users_group.command("set-password")
@click.argument("username")
@click.option("--password", help="The new password (prompted for, hidden, when not given).")
@click.option("--district", metavar="SOURCEDID", help="The user's district, if the username is ambiguous.")
@json_option
@with_appcontext
def set_password_command(username: str, password: str | None, district: str | None,
                         as_json: bool) -> None:
    """Set the portal password of USERNAME (stored only as a salted hash); their portal sessions
    end."""
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    with store_session(write=True) as session:
        user = set_password(session, username, password, district)
    if as_json:
        echo_json({"username": user.username, "district": user.district_name,
                   "password_set": True})
        return
    click.echo(f"password set for {user.username} ({user.display_name}, {user.district_name})")


@users_group.command("revoke-sessions")
@click.argument("username")
@click.option("--district", metavar="SOURCEDID", help="The user's district, if the username is ambiguous.")
@json_option
@with_appcontext
def revoke_sessions_command(username: str, district: str | None, as_json: bool) -> None:
    """End every portal session of USERNAME, on every worker (a stolen cookie stops working)."""
    with store_session(write=True) as session:
        user, count = revoke_sessions(session, username, district)
    if as_json:
        echo_json({"username": user.username, "district": user.district_name,
                   "sessions_ended": count})
        return
    click.echo(f"ended {count} portal session(s) of {user.username} ({user.display_name}, "
               f"{user.district_name})")


def register(cli: click.Group) -> None:
    """Attach the ``users`` group."""
    cli.add_command(users_group)
