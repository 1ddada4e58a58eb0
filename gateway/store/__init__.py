"""Persistence: the engine, sessions, migrations and the tables. SQLAlchemy only, no flask.

The Flask binding (one session per request, committed or rolled back once at teardown) lives in
``gateway.http.session``; commands use :meth:`Database.session_scope`.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from gateway.errors import UsageError

DEFAULT_SQLITE_NAME = "gateway.sqlite3"


def default_database_url(instance_path: str | os.PathLike[str]) -> str:
    """The embedded default: a SQLite file in the instance folder (created on first use)."""
    path = Path(instance_path)
    path.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path / DEFAULT_SQLITE_NAME}"


def _configure_sqlite(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # Foreign keys are off by default in SQLite; WAL lets the API read while an import writes.
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_engine(url: str) -> Engine:
    """Create an engine for ``url`` with the settings this project relies on."""
    if url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url[len("postgres://"):]
    elif url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    if url.startswith("sqlite"):
        # The pysqlite driver's own transaction handling would commit behind our back before DDL;
        # let SQLAlchemy issue BEGIN itself so an import is truly one transaction.
        engine = create_engine(url, connect_args={"check_same_thread": False,
                                                  "isolation_level": None})
        event.listen(engine, "connect", _configure_sqlite)

        @event.listens_for(engine, "begin")
        def _begin(conn):
            conn.exec_driver_sql("BEGIN")

        return engine
    if url.startswith("postgresql"):
        return create_engine(url, pool_pre_ping=True)
    raise UsageError(f"unsupported database URL {url!r}: use sqlite:///PATH or postgresql+psycopg://...")


class Database:
    """An engine and its session factory."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @contextlib.contextmanager
    def session_scope(self) -> Iterator[Session]:
        """One transaction: commit if the block succeeds, roll back if it raises."""
        session = self.sessionmaker()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
