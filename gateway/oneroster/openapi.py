"""The project's own OpenAPI 3 documents of the OneRoster 1.2 services, generated: the Rostering
service's (:func:`build_openapi`) and the Resources service's (:func:`build_resources_openapi`,
served at its discovery path), each from its endpoint table.

Built from the marshmallow schemas (:mod:`gateway.oneroster.schemas`) and the operation table
(:mod:`gateway.oneroster.endpoints`), never copied from the official document: what it says about
each entity is what the gateway validates and serves.
``specs/onerosterv1p2rostersservice_openapi3_v1p0.json`` is the committed output of
:func:`write_openapi`; a test keeps it equal to the generator, and another compares every schema
with the official 1EdTech document. The name follows the discovery convention of the 1.2 REST
binding (``{base}/discovery/onerosterv1p2rostersservice_openapi3_v1p0.json``).

Deliberate differences from the official document (the schemas themselves agree with it):

- the ``ext:`` pattern of extensible enumerations is anchored (``^...$``);
- nested collections also document ``404`` (the official descriptions require ``unknownobject``
  for an unknown parent, but their response lists omit 404);
- collections document the ``Link`` header next to ``X-Total-Count`` (the official ``links``
  objects point at ``$request.path.limit``, which is a query parameter);
- ``fields`` is a comma-separated list (``explode: false``), as clients send it.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from marshmallow import INCLUDE, Schema, fields, validate

from gateway.oneroster.endpoints import (ALL_RELATIONS, BASE_PATH, RESOURCES, ROSTERING, Endpoint,
                                         Service)
from gateway.oneroster.schemas import (ALL_ENTITIES, ENTITIES, ERROR_SCHEMAS, RESOURCE_ENTITIES,
                                       ClosedEnum, Entity, ExtensibleEnum, StringBoolean)
from gateway.oneroster.vocabulary import (SCOPE_RESOURCE, SCOPE_RESOURCE_CORE, SCOPE_ROSTER,
                                          SCOPE_ROSTER_CORE, SCOPE_ROSTER_DEMOGRAPHICS)

DOCUMENT_NAME = ROSTERING.document_name
"""The file name of the rostering service's OpenAPI document (1.2 REST binding, discovery)."""

DEFAULT_TOKEN_URL = "/oauth/token"
"""Where the gateway's OAuth 2.0 client-credentials token endpoint is served."""

SECURITY_SCHEME = "OAuth2CC"

_REF = "#/components/schemas/"

_SCOPE_DESCRIPTIONS = {
    SCOPE_ROSTER: "Every rostering read except demographics, including the nested collections.",
    SCOPE_ROSTER_CORE: "The collections and single-record reads, except demographics.",
    SCOPE_ROSTER_DEMOGRAPHICS: "The demographics collection and single-record read.",
}

_TAG_DESCRIPTIONS = {
    "AcademicSessionsManagement": "Academic sessions of every type: school years, semesters, "
                                  "terms, grading periods.",
    "ClassesManagement": "Classes (sections) and their students and teachers.",
    "CoursesManagement": "Courses and their classes.",
    "DemographicsManagement": "Users' demographic data (its own scope).",
    "EnrollmentsManagement": "Enrollments of users in classes.",
    "GradingPeriodsManagement": "Academic sessions of type gradingPeriod.",
    "OrgsManagement": "Orgs of every type.",
    "SchoolsManagement": "Orgs of type school and what hangs from them.",
    "StudentsManagement": "Users holding the role student, and their classes.",
    "TeachersManagement": "Users holding the role teacher, and their classes.",
    "TermsManagement": "Academic sessions of type term, their classes and grading periods.",
    "UsersManagement": "Users of every role, and their classes.",
}

_ERRORS = {
    "400": ("BadRequest", "An invalid selection field or filter (codeMinor invalid_selection_field, "
                          "invalid_filter_field) or another invalid value (invaliddata)."),
    "401": ("Unauthorized", "No valid access token (codeMinor unauthorisedrequest)."),
    "403": ("Forbidden", "The token lacks every scope the operation accepts (codeMinor forbidden)."),
    "404": ("NotFound", "The record, or a parent named in the path, is unknown (codeMinor "
                        "unknownobject)."),
    "422": ("UnprocessableEntity", "The request is well-formed but semantically wrong (codeMinor "
                                   "invaliddata)."),
    "429": ("TooManyRequests", "The server is receiving too many requests (codeMinor server_busy)."),
    "500": ("InternalServerError", "An unexpected failure (codeMinor internal_server_error)."),
    "default": ("Error", "Any other failure, with the imsx status body."),
}


# --------------------------------------------------------------------------------------------------
# marshmallow -> JSON Schema (the OpenAPI 3.0 dialect).


def _doc(obj: Any) -> str:
    """The first paragraph of a docstring, on one line."""
    text = (obj.__doc__ or "").strip().split("\n\n")[0]
    return " ".join(text.split()).replace("``", "`")


def schema_name(schema: type[Schema]) -> str:
    """The component name of a marshmallow schema (the official ``*DType`` name)."""
    name = getattr(schema, "openapi_name", "")
    if not name:
        raise TypeError(f"{schema.__name__} has no openapi_name")
    return name


def field_schema(field: fields.Field) -> dict[str, Any]:
    """The JSON schema of one marshmallow field."""
    out: dict[str, Any]
    if isinstance(field, StringBoolean):
        out = {"type": "string", "enum": list(StringBoolean.VALUES)}
    elif isinstance(field, ExtensibleEnum):
        out = {"anyOf": [{"type": "string", "enum": sorted(field.allowed)},
                         {"type": "string", "pattern": ExtensibleEnum.PATTERN}]}
    elif isinstance(field, ClosedEnum):
        out = {"type": "string", "enum": sorted(field.allowed)}
    elif isinstance(field, fields.DateTime):
        out = {"type": "string", "format": "date-time"}
    elif isinstance(field, fields.Date):
        out = {"type": "string", "format": "date"}
    elif isinstance(field, fields.String):
        out = {"type": "string"}
        for validator in field.validators:
            if isinstance(validator, validate.OneOf):
                out["enum"] = list(validator.choices)
        if "format" in field.metadata:
            out["format"] = field.metadata["format"]
        if "default" in field.metadata:
            out["default"] = field.metadata["default"]
    elif isinstance(field, fields.Nested):
        out = {"$ref": _REF + schema_name(field.nested)}
    elif isinstance(field, fields.List):
        minimum = 0
        for validator in field.validators:
            if isinstance(validator, validate.Length) and validator.min is not None:
                minimum = validator.min
        out = {"type": "array", "minItems": minimum, "items": field_schema(field.inner)}
    else:
        raise TypeError(f"no JSON schema for {field!r}")
    if "description" in field.metadata:
        out = {"description": field.metadata["description"], **out}
    return out


def object_schema(schema: type[Schema]) -> dict[str, Any]:
    """The JSON schema of a marshmallow schema: its properties, required list and openness."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    for attr, field in schema._declared_fields.items():
        name = field.data_key or attr
        properties[name] = field_schema(field)
        if field.required:
            required.append(name)
    out: dict[str, Any] = {"description": _doc(schema), "type": "object", "properties": properties}
    if required:
        out["required"] = required
    out["additionalProperties"] = schema.opts.unknown == INCLUDE
    return out


def _nested_schemas(schema: type[Schema], seen: dict[str, type[Schema]]) -> None:
    name = schema_name(schema)
    if name in seen:
        return
    seen[name] = schema
    for field in schema._declared_fields.values():
        inner = field.inner if isinstance(field, fields.List) else field
        if isinstance(inner, fields.Nested):
            _nested_schemas(inner.nested, seen)


def component_schemas(entities: Iterable[Entity] | None = None) -> dict[str, Any]:
    """Every component schema of a service: its entities (default: rostering's), what they nest,
    their wrappers, the error body."""
    entities = tuple(ENTITIES.values() if entities is None else entities)
    seen: dict[str, type[Schema]] = {}
    for entity in entities:
        _nested_schemas(entity.schema, seen)
    for schema in ERROR_SCHEMAS:
        _nested_schemas(schema, seen)
    out = {name: object_schema(schema) for name, schema in seen.items()}
    for entity in entities:
        name = schema_name(entity.schema)
        stem = name.removesuffix("DType")
        out[f"{stem}SetDType"] = {
            "description": f"The body of a collection of {entity.collection_key}.",
            "type": "object",
            "properties": {entity.collection_key: {
                "type": "array", "minItems": 0, "items": {"$ref": _REF + name}}},
            "additionalProperties": False,
        }
        out[f"Single{stem}DType"] = {
            "description": f"The body of a single {entity.name} record.",
            "type": "object",
            "properties": {entity.single_key: {"$ref": _REF + name}},
            "required": [entity.single_key],
            "additionalProperties": False,
        }
    return dict(sorted(out.items()))


def response_schema_name(ep: Endpoint) -> str:
    """The component name of an operation's 200 body (``OrgSetDType``, ``SingleOrgDType``...)."""
    stem = schema_name(ALL_ENTITIES[ep.entity].schema).removesuffix("DType")
    return f"{stem}SetDType" if ep.collection else f"Single{stem}DType"


# --------------------------------------------------------------------------------------------------
# Operations.


def _summary(ep: Endpoint) -> str:
    """A short title: "All schools", "One school by sourcedId", "The students of the class"."""
    segments = ep.path.strip("/").split("/")
    if ep.relation:
        owners = " in the ".join(p.kind or p.entity for p in reversed(ep.parents))
        return f"The {segments[-1]} of the {owners}"
    if ep.collection:
        return f"All {segments[0]}"
    return f"One of the {segments[0]} by sourcedId"


def _description(ep: Endpoint) -> str:
    """What an operation returns, in words."""
    if ep.relation:
        parents = " or ".join(p.param for p in ep.parents)
        return (f"Read {ALL_RELATIONS[ep.relation].description}. An unknown {parents} is "
                f"reported as unknownobject (404). Relation: {ep.relation}.")
    what = ep.path.strip("/").split("/")[0]
    if ep.collection:
        return f"Read the collection of {what}, paged, filtered, sorted and field-selected."
    return (f"Read one of the {what} by sourcedId; an unknown sourcedId is reported as "
            f"unknownobject (404).")


def _path_parameter(name: str, ep: Endpoint) -> dict[str, Any]:
    if name == "sourcedId":
        what = f"the {ALL_ENTITIES[ep.entity].name} record"
    else:
        parent = next(p for p in ep.parents if p.param == name)
        what = f"the {parent.kind or parent.entity}"
    return {"name": name, "in": "path", "required": True, "description": f"The sourcedId of {what}.",
            "schema": {"type": "string"}, "style": "simple"}


def _query_parameters(ep: Endpoint) -> list[dict[str, Any]]:
    if not ep.collection:
        return [{"$ref": "#/components/parameters/fields"}]
    sortable = ", ".join(ALL_ENTITIES[ep.entity].scalar_fields)
    sort = {"name": "sort", "in": "query", "required": False, "style": "form",
            "description": f"The field to sort on, one of: {sortable}. Use with orderBy.",
            "schema": {"type": "string"}}
    return [{"$ref": "#/components/parameters/limit"}, {"$ref": "#/components/parameters/offset"},
            sort, {"$ref": "#/components/parameters/orderBy"},
            {"$ref": "#/components/parameters/filter"}, {"$ref": "#/components/parameters/fields"}]


def _responses(ep: Endpoint) -> dict[str, Any]:
    ok: dict[str, Any] = {
        "description": (f"The {ep.wrapper} wrapper with the records found (possibly none)."
                        if ep.collection else f"The {ep.wrapper} wrapper with the record."),
        "content": {"application/json": {"schema": {"$ref": _REF + response_schema_name(ep)}}},
    }
    if ep.collection:
        ok["headers"] = {"X-Total-Count": {"$ref": "#/components/headers/X-Total-Count"},
                         "Link": {"$ref": "#/components/headers/Link"}}
    responses: dict[str, Any] = {"200": ok}
    for status, (name, _) in _ERRORS.items():
        if status == "404" and ep.collection and not ep.nested:
            continue
        responses[status] = {"$ref": f"#/components/responses/{name}"}
    return responses


def operation(ep: Endpoint) -> dict[str, Any]:
    """The OpenAPI operation object of one endpoint."""
    return {
        "operationId": ep.operation_id,
        "summary": _summary(ep),
        "description": _description(ep),
        "tags": [ep.tag],
        "parameters": ([_path_parameter(name, ep) for name in ep.path_params]
                       + _query_parameters(ep)),
        "security": [{SECURITY_SCHEME: list(ep.scopes)}],
        "responses": _responses(ep),
    }


def _components(token_url: str, scopes: Mapping[str, str] = _SCOPE_DESCRIPTIONS,
                entities: Iterable[Entity] | None = None) -> dict[str, Any]:
    error_body = {"application/json": {"schema": {"$ref": _REF + "imsx_StatusInfoDType"}}}
    return {
        "securitySchemes": {SECURITY_SCHEME: {
            "type": "oauth2",
            "description": "OAuth 2.0 client credentials (1EdTech Security Framework); the token "
                           "must carry one of the scopes an operation lists.",
            "flows": {"clientCredentials": {"tokenUrl": token_url,
                                            "scopes": dict(scopes)}},
        }},
        "parameters": {
            "limit": {"name": "limit", "in": "query", "required": False, "style": "form",
                      "description": "The largest number of records to return.",
                      "schema": {"type": "integer", "format": "int32", "default": 100,
                                 "minimum": 1}},
            "offset": {"name": "offset", "in": "query", "required": False, "style": "form",
                       "description": "The number of records to skip before the first returned.",
                       "schema": {"type": "integer", "format": "int32", "default": 0,
                                  "minimum": 0}},
            "orderBy": {"name": "orderBy", "in": "query", "required": False, "style": "form",
                        "description": "The direction of the sort.",
                        "schema": {"type": "string", "enum": ["asc", "desc"]}},
            "filter": {"name": "filter", "in": "query", "required": False, "style": "form",
                       "description": "Predicates on scalar fields, e.g. status='active' AND "
                                      "dateLastModified>'2026-01-01T00:00:00Z', combined with AND, "
                                      "OR and parentheses (1.2 REST binding, filtering).",
                       "schema": {"type": "string"}},
            "fields": {"name": "fields", "in": "query", "required": False, "style": "form",
                       "explode": False,
                       "description": "The top-level fields to return, comma-separated.",
                       "schema": {"type": "array", "items": {"type": "string"}}},
        },
        "headers": {
            "X-Total-Count": {"description": "The number of records the query matches, all pages.",
                              "schema": {"type": "integer", "minimum": 0}},
            "Link": {"description": "RFC 8288 links to the first, prev, next and last pages.",
                     "schema": {"type": "string"}},
        },
        "responses": {name: {"description": text, "content": error_body}
                      for name, text in _ERRORS.values()},
        "schemas": component_schemas(entities),
    }


def build_openapi(*, server_url: str = BASE_PATH, token_url: str = DEFAULT_TOKEN_URL) -> dict[str, Any]:
    """The OpenAPI 3.0 document of the rostering service (the committed file uses the defaults)."""
    return _service_document(
        ROSTERING, server_url, token_url, title="OneRoster 1.2 Rostering service (k12-gateway)",
        description="The OneRoster 1.2 Rostering REST service as this gateway serves it: 41 "
                    "read operations on orgs, academic sessions, courses, classes, users, "
                    "enrollments and demographics. Errors carry the imsx status body.",
        server="The rostering service base.", tags=_TAG_DESCRIPTIONS,
        scopes=_SCOPE_DESCRIPTIONS, entities=ENTITIES.values())


_RESOURCES_TAGS = {
    "ClassesManagement": "The resources a class uses.",
    "CoursesManagement": "The resources a course uses.",
    "ResourcesManagement": "Resources: learning content described by its vendor's ids.",
    "UsersManagement": "The resources a person uses.",
}
_RESOURCES_SCOPES = {
    SCOPE_RESOURCE: "Every read of the resources service, including the nested collections.",
    SCOPE_RESOURCE_CORE: "The resources collection and single-record read.",
}


def build_resources_openapi(*, server_url: str = RESOURCES.base_path,
                            token_url: str = DEFAULT_TOKEN_URL) -> dict[str, Any]:
    """The OpenAPI 3.0 document of the resources service, as served at its discovery path."""
    return _service_document(
        RESOURCES, server_url, token_url, title="OneRoster 1.2 Resources service (k12-gateway)",
        description="The OneRoster 1.2 Resources REST service as this gateway serves it: the "
                    "resources an app's classes, courses and people use, and each resource by "
                    "sourcedId. Errors carry the imsx status body.",
        server="The resources service base.", tags=_RESOURCES_TAGS, scopes=_RESOURCES_SCOPES,
        entities=RESOURCE_ENTITIES.values())


def _service_document(service: Service, server_url: str, token_url: str, *, title: str,
                      description: str, server: str, tags: Mapping[str, str],
                      scopes: Mapping[str, str], entities: Iterable[Entity]) -> dict[str, Any]:
    """The OpenAPI 3.0 document of one service from its endpoint table."""
    paths: dict[str, Any] = {}
    for ep in service.endpoints:
        paths[ep.path] = {method.lower(): operation(ep) for method in ep.methods}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": title,
            "version": "1.2",
            "description": description,
            "license": {"name": "Apache-2.0",
                        "url": "https://www.apache.org/licenses/LICENSE-2.0"},
        },
        "servers": [{"url": server_url, "description": server}],
        "tags": [{"name": tag, "description": tags[tag]} for tag in service.tags],
        "paths": paths,
        "components": _components(token_url, scopes, entities),
    }


def render_openapi(document: dict[str, Any]) -> str:
    """The document as the committed file spells it: JSON, two-space indent, final newline."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def write_openapi(path: str | os.PathLike[str]) -> Path:
    """Write the generated document (defaults) to ``path``; returns the path written."""
    target = Path(path)
    target.write_text(render_openapi(build_openapi()), encoding="utf-8")
    return target


if __name__ == "__main__":  # python -m gateway.oneroster.openapi [PATH]
    import sys

    default = Path(__file__).resolve().parents[2] / "specs" / DOCUMENT_NAME
    print(write_openapi(sys.argv[1] if len(sys.argv) > 1 else default))
