"""Gradebook writes in the change feed, from the outside: a line item, result, category or score
scale written through the gradebook service is an event that each app sees only when the record
is in its gradebook scope (line items by class, results by class and student, as the gradebook
service decides) and it holds a gradebook scope; result events are in the ledger."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from gateway.oneroster.vocabulary import ROSTERING_SCOPES, SCOPE_GRADEBOOK_CORE
from gateway.sharing.ledger import entry_people
from gateway.store.sharing import LedgerEntry

from bundles import gradebook_district
from gradebook_api import ALL_SCOPES, GradebookApi
from rostering_api import Api
from test_events_feed import K2_ONLY, all_events, feed, head
from test_gradebook_service import line_item, result


@pytest.fixture
def district(load_small):
    load_small()


def gradebook_events(api: Api, after: str) -> list[tuple[str, str, str]]:
    """The (entity, sourcedId, type) of the app's events after ``after``."""
    return [(e["entity"], e["sourcedId"], e["type"]) for e in all_events(api, after)[0]]


def test_gradebook_writes_are_events_seen_by_the_apps_whose_scope_holds_them(
        district, client, make_token):
    writer_token = make_token("d1", ALL_SCOPES)
    writer = GradebookApi(client, writer_token)
    k2 = Api(client, make_token("d1", ALL_SCOPES, dict(K2_ONLY, pseudonymize=["user.sourcedId"])))
    k1 = Api(client, make_token("d1", ALL_SCOPES, {"schools": ["s1"], "classes": ["k1"]}))
    roster_only = Api(client, make_token("d1", ROSTERING_SCOPES))
    starts = {name: head(api) for name, api in
              (("writer", Api(client, writer_token)), ("k2", k2), ("k1", k1),
               ("roster", roster_only))}

    assert writer.put("/lineItems/li", line_item("k2")).status_code == 201
    assert writer.put("/results/r2", result("li", "u2")).status_code == 201
    assert writer.put("/results/r2", result("li", "u2", score=10)).status_code == 201
    posted = writer.post("/lineItems/li/results", {"results": [
        dict(result("li", "u3")["result"], sourcedId="r3")]})
    assert posted.get_json() == {"sourcedIdPairs": [{"suppliedSourcedId": "r3",
                                                     "allocatedSourcedId": "r3"}]}
    assert writer.put("/scoreScales/ss", {"scoreScale": {
        "title": "Letters", "type": "letter", "class": {"sourcedId": "k2"},
        "scoreScaleValue": [{"itemValueLHS": "A", "itemValueRHS": "90"}]}}).status_code == 201
    assert writer.put("/categories/cat", {"category": {"title": "Homework"}}).status_code == 201
    assert writer.put("/assessmentLineItems/ali", {"assessmentLineItem": {
        "title": "Unit test", "class": {"sourcedId": "k2"}}}).status_code == 201
    assert writer.put("/assessmentResults/ar", {"assessmentResult": {
        "assessmentLineItem": {"sourcedId": "ali"}, "student": {"sourcedId": "u2"}, "score": 41,
        "scoreDate": "2027-02-01", "scoreStatus": "fully graded"}}).status_code == 201
    assert writer.delete("/lineItems/li").status_code == 204

    written = [("lineItem", "li", "created"), ("result", "r2", "created"),
               ("result", "r2", "updated"), ("result", "r3", "created"),
               ("scoreScale", "ss", "created"), ("category", "cat", "created"),
               ("assessmentLineItem", "ali", "created"), ("assessmentResult", "ar", "created"),
               ("lineItem", "li", "deleted")]
    # The line item's results are deleted with it, each an event.
    deleted_results = [("result", "r2", "deleted"), ("result", "r3", "deleted")]

    def as_written(events):
        return events[:-2] + sorted(events[-2:])
    assert as_written(gradebook_events(Api(client, writer_token), starts["writer"])) == (
        written + deleted_results)
    # k2's app sees all of it, the gradebook's own ids as the gradebook service shows them.
    assert as_written(gradebook_events(k2, starts["k2"])) == written + deleted_results
    assert GradebookApi(client, k2.token).get("/results/r2").status_code == 200
    # k1's app sees only the district's category (of no class); an app without a gradebook
    # scope sees none of it.
    assert gradebook_events(k1, starts["k1"]) == [("category", "cat", "created")]
    assert gradebook_events(roster_only, starts["roster"]) == []


def test_a_result_event_is_hidden_once_its_student_leaves_the_app_s_scope(
        district, client, make_token, load_small):
    writer = GradebookApi(client, make_token("d1", ALL_SCOPES))
    k2 = Api(client, make_token("d1", ALL_SCOPES, K2_ONLY))
    start = head(k2)
    assert writer.put("/lineItems/li", line_item("k2")).status_code == 201
    assert writer.put("/results/r2", result("li", "u2")).status_code == 201
    assert writer.put("/results/r3", result("li", "u3")).status_code == 201

    def unenroll_u3(rows):
        rows["enrollments"] = [e for e in rows["enrollments"] if e["userSourcedId"] != "u3"]
    load_small(unenroll_u3)
    # The class is still k2's, the student no longer in its scope: the same rule as REST.
    assert [r["sourcedId"] for r in GradebookApi(client, k2.token).records("/results")] == ["r2"]
    events = [(entity, sid) for entity, sid, _ in gradebook_events(k2, start)
              if entity in ("lineItem", "result")]
    assert events == [("lineItem", "li"), ("result", "r2")]


def test_a_gradebook_only_token_reads_the_feed_of_its_gradebook(district, client, make_token):
    writer = GradebookApi(client, make_token("d1", ALL_SCOPES))
    reader = Api(client, make_token("d1", [SCOPE_GRADEBOOK_CORE]))
    response = feed(reader)
    assert response.status_code == 200, response.get_json()
    # The import's roster events are not its to see.
    assert response.get_json()["events"] == []
    start = response.get_json()["next"]
    assert writer.put("/lineItems/li", line_item("k1")).status_code == 201
    assert gradebook_events(reader, start) == [("lineItem", "li", "created")]


def test_result_events_are_in_the_ledger_with_their_students(district, client, make_token,
                                                            database):
    writer = GradebookApi(client, make_token("d1", ALL_SCOPES))
    reader = Api(client, make_token("d1", ALL_SCOPES, K2_ONLY))
    start = head(reader)
    assert writer.put("/lineItems/li", line_item("k2")).status_code == 201
    assert writer.put("/results/r3", result("li", "u3")).status_code == 201
    with database.session_scope() as session:
        before = session.execute(select(LedgerEntry.seq).order_by(
            LedgerEntry.seq.desc())).scalars().first() or 0
    assert len(feed(reader, start).get_json()["events"]) == 2
    with database.session_scope() as session:
        entries = [(entry.channel, entry.endpoint, entry.entity, entry.record_count,
                    entry_people(session, entry.district_id, entry.seq))
                   for entry in session.execute(select(LedgerEntry).where(
                       LedgerEntry.seq > before).order_by(LedgerEntry.seq)).scalars()]
    assert entries == [("events", "/events", "result", 1, ["u3"])]


def test_an_app_sees_the_gradebook_an_import_brings_in_its_own_scope_only(
        load_small, client, make_token):
    # The small district's rows plus a gradebook: line items of k1 and k2, results of u1 (k1)
    # and u2, u3 (k2).
    load_small(lambda rows: rows.update({name: value for name, value in gradebook_district().items()
                                         if name in ("categories", "scoreScales", "lineItems",
                                                     "results")}))
    scopes = ALL_SCOPES
    everything = Api(client, make_token("d1", scopes))
    k1 = Api(client, make_token("d1", scopes, {"schools": ["s1"], "classes": ["k1"]}))
    roster_only = Api(client, make_token("d1", ROSTERING_SCOPES))

    def seen(api: Api) -> set[tuple[str, str, str]]:
        return {event for event in gradebook_events(api, "0")
                if event[0] in ("lineItem", "result")}
    assert seen(everything) == {("lineItem", "li-m1", "created"), ("lineItem", "li-b1", "created"),
                                ("lineItem", "li-b2", "created"), ("result", "res-1", "created"),
                                ("result", "res-2", "created"), ("result", "res-3", "created")}
    assert seen(k1) == {("lineItem", "li-m1", "created"), ("result", "res-1", "created")}
    assert seen(roster_only) == set()
