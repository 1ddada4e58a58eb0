"""The Flask binding of the store (the flaskr ``db.py`` shape), shared by the HTTP layer and the
CLI: the app's :class:`~gateway.store.Database`, and for a request one session, committed or
rolled back once at teardown. Commands open theirs with :func:`gateway.cli.context.store_session`.
Also the app's Redis client, when ``GATEWAY_REDIS_URL`` names one."""
from __future__ import annotations

from typing import Any

from flask import Flask, current_app, g
from sqlalchemy.orm import Session

from gateway.redis_client import connect_redis
from gateway.store import (SQLITE_BUSY_TIMEOUT_MS, WRITE_LOCK_OPTION, Database,
                           default_database_url)

REDIS = "gateway.redis"


def init_app(app: Flask) -> None:
    """Bind a :class:`Database` to the app and finish each request's session at teardown."""
    url = app.config.get("DATABASE_URL") or default_database_url(app.instance_path)
    app.config["DATABASE_URL"] = url
    app.extensions["gateway.db"] = Database(url, app.config["STORE_WRITE_WAIT_SECONDS"])
    redis_url = app.config.get("REDIS_URL")
    app.extensions[REDIS] = connect_redis(redis_url) if redis_url else None

    @app.teardown_request
    def _finish_session(error):
        session = g.pop("db_session", None)
        if session is None:
            return
        try:
            # A request that never began a transaction (a token answered from the grant cache,
            # a page whose disclosure went to the ledger file) has nothing to end: the session's
            # commit would begin one only to commit it.
            if not (session.in_transaction() or session.new or session.dirty or session.deleted):
                pass
            elif error is None:
                session.commit()
            else:
                session.rollback()
        finally:
            session.close()


def get_database(app: Flask | None = None) -> Database:
    """The :class:`Database` bound to ``app`` (default: the current app)."""
    return (app or current_app).extensions["gateway.db"]


def get_redis(app: Flask | None = None) -> Any | None:
    """The Redis client of ``app`` (default: the current app), or None in embedded mode."""
    return (app or current_app).extensions[REDIS]


def request_session() -> Session:
    """The session of the current request (opened on first use, finished at teardown)."""
    if "db_session" not in g:
        g.db_session = get_database().sessionmaker()
    return g.db_session


def write_session() -> Session:
    """The request's session with its reads so far committed, for the writes that follow.

    SQLite cannot turn a read transaction into a write once another worker has written meanwhile
    (SQLITE_BUSY_SNAPSHOT, a 500 at once); a transaction that starts with its write waits for the
    lock instead. Only for writes that do not depend on staying atomic with the reads before.
    """
    session = request_session()
    session.commit()
    return session


def locked_write_session() -> Session:
    """:func:`write_session` whose transaction takes the store's write lock as it begins (SQLite;
    nothing on PostgreSQL), waiting as long as any SQLite statement waits for a busy store, for
    writes that read before they write (a gradebook PUT finds the record it replaces): another
    writer's commit between those reads and the writes can then no longer fail the request.

    Never for a request that calls out while writing (an LMS's registration endpoint, which may
    call back into this gateway): the lock would be held across the call.
    """
    session = write_session()
    session.connection(execution_options={WRITE_LOCK_OPTION: SQLITE_BUSY_TIMEOUT_MS / 1000})
    return session