"""The gradebook's six entities: how a row is sent (1.2 Gradebook REST binding, the ``*DType``
schemas) and how a PUT or POST body is read back into column values.

Each entity is one :class:`GradebookEntity`: its table, wrappers, fields in schema order, the
scalar fields a filter or sort may name and the references (``x.sourcedId`` in filters). Bodies
are checked as strictly as the schemas say -- no unknown field, types and enums as declared -- but
references may carry only a ``sourcedId`` (clients such as Google Classroom send no href) and
``status``/``dateLastModified`` may be left out on input (the gateway sets them). A bad body is
:class:`~gateway.errors.Unprocessable` (422, ``invaliddata``), as the binding answers PUT and POST.

What a reference names is checked by the service (:mod:`gateway.gradebook.service`), which knows
the app's scope; here ids are only read.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import math
from types import MappingProxyType
from typing import Any, Callable, Mapping
from urllib.parse import quote

from gateway.errors import Unprocessable
from gateway.oneroster.serialize import format_date, format_datetime
from gateway.oneroster.vocabulary import SCORE_STATUSES, STATUSES, is_enum_value
from gateway.store.gradebook import (AssessmentLineItem, AssessmentResult, Category, LineItem,
                                     Result, ScoreScale)

MAX_TITLE = 255
FLAGS = (("inProgress", "in_progress"), ("incomplete", "incomplete"), ("late", "late"),
         ("missing", "missing"))

# Where each referenced type lives: the rostering or the gradebook service, and its collection.
REF_PATHS: Mapping[str, tuple[str, str]] = MappingProxyType({
    "class": ("rostering", "classes"), "user": ("rostering", "users"), "org": ("rostering", "orgs"),
    "academicSession": ("rostering", "academicSessions"), "course": ("rostering", "courses"),
    "lineItem": ("gradebook", "lineItems"), "category": ("gradebook", "categories"),
    "scoreScale": ("gradebook", "scoreScales"),
    "assessmentLineItem": ("gradebook", "assessmentLineItems"),
})
ROSTER_REFS = frozenset(name for name, (service, _) in REF_PATHS.items() if service == "rostering")
"""Reference types that name roster records, whose ids an app may know by a pseudonym."""


@dataclasses.dataclass(frozen=True, slots=True)
class Links:
    """The service base URLs that references point into, and how roster ids are presented to the
    app (``present_id(entity, stored_id)``: its pseudonym, or the id as stored)."""

    rostering: str
    gradebook: str
    present_id: Callable[[str, str], str]

    def ref(self, ref_type: str, stored_id: str) -> dict[str, str]:
        """A GUIDRef (``href``, ``sourcedId``, ``type``) to a record of ``ref_type``."""
        sourced_id = self.present_id(ref_type, stored_id) if ref_type in ROSTER_REFS else stored_id
        service, collection = REF_PATHS[ref_type]
        base = self.rostering if service == "rostering" else self.gradebook
        return {"href": f"{base}/{collection}/{quote(sourced_id, safe='')}",
                "sourcedId": sourced_id, "type": ref_type}


@dataclasses.dataclass(frozen=True, slots=True)
class GradebookEntity:
    """One gradebook entity: its table and wrappers, fields, and how rows and bodies convert."""

    name: str
    model: type
    collection_key: str
    single_key: str
    fields: tuple[str, ...]  # REST names, schema order
    scalars: Mapping[str, tuple[str, str]]  # REST name -> (attribute, filter type)
    refs: Mapping[str, tuple[str, str]]  # REST name -> (attribute, referenced type)
    dump: Callable[[Any, Links], dict[str, Any]]
    load: Callable[[Mapping[str, Any]], dict[str, Any]]
    about_students: bool = False  # its records are students' grades (disclosed to the ledger)


# --------------------------------------------------------------------------------------- reading

def _put(out: dict[str, Any], name: str, value: Any) -> None:
    # No field is nullable in the binding: an absent value is left out, never sent as null.
    if value is not None:
        out[name] = value


def _base(row: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"sourcedId": row.sourced_id, "status": row.status,
                           "dateLastModified": format_datetime(row.date_last_modified)}
    _put(out, "metadata", row.meta)
    return out


def _ref(out: dict[str, Any], links: Links, name: str, ref_type: str, stored: str | None) -> None:
    if stored is not None:
        out[name] = links.ref(ref_type, stored)


def _flags(out: dict[str, Any], row: Any) -> None:
    for name, attribute in FLAGS:
        _put(out, name, getattr(row, attribute))


def default_category_id(district_id: int, class_sourced_id: str) -> str:
    """The sourcedId of a class's default category: derived from the class, so that it is the
    same on every read and needs no lookup, yet does not spell out the class's stored id (which
    an app may know only by a pseudonym)."""
    import hashlib

    key = f"default-category:{district_id}:{class_sourced_id}"
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"category-{digest[:32]}"


def dump_category(row: Category, links: Links) -> dict[str, Any]:
    """A category as CategoryDType."""
    out = _base(row)
    out["title"] = row.title
    _put(out, "weight", row.weight)
    return out


def dump_line_item(row: LineItem, links: Links) -> dict[str, Any]:
    """A line item as LineItemDType. assignDate, dueDate, school and category are required there
    but a tool's AGS line item may have none: the dates fall back to when the item was last
    changed (when it was assigned, as far as anyone knows), the category to the class's default,
    the school to the class's (stored with the item)."""
    out = _base(row)
    out["title"] = row.title
    _put(out, "description", row.description)
    assigned = row.assign_date or row.date_last_modified
    out["assignDate"] = format_datetime(assigned)
    out["dueDate"] = format_datetime(row.due_date or assigned)
    _ref(out, links, "class", "class", row.class_sourced_id)
    _ref(out, links, "school", "org", row.school_sourced_id)
    _ref(out, links, "category", "category",
         row.category_sourced_id or default_category_id(row.district_id, row.class_sourced_id))
    _ref(out, links, "gradingPeriod", "academicSession", row.grading_period_sourced_id)
    _ref(out, links, "academicSession", "academicSession", row.academic_session_sourced_id)
    _ref(out, links, "scoreScale", "scoreScale", row.score_scale_sourced_id)
    _put(out, "resultValueMin", row.result_value_min)
    _put(out, "resultValueMax", row.result_value_max)
    _put(out, "learningObjectiveSet", row.learning_objective_set)
    return out


def dump_result(row: Result, links: Links) -> dict[str, Any]:
    """A result as ResultDType."""
    out = _base(row)
    _ref(out, links, "lineItem", "lineItem", row.line_item_sourced_id)
    _ref(out, links, "student", "user", row.student_sourced_id)
    _ref(out, links, "class", "class", row.class_sourced_id)
    _ref(out, links, "scoreScale", "scoreScale", row.score_scale_sourced_id)
    out["scoreStatus"] = row.score_status
    _put(out, "score", row.score)
    _put(out, "textScore", row.text_score)
    out["scoreDate"] = format_date(row.score_date)
    _put(out, "comment", row.comment)
    _put(out, "learningObjectiveSet", row.learning_objective_set)
    _flags(out, row)
    return out


def dump_score_scale(row: ScoreScale, links: Links) -> dict[str, Any]:
    """A score scale as ScoreScaleDType."""
    out = _base(row)
    out["title"] = row.title
    out["type"] = row.type
    _ref(out, links, "course", "course", row.course_sourced_id)
    _ref(out, links, "class", "class", row.class_sourced_id)
    out["scoreScaleValue"] = row.score_scale_value
    return out


def dump_assessment_line_item(row: AssessmentLineItem, links: Links) -> dict[str, Any]:
    """An assessment line item as AssessmentLineItemDType."""
    out = _base(row)
    out["title"] = row.title
    _put(out, "description", row.description)
    _ref(out, links, "class", "class", row.class_sourced_id)
    _ref(out, links, "parentAssessmentLineItem", "assessmentLineItem", row.parent_sourced_id)
    _ref(out, links, "scoreScale", "scoreScale", row.score_scale_sourced_id)
    _put(out, "resultValueMin", row.result_value_min)
    _put(out, "resultValueMax", row.result_value_max)
    _put(out, "learningObjectiveSet", row.learning_objective_set)
    return out


def dump_assessment_result(row: AssessmentResult, links: Links) -> dict[str, Any]:
    """An assessment result as AssessmentResultDType."""
    out = _base(row)
    _ref(out, links, "assessmentLineItem", "assessmentLineItem",
         row.assessment_line_item_sourced_id)
    _ref(out, links, "student", "user", row.student_sourced_id)
    _put(out, "score", row.score)
    _put(out, "textScore", row.text_score)
    out["scoreDate"] = format_date(row.score_date)
    _ref(out, links, "scoreScale", "scoreScale", row.score_scale_sourced_id)
    _put(out, "scorePercentile", row.score_percentile)
    out["scoreStatus"] = row.score_status
    _put(out, "comment", row.comment)
    _put(out, "learningObjectiveSet", row.learning_objective_set)
    _flags(out, row)
    return out


# --------------------------------------------------------------------------------------- writing

class _Body:
    """A record's body being read: each accessor takes a field (absent and null alike are
    absent) and says in a 422 what is wrong with it; :meth:`done` refuses fields left over."""

    def __init__(self, body: Any, entity: str, fields: tuple[str, ...]) -> None:
        if not isinstance(body, Mapping):
            raise Unprocessable(f"The {entity} must be a JSON object.")
        unknown = sorted(set(body) - set(fields))
        if unknown:
            raise Unprocessable(f"The {entity} has fields its schema does not: "
                                + ", ".join(unknown) + ".")
        self.body = body
        self.entity = entity

    def _bad(self, name: str, what: str) -> Unprocessable:
        return Unprocessable(f"{self.entity}.{name} must be {what}.")

    def get(self, name: str) -> Any:
        """The raw value (None when absent or null)."""
        return self.body.get(name)

    def string(self, name: str, *, required: bool = False, limit: int | None = None) -> str | None:
        """A string field; ``limit`` bounds its length."""
        value = self.get(name)
        if value is None:
            if required:
                raise Unprocessable(f"{self.entity}.{name} is required.")
            return None
        if not isinstance(value, str) or (required and not value.strip()):
            raise self._bad(name, "a non-empty string" if required else "a string")
        if limit is not None and len(value) > limit:
            raise self._bad(name, f"at most {limit} characters")
        return value

    def number(self, name: str) -> float | None:
        """A finite number field."""
        value = self.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(
                value):
            raise self._bad(name, "a number")
        return float(value)

    def datetime(self, name: str) -> dt.datetime | None:
        """An ISO 8601 date-time (a bare date means its midnight UTC), as naive UTC."""
        value = self.get(name)
        if value is None:
            return None
        parsed = None
        if isinstance(value, str):
            try:
                parsed = dt.datetime.fromisoformat(
                    value.replace("Z", "+00:00").replace("z", "+00:00"))
            except ValueError:
                parsed = None
        if parsed is None:
            raise self._bad(name, "an ISO 8601 date-time such as 2027-01-31T23:59:00Z")
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return parsed

    def date(self, name: str, *, required: bool = False) -> dt.date | None:
        """A YYYY-MM-DD date; a date-time is taken as its UTC date (clients send either)."""
        value = self.get(name)
        if value is None:
            if required:
                raise Unprocessable(f"{self.entity}.{name} is required.")
            return None
        if isinstance(value, str) and len(value) == 10:
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                raise self._bad(name, "a date (YYYY-MM-DD)") from None
        stamp = self.datetime(name)
        return stamp.date() if stamp is not None else None

    def ref(self, name: str, ref_type: str, *, required: bool = False) -> str | None:
        """The sourcedId of a reference ``{href, sourcedId, type}``; only sourcedId is needed."""
        value = self.get(name)
        if value is None:
            if required:
                raise Unprocessable(f"{self.entity}.{name} is required.")
            return None
        if not isinstance(value, Mapping) or not set(value) <= {"href", "sourcedId", "type"}:
            raise self._bad(name, "a reference {href, sourcedId, type}")
        sourced_id = value.get("sourcedId")
        if not isinstance(sourced_id, str) or not sourced_id:
            raise self._bad(name + ".sourcedId", "a non-empty string")
        if value.get("type") not in (None, ref_type):
            raise self._bad(name + ".type", f"{ref_type!r}")
        if not isinstance(value.get("href", ""), str):
            raise self._bad(name + ".href", "a string")
        return sourced_id

    def status(self) -> str:
        """The record's status (active when left out)."""
        value = self.get("status")
        if value is None:
            return "active"
        if value not in STATUSES:
            raise self._bad("status", "'active' or 'tobedeleted'")
        return value

    def metadata(self) -> dict[str, Any] | None:
        """The metadata object, kept whole."""
        value = self.get("metadata")
        if value is not None and not isinstance(value, Mapping):
            raise self._bad("metadata", "an object")
        return dict(value) if value is not None else None

    def objects(self, name: str, *, required: bool = False) -> list[dict[str, Any]] | None:
        """A list of objects, kept whole (learningObjectiveSet, scoreScaleValue)."""
        value = self.get(name)
        if value is None:
            if required:
                raise Unprocessable(f"{self.entity}.{name} is required.")
            return None
        if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
            raise self._bad(name, "a list of objects")
        return [dict(item) for item in value]

    def flag(self, name: str) -> str | None:
        """A "true"/"false" string flag."""
        value = self.get(name)
        if value is None:
            return None
        if value not in ("true", "false"):
            raise self._bad(name, "'true' or 'false'")
        return value

    def score_status(self) -> str:
        """The required scoreStatus (the model's values or an ``ext:`` extension)."""
        value = self.string("scoreStatus", required=True)
        if not is_enum_value(value, SCORE_STATUSES):
            raise self._bad("scoreStatus", "one of " + ", ".join(sorted(SCORE_STATUSES)))
        return value


def _common(body: _Body) -> dict[str, Any]:
    return {"sourced_id": body.string("sourcedId"), "status": body.status(),
            "meta": body.metadata()}


def _flag_values(body: _Body) -> dict[str, Any]:
    return {attribute: body.flag(name) for name, attribute in FLAGS}


def load_category(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A category body's column values."""
    body = _Body(raw, "category", CATEGORY_FIELDS)
    return {**_common(body), "title": body.string("title", required=True, limit=MAX_TITLE),
            "weight": body.number("weight")}


def load_line_item(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A line item body's column values, references as the ids sent (``*_ref``)."""
    body = _Body(raw, "lineItem", LINE_ITEM_FIELDS)
    values = {**_common(body), "title": body.string("title", required=True, limit=MAX_TITLE),
              "description": body.string("description"),
              "assign_date": body.datetime("assignDate"), "due_date": body.datetime("dueDate"),
              "class_ref": body.ref("class", "class", required=True),
              "school_ref": body.ref("school", "org"),
              "category_ref": body.ref("category", "category"),
              "grading_period_ref": body.ref("gradingPeriod", "academicSession"),
              "academic_session_ref": body.ref("academicSession", "academicSession"),
              "score_scale_ref": body.ref("scoreScale", "scoreScale"),
              "result_value_min": body.number("resultValueMin"),
              "result_value_max": body.number("resultValueMax"),
              "learning_objective_set": body.objects("learningObjectiveSet")}
    low, high = values["result_value_min"], values["result_value_max"]
    if low is not None and high is not None and high < low:
        raise Unprocessable("lineItem.resultValueMax must not be below resultValueMin.")
    return values


def load_result(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A result body's column values, references as the ids sent (``*_ref``)."""
    body = _Body(raw, "result", RESULT_FIELDS)
    return {**_common(body), "line_item_ref": body.ref("lineItem", "lineItem", required=True),
            "student_ref": body.ref("student", "user", required=True),
            "class_ref": body.ref("class", "class"),
            "score_scale_ref": body.ref("scoreScale", "scoreScale"),
            "score_status": body.score_status(), "score": body.number("score"),
            "text_score": body.string("textScore"),
            "score_date": body.date("scoreDate", required=True),
            "comment": body.string("comment"),
            "learning_objective_set": body.objects("learningObjectiveSet"),
            **_flag_values(body)}


def load_score_scale(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A score scale body's column values."""
    body = _Body(raw, "scoreScale", SCORE_SCALE_FIELDS)
    values = body.objects("scoreScaleValue", required=True)
    for item in values:
        if set(item) != {"itemValueLHS", "itemValueRHS"} or not all(
                isinstance(value, str) for value in item.values()):
            raise Unprocessable("scoreScale.scoreScaleValue items must be "
                                "{itemValueLHS, itemValueRHS} strings.")
    if not values:
        raise Unprocessable("scoreScale.scoreScaleValue must hold at least one mapping.")
    return {**_common(body), "title": body.string("title", required=True, limit=MAX_TITLE),
            "type": body.string("type", required=True, limit=MAX_TITLE),
            "course_ref": body.ref("course", "course"),
            "class_ref": body.ref("class", "class", required=True),
            "score_scale_value": values}


def load_assessment_line_item(raw: Mapping[str, Any]) -> dict[str, Any]:
    """An assessment line item body's column values."""
    body = _Body(raw, "assessmentLineItem", ASSESSMENT_LINE_ITEM_FIELDS)
    return {**_common(body), "title": body.string("title", required=True, limit=MAX_TITLE),
            "description": body.string("description"),
            "class_ref": body.ref("class", "class"),
            "parent_ref": body.ref("parentAssessmentLineItem", "assessmentLineItem"),
            "score_scale_ref": body.ref("scoreScale", "scoreScale"),
            "result_value_min": body.number("resultValueMin"),
            "result_value_max": body.number("resultValueMax"),
            "learning_objective_set": body.objects("learningObjectiveSet")}


def load_assessment_result(raw: Mapping[str, Any]) -> dict[str, Any]:
    """An assessment result body's column values."""
    body = _Body(raw, "assessmentResult", ASSESSMENT_RESULT_FIELDS)
    return {**_common(body),
            "assessment_line_item_ref": body.ref("assessmentLineItem", "assessmentLineItem",
                                                 required=True),
            "student_ref": body.ref("student", "user", required=True),
            "score": body.number("score"), "text_score": body.string("textScore"),
            "score_date": body.date("scoreDate", required=True),
            "score_scale_ref": body.ref("scoreScale", "scoreScale"),
            "score_percentile": body.number("scorePercentile"),
            "score_status": body.score_status(), "comment": body.string("comment"),
            "learning_objective_set": body.objects("learningObjectiveSet"),
            **_flag_values(body)}


# ------------------------------------------------------------------------------------ the table

_BASE = ("sourcedId", "status", "dateLastModified", "metadata")
_FLAG_NAMES = tuple(name for name, _ in FLAGS)
CATEGORY_FIELDS = (*_BASE, "title", "weight")
LINE_ITEM_FIELDS = (*_BASE, "title", "description", "assignDate", "dueDate", "class", "school",
                    "category", "gradingPeriod", "academicSession", "scoreScale",
                    "resultValueMin", "resultValueMax", "learningObjectiveSet")
RESULT_FIELDS = (*_BASE, "lineItem", "student", "class", "scoreScale", "scoreStatus", "score",
                 "textScore", "scoreDate", "comment", "learningObjectiveSet", *_FLAG_NAMES)
SCORE_SCALE_FIELDS = (*_BASE, "title", "type", "course", "class", "scoreScaleValue")
ASSESSMENT_LINE_ITEM_FIELDS = (*_BASE, "title", "description", "class", "parentAssessmentLineItem",
                               "scoreScale", "resultValueMin", "resultValueMax",
                               "learningObjectiveSet")
ASSESSMENT_RESULT_FIELDS = (*_BASE, "assessmentLineItem", "student", "score", "textScore",
                            "scoreDate", "scoreScale", "scorePercentile", "scoreStatus", "comment",
                            "learningObjectiveSet", *_FLAG_NAMES)

_BASE_SCALARS = {"sourcedId": ("sourced_id", "string"), "status": ("status", "string"),
                 "dateLastModified": ("date_last_modified", "datetime")}
_FLAG_SCALARS = {name: (attribute, "string") for name, attribute in FLAGS}

ENTITIES: Mapping[str, GradebookEntity] = MappingProxyType({e.name: e for e in (
    GradebookEntity(
        "category", Category, "categories", "category", CATEGORY_FIELDS,
        {**_BASE_SCALARS, "title": ("title", "string")}, {},
        dump_category, load_category),
    GradebookEntity(
        "lineItem", LineItem, "lineItems", "lineItem", LINE_ITEM_FIELDS,
        {**_BASE_SCALARS, "title": ("title", "string"), "description": ("description", "string"),
         "assignDate": ("assign_date", "datetime"), "dueDate": ("due_date", "datetime")},
        {"class": ("class_sourced_id", "class"), "school": ("school_sourced_id", "org"),
         "category": ("category_sourced_id", "category"),
         "gradingPeriod": ("grading_period_sourced_id", "academicSession"),
         "academicSession": ("academic_session_sourced_id", "academicSession"),
         "scoreScale": ("score_scale_sourced_id", "scoreScale")},
        dump_line_item, load_line_item),
    GradebookEntity(
        "result", Result, "results", "result", RESULT_FIELDS,
        {**_BASE_SCALARS, "scoreStatus": ("score_status", "string"),
         "textScore": ("text_score", "string"), "scoreDate": ("score_date", "datetime"),
         "comment": ("comment", "string"), **_FLAG_SCALARS},
        {"lineItem": ("line_item_sourced_id", "lineItem"),
         "student": ("student_sourced_id", "user"), "class": ("class_sourced_id", "class"),
         "scoreScale": ("score_scale_sourced_id", "scoreScale")},
        dump_result, load_result, about_students=True),
    GradebookEntity(
        "scoreScale", ScoreScale, "scoreScales", "scoreScale", SCORE_SCALE_FIELDS,
        {**_BASE_SCALARS, "title": ("title", "string"), "type": ("type", "string")},
        {"course": ("course_sourced_id", "course"), "class": ("class_sourced_id", "class")},
        dump_score_scale, load_score_scale),
    GradebookEntity(
        "assessmentLineItem", AssessmentLineItem, "assessmentLineItems", "assessmentLineItem",
        ASSESSMENT_LINE_ITEM_FIELDS,
        {**_BASE_SCALARS, "title": ("title", "string"), "description": ("description", "string")},
        {"class": ("class_sourced_id", "class"),
         "parentAssessmentLineItem": ("parent_sourced_id", "assessmentLineItem"),
         "scoreScale": ("score_scale_sourced_id", "scoreScale")},
        dump_assessment_line_item, load_assessment_line_item),
    GradebookEntity(
        "assessmentResult", AssessmentResult, "assessmentResults", "assessmentResult",
        ASSESSMENT_RESULT_FIELDS,
        {**_BASE_SCALARS, "scoreStatus": ("score_status", "string"),
         "textScore": ("text_score", "string"), "scoreDate": ("score_date", "date"),
         "comment": ("comment", "string"), **_FLAG_SCALARS},
        {"assessmentLineItem": ("assessment_line_item_sourced_id", "assessmentLineItem"),
         "student": ("student_sourced_id", "user"),
         "scoreScale": ("score_scale_sourced_id", "scoreScale")},
        dump_assessment_result, load_assessment_result, about_students=True),
)})
"""The six gradebook entities by name."""
