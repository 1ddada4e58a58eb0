"""The Flask binding of the store (the flaskr ``db.py`` shape), shared by the HTTP layer and the
CLI: the app's :class:`~gateway.store.Database`, and for a request one session, committed or
rolled back once at teardown. Commands open theirs with :func:`gateway.cli.context.store_session`."""
from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy.orm import Session

from gateway.store import Database, default_database_url


def init_app(app: Flask) -> None:
    """Bind a :class:`Database` to the app and finish each request's session at teardown."""
    url = app.config.get("DATABASE_URL") or default_database_url(app.instance_path)
    app.config["DATABASE_URL"] = url
    app.extensions["gateway.db"] = Database(url, app.config["STORE_WRITE_WAIT_SECONDS"])

    @app.teardown_request
    def _finish_session(error):
        session = g.pop("db_session", None)
        if session is None:
            return
        try:
            if error is None:
                session.commit()
            else:
                session.rollback()
        finally:
            session.close()


def get_database(app: Flask | None = None) -> Database:
    """The :class:`Database` bound to ``app`` (default: the current app)."""
    return (app or current_app).extensions["gateway.db"]


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
