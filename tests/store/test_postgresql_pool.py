"""PostgreSQL connections are pinged before use only after sitting idle in the pool: a connection
the server dropped meanwhile (a restart, an idle timeout) is replaced before a request uses it,
without a round trip before every request of a busy worker."""
from __future__ import annotations

import os

import pytest
from sqlalchemy import exc, text

import gateway.store
from gateway.store import Database

TEST_DATABASE_URL = os.environ.get("GATEWAY_TEST_DATABASE_URL")

pytestmark = pytest.mark.skipif(not TEST_DATABASE_URL,
                                reason="PostgreSQL only: set GATEWAY_TEST_DATABASE_URL")


def backend_pid(database: Database) -> int:
    with database.engine.connect() as conn:
        return conn.execute(text("SELECT pg_backend_pid()")).scalar_one()


def drop_backend(pid: int) -> None:
    killer = Database(TEST_DATABASE_URL)
    try:
        with killer.engine.connect() as conn:
            assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
    finally:
        killer.dispose()


def test_an_idle_connection_dropped_by_the_server_is_replaced_before_use(monkeypatch):
    monkeypatch.setattr(gateway.store, "IDLE_PING_SECONDS", 0.0)  # every check-out is "idle"
    database = Database(TEST_DATABASE_URL)
    try:
        dropped = backend_pid(database)
        drop_backend(dropped)
        # The pooled connection is dead; the ping finds it and the pool reconnects.
        assert backend_pid(database) != dropped
    finally:
        database.dispose()


def test_a_connection_in_constant_use_is_not_pinged(monkeypatch):
    monkeypatch.setattr(gateway.store, "IDLE_PING_SECONDS", 3600.0)
    database = Database(TEST_DATABASE_URL)
    try:
        dropped = backend_pid(database)
        drop_backend(dropped)
        # Used moments ago, so handed out without a ping: the request on it fails once...
        with pytest.raises(exc.OperationalError):
            backend_pid(database)
        # ...and the pool, having seen the disconnect, reconnects for the next one.
        assert backend_pid(database) != dropped
    finally:
        database.dispose()
