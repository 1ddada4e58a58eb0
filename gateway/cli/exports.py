"""``gateway export``: an app's OneRoster 1.2.1 CSV bundle, as its sharing policy lets it see the
district (see :mod:`gateway.exporting`)."""
from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from gateway import exporting
from gateway.cli.context import echo_json, json_option
from gateway.database import get_database
from gateway.errors import GatewayError
from gateway.oneroster.csv import binding
from gateway.store.migrate import ensure_schema


class _FileProgress:
    """A click progress bar per file over its records, shown only on a terminal."""

    def __init__(self) -> None:
        self.bar = None
        self.name: str | None = None

    def __call__(self, name: str, done: int, total: int) -> None:
        if not sys.stderr.isatty():
            return
        if name != self.name:
            self.close()
            self.name = name
            self.bar = click.progressbar(length=max(total, 1), label=f"{name}.csv".ljust(22),
                                         file=sys.stderr)
            self.bar.__enter__()
        self.bar.update(done - self.bar.pos)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


@click.command("export")
@click.option("--app", "app", required=True, metavar="APP",
              help="The app: its id or a client_id (as `gateway apps` commands take it).")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), metavar="FILE.zip",
              help="The bundle to write (replaced whole, or left untouched on failure).")
@click.option("--since", metavar="TIMESTAMP",
              help="A delta bundle: the records changed after this ISO 8601 date-time "
              "(e.g. 2026-09-01T08:00:00Z), tobedeleted ones included. Default: a bulk bundle "
              "of every active record.")
@click.option("--district", metavar="SOURCEDID",
              help="The district, when the app is connected to several.")
@json_option
@with_appcontext
def export_command(app: str, out: Path, since: str | None, district: str | None,
                   as_json: bool) -> None:
    """Write an app's OneRoster 1.2.1 CSV bundle: exactly what the district's sharing policy lets
    the app see, masked and pseudonymized as the REST service serves it (demographics.csv only if
    it holds the demographics scope, the resources and gradebook files only with the scopes that
    read them). Every person's record in it is recorded in the disclosure
    ledger (channel csv-export) before the file is in place."""
    database = get_database(current_app)
    ensure_schema(database)
    progress = _FileProgress()
    try:
        done = exporting.export_to_file(
            database, app=app, district=district, out=out, since=exporting.parse_since(since),
            secret_key=current_app.config["SECRET_KEY"], issuer=current_app.config["ISSUER"],
            progress=progress,
            default_category_title=current_app.config["DEFAULT_CATEGORY_TITLE"])
    except GatewayError as error:
        raise click.ClickException(error.description) from error
    finally:
        progress.close()
    result = done.result
    if as_json:
        echo_json({"app": done.app_id, "district": done.district, "out": str(done.path),
                   "mode": result.mode, "rows": result.rows, "notices": list(result.notices),
                   "ledger_entries": result.disclosures})
        return
    click.echo(f"app {done.app_id} ({done.app_name}), district {done.district}: "
               f"{result.mode} bundle written to {done.path}")
    for csv_file in binding.ROSTERING_FILES:
        rows = result.rows.get(csv_file.name)
        click.echo(f"  {csv_file.filename:<22}{rows:>9} rows" if rows
                   else f"  {csv_file.filename:<22}   absent")
    for notice in result.notices:
        click.echo(f"note: {notice}")
    click.echo(f"{result.disclosures} disclosure(s) recorded in the ledger (channel csv-export)")


def register(cli: click.Group) -> None:
    """Attach the export command."""
    cli.add_command(export_command)
