"""The Resources service (/ims/oneroster/resources/v1p2) over HTTP: its 5 operations answer
bodies that validate against the official 1EdTech resources OpenAPI document, with the scopes
that document names; an app sees only the resources of classes, courses and people in its
policy's scope; reading a person's resources is recorded in the disclosure ledger."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft7Validator
from referencing import Registry
from referencing.jsonschema import DRAFT7
from sqlalchemy import select

from gateway.oneroster.endpoints import RESOURCES
from gateway.oneroster.vocabulary import (RESOURCES_SCOPES, ROSTERING_SCOPES, SCOPE_RESOURCE,
                                          SCOPE_RESOURCE_CORE)
from gateway.sharing.ledger import entry_people
from gateway.store.sharing import LedgerEntry

from resources_bundle import import_resources_district
from rostering_api import ISSUER, error_body

OFFICIAL = Path("/work/shared/specs/oneroster/onerosterv1p2resourcesservice_openapi3_v1p0.json")
BASE = RESOURCES.base_path
ALL_SCOPES = (*ROSTERING_SCOPES, *RESOURCES_SCOPES)
# Springfield Elementary only: class k1 (course c1), the people of k1 and the school's students.
ELEMENTARY = {"schools": ["s1"], "fields": {"user": ["*"]}}


@pytest.fixture(scope="module")
def official() -> dict:
    """The official resources service document (reference data, read from the shared specs)."""
    return json.loads(OFFICIAL.read_text(encoding="utf-8"))


def validator(document: dict, name: str) -> Draft7Validator:
    """A validator for one component schema of ``document``, its $refs resolved within it."""
    uri = "urn:oneroster:resources"
    registry = Registry().with_resource(uri, DRAFT7.create_resource(document))
    return Draft7Validator({"$ref": f"{uri}#/components/schemas/{name}"}, registry=registry,
                           format_checker=Draft7Validator.FORMAT_CHECKER)


@pytest.fixture
def files(load_bundle, tmp_path) -> dict:
    """The small district with its resources files imported; returns the rows."""
    return import_resources_district(load_bundle, tmp_path)


@pytest.fixture
def call(client, make_token):
    """GET under the resources base with a new app's token (``scopes``, ``policy``)."""
    def make(scopes=ALL_SCOPES, **policy):
        token = make_token(scopes=scopes, **policy)

        def get(path: str, **params):
            return client.get(BASE + path, query_string=params,
                              headers={"Authorization": f"Bearer {token}"})
        get.token = token
        return get
    return make


def ids(response) -> list[str]:
    assert response.status_code == 200, response.get_json()
    return sorted(record["sourcedId"] for record in response.get_json()["resources"])


def ledger(database) -> list[tuple[str, str, list[str], list[str]]]:
    with database.session_scope() as session:
        return [(entry.endpoint, entry.entity, sorted(entry.fields),
                 entry_people(session, entry.district_id, entry.seq))
                for entry in session.execute(select(LedgerEntry).order_by(LedgerEntry.seq))
                .scalars()]


def test_every_operation_answers_what_the_official_document_describes(files, call, official):
    get = call()
    operations = {o["operationId"]: (path, method) for path, item in official["paths"].items()
                  for method, o in item.items()}
    assert {e.operation_id: (e.path, e.method.lower()) for e in RESOURCES.endpoints} == operations
    answers = {
        "/resources": sorted(r["sourcedId"] for r in files["resources"]),
        "/classes/k1/resources": ["res-math"], "/classes/k2/resources": ["res-bio"],
        "/courses/c2/resources": ["res-lab"], "/courses/c1/resources": [],
        "/users/u1/resources": ["res-tutor"], "/users/t-hoover/resources": [],
    }
    collection = validator(official, "ResourceSetDType")
    for path, expected in answers.items():
        response = get(path)
        assert ids(response) == expected, path
        assert response.headers["X-Total-Count"] == str(len(expected))
        collection.validate(response.get_json())
    single = get("/resources/res-math")
    assert single.status_code == 200
    validator(official, "SingleResourceDType").validate(single.get_json())
    record = single.get_json()["resource"]
    row = files["resources"][0]
    assert record["dateLastModified"].endswith("Z")
    del record["dateLastModified"]
    assert record == {"sourcedId": row["sourcedId"], "status": "active", "title": row["title"],
                      "roles": row["roles"].split(","), "importance": row["importance"],
                      "vendorResourceId": row["vendorResourceId"], "vendorId": row["vendorId"],
                      "applicationId": row["applicationId"]}
    # Optional fields the CSV left empty are omitted, never null.
    assert get("/resources/res-tutor").get_json()["resource"].keys() == {
        "sourcedId", "status", "dateLastModified", "roles", "vendorResourceId"}


def test_query_parameters_work_as_on_rostering(files, call):
    get = call()
    assert ids(get("/resources", filter="importance='primary'")) == ["res-math"]
    assert ids(get("/resources", filter="roles='student'")) == ["res-math", "res-tutor"]
    assert ids(get("/resources", filter="title~'lab' OR vendorResourceId='V-BIO'")) == [
        "res-bio", "res-lab"]
    response = get("/resources", sort="vendorResourceId", orderBy="desc", limit="2",
                   fields="sourcedId,vendorResourceId")
    body = response.get_json()["resources"]
    assert [r["vendorResourceId"] for r in body] == ["V-TUTOR", "V-MATH"]
    assert all(r.keys() == {"sourcedId", "vendorResourceId"} for r in body)
    assert response.headers["X-Total-Count"] == "4"
    assert 'rel="next"' in response.headers["Link"]
    assert response.headers["Link"].startswith(f"<{ISSUER}{BASE}/resources?")
    bad = get("/resources", filter="nope='x'")
    assert bad.status_code == 400
    assert bad.get_json()["imsx_CodeMinor"]["imsx_codeMinorField"][0][
        "imsx_codeMinorFieldValue"] == "invalid_filter_field"


def test_scopes_are_those_of_the_official_document(files, call, client):
    core = call(scopes=[SCOPE_RESOURCE_CORE])
    assert core("/resources").status_code == 200
    assert core("/resources/res-math").status_code == 200
    # Nested reads need resource.readonly.
    assert core("/classes/k1/resources").status_code == 403
    assert call(scopes=[SCOPE_RESOURCE])("/classes/k1/resources").status_code == 200
    rostering_only = call(scopes=ROSTERING_SCOPES)
    assert rostering_only("/resources").status_code == 403
    assert client.get(BASE + "/resources").status_code == 401


def test_unknown_records_are_unknownobject(files, call):
    get = call()
    assert get("/resources/nothing").status_code == 404
    response = get("/classes/nowhere/resources")
    assert response.status_code == 404
    assert response.get_json() == error_body(
        "unknownobject", "There is no class with sourcedId 'nowhere'.")


def test_an_app_sees_only_the_resources_of_what_its_policy_shares(files, call):
    get = call(policy=ELEMENTARY)
    # k1 is Elementary's, and u1 one of its students; k2, c2 and u2 are Springfield High's.
    assert ids(get("/resources")) == ["res-math", "res-tutor"]
    assert ids(get("/classes/k1/resources")) == ["res-math"]
    assert ids(get("/users/u1/resources")) == ["res-tutor"]
    for hidden in ("/resources/res-bio", "/resources/res-lab", "/classes/k2/resources",
                   "/courses/c2/resources", "/users/u2/resources"):
        assert get(hidden).status_code == 404, hidden
    assert ids(get("/resources", filter="vendorResourceId='V-BIO'")) == []
    # An app without a policy sees nothing.
    assert ids(call(policy=None)("/resources")) == []


def test_a_persons_resources_are_a_disclosure_about_that_person(files, call, database):
    shared = call()
    assert ids(shared("/resources")) and ids(shared("/classes/k1/resources"))
    assert ledger(database) == []  # resources themselves are not about people
    assert ids(shared("/users/u1/resources")) == ["res-tutor"]
    assert ids(shared("/users/t-hoover/resources")) == []  # nothing sent, nothing recorded
    assert ledger(database) == [("getResourcesForUser", "user", ["resources", "sourcedId"],
                                 ["u1"])]


def test_pseudonymized_people_are_named_by_their_pseudonyms(files, call, client, database):
    get = call(policy={**ELEMENTARY, "pseudonymize": ["user.sourcedId"]})
    assert get("/users/u1/resources").status_code == 404  # the stored id names no one here
    students = client.get("/ims/oneroster/rostering/v1p2/classes/k1/students",
                          headers={"Authorization": f"Bearer {get.token}"})
    [pseudonym] = [user["sourcedId"] for user in students.get_json()["users"]]
    assert pseudonym != "u1"
    assert ids(get(f"/users/{pseudonym}/resources")) == ["res-tutor"]
    assert ledger(database)[-1][:2] == ("getResourcesForUser", "user")
    assert ledger(database)[-1][3] == ["u1"]


def test_discovery_serves_the_services_document(files, client, official):
    for path in (BASE + "/discovery/", f"{BASE}/discovery/{RESOURCES.document_name}"):
        response = client.get(path)
        assert response.status_code == 200
        document = response.get_json()
        assert document["servers"][0]["url"] == ISSUER + BASE
        served = {o["operationId"]: (path, o["security"])
                  for path, item in document["paths"].items() for o in item.values()}
        assert served == {o["operationId"]: (path, o["security"])
                          for path, item in official["paths"].items() for o in item.values()}
        ours = document["components"]["schemas"]["ResourceDType"]
        theirs = official["components"]["schemas"]["ResourceDType"]
        assert set(ours["properties"]) == set(theirs["properties"])
        assert ours["required"] == theirs["required"]
