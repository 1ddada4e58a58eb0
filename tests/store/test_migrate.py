"""The schema is created by migrations and matches the models."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from gateway.cli import cli
from gateway.store.migrate import current_revision, is_up_to_date
from gateway.store.schema import metadata


def test_migrations_produce_exactly_the_models(database):
    with database.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    assert differences == []


def test_every_roster_table_is_unique_by_district_and_sourced_id(database):
    inspector = inspect(database.engine)
    for table in ("orgs", "academic_sessions", "courses", "classes", "users", "roles",
                  "user_profiles", "enrollments", "demographics"):
        uniques = [tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)]
        assert ("district_id", "sourced_id") in uniques, table


def test_db_upgrade_command_reports_head(runner, database):
    result = runner.invoke(cli, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "at revision 0009" in result.output
    assert is_up_to_date(database)
    assert current_revision(database) == "0009"
