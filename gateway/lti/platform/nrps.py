"""Names and Role Provisioning Services 2.0: the membership of a context (a OneRoster class).

NRPS 2.0 §2: ``GET`` the context memberships URL (with the
``application/vnd.ims.lti-nrps.v2.membershipcontainer+json`` media type) lists the context's
members with their roles; ``role`` keeps the members with that role (a full URI or its simple
name, §2.4.1), ``limit`` asks for pages of at most that many members, and the next page is
linked with ``Link: <...>; rel="next"`` (§2.4.2).

The members are the class's active enrollments that the app's sharing policy lets it see
(:meth:`Visibility.where` on users and enrollments), one member per person with all their
roles; each member's fields pass :meth:`Visibility.fields` and :meth:`Visibility.present`, so
``user_id`` is the same id as ``sub`` in launches, and every page is recorded in the ledger.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.errors import InvalidData
from gateway.lti import vocabulary as v
from gateway.lti.platform.errors import InvalidServiceRequest
from gateway.lti.platform.messages import context_claim, person_claims, presented_class, presented_user
from gateway.lti.platform.settings import LtiSettings
from gateway.lti.platform.tokens import ServiceContext
from gateway.oneroster import query
from gateway.store.lti import ResourceLink
from gateway.store.models import Enrollment, User

_USERS = User.__table__
_ENROLLMENTS = Enrollment.__table__
_MEMBER_COLUMNS = (_USERS.c.id, _USERS.c.sourced_id, _USERS.c.enabled_user, _USERS.c.username,
                   _USERS.c.given_name, _USERS.c.family_name, _USERS.c.middle_name, _USERS.c.email,
                   _USERS.c.preferred_given_name, _USERS.c.preferred_family_name)


@dataclass(frozen=True)
class MembershipPage:
    """One page of a membership container, and the URL of the next page (None on the last)."""

    body: dict[str, Any]
    next_url: str | None


def parse_paging(limit: str | None, offset: str | None, settings: LtiSettings) -> tuple[int, int]:
    """``limit`` (default and maximum from the settings) and ``offset`` as integers.

    The checks are OneRoster's (:func:`gateway.oneroster.query.parse_paging`): ASCII digits only,
    limit at least 1 and capped, offset at most int32, so a huge offset is a 400 here too rather
    than an integer the database driver cannot bind. An empty value counts as absent.
    """
    try:
        paging = query.parse_paging(limit or None, offset or None, settings.default_limit,
                                    settings.max_limit)
    except InvalidData as error:
        raise InvalidServiceRequest(error.description) from error
    return paging.limit, paging.offset


def page_url(url: str, params: dict[str, str]) -> str:
    """``url`` with ``params`` as its query."""
    return url + "?" + urlencode(params) if params else url


def list_members(session: Session, context: ServiceContext, settings: LtiSettings, *, url: str,
                 role: str | None, limit: str | None, offset: str | None,
                 rlid: str | None) -> MembershipPage:
    """A page of the context's membership container (NRPS 2.0 §2.2)."""
    size, start = parse_paging(limit, offset, settings)
    klass, visibility = context.klass, context.visibility
    roles_wanted = None
    if role:
        roles_wanted = v.enrollment_roles_for(role)
        if roles_wanted is None:
            raise InvalidServiceRequest(f"Unknown role {role!r}.")
    if rlid and session.execute(select(ResourceLink.id).where(
            ResourceLink.link_id == rlid, ResourceLink.deployment_id == context.deployment.id,
            ResourceLink.class_sourced_id == klass.sourced_id)).first() is None:
        raise InvalidServiceRequest("rlid names no resource link of this context.")

    conditions = [_ENROLLMENTS.c.district_id == klass.district_id,
                  _ENROLLMENTS.c.class_sourced_id == klass.sourced_id,
                  _ENROLLMENTS.c.status == "active"]
    hidden_enrollments = visibility.where("enrollment", _ENROLLMENTS)
    if hidden_enrollments is not None:
        conditions.append(hidden_enrollments)
    joined = _USERS.join(_ENROLLMENTS, (_ENROLLMENTS.c.district_id == _USERS.c.district_id)
                         & (_ENROLLMENTS.c.user_sourced_id == _USERS.c.sourced_id))
    # One row per person (DISTINCT: a person may hold several roles in the class), only the
    # columns a member can carry.
    people = select(*_MEMBER_COLUMNS).select_from(joined).where(
        _USERS.c.status == "active", *conditions)
    hidden_users = visibility.where("user", _USERS)
    if hidden_users is not None:
        people = people.where(hidden_users)
    if roles_wanted is not None:
        people = people.where(_ENROLLMENTS.c.role.in_(sorted(roles_wanted)))
    rows = list(session.execute(people.distinct().order_by(_USERS.c.id)
                                .limit(size + 1).offset(start)))
    more = len(rows) > size
    users = rows[:size]
    roles: dict[str, list[str]] = {}
    if users:
        for user_sourced_id, enrollment_role in session.execute(
                select(_ENROLLMENTS.c.user_sourced_id, _ENROLLMENTS.c.role).where(
                    *conditions, _ENROLLMENTS.c.user_sourced_id.in_([u.sourced_id for u in users]))
                .order_by(_ENROLLMENTS.c.role)):
            roles.setdefault(user_sourced_id, []).append(enrollment_role)

    members, records, stored = [], [], []
    for user in users:
        person = presented_user(user, visibility)
        member: dict[str, Any] = {
            "status": "Active" if user.enabled_user else "Inactive",
            "user_id": person["sourcedId"], "lis_person_sourcedid": person["sourcedId"],
            "roles": v.lis_roles(roles.get(user.sourced_id, ()), ()),
        }
        member.update(person_claims(person))
        members.append(member)
        records.append(person)
        stored.append(user.sourced_id)
    visibility.disclosed("lti", "nrps", "user", records, stored)

    body = {"id": url, "context": _context(klass, visibility), "members": members}
    next_url = None
    if more:
        params = {name: value for name, value in (("role", role), ("rlid", rlid)) if value}
        params.update(limit=str(size), offset=str(start + size))
        next_url = page_url(url, params)
    return MembershipPage(body, next_url)


def _context(klass, visibility) -> dict[str, Any]:
    claim = context_claim(presented_class(klass, visibility))
    claim.pop("type", None)
    return claim
