"""Every one of the 35 gradebook operations answers bodies that validate against the official
1EdTech gradebook OpenAPI document: records of every entity, the sourcedId pairs of a POST, and
the imsx_StatusInfo body of a 404."""
from __future__ import annotations

import pytest
from jsonschema import Draft7Validator
from referencing import Registry
from referencing.jsonschema import DRAFT7

from gateway.gradebook.endpoints import BASE_PATH, OPERATIONS
from gateway.gradebook.records import ENTITIES

from gradebook_api import ALL_SCOPES, GradebookApi, official_document, ref

PATH_IDS = {"classSourcedId": "k2", "academicSessionSourcedId": "t1",
            "lineItemSourcedId": "li", "studentSourcedId": "u2", "schoolSourcedId": "s2"}
RECORDS = {
    "category": {"sourcedId": "cat", "status": "active", "dateLastModified": "2027-01-01T00:00:00Z",
                 "title": "Homework", "weight": 0.25, "metadata": {"sis.code": "HW"}},
    "scoreScale": {"sourcedId": "scale", "title": "Letters", "type": "letter", "class": ref("k2"),
                   "course": ref("c2"), "scoreScaleValue": [
                       {"itemValueLHS": "90-100", "itemValueRHS": "A"},
                       {"itemValueLHS": "0-89", "itemValueRHS": "B"}]},
    "lineItem": {"sourcedId": "li", "title": "Lab", "description": "Cells",
                 "assignDate": "2027-01-10T08:00:00Z", "dueDate": "2027-01-17T08:00:00Z",
                 "class": ref("k2"), "school": ref("s2"), "category": ref("cat"),
                 "academicSession": ref("t1"), "gradingPeriod": ref("t1"),
                 "scoreScale": ref("scale"), "resultValueMin": 0, "resultValueMax": 10,
                 "learningObjectiveSet": [{"source": "case", "learningObjectiveIds": [
                     "9b6a8d8f-6d0b-4a77-9f35-5a3c2a9d3f11"]}]},
    "result": {"sourcedId": "res", "lineItem": ref("li"), "student": ref("u2"),
               "class": ref("k2"), "scoreScale": ref("scale"), "scoreStatus": "fully graded",
               "score": 9.5, "textScore": "A", "scoreDate": "2027-01-18", "comment": "Fine",
               "inProgress": "false", "incomplete": "false", "late": "true", "missing": "false",
               "learningObjectiveSet": [{"source": "case", "learningObjectiveResults": [
                   {"learningObjectiveId": "9b6a8d8f-6d0b-4a77-9f35-5a3c2a9d3f11", "score": 3}]}]},
    "assessmentLineItem": {"sourcedId": "ali", "title": "Unit test", "class": ref("k2"),
                           "scoreScale": ref("scale"), "resultValueMin": 0,
                           "resultValueMax": 50},
    "assessmentResult": {"sourcedId": "ares", "assessmentLineItem": ref("ali"),
                         "student": ref("u3"), "score": 41, "scoreDate": "2027-02-01",
                         "scorePercentile": 88.5, "scoreStatus": "fully graded"},
}
# Records created by the POST operations (each under its own path).
POSTED = {
    "postLineItemsForClass": {"lineItems": [dict(RECORDS["lineItem"], sourcedId="li-post",
                                                 category=None)]},
    "postLineItemsForSchool": {"lineItems": [dict(RECORDS["lineItem"], sourcedId="li-school")]},
    "postResultsForLineItem": {"results": [dict(RECORDS["result"], sourcedId="res-post",
                                                student=ref("u3"))]},
    "postResultsForAcademicSessionForClass": {"results": [
        dict(RECORDS["result"], sourcedId="res-session", lineItem=ref("li-post"))]},
}


def _validator(schema: dict) -> Draft7Validator:
    """A validator for a schema of the document (a ``$ref`` into its components)."""
    uri = "urn:oneroster:gradebook"
    registry = Registry().with_resource(uri, DRAFT7.create_resource(official_document()))
    return Draft7Validator({"$ref": uri + schema["$ref"]}, registry=registry,
                           format_checker=Draft7Validator.FORMAT_CHECKER)


def _response_schema(operation, status: str) -> dict | None:
    """The official schema of an operation's response with ``status`` (None: declared with no
    content)."""
    declared = official_document()["paths"][operation.path][operation.method.lower()]["responses"]
    content = declared[status].get("content")
    return None if content is None else content["application/json"]["schema"]


def _path(operation, record_id: str | None = None) -> str:
    path = operation.path
    for name, value in PATH_IDS.items():
        path = path.replace("{" + name + "}", value)
    return path.replace("{sourcedId}", record_id or "")


@pytest.fixture
def gradebook(load_small, client, make_token):
    load_small()
    return GradebookApi(client, make_token("d1", ALL_SCOPES))


def test_every_operation_answers_bodies_valid_against_the_official_document(gradebook):
    official_document()
    by_id = {o.operation_id: o for o in OPERATIONS}
    # Writes first, in an order whose references exist: PUT creates, PUT again replaces; both
    # answer 201, the only success the document declares for a PUT.
    for name in ("category", "scoreScale", "lineItem", "result", "assessmentLineItem",
                 "assessmentResult"):
        entity = ENTITIES[name]
        operation = next(o for o in OPERATIONS if o.method == "PUT" and o.entity == name)
        body = {entity.single_key: {k: v for k, v in RECORDS[name].items()}}
        for expected in (201, 201):
            response = gradebook.put(_path(operation, RECORDS[name]["sourcedId"]), body)
            assert response.status_code == expected, (name, response.get_json())
            # The document declares the 201 without content and no 200: the record sent back is
            # checked against the record schema the request uses.
            _validator({"$ref": f"#/components/schemas/Single{name[0].upper()}{name[1:]}DType"}
                       ).validate(
                response.get_json())
    for operation_id, body in POSTED.items():
        operation = by_id[operation_id]
        body = {key: [{k: v for k, v in record.items() if v is not None} for record in records]
                for key, records in body.items()}
        response = gradebook.post(_path(operation), body)
        assert response.status_code == 201, (operation_id, response.get_json())
        _validator(_response_schema(operation, "201")).validate(response.get_json())
    reads = [o for o in OPERATIONS if o.method == "GET"]
    assert len(reads) == 19
    for operation in reads:
        record_id = RECORDS[operation.entity]["sourcedId"]
        response = gradebook.get(_path(operation, record_id))
        assert response.status_code == 200, (operation.operation_id, response.get_json())
        body = response.get_json()
        _validator(_response_schema(operation, "200")).validate(body)
        if operation.collection:
            assert body[ENTITIES[operation.entity].collection_key], operation.operation_id
    for operation in OPERATIONS:
        if operation.method == "DELETE":
            response = gradebook.delete(_path(operation, RECORDS[operation.entity]["sourcedId"]))
            assert response.status_code == 204 and response.data == b""
    # Every operation that names a record answers the document's imsx_StatusInfo body for one
    # that does not exist.
    for operation in OPERATIONS:
        if not operation.path_params:
            continue
        path = operation.path.replace("{sourcedId}", "missing")
        for name in operation.path_params:
            path = path.replace("{" + name + "}", "missing")
        response = gradebook.client.open(BASE_PATH + path, method=operation.method,
                                         json={} if operation.method in ("PUT", "POST") else None,
                                         headers={"Authorization": f"Bearer {gradebook.token}"})
        if operation.method == "PUT":
            # A PUT creates a record under any new sourcedId; its empty body is refused.
            assert response.status_code == 422, operation.operation_id
        else:
            assert response.status_code == 404, operation.operation_id
        _validator(_response_schema(operation, str(response.status_code))).validate(
            response.get_json())
