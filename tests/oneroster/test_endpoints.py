"""The operation table agrees with the official endpoint list and the official OpenAPI document."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from gateway.oneroster.endpoints import (BASE_PATH, BY_OPERATION_ID, COLLECTION_QUERY, ENDPOINTS,
                                         KIND_RULES, RELATIONS, SINGLE_QUERY, endpoint)
from gateway.oneroster.schemas import ENTITIES
from gateway.oneroster.vocabulary import (ORG_TYPES, ROLES, SCOPE_ROSTER, SCOPE_ROSTER_CORE,
                                          SCOPE_ROSTER_DEMOGRAPHICS, SESSION_TYPES)

OFFICIAL_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "specs" / "oneroster"


def _official(name: str) -> dict:
    """An official 1EdTech document: missing fails under CI=true, skips elsewhere."""
    path = OFFICIAL_DIR / name
    if not path.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"official OneRoster document missing: {path}")
        pytest.skip(f"official OneRoster document not available at {path}")
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def summary() -> list[dict]:
    """The rostering part of the official endpoint summary."""
    return _official("endpoint-summary.json")["rostering"]


@pytest.fixture(scope="module")
def official() -> dict:
    """The official rostering OpenAPI document."""
    return _official("onerosterv1p2rostersservice_openapi3_v1p0.json")


def test_table_matches_the_official_endpoint_summary_exactly(summary):
    ours = {(e.method, e.full_path): {"operationId": e.operation_id, "scopes": list(e.scopes),
                                      "query": list(e.query_params)} for e in ENDPOINTS}
    theirs = {(o["method"], o["path"]): {"operationId": o["operationId"], "scopes": o["scopes"],
                                         "query": o["query"]} for o in summary}
    assert sorted(ours) == sorted(theirs), (
        f"missing: {sorted(set(theirs) - set(ours))}; extra: {sorted(set(ours) - set(theirs))}")
    differences = {key: (ours[key], theirs[key]) for key in theirs if ours[key] != theirs[key]}
    assert not differences, differences
    assert [e.full_path for e in ENDPOINTS] == [o["path"] for o in summary]


def test_counts_41_operations_12_collections_12_singles_17_nested():
    assert len(ENDPOINTS) == 41
    assert len(BY_OPERATION_ID) == 41
    assert sum(1 for e in ENDPOINTS if e.collection and not e.nested) == 12
    assert sum(1 for e in ENDPOINTS if not e.collection) == 12
    assert sum(1 for e in ENDPOINTS if e.nested) == 17
    assert all(e.method == "GET" and e.full_path.startswith(BASE_PATH + "/") for e in ENDPOINTS)


def test_path_parameters_tags_and_wrappers_match_the_official_document(official):
    schemas = official["components"]["schemas"]
    for e in ENDPOINTS:
        operation = official["paths"][e.path]["get"]
        assert operation["operationId"] == e.operation_id
        assert operation["tags"] == [e.tag]
        assert [p["name"] for p in operation["parameters"] if p["in"] == "path"] == list(e.path_params)
        assert [p["name"] for p in operation["parameters"] if p["in"] == "query"] == list(e.query_params)
        assert operation["security"] == [{"OAuth2CC": list(e.scopes)}]
        body = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        wrapper = schemas[body.rsplit("/", 1)[1]]
        assert list(wrapper["properties"]) == [e.wrapper], e.path
        item = wrapper["properties"][e.wrapper]
        item_ref = item["items"]["$ref"] if e.collection else item["$ref"]
        assert item_ref.rsplit("/", 1)[1] == ENTITIES[e.entity].schema.openapi_name


@pytest.mark.parametrize(("path", "wrapper"), [
    ("/schools/{sourcedId}", "org"), ("/schools", "orgs"),
    ("/terms/{sourcedId}", "academicSession"), ("/gradingPeriods/{sourcedId}", "academicSession"),
    ("/terms/{termSourcedId}/gradingPeriods", "academicSessions"),
    ("/students/{sourcedId}", "user"), ("/teachers/{sourcedId}", "user"),
    ("/classes/{classSourcedId}/students", "users"),
    ("/demographics/{sourcedId}", "demographics"), ("/demographics", "demographics"),
    ("/schools/{schoolSourcedId}/classes/{classSourcedId}/enrollments", "enrollments"),
])
def test_wrappers_follow_the_entity_not_the_path(path, wrapper):
    assert next(e for e in ENDPOINTS if e.path == path).wrapper == wrapper


def test_scopes():
    for e in ENDPOINTS:
        if e.entity == "demographics":
            assert e.scopes == (SCOPE_ROSTER_DEMOGRAPHICS,)
        elif e.nested:
            assert e.scopes == (SCOPE_ROSTER,)
        else:
            assert e.scopes == (SCOPE_ROSTER, SCOPE_ROSTER_CORE)


def test_query_parameters():
    assert endpoint("getAllUsers").query_params == COLLECTION_QUERY
    assert endpoint("getClassesForUser").query_params == COLLECTION_QUERY
    assert endpoint("getUser").query_params == SINGLE_QUERY == ("fields",)


def test_every_nested_path_has_one_relation_and_its_parents_are_its_path_parameters():
    nested = [e for e in ENDPOINTS if e.nested]
    assert sorted(e.relation for e in nested) == sorted(RELATIONS)
    for e in nested:
        relation = RELATIONS[e.relation]
        assert relation.entity == e.entity
        assert tuple(p.param for p in e.parents) == e.path_params
        assert e.kind is None
    for e in ENDPOINTS:
        if not e.nested:
            assert e.relation is None
            assert e.path_params == (() if e.collection else ("sourcedId",))


def test_relations_of_the_nested_paths():
    relations = {e.path: (e.relation, [(p.param, p.entity, p.kind) for p in e.parents])
                 for e in ENDPOINTS if e.nested}
    assert relations == {
        "/classes/{classSourcedId}/students": ("class_students", [("classSourcedId", "class", None)]),
        "/classes/{classSourcedId}/teachers": ("class_teachers", [("classSourcedId", "class", None)]),
        "/courses/{courseSourcedId}/classes": ("course_classes",
                                               [("courseSourcedId", "course", None)]),
        "/schools/{schoolSourcedId}/classes": ("school_classes",
                                               [("schoolSourcedId", "org", "school")]),
        "/schools/{schoolSourcedId}/classes/{classSourcedId}/enrollments": (
            "school_class_enrollments",
            [("schoolSourcedId", "org", "school"), ("classSourcedId", "class", None)]),
        "/schools/{schoolSourcedId}/classes/{classSourcedId}/students": (
            "school_class_students",
            [("schoolSourcedId", "org", "school"), ("classSourcedId", "class", None)]),
        "/schools/{schoolSourcedId}/classes/{classSourcedId}/teachers": (
            "school_class_teachers",
            [("schoolSourcedId", "org", "school"), ("classSourcedId", "class", None)]),
        "/schools/{schoolSourcedId}/courses": ("school_courses",
                                               [("schoolSourcedId", "org", "school")]),
        "/schools/{schoolSourcedId}/enrollments": ("school_enrollments",
                                                   [("schoolSourcedId", "org", "school")]),
        "/schools/{schoolSourcedId}/students": ("school_students",
                                                [("schoolSourcedId", "org", "school")]),
        "/schools/{schoolSourcedId}/teachers": ("school_teachers",
                                                [("schoolSourcedId", "org", "school")]),
        "/schools/{schoolSourcedId}/terms": ("school_terms", [("schoolSourcedId", "org", "school")]),
        "/students/{studentSourcedId}/classes": ("student_classes",
                                                 [("studentSourcedId", "user", "student")]),
        "/teachers/{teacherSourcedId}/classes": ("teacher_classes",
                                                 [("teacherSourcedId", "user", "teacher")]),
        "/terms/{termSourcedId}/classes": ("term_classes",
                                           [("termSourcedId", "academicSession", "term")]),
        "/terms/{termSourcedId}/gradingPeriods": ("term_grading_periods",
                                                  [("termSourcedId", "academicSession", "term")]),
        "/users/{userSourcedId}/classes": ("user_classes", [("userSourcedId", "user", None)]),
    }


def test_kinds_are_vocabulary_values_of_entities_that_have_kinds():
    vocabularies = {"org": ORG_TYPES, "academicSession": SESSION_TYPES, "user": ROLES}
    kinds = [(e.entity, e.kind) for e in ENDPOINTS if e.kind]
    kinds += [(p.entity, p.kind) for e in ENDPOINTS for p in e.parents if p.kind]
    assert kinds
    for entity, kind in kinds:
        assert entity in KIND_RULES
        assert kind in vocabularies[entity]
    assert {e.path: e.kind for e in ENDPOINTS if e.kind and e.collection} == {
        "/gradingPeriods": "gradingPeriod", "/schools": "school", "/students": "student",
        "/teachers": "teacher", "/terms": "term"}
