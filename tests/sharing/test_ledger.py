"""The disclosure ledger: what ``disclosed`` records, ``student_disclosures``, and ``verify``
catching an edited, removed or reordered entry (and where); pruning keeps the chain verifiable."""
from __future__ import annotations

import contextlib
import datetime as dt
import itertools

import pytest
from sqlalchemy import delete, func, select, text, update

from gateway.sharing.ledger import (GENESIS, LedgerWriter, entry_hash, entry_people, fold_ledger,
                                    people_digest, prune_ledger, record_disclosure, student_disclosures,
                                    student_disclosures_statement, verify_ledger)
from gateway.store.apps import App
from gateway.store.sharing import (LedgerCheckpoint, LedgerEntry, LedgerFold, LedgerHead,
                                   LedgerPending, LedgerSpan)

from sharing_data import MINIMUM_POLICY

T0 = dt.datetime(2026, 9, 1, 8, 0, 0)


def clock(start: dt.datetime = T0, step: dt.timedelta = dt.timedelta(minutes=1)):
    ticks = itertools.count()
    return lambda: start + step * next(ticks)


def append(session, district_id: int, n: int, *, app_id: int = 1, start: dt.datetime = T0,
           users=("u1", "u2")) -> list[int]:
    tick = clock(start)
    return [record_disclosure(session, app_id=app_id, district_id=district_id, channel="rest",
                              endpoint=f"/users?offset={i}", entity="user",
                              fields=["givenName", "sourcedId:pseudonym"], users=users,
                              record_count=len(users), now=tick()) for i in range(n)]


def kinds(result) -> list[tuple[int | None, str]]:
    return [(p.seq, p.kind) for p in result.problems]


# -- recording -----------------------------------------------------------------------------------

def test_disclosed_records_one_entry_with_the_people_and_the_fields_as_sent(visibility, session,
                                                                           small):
    vis = visibility(MINIMUM_POLICY, clock=clock())
    records = [vis.present("user", {"sourcedId": sid, "givenName": "G", "familyName": "Simpson",
                                    "email": "x@example.edu"}) for sid in ("u1", "u2")]
    vis.disclosed("rest", "/ims/oneroster/rostering/v1p2/students", "user", records, ["u1", "u2"])

    entry = session.execute(select(LedgerEntry)).scalar_one()
    assert (entry.district_id, entry.seq, entry.app_id, entry.channel, entry.endpoint,
            entry.disclosed_at, entry.entity, entry.fields, entry.record_count) == (
        small, 1, 1, "rest", "/ims/oneroster/rostering/v1p2/students", T0, "user",
        ["familyName:initial", "givenName", "sourcedId:pseudonym"], 2)
    assert entry.prev_hash == GENESIS
    assert entry.hash == entry_hash(prev_hash=GENESIS, district_id=small, app_id=1, channel="rest",
                                    endpoint=entry.endpoint, disclosed_at=T0, entity="user",
                                    fields=entry.fields, record_count=2, users=["u1", "u2"])
    assert entry_people(session, small, 1) == ["u1", "u2"]
    assert entry.people_digest == people_digest(["u2", "u1"])
    assert session.execute(select(LedgerHead.seq, LedgerHead.hash)).one() == (1, entry.hash)


def test_responses_without_people_or_records_are_not_recorded(visibility, session):
    vis = visibility(MINIMUM_POLICY)
    vis.disclosed("rest", "/classes", "class", [{"sourcedId": "k1"}], ["k1"])
    vis.disclosed("rest", "/orgs", "org", [{"sourcedId": "s1"}], ["s1"])
    vis.disclosed("rest", "/users", "user", [], [])
    assert session.execute(select(func.count()).select_from(LedgerEntry)).scalar_one() == 0


def test_without_a_policy_or_writer_nothing_is_recorded(session, small):
    from gateway.sharing import PolicyVisibility, Pseudonymizer, parse_policy

    vis = PolicyVisibility(parse_policy(MINIMUM_POLICY), session=session, app_id=1,
                           district_id=small, pseudonyms=Pseudonymizer("k", 1, small), ledger=None)
    vis.disclosed("rest", "/users", "user", [{"sourcedId": "x"}], ["u1"])
    assert session.execute(select(func.count()).select_from(LedgerEntry)).scalar_one() == 0


def test_enrollments_record_their_users_from_the_references_sent(visibility, session, small):
    vis = visibility({**MINIMUM_POLICY, "pseudonymize": ["user.sourcedId", "enrollment.sourcedId"]})
    ref = lambda sid: {"href": f"http://x/users/{sid}", "sourcedId": sid, "type": "user"}  # noqa
    sent = [vis.present("enrollment", {"sourcedId": e, "user": ref(u), "role": "student"})
            for e, u in (("e1", "u1"), ("e3", "u2"))]
    vis.disclosed("rest", "/enrollments", "enrollment", sent, ["e1", "e3"])
    assert entry_people(session, small, 1) == ["u1", "u2"]


def test_enrollments_sent_without_their_user_are_looked_up(visibility, session, small):
    vis = visibility(MINIMUM_POLICY)
    vis.disclosed("rest", "/enrollments?fields=role", "enrollment",
                  [{"role": "student"}, {"role": "teacher"}], ["e1", "e2"])
    assert entry_people(session, small, 1) == ["t-hoover", "u1"]


def test_demographics_are_recorded_against_their_student(visibility, session, small):
    vis = visibility({**MINIMUM_POLICY, "fields": {"demographics": ["sex"]}})
    sent = [vis.present("demographics", {"sourcedId": "u1", "sex": "female", "birthDate": "x"})]
    vis.disclosed("rest", "/demographics/x", "demographics", sent, ["u1"])
    entry = session.execute(select(LedgerEntry)).scalar_one()
    assert entry.fields == ["sex", "sourcedId:pseudonym"]
    assert entry_people(session, small, 1) == ["u1"]


def test_entries_chain_and_seqs_follow_each_other(session, small):
    append(session, small, 3)
    rows = session.execute(select(LedgerEntry).order_by(LedgerEntry.seq)).scalars().all()
    assert [r.seq for r in rows] == [1, 2, 3]
    assert rows[0].prev_hash == GENESIS
    assert rows[1].prev_hash == rows[0].hash and rows[2].prev_hash == rows[1].hash


def test_each_district_has_its_own_chain(session, small):
    from gateway.store.models import District

    other = District(sourced_id="d2", name="Other")
    session.add(other)
    session.flush()
    append(session, small, 2)
    append(session, other.id, 1)
    assert session.execute(select(LedgerEntry.district_id, LedgerEntry.seq).order_by(
        LedgerEntry.district_id, LedgerEntry.seq)).all() == [(small, 1), (small, 2), (other.id, 1)]
    assert verify_ledger(session, small).ok and verify_ledger(session, other.id).ok


@contextlib.contextmanager
def driver_statements(session, monkeypatch):
    """The statements the database driver runs meanwhile (through SQLAlchemy or not)."""
    seen: list[str] = []
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        driver = connection.connection.driver_connection
        driver.set_trace_callback(seen.append)
        try:
            yield seen
        finally:
            driver.set_trace_callback(None)
        return
    import psycopg

    execute = psycopg.Cursor.execute

    def traced(cursor, query, *args, **kwargs):
        seen.append(str(query))
        return execute(cursor, query, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(psycopg.Cursor, "execute", traced)
        yield seen


def test_an_append_is_four_statements_on_sqlite_and_two_on_postgresql(session, small,
                                                                     monkeypatch):
    """Once the head exists, one statement locks and reads it; then SQLite writes the entry, its
    people (one row) and the head in three, PostgreSQL in one (a round trip each)."""
    append(session, small, 1)
    with driver_statements(session, monkeypatch) as seen:
        append(session, small, 1, users=[f"u{i}" for i in range(100)])
    opening = [" ".join(statement.split()[:3]) for statement in seen]
    if session.get_bind().dialect.name == "sqlite":
        assert opening == ["UPDATE ledger_heads SET", "INSERT INTO ledger_entries",
                           "INSERT INTO ledger_pending", "UPDATE ledger_heads SET"], seen
    else:
        assert opening == ["SELECT seq, hash", "WITH entry AS"], seen
    assert len(entry_people(session, small, 2)) == 100
    assert verify_ledger(session, small).ok


def test_an_append_on_sqlite_without_returning_claims_the_head_then_reads_it(database, session,
                                                                            small, monkeypatch):
    """SQLite before 3.35 has no RETURNING: the head is claimed (the write lock taken), then
    read, in two statements."""
    if database.dialect != "sqlite":
        pytest.skip("SQLite's versions")
    from gateway.sharing import ledger

    append(session, small, 1)
    monkeypatch.setattr(session.get_bind().dialect, "server_version_info", (3, 34, 1))
    ledger._append_plan.cache_clear()
    try:
        with driver_statements(session, monkeypatch) as seen:
            append(session, small, 1)
    finally:
        ledger._append_plan.cache_clear()
    assert [" ".join(statement.split()[:3]) for statement in seen] == [
        "UPDATE ledger_heads SET", "SELECT seq, hash", "INSERT INTO ledger_entries",
        "INSERT INTO ledger_pending", "UPDATE ledger_heads SET"], seen
    assert verify_ledger(session, small).ok


# -- reading -------------------------------------------------------------------------------------

def test_student_disclosures_answers_which_apps_which_fields_and_when(session, small):
    session.add_all([App(id=1, name="Reading App", created_at=T0), App(id=2, name="Math App",
                                                                       created_at=T0)])
    session.flush()
    writer = LedgerWriter(session, app_id=1, district_id=small, clock=clock())
    writer.record(channel="rest", endpoint="/users", entity="user",
                  fields=["givenName", "sourcedId"], users=["u1", "u2"], record_count=2)
    writer.record(channel="rest", endpoint="/enrollments", entity="enrollment",
                  fields=["class", "role"], users=["u1"], record_count=1)
    other = LedgerWriter(session, app_id=2, district_id=small, clock=clock(T0 + dt.timedelta(days=1)))
    other.record(channel="lti", endpoint="launch", entity="user", fields=["familyName:initial"],
                 users=["u1"], record_count=1)
    other.record(channel="rest", endpoint="/users", entity="user", fields=["givenName"],
                 users=["u3"], record_count=1)

    found = student_disclosures(session, small, "u1")
    assert found.total == 3
    assert [(a.app_id, a.app_name, a.count, a.first, a.last, a.fields) for a in found.apps] == [
        (1, "Reading App", 2, T0, T0 + dt.timedelta(minutes=1),
         {"enrollment": ("class", "role"), "user": ("givenName", "sourcedId")}),
        (2, "Math App", 1, T0 + dt.timedelta(days=1), T0 + dt.timedelta(days=1),
         {"user": ("familyName:initial",)})]
    assert [(e.seq, e.app_id, e.channel, e.endpoint) for e in found.entries] == [
        (3, 2, "lti", "launch"), (2, 1, "rest", "/enrollments"), (1, 1, "rest", "/users")]
    assert [e.seq for e in student_disclosures(session, small, "u1", limit=1).entries] == [3]
    assert student_disclosures(session, small, "nobody").total == 0


def test_student_lookup_seeks_the_spans_and_the_pending_entries(database, session, small):
    if database.dialect != "sqlite":
        pytest.skip("EXPLAIN QUERY PLAN is SQLite's")
    compiled = student_disclosures_statement(small, "u1").compile(
        dialect=session.get_bind().dialect, compile_kwargs={"literal_binds": True})
    plan = [row[3] for row in session.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))]
    searches = [step for step in plan if step.startswith(("SEARCH", "SCAN"))]
    # No table is scanned: the person's spans by primary key, the (short) pending table of the
    # district by primary key, their entries by primary key.
    assert not [step for step in searches if step.startswith("SCAN")], plan
    assert any("ledger_spans USING PRIMARY KEY (district_id=? AND user_sourced_id=?)"
               in step for step in searches), plan
    assert any("ledger_pending USING PRIMARY KEY (district_id=?)" in step
               for step in searches), plan
    assert any("ledger_entries USING PRIMARY KEY (district_id=? AND seq=?)" in step
               for step in searches), plan


def test_lookups_see_folded_and_pending_entries_alike(session, small, monkeypatch):
    from gateway.sharing import ledger

    monkeypatch.setattr(ledger, "FOLD_EVERY", 3)
    append(session, small, 7)  # entries 1-6 folded by the appenders of 3 and 6, 7 pending
    fold = session.execute(select(LedgerFold)).scalar_one()
    assert (fold.folded_seq, fold.seal_seq) == (6, 2)
    assert session.execute(select(LedgerPending.seq)).scalars().all() == [7]
    spans = session.execute(select(LedgerSpan.user_sourced_id, LedgerSpan.count,
                                   LedgerSpan.last_seq).order_by(LedgerSpan.user_sourced_id)).all()
    assert spans == [("u1", 6, 6), ("u2", 6, 6)]
    found = student_disclosures(session, small, "u1")
    assert found.total == 7 and found.apps[0].count == 7
    # Each span lists its last entry; pending entries are listed each.
    assert [e.seq for e in found.entries] == [7, 6]
    assert fold_ledger(session, small).entries == 1
    assert [e.seq for e in student_disclosures(session, small, "u2").entries] == [7]
    assert student_disclosures(session, small, "u2").total == 7
    prune_ledger(session, small, before=T0 + dt.timedelta(minutes=5), now=T0)
    assert student_disclosures(session, small, "u1").total == 7
    assert verify_ledger(session, small).ok


# -- verifying -----------------------------------------------------------------------------------

def test_an_intact_chain_verifies(session, small):
    append(session, small, 5)
    result = verify_ledger(session, small)
    assert result.ok and result.problems == ()
    assert (result.entries, result.first_seq, result.last_seq, result.head_seq) == (5, 1, 5, 5)
    head = session.execute(select(LedgerHead.hash)).scalar_one()
    assert result.head_hash == head


def test_an_empty_ledger_verifies(session, small):
    result = verify_ledger(session, small)
    assert result.ok and result.entries == 0 and result.head_hash == GENESIS


def test_an_edited_entry_is_found(session, small):
    append(session, small, 5)
    session.execute(update(LedgerEntry).where(LedgerEntry.seq == 3).values(app_id=99))
    result = verify_ledger(session, small)
    assert kinds(result) == [(3, "edited")]
    assert result.problems[0].message == ("entry 3 was edited: its content does not match its "
                                          "hash")


def test_an_edited_field_list_or_time_is_found(session, small):
    append(session, small, 4)
    session.execute(update(LedgerEntry).where(LedgerEntry.seq == 2).values(fields=["givenName"]))
    session.execute(update(LedgerEntry).where(LedgerEntry.seq == 4).values(
        disclosed_at=T0 + dt.timedelta(days=3)))
    assert kinds(verify_ledger(session, small)) == [(2, "edited"), (4, "edited")]


def test_a_student_removed_from_an_entry_is_found(session, small):
    append(session, small, 3)
    session.execute(update(LedgerPending).where(LedgerPending.seq == 2).values(people='["u2"]'))
    assert kinds(verify_ledger(session, small)) == [(2, "edited")]


def test_an_edit_with_a_recomputed_hash_breaks_the_link(session, small):
    append(session, small, 4)
    row = session.execute(select(LedgerEntry).where(LedgerEntry.seq == 2)).scalar_one()
    forged = entry_hash(prev_hash=row.prev_hash, district_id=small, app_id=99, channel=row.channel,
                        endpoint=row.endpoint, disclosed_at=row.disclosed_at, entity=row.entity,
                        fields=row.fields, record_count=row.record_count, users=["u1", "u2"])
    session.execute(update(LedgerEntry).where(LedgerEntry.seq == 2).values(app_id=99, hash=forged))
    result = verify_ledger(session, small)
    assert kinds(result) == [(3, "unlinked")]
    assert result.problems[0].message.startswith("entry 3 does not follow entry 2")


def test_a_removed_entry_is_found(session, small):
    append(session, small, 5)
    session.execute(delete(LedgerPending).where(LedgerPending.seq == 3))
    session.execute(delete(LedgerEntry).where(LedgerEntry.seq == 3))
    result = verify_ledger(session, small)
    assert kinds(result) == [(4, "missing")]
    assert result.problems[0].message == "entry 3 is missing (removed before entry 4)"


def test_a_removed_entry_hidden_by_renumbering_is_found(session, small):
    append(session, small, 5)
    session.execute(delete(LedgerPending).where(LedgerPending.seq == 3))
    session.execute(delete(LedgerEntry).where(LedgerEntry.seq == 3))
    for seq in (4, 5):
        session.execute(update(LedgerPending).where(LedgerPending.seq == seq).values(seq=seq - 1))
        session.execute(update(LedgerEntry).where(LedgerEntry.seq == seq).values(seq=seq - 1))
    session.execute(update(LedgerHead).values(seq=4))
    assert kinds(verify_ledger(session, small)) == [(3, "unlinked")]


def test_removed_entries_at_the_end_are_found(session, small):
    append(session, small, 5)
    session.execute(delete(LedgerPending).where(LedgerPending.seq >= 4))
    session.execute(delete(LedgerEntry).where(LedgerEntry.seq >= 4))
    result = verify_ledger(session, small)
    assert kinds(result) == [(5, "head")]
    assert result.problems[0].message == ("the chain ends at entry 3 but its head records entry "
                                          "5: entries at the end were removed")


def test_reordered_entries_are_found(session, small):
    append(session, small, 6)
    # Swap entries 3 and 4 whole: every column, their users included.
    for table in (LedgerEntry, LedgerPending):
        session.execute(update(table).where(table.seq == 3).values(seq=-3))
        session.execute(update(table).where(table.seq == 4).values(seq=3))
        session.execute(update(table).where(table.seq == -3).values(seq=4))
    result = verify_ledger(session, small)
    assert kinds(result) == [(3, "unlinked"), (4, "reordered"), (5, "reordered")]
    assert result.problems[1].message == ("entry 4 follows entry 2 instead of entry 3: entries "
                                          "were reordered")


def test_users_recorded_for_no_entry_are_found(session, small):
    append(session, small, 2)
    session.add(LedgerPending(district_id=small, seq=9, people='["u4"]'))
    session.flush()
    assert kinds(verify_ledger(session, small)) == [(None, "orphan")]


def test_verify_reads_in_batches(session, small, monkeypatch):
    from gateway.sharing import ledger

    monkeypatch.setattr(ledger, "VERIFY_BATCH", 2)
    append(session, small, 7)
    assert verify_ledger(session, small).ok
    session.execute(update(LedgerEntry).where(LedgerEntry.seq == 6).values(endpoint="/x"))
    assert kinds(verify_ledger(session, small)) == [(6, "edited")]


# -- pruning -------------------------------------------------------------------------------------

def test_pruning_removes_a_prefix_and_keeps_the_chain_verifiable(session, small):
    append(session, small, 6, start=T0)  # T0 .. T0+5min
    cutoff = T0 + dt.timedelta(minutes=3)
    pruning = prune_ledger(session, small, before=cutoff, now=T0 + dt.timedelta(days=1))
    assert (pruning.entries, pruning.checkpoint_seq) == (3, 3)
    assert session.execute(select(LedgerEntry.seq).order_by(LedgerEntry.seq)).scalars().all() == [
        4, 5, 6]
    # The people of the pruned entries were folded first: the spans still count them all.
    assert session.execute(select(func.min(LedgerPending.seq))).scalar_one() is None
    assert student_disclosures(session, small, "u1").total == 6
    checkpoint = session.execute(select(LedgerCheckpoint)).scalar_one()
    assert (checkpoint.seq, checkpoint.entry_count, checkpoint.cutoff) == (3, 3, cutoff)
    result = verify_ledger(session, small)
    assert result.ok and (result.entries, result.first_seq, result.checkpoint_seq) == (3, 4, 3)
    # The chain goes on after pruning, and a later pruning builds on the first.
    append(session, small, 2, start=T0 + dt.timedelta(hours=1))
    assert verify_ledger(session, small).ok
    prune_ledger(session, small, before=T0 + dt.timedelta(hours=2), now=T0 + dt.timedelta(days=2))
    result = verify_ledger(session, small)
    assert result.ok and result.entries == 0 and result.checkpoint_seq == 8


def test_pruning_nothing_old_changes_nothing(session, small):
    append(session, small, 3)
    assert prune_ledger(session, small, before=T0, now=T0).entries == 0
    assert session.execute(select(func.count()).select_from(LedgerCheckpoint)).scalar_one() == 0
    assert prune_ledger(session, small + 5, before=T0, now=T0).entries == 0


def test_after_pruning_a_removed_first_entry_is_still_found(session, small):
    append(session, small, 6)
    prune_ledger(session, small, before=T0 + dt.timedelta(minutes=2), now=T0)
    session.execute(delete(LedgerPending).where(LedgerPending.seq == 3))
    session.execute(delete(LedgerEntry).where(LedgerEntry.seq == 3))
    assert kinds(verify_ledger(session, small)) == [(4, "missing")]


def test_a_forged_checkpoint_does_not_hide_a_pruned_entry_edit(session, small):
    append(session, small, 4)
    prune_ledger(session, small, before=T0 + dt.timedelta(minutes=2), now=T0)
    session.execute(update(LedgerCheckpoint).values(hash="f" * 64))
    assert kinds(verify_ledger(session, small)) == [(3, "unlinked")]


def test_concurrent_appends_never_fork_the_chain(database, small):
    if database.dialect != "postgresql":
        pytest.skip("SQLite has a single writer: appends cannot interleave there")
    import threading

    errors: list[BaseException] = []

    def worker(app_id: int) -> None:
        try:
            for i in range(10):
                with database.session_scope() as session:
                    record_disclosure(session, app_id=app_id, district_id=small, channel="rest",
                                      endpoint=f"/users/{i}", entity="user", fields=["givenName"],
                                      users=[f"u{app_id}"], record_count=1, now=T0)
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(1, 5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with database.session_scope() as session:
        assert session.execute(select(LedgerEntry.seq).order_by(LedgerEntry.seq)).scalars().all() \
            == list(range(1, 41))
        assert verify_ledger(session, small).ok
