"""``gateway tools``: register LTI tools for apps, list and approve them, place them in classes,
and invite tools to register themselves (LTI Dynamic Registration)."""
from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlencode

import click
from flask import current_app
from flask.cli import with_appcontext

from gateway.cli.context import echo_json, json_option, store_session
from gateway.errors import UsageError
from gateway.lti.platform import dynamic, icons, registration
from gateway.lti.platform.settings import LtiSettings
from gateway.lti.vocabulary import SERVICE_SCOPES
from gateway.store.lti import FOR_EVERYONE, FOR_STAFF
from gateway.store.models import utcnow


@click.group("tools")
def tools_group() -> None:
    """Manage the LTI 1.3 tools apps launch into from the portal."""


def _custom(pairs: tuple[str, ...]) -> dict[str, str]:
    custom = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="--custom")
        custom[name] = value
    return custom


def _platform_details(settings: LtiSettings) -> dict[str, str]:
    """What a tool developer configures on their side, besides client_id and deployment_id."""
    return {"issuer": settings.issuer, "authorization_endpoint": settings.authorization_endpoint,
            "token_endpoint": settings.token_endpoint, "jwks_uri": settings.jwks_uri}


@tools_group.command("register")
@click.option("--app", "app", required=True, metavar="APP_ID", help="The app the tool belongs to.")
@click.option("--district", metavar="SOURCEDID", help="Deploy in this district (default: the app's only one).")
@click.option("--name", help="Name shown on the portal (default: the app's name).")
@click.option("--login-url", required=True, help="The tool's OIDC login initiation URL.")
@click.option("--redirect-uri", "redirect_uris", required=True, multiple=True,
              help="A redirect URI the tool may receive launches at (repeatable).")
@click.option("--target-link-uri", required=True, help="Where resource link launches go.")
@click.option("--jwks-url", help="The tool's JWKS URL.")
@click.option("--public-key", "public_key", type=click.Path(dir_okay=False, exists=True),
              help="The tool's public key instead of a JWKS URL: PEM, JWK or JWK Set file.")
@click.option("--deep-linking-uri", help="Where deep linking requests go (enables deep linking).")
@click.option("--custom", "custom", multiple=True, metavar="NAME=VALUE",
              help="Custom parameter sent with every launch (repeatable).")
@click.option("--scope", "scopes", multiple=True, metavar="URI",
              help="LTI service scope the tool may use (repeatable; default: all of "
                   + ", ".join(SERVICE_SCOPES) + ").")
@click.option("--no-portal", is_flag=True, help="Do not list the tool on the portal.")
@click.option("--json", "as_json", is_flag=True, help="Print the registration as JSON.")
@with_appcontext
def register_command(app: str, district: str | None, name: str | None, login_url: str,
                     redirect_uris: tuple[str, ...], target_link_uri: str, jwks_url: str | None,
                     public_key: str | None, deep_linking_uri: str | None, custom: tuple[str, ...],
                     scopes: tuple[str, ...], no_portal: bool, as_json: bool) -> None:
    """Register an LTI 1.3 tool of APP and print its client_id and deployment_id."""
    settings = LtiSettings.from_config(current_app.config)
    try:
        public_jwks = (registration.public_jwks_from(Path(public_key).read_text())
                       if public_key else None)
        with store_session(write=True) as session:
            registered = registration.register_tool(
                session, app=app, district=district, name=name, login_url=login_url,
                redirect_uris=redirect_uris, target_link_uri=target_link_uri, jwks_url=jwks_url,
                public_jwks=public_jwks, deep_linking_uri=deep_linking_uri,
                custom=_custom(custom), scopes=scopes or None, on_portal=not no_portal,
                now=utcnow())
    except UsageError as error:
        raise click.ClickException(str(error)) from error
    details = {"client_id": registered.client_id, "deployment_id": registered.deployment_id,
               "district": registered.district, **_platform_details(settings)}
    if public_jwks is not None:
        details["kid"] = ", ".join(key["kid"] for key in public_jwks["keys"])
    if as_json:
        click.echo(json.dumps(details))
        return
    for key, value in details.items():
        click.echo(f"{key + ':':<24}{value}")


@tools_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@with_appcontext
def list_command(as_json: bool) -> None:
    """List every tool with its app, status and deployments."""
    with store_session() as session:
        tools = registration.list_tools(session)
    if as_json:
        click.echo(json.dumps([{
            "client_id": t.client_id, "name": t.name, "app_id": t.app_id, "app": t.app_name,
            "status": t.status, "on_portal": t.on_portal, "login_url": t.login_url,
            "redirect_uris": list(t.redirect_uris), "target_link_uri": t.target_link_uri,
            "deep_linking_uri": t.deep_linking_uri, "jwks_url": t.jwks_url,
            "scopes": list(t.scopes),
            "deployments": [{"deployment_id": d.deployment_id, "district": d.district}
                            for d in t.deployments]} for t in tools]))
        return
    if not tools:
        click.echo("no tools yet: add one with `gateway tools register`")
        return
    header = ("CLIENT_ID", "NAME", "APP", "STATUS", "DEPLOYMENTS")
    rows = [(t.client_id, t.name, str(t.app_id), t.status,
             ",".join(f"{d.deployment_id}@{d.district}" for d in t.deployments)) for t in tools]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


@tools_group.command("approve")
@click.argument("client_id")
@json_option
@with_appcontext
def approve_command(client_id: str, as_json: bool) -> None:
    """Approve a tool that registered itself, so it can launch and use services."""
    with store_session(write=True) as session:
        tool = registration.approve_tool(session, client_id, utcnow())
        name = tool.name
    if as_json:
        echo_json({"client_id": client_id, "name": name, "status": "approved"})
        return
    click.echo(f"tool {client_id} ({name}) approved")


@tools_group.command("deploy")
@click.argument("client_id")
@click.option("--district", required=True, metavar="SOURCEDID",
              help="Another district the tool's app is connected to.")
@json_option
@with_appcontext
def deploy_command(client_id: str, district: str, as_json: bool) -> None:
    """Deploy tool CLIENT_ID in another district and print the deployment_id."""
    with store_session(write=True) as session:
        deployment_id = registration.deploy_tool(session, client_id, district, utcnow()).deployment_id
    if as_json:
        echo_json({"client_id": client_id, "district": district, "deployment_id": deployment_id})
        return
    click.echo(f"deployment_id: {deployment_id}")


@tools_group.command("place")
@click.argument("client_id")
@click.option("--class", "class_id", metavar="SOURCEDID", help="In this class: its members see it.")
@click.option("--school", "school_id", metavar="SOURCEDID",
              help="At this school: its people (by their roles or primary org) see it.")
@click.option("--district-wide", is_flag=True, help="For everyone in the district.")
@click.option("--staff", is_flag=True,
              help="With --school or --district-wide: for staff only (teachers, administrators...).")
@click.option("--district", metavar="SOURCEDID", help="The tool's district (if it has several).")
@click.option("--title", help="Title on the portal (default: the tool's name).")
@click.option("--text", help="A description.")
@click.option("--custom", "custom", multiple=True, metavar="NAME=VALUE",
              help="Custom parameter of this link (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@with_appcontext
def place_command(client_id: str, class_id: str | None, school_id: str | None,
                  district_wide: bool, staff: bool, district: str | None, title: str | None,
                  text: str | None, custom: tuple[str, ...], as_json: bool) -> None:
    """Place tool CLIENT_ID in a class, at a school or district-wide: a tile on the launchpads
    of the people there whom the app's sharing policy lets it see."""
    with store_session(write=True) as session:
        link = registration.place_tool(session, client_id=client_id, class_sourced_id=class_id,
                                       school_sourced_id=school_id, district_wide=district_wide,
                                       audience=FOR_STAFF if staff else FOR_EVERYONE,
                                       district=district, title=title, text=text,
                                       custom=_custom(custom), now=utcnow())
        link_id, link_title, audience = link.link_id, link.title, link.audience
    if as_json:
        click.echo(json.dumps({"resource_link_id": link_id, "title": link_title, "class": class_id,
                               "school": school_id, "district_wide": district_wide,
                               "audience": audience}))
    elif class_id:
        click.echo(f"placed {link_title!r} in class {class_id}: resource link {link_id}")
    else:
        where = f"at school {school_id}" if school_id else "district-wide"
        click.echo(f"placed {link_title!r} {where} for {audience}: resource link {link_id}")


@tools_group.command("icon")
@click.argument("client_id")
@click.option("--url", help="An https URL of the icon, loaded by the person's browser.")
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False),
              help="A PNG, JPEG, GIF or WebP image kept in the store (works without internet).")
@click.option("--clear", is_flag=True, help="Remove the icon: the tile shows the tool's initial.")
@with_appcontext
def icon_command(client_id: str, url: str | None, path: str | None, clear: bool) -> None:
    """Set the icon on tool CLIENT_ID's launchpad tiles."""
    if sum(bool(x) for x in (url, path, clear)) != 1:
        raise click.UsageError("give one of --url, --file or --clear")
    image = Path(path).read_bytes() if path else None
    with store_session(write=True) as session:
        icons.set_icon_of(session, client_id, url=url, image=image)
    click.echo(f"icon of {client_id}: " + (url or (f"image {path}" if path else "cleared")))


@tools_group.command("invite")
@click.option("--app", "app", required=True, metavar="APP_ID", help="The app the tool will belong to.")
@click.option("--district", metavar="SOURCEDID", help="Deploy in this district (default: the app's only one).")
@click.option("--url", "tool_url", help="The tool's registration URL, to print the link to open.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@with_appcontext
def invite_command(app: str, district: str | None, tool_url: str | None, as_json: bool) -> None:
    """Make a one-time registration token for LTI Dynamic Registration."""
    settings = LtiSettings.from_config(current_app.config)
    with store_session(write=True) as session:
        token, expires = dynamic.create_registration_token(
            session, app=app, district=district, settings=settings, now=utcnow())
    query = urlencode({"openid_configuration": settings.openid_configuration_url,
                       "registration_token": token})
    details = {"openid_configuration": settings.openid_configuration_url,
               "registration_token": token,
               "expires_at": expires.isoformat(timespec="seconds") + "Z"}
    if tool_url:
        details["open"] = tool_url + ("&" if "?" in tool_url else "?") + query
    if as_json:
        click.echo(json.dumps(details))
        return
    for key, value in details.items():
        click.echo(f"{key + ':':<22}{value}")
    click.echo("The tool's registration stays pending until `gateway tools approve CLIENT_ID`.",
               err=True)


def register(cli: click.Group) -> None:
    """Attach the ``tools`` group."""
    cli.add_command(tools_group)
