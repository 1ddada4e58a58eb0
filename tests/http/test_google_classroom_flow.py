"""Google Classroom's OneRoster 1.2 rostering sequence, as it makes it, on the demo district as
the quickstart loads it (its classes name semesters as their terms, it has no session of type
term): find the teacher by email, read their active classes, the class's students, then follow
``classes[0].terms[0]`` to the term and its grading periods."""
from __future__ import annotations

import pytest


@pytest.fixture
def google(load_bundle, fixtures_dir, api_for):
    load_bundle(fixtures_dir / "demo")
    return api_for("district-1")


def test_the_sequence_google_classroom_makes(google):
    teachers = google.get("/teachers", filter="email='leah.abdi1@prairieridge.example'",
                          limit="10000")
    assert teachers.status_code == 200
    [teacher] = teachers.get_json()["users"]
    classes = google.get(f"/teachers/{teacher['sourcedId']}/classes", filter="status='active'")
    assert classes.status_code == 200
    first = classes.get_json()["classes"][0]
    students = google.get(f"/classes/{first['sourcedId']}/students")
    assert students.status_code == 200 and students.get_json()["users"]

    term_id = first["terms"][0]["sourcedId"]
    assert term_id == "sem-2027-1"
    term = google.get(f"/terms/{term_id}")
    assert term.status_code == 200
    assert term.get_json()["academicSession"]["type"] == "semester"
    periods = google.get(f"/terms/{term_id}/gradingPeriods")
    assert periods.status_code == 200
    assert [p["sourcedId"] for p in periods.get_json()["academicSessions"]] == ["gp-2027-1",
                                                                                 "gp-2027-2"]
    term_classes = google.get(f"/terms/{term_id}/classes", limit="10000")
    assert first["sourcedId"] in [c["sourcedId"] for c in term_classes.get_json()["classes"]]


def test_terms_lists_only_sessions_of_type_term_and_refuses_grading_periods_by_id(google):
    assert google.get("/terms").get_json() == {"academicSessions": []}
    response = google.get("/terms/gp-2027-1")
    assert response.status_code == 404
    assert response.get_json()["imsx_description"] == "There is no term with sourcedId 'gp-2027-1'."
    assert google.get("/terms/gp-2027-1/gradingPeriods").status_code == 404
