"""Assignment and Grade Services: line items, scores and results, stored as the class's gradebook."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from gateway.store.lti import LineItem, Result

from lti_support import ISSUER

LINEITEM = "application/vnd.ims.lis.v2.lineitem+json"
LINEITEMS = "application/vnd.ims.lis.v2.lineitemcontainer+json"
SCORE_TYPE = "application/vnd.ims.lis.v1.score+json"
RESULTS = "application/vnd.ims.lis.v2.resultcontainer+json"
S = "https://purl.imsglobal.org/spec/lti-ags/scope/"


@pytest.fixture
def token(tool, service_token):
    return service_token(tool)


@pytest.fixture
def base(tool):
    return f"/lti/deployments/{tool.deployment_id}/contexts/k1/lineitems"


def call(client, method: str, url: str, token: str, body=None, content_type=None, **params):
    headers = {"Authorization": f"Bearer {token}"}
    if body is not None:
        headers["Content-Type"] = content_type or (SCORE_TYPE if url.endswith("/scores") else LINEITEM)
    return client.open(url, method=method, headers=headers, query_string=params,
                       data=json.dumps(body) if body is not None else None)


def path(url: str) -> str:
    return url.removeprefix(ISSUER)


def create(client, base, token, **fields):
    body = {"scoreMaximum": 10, "label": "Quiz 1", **fields}
    response = call(client, "POST", base, token, body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def score(client, item, token, user="u1", **fields):
    body = {"userId": user, "scoreGiven": 7, "scoreMaximum": 20, "activityProgress": "Completed",
            "gradingProgress": "FullyGraded", "timestamp": "2026-11-28T10:00:00.123+01:00",
            "comment": "Well done", **fields}
    return call(client, "POST", path(item["id"]) + "/scores", token,
                {k: v for k, v in body.items() if v is not None})


def test_line_item_crud(client, tool, base, token, place):
    link_id = place(tool.client_id, "k1")
    created = create(client, base, token, tag="quiz", resourceId="r-1", resourceLinkId=link_id,
                     startDateTime="2026-12-01T08:00:00Z", endDateTime="2026-12-08T08:00:00-05:00")
    item_url = created["id"]
    assert item_url.startswith(f"{ISSUER}{base}/")
    assert created == {"id": item_url, "scoreMaximum": 10.0, "label": "Quiz 1", "resourceId": "r-1",
                       "tag": "quiz", "resourceLinkId": link_id,
                       "startDateTime": "2026-12-01T08:00:00.000Z",
                       "endDateTime": "2026-12-08T13:00:00.000Z"}
    second = create(client, base, token, label="Quiz 2", tag="exam")

    listed = call(client, "GET", base, token)
    assert listed.status_code == 200 and listed.headers["Content-Type"] == LINEITEMS
    assert listed.get_json() == [created, second]
    assert call(client, "GET", base, token, tag="exam").get_json() == [second]
    assert call(client, "GET", base, token, resource_link_id=link_id).get_json() == [created]
    paged = call(client, "GET", base, token, limit="1")
    assert paged.get_json() == [created]
    assert paged.headers["Link"] == f'<{ISSUER}{base}?limit=1&offset=1>; rel="next"'

    one = call(client, "GET", path(item_url), token)
    assert one.status_code == 200 and one.headers["Content-Type"] == LINEITEM
    assert one.get_json() == created

    updated = call(client, "PUT", path(item_url), token, {**created, "label": "Quiz one",
                                                          "scoreMaximum": 12})
    assert updated.status_code == 200
    assert updated.get_json()["label"] == "Quiz one" and updated.get_json()["scoreMaximum"] == 12.0

    assert call(client, "DELETE", path(item_url), token).status_code == 204
    assert call(client, "GET", path(item_url), token).status_code == 404
    assert call(client, "GET", base, token).get_json() == [second]


def test_line_items_are_gradebook_rows_of_the_class(client, base, token, database):
    created = create(client, base, token)
    with database.session_scope() as session:
        item = session.execute(select(LineItem)).scalar_one()
    assert created["id"].endswith("/" + item.sourced_id)
    assert (item.class_sourced_id, item.school_sourced_id, item.title, item.result_value_min,
            item.result_value_max, item.status) == ("k1", "s1", "Quiz 1", 0.0, 10.0, "active")


@pytest.mark.parametrize("body, message", [
    ({"label": "x"}, "scoreMaximum must be a number greater than 0."),
    ({"label": "x", "scoreMaximum": 0}, "scoreMaximum must be a number greater than 0."),
    ({"label": "x", "scoreMaximum": True}, "scoreMaximum must be a number greater than 0."),
    ({"scoreMaximum": 5}, "label is required."),
    ({"label": "x", "scoreMaximum": 5, "resourceLinkId": "nope"}, "resourceLinkId names no resource link of this tool in this context."),
    ({"label": "x", "scoreMaximum": 5, "startDateTime": "tomorrow"}, "startDateTime must be an ISO 8601 date and time."),
    ([1, 2], "The body must be a JSON object."),
])
def test_invalid_line_items_are_refused(client, base, token, body, message):
    response = call(client, "POST", base, token, body)
    assert response.status_code == 400
    assert response.get_json() == {"error": "invalid_request", "error_description": message}


def test_wrong_media_type_is_refused(client, base, token):
    response = call(client, "POST", base, token, {"label": "x", "scoreMaximum": 1},
                    content_type="text/plain")
    assert response.status_code == 415


def test_scores_become_results(client, base, token, database):
    item = create(client, base, token)
    response = score(client, item, token)
    assert response.status_code == 204

    with database.session_scope() as session:
        result = session.execute(select(Result)).scalar_one()
    assert (result.student_sourced_id, result.class_sourced_id, result.score, result.score_status,
            result.comment, result.score_given, result.score_maximum) == (
        "u1", "k1", 3.5, "fully graded", "Well done", 7.0, 20.0)
    assert result.score_timestamp.isoformat() == "2026-11-28T09:00:00.123000"

    results = call(client, "GET", path(item["id"]) + "/results", token)
    assert results.status_code == 200 and results.headers["Content-Type"] == RESULTS
    assert results.get_json() == [{
        "id": f"{item['id']}/results/{result.sourced_id}", "scoreOf": item["id"], "userId": "u1",
        "resultScore": 3.5, "resultMaximum": 10.0, "comment": "Well done"}]
    assert call(client, "GET", path(item["id"]) + "/results", token, user_id="u2").get_json() == []


def test_scores_are_ordered_by_their_timestamps(client, base, token, database):
    item = create(client, base, token)
    assert score(client, item, token, timestamp="2026-11-28T10:00:00Z").status_code == 204
    older = score(client, item, token, timestamp="2026-11-28T09:59:59.999Z", scoreGiven=1)
    assert older.status_code == 409
    assert older.get_json()["error"] == "conflict"
    same = score(client, item, token, timestamp="2026-11-28T10:00:00Z", scoreGiven=20,
                 gradingProgress="Pending", comment=None)
    assert same.status_code == 204
    with database.session_scope() as session:
        result = session.execute(select(Result)).scalar_one()
    assert (result.score, result.score_status, result.comment) == (10.0, "submitted", None)
    cleared = score(client, item, token, timestamp="2026-11-29T00:00:00Z", scoreGiven=None,
                    scoreMaximum=None, activityProgress="Initialized", gradingProgress="NotReady")
    assert cleared.status_code == 204
    results = call(client, "GET", path(item["id"]) + "/results", token).get_json()
    assert "resultScore" not in results[0]


@pytest.mark.parametrize("fields, message", [
    ({"userId": "u2"}, "userId names no member of this context."),
    ({"userId": "nobody"}, "userId names no member of this context."),
    ({"userId": None}, "userId is required."),
    ({"scoreMaximum": None}, "scoreMaximum must be a number greater than 0 when scoreGiven is sent."),
    ({"scoreGiven": -1}, "scoreGiven must be a number of at least 0."),
    ({"activityProgress": "Done"}, "activityProgress must be one of"),
    ({"gradingProgress": None}, "gradingProgress must be one of"),
    ({"timestamp": "2026-11-28T10:00:00"}, "timestamp must carry a time zone offset."),
])
def test_invalid_scores_are_refused(client, base, token, fields, message):
    item = create(client, base, token)
    response = score(client, item, token, **fields)
    assert response.status_code == 400
    assert response.get_json()["error_description"].startswith(message)


def test_scopes_limit_what_a_token_may_do(client, tool, base, token, service_token):
    item = create(client, base, token)
    readonly = service_token(tool, S + "lineitem.readonly")
    assert call(client, "GET", base, readonly).status_code == 200
    assert call(client, "POST", base, readonly, {"label": "x", "scoreMaximum": 1}).status_code == 403
    assert call(client, "DELETE", path(item["id"]), readonly).status_code == 403
    assert score(client, item, readonly).status_code == 403
    assert call(client, "GET", path(item["id"]) + "/results", readonly).status_code == 403
    score_only = service_token(tool, S + "score")
    assert score(client, item, score_only).status_code == 204
    assert call(client, "GET", base, score_only).status_code == 403


def test_a_tool_sees_only_its_own_line_items(client, base, token, make_tool, service_token):
    item = create(client, base, token)
    other = make_tool(slug="other")
    other_token = service_token(other)
    other_base = f"/lti/deployments/{other.deployment_id}/contexts/k1/lineitems"
    assert call(client, "GET", other_base, other_token).get_json() == []
    foreign = other_base + "/" + item["id"].rsplit("/", 1)[1]
    assert call(client, "GET", foreign, other_token).status_code == 404
    assert score(client, {"id": ISSUER + foreign}, other_token).status_code == 404
    # Nor through its own token on the first tool's deployment.
    assert call(client, "GET", path(item["id"]), other_token).status_code == 404


def test_scores_use_the_ids_the_app_knows(client, base, token, policy):
    item = create(client, base, token)
    assert score(client, item, token, user="u1").status_code == 400
    assert score(client, item, token, user="p-u1").status_code == 204
    results = call(client, "GET", path(item["id"]) + "/results", token, user_id="p-u1").get_json()
    assert [r["userId"] for r in results] == ["p-u1"]


def test_only_learners_of_the_class_get_scores(client, base, token, database):
    item = create(client, base, token)
    not_a_learner = {"error": "invalid_request", "error_description":
                     "userId names a member of this context who is not a learner; "
                     "scores are kept for learners only."}
    not_a_member = {"error": "invalid_request",
                    "error_description": "userId names no member of this context."}
    # t-hoover teaches k1; u2 is a learner, but of k2; p1 is a parent, enrolled nowhere.
    for user, body in (("t-hoover", not_a_learner), ("u2", not_a_member), ("p1", not_a_member)):
        response = score(client, item, token, user=user)
        assert (response.status_code, response.get_json()) == (400, body), user
    with database.session_scope() as session:
        assert session.execute(select(Result)).first() is None

    assert score(client, item, token, user="u1").status_code == 204
    with database.session_scope() as session:
        assert session.execute(select(Result.student_sourced_id)).scalars().all() == ["u1"]
    results = call(client, "GET", path(item["id"]) + "/results", token).get_json()
    assert [r["userId"] for r in results] == ["u1"]


def test_a_teacher_is_refused_under_the_id_the_app_knows(client, base, token, policy, database):
    item = create(client, base, token)
    response = score(client, item, token, user="p-t-hoover")
    assert response.status_code == 400
    assert response.get_json()["error_description"].startswith(
        "userId names a member of this context who is not a learner")
    with database.session_scope() as session:
        assert session.execute(select(Result)).first() is None
