"""Districts never mix: an app of one district sees none of another's records, by any path, even
where both districts use the same sourcedIds."""
from __future__ import annotations

import pytest


def shelbyville(rows: dict) -> None:
    """District d2: the small district's sourcedIds, other names, one record of its own."""
    rows["orgs"][0].update(sourcedId="d2", name="Shelbyville District")
    for org in rows["orgs"][1:]:
        org["parentSourcedId"] = "d2"
        org["name"] = "Shelbyville " + org["name"]
    for role in rows["roles"]:
        if role["orgSourcedId"] == "d1":
            role["orgSourcedId"] = "d2"
    for user in rows["users"]:
        user["givenName"] += "-in-Shelbyville"
    rows["users"].append({"sourcedId": "only-d2", "enabledUser": "true", "username": "nelson",
                          "givenName": "Nelson",
                          "familyName": "Muntz", "primaryOrgSourcedId": "s2"})
    rows["roles"].append({"sourcedId": "r-only-d2", "userSourcedId": "only-d2",
                          "roleType": "primary", "role": "student", "orgSourcedId": "s2"})
    rows["enrollments"].append({"sourcedId": "e-only-d2", "classSourcedId": "k2",
                                "schoolSourcedId": "s2", "userSourcedId": "only-d2",
                                "role": "student"})


@pytest.fixture
def springfield(load_small, api_for):
    """An app of d1, with d2 imported after d1 (so d2's rows come later in every table)."""
    load_small()
    load_small(shelbyville)
    return api_for("d1")


def test_collections_and_counts_hold_only_the_apps_district(springfield):
    response = springfield.get("/users")
    names = [u["givenName"] for u in response.get_json()["users"]]
    assert names == ["Lisa", "Bart", "Milhouse", "Martin", "Elizabeth", "Edna", "Marge"]
    assert response.headers["X-Total-Count"] == "7"
    assert springfield.ids("/orgs") == ["d1", "s1", "s2"]
    assert [o["name"] for o in springfield.records("/schools")] == [
        "Springfield Elementary", "Springfield High"]
    assert springfield.get("/students").headers["X-Total-Count"] == "4"
    assert springfield.get("/enrollments", offset="6").get_json()["enrollments"][0]["sourcedId"] \
        == "e7"
    assert springfield.get("/enrollments", offset="7").get_json() == {"enrollments": []}


def test_by_id_reads_never_reach_the_other_district(springfield):
    assert springfield.get("/users/u1").get_json()["user"]["givenName"] == "Lisa"
    assert springfield.get("/orgs/d2").status_code == 404
    assert springfield.get("/users/only-d2").status_code == 404
    assert springfield.get("/enrollments/e-only-d2").status_code == 404
    assert springfield.get("/orgs/d1").get_json()["org"]["children"][0]["sourcedId"] == "s1"


def test_nested_paths_never_reach_the_other_district(springfield):
    assert [u["givenName"] for u in springfield.records("/classes/k2/students")] == [
        "Bart", "Milhouse"]
    assert [u["givenName"] for u in springfield.records("/schools/s2/students")] == [
        "Bart", "Milhouse", "Martin"]
    assert springfield.get("/students/only-d2/classes").status_code == 404
    assert springfield.get("/schools/d2/classes").status_code == 404
    assert springfield.ids("/courses/c2/classes") == ["k2", "k3"]
    assert springfield.ids("/users/u2/classes") == ["k2"]


def test_filters_never_reach_the_other_district(springfield):
    assert springfield.ids("/users", filter="givenName~'Shelbyville'") == []
    assert springfield.ids("/users", filter="sourcedId='only-d2' OR givenName='Lisa'") == ["u1"]
    assert springfield.ids("/users", filter="roles.org.sourcedId='d2'") == []
    assert springfield.ids("/enrollments", filter="user.sourcedId='only-d2'") == []
    assert springfield.ids("/orgs", filter="name~'Shelbyville'") == []


def test_the_other_districts_app_sees_its_own(springfield, api_for):
    shelby = api_for("d2")
    assert shelby.get("/users/u1").get_json()["user"]["givenName"] == "Lisa-in-Shelbyville"
    assert shelby.get("/users").headers["X-Total-Count"] == "8"
    assert shelby.ids("/classes/k2/students") == ["u2", "u3", "only-d2"]
    # The first district's cached counts did not leak into the second's.
    assert springfield.get("/users").headers["X-Total-Count"] == "7"
