"""``gateway apps``: connect learning apps to districts, list them, revoke their access, and set,
preview and show the sharing policy each district gives them."""
from __future__ import annotations

import datetime as dt
import json

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from gateway.cli.context import echo_json, json_option, store_session
from gateway.errors import UsageError
from gateway.database import get_database
from gateway.oauth import service
from gateway.oauth.scopes import DEFAULT_SCOPES
from gateway.oneroster.vocabulary import SCOPE_PREFIX
from gateway.sharing import service as sharing
from gateway.sharing.policy import load_policy_file, parse_policy
from gateway.sharing.snapshots import settle_snapshots
from gateway.store.models import District, utcnow


@click.group("apps")
def apps_group() -> None:
    """Manage the apps that read district data through the OneRoster REST service."""


ALLOW_UNKNOWN_HELP = ("Accept a policy that names schools, grades or classes the district does not "
                      "have (they share nothing), with a warning.")


def _check_names(session, policy, district_id: int, district: str,
                 allow_unknown: bool) -> list[str]:
    """Refuse a policy naming what the district does not have, unless allowed; the warnings."""
    unknown = sharing.unknown_policy_names(session, policy, district_id)
    if not unknown:
        return []
    described = sharing.describe_unknown_names(unknown, district)
    if not allow_unknown:
        raise UsageError(f"{described}\nFix the policy, or give --allow-unknown to set it anyway.")
    return described.splitlines()


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") + "Z" if value is not None else None


@apps_group.command("create")
@click.option("--district", "district", required=True, metavar="SOURCEDID",
              help="sourcedId of the district the app is connected to.")
@click.option("--name", required=True, help="Name of the app.")
@click.option("--scope", "scopes", multiple=True, metavar="URI",
              help="Scope URI to grant (repeatable). Default: " + ", ".join(DEFAULT_SCOPES))
@click.option("--policy", "policy_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="Sharing policy (JSON) for the district. Without one the app sees nothing.")
@click.option("--allow-unknown", is_flag=True, help=ALLOW_UNKNOWN_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the credentials as JSON.")
@with_appcontext
def create_command(district: str, name: str, scopes: tuple[str, ...], policy_file: str | None,
                   allow_unknown: bool, as_json: bool) -> None:
    """Connect an app to a district and print its client credentials (the secret only this once)."""
    try:
        document = None
        if policy_file is not None:
            document = load_policy_file(policy_file)
            policy = parse_policy(document)
            if policy.scopes is not None:
                if scopes and set(scopes) != set(policy.scopes):
                    raise UsageError("--scope and the policy's scopes disagree: give one of them")
                scopes = policy.scopes
        with store_session(write=True) as session:
            now = utcnow()
            created = service.register_app(session, name=name, district_sourced_id=district,
                                           scopes=scopes, now=now)
            warnings = []
            if document is not None:
                district_id = sharing.app_district_id(session, created.app_id, district)
                warnings = _check_names(session, policy, district_id, district, allow_unknown)
                sharing.set_policy(session, app_id=created.app_id, district_id=district_id,
                                   document=document, now=now)
        if document is not None:
            settle_snapshots(get_database(current_app).engine)
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
    for warning in warnings:
        click.echo(f"Warning: {warning}", err=True)
    if document is None:
        click.echo(f"Note: no sharing policy is set, so app {created.app_id} sees nothing of "
                   f"district {district} until you set one: gateway apps policy "
                   f"{created.app_id} POLICY.json", err=True)


@apps_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@with_appcontext
def list_command(as_json: bool) -> None:
    """List every app's connection to a district, revoked ones included."""
    with store_session() as session:
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
@json_option
@with_appcontext
def revoke_command(app_or_client_id: str, as_json: bool) -> None:
    """Revoke a client (by client_id) or all clients of an app (by app id), and their tokens."""
    with store_session(write=True) as session:
        revocation = service.revoke(session, app_or_client_id, now=utcnow())
    if as_json:
        echo_json({"revoked_client_ids": list(revocation.client_ids),
                   "revoked_tokens": revocation.token_count})
        return
    if not revocation.client_ids and not revocation.token_count:
        click.echo(f"{app_or_client_id} was already revoked: nothing changed")
        return
    click.echo(f"revoked client(s) {', '.join(revocation.client_ids)} "
               f"and {revocation.token_count} live token(s)")


def _echo_preview(preview: sharing.PolicyPreview) -> None:
    for label, change in (("students", preview.students), ("teachers", preview.teachers),
                          ("classes", preview.classes)):
        click.echo(f"{label + ':':<10} {change.before} -> {change.after} "
                   f"(+{change.gained} gained, -{change.lost} lost)")
    if not preview.fields:
        click.echo("fields:   no change")
    for kind, title in (("starts", "start leaving"), ("stops", "stop leaving"),
                        ("changes", "change treatment")):
        changes = [f for f in preview.fields if f.change == kind]
        if not changes:
            continue
        click.echo(f"fields that would {title}:")
        for f in changes:
            detail = f.after if kind == "starts" else (
                f"was {f.before}" if kind == "stops" else f"{f.before} -> {f.after}")
            click.echo(f"  {f.entity}.{f.field} ({detail})")
    old_scopes, new_scopes = preview.scopes
    if new_scopes is not None and old_scopes != new_scopes:
        click.echo("scopes:   " + ", ".join(s.removeprefix(SCOPE_PREFIX) for s in new_scopes))
    old_window, new_window = preview.contract
    if old_window != new_window:
        click.echo("contract: " + (f"{new_window[0]} to {new_window[1]}" if new_window else "none"))


def _preview_json(preview: sharing.PolicyPreview) -> dict:
    counts = {label: {"before": c.before, "after": c.after, "gained": c.gained, "lost": c.lost}
              for label, c in (("students", preview.students), ("teachers", preview.teachers),
                               ("classes", preview.classes))}
    return {**counts, "fields": [{"entity": f.entity, "field": f.field, "before": f.before,
                                  "after": f.after, "change": f.change} for f in preview.fields]}


@apps_group.command("preview")
@click.argument("app_id", metavar="APP_OR_CLIENT_ID")
@click.argument("policy_file", type=click.Path(dir_okay=False))
@click.option("--district", metavar="SOURCEDID", help="The district (default: the app's only one).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@with_appcontext
def preview_command(app_id: str, policy_file: str, district: str | None, as_json: bool) -> None:
    """Show what replacing APP_OR_CLIENT_ID's policy with POLICY_FILE would change; changes nothing."""
    try:
        document = load_policy_file(policy_file)
        with store_session() as session:
            app = sharing.find_app(session, app_id)
            district_id = sharing.app_district_id(session, app.id, district)
            preview = sharing.preview_policy(session, app_id=app.id, district_id=district_id,
                                             document=document)
    except UsageError as error:
        raise click.ClickException(str(error)) from error
    if as_json:
        click.echo(json.dumps(_preview_json(preview)))
    else:
        _echo_preview(preview)


@apps_group.command("policy")
@click.argument("app_id", metavar="APP_OR_CLIENT_ID")
@click.argument("policy_file", type=click.Path(dir_okay=False))
@click.option("--district", metavar="SOURCEDID", help="The district (default: the app's only one).")
@click.option("--allow-unknown", is_flag=True, help=ALLOW_UNKNOWN_HELP)
@json_option
@with_appcontext
def policy_command(app_id: str, policy_file: str, district: str | None,
                   allow_unknown: bool, as_json: bool) -> None:
    """Replace APP_OR_CLIENT_ID's sharing policy for a district with POLICY_FILE, and say what changed."""
    try:
        document = load_policy_file(policy_file)
        with store_session(write=True) as session:
            app = sharing.find_app(session, app_id)
            district_id = sharing.app_district_id(session, app.id, district)
            label = sharing.district_sourced_id(session, district_id)
            warnings = _check_names(session, parse_policy(document), district_id, label,
                                    allow_unknown)
            if not sharing.app_connected(session, app.id, district_id):
                warnings.append(f"app {app.id} is revoked in district {label}: the policy is "
                                "stored, but the app cannot get tokens until it is connected "
                                "again")
            preview = sharing.preview_policy(session, app_id=app.id, district_id=district_id,
                                             document=document)
            update = sharing.set_policy(session, app_id=app.id, district_id=district_id,
                                        document=document, now=utcnow())
        settle_snapshots(get_database(current_app).engine)
        # Committed: what entered or left the app's scope goes to its webhooks.
        from gateway.events.jobs import start_deliveries
        start_deliveries(get_database(current_app), current_app.config, district_id)
    except UsageError as error:
        raise click.ClickException(str(error)) from error
    for warning in warnings:
        click.echo(f"Warning: {warning}", err=True)
    if as_json:
        echo_json({"app_id": app.id, "district": label, "revision": update.revision,
                   "revoked_tokens": update.revoked_tokens, "preview": _preview_json(preview)})
        return
    click.echo(f"policy of app {app.id} for district {label} set (revision {update.revision})")
    _echo_preview(preview)
    if update.revoked_tokens:
        click.echo(f"revoked {update.revoked_tokens} live token(s) holding scopes no longer granted")


@apps_group.command("show")
@click.argument("app_id", metavar="APP_OR_CLIENT_ID")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@with_appcontext
def show_command(app_id: str, as_json: bool) -> None:
    """Show an app: its clients, and per district its policy and what it can see."""
    with store_session() as session:
        shown = sharing.describe_app(session, app_id, utcnow().date())
    if as_json:
        click.echo(json.dumps({
            "app_id": shown.app_id, "name": shown.name, "created_at": _iso(shown.created_at),
            "districts": [{
                "district": d.district, "policy": d.policy, "revision": d.revision,
                "policy_updated_at": _iso(d.updated_at), "contract": d.contract,
                "visible": d.visible,
                "clients": [{"client_id": c.client_id, "scopes": list(c.scopes),
                             "created_at": _iso(c.created_at), "revoked_at": _iso(c.revoked_at)}
                            for c in d.clients]} for d in shown.districts]}))
        return
    click.echo(f"app {shown.app_id}: {shown.name} (created {_iso(shown.created_at)})")
    for d in shown.districts:
        click.echo(f"district {d.district}:")
        for c in d.clients:
            state = f"revoked {_iso(c.revoked_at)}" if c.revoked_at else "active"
            click.echo(f"  client {c.client_id} ({state}): "
                       + ", ".join(s.removeprefix(SCOPE_PREFIX) for s in c.scopes))
        click.echo(f"  contract: {d.contract}")
        click.echo(f"  visible:  {d.visible['students']} students, {d.visible['teachers']} "
                   f"teachers, {d.visible['classes']} classes")
        if d.policy is None:
            click.echo("  policy:   none (set one with `gateway apps policy`)")
        else:
            click.echo(f"  policy (revision {d.revision}, {_iso(d.updated_at)}):")
            for line in json.dumps(d.policy, indent=2).splitlines():
                click.echo("    " + line)


@apps_group.command("rebuild-scopes")
@click.option("--district", required=True, metavar="SOURCEDID",
              help="The district whose apps' sharing scopes to rebuild.")
@click.option("--no-wait", is_flag=True, help="With a job queue (GATEWAY_REDIS_URL): queue the "
              "rebuild and return at once (`gateway jobs` shows it).")
@json_option
@with_appcontext
def rebuild_scopes_command(district: str, no_wait: bool, as_json: bool) -> None:
    """Rebuild the sharing scopes of every app of a district from its data and policies, in one
    transaction (an import does this itself; this is for after a repair of the store). A job on
    the queue when GATEWAY_REDIS_URL is set, else run here."""
    from gateway.cli.jobs import queue_job, queue_redis, waited_job
    from gateway.jobs import JobContext, run_job

    with store_session() as session:
        known = session.execute(select(District.id).where(District.sourced_id == district)).scalar()
        if known is None:
            raise UsageError(f"no district {district!r} in the store")
    redis = queue_redis()
    if redis is not None:
        job_id = queue_job(redis, "snapshots", {"district": district})
        result = None if no_wait else waited_job(redis, job_id)
    else:
        context = JobContext(get_database(current_app), current_app.config,
                             current_app.instance_path)
        job_id, result = None, run_job("snapshots", {"district": district}, context)
    if as_json:
        echo_json({"job": job_id, **(result or {})})
    elif result is None:
        click.echo(f"queued as job {job_id} (`gateway jobs` shows how it goes)")
    else:
        click.echo(f"rebuilt {result['snapshots_refreshed']} sharing scope(s) of {district}")


def register(cli: click.Group) -> None:
    """Attach the ``apps`` group."""
    cli.add_command(apps_group)
