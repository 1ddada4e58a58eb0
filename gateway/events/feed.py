"""Reading the change feed as one app may see it, and pruning it.

An event carries ids only: ``{"cursor", "type", "entity", "sourcedId", "time"}``, the sourcedId
exactly as the REST service shows it to this app (pseudonymized where its policy says so). To
learn what changed, the app reads the record on REST, through its policy as always; an event can
therefore never carry a field the app may not see.

Which district-wide events (a record created, updated or deleted by an import, or a gradebook
record written through the gradebook service or LTI AGS) an app sees is decided when it reads, by
the REST services' own predicates (``Visibility.where``; a gradebook record's class and student,
:func:`gateway.gradebook.service.visible_conditions`): the record must be in the app's scope
*now*, and the app must hold a scope that reads its service (rostering, resources, gradebook).
Events naming the app (``entered``/``left`` its scope) are its own. Because each event is one row
per district, an import changing 10,000 records writes 10,000 rows however many apps there are;
each app's read filters them.

Every page that names people (users, enrollments, demographics) or students' grades (results,
assessment results: the students are recorded) is recorded in the disclosure ledger as an id
disclosure on channel ``events``, like a REST page.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, delete, exists, false, func, literal_column, or_, select, true, update
from sqlalchemy.orm import Session

from gateway.errors import InvalidData, OneRosterError
from gateway.gradebook.endpoints import READ_SCOPES as GRADEBOOK_READ_SCOPES
from gateway.gradebook.records import ENTITIES as GRADEBOOK_ENTITIES
from gateway.gradebook.service import visible_conditions
from gateway.oneroster.vocabulary import RESOURCES_SCOPES, ROSTERING_SCOPES
from gateway.sharing.enforcement import GRADE_ENTITIES, PolicyVisibility
from gateway.sharing.policy import PEOPLE_ENTITIES
from gateway.store.events import EVENTS, HEADS, head_of
from gateway.store.rostering import ENTITY_TABLES, READ_TABLES

CHANNEL = "events"
"""The ledger channel of the feed and of webhook deliveries."""

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


class CursorExpired(OneRosterError):
    """The cursor is older than the feed keeps events (GATEWAY_EVENTS_RETENTION_DAYS): events after
    it were pruned. Read the records again in full (REST), then follow the feed from the cursor
    the first page without ``after`` gives."""

    status = 410
    code_minor = "cursor_expired"


class InvalidCursor(InvalidData):
    """The cursor is not one this feed gave out."""

    code_minor = "invalid_cursor"


def parse_cursor(raw: str | None) -> int | None:
    """The seq a cursor stands for (None without one: from the oldest event kept)."""
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise InvalidCursor(f"after={raw!r} is not a cursor of this feed")
    return int(raw)


def parse_limit(raw: str | None) -> int:
    """The page size asked for: 1 to MAX_LIMIT, DEFAULT_LIMIT when absent."""
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise InvalidData(f"limit must be a whole number from 1 to {MAX_LIMIT}")
    return int(raw)


@dataclass(frozen=True)
class EventPage:
    """Events as the app receives them, the cursor to continue from, and whether more follow."""

    events: list[dict[str, Any]]
    next_cursor: int
    more: bool

    def to_dict(self) -> dict[str, Any]:
        """The JSON body of a feed page (and of a webhook delivery's ``events`` and ``next``)."""
        return {"events": self.events, "next": str(self.next_cursor), "more": self.more}


FEED_SCOPES: tuple[str, ...] = ROSTERING_SCOPES + RESOURCES_SCOPES + tuple(
    sorted(frozenset().union(*GRADEBOOK_READ_SCOPES.values())))
"""The scopes that let a token read the feed: any that reads a service whose records it carries."""


def _read_scopes(entity: str) -> frozenset[str]:
    """The scopes that let an app see ``entity``'s events (any one of them): those of its REST
    reads."""
    if entity in ENTITY_TABLES:
        return frozenset(ROSTERING_SCOPES)
    if entity in READ_TABLES:
        return frozenset(RESOURCES_SCOPES)
    return GRADEBOOK_READ_SCOPES[entity]


def _visible(visibility: PolicyVisibility, district_id: int, scopes: frozenset[str]):
    """SQL over ``events``: the record a district-wide event names is in the app's scope now,
    and ``scopes`` (the app's) read its service."""
    e = EVENTS
    whens = []
    for entity, table in READ_TABLES.items():
        if not scopes & _read_scopes(entity):
            continue
        condition = visibility.where(entity, table)
        whens.append((e.c.entity == entity, exists(
            select(literal_column("1")).select_from(table).where(
                table.c.district_id == district_id, table.c.sourced_id == e.c.sourced_id,
                true() if condition is None else condition))))
    for name, entity in GRADEBOOK_ENTITIES.items():
        if not scopes & _read_scopes(name):
            continue
        model = entity.model
        whens.append((e.c.entity == name, exists(
            select(literal_column("1")).select_from(model).where(
                model.district_id == district_id, model.sourced_id == e.c.sourced_id,
                *visible_conditions(entity, visibility, district_id)))))
    if not whens:
        return false()
    # CASE, not OR: each event probes only its own entity's table.
    return case(*whens, else_=false())


def _students(session: Session, district_id: int, entity: str, stored_ids: list[str]) -> list[str]:
    """The students whose grades the records ``stored_ids`` of ``entity`` (a grade entity) are,
    aligned with them (the ledger records the students, as for the gradebook's own reads)."""
    model = GRADEBOOK_ENTITIES[entity].model
    students = dict(session.execute(select(model.sourced_id, model.student_sourced_id).where(
        model.district_id == district_id, model.sourced_id.in_(stored_ids))).all())
    # A record is there: the page has just found it visible, in this transaction.
    return [students[stored] for stored in stored_ids]


def _iso(value: dt.datetime | str) -> str:
    if isinstance(value, str):  # SQLite may hand back text
        value = dt.datetime.fromisoformat(value)
    return value.isoformat(timespec="milliseconds") + "Z"


def read_events(session: Session, visibility: PolicyVisibility, *, scopes: frozenset[str],
                after: int | None, limit: int, endpoint: str = "/events") -> EventPage:
    """The next ``limit`` events after ``after`` (None: from the oldest kept) that the visibility's app may see in its district,
    holding ``scopes``, their people recorded in the ledger (channel ``events``, ``endpoint``).

    Raises :class:`CursorExpired` for a cursor older than the pruned events and
    :class:`InvalidCursor` for one past the district's last event. An app that may see nothing
    (no policy, or its contract not in force) gets no events and keeps its cursor."""
    district_id = visibility.district_id
    head, pruned = head_of(session, district_id)
    if after is None:
        after = pruned
    if after < pruned:
        raise CursorExpired(f"cursor {after} has expired: events up to {pruned} were pruned")
    if after > head:
        raise InvalidCursor(f"after={after} is not a cursor of this feed")
    if visibility.policy is None:
        return EventPage([], after, False)
    e = EVENTS
    # ``head`` was read first: every event up to it had committed (seqs are handed out in commit
    # order, gateway.store.events), so a page that is not full has seen all of them.
    rows = session.execute(
        select(e.c.seq, e.c.entity, e.c.sourced_id, e.c.kind, e.c.occurred_at)
        .where(e.c.district_id == district_id, e.c.seq > after, e.c.seq <= head,
               or_(e.c.app_id == visibility.app_id,
                   and_(e.c.app_id.is_(None), _visible(visibility, district_id, scopes))))
        .order_by(e.c.seq).limit(limit)).all()
    events, people = [], {}
    for row in rows:
        external = visibility.external_id(row.entity, row.sourced_id)
        events.append({"cursor": str(row.seq), "type": row.kind, "entity": row.entity,
                       "sourcedId": external, "time": _iso(row.occurred_at)})
        if row.entity in PEOPLE_ENTITIES or row.entity in GRADE_ENTITIES:
            people.setdefault(row.entity, ([], []))
            people[row.entity][0].append({"sourcedId": external})
            people[row.entity][1].append(row.sourced_id)
    for entity, (records, stored) in people.items():
        if entity in GRADE_ENTITIES:
            stored = _students(session, district_id, entity, stored)
        visibility.disclosed(CHANNEL, endpoint, entity, records, stored)
    full = len(rows) == limit
    next_cursor = rows[-1].seq if full else head
    return EventPage(events, next_cursor, full and next_cursor < head)


def prune_events(session: Session, cutoff: dt.datetime) -> int:
    """Remove every district's events older than ``cutoff`` (a prefix of its feed: up to the last
    seq that old), noting how far each was pruned so older cursors get :class:`CursorExpired`;
    returns how many were removed."""
    e = EVENTS
    ends = session.execute(select(e.c.district_id, func.max(e.c.seq))
                           .where(e.c.occurred_at < cutoff).group_by(e.c.district_id)).all()
    removed = 0
    for district_id, last in ends:
        removed += session.execute(delete(e).where(e.c.district_id == district_id,
                                                   e.c.seq <= last)).rowcount
        session.execute(update(HEADS).where(HEADS.c.district_id == district_id,
                                            HEADS.c.pruned_seq < last).values(pruned_seq=last))
    session.flush()
    return removed
