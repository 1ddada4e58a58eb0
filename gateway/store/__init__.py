"""Persistence: the engine, sessions, migrations and the tables. SQLAlchemy only, no flask.

The Flask binding (one session per request, committed or rolled back once at teardown) lives in
``gateway.database``; commands use :func:`gateway.cli.context.store_session`.
"""
from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Iterator

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from gateway.errors import UsageError
from gateway.store.private import secure_sqlite_file

DEFAULT_SQLITE_NAME = "gateway.sqlite3"


def default_database_url(instance_path: str | os.PathLike[str]) -> str:
    """The embedded default: a SQLite file in the instance folder (created on first use)."""
    path = Path(instance_path)
    path.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path / DEFAULT_SQLITE_NAME}"


LEDGER_SCHEMA = "ledger"
"""On SQLite, the disclosure ledger's tables live in a database file of their own, attached to
every connection under this name (see :func:`ledger_database_path`)."""

WRITE_LOCK_OPTION = "gateway_sqlite_write_lock"
"""Execution option: a SQLite transaction that takes the store's write lock when it begins,
waiting for it up to the option's value in seconds."""


class StoreBusy(UsageError):
    """Another import or command kept the store's write lock longer than this one would wait."""


SQLITE_BUSY_TIMEOUT_MS = 30000


def ledger_database_path(database_path: str) -> str:
    """The ledger's SQLite file beside the store's: ``gateway.sqlite3`` -> ``gateway-ledger.sqlite3``.

    Why a file of its own: SQLite has one writer per file, and every read an app makes appends a
    disclosure to the ledger. In the store's file, those appends and an import's long write
    transaction take turns for one lock, and one side fails after the busy timeout. In its own
    file, an app's reads (and their ledger appends) go on while the district imports; only other
    writers of the store wait for the import.
    """
    if database_path in ("", ":memory:"):
        return ":memory:"
    path = Path(database_path)
    return str(path.with_name(f"{path.stem}-ledger{path.suffix}"))


class LedgerFile:
    """A process's own connections to a SQLite store's ledger file (one per thread), for appends
    that need no session: an app's read is answered from the store in the request's session, and
    its disclosure is appended and committed here, in a transaction of the ledger file alone,
    before the response leaves.

    Why not the request's session: on SQLite the append has to be a transaction of its own
    anyway (a read snapshot cannot be upgraded to a write once another worker has written, see
    :class:`gateway.sharing.LedgerWriter`), and through the session it cost a commit of the
    reads, a pool check-out and the ORM's transaction bookkeeping twice over: more than SQLite
    takes to append the entry. The connection opens the ledger file directly, so the ledger's
    unqualified table names resolve as they do when it is attached.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._guard = threading.Lock()

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use, and again in a forked child)."""
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            # Owner-only like the store, before SQLite creates it.
            secure_sqlite_file(self.path)
            connection = sqlite3.connect(self.path, isolation_level=None,
                                         check_same_thread=False,
                                         timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            local.connection, local.pid = connection, os.getpid()
            with self._guard:
                self._opened.append(connection)
        return local.connection

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Cursor]:
        """A cursor in one transaction of the ledger file: committed when the block succeeds,
        rolled back when it raises."""
        connection = self.connection()
        cursor = connection.cursor()
        cursor.execute("BEGIN")
        try:
            yield cursor
            cursor.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:  # SQLite may have rolled back already
                connection.rollback()
            raise
        finally:
            cursor.close()

    def close(self) -> None:
        """Close every connection this process opened (a child's inherited ones are left)."""
        with self._guard:
            opened, self._opened = self._opened, []
        pid = os.getpid()
        if getattr(self._local, "pid", None) == pid:
            del self._local.pid, self._local.connection
        for connection in opened:
            with contextlib.suppress(sqlite3.Error):
                connection.close()


def _sqlite_connect_hook(ledger_path: str):
    def configure(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        # Foreign keys are off by default in SQLite; WAL lets the API read while an import writes.
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        if ledger_path != ":memory:":
            # Owner-only like the store, before SQLite creates it (its -wal and -shm files take
            # the database file's mode).
            secure_sqlite_file(ledger_path)
        cursor.execute(f"ATTACH DATABASE ? AS {LEDGER_SCHEMA}", (ledger_path,))
        cursor.execute(f"PRAGMA {LEDGER_SCHEMA}.journal_mode=WAL")
        cursor.execute(f"PRAGMA {LEDGER_SCHEMA}.synchronous=NORMAL")
        cursor.close()
    return configure


def _take_sqlite_write_lock(conn, wait_seconds: float) -> None:
    """Take the store's (main file's) write lock now, waiting for it up to ``wait_seconds``.

    A transaction that reads first and writes later cannot wait for the lock: SQLite refuses
    the upgrade at once (SQLITE_BUSY_SNAPSHOT) when anyone else wrote in between. ``BEGIN
    IMMEDIATE`` would wait, but it also locks every attached file, the ledger's included, and an
    import would then stall every app's disclosure record. A write that changes nothing, to a
    table every migrated store has, locks the main file alone.
    """
    conn.exec_driver_sql(f"PRAGMA busy_timeout={int(wait_seconds * 1000)}")
    try:
        conn.exec_driver_sql("UPDATE main.alembic_version SET version_num = version_num WHERE 0")
    except OperationalError as error:
        if conn.connection.driver_connection.in_transaction:  # SQLite may have ended it already
            conn.exec_driver_sql("ROLLBACK")
        raise StoreBusy(f"Another import or command is changing the store; waited {wait_seconds:g} s "
                        "for it to finish (GATEWAY_STORE_WRITE_WAIT_SECONDS). Try again when it "
                        "has finished.") from error
    finally:
        conn.exec_driver_sql(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")


IDLE_PING_SECONDS = 5.0
"""A pooled PostgreSQL connection idle at least this long is pinged before it is handed out."""


def _ping_when_idle(engine: Engine, idle_seconds: float) -> None:
    """Ping a pooled connection before handing it out only when it has been idle for
    ``idle_seconds``: a connection dropped by the server (a restart, an idle timeout, a proxy)
    is found and replaced before a request uses it, as ``pool_pre_ping`` does, without a round
    trip before every request of a busy worker (that ping cost a worker about 60 us of CPU per
    request, and the server its share). A connection used moments ago that the server has just
    dropped fails its request once; SQLAlchemy then discards every pooled connection of that
    age, so the next requests reconnect.
    """
    @event.listens_for(engine, "checkin")
    def _note_checkin(dbapi_connection, record) -> None:
        record.info["checked_in"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection, record, proxy) -> None:
        if time.monotonic() - record.info.get("checked_in", 0.0) < idle_seconds:
            return
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SELECT 1")
        except Exception as error:  # noqa: BLE001 - the driver's error for a dead connection
            # The pool discards this connection and retries the check-out with a new one.
            raise DisconnectionError(f"the pooled connection was dropped: {error}") from error
        finally:
            with contextlib.suppress(Exception):
                cursor.close()
        # psycopg opens a transaction for the SELECT; the connection is handed out clean.
        dbapi_connection.rollback()


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
        event.listen(engine, "connect",
                     _sqlite_connect_hook(ledger_database_path(engine.url.database or "")))

        @event.listens_for(engine, "begin")
        def _begin(conn):
            # On the driver's connection: through exec_driver_sql, SQLAlchemy's execution
            # machinery cost each transaction (each API request) about 20 µs of CPU more.
            conn.connection.dbapi_connection.execute("BEGIN")
            wait = conn.get_execution_options().get(WRITE_LOCK_OPTION)
            if wait:
                _take_sqlite_write_lock(conn, wait)

        return engine
    if url.startswith("postgresql"):
        engine = create_engine(url)
        _ping_when_idle(engine, IDLE_PING_SECONDS)
        return engine
    raise UsageError(f"unsupported database URL {url!r}: use sqlite:///PATH or postgresql+psycopg://...")


DEFAULT_WRITE_WAIT_SECONDS = 600.0


class Database:
    """An engine and its session factories; ``write_wait_seconds``: how long a writer session
    waits on SQLite for another one (an import) to finish."""

    def __init__(self, url: str, write_wait_seconds: float = DEFAULT_WRITE_WAIT_SECONDS) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)
        # Connections and sessions that will write the store: on SQLite their transactions hold
        # its write lock from the start.
        self.writer_engine = self.engine.execution_options(**{WRITE_LOCK_OPTION: write_wait_seconds})
        self.writer_sessionmaker = sessionmaker(self.writer_engine, expire_on_commit=False)
        ledger_path = (ledger_database_path(self.engine.url.database or "")
                       if self.engine.dialect.name == "sqlite" else ":memory:")
        # On a SQLite file store, its ledger file's own connections (see LedgerFile); PostgreSQL
        # and in-memory stores append through the session.
        self.ledger_file = LedgerFile(ledger_path) if ledger_path != ":memory:" else None

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @contextlib.contextmanager
    def session_scope(self, *, write: bool = False) -> Iterator[Session]:
        """One transaction: commit if the block succeeds, roll back if it raises.

        ``write``: the block will change the store after reading it (an import, a policy). On
        SQLite its transaction then takes the store's write lock when it begins, waiting while
        another writer holds it, instead of failing at its first write when someone else wrote
        after its first read. Readers are never blocked (WAL), and neither are apps' ledger
        appends (the ledger is a file of its own, see :func:`ledger_database_path`).
        """
        session = (self.writer_sessionmaker if write else self.sessionmaker)()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        """Close every pooled connection (and the ledger file's own)."""
        self.engine.dispose()
        if self.ledger_file is not None:
            self.ledger_file.close()
