"""Errors of the rostering service, each with the binding's body: bad parameters (400), tokens
(401), scopes (403), unknown records and parents (404), methods (405), unknown paths."""
from __future__ import annotations

import pytest

from gateway.oneroster.endpoints import BASE_PATH
from gateway.oneroster.vocabulary import SCOPE_ROSTER, SCOPE_ROSTER_CORE, SCOPE_ROSTER_DEMOGRAPHICS

from rostering_api import error_body

USER_FIELDS = ("sourcedId, status, dateLastModified, metadata, userMasterIdentifier, username, "
               "userIds, enabledUser, givenName, familyName, middleName, preferredFirstName, "
               "preferredMiddleName, preferredLastName, pronouns, roles, userProfiles, primaryOrg, "
               "identifier, email, sms, phone, agents, grades, resources")
USER_SORTABLE = ("dateLastModified, email, enabledUser, familyName, givenName, identifier, "
                 "middleName, phone, preferredFirstName, preferredLastName, preferredMiddleName, "
                 "pronouns, sms, sourcedId, status, userMasterIdentifier, username")


@pytest.fixture
def api(load_small, api_for):
    load_small()
    return api_for("d1")


@pytest.mark.parametrize("params, code_minor, description", [
    ({"limit": "abc"}, "invaliddata", "The limit parameter must be a whole number, got 'abc'."),
    ({"limit": "0"}, "invaliddata", "The limit parameter must be at least 1, got '0'."),
    ({"limit": "-5"}, "invaliddata", "The limit parameter must be a whole number, got '-5'."),
    ({"offset": "-1"}, "invaliddata", "The offset parameter must be a whole number, got '-1'."),
    ({"offset": "1.5"}, "invaliddata", "The offset parameter must be a whole number, got '1.5'."),
    ({"orderBy": "up"}, "invaliddata", "The orderBy parameter must be 'asc' or 'desc', got 'up'."),
    ({"sort": "nope"}, "invaliddata",
     f"The sort parameter names 'nope', which this collection cannot be sorted on (sortable "
     f"fields: {USER_SORTABLE})."),
    ({"sort": "roles"}, "invaliddata",
     f"The sort parameter names 'roles', which this collection cannot be sorted on (sortable "
     f"fields: {USER_SORTABLE})."),
    ({"fields": "nope"}, "invalid_selection_field",
     f"The fields parameter names 'nope', which this collection does not have (available "
     f"fields: {USER_FIELDS})."),
    ({"fields": "sourcedId,password"}, "invalid_selection_field",
     f"The fields parameter names 'password', which this collection does not have (available "
     f"fields: {USER_FIELDS})."),
])
def test_bad_parameters_are_400_with_the_binding_body(api, params, code_minor, description):
    response = api.get("/users", **params)
    assert response.status_code == 400
    assert response.mimetype == "application/json"
    assert response.get_json() == error_body(code_minor, description)


def test_a_single_record_read_checks_its_fields_too(api):
    response = api.get("/users/u1", fields="nope")
    assert response.status_code == 400
    assert response.get_json() == error_body(
        "invalid_selection_field", "The fields parameter names 'nope', which this collection "
                                   f"does not have (available fields: {USER_FIELDS}).")


def test_no_token_is_401_with_a_challenge(api, client):
    response = client.get(BASE_PATH + "/users")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="oneroster"'
    assert response.get_json() == error_body(
        "unauthorisedrequest", "An access token is required: send Authorization: Bearer <token>.")


def test_an_unknown_or_expired_token_is_401_invalid_token(api, expire_tokens):
    response = api.get("/users", token="not-a-token")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="oneroster", error="invalid_token"'
    assert response.get_json() == error_body("unauthorisedrequest",
                                             "The access token is not recognised.")
    expire_tokens()
    response = api.get("/users/u1")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="oneroster", error="invalid_token"'
    assert response.get_json() == error_body("unauthorisedrequest", "The access token has expired.")


def test_the_token_is_checked_before_the_parameters_and_the_path(client):
    assert client.get(BASE_PATH + "/users?limit=abc").status_code == 401
    assert client.get(BASE_PATH + "/users/nobody").status_code == 401


def forbidden(scopes: str) -> dict:
    return error_body("forbidden", f"This operation requires one of these scopes: {scopes}")


def test_scopes(load_small, api_for):
    load_small()
    core = api_for("d1", [SCOPE_ROSTER_CORE])
    roster = api_for("d1", [SCOPE_ROSTER])
    demographics = api_for("d1", [SCOPE_ROSTER_DEMOGRAPHICS])
    # roster-core: collections and single reads, no nested paths, no demographics.
    assert core.get("/users").status_code == 200
    assert core.get("/schools/s1").status_code == 200
    response = core.get("/classes/k1/students")
    assert response.status_code == 403
    assert response.headers["WWW-Authenticate"] == (
        f'Bearer realm="oneroster", error="insufficient_scope", scope="{SCOPE_ROSTER}"')
    assert response.get_json() == forbidden(SCOPE_ROSTER)
    assert core.get("/demographics").get_json() == forbidden(SCOPE_ROSTER_DEMOGRAPHICS)
    # roster: everything but demographics, nested paths included.
    assert roster.get("/users/u1").status_code == 200
    assert roster.get("/schools/s2/classes/k2/students").status_code == 200
    assert roster.get("/demographics/u1").status_code == 403
    # roster-demographics: demographics only.
    assert demographics.get("/demographics/u1").status_code == 200
    assert demographics.get("/demographics").status_code == 200
    response = demographics.get("/users")
    assert response.status_code == 403
    assert response.get_json() == forbidden(f"{SCOPE_ROSTER_CORE} {SCOPE_ROSTER}")


@pytest.mark.parametrize("path, description", [
    ("/users/nobody", "There is no user with sourcedId 'nobody'."),
    ("/schools/d1", "There is no school with sourcedId 'd1'."),
    ("/students/t-hoover", "There is no student with sourcedId 't-hoover'."),
    ("/classes/nope/students", "There is no class with sourcedId 'nope'."),
    ("/students/t-hoover/classes", "There is no student with sourcedId 't-hoover'."),
    ("/terms/nope/classes", "There is no term with sourcedId 'nope'."),
    ("/schools/nope/classes/k1/students", "There is no school with sourcedId 'nope'."),
    # k2 exists, but is not a class of s1.
    ("/schools/s1/classes/k2/enrollments", "There is no class with sourcedId 'k2'."),
])
def test_unknown_records_and_parents_are_404_unknownobject(api, path, description):
    response = api.get(path)
    assert response.status_code == 404
    assert response.get_json() == error_body("unknownobject", description)


def test_other_methods_are_405(api):
    response = api.client.post(BASE_PATH + "/users",
                               headers={"Authorization": f"Bearer {api.token}"})
    assert response.status_code == 405
    assert response.get_json() == error_body(
        "invaliddata", "The method is not allowed for the requested URL.", code_major="unsupported")
    assert set(response.headers["Allow"].replace(" ", "").split(",")) == {"GET", "HEAD", "OPTIONS"}
    assert response.mimetype == "application/json"
    assert api.client.delete(BASE_PATH + "/users/u1").status_code == 405


def test_an_unknown_path_under_the_service_is_404_with_the_binding_body(api):
    for path in ("/nothing", "/users/u1/nothing", "/users/"):
        response = api.get(path)
        assert response.status_code == 404, path
        assert response.get_json() == error_body(
            "unknownobject", "The requested URL was not found on the server. If you entered the "
                             "URL manually please check your spelling and try again.")
