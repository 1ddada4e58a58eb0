"""The OneRoster 1.2 Gradebook service: what each of its 35 operations does, free of flask (the
HTTP layer parses, authorizes, calls one function here and dumps the result).

- Reads (:func:`list_records`, :func:`get_record`) take the rostering query parameters
  (:func:`gateway.oneroster.service.parse_collection_params`: limit, offset, filter, sort,
  orderBy, fields) and answer records as the app may receive them.
- Writes: :func:`put_record` creates (201) or replaces (200) a record by its sourcedId;
  :func:`post_records` creates a set under a class, school or line item and answers the
  supplied/allocated sourcedId pairs; :func:`delete_record` marks a record ``tobedeleted`` (a
  line item's results with it), so a consumer of deltas learns of it.

Scope: an app reads and writes grades only in classes its policy lets it see, and results only of
students it may see (``Visibility.where`` on the roster's class and user tables, ANDed into every
query and checked for every class or student a path or body names); anything else is
``unknownobject`` (404), exactly like a record that does not exist. Roster ids in paths, bodies
and filters go through ``Visibility.resolve_id`` and leave through ``Visibility.present``, so a
pseudonymizing policy's ids are the ones used here too. Every response carrying students'
results is reported to ``Visibility.disclosed`` (the ledger), on the rostering REST channel.

Every class has a *default category* (titled by ``GATEWAY_DEFAULT_CATEGORY_TITLE``), made when a
class's categories are first read or a line item is put without one: gradebook clients (Google
Classroom) read a class's categories and take the first, and a SIS often exports none.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any, Mapping, Sequence

from sqlalchemy import exists, false, func, or_, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from gateway.errors import NotFound, Unprocessable
from gateway.gradebook.endpoints import Operation
from gateway.gradebook.records import ENTITIES, GradebookEntity, Links, default_category_id
from gateway.oneroster.query import (FilterField, compare_column, compile_filter, order_clauses,
                                     parse_fields)
from gateway.oneroster.service import CHANNEL, CollectionParams
from gateway.sharing.visibility import Visibility
from gateway.store.events import append_changes, note_changed
from gateway.store.gradebook import (AssessmentLineItem, AssessmentResult, Category, LineItem,
                                     Result, ScoreScale, written_by_app)
from gateway.store.rostering import ENTITY_TABLES

DEFAULT_RESULT_VALUE_MAX = 100.0
"""A line item's resultValueMax when a client sends none: the model makes it optional, but a
line item is also an AGS line item, whose scoreMaximum is required; 100 is the percentage scale."""

_ROSTER_ENTITY = {"class": "class", "school": "org", "student": "user", "org": "org",
                  "user": "user", "academicSession": "academicSession", "course": "course"}


@dataclasses.dataclass(frozen=True)
class Caller:
    """Who calls and with what: the district, the app's visibility, where references point, the
    default category's title, the clock, and the ledger channel of what it reads (REST's, or a
    CSV export's)."""

    district_id: int
    visibility: Visibility
    links: Links
    default_category_title: str
    now: dt.datetime
    channel: str = CHANNEL  # the ledger channel students' grades are disclosed on


@dataclasses.dataclass(frozen=True, slots=True)
class Page:
    """A page of records as sent, and where it sits in the whole collection."""

    records: list[dict[str, Any]]
    total: int
    offset: int
    limit: int


def make_links(rostering_url: str, gradebook_url: str, visibility: Visibility) -> Links:
    """The :class:`Links` of a request: references into both services, roster ids presented as
    the app knows them (``Visibility.present`` of a bare record, so pseudonyms are the same as on
    every other channel)."""
    def present_id(entity: str, stored: str) -> str:
        return visibility.present(entity, {"sourcedId": stored}).get("sourcedId", stored)
    return Links(rostering_url, gradebook_url, present_id)


# ------------------------------------------------------------------------------------ the scope

def _roster_visible(entity: str, column: ColumnElement[Any], visibility: Visibility,
                    district_id: int) -> ColumnElement[bool] | None:
    """That ``column`` names a record of roster ``entity`` the app may see (None: no condition,
    nothing is hidden)."""
    table = ENTITY_TABLES[entity]
    predicate = visibility.where(entity, table)
    if predicate is None:
        return None
    return exists().where(table.c.district_id == district_id, table.c.sourced_id == column,
                          predicate)


def scope_conditions(entity: GradebookEntity, caller: Caller) -> list[ColumnElement[bool]]:
    """What an entity's rows must satisfy to be in the app's scope."""
    return visible_conditions(entity, caller.visibility, caller.district_id)


def visible_conditions(entity: GradebookEntity, visibility: Visibility,
                       district_id: int) -> list[ColumnElement[bool]]:
    """What an entity's rows must satisfy to be in the scope of ``visibility``'s app: line items,
    score scales and results of classes it may see, results of students it may see too (the
    rule of every read and write here, and of the change feed's gradebook events)."""
    model = entity.model
    conditions: list[ColumnElement[bool]] = []

    def add(condition: ColumnElement[bool] | None) -> None:
        if condition is not None:
            conditions.append(condition)

    if entity.name in ("lineItem", "result", "scoreScale"):
        add(_roster_visible("class", model.class_sourced_id, visibility, district_id))
    elif entity.name in ("category", "assessmentLineItem"):
        # Records of no class (the district's own categories, district-wide assessments) carry
        # nothing of a class the app may not see.
        visible = _roster_visible("class", model.class_sourced_id, visibility, district_id)
        if visible is not None:
            add(or_(model.class_sourced_id.is_(None), visible))
    if entity.about_students:
        add(_roster_visible("user", model.student_sourced_id, visibility, district_id))
    return conditions


def _resolve_roster(session: Session, kind: str, given: str, caller: Caller,
                    *extra: ColumnElement[bool]) -> str:
    """The stored id of a roster record an app named (a class, school, student, session,
    course), checked to exist in the district and be visible to it; NotFound otherwise."""
    entity = _ROSTER_ENTITY[kind]
    stored = caller.visibility.resolve_id(entity, given)
    if stored is None:
        raise _not_found(kind, given)
    table = ENTITY_TABLES[entity]
    conditions = [table.c.district_id == caller.district_id, table.c.sourced_id == stored, *extra]
    predicate = caller.visibility.where(entity, table)
    if predicate is not None:
        conditions.append(predicate)
    if session.execute(select(table.c.id).where(*conditions).limit(1)).first() is None:
        raise _not_found(kind, given)
    return stored


def _resolve_school(session: Session, given: str, caller: Caller) -> str:
    return _resolve_roster(session, "school", given, caller,
                           ENTITY_TABLES["org"].c.type == "school")


def _not_found(what: str, sourced_id: str) -> NotFound:
    return NotFound(f"There is no {what} with sourcedId {sourced_id!r}.")


def _find(session: Session, entity: GradebookEntity, sourced_id: str, caller: Caller,
          *extra: ColumnElement[bool]) -> Any:
    """The row of ``entity`` with ``sourced_id`` in the app's scope, or None."""
    model = entity.model
    query = select(model).where(model.district_id == caller.district_id,
                                model.sourced_id == sourced_id,
                                *scope_conditions(entity, caller), *extra)
    return session.execute(query).scalar_one_or_none()


def _require(session: Session, entity_name: str, sourced_id: str, caller: Caller,
             *extra: ColumnElement[bool]) -> Any:
    row = _find(session, ENTITIES[entity_name], sourced_id, caller, *extra)
    if row is None:
        raise _not_found(entity_name, sourced_id)
    return row


# ----------------------------------------------------------------------------- default category

def ensure_default_categories(session: Session, district_id: int, title: str, now: dt.datetime,
                              class_ids: Sequence[str] | None = None) -> int:
    """Give each class of the district (or each of ``class_ids``) that has none its default
    category; the number made. A concurrent request making the same one is not an error."""
    classes = ENTITY_TABLES["class"]
    query = select(classes.c.sourced_id).where(
        classes.c.district_id == district_id,
        ~exists().where(Category.district_id == district_id, Category.is_default.is_(True),
                        Category.class_sourced_id == classes.c.sourced_id))
    if class_ids is not None:
        query = query.where(classes.c.sourced_id.in_(list(class_ids)))
    missing = list(session.execute(query).scalars())
    made = 0
    for class_id in missing:
        try:
            with session.begin_nested():
                session.add(Category(district_id=district_id,
                                     sourced_id=default_category_id(district_id, class_id),
                                     status="active", date_last_modified=now, title=title,
                                     class_sourced_id=class_id, is_default=True))
                session.flush()
            made += 1
        except IntegrityError:
            continue
    return made


# ------------------------------------------------------------------------------------- reading

def _filter_fields(entity: GradebookEntity, caller: Caller) -> dict[str, FilterField]:
    """The fields a filter may name: the scalars, and ``x.sourcedId`` of each reference (roster
    ids resolved through the visibility, so a pseudonym filters as the record it stands for)."""
    model = entity.model
    fields = {name: FilterField(column=getattr(model, attribute), type=kind)
              for name, (attribute, kind) in entity.scalars.items()}
    for name, (attribute, ref_type) in entity.refs.items():
        fields[f"{name}.sourcedId"] = FilterField(
            builder=_ref_filter(getattr(model, attribute), ref_type, caller))
    return fields


def _ref_filter(column: Any, ref_type: str, caller: Caller):
    def build(op: str, value: str) -> ColumnElement[bool]:
        if op in ("=", "!=") and ref_type in _ROSTER_ENTITY.values():
            stored = caller.visibility.resolve_id(ref_type, value)
            if stored is None:
                return true() if op == "!=" else false()
            value = stored
        clause = compare_column(column, op, value)
        return or_(clause, column.is_(None)) if op == "!=" else clause
    return build


def _relation(operation: Operation, parents: Sequence[str],
              caller: Caller) -> list[ColumnElement[bool]]:
    """The rows a nested collection lists for its (resolved) parents."""
    relation = operation.relation
    if relation == "class_categories":
        [class_id] = parents
        used = select(LineItem.category_sourced_id).where(
            LineItem.district_id == caller.district_id, LineItem.class_sourced_id == class_id,
            LineItem.category_sourced_id.is_not(None))
        return [or_(Category.class_sourced_id == class_id, Category.sourced_id.in_(used))]
    if relation == "class_line_items":
        return [LineItem.class_sourced_id == parents[0]]
    if relation == "class_line_item_results":
        return [Result.class_sourced_id == parents[0], Result.line_item_sourced_id == parents[1]]
    if relation == "class_results":
        return [Result.class_sourced_id == parents[0]]
    if relation == "class_student_results":
        return [Result.class_sourced_id == parents[0], Result.student_sourced_id == parents[1]]
    if relation == "class_score_scales":
        return [ScoreScale.class_sourced_id == parents[0]]
    if relation == "school_score_scales":
        classes = ENTITY_TABLES["class"]
        return [ScoreScale.class_sourced_id.in_(select(classes.c.sourced_id).where(
            classes.c.district_id == caller.district_id,
            classes.c.school_sourced_id == parents[0]))]
    raise ValueError(f"unknown relation {relation!r}")


def resolve_parents(session: Session, operation: Operation, path_ids: Sequence[str],
                    caller: Caller) -> list[str]:
    """The stored ids of the records a nested path names, each checked to exist and be in the
    app's scope (a line item within the class before it); NotFound otherwise."""
    stored: list[str] = []
    for (_, kind), given in zip(operation.parents, path_ids):
        if kind == "school":
            stored.append(_resolve_school(session, given, caller))
        elif kind == "lineItem":
            extra = ([LineItem.class_sourced_id == stored[0]] if stored else [])
            stored.append(_require(session, "lineItem", given, caller, *extra).sourced_id)
        else:
            stored.append(_resolve_roster(session, kind, given, caller))
    return stored


def _send(operation: Operation, entity: GradebookEntity, rows: Sequence[Any],
          selected: tuple[str, ...] | None, caller: Caller) -> list[dict[str, Any]]:
    """Rows as the app receives them (selected fields only), students' grades reported to the
    ledger."""
    records = [entity.dump(row, caller.links) for row in rows]
    if selected is not None:
        records = [{name: value for name, value in record.items() if name in selected}
                   for record in records]
    if entity.about_students and records:
        caller.visibility.disclosed(caller.channel, operation.operation_id, entity.name, records,
                                    [row.student_sourced_id for row in rows])
    return records


def list_records(session: Session, operation: Operation, path_ids: Sequence[str],
                 params: CollectionParams, caller: Caller) -> Page:
    """A page of the collection ``operation`` reads (top-level or nested). Raises InvalidData
    (400) for a bad field, filter or sort, NotFound for an unknown parent."""
    entity = ENTITIES[operation.entity]
    model = entity.model
    selected = parse_fields(list(params.fields), entity.fields) if params.fields else None
    parents = resolve_parents(session, operation, path_ids, caller)
    if entity.name == "category":
        ensure_default_categories(session, caller.district_id, caller.default_category_title,
                                  caller.now, parents or None)
    conditions = [model.district_id == caller.district_id, *scope_conditions(entity, caller)]
    if operation.relation is not None:
        conditions.extend(_relation(operation, parents, caller))
    if params.filter is not None:
        conditions.append(compile_filter(params.filter, _filter_fields(entity, caller)))
    sortable = {name: getattr(model, attribute) for name, (attribute, _) in entity.scalars.items()}
    order = order_clauses(params.sort, sortable, model.id)
    total = session.execute(select(func.count()).select_from(model).where(*conditions)).scalar_one()
    paging = params.paging
    rows = list(session.execute(select(model).where(*conditions).order_by(*order)
                                .limit(paging.limit).offset(paging.offset)).scalars())
    return Page(_send(operation, entity, rows, selected, caller), total, paging.offset,
                paging.limit)


def get_record(session: Session, operation: Operation, sourced_id: str, fields: Sequence[str],
               caller: Caller) -> dict[str, Any]:
    """The record ``sourced_id`` of the operation's entity, if in the app's scope (else
    NotFound); ``fields`` selects fields as on collections."""
    entity = ENTITIES[operation.entity]
    chosen = [value for value in fields if value]
    selected = parse_fields(chosen, entity.fields) if chosen else None
    row = _find(session, entity, sourced_id, caller)
    if row is None:
        raise _not_found(entity.name, sourced_id)
    return _send(operation, entity, [row], selected, caller)[0]


# ------------------------------------------------------------------------------------- writing

def _body_record(entity: GradebookEntity, body: Any) -> Any:
    """The record inside a single-record body (``{"lineItem": {...}}``)."""
    if not isinstance(body, Mapping) or set(body) != {entity.single_key}:
        raise Unprocessable(f"The body must be an object with one member, {entity.single_key!r}.")
    return body[entity.single_key]


def put_record(session: Session, operation: Operation, sourced_id: str, body: Any,
               caller: Caller) -> tuple[dict[str, Any], bool]:
    """Create or replace the record ``sourced_id`` from a PUT body (1.2 Gradebook REST binding,
    putX); the record as stored and whether it was created. Unprocessable (422) for a bad body,
    NotFound when it names a class, student or record outside the app's scope."""
    entity = ENTITIES[operation.entity]
    values = entity.load(_body_record(entity, body))
    if values["sourced_id"] not in (None, sourced_id):
        raise Unprocessable(f"The body's sourcedId {values['sourced_id']!r} is not the path's "
                            f"{sourced_id!r}.")
    # A savepoint: an error answered by a handler still ends in the request's commit, and a
    # refused write must leave nothing behind (a default category it made, a result it replaced).
    with session.begin_nested():
        row, kind = _write(session, entity, sourced_id, values, caller)
        record_changes(session, caller, [(entity.name, sourced_id, kind)])
    return entity.dump(row, caller.links), kind == "created"


def _write(session: Session, entity: GradebookEntity, sourced_id: str, values: dict[str, Any],
           caller: Caller) -> tuple[Any, str]:
    """Store ``values`` (a loaded body) as the record ``sourced_id``: its references checked,
    an existing record replaced (it must be in the app's scope: a record the app may not see is
    refused as if it did not exist, never overwritten). The row and what happened to it, as the
    change feed says it: ``created``, ``updated`` or ``deleted``."""
    model = entity.model
    existing = session.execute(select(model).where(
        model.district_id == caller.district_id, model.sourced_id == sourced_id)
    ).scalar_one_or_none()
    if existing is not None and _find(session, entity, sourced_id, caller) is None:
        raise _not_found(entity.name, sourced_id)
    columns = _WRITERS[entity.name](session, values, caller, existing)
    row = existing if existing is not None else model(district_id=caller.district_id,
                                                      sourced_id=sourced_id)
    was_deleted = existing is not None and existing.status == "tobedeleted"
    for name, value in columns.items():
        setattr(row, name, value)
    row.status = values["status"]
    row.meta = values["meta"]
    row.date_last_modified = caller.now
    written_by_app(row)
    if existing is None:
        session.add(row)
    session.flush()
    kind = ("created" if existing is None
            else "deleted" if row.status == "tobedeleted" and not was_deleted else "updated")
    return row, kind


def record_changes(session: Session, caller: Caller,
                   changes: Sequence[tuple[str, str, str]]) -> None:
    """Append the change feed's events of records the caller wrote ((entity, sourcedId, kind)),
    in the write's transaction: each app sees those in its scope (gateway.events.feed). Called
    once a write's rows are written: it takes the district's event counter, held until the
    commit, and a lock taken last cannot be part of a wait cycle with another writer's rows."""
    append_changes(session.connection(), caller.district_id, changes, caller.now)
    if changes:
        note_changed(session, caller.district_id)


def _score_scale(session: Session, given: str | None, caller: Caller) -> str | None:
    if given is None:
        return None
    return _require(session, "scoreScale", given, caller).sourced_id


def _category_columns(session: Session, values: dict[str, Any], caller: Caller,
                      existing: Category | None) -> dict[str, Any]:
    return {"title": values["title"], "weight": values["weight"]}


def _line_item_columns(session: Session, values: dict[str, Any], caller: Caller,
                       existing: LineItem | None) -> dict[str, Any]:
    class_id = _resolve_roster(session, "class", values["class_ref"], caller)
    classes = ENTITY_TABLES["class"]
    if values["school_ref"] is not None:
        school_id = _resolve_school(session, values["school_ref"], caller)
    else:
        school_id = session.execute(select(classes.c.school_sourced_id).where(
            classes.c.district_id == caller.district_id, classes.c.sourced_id == class_id)
        ).scalar_one()
    if values["category_ref"] is not None:
        category_id = _require(session, "category", values["category_ref"], caller).sourced_id
    else:
        ensure_default_categories(session, caller.district_id, caller.default_category_title,
                                  caller.now, [class_id])
        category_id = default_category_id(caller.district_id, class_id)
    sessions = {name: (_resolve_roster(session, "academicSession", values[f"{name}_ref"], caller)
                       if values[f"{name}_ref"] is not None else None)
                for name in ("grading_period", "academic_session")}
    low = values["result_value_min"]
    high = values["result_value_max"]
    return {"title": values["title"], "description": values["description"],
            "assign_date": values["assign_date"], "due_date": values["due_date"],
            "class_sourced_id": class_id, "school_sourced_id": school_id,
            "category_sourced_id": category_id,
            "grading_period_sourced_id": sessions["grading_period"],
            "academic_session_sourced_id": sessions["academic_session"],
            "score_scale_sourced_id": _score_scale(session, values["score_scale_ref"], caller),
            "result_value_min": 0.0 if low is None else low,
            "result_value_max": DEFAULT_RESULT_VALUE_MAX if high is None else high,
            "learning_objective_set": values["learning_objective_set"]}


def _student(session: Session, given: str, caller: Caller) -> str:
    return _resolve_roster(session, "student", given, caller)


def _result_columns(session: Session, values: dict[str, Any], caller: Caller,
                    existing: Result | None) -> dict[str, Any]:
    item = _require(session, "lineItem", values["line_item_ref"], caller)
    student = _student(session, values["student_ref"], caller)
    if values["class_ref"] is not None and caller.visibility.resolve_id(
            "class", values["class_ref"]) != item.class_sourced_id:
        raise Unprocessable("result.class is not the class of the result's line item.")
    enrollments = ENTITY_TABLES["enrollment"]
    if session.execute(select(enrollments.c.id).where(
            enrollments.c.district_id == caller.district_id,
            enrollments.c.class_sourced_id == item.class_sourced_id,
            enrollments.c.user_sourced_id == student, enrollments.c.role == "student",
            enrollments.c.status == "active").limit(1)).first() is None:
        raise Unprocessable("result.student is not a student of the line item's class.")
    other = session.execute(select(Result).where(
        Result.line_item_id == item.id, Result.student_sourced_id == student,
        Result.id != (existing.id if existing is not None else -1))).scalar_one_or_none()
    if other is not None:
        if other.status != "tobedeleted":
            raise Unprocessable(f"The student already has result {other.sourced_id!r} on this "
                                "line item; replace that one.")
        # A deleted result of the same student and line item gives way to the new one.
        session.delete(other)
        session.flush()
    score_date = values["score_date"]
    return {"line_item_id": item.id, "line_item_sourced_id": item.sourced_id,
            "class_sourced_id": item.class_sourced_id, "student_sourced_id": student,
            "score_scale_sourced_id": _score_scale(session, values["score_scale_ref"], caller),
            "score_status": values["score_status"], "score": values["score"],
            "text_score": values["text_score"],
            "score_date": dt.datetime.combine(score_date, dt.time()),
            "comment": values["comment"],
            "learning_objective_set": values["learning_objective_set"],
            **{name: values[name] for name in ("in_progress", "incomplete", "late", "missing")}}


def _score_scale_columns(session: Session, values: dict[str, Any], caller: Caller,
                         existing: ScoreScale | None) -> dict[str, Any]:
    course = values["course_ref"]
    return {"title": values["title"], "type": values["type"],
            "course_sourced_id": (_resolve_roster(session, "course", course, caller)
                                  if course is not None else None),
            "class_sourced_id": _resolve_roster(session, "class", values["class_ref"], caller),
            "score_scale_value": values["score_scale_value"]}


def _assessment_line_item_columns(session: Session, values: dict[str, Any], caller: Caller,
                                  existing: AssessmentLineItem | None) -> dict[str, Any]:
    klass, parent = values["class_ref"], values["parent_ref"]
    return {"title": values["title"], "description": values["description"],
            "class_sourced_id": (_resolve_roster(session, "class", klass, caller)
                                 if klass is not None else None),
            "parent_sourced_id": (_require(session, "assessmentLineItem", parent, caller).sourced_id
                                  if parent is not None else None),
            "score_scale_sourced_id": _score_scale(session, values["score_scale_ref"], caller),
            "result_value_min": values["result_value_min"],
            "result_value_max": values["result_value_max"],
            "learning_objective_set": values["learning_objective_set"]}


def _assessment_result_columns(session: Session, values: dict[str, Any], caller: Caller,
                               existing: AssessmentResult | None) -> dict[str, Any]:
    item = _require(session, "assessmentLineItem", values["assessment_line_item_ref"], caller)
    return {"assessment_line_item_sourced_id": item.sourced_id,
            "student_sourced_id": _student(session, values["student_ref"], caller),
            "score": values["score"], "text_score": values["text_score"],
            "score_date": values["score_date"],
            "score_scale_sourced_id": _score_scale(session, values["score_scale_ref"], caller),
            "score_percentile": values["score_percentile"],
            "score_status": values["score_status"], "comment": values["comment"],
            "learning_objective_set": values["learning_objective_set"],
            **{name: values[name] for name in ("in_progress", "incomplete", "late", "missing")}}


_WRITERS = {"category": _category_columns, "lineItem": _line_item_columns,
            "result": _result_columns, "scoreScale": _score_scale_columns,
            "assessmentLineItem": _assessment_line_item_columns,
            "assessmentResult": _assessment_result_columns}


def delete_record(session: Session, operation: Operation, sourced_id: str,
                  caller: Caller) -> None:
    """Mark the record ``sourced_id`` ``tobedeleted`` (a line item's results with it); NotFound
    if it is not in the app's scope. Deleting a deleted record changes nothing."""
    entity = ENTITIES[operation.entity]
    row = _find(session, entity, sourced_id, caller)
    if row is None:
        raise _not_found(entity.name, sourced_id)
    if row.status == "tobedeleted":
        return
    row.status = "tobedeleted"
    row.date_last_modified = caller.now
    changes = [(entity.name, row.sourced_id, "deleted")]
    if entity.name == "lineItem":
        for result in session.execute(select(Result).where(
                Result.line_item_id == row.id, Result.status != "tobedeleted")).scalars():
            result.status = "tobedeleted"
            result.date_last_modified = caller.now
            changes.append(("result", result.sourced_id, "deleted"))
    session.flush()
    record_changes(session, caller, changes)


def post_records(session: Session, operation: Operation, path_ids: Sequence[str], body: Any,
                 caller: Caller) -> list[dict[str, str]]:
    """Create the set of records a POST carries under its class, school or line item (1.2
    Gradebook REST binding, the "createbp" calls); the ``sourcedIdPairs``: each supplied
    sourcedId and the one allocated (the supplied one when free, else a new one). The whole set
    is refused (422) if any record is bad."""
    entity = ENTITIES[operation.entity]
    # An unknown parent is unknownobject whatever the body holds.
    parents = resolve_parents(session, operation, path_ids, caller)
    if not isinstance(body, Mapping) or set(body) != {entity.collection_key} or not isinstance(
            body[entity.collection_key], list):
        raise Unprocessable(f"The body must be an object with one member, "
                            f"{entity.collection_key!r}, a list of records.")
    # One savepoint for the set: a record refused rolls back those written before it.
    with session.begin_nested():
        return _post_each(session, operation, entity, parents, path_ids,
                          body[entity.collection_key], caller)


def _post_each(session: Session, operation: Operation, entity: GradebookEntity,
               parents: Sequence[str], path_ids: Sequence[str], records: list[Any],
               caller: Caller) -> list[dict[str, str]]:
    pairs, changes = [], []
    for raw in records:
        values = entity.load(_defaults(operation, raw, path_ids))
        _check_parent(session, operation, parents, values, caller)
        supplied = values["sourced_id"]
        allocated = supplied
        model = entity.model
        if allocated is None or session.execute(select(model.id).where(
                model.district_id == caller.district_id, model.sourced_id == allocated)
        ).first() is not None:
            allocated = uuid.uuid4().hex
        _, kind = _write(session, entity, allocated, values, caller)
        changes.append((entity.name, allocated, kind))
        pairs.append({"suppliedSourcedId": supplied or "", "allocatedSourcedId": allocated})
    record_changes(session, caller, changes)
    return pairs


def _defaults(operation: Operation, raw: Any, path_ids: Sequence[str]) -> Any:
    """A POSTed record with the path's parent filled in where the record leaves it out."""
    if not isinstance(raw, Mapping):
        return raw
    filled = dict(raw)
    if operation.relation == "class_line_items":
        filled.setdefault("class", {"sourcedId": path_ids[0]})
    elif operation.relation == "line_item_results":
        filled.setdefault("lineItem", {"sourcedId": path_ids[0]})
    return filled


def _check_parent(session: Session, operation: Operation, parents: Sequence[str],
                  values: dict[str, Any], caller: Caller) -> None:
    """That a POSTed record belongs under the path it was posted to (422 otherwise)."""
    relation = operation.relation
    if relation == "class_line_items":
        if caller.visibility.resolve_id("class", values["class_ref"]) != parents[0]:
            raise Unprocessable("A line item posted to a class must be of that class.")
    elif relation == "school_line_items":
        class_id = _resolve_roster(session, "class", values["class_ref"], caller)
        classes = ENTITY_TABLES["class"]
        school = session.execute(select(classes.c.school_sourced_id).where(
            classes.c.district_id == caller.district_id, classes.c.sourced_id == class_id)
        ).scalar_one()
        if school != parents[0]:
            raise Unprocessable("A line item posted to a school must be of a class of that school.")
        if values["school_ref"] is None:
            values["school_ref"] = caller.links.present_id("org", school)
    elif relation == "line_item_results":
        if values["line_item_ref"] != parents[0]:
            raise Unprocessable("A result posted to a line item must be of that line item.")
    elif relation == "class_session_results":
        item = _require(session, "lineItem", values["line_item_ref"], caller)
        if item.class_sourced_id != parents[0] or parents[1] not in (
                item.academic_session_sourced_id, item.grading_period_sourced_id):
            raise Unprocessable("A result posted to a class's academic session must be on a line "
                                "item of that class and session.")
