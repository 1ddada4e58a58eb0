"""Policies as a service: set one, load one, preview a change, describe an app's sharing.

Every function takes the session and flushes; the caller (a CLI command, a request) commits once.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any, Mapping

from sqlalchemy import String, Table, and_, case, cast, func, literal, not_, select, union_all
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from gateway.caching import LRUCache
from gateway.errors import UsageError
from gateway.sharing.ledger import canonical_json
from gateway.sharing.policy import ENTITY_NAMES, SERVED_FIELDS, Policy, parse_policy
from gateway.sharing.scope import Scope, student_role_exists, teacher_role_exists
from gateway.sharing.snapshots import refresh_policy_snapshot
from gateway.store.events import append_events
from gateway.store.rostering import ENTITY_TABLES
from gateway.store.apps import AccessToken, App, AppClient, live_client_exists
from gateway.store.models import Class, Course, District, Org, User
from gateway.store.sharing import SharingPolicy


class UnknownApp(UsageError):
    """No app has the given id, or it is not connected to the given district."""


# -------------------------------------------------------------------------------- finding apps

def find_app(session: Session, app_or_client_id: int | str) -> App:
    """The app with this id, or the app of the client with this client_id (UnknownApp
    otherwise): every ``gateway apps`` command takes either, as ``apps revoke`` does."""
    key = str(app_or_client_id)
    app = session.get(App, int(key)) if key.isdigit() else None
    if app is None:
        app = session.execute(select(App).join(AppClient, AppClient.app_id == App.id)
                              .where(AppClient.client_id == key)).scalar_one_or_none()
    if app is None:
        raise UnknownApp(f"no app with id or client_id {key!r}; see `gateway apps list`")
    return app


def app_connected(session: Session, app_id: int, district_id: int) -> bool:
    """Whether the app has a client in the district that is not revoked."""
    return session.execute(select(live_client_exists(app_id, district_id))).scalar_one()


def app_district_id(session: Session, app_id: int, district_sourced_id: str | None) -> int:
    """The district an app is connected to: the one named, or its only one when None."""
    rows = session.execute(
        select(District.id, District.sourced_id).join(AppClient, AppClient.district_id == District.id)
        .where(AppClient.app_id == app_id).distinct().order_by(District.sourced_id)).all()
    if district_sourced_id is not None:
        for district_id, sourced_id in rows:
            if sourced_id == district_sourced_id:
                return district_id
        raise UnknownApp(f"app {app_id} is not connected to district {district_sourced_id!r}")
    if len(rows) == 1:
        return rows[0][0]
    if not rows:
        raise UnknownApp(f"app {app_id} is not connected to any district")
    raise UsageError(f"app {app_id} is connected to several districts "
                     f"({', '.join(s for _, s in rows)}): name one with --district")


# ------------------------------------------------------------------------------ stored policies

_PARSED = LRUCache(512)


def _parse_cached(document: Mapping[str, Any]) -> Policy:
    # Keyed on the document itself, not on the row: a replaced or re-created row can never be
    # served a stale parse. Parsing validates against the schema, which is worth caching.
    key = canonical_json(document)
    policy = _PARSED.get(key)
    if policy is None:
        policy = parse_policy(document)
        _PARSED.put(key, policy)
    return policy


def get_policy_row(session: Session, app_id: int, district_id: int) -> SharingPolicy | None:
    """The stored policy row of an app for a district, if any."""
    return session.execute(select(SharingPolicy).where(
        SharingPolicy.app_id == app_id, SharingPolicy.district_id == district_id)
    ).scalar_one_or_none()


def load_policy(session: Session, app_id: int, district_id: int) -> Policy | None:
    """The app's policy for the district, parsed; None when the district has not set one."""
    document = session.execute(select(SharingPolicy.document).where(
        SharingPolicy.app_id == app_id, SharingPolicy.district_id == district_id)
    ).scalar_one_or_none()
    return None if document is None else _parse_cached(document)


@dataclasses.dataclass(frozen=True)
class PolicyUpdate:
    """What setting a policy did."""

    app_id: int
    district_id: int
    revision: int
    scopes: tuple[str, ...] | None
    revoked_tokens: int


def set_policy(session: Session, *, app_id: int, district_id: int, document: Any,
               now: dt.datetime) -> PolicyUpdate:
    """Validate ``document`` and make it the app's policy for the district (replacing any).

    When the policy lists ``scopes``, they become the scopes of the app's live clients in that
    district, and live tokens holding a scope no longer granted are revoked.
    """
    policy = parse_policy(document)
    row = get_policy_row(session, app_id, district_id)
    previous = load_policy(session, app_id, district_id) if row is not None else None
    if row is None:
        row = SharingPolicy(app_id=app_id, district_id=district_id, revision=1)
        session.add(row)
    else:
        row.revision += 1
    row.document = policy.document
    row.contract_start = policy.contract_start
    row.contract_end = policy.contract_end
    row.updated_at = now
    revoked = 0
    if policy.scopes is not None:
        granted = set(policy.scopes)
        clients = session.execute(select(AppClient).where(
            AppClient.app_id == app_id, AppClient.district_id == district_id,
            AppClient.revoked_at.is_(None))).scalars().all()
        for client in clients:
            client.scope = " ".join(policy.scopes)
        if clients:
            tokens = session.execute(select(AccessToken).where(
                AccessToken.app_client_id.in_([client.id for client in clients]),
                AccessToken.revoked_at.is_(None), AccessToken.expires_at > now)).scalars().all()
            for token in tokens:
                if not set(token.scope.split()) <= granted:
                    token.revoked_at = now
                    revoked += 1
    session.flush()
    # In this transaction, so that no request sees the new revision without its scope.
    refresh_policy_snapshot(session.connection(), row.id)
    if previous is not None:
        record_scope_moves(session, app_id=app_id, district_id=district_id, old=previous,
                           new=policy, now=now)
    return PolicyUpdate(app_id=app_id, district_id=district_id, revision=row.revision,
                        scopes=policy.scopes, revoked_tokens=revoked)


def record_scope_moves(session: Session, *, app_id: int, district_id: int, old: Policy,
                       new: Policy, now: dt.datetime) -> int:
    """Append to the change feed the app's ``entered`` and ``left`` events of a policy change:
    every record of every entity that the old policy's scope holds and the new one does not, and
    the reverse, by the very predicates that enforce them (NULL-free, so ``NOT`` is exact).
    Returns how many. (A first policy records nothing: the app had nothing to sync from.)"""
    dialect = session.get_bind().dialect.name
    before, after = Scope(old, district_id, dialect), Scope(new, district_id, dialect)
    parts = []
    for entity, table in ENTITY_TABLES.items():
        was, now_in = before.where(entity, table), after.where(entity, table)
        for kind, condition in (("left", and_(was, not_(now_in))),
                                ("entered", and_(now_in, not_(was)))):
            parts.append(select(literal(app_id).label("app_id"), literal(entity).label("entity"),
                                table.c.sourced_id.label("sourced_id"), literal(kind).label("kind"),
                                table.c.id.label("ord"))
                         .where(table.c.district_id == district_id, condition))
    # In each table's id order (rows of different entities interleave; each is one event).
    return append_events(session.connection(), district_id, union_all(*parts), "ord", now)


# ------------------------------------------------------------------------------------- preview

@dataclasses.dataclass(frozen=True)
class CountChange:
    """How many records are visible before and after, and how many are gained and lost."""

    before: int
    after: int
    gained: int
    lost: int


@dataclasses.dataclass(frozen=True)
class FieldChange:
    """A field whose treatment changes: ``withheld``, ``shared``, ``masked:<kind>``, ``pseudonymized``."""

    entity: str
    field: str
    before: str
    after: str

    @property
    def change(self) -> str:
        """``starts``, ``stops`` (leaving) or ``changes``."""
        if self.before == "withheld":
            return "starts"
        if self.after == "withheld":
            return "stops"
        return "changes"


@dataclasses.dataclass(frozen=True)
class PolicyPreview:
    """What replacing an app's policy would change, computed with the enforcement predicates."""

    app_id: int
    district_id: int
    students: CountChange
    teachers: CountChange
    classes: CountChange
    fields: tuple[FieldChange, ...]
    scopes: tuple[tuple[str, ...] | None, tuple[str, ...] | None]
    contract: tuple[tuple[dt.date | None, dt.date | None] | None,
                    tuple[dt.date | None, dt.date | None] | None]


def _count_change(session: Session, table: Table, entity: str, old: Scope, new: Scope,
                  extra: ColumnElement[bool] | None) -> CountChange:
    before, after = old.where(entity, table), new.where(entity, table)

    def total(condition: ColumnElement[bool]):
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    conditions = [table.c.district_id == old.district_id]
    if extra is not None:
        conditions.append(extra)
    row = session.execute(select(total(before), total(after), total(and_(after, not_(before))),
                                 total(and_(before, not_(after)))).where(*conditions)).one()
    return CountChange(*(int(value) for value in row))


def visible_counts(session: Session, policy: Policy | None, district_id: int) -> dict[str, int]:
    """How many students, teachers and classes a policy makes visible in the district."""
    dialect = session.get_bind().dialect.name
    scope = Scope(policy, district_id, dialect)
    users, classes = User.__table__, Class.__table__
    counts = {}
    for name, table, entity, extra in (
            ("students", users, "user", student_role_exists(users.c.sourced_id, district_id)),
            ("teachers", users, "user", teacher_role_exists(users.c.sourced_id, district_id)),
            ("classes", classes, "class", None)):
        conditions = [table.c.district_id == district_id, scope.where(entity, table)]
        if extra is not None:
            conditions.append(extra)
        counts[name] = session.execute(select(func.count()).select_from(table)
                                       .where(*conditions)).scalar_one()
    return counts


def _treatments(policy: Policy | None) -> dict[tuple[str, str], str]:
    return {(entity, field): (policy.treatment(entity, field) if policy else "withheld")
            for entity in ENTITY_NAMES for field in SERVED_FIELDS[entity]}


def preview_policy(session: Session, *, app_id: int, district_id: int,
                   document: Any) -> PolicyPreview:
    """What would change if ``document`` replaced the app's policy for the district (nothing is
    written): students (users holding a student role), teachers (a teacher role) and classes
    gained and lost, and the fields that would start or stop leaving or change treatment."""
    new = parse_policy(document)
    old = load_policy(session, app_id, district_id)
    dialect = session.get_bind().dialect.name
    old_scope, new_scope = Scope(old, district_id, dialect), Scope(new, district_id, dialect)
    users, classes = User.__table__, Class.__table__
    before, after = _treatments(old), _treatments(new)
    fields = tuple(FieldChange(entity, field, before[entity, field], after[entity, field])
                   for entity, field in before if before[entity, field] != after[entity, field])
    window = (lambda p: None if p is None or (p.contract_start is None and p.contract_end is None)
              else (p.contract_start, p.contract_end))
    return PolicyPreview(
        app_id=app_id, district_id=district_id,
        students=_count_change(session, users, "user", old_scope, new_scope,
                               student_role_exists(users.c.sourced_id, district_id)),
        teachers=_count_change(session, users, "user", old_scope, new_scope,
                               teacher_role_exists(users.c.sourced_id, district_id)),
        classes=_count_change(session, classes, "class", old_scope, new_scope, None),
        fields=fields,
        scopes=(old.scopes if old else None, new.scopes),
        contract=(window(old), window(new)))


# ------------------------------------------------------------------------------------ describe

@dataclasses.dataclass(frozen=True)
class UnknownNames:
    """Values a policy names that the district's data does not have (a policy naming grade "3"
    where the SIS writes "03" is valid, and shares nothing)."""

    what: str  # "schools", "grades" or "classes"
    names: tuple[str, ...]
    known: tuple[str, ...]  # what the district has (at most KNOWN_SHOWN of them)


KNOWN_SHOWN = 30


def _grade_values(session: Session, district_id: int) -> set[str]:
    # Classes, their courses and users carry grades; each distinct list once (JSON as text:
    # PostgreSQL's json type has no equality for DISTINCT).
    found: set[str] = set()
    for model in (Class, Course, User):
        lists = session.execute(select(cast(model.grades, String)).where(
            model.district_id == district_id, model.grades.is_not(None)).distinct()).scalars()
        for text in lists:
            found.update(json.loads(text))
    return found


def unknown_policy_names(session: Session, policy: Policy, district_id: int) -> list[UnknownNames]:
    """The schools, grades and classes ``policy`` names that the district does not have."""
    unknown: list[UnknownNames] = []
    if policy.schools:
        schools = set(session.execute(select(Org.sourced_id).where(
            Org.district_id == district_id, Org.type == "school")).scalars())
        missing = policy.schools - schools
        if missing:
            unknown.append(UnknownNames("schools", tuple(sorted(missing)),
                                        tuple(sorted(schools))[:KNOWN_SHOWN]))
    if policy.grades:
        grades = _grade_values(session, district_id)
        missing = policy.grades - grades
        if missing:
            unknown.append(UnknownNames("grades", tuple(sorted(missing)),
                                        tuple(sorted(grades))[:KNOWN_SHOWN]))
    if policy.classes:
        present = set(session.execute(select(Class.sourced_id).where(
            Class.district_id == district_id, Class.sourced_id.in_(sorted(policy.classes)))
        ).scalars())
        missing = policy.classes - present
        if missing:
            sample = session.execute(select(Class.sourced_id).where(
                Class.district_id == district_id).order_by(Class.sourced_id).limit(KNOWN_SHOWN)
            ).scalars()
            unknown.append(UnknownNames("classes", tuple(sorted(missing)), tuple(sample)))
    return unknown


def describe_unknown_names(unknown: list[UnknownNames], district: str) -> str:
    """The lines that tell an admin which names district ``district`` does not have."""
    lines = []
    for item in unknown:
        known = ", ".join(item.known) if item.known else "none"
        more = " ..." if len(item.known) == KNOWN_SHOWN else ""
        lines.append(f"the policy names {item.what} that district {district} does not have: "
                     f"{', '.join(item.names)} (it has: {known}{more})")
    return "\n".join(lines)


def contract_status(start: dt.date | None, end: dt.date | None, today: dt.date) -> str:
    """A contract window in words, relative to ``today``."""
    if start is None and end is None:
        return "no contract window"
    span = f"{start} to {end}"
    if start is not None and today < start:
        return f"not started: runs {span}"
    if end is not None and today > end:
        return f"ended on {end}: ran {span}"
    return f"in force: runs {span}"


@dataclasses.dataclass(frozen=True)
class ClientInfo:
    """One OAuth client of the app in a district."""

    client_id: str
    scopes: tuple[str, ...]
    created_at: dt.datetime
    revoked_at: dt.datetime | None


@dataclasses.dataclass(frozen=True)
class DistrictSharing:
    """An app's connection to one district: its clients, policy and what that policy shows."""

    district_id: int
    district: str
    clients: tuple[ClientInfo, ...]
    policy: dict[str, Any] | None
    revision: int | None
    updated_at: dt.datetime | None
    contract: str
    visible: dict[str, int]


@dataclasses.dataclass(frozen=True)
class AppSharing:
    """Everything ``gateway apps show`` prints about an app."""

    app_id: int
    name: str
    created_at: dt.datetime
    districts: tuple[DistrictSharing, ...]


def describe_app(session: Session, app_id: int | str, today: dt.date) -> AppSharing:
    """The app, each district it is connected to, its policy there and what it can see."""
    app = find_app(session, app_id)
    rows = session.execute(
        select(AppClient, District.sourced_id).join(District, District.id == AppClient.district_id)
        .where(AppClient.app_id == app.id).order_by(District.sourced_id, AppClient.id)).all()
    grouped: dict[int, tuple[str, list[ClientInfo]]] = {}
    for client, sourced_id in rows:
        grouped.setdefault(client.district_id, (sourced_id, []))[1].append(ClientInfo(
            client_id=client.client_id, scopes=tuple(client.scope.split()),
            created_at=client.created_at, revoked_at=client.revoked_at))
    districts = []
    for district_id, (sourced_id, clients) in grouped.items():
        row = get_policy_row(session, app.id, district_id)
        policy = _parse_cached(row.document) if row else None
        districts.append(DistrictSharing(
            district_id=district_id, district=sourced_id, clients=tuple(clients),
            policy=dict(row.document) if row else None, revision=row.revision if row else None,
            updated_at=row.updated_at if row else None,
            contract=contract_status(row.contract_start, row.contract_end, today) if row
            else "no policy: nothing is shared",
            visible=visible_counts(session, policy, district_id)))
    return AppSharing(app_id=app.id, name=app.name, created_at=app.created_at,
                      districts=tuple(districts))


def district_sourced_id(session: Session, district_id: int) -> str:
    """The sourcedId of a district."""
    return session.execute(select(District.sourced_id).where(District.id == district_id)).scalar_one()

