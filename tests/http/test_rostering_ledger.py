"""The REST service records what it discloses: one ledger entry per response carrying people's
records, committed before the response leaves; a response whose record cannot be written is
not sent at all."""
from __future__ import annotations

from sqlalchemy import select

from gateway.sharing import LedgerWriter
from gateway.store.sharing import LedgerEntry, LedgerEntryUser


def entries(database) -> list[tuple[str, str, int, list[str]]]:
    with database.session_scope() as session:
        found = []
        for entry in session.execute(select(LedgerEntry).order_by(LedgerEntry.seq)).scalars():
            users = sorted(session.execute(select(LedgerEntryUser.user_sourced_id).where(
                LedgerEntryUser.district_id == entry.district_id,
                LedgerEntryUser.seq == entry.seq)).scalars())
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

    monkeypatch.setattr(LedgerWriter, "flush", fail)
    response = api.get("/users", limit=3)
    assert response.status_code == 500
    body = response.get_json()
    assert "users" not in body
    assert body["imsx_CodeMinor"]["imsx_codeMinorField"][0]["imsx_codeMinorFieldValue"] == \
        "internal_server_error"
    assert entries(database) == []
