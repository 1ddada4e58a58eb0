"""Every one of the 41 operations, on the demo district, answers a body that validates against the
project's OpenAPI document; every href in those bodies works; discovery serves the document."""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from jsonschema import Draft7Validator
from referencing import Registry
from referencing.jsonschema import DRAFT7

from gateway.oneroster.endpoints import BASE_PATH, ENDPOINTS, RESOURCES
from gateway.oneroster.openapi import DOCUMENT_NAME, build_openapi, response_schema_name
from gateway.oneroster.vocabulary import RESOURCES_SCOPES, ROSTERING_SCOPES

from bundles import write_bundle
from resources_bundle import resources_district
from rostering_api import ISSUER, SERVICE

# A record of the demo district for every path parameter (the demo's semesters are typed term).
PATH_IDS = {
    "classSourcedId": "class-01-KG-hr-1", "courseSourcedId": "course-01-KG-hr",
    "schoolSourcedId": "school-01", "studentSourcedId": "stu-0001",
    "teacherSourcedId": "tch-001", "termSourcedId": "sem-2027-1", "userSourcedId": "stu-0001",
}
SINGLE_IDS = {
    "/academicSessions/{sourcedId}": "sy-2027", "/classes/{sourcedId}": "class-01-KG-hr-1",
    "/courses/{sourcedId}": "course-01-KG-hr", "/demographics/{sourcedId}": "stu-0001",
    "/enrollments/{sourcedId}": "enr-1", "/gradingPeriods/{sourcedId}": "gp-2027-1",
    "/orgs/{sourcedId}": "district-1", "/schools/{sourcedId}": "school-01",
    "/students/{sourcedId}": "stu-0001", "/teachers/{sourcedId}": "tch-001",
    "/terms/{sourcedId}": "sem-2027-1", "/users/{sourcedId}": "tch-001",
}


def concrete(path: str) -> str:
    """The endpoint's path template with demo ids filled in."""
    if path in SINGLE_IDS:
        return path.replace("{sourcedId}", SINGLE_IDS[path])
    for name, value in PATH_IDS.items():
        path = path.replace("{" + name + "}", value)
    return path


@pytest.fixture(scope="module")
def document() -> dict:
    """The project's generated OpenAPI document."""
    return build_openapi()


def validator(document: dict, name: str) -> Draft7Validator:
    """A validator for one component schema, its $refs resolved within the document."""
    uri = "urn:gateway:rostering"
    registry = Registry().with_resource(uri, DRAFT7.create_resource(document))
    return Draft7Validator({"$ref": f"{uri}#/components/schemas/{name}"}, registry=registry,
                           format_checker=Draft7Validator.FORMAT_CHECKER)


def hrefs(value):
    """Every href inside a body."""
    if isinstance(value, dict):
        if "href" in value:
            yield value["href"]
        for item in value.values():
            yield from hrefs(item)
    elif isinstance(value, list):
        for item in value:
            yield from hrefs(item)


@pytest.fixture
def demo_api(demo_district, api_for):
    """An app of the demo district holding every rostering scope."""
    return api_for(demo_district)


def test_every_operation_answers_a_body_valid_against_the_document(demo_api, document):
    assert len(ENDPOINTS) == 41
    seen_hrefs: set[str] = set()
    for endpoint in ENDPOINTS:
        path = concrete(endpoint.path)
        params = {"limit": "10000"} if endpoint.collection else {}
        response = demo_api.get(path, **params)
        assert response.status_code == 200, (path, response.get_json())
        assert response.mimetype == "application/json"
        body = response.get_json()
        errors = sorted(validator(document, response_schema_name(endpoint)).iter_errors(body),
                        key=str)
        assert not errors, (path, [e.message for e in errors[:5]])
        assert list(body) == [endpoint.wrapper], path
        if endpoint.collection:
            records = body[endpoint.wrapper]
            assert records, f"{path} served nothing: the test would prove little"
            assert response.headers["X-Total-Count"] == str(len(records))
            assert response.headers["Link"].startswith(f"<{SERVICE}{path}?")
        seen_hrefs.update(hrefs(body))
    # References are absolute, built on ISSUER, and each of them can be followed.
    assert seen_hrefs
    for href in sorted(seen_hrefs):
        assert href.startswith(SERVICE + "/"), href
        followed = demo_api.get(urlsplit(href).path.removeprefix(BASE_PATH))
        assert followed.status_code == 200, href


def test_error_bodies_are_valid_against_the_document(demo_api, document, client):
    check = validator(document, "imsx_StatusInfoDType")
    for response in (demo_api.get("/users/nobody"), demo_api.get("/users", limit="abc"),
                     demo_api.get("/users", filter="nope='x'"), client.get(BASE_PATH + "/users"),
                     demo_api.get("/nothing-here")):
        assert response.status_code >= 400
        check.validate(response.get_json())


def test_discovery_serves_the_document_with_absolute_urls(client):
    expected = build_openapi(server_url=SERVICE, token_url=ISSUER + "/oauth/token")
    for path in (BASE_PATH + "/discovery/", f"{BASE_PATH}/discovery/{DOCUMENT_NAME}"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.mimetype == "application/json"
        assert response.get_json() == expected


# Whom /students/{id} and /teachers/{id} read in the small district (tests/bundles.py).
RESOURCE_USERS = {"/students/{sourcedId}": "u2", "/teachers/{sourcedId}": "t-hoover"}


def test_records_with_resources_are_valid_and_their_references_resolve(
        load_bundle, api_for, client, document, tmp_path):
    load_bundle(write_bundle(tmp_path / "resources", resources_district()))
    api = api_for(scopes=(*ROSTERING_SCOPES, *RESOURCES_SCOPES))
    seen_hrefs: set[str] = set()
    served = 0
    for endpoint in ENDPOINTS:
        if endpoint.entity not in ("user", "class", "course") or endpoint.parents:
            continue
        path = endpoint.path.replace("{sourcedId}", RESOURCE_USERS.get(endpoint.path, {
            "user": "u1", "class": "k1", "course": "c2"}[endpoint.entity]))
        response = api.get(path)
        assert response.status_code == 200, (path, response.get_json())
        body = response.get_json()
        errors = sorted(validator(document, response_schema_name(endpoint)).iter_errors(body),
                        key=str)
        assert not errors, (path, [e.message for e in errors[:5]])
        records = body[endpoint.wrapper] if endpoint.collection else [body[endpoint.wrapper]]
        served += sum(1 for record in records if record.get("resources"))
        seen_hrefs.update(hrefs(body))
    assert served
    resources_base = ISSUER + RESOURCES.base_path
    assert any(href.startswith(resources_base + "/resources/") for href in seen_hrefs)
    for href in sorted(seen_hrefs):
        assert href.startswith((SERVICE + "/", resources_base + "/resources/")), href
        followed = client.get(urlsplit(href).path, headers={"Authorization": f"Bearer {api.token}"})
        assert followed.status_code == 200, href
