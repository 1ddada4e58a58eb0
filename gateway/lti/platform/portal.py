"""The portal's services: signing people in, setting their passwords, and what they may launch.

People are the users imported from the SIS. A password is stored only as a salted scrypt hash
(:mod:`gateway.passwords`), set by ``gateway users set-password`` or imported already hashed
from users.csv. Only active, enabled users sign in.

What a user may launch: the resource links placed in the classes they are actively enrolled in,
of approved tools shown on the portal, whose app is still connected to the district and whose
sharing policy lets the app see both the user and the class; and the links placed at a school
they belong to (by an active OneRoster role there, or as their primary org) or district-wide, for
everyone or for staff only (people with a staff role, :data:`STAFF_ROLES`), whose app's policy
lets it see the user. Instructors (teachers and administrators of a class) may also start deep
linking to add content to that class.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Callable

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from gateway.errors import UsageError
from gateway.lti.platform.messages import visible
from gateway.lti.vocabulary import INSTRUCTOR_ENROLLMENT_ROLES, STAFF_ROLES
from gateway.passwords import (MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, UNUSABLE_HASH,
                               follows_password_rule, hash_password, verify_password)
from gateway.sharing.visibility import Visibility
from gateway.store.accounts import PortalSession
from gateway.store.apps import live_client_exists
from gateway.store.lti import (FOR_STAFF, PLACED_AT_SCHOOL, PLACED_DISTRICT_WIDE, TOOL_APPROVED,
                               Deployment, ResourceLink, Tool, ToolIcon)
from gateway.store.models import Class, District, Enrollment, Role, User


VisibilityOf = Callable[[int, int], Visibility]
"""``visibility_of(app_id, district_id)``: what an app may see of a district."""


class SignInFailed(Exception):
    """Unknown username, wrong password, or an account that may not sign in."""


class DistrictChoiceNeeded(Exception):
    """The username and password fit accounts in several districts: the person picks one."""

    def __init__(self, districts: list[tuple[str, str]]) -> None:
        super().__init__("choose your district")
        self.districts = districts


@dataclass(frozen=True)
class PortalUser:
    """A signed-in person."""

    id: int
    district_id: int
    sourced_id: str
    username: str
    display_name: str
    district_name: str
    # The name to greet the person by: their preferred first name where the SIS has one.
    first_name: str = ""


def _portal_user(user: User, district: District) -> PortalUser:
    first = user.preferred_given_name or user.given_name
    name = " ".join(n for n in (first, user.family_name) if n)
    return PortalUser(id=user.id, district_id=user.district_id, sourced_id=user.sourced_id,
                      username=user.username or "", display_name=name,
                      district_name=district.name, first_name=first or name)


def portal_user(session: Session, user: User) -> PortalUser:
    """The :class:`PortalUser` of a stored user (who another sign-in, an LMS launch, found)."""
    return _portal_user(user, session.get(District, user.district_id))


def _may_sign_in():
    return (User.status == "active") & User.enabled_user.is_(True)


def authenticate(session: Session, username: str, password: str,
                 district: str | None = None) -> PortalUser:
    """The person ``username`` if ``password`` is theirs; :class:`DistrictChoiceNeeded` when it
    fits accounts in several districts and ``district`` (a sourcedId) does not pick one."""
    query = (select(User, District).join(District, District.id == User.district_id)
             .where(User.username == username, _may_sign_in()).order_by(District.sourced_id))
    if district:
        query = query.where(District.sourced_id == district)
    candidates = session.execute(query).all() if username and password else []
    if not candidates:
        # The same scrypt work as a wrong password, so response times do not tell which
        # usernames exist.
        verify_password(UNUSABLE_HASH, password or "")
        raise SignInFailed("unknown username or wrong password")
    # An account without a password costs the same work too (it used to answer at once).
    matches = [(user, found) for user, found in candidates
               if verify_password(user.password_hash or UNUSABLE_HASH, password)
               and user.password_hash]
    if not matches:
        raise SignInFailed("unknown username or wrong password")
    if len(matches) > 1:
        raise DistrictChoiceNeeded([(found.sourced_id, found.name) for _, found in matches])
    return _portal_user(*matches[0])


def _session_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def start_session(session: Session, user: PortalUser, now: dt.datetime,
                  lifetime: dt.timedelta) -> str:
    """Open a portal session for ``user`` that ends after ``lifetime`` at the latest; returns the
    token the browser keeps (the store keeps only its hash)."""
    # Sessions that have run out are of no use to anyone: dropped as new ones are made.
    session.execute(delete(PortalSession).where(PortalSession.expires_at <= now))
    token = secrets.token_urlsafe(32)
    session.add(PortalSession(token_hash=_session_hash(token), user_id=user.id, created_at=now,
                              expires_at=now + lifetime))
    session.flush()
    return token


def session_user(session: Session, token: str, now: dt.datetime) -> PortalUser | None:
    """The person whose live session ``token`` is (None if it has ended, or if they may no
    longer sign in)."""
    row = session.execute(
        select(User, District)
        .join(PortalSession, PortalSession.user_id == User.id)
        .join(District, District.id == User.district_id)
        .where(PortalSession.token_hash == _session_hash(token), PortalSession.expires_at > now,
               _may_sign_in())).one_or_none()
    return _portal_user(*row) if row is not None else None


def end_sessions(session: Session, user_id: int) -> int:
    """End every portal session of the user ``user_id``, on every worker; returns how many."""
    result = session.execute(delete(PortalSession).where(PortalSession.user_id == user_id))
    session.flush()
    return result.rowcount


def _find_user(session: Session, username: str, district: str | None) -> tuple[User, District]:
    """The one user called ``username`` (in ``district``, required if ambiguous)."""
    query = (select(User, District).join(District, District.id == User.district_id)
             .where(User.username == username).order_by(District.sourced_id))
    if district:
        query = query.where(District.sourced_id == district)
    rows = session.execute(query).all()
    if not rows:
        raise UsageError(f"no user with username {username!r}"
                         + (f" in district {district!r}" if district else ""))
    if len(rows) > 1:
        raise UsageError(f"username {username!r} exists in several districts "
                         f"({', '.join(d.sourced_id for _, d in rows)}): name one with --district")
    return rows[0]


def set_password(session: Session, username: str, password: str,
                 district: str | None = None) -> PortalUser:
    """Store a new password hash for ``username`` (in ``district``, required if ambiguous) and end
    their sessions: whoever signed in with the old password is signed out."""
    if not follows_password_rule(password):
        raise UsageError(f"a password needs {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters")
    user, found = _find_user(session, username, district)
    user.password_hash = hash_password(password)
    end_sessions(session, user.id)
    return _portal_user(user, found)


def revoke_sessions(session: Session, username: str,
                    district: str | None = None) -> tuple[PortalUser, int]:
    """End every portal session of ``username`` (in ``district``, required if ambiguous); returns
    the person and how many sessions ended."""
    user, found = _find_user(session, username, district)
    return _portal_user(user, found), end_sessions(session, user.id)


@dataclass(frozen=True)
class Launchable:
    """A resource link a user may launch."""

    link_id: str
    title: str
    text: str | None
    tool_name: str
    # The tool's icon, when it has one (a URL, or the stored image's address is made by the view).
    icon_url: str | None = None
    has_icon_image: bool = False
    client_id: str = ""


@dataclass(frozen=True)
class ContentPicker:
    """A tool an instructor may pick content from for a class (deep linking)."""

    deployment_id: int
    tool_name: str


@dataclass
class PortalClass:
    """One of the user's classes with what they may launch in it."""

    sourced_id: str
    title: str
    roles: list[str]
    links: list[Launchable] = field(default_factory=list)
    pickers: list[ContentPicker] = field(default_factory=list)


def _live_tools(district_id: int):
    """Deployments in the district of approved portal tools whose app is still connected."""
    return (Deployment.district_id == district_id) & (Tool.status == TOOL_APPROVED) \
        & Tool.on_portal.is_(True) & live_client_exists(Tool.app_id, Deployment.district_id)


def _tiles(district_id: int):
    """The district's links of live tools with the tool's columns a tile needs (never the icon
    image itself, only whether there is one)."""
    return (select(ResourceLink, Tool.name, Tool.app_id, Tool.client_id,
                   ToolIcon.url.label("icon_url"),
                   ToolIcon.image.is_not(None).label("has_icon_image"))
            .join(Deployment, Deployment.id == ResourceLink.deployment_id)
            .join(Tool, Tool.id == Deployment.tool_id)
            .outerjoin(ToolIcon, ToolIcon.tool_id == Tool.id)
            .where(_live_tools(district_id), ResourceLink.district_id == district_id))


def _launchable(link: ResourceLink, tool) -> Launchable:
    return Launchable(link.link_id, link.title, link.text, tool.name, tool.icon_url,
                      bool(tool.has_icon_image), tool.client_id)


def portal_classes(session: Session, user: PortalUser,
                   visibility_of: VisibilityOf) -> list[PortalClass]:
    """The user's active classes, each with the links and content pickers they may use."""
    rows = session.execute(
        select(Class, Enrollment.role)
        .join(Enrollment, (Enrollment.district_id == Class.district_id)
              & (Enrollment.class_sourced_id == Class.sourced_id))
        .where(Enrollment.district_id == user.district_id,
               Enrollment.user_sourced_id == user.sourced_id, Enrollment.status == "active",
               Class.status == "active")
        .order_by(Class.title, Class.sourced_id, Enrollment.role)).all()
    classes: dict[str, PortalClass] = {}
    rows_by_id: dict[str, Class] = {}
    for klass, role in rows:
        entry = classes.setdefault(klass.sourced_id, PortalClass(klass.sourced_id, klass.title, []))
        entry.roles.append(role)
        rows_by_id[klass.sourced_id] = klass
    if not classes:
        return []
    me = session.get(User, user.id)
    allowed: dict[tuple[int, str], bool] = {}

    def may_see(app_id: int, klass: Class) -> bool:
        key = (app_id, klass.sourced_id)
        if key not in allowed:
            visibility = visibility_of(app_id, user.district_id)
            allowed[key] = (visible(session, visibility, "user", User.__table__, me.id)
                            and visible(session, visibility, "class", Class.__table__, klass.id))
        return allowed[key]

    links = session.execute(
        _tiles(user.district_id).where(ResourceLink.class_sourced_id.in_(list(classes)))
        .order_by(ResourceLink.created_at, ResourceLink.id)).all()
    for row in links:
        link = row[0]
        if may_see(row.app_id, rows_by_id[link.class_sourced_id]):
            classes[link.class_sourced_id].links.append(_launchable(link, row))
    teaching = [c for c in classes.values() if INSTRUCTOR_ENROLLMENT_ROLES.intersection(c.roles)]
    if teaching:
        pickers = session.execute(
            select(Deployment.id, Tool.name, Tool.app_id)
            .join(Tool, Tool.id == Deployment.tool_id)
            .where(_live_tools(user.district_id), Tool.deep_linking_uri.is_not(None))
            .order_by(Tool.name, Deployment.id)).all()
        for entry in teaching:
            for deployment_id, tool_name, app_id in pickers:
                if may_see(app_id, rows_by_id[entry.sourced_id]):
                    entry.pickers.append(ContentPicker(deployment_id, tool_name))
    return list(classes.values())


@dataclass(frozen=True)
class Standing:
    """Where a person stands in their district: their schools and whether they are staff."""

    schools: frozenset[str]
    staff: bool


def standing(session: Session, user: User) -> Standing:
    """The schools ``user`` belongs to (their primary org and the orgs of their active roles)
    and whether any active role of theirs is a staff role; one indexed read."""
    rows = session.execute(select(Role.role, Role.org_sourced_id).where(
        Role.district_id == user.district_id, Role.user_sourced_id == user.sourced_id,
        Role.status == "active")).all()
    schools = {org for _, org in rows}
    if user.primary_org_sourced_id:
        schools.add(user.primary_org_sourced_id)
    return Standing(frozenset(schools), any(role in STAFF_ROLES for role, _ in rows))


def placed_for(link: ResourceLink, where: Standing) -> bool:
    """Whether a school or district-wide ``link`` is placed for a person standing ``where``
    (False for a class link: those follow enrollments)."""
    if link.placement == PLACED_AT_SCHOOL:
        placed = link.school_sourced_id in where.schools
    else:
        placed = link.placement == PLACED_DISTRICT_WIDE
    return placed and (link.audience != FOR_STAFF or where.staff)


def launchpad(session: Session, user: PortalUser, visibility_of: VisibilityOf) -> list[Launchable]:
    """The links placed at the user's schools or district-wide that they may launch: in their
    audience, of live tools, whose app's policy lets the app see them (its contract in force)."""
    me = session.get(User, user.id)
    if me is None:
        return []
    where = standing(session, me)
    rows = session.execute(
        _tiles(user.district_id).where(
               (ResourceLink.placement == PLACED_DISTRICT_WIDE)
               | ((ResourceLink.placement == PLACED_AT_SCHOOL)
                  & ResourceLink.school_sourced_id.in_(sorted(where.schools))),
               *(() if where.staff else (ResourceLink.audience != FOR_STAFF,)))
        .order_by(ResourceLink.title, ResourceLink.id)).all()
    allowed: dict[int, bool] = {}
    tiles: list[Launchable] = []
    for row in rows:
        link = row[0]
        if not placed_for(link, where):
            continue
        if row.app_id not in allowed:
            visibility = visibility_of(row.app_id, user.district_id)
            allowed[row.app_id] = (visibility.refusal() is None and visible(
                session, visibility, "user", User.__table__, me.id))
        if allowed[row.app_id]:
            tiles.append(_launchable(link, row))
    return tiles
