"""The benchmarks' own databases: a SQLite file, or a PostgreSQL schema, per benchmark, emptied
and migrated on demand so each run starts from a known state."""
from __future__ import annotations

from pathlib import Path

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def database_url(backend: str, workdir: Path, pg_url: str, name: str) -> str:
    """Where benchmark ``name`` keeps its database: ``WORKDIR/NAME.sqlite3``, or the PostgreSQL
    schema ``gateway_NAME`` of ``pg_url``."""
    if backend == "sqlite":
        return f"sqlite:///{workdir / f'{name}.sqlite3'}"
    return f"{pg_url}{'&' if '?' in pg_url else '?'}options=-csearch_path%3Dgateway_{name}"


def reset_database(backend: str, workdir: Path, pg_url: str, name: str) -> str:
    """Empty benchmark ``name``'s database, migrate it to the newest schema, return its URL."""
    from sqlalchemy import text

    from gateway.store import Database, ledger_database_path
    from gateway.store.migrate import upgrade_database

    if backend == "sqlite":
        store = str(workdir / f"{name}.sqlite3")
        for path in (store, ledger_database_path(store)):
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
    else:
        admin = Database(pg_url)
        with admin.engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS gateway_{name} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA gateway_{name}"))
        admin.dispose()
    url = database_url(backend, workdir, pg_url, name)
    database = Database(url)
    upgrade_database(database)
    database.dispose()
    return url
