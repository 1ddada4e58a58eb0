"""Schema migrations (alembic), applied by ``gateway db upgrade`` and by the commands that need
the schema."""
from __future__ import annotations

import functools
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from gateway.store import Database

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def alembic_config(url: str) -> Config:
    """An alembic configuration pointing at the project's migrations and ``url``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_database(database: Database, revision: str = "head") -> str:
    """Bring the schema up to ``revision``; return the revision now applied."""
    config = alembic_config(database.url)
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    return current_revision(database)


def current_revision(database: Database) -> str | None:
    """The revision the database is at, or None for an empty database."""
    with database.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


@functools.cache
def _scripts() -> ScriptDirectory:
    # The migration scripts ship with the package: read once per process.
    return ScriptDirectory.from_config(alembic_config(""))


def head_revision() -> str:
    """The newest revision of the schema this code knows."""
    return _scripts().get_current_head()


def known_revision(revision: str) -> bool:
    """Whether ``revision`` is one of this code's migrations (a database at an unknown one was
    migrated by newer code)."""
    return any(script.revision == revision for script in _scripts().walk_revisions())


def is_up_to_date(database: Database) -> bool:
    """Whether the database is at the newest revision."""
    return current_revision(database) == head_revision()


def ensure_schema(database: Database) -> None:
    """Apply pending migrations, if any (used by commands that need the schema)."""
    if not is_up_to_date(database):
        upgrade_database(database)
