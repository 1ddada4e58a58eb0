"""``gateway quickstart``: the one command that shows the gateway working on a fresh machine.

It sets up the embedded SQLite store (or whatever GATEWAY_DATABASE_URL names), loads a demo
district the first time, creates demo app credentials, prints where to look and serves.
"""
from __future__ import annotations

import json
import shlex
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.cli.serve import run_server
from gateway.demo import generate_demo_bundle
from gateway.database import get_database
from gateway.oauth.service import AppCredentials, register_app, rotate_secret
from gateway.oneroster.csv.importer import ImportOptions, import_bundle, record_import_run
from gateway.sharing.policy import share_everything_document
from gateway.sharing.service import app_district_id, set_policy
from gateway.store.migrate import ensure_schema
from gateway.store.apps import App, AppClient
from gateway.store.models import District, utcnow

DEMO_STUDENTS = 1000
DEMO_SCHOOLS = 6
DEMO_APP_NAME = "Demo app (quickstart)"


def load_demo_district(app, students: int = DEMO_STUDENTS) -> str:
    """Import the demo district unless a district is already there; return its sourcedId."""
    database = get_database(app)
    with database.session_scope() as session:
        existing = session.execute(select(District.sourced_id).order_by(District.id)).scalars().first()
    if existing is not None:
        click.echo(f"district {existing} already loaded; skipping the demo import")
        return existing
    bundle_dir = Path(app.instance_path) / "demo-bundle"
    click.echo(f"writing a demo district ({DEMO_SCHOOLS} schools, {students:,} students) to {bundle_dir}")
    generate_demo_bundle(bundle_dir, schools=DEMO_SCHOOLS, students=students, seed=1)
    started = utcnow()
    with database.session_scope() as session:
        report = import_bundle(session, bundle_dir, ImportOptions())
        if report.outcome != "applied":
            raise click.ClickException("the demo bundle was rejected: "
                                       + "; ".join(str(p) for p in report.problems[:3]))
        record_import_run(session, report, started)
    added = sum(c.added for c in report.files.values())
    click.echo(f"imported {added:,} records for district {report.district} ({report.district_name})")
    return report.district


def demo_credentials(session: Session, district: str) -> tuple[AppCredentials, bool]:
    """Credentials of the demo app of ``district``: its client with a new secret when the app
    exists (a second quickstart must not connect another whole-district app), else a new app
    sharing the whole district. Also whether the app was created now."""
    client = session.execute(
        select(AppClient).join(App, App.id == AppClient.app_id)
        .join(District, District.id == AppClient.district_id)
        .where(App.name == DEMO_APP_NAME, District.sourced_id == district,
               AppClient.revoked_at.is_(None))
        .order_by(AppClient.id)).scalars().first()
    if client is not None:
        return rotate_secret(session, client), False
    credentials = register_app(session, name=DEMO_APP_NAME, district_sourced_id=district,
                               scopes=None, now=utcnow())
    # A new app sees nothing until its district sets a policy; the demo app shares it all.
    set_policy(session, app_id=credentials.app_id,
               district_id=app_district_id(session, credentials.app_id, district),
               document=share_everything_document(), now=utcnow())
    return credentials, True


@click.command("demo-credentials")
@click.option("--shell", "as_shell", is_flag=True,
              help="Print `export CLIENT_ID=... CLIENT_SECRET=...` lines, for eval.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@with_appcontext
def demo_credentials_command(as_shell: bool, as_json: bool) -> None:
    """A new client secret for the quickstart's demo app (created if missing), printed once."""
    database = get_database(current_app)
    ensure_schema(database)
    with database.session_scope(write=True) as session:
        district = session.execute(select(District.sourced_id).order_by(District.id)).scalars().first()
        if district is None:
            raise click.ClickException("no district is loaded yet: run `gateway quickstart` first")
        credentials, _ = demo_credentials(session, district)
    if as_json:
        click.echo(json.dumps({"app_id": credentials.app_id, "client_id": credentials.client_id,
                               "client_secret": credentials.client_secret}))
    elif as_shell:
        click.echo(f"export CLIENT_ID={shlex.quote(credentials.client_id)}")
        click.echo(f"export CLIENT_SECRET={shlex.quote(credentials.client_secret)}")
    else:
        click.echo(f"client_id={credentials.client_id}")
        click.echo(f"client_secret={credentials.client_secret}   (shown once)")


@click.command("quickstart")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--students", default=DEMO_STUDENTS, show_default=True, type=click.IntRange(1),
              help="Size of the demo district loaded on the first run.")
@click.option("--no-serve", is_flag=True, help="Set everything up, print it, and exit.")
@with_appcontext
def quickstart_command(host: str, port: int, students: int, no_serve: bool) -> None:
    """Set up the store, load a demo district, create demo credentials and serve on localhost."""
    app = current_app._get_current_object()
    database = get_database(app)
    ensure_schema(database)
    district = load_demo_district(app, students)
    with database.session_scope(write=True) as session:
        credentials, created = demo_credentials(session, district)
    if not created:
        click.echo(f"demo app {credentials.app_id} already exists: it gets a new client secret "
                   "(the old one no longer works)")
    base = f"http://{host}:{port}"
    click.echo(f"""
The gateway is ready.
  home page          {base}/
  OneRoster 1.2      {base}/ims/oneroster/rostering/v1p2
  demo credentials   client_id={credentials.client_id}
                     client_secret={credentials.client_secret}   (shown once)

Get a token and list the first users:
  TOKEN=$(curl -s -u '{credentials.client_id}:{credentials.client_secret}' -d grant_type=client_credentials \\
          {base}/oauth/token | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  curl -H "Authorization: Bearer $TOKEN" '{base}/ims/oneroster/rostering/v1p2/users?limit=5'
""")
    if no_serve:
        return
    database.dispose()
    run_server(app, host, port, workers=2, threads=1)


def register(cli: click.Group) -> None:
    """Attach ``quickstart`` and ``demo-credentials``."""
    cli.add_command(quickstart_command)
    cli.add_command(demo_credentials_command)
