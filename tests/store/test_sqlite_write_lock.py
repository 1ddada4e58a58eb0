"""SQLite: a writer session holds the store's write lock from its start, other writers wait for it
(or give up with a clear message), and the ledger, in its own file, never waits for it."""
from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import func, select

from gateway.sharing.ledger import record_disclosure
from gateway.store import Database, StoreBusy
from gateway.store.models import District, utcnow
from gateway.store.sharing import LedgerEntry


@pytest.fixture
def sqlite_database(database_url) -> Database:
    if not database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL writers lock rows, not the store")
    database = Database(database_url, write_wait_seconds=0.3)
    yield database
    database.dispose()


def test_a_writer_waits_for_another_and_then_gives_up_clearly(sqlite_database):
    with sqlite_database.session_scope(write=True) as holder:
        holder.add(District(sourced_id="d1", name="One", data_version=0))
        holder.flush()
        began = time.monotonic()
        with pytest.raises(StoreBusy) as refused:
            with sqlite_database.session_scope(write=True) as other:
                other.execute(select(District.id)).all()
        waited = time.monotonic() - began
    assert waited >= 0.3
    assert str(refused.value) == (
        "Another import or command is changing the store; waited 0.3 s for it to finish "
        "(GATEWAY_STORE_WRITE_WAIT_SECONDS). Try again when it has finished.")
    # The refused session left nothing open: the next writer gets the lock at once.
    with sqlite_database.session_scope(write=True) as after:
        assert after.execute(select(District.sourced_id)).scalars().all() == ["d1"]


def test_a_waiting_writer_gets_the_lock_when_the_holder_commits(sqlite_database):
    patient = Database(sqlite_database.url, write_wait_seconds=10)
    released = threading.Event()

    def hold() -> None:
        with sqlite_database.session_scope(write=True) as holder:
            holder.add(District(sourced_id="d1", name="One", data_version=0))
            holder.flush()
            released.wait(5)
            time.sleep(0.3)

    thread = threading.Thread(target=hold)
    thread.start()
    time.sleep(0.2)
    released.set()
    # A read-then-write transaction that would fail at its first write without the lock.
    with patient.session_scope(write=True) as writer:
        assert writer.execute(select(District.sourced_id)).scalars().all() == ["d1"]
        writer.add(District(sourced_id="d2", name="Two", data_version=0))
    thread.join()
    patient.dispose()
    with sqlite_database.session_scope() as session:
        assert session.execute(select(func.count()).select_from(District)).scalar_one() == 2


def test_ledger_appends_go_on_while_a_writer_holds_the_store(sqlite_database):
    with sqlite_database.session_scope(write=True) as importing:
        importing.add(District(sourced_id="d1", name="One", data_version=0))
        importing.flush()
        began = time.monotonic()
        with sqlite_database.session_scope() as reader:
            record_disclosure(reader, app_id=1, district_id=1, channel="rest", endpoint="/users",
                              entity="user", fields=["givenName"], users=["u1"], record_count=1,
                              now=utcnow())
        assert time.monotonic() - began < 0.3  # did not wait for the store's lock
    with sqlite_database.session_scope() as session:
        assert session.execute(select(func.count()).select_from(LedgerEntry)).scalar_one() == 1
