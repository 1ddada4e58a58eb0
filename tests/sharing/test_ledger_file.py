"""Appends through a SQLite store's ledger file's own connection (gateway.store.LedgerFile):
what the REST service uses on SQLite. They chain with the session's appends, commit all of a
request's entries or none, and leave the connection ready for the next request."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from gateway.sharing.ledger import (LedgerWriter, SpooledLedgerWriter, append_noted,
                                    entry_people, record_disclosure, verify_ledger)
from gateway.store.sharing import LedgerEntry

T0 = dt.datetime(2026, 9, 1, 8, 0, 0)


@pytest.fixture
def ledger_file(database):
    if database.ledger_file is None:
        pytest.skip("PostgreSQL appends in the request's session; no ledger file of its own")
    return database.ledger_file


def noted(database, district_id: int, app_id: int, users: list[str], *, spooled=False,
          tmp_path=None) -> LedgerWriter:
    session = database.sessionmaker()
    kind = SpooledLedgerWriter if spooled else LedgerWriter
    options = {"folder": str(tmp_path)} if spooled else {"deferred": True}
    writer = kind(session, app_id=app_id, district_id=district_id, clock=lambda: T0, **options)
    writer.record(channel="rest", endpoint="getAllUsers", entity="user",
                  fields=["givenName", "sourcedId"], users=users, record_count=len(users))
    return writer


def test_entries_of_several_writers_chain_after_the_sessions_and_verify(database, small,
                                                                       ledger_file, tmp_path):
    with database.session_scope() as session:
        record_disclosure(session, app_id=1, district_id=small, channel="lti", endpoint="launch",
                          entity="user", fields=["givenName"], users=["u1"], record_count=1,
                          now=T0)
    writers = [noted(database, small, 1, ["u2", "u1"]),
               noted(database, small, 2, ["u3"], spooled=True, tmp_path=tmp_path)]
    try:
        assert append_noted(ledger_file, database.engine.dialect, writers) == [(small, 2),
                                                                               (small, 3)]
        assert not any(writer.pending for writer in writers)
    finally:
        writers[1].close()
    with database.session_scope() as session:
        found = session.execute(select(LedgerEntry.seq, LedgerEntry.app_id, LedgerEntry.disclosed_at)
                                .order_by(LedgerEntry.seq)).all()
        assert found == [(1, 1, T0), (2, 1, T0), (3, 2, T0)]
        assert entry_people(session, small, 2) == ["u1", "u2"]
        assert verify_ledger(session, small).ok
    # The session's appends chain after the ledger file's.
    with database.session_scope() as session:
        assert record_disclosure(session, app_id=1, district_id=small, channel="lti",
                                 endpoint="launch", entity="user", fields=["givenName"],
                                 users=["u1"], record_count=1, now=T0) == 4
        assert verify_ledger(session, small).ok


def test_a_failure_midway_appends_nothing_and_the_next_request_appends(database, small,
                                                                      ledger_file):
    class Broken(LedgerWriter):
        def noted(self):
            raise RuntimeError("the second writer cannot be read")

    first = noted(database, small, 1, ["u1"])
    broken = Broken(database.sessionmaker(), app_id=2, district_id=small, deferred=True)
    with pytest.raises(RuntimeError):
        append_noted(ledger_file, database.engine.dialect, [first, broken])
    assert not ledger_file.connection().in_transaction
    with database.session_scope() as session:
        assert session.execute(select(LedgerEntry)).first() is None
    assert append_noted(ledger_file, database.engine.dialect,
                        [noted(database, small, 1, ["u1"])]) == [(small, 1)]
    with database.session_scope() as session:
        assert verify_ledger(session, small).ok


def test_each_thread_and_each_forked_process_has_its_own_connection(ledger_file):
    import threading

    mine = ledger_file.connection()
    assert ledger_file.connection() is mine
    theirs = []
    thread = threading.Thread(target=lambda: theirs.append(ledger_file.connection()))
    thread.start()
    thread.join()
    assert theirs[0] is not mine
    # A worker forked after the connection was opened opens its own (SQLite connections must
    # not cross a fork).
    ledger_file._local.pid = -1
    assert ledger_file.connection() is not mine
