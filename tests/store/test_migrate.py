"""The schema is created by migrations and matches the models."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
import pytest
from sqlalchemy import MetaData, inspect

from gateway.cli import cli
from gateway.store import LEDGER_SCHEMA, ledger_database_path
from gateway.store.migrate import current_revision, is_up_to_date
from gateway.store.schema import metadata

LEDGER_TABLES = ("ledger_heads", "ledger_entries", "ledger_entry_users", "ledger_user_index",
                 "ledger_checkpoints")


def expected_metadata(dialect: str) -> MetaData:
    """The models as the database holds them: on SQLite the ledger's tables are in the attached
    ledger file (gateway.store.LEDGER_SCHEMA)."""
    if dialect != "sqlite":
        return metadata
    placed = MetaData()
    for table in metadata.sorted_tables:
        table.to_metadata(placed, schema=LEDGER_SCHEMA if table.name in LEDGER_TABLES else None)
    return placed


def test_migrations_produce_exactly_the_models(database):
    with database.engine.connect() as conn:
        # SQLite: the main file and the attached ledger file (not "temp").
        opts = {"include_schemas": True,
                "include_name": lambda name, kind, _: kind != "schema" or name in (
                    None, "main", LEDGER_SCHEMA)} if conn.dialect.name == "sqlite" else {}
        context = MigrationContext.configure(conn, opts=opts)
        differences = compare_metadata(context, expected_metadata(conn.dialect.name))
    assert differences == []


def test_on_sqlite_the_ledger_lives_in_its_own_file(database):
    if database.dialect != "sqlite":
        pytest.skip("PostgreSQL keeps the ledger with the store: it has row locks")
    with database.engine.connect() as conn:
        files = {name: path for _, name, path in conn.exec_driver_sql("PRAGMA database_list")}
        main_tables = set(conn.exec_driver_sql(
            "SELECT name FROM main.sqlite_master WHERE type = 'table'").scalars())
        ledger_tables = set(conn.exec_driver_sql(
            "SELECT name FROM ledger.sqlite_master WHERE type = 'table'").scalars())
    assert files["ledger"] == ledger_database_path(files["main"])
    assert files["ledger"].endswith("gateway-ledger.sqlite3")
    assert ledger_tables == set(LEDGER_TABLES) and not main_tables & set(LEDGER_TABLES)


def test_every_roster_table_is_unique_by_district_and_sourced_id(database):
    inspector = inspect(database.engine)
    for table in ("orgs", "academic_sessions", "courses", "classes", "users", "roles",
                  "user_profiles", "enrollments", "demographics"):
        uniques = [tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)]
        assert ("district_id", "sourced_id") in uniques, table


def test_db_upgrade_command_reports_head(runner, database):
    result = runner.invoke(cli, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "at revision 0010" in result.output
    assert is_up_to_date(database)
    assert current_revision(database) == "0010"


def test_upgrading_removes_credential_passwords_kept_in_clear(tmp_path):
    # 0008: earlier imports kept userProfiles.csv passwords in clear; the upgrade removes them.
    import os

    from sqlalchemy import text

    from gateway.store import Database
    from gateway.store.migrate import upgrade_database

    base_url = os.environ.get("GATEWAY_TEST_DATABASE_URL")
    schema = f"gateway_migrate_{os.getpid()}"
    if base_url:
        admin = Database(base_url)
        with admin.engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        url = f"{base_url}{'&' if '?' in base_url else '?'}options=-csearch_path%3D{schema}"
    else:
        url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    database = Database(url)
    try:
        upgrade_database(database, "0006")
        with database.engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO user_profiles (district_id, sourced_id, status, date_last_modified, row_hash, "
                "user_sourced_id, profile_type, vendor_id, credential_type, username, password) VALUES "
                "(1, 'up1', 'active', '2026-12-01 00:00:00', 0, 'u1', 'lms', 'acme', 'password', 'eh', 'clear-Secret')"))
        upgrade_database(database)
        with database.engine.connect() as conn:
            assert conn.execute(text("SELECT username, password FROM user_profiles")).all() == [("eh", None)]
    finally:
        database.dispose()
        if base_url:
            with admin.engine.begin() as conn:
                conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            admin.dispose()
