"""Exact bodies and headers of the rostering service for a small district: wrappers, references,
the 1.2 user model, string booleans, dates, metadata, field selection, retired records."""
from __future__ import annotations

import datetime as dt

import pytest

from rostering_api import SERVICE

IMPORTED = dt.datetime(2026, 11, 28, 12, 0, 0)
STAMP = "2026-11-28T12:00:00.000Z"


def ref(path: str, sourced_id: str, ref_type: str) -> dict:
    return {"href": f"{SERVICE}/{path}/{sourced_id}", "sourcedId": sourced_id, "type": ref_type}


def org(sourced_id: str) -> dict:
    return ref("orgs", sourced_id, "org")


def session(sourced_id: str) -> dict:
    return ref("academicSessions", sourced_id, "academicSession")


@pytest.fixture
def api(load_small, api_for):
    """An app of the small district d1 (imported at IMPORTED), with every rostering scope."""
    def edit(rows):
        rows["academicSessions"][1]["type"] = "term"  # t1: Fall
    load_small(edit, metadata={"users": ["locker"]}, now=IMPORTED)
    return api_for("d1")


LISA = {
    "sourcedId": "u1", "status": "active", "dateLastModified": STAMP, "username": "lisa",
    "userIds": [{"type": "SIS", "identifier": "1001"}], "enabledUser": "true",
    "givenName": "Lisa", "familyName": "Simpson", "pronouns": "she/her",
    "roles": [{"roleType": "primary", "role": "student", "org": org("s1")}],
    "primaryOrg": org("s1"), "email": "lisa@example.edu",
    "agents": [ref("users", "p1", "user")], "grades": ["03"],
}


def test_a_user_has_the_12_model_roles_ids_agents_and_pronouns(api):
    response = api.get("/users/u1")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == {"user": LISA}


def test_students_and_teachers_answer_with_the_user_wrapper(api):
    assert api.get("/students/u1").get_json() == {"user": LISA}
    teacher = api.get("/teachers/t-hoover").get_json()
    assert teacher == {"user": {
        "sourcedId": "t-hoover", "status": "active", "dateLastModified": STAMP,
        "username": "hoover", "enabledUser": "true", "givenName": "Elizabeth",
        "familyName": "Hoover",
        "roles": [{"roleType": "primary", "role": "teacher", "org": org("s1")}],
        "userProfiles": [{"profileId": "up1", "profileType": "lms", "vendorId": "acme",
                          "credentials": [{"type": "password", "username": "ehoover"}]}],
        "primaryOrg": org("s1"), "email": "hoover@example.edu"}}
    # A user of another kind is unknown on that path.
    assert api.get("/students/t-hoover").status_code == 404
    assert api.get("/teachers/u1").status_code == 404


def test_metadata_is_served_when_present(load_small, api_for):
    def edit(rows):
        rows["users"][1]["metadata.locker"] = "B-12"
    load_small(edit, metadata={"users": ["locker"]}, now=IMPORTED)
    api = api_for("d1")
    assert api.get("/users/u2").get_json()["user"]["metadata"] == {"locker": "B-12"}
    assert "metadata" not in api.get("/users/u1").get_json()["user"]


def test_orgs_schools_and_their_children(api):
    assert api.get("/orgs/d1").get_json() == {"org": {
        "sourcedId": "d1", "status": "active", "dateLastModified": STAMP,
        "name": "Springfield District", "type": "district", "identifier": "SD1",
        "children": [org("s1"), org("s2")]}}
    # /schools/{id} answers the org wrapper; a district is not a school.
    assert api.get("/schools/s2").get_json() == {"org": {
        "sourcedId": "s2", "status": "active", "dateLastModified": STAMP,
        "name": "Springfield High", "type": "school", "identifier": "SH", "parent": org("d1")}}
    assert api.get("/schools/d1").status_code == 404


def test_academic_sessions_terms_and_their_wrappers(api):
    assert api.get("/academicSessions/y1").get_json() == {"academicSession": {
        "sourcedId": "y1", "status": "active", "dateLastModified": STAMP, "title": "2026-2027",
        "startDate": "2026-08-15", "endDate": "2027-06-15", "type": "schoolYear",
        "children": [session("t1"), session("t2")], "schoolYear": "2027"}}
    fall = {"sourcedId": "t1", "status": "active", "dateLastModified": STAMP, "title": "Fall",
            "startDate": "2026-08-15", "endDate": "2026-12-20", "type": "term",
            "parent": session("y1"), "schoolYear": "2027"}
    assert api.get("/terms/t1").get_json() == {"academicSession": fall}
    assert api.get("/terms").get_json() == {"academicSessions": [fall]}
    # By id, /terms serves whatever session a class's terms may name (a semester, a school
    # year); the collection stays the sessions of type term.
    assert api.get("/terms/t2").get_json()["academicSession"]["type"] == "semester"
    assert api.get("/terms/y1").get_json()["academicSession"]["type"] == "schoolYear"
    assert api.get("/gradingPeriods/t1").status_code == 404  # a term is no grading period
    assert api.get("/gradingPeriods").get_json() == {"academicSessions": []}


def test_courses_classes_enrollments_and_demographics(api):
    assert api.get("/courses/c2").get_json() == {"course": {
        "sourcedId": "c2", "status": "active", "dateLastModified": STAMP, "title": "Biology",
        "schoolYear": session("y1"), "courseCode": "BIO", "grades": ["09", "10"],
        "subjects": ["Science"], "org": org("s2")}}
    assert api.get("/classes/k2").get_json() == {"class": {
        "sourcedId": "k2", "status": "active", "dateLastModified": STAMP, "title": "Biology 1",
        "classCode": "BIO1", "classType": "scheduled", "grades": ["09"],
        "course": ref("courses", "c2", "course"), "school": org("s2"), "terms": [session("t1")],
        "periods": ["2", "3"]}}
    assert api.get("/enrollments/e2").get_json() == {"enrollment": {
        "sourcedId": "e2", "status": "active", "dateLastModified": STAMP,
        "user": ref("users", "t-hoover", "user"), "class": ref("classes", "k1", "class"),
        "school": org("s1"), "role": "teacher", "primary": "true"}}
    # The single demographics record keeps the plural wrapper; booleans are strings.
    assert api.get("/demographics/u1").get_json() == {"demographics": {
        "sourcedId": "u1", "status": "active", "dateLastModified": STAMP,
        "birthDate": "2018-05-09", "sex": "female", "white": "true"}}


def test_a_collection_with_its_paging_headers(api):
    response = api.get("/schools")
    assert response.status_code == 200
    assert response.get_json() == {"orgs": [
        {"sourcedId": "s1", "status": "active", "dateLastModified": STAMP,
         "name": "Springfield Elementary", "type": "school", "identifier": "SE",
         "parent": org("d1")},
        {"sourcedId": "s2", "status": "active", "dateLastModified": STAMP,
         "name": "Springfield High", "type": "school", "identifier": "SH", "parent": org("d1")}]}
    assert response.headers["X-Total-Count"] == "2"
    assert response.headers["Link"] == (
        f'<{SERVICE}/schools?limit=100&offset=0>; rel="first", '
        f'<{SERVICE}/schools?limit=100&offset=0>; rel="last"')
    assert response.headers["Content-Type"] == "application/json"


def test_nested_collections(api):
    assert api.ids("/classes/k2/students") == ["u2", "u3"]
    assert api.ids("/classes/k2/teachers") == ["t-krab"]
    assert api.ids("/schools/s2/classes") == ["k2", "k3"]
    assert api.ids("/schools/s2/classes/k3/enrollments") == ["e6", "e7"]
    assert api.ids("/schools/s2/classes/k3/students") == ["u4"]
    assert api.ids("/schools/s1/classes/k1/teachers") == ["t-hoover"]
    assert api.ids("/schools/s2/courses") == ["c2"]
    assert api.ids("/schools/s1/enrollments") == ["e1", "e2"]
    assert api.ids("/schools/s2/students") == ["u2", "u3", "u4"]
    assert api.ids("/schools/s2/teachers") == ["t-krab"]
    assert api.ids("/schools/s1/terms") == ["t1"]
    assert api.ids("/schools/s2/terms") == ["t1"]
    assert api.ids("/courses/c2/classes") == ["k2", "k3"]
    assert api.ids("/students/u2/classes") == ["k2"]
    assert api.ids("/teachers/t-krab/classes") == ["k2", "k3"]
    assert api.ids("/terms/t1/classes") == ["k1", "k2"]
    assert api.ids("/terms/t1/gradingPeriods") == []
    assert api.ids("/users/t-hoover/classes") == ["k1"]
    assert api.ids("/users/p1/classes") == []


def test_field_selection(api):
    assert api.get("/users/u1", fields="givenName,sourcedId").get_json() == {
        "user": {"sourcedId": "u1", "givenName": "Lisa"}}
    assert api.records("/users", fields="sourcedId,roles", limit="1") == [
        {"sourcedId": "u1", "roles": LISA["roles"]}]
    # The repeated form of the OpenAPI array parameter works too.
    response = api.client.get("/ims/oneroster/rostering/v1p2/schools",
                              query_string=[("fields", "sourcedId"), ("fields", "name")],
                              headers={"Authorization": f"Bearer {api.token}"})
    assert response.get_json() == {"orgs": [{"sourcedId": "s1", "name": "Springfield Elementary"},
                                            {"sourcedId": "s2", "name": "Springfield High"}]}


def test_retired_records_are_served_so_apps_can_sync_deletions(api, load_small):
    def retire(rows):
        rows["academicSessions"][1]["type"] = "term"
        rows["users"] = [u for u in rows["users"] if u["sourcedId"] != "u3"]
        rows["roles"] = [r for r in rows["roles"] if r["userSourcedId"] != "u3"]
        rows["enrollments"] = [e for e in rows["enrollments"] if e["userSourcedId"] != "u3"]
        rows["classes"] = [c for c in rows["classes"] if c["sourcedId"] != "k3"]
        rows["enrollments"] = [e for e in rows["enrollments"] if e["classSourcedId"] != "k3"]
    load_small(retire)
    user = api.get("/users/u3").get_json()["user"]
    assert user["status"] == "tobedeleted"
    # A retired user keeps the roles it had, and stays a student so /students syncs it.
    assert user["roles"] == [{"roleType": "primary", "role": "student", "org": org("s2")}]
    assert "u3" in api.ids("/students")
    assert api.get("/students/u3").status_code == 200
    assert api.get("/classes/k3").get_json()["class"]["status"] == "tobedeleted"
    assert api.records("/enrollments", filter="status='tobedeleted'") != []
    # Nested lists that follow enrollments are current memberships.
    assert api.ids("/classes/k2/students") == ["u2"]
    assert api.ids("/teachers/t-krab/classes") == ["k2"]
    # Nested lists that follow the record's own reference keep retired records.
    assert api.ids("/schools/s2/classes") == ["k2", "k3"]


def test_a_student_who_became_a_teacher_is_only_a_teacher(api, load_small):
    def promote(rows):
        rows["academicSessions"][1]["type"] = "term"
        for role in rows["roles"]:
            if role["userSourcedId"] == "u4":
                role.update(sourcedId="r-u4-teacher", role="teacher")
    load_small(promote)
    assert api.get("/users/u4").get_json()["user"]["roles"] == [
        {"roleType": "primary", "role": "teacher", "org": org("s2")}]
    assert "u4" not in api.ids("/students")
    assert "u4" in api.ids("/teachers")
    assert api.ids("/users", filter="roles.role='student'") == ["u1", "u2", "u3"]
    assert api.get("/students/u4").status_code == 404
