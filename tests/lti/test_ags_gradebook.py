"""AGS and the OneRoster gradebook service are one gradebook, both ways: scores a tool posts
through AGS are results on the gradebook service (in the class's default category), and line
items and results written on the gradebook service are read by tools through AGS (which may read
them but not change them)."""
from __future__ import annotations

import base64

import pytest

from gateway.gradebook.endpoints import BASE_PATH
from gateway.oauth import service
from gateway.oneroster.vocabulary import GRADEBOOK_SCOPES, ROSTERING_SCOPES
from gateway.sharing.policy import share_everything_document
from gateway.sharing.service import set_policy
from gateway.store.models import utcnow

from lti_support import ISSUER
# The AGS tests' fixtures (the tool's service token, its line items URL in k1) and helpers.
from test_ags import RESULTS, base, call, create, path, score, token  # noqa: F401


def gradebook_token(client, database, name: str = "Gradebook Sync") -> str:
    """A bearer token of a new app of d1 sharing it whole, holding the rostering and gradebook
    scopes."""
    scopes = list(ROSTERING_SCOPES + GRADEBOOK_SCOPES)
    with database.session_scope() as session:
        creds = service.register_app(session, name=name, district_sourced_id="d1",
                                     scopes=scopes, now=utcnow())
        set_policy(session, app_id=creds.app_id, district_id=1,
                   document=share_everything_document(), now=utcnow())
    basic = base64.b64encode(f"{creds.client_id}:{creds.client_secret}".encode()).decode()
    response = client.post("/oauth/token", data={"grant_type": "client_credentials",
                                                 "scope": " ".join(scopes)},
                           headers={"Authorization": "Basic " + basic})
    assert response.status_code == 200
    return response.get_json()["access_token"]


@pytest.fixture
def gradebook(client, database, district):
    """GET/PUT on the gradebook service as another app of d1 (a gradebook sync) holding the
    rostering and gradebook scopes."""
    headers = {"Authorization": "Bearer " + gradebook_token(client, database)}

    def request(method: str, rest_path: str, body=None):
        return client.open(BASE_PATH + rest_path, method=method, json=body, headers=headers)
    return request


def test_scores_posted_through_ags_are_gradebook_results(client, base, token, gradebook):
    item = create(client, base, token, label="Fractions quiz", scoreMaximum=10)
    item_id = item["id"].rsplit("/", 1)[1]
    assert score(client, item, token, scoreGiven=7, scoreMaximum=20).status_code == 204

    response = gradebook("GET", f"/lineItems/{item_id}")
    assert response.status_code == 200
    line_item = response.get_json()["lineItem"]
    assert (line_item["title"], line_item["resultValueMin"], line_item["resultValueMax"],
            line_item["class"]["sourcedId"], line_item["school"]["sourcedId"]) == (
        "Fractions quiz", 0.0, 10.0, "k1", "s1")
    # The tool gave it no category: it is in the class's default one, which the class lists.
    categories = gradebook("GET", "/classes/k1/categories").get_json()["categories"]
    assert [c["sourcedId"] for c in categories] == [line_item["category"]["sourcedId"]]

    [result] = gradebook("GET", f"/classes/k1/lineItems/{item_id}/results").get_json()["results"]
    # 7 of 20 on a line item out of 10.
    assert (result["student"]["sourcedId"], result["score"], result["scoreStatus"],
            result["scoreDate"], result["comment"]) == ("u1", 3.5, "fully graded", "2026-11-28",
                                                       "Well done")


def test_gradebook_line_items_and_results_are_read_through_ags(client, base, token, gradebook):
    response = gradebook("PUT", "/lineItems/rest-li", {"lineItem": {
        "title": "Reading log", "class": {"sourcedId": "k1"}, "assignDate": "2026-12-01T08:00:00Z",
        "dueDate": "2026-12-08T08:00:00Z", "resultValueMax": 25}})
    assert response.status_code == 201
    assert gradebook("PUT", "/results/rest-r", {"result": {
        "lineItem": {"sourcedId": "rest-li"}, "student": {"sourcedId": "u1"},
        "scoreStatus": "fully graded", "score": 20, "scoreDate": "2026-12-09",
        "comment": "Read 5 books"}}).status_code == 201

    listed = call(client, "GET", base, token).get_json()
    item_url = f"{ISSUER}{base}/rest-li"
    assert listed == [{"id": item_url, "scoreMaximum": 25.0, "label": "Reading log",
                       "startDateTime": "2026-12-01T08:00:00.000Z",
                       "endDateTime": "2026-12-08T08:00:00.000Z"}]
    assert call(client, "GET", path(item_url), token).get_json() == listed[0]
    results = call(client, "GET", path(item_url) + "/results", token)
    assert results.status_code == 200 and results.headers["Content-Type"] == RESULTS
    [entry] = results.get_json()
    assert (entry["scoreOf"], entry["resultScore"], entry["resultMaximum"], entry["comment"]) == (
        item_url, 20.0, 25.0, "Read 5 books")

    # The tool reads the gradebook's column but does not own it: it cannot change or delete it.
    assert call(client, "PUT", path(item_url), token,
                {"label": "Mine now", "scoreMaximum": 5}).status_code == 404
    assert call(client, "DELETE", path(item_url), token).status_code == 404
    assert gradebook("GET", "/lineItems/rest-li").get_json()["lineItem"]["title"] == "Reading log"


def test_ags_line_items_and_scores_are_change_feed_events(client, database, base, token):
    app_token = gradebook_token(client, database, "Feed Reader")

    def events(after: str) -> tuple[list[tuple[str, str, str]], str]:
        response = client.get("/events", query_string={"after": after, "limit": "1000"},
                              headers={"Authorization": f"Bearer {app_token}"})
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        return [(e["entity"], e["sourcedId"], e["type"]) for e in body["events"]], body["next"]

    _, start = events("0")
    item = create(client, base, token, label="Fractions quiz", scoreMaximum=10)
    item_id = item["id"].rsplit("/", 1)[1]
    assert score(client, item, token, scoreGiven=7, scoreMaximum=20).status_code == 204
    assert score(client, item, token, scoreGiven=8, scoreMaximum=20,
                 timestamp="2026-11-28T11:00:00Z").status_code == 204
    assert call(client, "DELETE", path(item["id"]), token).status_code == 204
    seen, _ = events(start)
    result_id = seen[1][1]
    assert seen == [("lineItem", item_id, "created"), ("result", result_id, "created"),
                    ("result", result_id, "updated"), ("lineItem", item_id, "deleted"),
                    ("result", result_id, "deleted")]
