"""``gateway backup`` / ``gateway restore``: one archive of a SQLite instance, taken while it serves,
and its verified restore into an empty instance (see :mod:`gateway.backup`). On PostgreSQL both
point at the pg_dump procedure."""
from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from gateway.backup import (BackupError, backup_sqlite, libpq_url, load_heads,
                            postgresql_procedure, restore_sqlite)
from gateway.cli.context import echo_json, json_option
from gateway.database import get_database
from gateway.errors import UsageError


def _progress(message: str) -> None:
    # stderr: stdout stays the result (and --json stays parseable).
    click.echo(f"  {message}", err=True)


@click.command("backup")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace OUT if it exists.")
@json_option
@with_appcontext
def backup_command(out: Path, force: bool, as_json: bool) -> None:
    """Write OUT, an archive of the SQLite store, its ledger and the instance secret key, while
    the gateway serves (PostgreSQL: prints the pg_dump procedure and fails)."""
    database = get_database(current_app)
    if database.dialect != "sqlite":
        # A PostgreSQL backup is the operator's pg_dump (or base backups): see the README.
        raise click.ClickException(postgresql_procedure(database.url))
    try:
        manifest = backup_sqlite(database, out, instance_path=current_app.instance_path,
                                 secret_key=current_app.config["SECRET_KEY"], force=force,
                                 progress=_progress)
    except UsageError as error:
        raise click.ClickException(str(error)) from error
    if as_json:
        echo_json({"archive": str(out), **manifest})
        return
    size = out.stat().st_size
    click.echo(f"backup written to {out} ({size / 1e6:.1f} MB), schema revision "
               f"{manifest['migration_head']}")
    for head in manifest["ledger_heads"]:
        click.echo(f"  district {head['district']}: ledger head {head['seq']} {head['hash']}")
    if manifest["secret_key"]["source"] == "environment":
        click.echo("  the secret key comes from GATEWAY_SECRET_KEY and is not in the archive: "
                   "keep it with your secrets, the restored instance needs it "
                   f"(fingerprint {manifest['secret_key']['fingerprint']})")


@click.command("restore")
@click.argument("archive", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--force", is_flag=True,
              help="Replace a store that holds data (stop every gateway process using it first).")
@click.option("--heads", "heads_file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Ledger heads kept apart (`gateway ledger heads --json`) that the restored "
                   "ledger must contain.")
@json_option
@with_appcontext
def restore_command(archive: Path, force: bool, heads_file: Path | None, as_json: bool) -> None:
    """Restore ARCHIVE (from `gateway backup`) into this instance's empty SQLite store, checking
    its checksums, secret key and ledger chains first, and migrating it if it is older."""
    url = current_app.config["DATABASE_URL"]
    try:
        if not url.startswith("sqlite"):
            raise BackupError("`gateway restore` restores a SQLite store. On PostgreSQL: "
                              f"pg_restore --no-owner -d '{libpq_url(url)}' DUMP, then "
                              "`gateway db upgrade` and `gateway ledger verify --heads "
                              "HEADS.json` (see the README's \"Backups\")")
        kept = load_heads(heads_file) if heads_file else None
        restored = restore_sqlite(archive, database_url=url,
                                  instance_path=current_app.instance_path,
                                  secret_key=current_app.config["SECRET_KEY"], force=force,
                                  kept_heads=kept, progress=_progress)
    except UsageError as error:
        raise click.ClickException(str(error)) from error
    # This process's engine was never opened on the replaced files; drop it all the same.
    get_database(current_app).dispose()
    if as_json:
        echo_json({"store": str(restored.store), "ledger": str(restored.ledger),
                   "secret_key_file": (str(restored.secret_key_file)
                                       if restored.secret_key_file else None),
                   "revision": restored.revision, "migrated_from": restored.migrated_from,
                   "backup_created_at": restored.manifest.get("created_at"),
                   "ledgers": [{"district": c.district, "entries": c.entries,
                                "head_seq": c.head_seq, "head_hash": c.head_hash, "ok": True}
                               for c in restored.chains]})
        return
    click.echo(f"restored the backup of {restored.manifest.get('created_at')} into "
               f"{restored.store}, schema revision {restored.revision}"
               + (f" (migrated from {restored.migrated_from})" if restored.migrated_from else ""))
    for chain in restored.chains:
        click.echo(f"  district {chain.district}: {chain.entries} ledger entries, chain intact; "
                   f"head {chain.head_seq} {chain.head_hash}")
    if restored.secret_key_file:
        click.echo(f"  secret key restored to {restored.secret_key_file}")


def register(cli: click.Group) -> None:
    """Attach ``backup`` and ``restore``."""
    cli.add_command(backup_command)
    cli.add_command(restore_command)
