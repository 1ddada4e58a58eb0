"""The operations of the OneRoster 1.2 REST services, as data: one :class:`Service` per service
(base path, operations, discovery document name), each operation an :class:`Endpoint` (path,
methods, scopes, entity, kind, parents, relation). The HTTP layer registers a route per endpoint of
every service in :data:`SERVICES`; the read path (:mod:`gateway.oneroster.service`) follows the
endpoint's entity, kind and relation; the OpenAPI generator documents each service from its table.

Rostering: the 41 read operations of the Rostering service.

Derived from the official endpoint list (``endpoint-summary.json`` and the OpenAPI document
``onerosterv1p2rostersservice_openapi3_v1p0.json``) and checked against it by
``tests/oneroster/test_endpoints.py``: 12 collections, their 12 ``/{sourcedId}`` reads and 17
nested collections, all GET. The HTTP layer registers a route per :class:`Endpoint`; the query
layer implements each nested ``relation`` named here; the OpenAPI generator documents them.

Vocabulary used below:

- ``entity``: the entity the operation returns (a key of :data:`gateway.oneroster.schemas.ENTITIES`),
  which also decides the response wrapper (``/schools/{id}`` answers ``{"org": ...}``).
- ``kind``: the subset of that entity an operation serves, by :data:`KIND_RULES`: for orgs and
  academic sessions their ``type`` (``school``, ``term``, ``gradingPeriod``), for users a role they
  hold in the roles table (``student``, ``teacher``).
- ``parents``: for nested paths, the records named by the path, outermost first; a parent that does
  not exist (or is not of its kind) is reported as ``unknownobject`` (404).
"""
from __future__ import annotations

import dataclasses
import functools
import re
from types import MappingProxyType
from typing import Mapping

from gateway.oneroster.schemas import ALL_ENTITIES
from gateway.oneroster.vocabulary import (SCOPE_RESOURCE, SCOPE_RESOURCE_CORE, SCOPE_ROSTER,
                                          SCOPE_ROSTER_CORE, SCOPE_ROSTER_DEMOGRAPHICS)

BASE_PATH = "/ims/oneroster/rostering/v1p2"
"""The rostering service's base path (1.2 REST binding §2)."""

COLLECTION_QUERY = ("limit", "offset", "sort", "orderBy", "filter", "fields")
"""The query parameters of every collection read."""
SINGLE_QUERY = ("fields",)
"""The query parameters of every single-record read."""

KIND_RULES: Mapping[str, str] = MappingProxyType({
    "org": "the org's type equals the kind",
    "academicSession": "the academic session's type equals the kind",
    "user": "the user holds a role (roles table) whose role equals the kind",
})
"""What ``kind`` means for each entity that has kinds."""

# Scopes, in the order the official document lists them (any one of them grants access).
_CORE = (SCOPE_ROSTER, SCOPE_ROSTER_CORE)
_NESTED = (SCOPE_ROSTER,)
_DEMOGRAPHICS = (SCOPE_ROSTER_DEMOGRAPHICS,)


CLASS_TERM_TYPES = ("term", "semester", "schoolYear")
"""The academic session types a class's ``terms`` may name. ``/terms/{id}`` and the nested term
paths serve a session of any of them, since clients follow a class's ``terms[0]`` there (Google
Classroom reads ``/terms/{classes[0].terms[0]}/gradingPeriods``, and classes commonly point at
semesters); the ``/terms`` collection lists the sessions of type term."""


@dataclasses.dataclass(frozen=True, slots=True)
class Parent:
    """A record named by a nested path: which path parameter, which entity, of which kind; and
    ``types``, when the record may be of any of several types (the kind names them in errors)."""

    param: str
    entity: str
    kind: str | None = None
    types: tuple[str, ...] | None = None

    @property
    def record_kind(self) -> str | tuple[str, ...] | None:
        """What the parent record must be: its kind, or one of ``types``."""
        return self.types or self.kind


@dataclasses.dataclass(frozen=True, slots=True)
class Relation:
    """A nested collection's meaning: what it returns for its parents."""

    name: str
    entity: str
    description: str


@dataclasses.dataclass(frozen=True, slots=True)
class Endpoint:
    """One operation of a OneRoster service (its base path ``base_path``; the methods it answers,
    ``methods``: every read operation is GET only)."""

    path: str  # template under BASE_PATH, e.g. "/schools/{schoolSourcedId}/classes"
    operation_id: str
    entity: str
    collection: bool
    scopes: tuple[str, ...]  # any one of them grants access
    tag: str
    kind: str | None = None  # top-level reads only: the subset of the entity served
    parents: tuple[Parent, ...] = ()
    relation: str | None = None
    # Single-record reads only: the types a record may be of, when wider than ``kind``.
    types: tuple[str, ...] | None = None
    methods: tuple[str, ...] = ("GET",)
    base_path: str = BASE_PATH
    # Nested reads whose answer is about the innermost parent, a person (the resources a user
    # uses): the read is a disclosure about that person, recorded in the ledger.
    discloses_parent: bool = False

    @property
    def record_kind(self) -> str | tuple[str, ...] | None:
        """What the records served must be: the endpoint's kind, or one of ``types``."""
        return self.types or self.kind

    @property
    def full_path(self) -> str:
        """The path template including the service base path."""
        return self.base_path + self.path

    @property
    def method(self) -> str:
        """The operation's HTTP method (the first of ``methods``)."""
        return self.methods[0]

    @property
    def path_params(self) -> tuple[str, ...]:
        """The path parameters, in path order."""
        return tuple(re.findall(r"\{(\w+)\}", self.path))

    @property
    def query_params(self) -> tuple[str, ...]:
        """The query parameters the operation accepts."""
        return COLLECTION_QUERY if self.collection else SINGLE_QUERY

    @property
    def nested(self) -> bool:
        """Whether the operation lists the records related to a parent record."""
        return bool(self.parents)

    @property
    def wrapper(self) -> str:
        """The key of the response body: the entity's collection or single key, not the path's."""
        entity = ALL_ENTITIES[self.entity]
        return entity.collection_key if self.collection else entity.single_key


def _top(name: str, entity: str, tag: str, collection_op: str, single_op: str,
         kind: str | None = None, scopes: tuple[str, ...] = _CORE,
         by_id_types: tuple[str, ...] | None = None) -> tuple[Endpoint, Endpoint]:
    """A top-level collection and its by-sourcedId read (which serves a record of any of
    ``by_id_types`` when given)."""
    return (Endpoint(f"/{name}", collection_op, entity, True, scopes, tag, kind),
            Endpoint(f"/{name}/{{sourcedId}}", single_op, entity, False, scopes, tag, kind,
                     types=by_id_types))


def _nested(path: str, operation_id: str, entity: str, tag: str, relation: str,
            *parents: Parent) -> Endpoint:
    return Endpoint(path, operation_id, entity, True, _NESTED, tag, None, parents, relation)


_SCHOOL = Parent("schoolSourcedId", "org", "school")
_SCHOOL_CLASS = Parent("classSourcedId", "class")
_CLASS_TERM = Parent("termSourcedId", "academicSession", "term", CLASS_TERM_TYPES)

RELATIONS: Mapping[str, Relation] = MappingProxyType({r.name: r for r in (
    Relation("class_students", "user",
             "the users holding an enrollment in the class with role 'student'"),
    Relation("class_teachers", "user",
             "the users holding an enrollment in the class with role 'teacher'"),
    Relation("course_classes", "class", "the classes whose course is the course"),
    Relation("school_classes", "class", "the classes whose school is the school"),
    Relation("school_class_enrollments", "enrollment",
             "the enrollments in the class, which must be a class of the school"),
    Relation("school_class_students", "user",
             "the users holding an enrollment in the class with role 'student'; the class must be "
             "a class of the school"),
    Relation("school_class_teachers", "user",
             "the users holding an enrollment in the class with role 'teacher'; the class must be "
             "a class of the school"),
    Relation("school_courses", "course", "the courses whose org is the school"),
    Relation("school_enrollments", "enrollment", "the enrollments whose school is the school"),
    Relation("school_students", "user",
             "the users holding a role 'student' whose org is the school (roles table)"),
    Relation("school_teachers", "user",
             "the users holding a role 'teacher' whose org is the school (roles table)"),
    Relation("school_terms", "academicSession",
             "the academic sessions of type 'term' that are among the terms of a class of the "
             "school (academic sessions carry no org, so classes are what tie terms to a school)"),
    Relation("student_classes", "class",
             "the classes in which the student holds an enrollment with role 'student'"),
    Relation("teacher_classes", "class",
             "the classes in which the teacher holds an enrollment with role 'teacher'"),
    Relation("term_classes", "class", "the classes that list the term among their terms"),
    Relation("term_grading_periods", "academicSession",
             "the academic sessions of type 'gradingPeriod' whose parent is the term"),
    Relation("user_classes", "class", "the classes in which the user holds any enrollment"),
)})
"""The 17 nested collections' meanings, by the name the query layer implements."""

ENDPOINTS: tuple[Endpoint, ...] = tuple(sorted((
    *_top("academicSessions", "academicSession", "AcademicSessionsManagement",
          "getAllAcademicSessions", "getAcademicSession"),
    *_top("classes", "class", "ClassesManagement", "getAllClasses", "getClass"),
    _nested("/classes/{classSourcedId}/students", "getStudentsForClass", "user",
            "ClassesManagement", "class_students", Parent("classSourcedId", "class")),
    _nested("/classes/{classSourcedId}/teachers", "getTeachersForClass", "user",
            "ClassesManagement", "class_teachers", Parent("classSourcedId", "class")),
    *_top("courses", "course", "CoursesManagement", "getAllCourses", "getCourse"),
    _nested("/courses/{courseSourcedId}/classes", "getClassesForCourse", "class",
            "CoursesManagement", "course_classes", Parent("courseSourcedId", "course")),
    *_top("demographics", "demographics", "DemographicsManagement", "getAllDemographics",
          "getDemographics", scopes=_DEMOGRAPHICS),
    *_top("enrollments", "enrollment", "EnrollmentsManagement", "getAllEnrollments",
          "getEnrollment"),
    *_top("gradingPeriods", "academicSession", "GradingPeriodsManagement", "getAllGradingPeriods",
          "getGradingPeriod", kind="gradingPeriod"),
    *_top("orgs", "org", "OrgsManagement", "getAllOrgs", "getOrg"),
    *_top("schools", "org", "SchoolsManagement", "getAllSchools", "getSchool", kind="school"),
    _nested("/schools/{schoolSourcedId}/classes", "getClassesForSchool", "class",
            "SchoolsManagement", "school_classes", _SCHOOL),
    _nested("/schools/{schoolSourcedId}/classes/{classSourcedId}/enrollments",
            "getEnrollmentsForClassInSchool", "enrollment", "SchoolsManagement",
            "school_class_enrollments", _SCHOOL, _SCHOOL_CLASS),
    _nested("/schools/{schoolSourcedId}/classes/{classSourcedId}/students",
            "getStudentsForClassInSchool", "user", "SchoolsManagement", "school_class_students",
            _SCHOOL, _SCHOOL_CLASS),
    _nested("/schools/{schoolSourcedId}/classes/{classSourcedId}/teachers",
            "getTeachersForClassInSchool", "user", "SchoolsManagement", "school_class_teachers",
            _SCHOOL, _SCHOOL_CLASS),
    _nested("/schools/{schoolSourcedId}/courses", "getCoursesForSchool", "course",
            "SchoolsManagement", "school_courses", _SCHOOL),
    _nested("/schools/{schoolSourcedId}/enrollments", "getEnrollmentsForSchool", "enrollment",
            "SchoolsManagement", "school_enrollments", _SCHOOL),
    _nested("/schools/{schoolSourcedId}/students", "getStudentsForSchool", "user",
            "SchoolsManagement", "school_students", _SCHOOL),
    _nested("/schools/{schoolSourcedId}/teachers", "getTeachersForSchool", "user",
            "SchoolsManagement", "school_teachers", _SCHOOL),
    _nested("/schools/{schoolSourcedId}/terms", "getTermsForSchool", "academicSession",
            "SchoolsManagement", "school_terms", _SCHOOL),
    *_top("students", "user", "StudentsManagement", "getAllStudents", "getStudent",
          kind="student"),
    _nested("/students/{studentSourcedId}/classes", "getClassesForStudent", "class",
            "StudentsManagement", "student_classes", Parent("studentSourcedId", "user", "student")),
    *_top("teachers", "user", "TeachersManagement", "getAllTeachers", "getTeacher",
          kind="teacher"),
    _nested("/teachers/{teacherSourcedId}/classes", "getClassesForTeacher", "class",
            "TeachersManagement", "teacher_classes", Parent("teacherSourcedId", "user", "teacher")),
    *_top("terms", "academicSession", "TermsManagement", "getAllTerms", "getTerm", kind="term",
          by_id_types=CLASS_TERM_TYPES),
    _nested("/terms/{termSourcedId}/classes", "getClassesForTerm", "class", "TermsManagement",
            "term_classes", _CLASS_TERM),
    _nested("/terms/{termSourcedId}/gradingPeriods", "getGradingPeriodsForTerm", "academicSession",
            "TermsManagement", "term_grading_periods", _CLASS_TERM),
    *_top("users", "user", "UsersManagement", "getAllUsers", "getUser"),
    _nested("/users/{userSourcedId}/classes", "getClassesForUser", "class", "UsersManagement",
            "user_classes", Parent("userSourcedId", "user")),
), key=lambda e: e.path))
"""All 41 operations, sorted by path like the official endpoint list."""

BY_OPERATION_ID: Mapping[str, Endpoint] = MappingProxyType({e.operation_id: e for e in ENDPOINTS})
"""The operations by operationId."""

TAGS: tuple[str, ...] = tuple(dict.fromkeys(e.tag for e in ENDPOINTS))
"""The operation groups (OpenAPI tags), in the official document's order."""


def endpoint(operation_id: str) -> Endpoint:
    """The operation with ``operation_id`` (KeyError if there is none), of any service."""
    for service in SERVICES.values():
        found = service.by_operation_id.get(operation_id)
        if found is not None:
            return found
    raise KeyError(operation_id)


@dataclasses.dataclass(frozen=True)
class Service:
    """One OneRoster REST service: its name, base path, operations and the file name under which
    its OpenAPI document is served (``{base}/discovery/{document_name}``, REST binding §2)."""

    name: str
    base_path: str
    endpoints: tuple[Endpoint, ...]
    document_name: str
    title: str

    @functools.cached_property
    def by_operation_id(self) -> Mapping[str, Endpoint]:
        """The service's operations by operationId."""
        return {e.operation_id: e for e in self.endpoints}

    @property
    def tags(self) -> tuple[str, ...]:
        """The operation groups (OpenAPI tags), in table order."""
        return tuple(dict.fromkeys(e.tag for e in self.endpoints))

    @property
    def discovery_path(self) -> str:
        """Where the service's OpenAPI document is served (with or without the file name)."""
        return self.base_path + "/discovery/"


ROSTERING = Service("rostering", BASE_PATH, ENDPOINTS,
                    "onerosterv1p2rostersservice_openapi3_v1p0.json", "Rostering")
"""The Rostering service (41 GETs)."""

RESOURCES_BASE_PATH = "/ims/oneroster/resources/v1p2"
"""The Resources service's base path (1.2 REST binding §2)."""

RESOURCE_RELATIONS: Mapping[str, Relation] = MappingProxyType({r.name: r for r in (
    Relation("class_resources", "resource",
             "the resources the class uses (an active classResources link)"),
    Relation("course_resources", "resource",
             "the resources the course uses (an active courseResources link)"),
    Relation("user_resources", "resource",
             "the resources the user uses (an active userResources link)"),
)})
"""The Resources service's 3 nested collections' meanings."""

ALL_RELATIONS: Mapping[str, Relation] = MappingProxyType({**RELATIONS, **RESOURCE_RELATIONS})
"""Every nested collection's meaning, of any service."""


def _resources_endpoints() -> tuple[Endpoint, ...]:
    """The 5 GETs of the Resources service (``onerosterv1p2resourcesservice_openapi3_v1p0.json``):
    the collection and by-id reads (resource.readonly or resource-core.readonly), and the
    resources of a class, a course or a user (resource.readonly only)."""
    core = (SCOPE_RESOURCE, SCOPE_RESOURCE_CORE)
    nested = (SCOPE_RESOURCE,)

    def read(path: str, operation_id: str, collection: bool, scopes: tuple[str, ...],
             tag: str = "ResourcesManagement", relation: str | None = None,
             *parents: Parent) -> Endpoint:
        about_person = bool(parents) and parents[-1].entity == "user"
        return Endpoint(path, operation_id, "resource", collection, scopes, tag, None, parents,
                        relation, base_path=RESOURCES_BASE_PATH, discloses_parent=about_person)

    return tuple(sorted((
        read("/resources", "getAllResources", True, core),
        read("/resources/{sourcedId}", "getResource", False, core),
        read("/classes/{classSourcedId}/resources", "getResourcesForClass", True, nested,
             "ClassesManagement", "class_resources", Parent("classSourcedId", "class")),
        read("/courses/{courseSourcedId}/resources", "getResourcesForCourse", True, nested,
             "CoursesManagement", "course_resources", Parent("courseSourcedId", "course")),
        read("/users/{userSourcedId}/resources", "getResourcesForUser", True, nested,
             "UsersManagement", "user_resources", Parent("userSourcedId", "user")),
    ), key=lambda e: e.path))


RESOURCES = Service("resources", RESOURCES_BASE_PATH, _resources_endpoints(),
                    "onerosterv1p2resourcesservice_openapi3_v1p0.json", "Resources")
"""The Resources service (5 GETs)."""

SERVICES: Mapping[str, Service] = MappingProxyType({
    service.name: service for service in (ROSTERING, RESOURCES)})
"""Every service the gateway serves through the read path, by name."""
