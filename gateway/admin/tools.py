"""LTI tools in the console: the tools deployed in the admin's district, approving the ones that
registered themselves, starting a dynamic registration, placing a tool in a class, at a school
or district-wide (for everyone there or staff only), removing a placement and disabling a tool. The writes go through :mod:`gateway.lti.platform.registration`
and :mod:`gateway.lti.platform.dynamic`, as ``gateway tools`` does."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from gateway.admin.accounts import TECH_LEAD, Admin, Forbidden
from gateway.errors import UsageError
from gateway.lti.platform import dynamic, icons, registration
from gateway.lti.platform.settings import LtiSettings
from gateway.store.apps import App
from gateway.store.lti import (FOR_STAFF, PLACED_AT_SCHOOL, TOOL_APPROVED, TOOL_PENDING,
                               Deployment, ResourceLink, Tool, ToolIcon)
from gateway.store.models import Class, Org


@dataclass(frozen=True)
class PlacedLink:
    """A tool placed in a class, at a school or district-wide."""

    link_id: str
    title: str
    class_sourced_id: str | None
    # Where, as the console says it: a class's title, "School name (staff)", "the whole district".
    class_title: str


@dataclass
class ToolRow:
    """A tool deployed in the district, with its placements there."""

    client_id: str
    name: str
    app_name: str
    status: str
    login_url: str
    redirect_uris: list[str]
    target_link_uri: str
    deep_linking_uri: str | None
    registration: dict[str, Any] | None
    links: list[PlacedLink] = field(default_factory=list)
    icon_url: str | None = None
    has_icon_image: bool = False

    @property
    def pending(self) -> bool:
        """Whether the tool waits for an admin's approval."""
        return self.status == TOOL_PENDING


def district_tools(session: Session, admin: Admin) -> list[ToolRow]:
    """Every tool deployed in the admin's district, pending ones first, with their links."""
    rows = session.execute(
        select(Tool, App.name, Deployment.id, ToolIcon.url, ToolIcon.image.is_not(None))
        .join(App, App.id == Tool.app_id).outerjoin(ToolIcon, ToolIcon.tool_id == Tool.id)
        .join(Deployment, Deployment.tool_id == Tool.id)
        .where(Deployment.district_id == admin.district_id)
        .order_by(Tool.status != TOOL_PENDING, Tool.name, Tool.id)).all()
    tools: dict[int, ToolRow] = {}
    for tool, app_name, deployment_pk, icon_url, has_icon_image in rows:
        tools[deployment_pk] = ToolRow(tool.client_id, tool.name, app_name, tool.status,
                                       tool.login_url, list(tool.redirect_uris),
                                       tool.target_link_uri, tool.deep_linking_uri,
                                       tool.registration, icon_url=icon_url,
                                       has_icon_image=bool(has_icon_image))
    if tools:
        for link, class_title, school_name in session.execute(
                select(ResourceLink, Class.title, Org.name)
                .outerjoin(Class, (Class.district_id == ResourceLink.district_id)
                           & (Class.sourced_id == ResourceLink.class_sourced_id))
                .outerjoin(Org, (Org.district_id == ResourceLink.district_id)
                           & (Org.sourced_id == ResourceLink.school_sourced_id))
                .where(ResourceLink.deployment_id.in_(list(tools)))
                .order_by(ResourceLink.placement.desc(), Class.title, Org.name,
                          ResourceLink.created_at)):
            if link.class_sourced_id is not None:
                where = class_title or link.class_sourced_id
            else:
                where = (school_name or link.school_sourced_id
                         if link.placement == PLACED_AT_SCHOOL else "the whole district")
                where += " (staff)" if link.audience == FOR_STAFF else " (everyone)"
            tools[link.deployment_id].links.append(
                PlacedLink(link.link_id, link.title, link.class_sourced_id, where))
    return list(tools.values())


def _district_tool(session: Session, admin: Admin, client_id: str) -> Tool:
    tool = session.execute(select(Tool).join(Deployment, Deployment.tool_id == Tool.id).where(
        Tool.client_id == client_id, Deployment.district_id == admin.district_id)
    ).scalars().first()
    if tool is None:
        raise UsageError("No such tool in this district.")
    return tool


def _only_here(session: Session, admin: Admin, tool: Tool) -> None:
    """A tool is one for every district it is deployed in: only then may one district's admin
    change it for all."""
    if session.execute(select(Deployment.id).where(
            Deployment.tool_id == tool.id, Deployment.district_id != admin.district_id)).first():
        raise Forbidden("This tool is deployed in other districts too: remove its links here "
                        "instead.")


def approve(session: Session, admin: Admin, client_id: str, now: dt.datetime) -> Tool:
    """Approve a tool that registered itself, so it can launch and call services."""
    admin.require("manage_tools")
    tool = _district_tool(session, admin, client_id)
    _only_here(session, admin, tool)
    return registration.approve_tool(session, tool.client_id, now)


def disable(session: Session, admin: Admin, client_id: str) -> Tool:
    """Stop a tool launching and calling services (it is pending again until approved)."""
    admin.require("manage_tools")
    tool = _district_tool(session, admin, client_id)
    _only_here(session, admin, tool)
    tool.status = TOOL_PENDING
    session.flush()
    return tool


def _check_class(session: Session, admin: Admin, class_sourced_id: str) -> None:
    if admin.role != TECH_LEAD:
        return
    school = session.execute(select(Class.school_sourced_id).where(
        Class.district_id == admin.district_id, Class.sourced_id == class_sourced_id)
    ).scalar_one_or_none()
    if school not in admin.schools:
        raise Forbidden("This class is not at one of your schools.")


def _check_school(admin: Admin, school_sourced_id: str | None) -> None:
    """A tech lead places at their own schools only, never district-wide."""
    if admin.role == TECH_LEAD and school_sourced_id not in admin.schools:
        raise Forbidden("A school tech lead may place a tool only at their own schools.")


def place(session: Session, admin: Admin, *, client_id: str, class_sourced_id: str | None,
          title: str | None, now: dt.datetime, school_sourced_id: str | None = None,
          district_wide: bool = False, audience: str = "everyone") -> ResourceLink:
    """Place a tool in a class of the district (its members see it on their launchpad), at one
    of its schools or district-wide (everyone there, or staff only, whom the app may see)."""
    admin.require("manage_tools")
    tool = _district_tool(session, admin, client_id)
    if tool.status != TOOL_APPROVED:
        raise UsageError("Approve the tool before placing it.")
    if class_sourced_id:
        _check_class(session, admin, class_sourced_id)
    else:
        _check_school(admin, school_sourced_id)
    return registration.place_tool(session, client_id=tool.client_id,
                                   class_sourced_id=class_sourced_id or None,
                                   school_sourced_id=school_sourced_id or None,
                                   district_wide=district_wide, audience=audience,
                                   district=admin.district_sourced_id, title=title or None,
                                   created_by=admin.email, now=now)


def set_icon(session: Session, admin: Admin, client_id: str, *, url: str | None,
             image: bytes | None) -> Tool:
    """Set the icon of a tool of the district (a URL, or an uploaded image kept in the store;
    neither clears it)."""
    admin.require("manage_tools")
    tool = _district_tool(session, admin, client_id)
    icons.set_icon(session, tool, url=url or None, image=image or None)
    return tool


def remove_link(session: Session, admin: Admin, link_id: str) -> ResourceLink:
    """Remove a placement (or a teacher's deep-linked item) from a class of the district."""
    admin.require("manage_tools")
    link = session.execute(select(ResourceLink).where(
        ResourceLink.link_id == link_id, ResourceLink.district_id == admin.district_id)
    ).scalar_one_or_none()
    if link is None:
        raise UsageError("No such link in this district.")
    if link.class_sourced_id is not None:
        _check_class(session, admin, link.class_sourced_id)
    else:
        _check_school(admin, link.school_sourced_id)
    session.execute(delete(ResourceLink).where(ResourceLink.id == link.id))
    session.expunge(link)
    session.flush()
    return link


def start_registration(session: Session, admin: Admin, *, app_id: int, tool_url: str,
                       settings: LtiSettings, now: dt.datetime) -> str:
    """A one-time registration token for a tool of ``app_id`` in the admin's district, and the
    tool's registration URL to open with it (LTI Dynamic Registration §3.3)."""
    admin.require("manage_tools")
    tool_url = registration.check_url(tool_url.strip(), "registration URL")
    token, _ = dynamic.create_registration_token(session, app=app_id,
                                                 district=admin.district_sourced_id,
                                                 settings=settings, now=now)
    query = urlencode({"openid_configuration": settings.openid_configuration_url,
                       "registration_token": token})
    return tool_url + ("&" if "?" in tool_url else "?") + query
