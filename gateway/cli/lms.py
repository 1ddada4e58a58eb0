"""``gateway lms``: the LMS platforms that launch the gateway (its LTI 1.3 tool role): register,
list and remove them, print what to paste into the LMS, map courses and people by hand and list
what no launch could match."""
from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from gateway.cli.context import echo_json, json_option, store_session
from gateway.database import get_database
from gateway.store.migrate import ensure_schema
from gateway.http.context import LTI_RUNTIME, lms_runtime, queue_grade_jobs
from gateway.lti.tool import grades, registry
from gateway.store.models import utcnow


@click.group("lms")
def lms_group() -> None:
    """Manage the LMS platforms (Canvas, Schoology, Moodle...) that launch the gateway."""


@lms_group.command("register")
@click.option("--district", required=True, metavar="SOURCEDID", help="The district the LMS serves.")
@click.option("--issuer", required=True, help="The LMS's issuer (iss of its id_tokens).")
@click.option("--client-id", required=True, help="The client_id the LMS gave the gateway.")
@click.option("--auth-url", required=True, help="The LMS's OIDC authorization URL.")
@click.option("--token-url", required=True, help="The LMS's OAuth 2.0 token URL (services).")
@click.option("--jwks-url", required=True, help="The LMS's public keys (JWKS URL).")
@click.option("--deployment-id", "deployment_ids", required=True, multiple=True,
              help="A deployment id the LMS launches with (repeatable).")
@click.option("--name", help="A name for the admin's lists (default: the issuer).")
@click.option("--match", "rules", multiple=True, metavar="FIELD=CLAIM",
              help="Match people without lis.person_sourcedid by a OneRoster FIELD (sourcedId, "
                   "email, username) equal to a launch CLAIM (email, custom.NAME); repeatable, "
                   "tried in order.")
@click.option("--class-claim", metavar="CLAIM",
              help="A claim (custom.NAME) carrying the OneRoster class sourcedId.")
@json_option
@with_appcontext
def register_command(district: str, issuer: str, client_id: str, auth_url: str, token_url: str,
                     jwks_url: str, deployment_ids: tuple[str, ...], name: str | None,
                     rules: tuple[str, ...], class_claim: str | None, as_json: bool) -> None:
    """Register an LMS that launches the gateway (or add deployment ids to one)."""
    with store_session(write=True) as session:
        platform = registry.register_platform(
            session, district=district, issuer=issuer, client_id=client_id, auth_url=auth_url,
            token_url=token_url, jwks_url=jwks_url, deployment_ids=deployment_ids, name=name,
            rules=[registry.MatchRule.parse(rule) for rule in rules], class_claim=class_claim,
            now=utcnow())
        shown = registry.platform_json(session, platform)
    if as_json:
        echo_json(shown)
        return
    click.echo(f"LMS {shown['id']} registered: {issuer} client {client_id} in {district} "
               f"(deployments: {', '.join(shown['deployment_ids'])})")


@lms_group.command("list")
@click.option("--district", metavar="SOURCEDID", help="Only this district's.")
@json_option
@with_appcontext
def list_command(district: str | None, as_json: bool) -> None:
    """List the registered LMS platforms."""
    with store_session() as session:
        shown = [registry.platform_json(session, p)
                 for p in registry.list_platforms(session, district)]
    if as_json:
        echo_json(shown)
        return
    if not shown:
        click.echo("no LMS yet: add one with `gateway lms register`")
    for p in shown:
        click.echo(f"{p['id']}  {p['district']}  {p['issuer']}  client {p['client_id']}  "
                   f"deployments {','.join(p['deployment_ids'])}  {p['status']}")


@lms_group.command("approve")
@click.argument("platform_id", type=int)
@click.option("--deployment-id", "deployment_ids", multiple=True,
              help="A deployment id to accept (when the LMS sent none; repeatable).")
@with_appcontext
def approve_command(platform_id: int, deployment_ids: tuple[str, ...]) -> None:
    """Approve an LMS that registered itself (LTI Dynamic Registration)."""
    with store_session(write=True) as session:
        platform = registry.approve_platform(session, platform_id, deployment_ids)
        issuer = platform.issuer
    click.echo(f"LMS {platform_id} ({issuer}) approved: its launches are accepted")


@lms_group.command("remove")
@click.argument("platform_id", type=int)
@with_appcontext
def remove_command(platform_id: int) -> None:
    """Remove an LMS: its launches are refused from now on."""
    with store_session(write=True) as session:
        registry.remove_platform(session, platform_id)
    click.echo(f"LMS {platform_id} removed")


@lms_group.command("config")
@json_option
@with_appcontext
def config_command(as_json: bool) -> None:
    """Print what to paste into the LMS to add the gateway as an LTI 1.3 tool."""
    shown = registry.lms_configuration(str(current_app.config["ISSUER"]).rstrip("/"))
    if as_json:
        echo_json(shown)
        return
    for key, value in shown.items():
        if isinstance(value, list):
            click.echo(f"{key}:")
            for item in value:
                click.echo(f"  - {item}")
        elif isinstance(value, dict):
            click.echo(f"{key}:")
            for name, text in value.items():
                click.echo(f"  {name}: {text}")
        else:
            click.echo(f"{key + ':':<24}{value}")


@lms_group.command("map-class")
@click.option("--platform", "platform_id", required=True, type=int, help="The LMS (its id).")
@click.option("--context", "context_id", required=True, help="The LMS's context (course) id.")
@click.option("--class", "class_sourced_id", required=True, help="The OneRoster class sourcedId.")
@with_appcontext
def map_class_command(platform_id: int, context_id: str, class_sourced_id: str) -> None:
    """Map an LMS course to a OneRoster class by hand."""
    with store_session(write=True) as session:
        registry.map_class(session, platform_id=platform_id, context_id=context_id,
                           class_sourced_id=class_sourced_id, now=utcnow())
    click.echo(f"LMS {platform_id} context {context_id} -> class {class_sourced_id}")


@lms_group.command("map-user")
@click.option("--platform", "platform_id", required=True, type=int, help="The LMS (its id).")
@click.option("--lms-user", "lms_user_id", required=True, help="The LMS's user id (sub).")
@click.option("--user", "user_sourced_id", required=True, help="The OneRoster user sourcedId.")
@with_appcontext
def map_user_command(platform_id: int, lms_user_id: str, user_sourced_id: str) -> None:
    """Map an LMS user to a OneRoster user by hand."""
    with store_session(write=True) as session:
        registry.map_user(session, platform_id=platform_id, lms_user_id=lms_user_id,
                          user_sourced_id=user_sourced_id, now=utcnow())
    click.echo(f"LMS {platform_id} user {lms_user_id} -> user {user_sourced_id}")


@lms_group.command("unmatched")
@click.option("--platform", "platform_id", type=int, help="Only this LMS's.")
@json_option
@with_appcontext
def unmatched_command(platform_id: int | None, as_json: bool) -> None:
    """List the LMS people and courses that launched and matched nothing in the SIS data."""
    with store_session() as session:
        shown = registry.unmatched(session, platform_id)
    if as_json:
        echo_json(shown)
        return
    if not shown:
        click.echo("nothing unmatched")
    for row in shown:
        click.echo(f"{row['kind']:<8}LMS {row['platform']}  {row['lms_id']}  {row['label']}  "
                   f"(last seen {row['last_seen']})")


@lms_group.command("grades")
@click.option("--failed", "failed_only", is_flag=True,
              help="Only scores given up on, or still retrying after an error.")
@json_option
@with_appcontext
def grades_command(failed_only: bool, as_json: bool) -> None:
    """List the scores forwarded (or to be forwarded) to LMS gradebooks."""
    with store_session() as session:
        shown = grades.list_forwards(session, failed_only=failed_only)
    if as_json:
        echo_json(shown)
        return
    if not shown:
        click.echo("no grades" + (" failed" if failed_only else " forwarded yet"))
    for row in shown:
        click.echo(f"{row['id']}  {row['status']:<8}LMS {row['platform']} link {row['lms_link']}  "
                   f"student {row['student']}  attempts {row['attempts']}"
                   + (f"  error: {row['last_error']}" if row["last_error"] else ""))


@lms_group.command("retry-grades")
@click.option("--id", "forward_ids", type=int, multiple=True,
              help="Put this given-up score back in the queue first (repeatable).")
@with_appcontext
def retry_grades_command(forward_ids: tuple[int, ...]) -> None:
    """Send the queued scores whose next attempt is due (without Redis, run it from cron every
    minute; with Redis the job queue retries them, and ``--id`` scores go back on it as jobs)."""
    runtime = lms_runtime(current_app)
    keyring = current_app.extensions[LTI_RUNTIME].keyring
    if forward_ids:
        with store_session(write=True) as session:
            for forward_id in forward_ids:
                grades.retry_forward(session, forward_id, utcnow())
        if current_app.config.get("REDIS_URL"):
            jobs = queue_grade_jobs(current_app, list(forward_ids))
            click.echo(f"{len(jobs)} queued as jobs: {', '.join(jobs)} (see `gateway jobs`)")
            return
    ensure_schema(get_database(current_app))
    sent, failed = grades.forward_due(
        get_database(current_app), runtime.http, keyring, runtime.tokens, utcnow,
        first_wait=current_app.config["LMS_GRADE_FIRST_WAIT_SECONDS"])
    click.echo(f"{sent} sent, {failed} failed (see `gateway lms grades --failed`)")


def register(cli: click.Group) -> None:
    """Attach the ``lms`` group."""
    cli.add_command(lms_group)
