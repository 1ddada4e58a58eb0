"""``gateway admins``: the first staff account of a district's admin console (others are invited
from the console)."""
from __future__ import annotations

import os

import click
from flask.cli import with_appcontext

from gateway.admin.accounts import ROLES, create_admin
from gateway.cli.context import echo_json, json_option, store_session
from gateway.store.models import utcnow

PASSWORD_ENV = "GATEWAY_ADMIN_PASSWORD"


@click.group("admins")
def admins_group() -> None:
    """Manage admin console accounts."""


@admins_group.command("create")
@click.option("--district", required=True, metavar="SOURCEDID", help="The admin's district.")
@click.option("--email", required=True, help="The address the admin signs in with.")
@click.option("--role", required=True, type=click.Choice(list(ROLES)), help="What they may do.")
@click.option("--school", "schools", multiple=True, metavar="SOURCEDID",
              help="A school a tech lead leads (repeatable; tech leads only).")
@json_option
@with_appcontext
def create_command(district: str, email: str, role: str, schools: tuple[str, ...],
                   as_json: bool) -> None:
    """Create an admin account; the password comes from GATEWAY_ADMIN_PASSWORD or a prompt."""
    password = os.environ.get(PASSWORD_ENV) or click.prompt(
        "Password", hide_input=True, confirmation_prompt=True)
    with store_session(write=True) as session:
        admin = create_admin(session, district=district, email=email, role=role,
                             password=password, schools=list(schools), now=utcnow())
    if as_json:
        echo_json({"id": admin.id, "email": admin.email, "role": admin.role,
                   "district": admin.district_sourced_id, "schools": list(admin.schools)})
        return
    click.echo(f"admin {admin.email} ({admin.role_name}) created for {admin.district_name}: "
               "sign in at /admin")


def register(cli: click.Group) -> None:
    """Attach the ``admins`` group."""
    cli.add_command(admins_group)
