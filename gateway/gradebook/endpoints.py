"""The 35 operations of the OneRoster 1.2 Gradebook REST service, as data.

Derived from the official endpoint list (``endpoint-summary.json``, gradebook part, and
``onerosterv1p2gradebookservice_openapi3_v1p0.json``) and checked against it by
``tests/gradebook/test_endpoints.py``. Shaped like the rostering table
(:mod:`gateway.oneroster.endpoints`), with the method added, so that one read path can serve
both later. The HTTP layer registers a route per :class:`Operation`;
:mod:`gateway.gradebook.service` implements each ``relation`` named here.

- ``entity``: the gradebook entity the operation reads or writes (a key of
  :data:`gateway.gradebook.records.ENTITIES`), which also decides the body's wrapper.
- ``parents``: for nested paths, the records the path names, outermost first, each as
  (path parameter, entity); a parent that does not exist or is out of the app's scope is
  ``unknownobject`` (404).
"""
from __future__ import annotations

import dataclasses
import re
from types import MappingProxyType
from typing import Mapping

from gateway.oneroster.vocabulary import (SCOPE_ASSESSMENT, SCOPE_ASSESSMENT_CREATEPUT,
                                          SCOPE_ASSESSMENT_DELETE, SCOPE_GRADEBOOK,
                                          SCOPE_GRADEBOOK_CORE, SCOPE_GRADEBOOK_CREATEPOST,
                                          SCOPE_GRADEBOOK_CREATEPUT, SCOPE_GRADEBOOK_DELETE)

BASE_PATH = "/ims/oneroster/gradebook/v1p2"
"""The gradebook service's base path (1.2 REST binding §2)."""

GET, PUT, POST, DELETE = "GET", "PUT", "POST", "DELETE"

_READ = (SCOPE_GRADEBOOK, SCOPE_GRADEBOOK_CORE)
_NESTED_READ = (SCOPE_GRADEBOOK,)
_PUT = (SCOPE_GRADEBOOK_CREATEPUT,)
_POST = (SCOPE_GRADEBOOK_CREATEPOST,)
_DELETE = (SCOPE_GRADEBOOK_DELETE,)


@dataclasses.dataclass(frozen=True, slots=True)
class Operation:
    """One operation of the gradebook service."""

    method: str
    path: str  # template under BASE_PATH
    operation_id: str
    entity: str
    collection: bool  # GET: a page of records; POST: a set of records in the body
    scopes: tuple[str, ...]  # any one of them grants access
    parents: tuple[tuple[str, str], ...] = ()  # (path parameter, entity), outermost first
    relation: str | None = None

    @property
    def full_path(self) -> str:
        """The path template including the service base path."""
        return BASE_PATH + self.path

    @property
    def path_params(self) -> tuple[str, ...]:
        """The path parameters, in path order."""
        return tuple(re.findall(r"\{(\w+)\}", self.path))


def _record_ops(name: str, entity: str, singular: str, plural: str, *,
                read: tuple[str, ...] = _READ, put: tuple[str, ...] = _PUT,
                delete: tuple[str, ...] = _DELETE) -> tuple[Operation, ...]:
    """A type's collection GET and its record's GET, PUT and DELETE."""
    one = f"/{name}/{{sourcedId}}"
    return (Operation(GET, f"/{name}", f"getAll{plural}", entity, True, read),
            Operation(GET, one, f"get{singular}", entity, False, read),
            Operation(PUT, one, f"put{singular}", entity, False, put),
            Operation(DELETE, one, f"delete{singular}", entity, False, delete))


_CLASS = ("classSourcedId", "class")
_SCHOOL = ("schoolSourcedId", "school")

OPERATIONS: tuple[Operation, ...] = tuple(sorted((
    *_record_ops("assessmentLineItems", "assessmentLineItem", "AssessmentLineItem",
                 "AssessmentLineItems", read=(SCOPE_ASSESSMENT,),
                 put=(SCOPE_ASSESSMENT_CREATEPUT,), delete=(SCOPE_ASSESSMENT_DELETE,)),
    *_record_ops("assessmentResults", "assessmentResult", "AssessmentResult", "AssessmentResults",
                 read=(SCOPE_ASSESSMENT,), put=(SCOPE_ASSESSMENT_CREATEPUT,),
                 delete=(SCOPE_ASSESSMENT_DELETE,)),
    *_record_ops("categories", "category", "Category", "Categories"),
    *_record_ops("lineItems", "lineItem", "LineItem", "LineItems"),
    *_record_ops("results", "result", "Result", "Results"),
    *_record_ops("scoreScales", "scoreScale", "ScoreScale", "ScoreScales"),
    Operation(POST, "/classes/{classSourcedId}/academicSessions/{academicSessionSourcedId}/results",
              "postResultsForAcademicSessionForClass", "result", True, _POST,
              (_CLASS, ("academicSessionSourcedId", "academicSession")), "class_session_results"),
    Operation(GET, "/classes/{classSourcedId}/categories", "getCategoriesForClass", "category",
              True, _NESTED_READ, (_CLASS,), "class_categories"),
    Operation(GET, "/classes/{classSourcedId}/lineItems", "getLineItemsForClass", "lineItem",
              True, _NESTED_READ, (_CLASS,), "class_line_items"),
    Operation(POST, "/classes/{classSourcedId}/lineItems", "postLineItemsForClass", "lineItem",
              True, _POST, (_CLASS,), "class_line_items"),
    Operation(GET, "/classes/{classSourcedId}/lineItems/{lineItemSourcedId}/results",
              "getResultsForLineItemForClass", "result", True, _NESTED_READ,
              (_CLASS, ("lineItemSourcedId", "lineItem")), "class_line_item_results"),
    Operation(GET, "/classes/{classSourcedId}/results", "getResultsForClass", "result", True,
              _NESTED_READ, (_CLASS,), "class_results"),
    Operation(GET, "/classes/{classSourcedId}/scoreScales", "getScoreScalesForClass",
              "scoreScale", True, _NESTED_READ, (_CLASS,), "class_score_scales"),
    Operation(GET, "/classes/{classSourcedId}/students/{studentSourcedId}/results",
              "getResultsForStudentForClass", "result", True, _NESTED_READ,
              (_CLASS, ("studentSourcedId", "student")), "class_student_results"),
    Operation(POST, "/lineItems/{lineItemSourcedId}/results", "postResultsForLineItem", "result",
              True, _POST, (("lineItemSourcedId", "lineItem"),), "line_item_results"),
    Operation(POST, "/schools/{schoolSourcedId}/lineItems", "postLineItemsForSchool", "lineItem",
              True, _POST, (_SCHOOL,), "school_line_items"),
    Operation(GET, "/schools/{schoolSourcedId}/scoreScales", "getScoreScalesForSchool",
              "scoreScale", True, _NESTED_READ, (_SCHOOL,), "school_score_scales"),
), key=lambda o: (o.path, o.method)))
"""All 35 operations, sorted by path."""

BY_OPERATION_ID: Mapping[str, Operation] = MappingProxyType(
    {o.operation_id: o for o in OPERATIONS})
"""The operations by operationId."""

READ_SCOPES: Mapping[str, frozenset[str]] = MappingProxyType({
    entity: frozenset(scope for o in OPERATIONS if o.method == GET and o.entity == entity
                      for scope in o.scopes)
    for entity in sorted({o.entity for o in OPERATIONS})})
"""The scopes that let an app read each entity (any one of them): those of its GETs."""
