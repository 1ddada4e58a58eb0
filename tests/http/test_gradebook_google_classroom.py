"""Google Classroom's OneRoster 1.2 gradebook sequence, end to end over HTTP on a district whose
SIS export carries no categories: read a class's categories and take the first (the district's
default), PUT a line item in it, PUT a student's result, PUT it again edited and exempt, DELETE
it. Each answer is checked as the client sees it and against the official document."""
from __future__ import annotations

import pytest

from gradebook_api import ALL_SCOPES, SERVICE, GradebookApi, official_validator, ref
from rostering_api import ISSUER

ROSTERING = ISSUER + "/ims/oneroster/rostering/v1p2"


@pytest.fixture
def gradebook(load_small, client, make_token):
    load_small()
    return GradebookApi(client, make_token("d1", ALL_SCOPES))


def test_the_google_classroom_sequence(gradebook, app):
    # 1. The class's categories: the SIS sent none, the default one is there.
    response = gradebook.get("/classes/k2/categories")
    assert response.status_code == 200
    categories = response.get_json()["categories"]
    assert [c["title"] for c in categories] == ["Default"]
    assert response.headers["X-Total-Count"] == "1"
    official_validator("CategoriesSetDType").validate(response.get_json())
    category = categories[0]["sourcedId"]
    # The same default on every read; another class has its own.
    assert gradebook.records("/classes/k2/categories")[0]["sourcedId"] == category
    assert gradebook.records("/classes/k1/categories")[0]["sourcedId"] != category

    # 2. PUT a line item in it: created.
    line_item = {"lineItem": {
        "sourcedId": "gc-li-1", "status": "active", "dateLastModified": "2027-01-10T08:00:00Z",
        "title": "Lab report", "description": "Cells", "assignDate": "2027-01-10T08:00:00Z",
        "dueDate": "2027-01-17T23:59:00Z", "class": ref("k2"), "school": ref("s2"),
        "category": ref(category), "resultValueMin": 0, "resultValueMax": 20}}
    response = gradebook.put("/lineItems/gc-li-1", line_item)
    assert response.status_code == 201, response.get_json()
    served = response.get_json()["lineItem"]
    official_validator("SingleLineItemDType").validate(response.get_json())
    assert served["class"] == {"href": f"{ROSTERING}/classes/k2", "sourcedId": "k2",
                               "type": "class"}
    assert served["category"] == {"href": f"{SERVICE}/categories/{category}",
                                  "sourcedId": category, "type": "category"}
    assert (served["title"], served["resultValueMax"], served["dueDate"]) == (
        "Lab report", 20.0, "2027-01-17T23:59:00.000Z")
    assert gradebook.get("/lineItems/gc-li-1").get_json() == {"lineItem": served}

    # 3. PUT a result with a score: created.
    result = {"result": {
        "sourcedId": "gc-r-1", "status": "active", "dateLastModified": "2027-01-18T10:00:00Z",
        "lineItem": ref("gc-li-1"), "student": ref("u2"), "scoreStatus": "fully graded",
        "score": 17.5, "scoreDate": "2027-01-18", "comment": "Good work"}}
    response = gradebook.put("/results/gc-r-1", result)
    assert response.status_code == 201, response.get_json()
    official_validator("SingleResultDType").validate(response.get_json())
    served = response.get_json()["result"]
    assert (served["score"], served["scoreStatus"], served["scoreDate"], served["comment"]) == (
        17.5, "fully graded", "2027-01-18", "Good work")
    assert served["student"]["href"] == f"{ROSTERING}/users/u2"
    assert served["class"]["sourcedId"] == "k2"

    # 4. PUT it again, edited and exempt: replaced, the same record.
    edited = {"result": dict(result["result"], scoreStatus="exempt", comment="Excused")}
    del edited["result"]["score"]
    response = gradebook.put("/results/gc-r-1", edited)
    assert response.status_code == 201, response.get_json()
    served = response.get_json()["result"]
    official_validator("SingleResultDType").validate(response.get_json())
    assert served["scoreStatus"] == "exempt" and "score" not in served
    assert served["comment"] == "Excused"
    records = gradebook.records("/classes/k2/lineItems/gc-li-1/results")
    assert records == [served]

    # 5. DELETE it: 204, then it is marked tobedeleted (a delta consumer learns of it).
    response = gradebook.delete("/results/gc-r-1")
    assert response.status_code == 204 and response.data == b""
    assert gradebook.get("/results/gc-r-1").get_json()["result"]["status"] == "tobedeleted"
    assert gradebook.delete("/results/gc-r-1").status_code == 204


def test_the_default_category_title_is_the_districts_setting(load_small, client, make_token,
                                                              app):
    app.config["DEFAULT_CATEGORY_TITLE"] = "Assignments"
    load_small()
    gradebook = GradebookApi(client, make_token("d1", ALL_SCOPES))
    assert [c["title"] for c in gradebook.records("/classes/k1/categories")] == ["Assignments"]


def test_a_line_item_put_without_a_category_lands_in_the_default(gradebook):
    response = gradebook.put("/lineItems/li-bare", {"lineItem": {
        "title": "Quiz", "class": ref("k1"), "assignDate": "2027-02-01T00:00:00Z",
        "dueDate": "2027-02-02T00:00:00Z"}})
    assert response.status_code == 201, response.get_json()
    served = response.get_json()["lineItem"]
    [default] = gradebook.records("/classes/k1/categories")
    assert served["category"]["sourcedId"] == default["sourcedId"]
    # The school is the class's; the maximum the percentage scale.
    assert served["school"]["sourcedId"] == "s1"
    assert (served["resultValueMin"], served["resultValueMax"]) == (0.0, 100.0)
