"""The ledger at state scale: entries carry a digest of their people, folds move the people into
per-person spans and seal them. Spans stay exact whatever appends and folds run at once in
several processes; tampering with an entry, a digest, pending people, a span, a plan, a seal or
the fold head is found by ``verify``; ``student_disclosures`` answers per app and field plan."""
from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import threading
from collections import defaultdict
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select, update

from gateway.sharing import ledger
from gateway.sharing.ledger import (GENESIS, fold_ledger, fold_head, ledger_head,
                                    record_disclosure, student_disclosures, verify_ledger)
from gateway.store.apps import App
from gateway.store.sharing import (LedgerEntry, LedgerFold, LedgerPending, LedgerPlan, LedgerSeal,
                                   LedgerSpan)

T0 = dt.datetime(2026, 9, 1, 8, 0, 0)
PLANS = (("user", ["givenName", "sourcedId:pseudonym"]),
         ("enrollment", ["class", "role", "user:pseudonym"]))
ROOT = Path(__file__).resolve().parents[2]


def kinds(result) -> list[tuple[int | None, str]]:
    return [(p.seq, p.kind) for p in result.problems]


def disclose(session, district_id: int, app_id: int, plan: int, users, at: dt.datetime) -> int:
    entity, fields = PLANS[plan]
    return record_disclosure(session, app_id=app_id, district_id=district_id, channel="rest",
                             endpoint=f"/{entity}", entity=entity, fields=fields, users=users,
                             record_count=len(users), now=at)


def expected_spans(appended) -> dict[tuple[str, int, str], tuple[int, dt.datetime, dt.datetime]]:
    """(person, app, entity) -> (count, first, last) from what was appended."""
    spans: dict = {}
    for app_id, plan, users, at in appended:
        for user in set(users):
            key = (user, app_id, PLANS[plan][0])
            count, first, last = spans.get(key, (0, at, at))
            spans[key] = (count + 1, min(first, at), max(last, at))
    return spans


def answered_spans(session, district_id: int, people) -> dict:
    found = {}
    for person in people:
        for app in student_disclosures(session, district_id, person).apps:
            for plan in app.plans:
                found[(person, app.app_id, plan.entity)] = (plan.count, plan.first, plan.last)
    return found


@pytest.fixture
def folding_often(monkeypatch):
    monkeypatch.setattr(ledger, "FOLD_EVERY", 4)


# -- folding -------------------------------------------------------------------------------------

def test_a_fold_moves_pending_people_into_spans_and_seals_them(session, small, folding_often):
    appended = []
    for i in range(10):
        users = ["u1", "u2"] if i % 2 else ["u1", "u3"]
        at = T0 + dt.timedelta(minutes=i)
        disclose(session, small, 1 + i % 2, i % 2, users, at)
        appended.append((1 + i % 2, i % 2, users, at))
    # Folded by the appenders of 4 and 8; 9 and 10 wait.
    assert session.execute(select(LedgerPending.seq).order_by(LedgerPending.seq)).scalars().all() \
        == [9, 10]
    seals = session.execute(select(LedgerSeal).order_by(LedgerSeal.seq)).scalars().all()
    assert [(s.seq, s.from_seq, s.to_seq, s.people) for s in seals] == [(1, 1, 4, 8), (2, 5, 8, 8)]
    assert seals[1].prev_hash == seals[0].hash
    entry_8 = session.execute(select(LedgerEntry.hash).where(LedgerEntry.seq == 8)).scalar_one()
    assert seals[1].entry_hash == entry_8
    assert answered_spans(session, small, ["u1", "u2", "u3"]) == expected_spans(appended)
    # Spans grow with people x apps x plans: 10 entries, 4 spans.
    assert session.execute(select(func.count()).select_from(LedgerSpan)).scalar_one() == 4
    fold = fold_ledger(session, small, now=T0)
    assert (fold.entries, fold.people, fold.spans, fold.seal_seq) == (2, 4, 4, 3)
    assert fold_ledger(session, small).entries == 0  # nothing pending: no seal
    assert answered_spans(session, small, ["u1", "u2", "u3"]) == expected_spans(appended)
    result = verify_ledger(session, small)
    assert result.ok, result.problems
    assert (result.seals, result.spans, result.folded_seq) == (3, 4, 10)
    assert (result.seal_seq, result.seal_hash) == fold_head(session, small)
    assert (result.head_seq, result.head_hash) == ledger_head(session, small) != (0, GENESIS)


@pytest.mark.parametrize("times", ["in seq order", "out of seq order"])
def test_a_fold_counts_first_last_and_last_seq_whatever_the_order_of_times(session, small, times):
    """Appenders on hosts whose clocks differ append entries whose times do not follow their
    seqs: the fold's fast path (times in order) and its plain loop must agree on every span."""
    minutes = list(range(12)) if times == "in seq order" else [5, 1, 9, 0, 11, 3, 7, 2, 10, 4, 8, 6]
    appended, seqs = [], {}
    for i, minute in enumerate(minutes):
        users = [["u1", "u2"], ["u2", "u3"], ["u1"]][i % 3]
        at = T0 + dt.timedelta(minutes=minute)
        seq = disclose(session, small, 1 + i % 2, 0, users, at)
        appended.append((1 + i % 2, 0, users, at))
        for user in users:
            seqs[(user, 1 + i % 2)] = seq
    fold = fold_ledger(session, small, now=T0)
    assert (fold.entries, fold.people) == (12, sum(len(users) for _, _, users, _ in appended))
    assert answered_spans(session, small, ["u1", "u2", "u3"]) == expected_spans(appended)
    spans = session.execute(select(LedgerSpan.user_sourced_id, LedgerSpan.app_id,
                                   LedgerSpan.last_seq)).all()
    assert {(user, app_id): last for user, app_id, last in spans} == seqs
    assert verify_ledger(session, small).ok


def test_student_lookup_answers_per_app_and_field_plan(session, small, folding_often):
    session.add_all([App(id=1, name="Reading App", created_at=T0),
                     App(id=2, name="Math App", created_at=T0)])
    session.flush()
    day = dt.timedelta(days=1)
    disclose(session, small, 1, 0, ["u1", "u2"], T0)
    disclose(session, small, 1, 1, ["u1"], T0 + day)
    disclose(session, small, 1, 0, ["u1"], T0 + 2 * day)
    disclose(session, small, 2, 0, ["u1", "u3"], T0 + 3 * day)  # the 4th: folds 1-4
    disclose(session, small, 1, 0, ["u1"], T0 + 4 * day)  # pending
    found = student_disclosures(session, small, "u1")
    assert found.total == 5
    assert [(a.app_id, a.app_name, a.count, a.first, a.last) for a in found.apps] == [
        (1, "Reading App", 4, T0, T0 + 4 * day), (2, "Math App", 1, T0 + 3 * day, T0 + 3 * day)]
    assert [(p.entity, p.fields, p.count, p.first, p.last) for p in found.apps[0].plans] == [
        ("enrollment", ("class", "role", "user:pseudonym"), 1, T0 + day, T0 + day),
        ("user", ("givenName", "sourcedId:pseudonym"), 3, T0, T0 + 4 * day)]
    assert found.apps[0].fields == {"enrollment": ("class", "role", "user:pseudonym"),
                                    "user": ("givenName", "sourcedId:pseudonym")}
    # The newest entries: the pending one, then each span's last.
    assert [e.seq for e in found.entries] == [5, 4, 3, 2]
    u2 = student_disclosures(session, small, "u2")
    assert (u2.total, u2.apps[0].count, [e.seq for e in u2.entries]) == (1, 1, [1])
    assert student_disclosures(session, small, "u").total == 0  # a prefix of an id is no match


def test_a_person_whose_id_needs_escaping_is_found_exactly(session, small):
    odd = ['a"b', "50%_x", "back\\slash"]
    disclose(session, small, 1, 0, odd + ["50%"], T0)
    for person in odd:
        assert student_disclosures(session, small, person).total == 1
    assert student_disclosures(session, small, "50%_").total == 0
    fold_ledger(session, small)
    for person in odd:
        assert student_disclosures(session, small, person).total == 1
    assert verify_ledger(session, small).ok


# -- tampering -----------------------------------------------------------------------------------

@pytest.fixture
def folded(session, small, folding_often):
    """Ten entries: 1-8 folded under two seals, 9-10 pending."""
    for i in range(10):
        disclose(session, small, 1 + i % 2, i % 2, ["u1", "u2"] if i % 3 else ["u3"],
                 T0 + dt.timedelta(minutes=i))
    assert verify_ledger(session, small).ok
    return small


def test_an_edited_folded_entry_is_found(session, folded):
    session.execute(update(LedgerEntry).where(LedgerEntry.seq == 3).values(app_id=7))
    assert kinds(verify_ledger(session, folded)) == [(3, "edited")]


def test_an_edited_digest_is_found(session, folded):
    session.execute(update(LedgerEntry).where(LedgerEntry.seq == 5).values(
        people_digest=ledger.people_digest(["u1"])))
    assert kinds(verify_ledger(session, folded)) == [(5, "edited")]


def test_edited_or_removed_pending_people_are_found_and_not_folded(session, folded):
    session.execute(update(LedgerPending).where(LedgerPending.seq == 9).values(people='["u1"]'))
    result = verify_ledger(session, folded)
    assert kinds(result) == [(9, "edited")]
    assert result.problems[0].message == ("the people of entry 9 were edited: they do not match "
                                          "its digest")
    # Folding them would erase the evidence: the fold stops before.
    fold = fold_ledger(session, folded)
    assert fold.entries == 0
    assert fold.stopped == "the people recorded for entry 9 do not match its digest"
    session.execute(delete(LedgerPending).where(LedgerPending.seq == 10))
    assert kinds(verify_ledger(session, folded)) == [(9, "edited"), (10, "edited")]


def test_an_edited_span_is_found(session, folded):
    session.execute(update(LedgerSpan).where(LedgerSpan.user_sourced_id == "u3",
                                             LedgerSpan.app_id == 1).values(
        count=LedgerSpan.count - 1))
    result = verify_ledger(session, folded)
    assert kinds(result) == [(None, "span")]
    assert result.problems[0].message.startswith("the 6 spans do not match seal 2:")


def test_a_removed_or_added_span_is_found(session, folded):
    session.execute(delete(LedgerSpan).where(LedgerSpan.user_sourced_id == "u3"))
    assert kinds(verify_ledger(session, folded)) == [(None, "span")]
    session.rollback()
    session.add(LedgerSpan(district_id=folded, user_sourced_id="u4", app_id=1, plan_id=1,
                           first_at=T0, last_at=T0, count=1, last_seq=2))
    session.flush()
    assert kinds(verify_ledger(session, folded)) == [(None, "span")]


def test_an_edited_field_plan_is_found(session, folded):
    session.execute(update(LedgerPlan).where(LedgerPlan.entity == "user").values(
        fields='["givenName"]'))
    assert kinds(verify_ledger(session, folded)) == [(None, "span")]


def test_an_edited_seal_is_found(session, folded):
    session.execute(update(LedgerSeal).where(LedgerSeal.seq == 1).values(people=1))
    result = verify_ledger(session, folded)
    assert kinds(result) == [(None, "seal")]
    assert result.problems[0].message == ("seal 1 was edited: its content does not match its "
                                          "hash")


def test_a_rewritten_seal_chain_is_found_against_the_fold_head(session, folded):
    session.execute(delete(LedgerSeal).where(LedgerSeal.seq == 2))
    result = verify_ledger(session, folded)
    assert (None, "seal") in kinds(result)
    assert any("the fold head records seal 2" in p.message for p in result.problems)


def test_an_edited_fold_head_is_found(session, folded):
    session.execute(update(LedgerFold).values(accumulator=ledger.EMPTY_SET))
    assert kinds(verify_ledger(session, folded)) == [(None, "seal"), (None, "span")]


def test_spans_rewritten_with_a_matching_fold_head_still_break_the_seal(session, folded):
    """Whoever edits a span and recomputes the set hash in the fold head still has the last
    seal against them (it is hashed and chained)."""
    session.execute(update(LedgerSpan).where(LedgerSpan.user_sourced_id == "u3").values(count=9))
    total = 0
    for row in session.execute(select(LedgerSpan, LedgerPlan).join(
            LedgerPlan, LedgerPlan.id == LedgerSpan.plan_id)).all():
        span, plan = row
        total += ledger.span_element(ledger.span_line(
            folded, span.user_sourced_id, span.app_id, plan.entity, plan.fields, span.first_at,
            span.last_at, span.count, span.last_seq))
    session.execute(update(LedgerFold).values(accumulator=ledger.set_hash_hex(total)))
    assert kinds(verify_ledger(session, folded)) == [(None, "seal")]


# -- concurrency ---------------------------------------------------------------------------------

APPENDER = """
import datetime as dt, json, random, sys
from gateway.sharing import ledger
from gateway.store import Database
url, district, worker, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
ledger.FOLD_EVERY = 7
PLANS = %r
database = Database(url)
rng = random.Random(worker)
done = []
for i in range(count):
    app_id, plan = 1 + rng.randrange(3), rng.randrange(2)
    users = rng.sample(["u%%d" %% n for n in range(12)], rng.randint(1, 5))
    at = dt.datetime(2026, 9, 1, 8) + dt.timedelta(seconds=rng.randrange(100000))
    for attempt in range(50):
        try:
            with database.session_scope() as session:
                ledger.record_disclosure(session, app_id=app_id, district_id=district,
                                         channel="rest", endpoint="/x", entity=PLANS[plan][0],
                                         fields=PLANS[plan][1], users=users,
                                         record_count=len(users), now=at)
            break
        except Exception as error:  # SQLite: "database is locked" past the busy timeout
            if "locked" not in str(error) or attempt == 49:
                raise
    done.append([app_id, plan, users, at.isoformat()])
print(json.dumps(done))
"""

FOLDER = """
import sys, time
from gateway.sharing import ledger
from gateway.store import Database
url, district, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
database = Database(url)
for _ in range(rounds):
    try:
        with database.session_scope() as session:
            ledger.fold_ledger(session, district, limit=5)
    except Exception as error:
        if "locked" not in str(error):
            raise
    time.sleep(0.01)
"""


def test_spans_are_exact_after_concurrent_appends_and_folds_from_several_processes(database,
                                                                                  small):
    code = APPENDER % (PLANS,)
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    appenders = [subprocess.Popen([sys.executable, "-c", code, database.url, str(small),
                                   str(worker), "40"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
                 for worker in range(3)]
    folder = subprocess.Popen([sys.executable, "-c", FOLDER, database.url, str(small), "60"],
                              stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    appended = []
    for process in appenders:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        appended += [(a, p, u, dt.datetime.fromisoformat(t)) for a, p, u, t in json.loads(out)]
    _, err = folder.communicate(timeout=300)
    assert folder.returncode == 0, err
    assert len(appended) == 120
    with database.session_scope() as session:
        expected = expected_spans(appended)
        people = sorted({key[0] for key in expected})
        assert answered_spans(session, small, people) == expected
        seals = session.execute(select(func.count()).select_from(LedgerSeal)).scalar_one()
        assert seals > 1  # appenders and the folder both folded
        fold_ledger(session, small)
        assert answered_spans(session, small, people) == expected
        result = verify_ledger(session, small)
        assert result.ok, result.problems
        assert result.entries == 120
        # Every person-disclosure is counted once, whichever process folded it.
        assert session.execute(select(func.sum(LedgerSpan.count))).scalar_one() == sum(
            len(set(users)) for _, _, users, _ in appended)


def test_a_second_folder_skips_or_waits_for_the_first(database, small):
    if database.dialect != "postgresql":
        pytest.skip("SQLite has one writer at a time: a second fold waits for the ledger's lock")
    with database.session_scope() as session:
        for i in range(6):
            disclose(session, small, 1, 0, ["u1", "u2"], T0 + dt.timedelta(minutes=i))
    first = database.sessionmaker()
    try:
        assert fold_ledger(first, small, limit=3).entries == 3  # holds the fold row
        with database.session_scope() as session:
            skipped = fold_ledger(session, small, wait=False)
            assert (skipped.entries, skipped.stopped) == (0, "another fold is running")
            # Appends go on meanwhile: the fold never holds the chain's head.
            disclose(session, small, 1, 0, ["u1"], T0 + dt.timedelta(hours=1))
        waited: list = []
        second = threading.Thread(target=lambda: waited.append(_fold_in_own_session(database,
                                                                                    small)))
        second.start()
        second.join(0.5)
        assert second.is_alive()  # waiting for the first fold's lock
        first.commit()
        second.join(30)
        assert waited and waited[0].entries == 4  # 4-6 and the new 7: nothing folded twice
    finally:
        first.close()
    with database.session_scope() as session:
        assert student_disclosures(session, small, "u1").total == 7
        assert verify_ledger(session, small).ok


def _fold_in_own_session(database, district_id: int):
    with database.session_scope() as session:
        return fold_ledger(session, district_id)


# -- the commands --------------------------------------------------------------------------------

def test_ledger_fold_and_verify_commands(runner, database, small):
    from gateway.cli import cli

    with database.session_scope() as session:
        for i in range(3):
            disclose(session, small, 1, 0, ["u1", "u2"], T0 + dt.timedelta(minutes=i))
    result = runner.invoke(cli, ["ledger", "fold"])
    assert result.exit_code == 0, result.output
    assert result.output == ("district d1: folded 3 entries (6 person-disclosures) under seal(s) "
                             "1 to 1\n")
    assert runner.invoke(cli, ["ledger", "fold"]).output == "district d1: nothing pending\n"
    result = runner.invoke(cli, ["ledger", "verify"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("district d1: 3 entries, chain intact; head 3 ")
    assert lines[1].startswith("  2 spans match 1 seal(s), folded to entry 3; seal head 1 ")
    body = json.loads(runner.invoke(cli, ["ledger", "student", "u1", "--json"]).stdout)
    assert body["total"] == 3
    assert body["apps"][0]["plans"] == [{"entity": "user", "fields": PLANS[0][1],
                                         "disclosures": 3, "first": "2026-09-01T08:00:00Z",
                                         "last": "2026-09-01T08:02:00Z"}]
    with database.session_scope() as session:
        session.execute(update(LedgerSpan).where(LedgerSpan.user_sourced_id == "u2").values(
            count=1))
    result = runner.invoke(cli, ["ledger", "verify", "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)[0]["problems"][0]["kind"] == "span"
