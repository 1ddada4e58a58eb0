"""Assignment and Grade Services 2.0: line items, scores and results of a context.

AGS 2.0 §3.2 (line item service: list and create on the container, get, update and delete one
line item), §3.4 (score publish service: ``POST .../scores``) and §3.3 (result service:
``GET .../results``). A tool sees and changes only its own line items, in the classes of its
deployment that its app may see.

Storage is the gradebook (:mod:`gateway.store.gradebook`): a line item is a OneRoster ``lineItem`` of
the class (``resultValueMax`` = ``scoreMaximum``) and a score becomes the student's ``result``:
``score`` on the line item's scale (scoreGiven / scoreMaximum x the line item's maximum, §3.4.6),
``scoreStatus`` from the grading progress, the AGS values kept beside. The platform keeps a
score only if it is not older than the one on record (§3.4.4: timestamps order the updates).
"""
from __future__ import annotations

import datetime as dt
import math
import uuid
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import quote

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from gateway.lti import vocabulary as v
from gateway.lti.platform.errors import Conflict, InvalidServiceRequest, ServiceNotFound
from gateway.lti.platform.messages import enrollment_roles, lineitem_url, presented_user
from gateway.lti.platform.nrps import page_url, parse_paging
from gateway.lti.platform.settings import LtiSettings
from gateway.lti.platform.tokens import ServiceContext
from gateway.store.events import append_changes, note_changed
from gateway.store.gradebook import written_by_app
from gateway.store.lti import LineItem, ResourceLink, Result
from gateway.store.models import User

ACTIVITY_PROGRESS = frozenset({"Initialized", "Started", "InProgress", "Submitted", "Completed"})
GRADING_PROGRESS = frozenset({"FullyGraded", "Pending", "PendingManual", "Failed", "NotReady"})
MAX_TEXT = 255
MAX_COMMENT = 4000


@dataclass(frozen=True)
class Page:
    """A page of a container and the URL of the next page (None on the last)."""

    items: list[dict[str, Any]]
    next_url: str | None


def _utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.timezone.utc).replace(tzinfo=None) if value.tzinfo else value


def _format(value: dt.datetime) -> str:
    return value.isoformat(timespec="milliseconds") + "Z"


def _parse_datetime(value: Any, name: str) -> dt.datetime:
    if not isinstance(value, str):
        raise InvalidServiceRequest(f"{name} must be an ISO 8601 date and time.")
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as error:
        raise InvalidServiceRequest(f"{name} must be an ISO 8601 date and time.") from error
    if parsed.tzinfo is None:
        raise InvalidServiceRequest(f"{name} must carry a time zone offset.")
    return _utc(parsed)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _text(body: Mapping[str, Any], name: str, *, required: bool = False,
          limit: int = MAX_TEXT) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise InvalidServiceRequest(f"{name} is required.")
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise InvalidServiceRequest(f"{name} must be a string of at most {limit} characters.")
    return value


def _object(body: Any) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise InvalidServiceRequest("The body must be a JSON object.")
    return body


def line_item_json(item: LineItem, lineitems_url: str) -> dict[str, Any]:
    """A line item as AGS 2.0 §3.2.3 represents it."""
    out: dict[str, Any] = {"id": lineitem_url(lineitems_url, item.sourced_id),
                           "scoreMaximum": item.result_value_max, "label": item.title}
    for name, value in (("resourceId", item.resource_id), ("tag", item.tag),
                        ("resourceLinkId", item.resource_link_id)):
        if value is not None:
            out[name] = value
    if item.assign_date is not None:
        out["startDateTime"] = _format(item.assign_date)
    if item.due_date is not None:
        out["endDateTime"] = _format(item.due_date)
    if item.grades_released is not None:
        out["gradesReleased"] = item.grades_released
    return out


def _tool_items(context: ServiceContext, *, shared: bool = False):
    """The context's active line items of the tool; with ``shared``, also the columns made in
    the gradebook (by the OneRoster gradebook service, owned by no tool), which a tool may read
    but not change (AGS 2.0 §3.2: the container holds the line items the tool has access to)."""
    owner = LineItem.tool_id == context.tool.id
    if shared:
        owner = or_(owner, LineItem.tool_id.is_(None))
    return select(LineItem).where(owner, LineItem.district_id == context.klass.district_id,
                                  LineItem.class_sourced_id == context.klass.sourced_id,
                                  LineItem.status == "active")


def list_line_items(session: Session, context: ServiceContext, settings: LtiSettings, *,
                    url: str, resource_link_id: str | None, resource_id: str | None,
                    tag: str | None, limit: str | None, offset: str | None) -> Page:
    """The tool's line items in the context, filtered as AGS 2.0 §3.2.4 allows, paged."""
    size, start = parse_paging(limit, offset, settings)
    query = _tool_items(context, shared=True)
    for column, value in ((LineItem.resource_link_id, resource_link_id),
                          (LineItem.resource_id, resource_id), (LineItem.tag, tag)):
        if value:
            query = query.where(column == value)
    rows = list(session.execute(query.order_by(LineItem.id).limit(size + 1).offset(start)).scalars())
    next_url = None
    if len(rows) > size:
        params = {name: value for name, value in (("resource_link_id", resource_link_id),
                                                   ("resource_id", resource_id), ("tag", tag)) if value}
        params.update(limit=str(size), offset=str(start + size))
        next_url = page_url(url, params)
    return Page([line_item_json(item, url) for item in rows[:size]], next_url)


def find_line_item(session: Session, context: ServiceContext, sourced_id: str, *,
                   shared: bool = False) -> LineItem:
    """The tool's line item ``sourced_id`` in the context (with ``shared``, also one made in the
    gradebook: for reading)."""
    item = session.execute(_tool_items(context, shared=shared).where(
        LineItem.sourced_id == sourced_id)).scalar_one_or_none()
    if item is None:
        raise ServiceNotFound("No such line item.")
    return item


def _apply(session: Session, context: ServiceContext, item: LineItem, body: Mapping[str, Any]) -> None:
    # Every value is checked before any is set: a refused update must leave the item as it was
    # (an error answered by a handler still ends in the request's commit).
    maximum = body.get("scoreMaximum")
    if not _number(maximum) or maximum <= 0:
        raise InvalidServiceRequest("scoreMaximum must be a number greater than 0.")
    title = _text(body, "label", required=True)
    resource_id = _text(body, "resourceId")
    tag = _text(body, "tag")
    link_id = _text(body, "resourceLinkId", limit=64)
    if link_id is not None and session.execute(select(ResourceLink.id).where(
            ResourceLink.link_id == link_id, ResourceLink.deployment_id == context.deployment.id,
            ResourceLink.class_sourced_id == context.klass.sourced_id)).first() is None:
        raise InvalidServiceRequest("resourceLinkId names no resource link of this tool in this context.")
    start = body.get("startDateTime")
    end = body.get("endDateTime")
    assign_date = _parse_datetime(start, "startDateTime") if start is not None else None
    due_date = _parse_datetime(end, "endDateTime") if end is not None else None
    released = body.get("gradesReleased")
    if released is not None and not isinstance(released, bool):
        raise InvalidServiceRequest("gradesReleased must be true or false.")
    item.title, item.result_value_max = title, float(maximum)
    item.resource_id, item.tag, item.resource_link_id = resource_id, tag, link_id
    item.assign_date, item.due_date, item.grades_released = assign_date, due_date, released


def create_line_item(session: Session, context: ServiceContext, body: Any, *, url: str,
                     now: dt.datetime) -> dict[str, Any]:
    """Add a line item to the context (AGS 2.0 §3.2.5) and return it as stored."""
    body = _object(body)
    klass = context.klass
    item = LineItem(district_id=klass.district_id, sourced_id=uuid.uuid4().hex, status="active",
                    date_last_modified=now, class_sourced_id=klass.sourced_id,
                    school_sourced_id=klass.school_sourced_id, result_value_min=0.0,
                    tool_id=context.tool.id)
    _apply(session, context, item, body)
    session.add(item)
    session.flush()
    _changed(session, item.district_id, [("lineItem", item.sourced_id, "created")], now)
    return line_item_json(item, url)


def create_line_item_for_link(session: Session, *, tool_id: int, link: ResourceLink,
                              school_sourced_id: str | None, spec: Mapping[str, Any],
                              now: dt.datetime) -> LineItem | None:
    """The line item a deep-linked content item asks for (Deep Linking 2.0 §3.2 ``lineItem``);
    None when the request is not usable (a missing or non-positive scoreMaximum)."""
    maximum = spec.get("scoreMaximum")
    if not _number(maximum) or maximum <= 0:
        return None
    label = spec.get("label") if isinstance(spec.get("label"), str) and spec.get("label") else link.title
    item = LineItem(district_id=link.district_id, sourced_id=uuid.uuid4().hex, status="active",
                    date_last_modified=now, title=label[:MAX_TEXT],
                    class_sourced_id=link.class_sourced_id, school_sourced_id=school_sourced_id,
                    result_value_min=0.0, result_value_max=float(maximum), tool_id=tool_id,
                    resource_link_id=link.link_id,
                    resource_id=str(spec["resourceId"])[:MAX_TEXT] if spec.get("resourceId") else None,
                    tag=str(spec["tag"])[:MAX_TEXT] if spec.get("tag") else None)
    session.add(item)
    session.flush()
    _changed(session, item.district_id, [("lineItem", item.sourced_id, "created")], now)
    return item


def update_line_item(session: Session, context: ServiceContext, sourced_id: str, body: Any, *,
                     url: str, now: dt.datetime) -> dict[str, Any]:
    """Replace a line item's values (AGS 2.0 §3.2.6)."""
    body = _object(body)
    item = find_line_item(session, context, sourced_id)
    if body.get("id") not in (None, lineitem_url(url, item.sourced_id)):
        raise InvalidServiceRequest("The id in the body is not this line item's.")
    _apply(session, context, item, body)
    item.date_last_modified = now
    written_by_app(item)
    session.flush()
    _changed(session, item.district_id, [("lineItem", item.sourced_id, "updated")], now)
    return line_item_json(item, url)


def delete_line_item(session: Session, context: ServiceContext, sourced_id: str,
                     now: dt.datetime) -> None:
    """Delete a line item (AGS 2.0 §3.2.7): marked ``tobedeleted`` like any OneRoster record, so
    a gradebook consumer learns of it; its results go with it."""
    item = find_line_item(session, context, sourced_id)
    item.status = "tobedeleted"
    item.date_last_modified = now
    changes = [("lineItem", item.sourced_id, "deleted")]
    for result in session.execute(select(Result).where(Result.line_item_id == item.id)).scalars():
        if result.status != "tobedeleted":
            changes.append(("result", result.sourced_id, "deleted"))
        result.status = "tobedeleted"
        result.date_last_modified = now
    session.flush()
    _changed(session, item.district_id, changes, now)


def score_status(grading_progress: str, activity_progress: str) -> str:
    """The OneRoster scoreStatus a score stands for: graded, submitted, or not submitted yet."""
    if grading_progress == "FullyGraded":
        return "fully graded"
    if grading_progress in ("Pending", "PendingManual") or activity_progress in ("Submitted", "Completed"):
        return "submitted"
    if activity_progress in ("Started", "InProgress"):
        return "partially graded"
    return "not submitted"


def post_score(session: Session, context: ServiceContext, sourced_id: str, body: Any,
               now: dt.datetime) -> Result:
    """Record a score (AGS 2.0 §3.4) as the student's result on the line item; the result."""
    body = _object(body)
    item = find_line_item(session, context, sourced_id)
    user_id = _text(body, "userId", required=True)
    activity = body.get("activityProgress")
    grading = body.get("gradingProgress")
    if activity not in ACTIVITY_PROGRESS:
        raise InvalidServiceRequest("activityProgress must be one of " + ", ".join(sorted(ACTIVITY_PROGRESS)))
    if grading not in GRADING_PROGRESS:
        raise InvalidServiceRequest("gradingProgress must be one of " + ", ".join(sorted(GRADING_PROGRESS)))
    timestamp = _parse_datetime(body.get("timestamp"), "timestamp")
    given, maximum = body.get("scoreGiven"), body.get("scoreMaximum")
    if given is not None:
        if not _number(given) or given < 0:
            raise InvalidServiceRequest("scoreGiven must be a number of at least 0.")
        if not _number(maximum) or maximum <= 0:
            raise InvalidServiceRequest("scoreMaximum must be a number greater than 0 when scoreGiven is sent.")
    elif maximum is not None and (not _number(maximum) or maximum <= 0):
        raise InvalidServiceRequest("scoreMaximum must be a number greater than 0.")
    comment = _text(body, "comment", limit=MAX_COMMENT)

    student = _learner(session, context, user_id)
    result = session.execute(select(Result).where(
        Result.line_item_id == item.id, Result.student_sourced_id == student.sourced_id)
    ).scalar_one_or_none()
    if result is not None and result.score_timestamp is not None and timestamp < result.score_timestamp:
        raise Conflict("A score with a later timestamp is already on record (AGS 2.0 §3.4.4).")
    kind = "updated" if result is not None else "created"
    if result is None:
        result = Result(district_id=item.district_id, sourced_id=uuid.uuid4().hex,
                        line_item_id=item.id, line_item_sourced_id=item.sourced_id,
                        class_sourced_id=item.class_sourced_id,
                        student_sourced_id=student.sourced_id)
        session.add(result)
    result.status = "active"
    result.date_last_modified = now
    written_by_app(result)
    result.score = (float(given) / float(maximum) * item.result_value_max
                    if given is not None else None)
    result.score_status = score_status(grading, activity)
    result.score_date = timestamp
    result.comment = comment
    result.score_given = float(given) if given is not None else None
    result.score_maximum = float(maximum) if maximum is not None else None
    result.activity_progress = activity
    result.grading_progress = grading
    result.score_timestamp = timestamp
    session.flush()
    _changed(session, item.district_id, [("result", result.sourced_id, kind)], now)
    return result


def _changed(session: Session, district_id: int, changes: list[tuple[str, str, str]],
             now: dt.datetime) -> None:
    """The change feed's events of what a tool wrote ((entity, sourcedId, kind)), in the
    write's transaction, like the gradebook service's (gateway.gradebook.service)."""
    append_changes(session.connection(), district_id, changes, now)
    if changes:
        note_changed(session, district_id)


def _visible_users(context: ServiceContext):
    """Users of the context's district the app may see."""
    table = User.__table__
    query = select(User).where(User.district_id == context.klass.district_id, User.status == "active")
    predicate = context.visibility.where("user", table)
    return query.where(predicate) if predicate is not None else query


def _learner(session: Session, context: ServiceContext, user_id: str) -> User:
    """The active, visible learner of the class the app knows as ``user_id``. A score is a
    learner's result (AGS 2.0 §3.4: the score's ``userId`` is who it is for); a teacher's score
    would be a gradebook row for someone who is not graded, so it is refused like a stranger's."""
    stored = context.visibility.resolve_id("user", user_id)
    user = session.execute(_visible_users(context).where(User.sourced_id == stored)
                           ).scalar_one_or_none() if stored is not None else None
    roles = (enrollment_roles(session, context.klass.district_id, context.klass.sourced_id,
                              user.sourced_id) if user is not None else [])
    if not roles:
        raise InvalidServiceRequest("userId names no member of this context.")
    if v.LEARNER_ENROLLMENT_ROLES.isdisjoint(roles):
        raise InvalidServiceRequest("userId names a member of this context who is not a learner; "
                                    "scores are kept for learners only.")
    return user


def list_results(session: Session, context: ServiceContext, settings: LtiSettings,
                 sourced_id: str, *, lineitems_url: str, user_id: str | None,
                 limit: str | None, offset: str | None) -> Page:
    """The results of a line item (AGS 2.0 §3.3), of the users the app may see, paged."""
    size, start = parse_paging(limit, offset, settings)
    item = find_line_item(session, context, sourced_id, shared=True)
    item_url = lineitem_url(lineitems_url, item.sourced_id)
    users = _visible_users(context).subquery()
    query = (select(Result, User).join(User, (User.district_id == Result.district_id)
                                       & (User.sourced_id == Result.student_sourced_id))
             .where(Result.line_item_id == item.id, Result.status == "active",
                    User.id.in_(select(users.c.id))))
    if user_id:
        stored = context.visibility.resolve_id("user", user_id)
        query = query.where(Result.student_sourced_id == (stored if stored is not None else ""))
    rows = session.execute(query.order_by(Result.id).limit(size + 1).offset(start)).all()
    out = []
    for result, user in rows[:size]:
        entry: dict[str, Any] = {
            "id": f"{item_url}/results/{quote(result.sourced_id, safe='')}",
            "scoreOf": item_url, "userId": presented_user(user, context.visibility)["sourcedId"],
            "resultMaximum": item.result_value_max}
        if result.score is not None:
            entry["resultScore"] = result.score
        if result.comment:
            entry["comment"] = result.comment
        out.append(entry)
    next_url = None
    if len(rows) > size:
        params = {"user_id": user_id} if user_id else {}
        params.update(limit=str(size), offset=str(start + size))
        next_url = page_url(item_url + "/results", params)
    return Page(out, next_url)
