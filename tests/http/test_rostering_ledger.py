"""The REST service records what it discloses: one ledger entry per response carrying people's
records, committed before the response leaves; a response whose record cannot be written is
not sent at all."""
from __future__ import annotations

from sqlalchemy import event, select

from gateway.sharing import LedgerWriter
from gateway.sharing.ledger import entry_people, record_disclosure, verify_ledger
from gateway.store.models import District, utcnow
from gateway.store.sharing import LedgerEntry


def entries(database) -> list[tuple[str, str, int, list[str]]]:
    with database.session_scope() as session:
        found = []
        for entry in session.execute(select(LedgerEntry).order_by(LedgerEntry.seq)).scalars():
            users = entry_people(session, entry.district_id, entry.seq)
            found.append((entry.endpoint, entry.entity, entry.record_count, users))
        return found


def test_a_page_of_users_is_recorded_once_with_its_students(load_small, api_for, database):
    load_small()
    api = api_for()
    body = api.get("/users", limit=3, sort="sourcedId").get_json()
    sent = [user["sourcedId"] for user in body["users"]]
    assert len(sent) == 3
    assert entries(database) == [("getAllUsers", "user", 3, sorted(sent))]
    # Orgs are not about people: nothing more is recorded.
    assert api.get("/orgs").status_code == 200
    assert len(entries(database)) == 1


def test_no_record_no_data(load_small, api_for, database, monkeypatch):
    load_small()
    api = api_for()

    def fail(self):
        raise RuntimeError("ledger unavailable")

    # Both appenders (the session's, and on SQLite the ledger file's own connection) read the
    # noted entries through noted().
    monkeypatch.setattr(LedgerWriter, "noted", fail)
    response = api.get("/users", limit=3)
    assert response.status_code == 500
    body = response.get_json()
    assert "users" not in body
    assert body["imsx_CodeMinor"]["imsx_codeMinorField"][0]["imsx_codeMinorFieldValue"] == \
        "internal_server_error"
    assert entries(database) == []


def test_an_entry_appended_meanwhile_by_another_worker_does_not_fail_the_page(
        load_small, api_for, database, monkeypatch):
    """Another worker appends between this request's reads and its own append. SQLite refuses to
    turn a read snapshot into a write once another writer committed (SQLITE_BUSY_SNAPSHOT), so the
    append must not reuse the reads' transaction there; on PostgreSQL it must chain after the
    other entry."""
    load_small()
    api = api_for()
    noted = LedgerWriter.noted

    def noted_after_another_worker(self):
        with database.session_scope() as other:
            record_disclosure(other, app_id=self.app_id, district_id=self.district_id,
                              channel="lti", endpoint="launch", entity="user",
                              fields=["givenName"], users=["u1"], record_count=1, now=utcnow())
        return noted(self)

    monkeypatch.setattr(LedgerWriter, "noted", noted_after_another_worker)
    assert api.get("/users", limit=3).status_code == 200
    assert [entry[0] for entry in entries(database)] == ["launch", "getAllUsers"]
    with database.session_scope() as session:
        district_id = session.execute(select(District.id)).scalar_one()
        assert verify_ledger(session, district_id).ok


def test_the_append_commits_apart_from_the_reads_on_sqlite_and_with_them_on_postgresql(
        load_small, api_for, database):
    """PostgreSQL appends in the request's transaction, committed once (a commit, a pool
    check-out and a BEGIN fewer); SQLite appends in a transaction of the ledger file alone,
    through the process's own connection to it, and the request's session commits only its
    reads (see the test above for why the two cannot share a transaction there)."""
    load_small()
    api = api_for()
    commits = []

    def count(connection) -> None:
        commits.append(connection)

    event.listen(database.engine, "commit", count)
    try:
        assert api.get("/users", limit=3).status_code == 200
    finally:
        event.remove(database.engine, "commit", count)
    assert len(commits) == 1
    assert len(entries(database)) == 1
    if database.dialect == "sqlite":
        ledger_connection = database.ledger_file.connection()
        assert ledger_connection.total_changes >= 3  # the entry, its people, the head
        assert not ledger_connection.in_transaction


def test_the_page_whose_append_falls_due_folds_after_its_response(load_small, api_for, database,
                                                                  monkeypatch):
    from gateway.sharing import ledger
    from gateway.store.sharing import LedgerPending, LedgerSeal

    load_small()
    api = api_for()
    folds_in_request = []
    real_fold = ledger.fold_ledger

    def watched_fold(session, district_id, **kwargs):
        from flask import has_request_context
        folds_in_request.append(has_request_context())
        return real_fold(session, district_id, **kwargs)

    monkeypatch.setattr(ledger, "FOLD_EVERY", 3)
    monkeypatch.setattr("gateway.http.visibility.fold_ledger", watched_fold)
    for _ in range(3):
        response = api.get("/users", limit=2)
        assert response.status_code == 200
        response.close()
    # The third append fell due: its fold ran once the response had gone, not in the request,
    # and left nothing pending.
    assert folds_in_request == [False]
    with database.session_scope() as session:
        assert session.execute(select(LedgerPending)).first() is None
        assert session.execute(select(LedgerSeal)).first() is not None
        district_id = session.execute(select(District.id)).scalar_one()
        assert verify_ledger(session, district_id).ok
