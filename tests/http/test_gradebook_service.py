"""The gradebook service's answers beyond the happy path: tokens and scopes, 404/422/400 bodies,
POSTed sets, paging and queries, DELETE, and the privacy boundary from the outside (an app reads
and writes grades only in its classes and of its students, by any path, pseudonyms included;
every read of results is in the ledger)."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from gateway.oneroster.vocabulary import (ROSTERING_SCOPES, SCOPE_GRADEBOOK,
                                          SCOPE_GRADEBOOK_CORE)
from gateway.sharing.ledger import entry_people
from gateway.store.sharing import LedgerEntry

from gradebook_api import ALL_SCOPES, SERVICE, GradebookApi, ref
from rostering_api import Api, error_body

K2_ONLY = {"schools": ["s2"], "classes": ["k2"]}


def line_item(class_id: str, title: str = "Essay", **more) -> dict:
    """A line item body of ``class_id``."""
    return {"lineItem": {"title": title, "class": ref(class_id),
                         "assignDate": "2027-01-10T08:00:00Z", "dueDate": "2027-01-17T08:00:00Z",
                         **more}}


def result(line_item_id: str, student: str, **more) -> dict:
    """A graded result body."""
    return {"result": {"lineItem": ref(line_item_id), "student": ref(student),
                       "scoreStatus": "fully graded", "score": 9, "scoreDate": "2027-01-18",
                       **more}}


@pytest.fixture
def district(load_small):
    load_small()


@pytest.fixture
def gradebook(district, client, make_token):
    """An app of d1 sharing everything, with every rostering and gradebook scope."""
    return GradebookApi(client, make_token("d1", ALL_SCOPES))


def ledger(database) -> list[tuple[str, str, int, list[str]]]:
    """The ledger's entries: endpoint, entity, record count, the people."""
    with database.session_scope() as session:
        return [(entry.endpoint, entry.entity, entry.record_count,
                 entry_people(session, entry.district_id, entry.seq))
                for entry in session.execute(select(LedgerEntry).order_by(LedgerEntry.seq)).scalars()]


# ------------------------------------------------------------------------- tokens and scopes

def test_no_token_is_401_and_a_rostering_token_is_403(district, client, make_token):
    anonymous = GradebookApi(client, None)
    response = anonymous.get("/lineItems")
    assert response.status_code == 401
    assert response.get_json()["imsx_CodeMinor"]["imsx_codeMinorField"][0][
        "imsx_codeMinorFieldValue"] == "unauthorisedrequest"
    roster_only = GradebookApi(client, make_token("d1", ROSTERING_SCOPES))
    for response in (roster_only.get("/lineItems"), roster_only.put("/lineItems/x", line_item("k1")),
                     roster_only.delete("/lineItems/x")):
        assert response.status_code == 403, response.get_json()
        assert response.get_json()["imsx_CodeMinor"]["imsx_codeMinorField"][0][
            "imsx_codeMinorFieldValue"] == "forbidden"


def test_a_read_only_token_reads_but_does_not_write(district, client, make_token):
    core = GradebookApi(client, make_token("d1", [SCOPE_GRADEBOOK_CORE]))
    assert core.get("/lineItems").status_code == 200
    # gradebook-core.readonly covers the top-level reads only; nested reads need gradebook.readonly.
    assert core.get("/classes/k1/lineItems").status_code == 403
    reader = GradebookApi(client, make_token("d1", [SCOPE_GRADEBOOK]))
    assert reader.get("/classes/k1/lineItems").status_code == 200
    assert reader.put("/lineItems/x", line_item("k1")).status_code == 403
    assert reader.post("/classes/k1/lineItems", {"lineItems": []}).status_code == 403
    assert reader.delete("/lineItems/x").status_code == 403


def test_gradebook_scopes_are_granted_only_when_asked_for(district, client, connect_app):
    # An app registered with the default scopes reads the roster, not grades.
    _, token = connect_app("d1", ())
    assert Api(client, token).get("/classes").status_code == 200
    assert GradebookApi(client, token).get("/lineItems").status_code == 403
    _, token = connect_app("d1", ALL_SCOPES, name="Gradebook App")
    assert GradebookApi(client, token).get("/lineItems").status_code == 200


# ---------------------------------------------------------------------------------- errors

def test_unknown_records_are_404_unknownobject(gradebook):
    for path in ("/lineItems/nope", "/results/nope", "/categories/nope", "/scoreScales/nope",
                 "/assessmentLineItems/nope", "/assessmentResults/nope"):
        response = gradebook.get(path)
        assert response.status_code == 404
        entity = path.split("/")[1]
        assert response.get_json()["imsx_CodeMinor"]["imsx_codeMinorField"][0][
            "imsx_codeMinorFieldValue"] == "unknownobject", entity
        assert gradebook.delete(path).status_code == 404
    assert gradebook.get("/lineItems/nope").get_json() == error_body(
        "unknownobject", "There is no lineItem with sourcedId 'nope'.")
    assert gradebook.get("/classes/nope/lineItems").get_json() == error_body(
        "unknownobject", "There is no class with sourcedId 'nope'.")
    # A line item of another class is no line item of this one.
    assert gradebook.put("/lineItems/li", line_item("k1")).status_code == 201
    assert gradebook.get("/classes/k2/lineItems/li/results").status_code == 404
    assert gradebook.get("/classes/k1/lineItems/li/results").status_code == 200
    # A class that does not exist, named in a body.
    assert gradebook.put("/lineItems/li2", line_item("nope")).get_json() == error_body(
        "unknownobject", "There is no class with sourcedId 'nope'.")


@pytest.mark.parametrize("body, description", [
    ({"lineItem": {"class": {"sourcedId": "k1"}}}, "lineItem.title is required."),
    ({"lineItem": {"title": "T"}}, "lineItem.class is required."),
    ({"lineItem": {"title": "T", "class": {"sourcedId": "k1"}, "grade": "A"}},
     "The lineItem has fields its schema does not: grade."),
    ({"lineItem": {"title": "T", "class": {"sourcedId": "k1", "type": "org"}}},
     "lineItem.class.type must be 'class'."),
    ({"lineItem": {"title": "T", "class": {"sourcedId": "k1"}, "dueDate": "soon"}},
     "lineItem.dueDate must be an ISO 8601 date-time such as 2027-01-31T23:59:00Z."),
    ({"lineItem": {"title": "T", "class": {"sourcedId": "k1"}, "resultValueMax": "10"}},
     "lineItem.resultValueMax must be a number."),
    ({"lineItem": {"title": "T", "class": {"sourcedId": "k1"}, "sourcedId": "other"}},
     "The body's sourcedId 'other' is not the path's 'li'."),
    ({"lineItem": {"title": "T", "class": {"sourcedId": "k1"}, "status": "inactive"}},
     "lineItem.status must be 'active' or 'tobedeleted'."),
    ({"lineItems": [{"title": "T"}]}, "The body must be an object with one member, 'lineItem'."),
])
def test_a_bad_line_item_body_is_422_and_changes_nothing(gradebook, body, description):
    response = gradebook.put("/lineItems/li", body)
    assert response.status_code == 422
    assert response.get_json() == error_body("invaliddata", description)
    assert gradebook.get("/lineItems/li").status_code == 404


def test_a_result_must_be_a_students_in_the_line_items_class(gradebook):
    assert gradebook.put("/lineItems/li", line_item("k2")).status_code == 201
    # u1 is a student of k1, not k2; the teacher of k2 is no student.
    for student in ("u1", "t-krab"):
        response = gradebook.put("/results/r", result("li", student))
        assert response.get_json() == error_body(
            "invaliddata", "result.student is not a student of the line item's class.")
    response = gradebook.put("/results/r", result("li", "u2", scoreStatus="graded"))
    assert response.status_code == 422
    assert gradebook.put("/results/r", result("li", "u2", scoreStatus="ext:late-pass")
                         ).status_code == 201
    # One result per student and line item: another sourcedId for it is refused...
    response = gradebook.put("/results/r-again", result("li", "u2"))
    assert response.get_json() == error_body(
        "invaliddata", "The student already has result 'r' on this line item; replace that one.")
    # ... until that one is deleted. A refused write leaves the deleted one where it was.
    assert gradebook.delete("/results/r").status_code == 204
    assert gradebook.put("/results/r-again", result("li", "u2", scoreScale=ref("nope"))
                         ).status_code == 404
    assert gradebook.get("/results/r").get_json()["result"]["status"] == "tobedeleted"
    assert gradebook.put("/results/r-again", result("li", "u2")).status_code == 201
    assert gradebook.get("/results/r").status_code == 404


def test_bad_queries_are_400(gradebook):
    response = gradebook.get("/lineItems", filter="grade='A'")
    assert response.status_code == 400
    assert response.get_json()["imsx_CodeMinor"]["imsx_codeMinorField"][0][
        "imsx_codeMinorFieldValue"] == "invalid_filter_field"
    response = gradebook.get("/lineItems", fields="title,grade")
    assert response.get_json()["imsx_CodeMinor"]["imsx_codeMinorField"][0][
        "imsx_codeMinorFieldValue"] == "invalid_selection_field"
    assert gradebook.get("/lineItems", limit="0").status_code == 400
    assert gradebook.get("/lineItems", sort="class").status_code == 400


# ------------------------------------------------------------------ queries, paging, POST, DELETE

def test_collections_page_filter_sort_and_select(gradebook):
    for number in range(5):
        assert gradebook.put(f"/lineItems/li-{number}", line_item(
            "k2" if number % 2 else "k1", title=f"Item {number}")).status_code == 201
    response = gradebook.get("/lineItems", limit="2", offset="2", sort="title", orderBy="desc")
    assert [r["title"] for r in response.get_json()["lineItems"]] == ["Item 2", "Item 1"]
    assert response.headers["X-Total-Count"] == "5"
    assert response.headers["Link"] == ", ".join([
        f'<{SERVICE}/lineItems?sort=title&orderBy=desc&limit=2&offset=0>; rel="first"',
        f'<{SERVICE}/lineItems?sort=title&orderBy=desc&limit=2&offset=0>; rel="prev"',
        f'<{SERVICE}/lineItems?sort=title&orderBy=desc&limit=2&offset=4>; rel="next"',
        f'<{SERVICE}/lineItems?sort=title&orderBy=desc&limit=2&offset=4>; rel="last"'])
    records = gradebook.records("/lineItems", filter="class.sourcedId='k2' AND title~'item'",
                                fields="sourcedId,title")
    assert records == [{"sourcedId": "li-1", "title": "Item 1"},
                       {"sourcedId": "li-3", "title": "Item 3"}]
    assert [r["sourcedId"] for r in gradebook.records("/classes/k1/lineItems")] == [
        "li-0", "li-2", "li-4"]
    assert gradebook.get("/lineItems/li-0", fields="title").get_json() == {
        "lineItem": {"title": "Item 0"}}


def test_posted_line_items_and_results_answer_their_sourced_id_pairs(gradebook):
    assert gradebook.put("/lineItems/taken", line_item("k2")).status_code == 201
    response = gradebook.post("/classes/k2/lineItems", {"lineItems": [
        line_item("k2", "A", sourcedId="new-1")["lineItem"],
        line_item("k2", "B", sourcedId="taken")["lineItem"]]})
    assert response.status_code == 201, response.get_json()
    [first, second] = response.get_json()["sourcedIdPairs"]
    assert first == {"suppliedSourcedId": "new-1", "allocatedSourcedId": "new-1"}
    assert second["suppliedSourcedId"] == "taken" and second["allocatedSourcedId"] != "taken"
    assert gradebook.get(f"/lineItems/{second['allocatedSourcedId']}").get_json()[
        "lineItem"]["title"] == "B"
    # A line item of another class may not be posted to this one; the set is refused whole.
    response = gradebook.post("/classes/k2/lineItems", {"lineItems": [
        line_item("k2", "C", sourcedId="c")["lineItem"],
        line_item("k1", "D", sourcedId="d")["lineItem"]]})
    assert response.status_code == 422
    assert response.get_json() == error_body(
        "invaliddata", "A line item posted to a class must be of that class.")
    assert gradebook.get("/lineItems/c").status_code == 404
    # Posted to a school: a line item of one of its classes.
    response = gradebook.post("/schools/s2/lineItems", {"lineItems": [
        line_item("k3", "E", sourcedId="e")["lineItem"]]})
    assert response.status_code == 201
    assert gradebook.get("/lineItems/e").get_json()["lineItem"]["school"]["sourcedId"] == "s2"
    assert gradebook.post("/schools/s1/lineItems", {"lineItems": [
        line_item("k3", "F", sourcedId="f")["lineItem"]]}).status_code == 422
    # Results posted to a line item.
    body = result("new-1", "u3", sourcedId="r-u3")["result"]
    del body["lineItem"]
    response = gradebook.post("/lineItems/new-1/results", {"results": [body]})
    assert response.status_code == 201, response.get_json()
    assert response.get_json() == {"sourcedIdPairs": [
        {"suppliedSourcedId": "r-u3", "allocatedSourcedId": "r-u3"}]}
    assert gradebook.records("/classes/k2/students/u3/results")[0]["sourcedId"] == "r-u3"
    # Results posted to a class's academic session: on a line item of that class and session.
    assert gradebook.put("/lineItems/in-t1", line_item(
        "k2", academicSession=ref("t1"))).status_code == 201
    response = gradebook.post("/classes/k2/academicSessions/t1/results", {"results": [
        result("in-t1", "u2", sourcedId="r-t1")["result"]]})
    assert response.status_code == 201, response.get_json()
    assert gradebook.post("/classes/k2/academicSessions/t1/results", {"results": [
        result("new-1", "u2", sourcedId="r-x")["result"]]}).status_code == 422
    assert gradebook.post("/classes/k2/academicSessions/nope/results",
                          {"results": []}).status_code == 404


def test_deleting_a_line_item_marks_it_and_its_results_tobedeleted(gradebook):
    assert gradebook.put("/lineItems/li", line_item("k2")).status_code == 201
    assert gradebook.put("/results/r2", result("li", "u2")).status_code == 201
    assert gradebook.put("/results/r3", result("li", "u3")).status_code == 201
    assert gradebook.delete("/lineItems/li").status_code == 204
    assert gradebook.get("/lineItems/li").get_json()["lineItem"]["status"] == "tobedeleted"
    assert {r["sourcedId"]: r["status"] for r in gradebook.records("/results")} == {
        "r2": "tobedeleted", "r3": "tobedeleted"}
    assert gradebook.records("/results", filter="status='active'") == []


# ------------------------------------------------------------------------------------- privacy

def test_an_app_reads_and_writes_grades_only_in_its_classes(district, client, make_token):
    everything = GradebookApi(client, make_token("d1", ALL_SCOPES))
    assert everything.put("/lineItems/li-k1", line_item("k1")).status_code == 201
    assert everything.put("/results/r-k1", result("li-k1", "u1")).status_code == 201
    assert everything.put("/lineItems/li-k2", line_item("k2")).status_code == 201
    k2 = GradebookApi(client, make_token("d1", ALL_SCOPES, K2_ONLY))
    # Its class's default category, not k1's.
    assert len(k2.records("/classes/k2/categories")) == 1
    assert k2.get("/classes/k1/categories").status_code == 404
    assert {c.get("sourcedId") for c in k2.records("/categories")} == {
        k2.records("/classes/k2/categories")[0]["sourcedId"]}
    assert [r["sourcedId"] for r in k2.records("/lineItems")] == ["li-k2"]
    assert k2.records("/results") == []
    for path in ("/lineItems/li-k1", "/results/r-k1", "/classes/k1/lineItems",
                 "/classes/k1/results", "/classes/k1/students/u1/results",
                 "/classes/k2/students/u1/results"):
        assert k2.get(path).status_code == 404, path
    # Writes: nothing outside its scope is created, replaced or deleted.
    assert k2.put("/lineItems/new", line_item("k1")).status_code == 404
    assert k2.put("/lineItems/li-k1", line_item("k2", title="Hijacked")).status_code == 404
    assert k2.delete("/lineItems/li-k1").status_code == 404
    assert k2.delete("/results/r-k1").status_code == 404
    assert k2.put("/results/r-new", result("li-k1", "u1")).status_code == 404
    assert k2.post("/classes/k1/lineItems", {"lineItems": []}).status_code == 404
    assert everything.get("/lineItems/li-k1").get_json()["lineItem"]["title"] == "Essay"
    assert everything.get("/results/r-k1").get_json()["result"]["status"] == "active"


def test_pseudonymized_students_are_graded_and_served_by_their_pseudonyms(district, client,
                                                                          make_token):
    policy = dict(K2_ONLY, pseudonymize=["user.sourcedId"])
    token = make_token("d1", ALL_SCOPES, policy)
    gradebook, roster = GradebookApi(client, token), Api(client, token)
    students = {u["givenName"]: u["sourcedId"]
                for u in roster.records("/classes/k2/students")}
    bart = students["Bart"]
    assert bart != "u2"
    assert gradebook.put("/lineItems/li", line_item("k2")).status_code == 201
    # The clear id is no id of this app's.
    assert gradebook.put("/results/r", result("li", "u2")).status_code == 404
    response = gradebook.put("/results/r", result("li", bart))
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["result"]["student"]["sourcedId"] == bart
    assert [r["sourcedId"] for r in gradebook.records(
        "/results", filter=f"student.sourcedId='{bart}'")] == ["r"]
    assert gradebook.records(f"/classes/k2/students/{bart}/results")[0]["student"][
        "href"].endswith("/users/" + bart)


def test_every_read_of_results_is_in_the_ledger(gradebook, database):
    assert gradebook.put("/lineItems/li", line_item("k2")).status_code == 201
    assert gradebook.put("/results/r2", result("li", "u2")).status_code == 201
    assert gradebook.put("/results/r3", result("li", "u3")).status_code == 201
    before = len(ledger(database))
    assert len(gradebook.records("/classes/k2/results")) == 2
    assert gradebook.get("/results/r3").status_code == 200
    # Line items and categories are about no student: nothing recorded.
    assert gradebook.get("/lineItems").status_code == 200
    assert gradebook.get("/classes/k2/categories").status_code == 200
    assert ledger(database)[before:] == [("getResultsForClass", "result", 2, ["u2", "u3"]),
                                         ("getResult", "result", 1, ["u3"])]
