"""The claims of the launch messages the platform signs (LTI 1.3 Core §5; Deep Linking 2.0 §4.4).

What a message says about people passes the app's :class:`~gateway.sharing.visibility.Visibility`
exactly as the REST service does: a user's and a class's fields are limited to
:meth:`~Visibility.fields`, then go through :meth:`~Visibility.present` (masked, pseudonymized),
so ``sub`` is the same id the app sees as the user's ``sourcedId`` on every channel, and a name
or email the policy withholds is simply absent (Core §5.3.6 makes them optional).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.lti import vocabulary as v
from gateway.oauth.scopes import parse_scope
from gateway.sharing.visibility import Visibility
from gateway.store.lti import Deployment, LineItem, ResourceLink, Tool
from gateway.store.models import Class, Enrollment, Role, User

PRODUCT_FAMILY_CODE = "k12-gateway"
PRODUCT_NAME = "K-12 Interoperability Gateway"
PRODUCT_VERSION = "0.1.0"

# The user fields a launch may carry, REST name -> (store attribute, claim name), Core §5.3.6.
_USER_FIELDS = (("givenName", "given_name", "given_name"), ("familyName", "family_name", "family_name"),
                ("middleName", "middle_name", "middle_name"), ("email", "email", "email"))


def _allowed(record: dict[str, Any], fields: frozenset[str] | None) -> dict[str, Any]:
    return record if fields is None else {k: val for k, val in record.items() if k in fields}


# Preferred names: REST name, store attribute, and the legal name they stand in for.
_PREFERRED_NAMES = (("preferredFirstName", "preferred_given_name", "givenName"),
                    ("preferredLastName", "preferred_family_name", "familyName"))


def presented_user(user: User | Any, visibility: Visibility) -> dict[str, Any]:
    """The user's REST fields a launch or NRPS may carry, as this app may receive them (``user``
    is a :class:`User` or a row with its ``sourced_id``, name, email, preferred name and username
    columns).

    When the app gets preferred names (:meth:`Visibility.preferred_names`), a preferred name the
    SIS has and the policy shares takes the place of the legal one: only what is sent is
    presented, so the ledger records exactly that.
    """
    record: dict[str, Any] = {"sourcedId": user.sourced_id}
    for rest_name, attribute, _ in _USER_FIELDS:
        value = getattr(user, attribute)
        if value:
            record[rest_name] = value
    if user.username:
        record["username"] = user.username
    allowed = visibility.fields("user")
    if visibility.preferred_names():
        for rest_name, attribute, legal in _PREFERRED_NAMES:
            value = getattr(user, attribute)
            if value and (allowed is None or rest_name in allowed):
                record[rest_name] = value
                record.pop(legal, None)
    return visibility.present("user", _allowed(record, allowed))


def person_claims(presented: Mapping[str, Any]) -> dict[str, Any]:
    """``name``, ``given_name``, ``family_name``, ``middle_name`` and ``email`` (OpenID Connect
    standard claims, Core §5.3.6) from a presented user record; absent fields stay absent."""
    claims: dict[str, Any] = {}
    for rest_name, _, claim in _USER_FIELDS:
        if rest_name in presented:
            claims[claim] = presented[rest_name]
    for rest_name, _, legal in _PREFERRED_NAMES:
        if rest_name in presented:  # in place of the legal name (see presented_user)
            claims["given_name" if legal == "givenName" else "family_name"] = presented[rest_name]
    name = " ".join(str(claims[c]) for c in ("given_name", "family_name") if claims.get(c))
    if name:
        claims["name"] = name
    return claims


def presented_class(klass: Class, visibility: Visibility) -> dict[str, Any]:
    """The class's REST fields a context claim carries, as this app may receive them."""
    record: dict[str, Any] = {"sourcedId": klass.sourced_id, "title": klass.title}
    if klass.class_code:
        record["classCode"] = klass.class_code
    return visibility.present("class", _allowed(record, visibility.fields("class")))


def context_claim(presented: Mapping[str, Any]) -> dict[str, Any]:
    """The context claim (Core §5.4.1) of a presented class: a OneRoster class is a section."""
    claim: dict[str, Any] = {"id": presented["sourcedId"], "type": [v.COURSE_SECTION]}
    if presented.get("classCode"):
        claim["label"] = presented["classCode"]
    if presented.get("title"):
        claim["title"] = presented["title"]
    return claim


def enrollment_roles(session: Session, district_id: int, class_sourced_id: str,
                     user_sourced_id: str) -> list[str]:
    """The user's active OneRoster enrollment roles in the class."""
    return list(session.execute(
        select(Enrollment.role).where(Enrollment.district_id == district_id,
                                      Enrollment.class_sourced_id == class_sourced_id,
                                      Enrollment.user_sourced_id == user_sourced_id,
                                      Enrollment.status == "active")
        .order_by(Enrollment.role)).scalars())


def user_roles(session: Session, district_id: int, user_sourced_id: str) -> list[str]:
    """The user's active OneRoster roles (roles.csv), primary first."""
    return list(session.execute(
        select(Role.role).where(Role.district_id == district_id,
                                Role.user_sourced_id == user_sourced_id, Role.status == "active")
        .order_by(Role.role_type, Role.role)).scalars())


def service_urls(issuer: str, deployment_id: str, context_id: str) -> tuple[str, str]:
    """The NRPS memberships URL and the AGS line items URL of a context of a deployment."""
    base = (f"{issuer.rstrip('/')}/lti/deployments/{quote(deployment_id, safe='')}"
            f"/contexts/{quote(context_id, safe='')}")
    return base + "/memberships", base + "/lineitems"


def lineitem_url(lineitems_url: str, line_item_sourced_id: str) -> str:
    """The URL of one line item under its container."""
    return f"{lineitems_url}/{quote(line_item_sourced_id, safe='')}"


def _substitute(custom: Mapping[str, str], variables: Mapping[str, str]) -> dict[str, str]:
    """Custom parameters with substitution variables resolved (Core §5.4.6.1, Appendix C);
    a variable the platform cannot resolve (or may not disclose) is sent unchanged."""
    return {name: variables.get(value, value) if value.startswith("$") else value
            for name, value in custom.items()}


@dataclass(frozen=True)
class Launch:
    """Everything a launch message is built from."""

    issuer: str
    tool: Tool
    deployment: Deployment
    user: User
    # None: a link placed at a school or district-wide, launched without a context.
    klass: Class | None
    message_type: str
    nonce: str
    now: dt.datetime
    lifetime: int
    link: ResourceLink | None = None
    deep_linking_return_url: str | None = None
    deep_linking_data: str | None = None
    return_url: str | None = None
    # The user's OneRoster enrollment roles in the class, when the caller has read them already.
    enrollment_roles: tuple[str, ...] | None = None


def build_claims(session: Session, launch: Launch,
                 visibility: Visibility) -> tuple[dict[str, Any], dict[str, Any]]:
    """The id_token claims of ``launch``, and the user record (as presented) they disclose."""
    tool, deployment, user, klass = launch.tool, launch.deployment, launch.user, launch.klass
    person = presented_user(user, visibility)
    section = presented_class(klass, visibility) if klass is not None else None
    sub = person["sourcedId"]
    context_id = section["sourcedId"] if section is not None else None
    iat = int(launch.now.replace(tzinfo=dt.timezone.utc).timestamp())
    in_class = launch.enrollment_roles
    if in_class is None:
        in_class = () if klass is None else tuple(enrollment_roles(
            session, deployment.district_id, klass.sourced_id, user.sourced_id))
    roles = v.lis_roles(in_class, user_roles(session, deployment.district_id, user.sourced_id))
    claims: dict[str, Any] = {
        # Core §5.1.2 (OpenID Connect ID token) claims.
        "iss": launch.issuer, "aud": tool.client_id, "azp": tool.client_id, "sub": sub,
        "iat": iat, "exp": iat + launch.lifetime, "nonce": launch.nonce,
        # Core §5.3: required message claims.
        v.MESSAGE_TYPE: launch.message_type, v.VERSION: v.LTI_VERSION,
        v.DEPLOYMENT_ID: deployment.deployment_id, v.ROLES: roles,
        # Core §5.4: optional claims.
        v.LIS: {"person_sourcedid": sub},
        v.TOOL_PLATFORM: {"guid": launch.issuer, "name": PRODUCT_NAME,
                          "product_family_code": PRODUCT_FAMILY_CODE, "version": PRODUCT_VERSION},
        v.LAUNCH_PRESENTATION: {"document_target": "window"},
        **person_claims(person),
    }
    if section is not None:
        claims[v.CONTEXT] = context_claim(section)
        claims[v.LIS]["course_section_sourcedid"] = context_id
    if launch.return_url:
        claims[v.LAUNCH_PRESENTATION]["return_url"] = launch.return_url
    link = launch.link
    if launch.message_type == v.RESOURCE_LINK_REQUEST:
        assert link is not None
        claims[v.TARGET_LINK_URI] = link.url or tool.target_link_uri
        claims[v.RESOURCE_LINK] = {"id": link.link_id, "title": link.title,
                                   **({"description": link.text} if link.text else {})}
    else:
        claims[v.TARGET_LINK_URI] = tool.deep_linking_uri or tool.target_link_uri
        claims[v.DL_SETTINGS] = {  # Deep Linking 2.0 §4.4.1
            "deep_link_return_url": launch.deep_linking_return_url,
            "accept_types": ["ltiResourceLink"],
            # The platform launches in a new window only: its pages (the portal, the
            # authorization answer) refuse to be framed, so it does not offer "iframe".
            "accept_presentation_document_targets": ["window"],
            "accept_multiple": True, "auto_create": True,
            "title": klass.title if section and "title" in section else "",
            "data": launch.deep_linking_data,
        }
    variables = {"$User.id": sub, "$Person.sourcedId": sub, "$ToolPlatformInstance.guid": launch.issuer}
    if context_id is not None:
        variables["$Context.id"] = variables["$CourseSection.sourcedId"] = context_id
    if link is not None:
        variables["$ResourceLink.id"] = link.link_id
        variables["$ResourceLink.title"] = link.title
    if "givenName" in person:
        variables["$Person.name.given"] = person["givenName"]
    if "familyName" in person:
        variables["$Person.name.family"] = person["familyName"]
    if "username" in person:
        variables["$User.username"] = person["username"]
    custom = {**(tool.custom or {}), **((link.custom or {}) if link is not None else {})}
    if custom:
        claims[v.CUSTOM] = _substitute(custom, variables)
    if context_id is None:
        # NRPS and AGS are services of a context (NRPS 2.0 §3.6, AGS 2.0 §3.1): none without one.
        return claims, person
    scopes = parse_scope(tool.scope)
    memberships_url, lineitems_url = service_urls(launch.issuer, deployment.deployment_id, context_id)
    if v.SCOPE_NRPS in scopes:
        claims[v.NRPS_CLAIM] = {"context_memberships_url": memberships_url,
                                "service_versions": ["2.0"]}
    ags_scopes = [scope for scope in scopes if scope in v.AGS_SCOPES]
    if ags_scopes:
        endpoint: dict[str, Any] = {"scope": ags_scopes, "lineitems": lineitems_url}
        if link is not None:
            items = list(session.execute(select(LineItem.sourced_id).where(
                LineItem.tool_id == tool.id, LineItem.district_id == deployment.district_id,
                LineItem.resource_link_id == link.link_id, LineItem.status == "active")
                .limit(2)).scalars())
            # AGS 2.0 §3.1: "lineitem" only when the link has exactly one line item.
            if len(items) == 1:
                endpoint["lineitem"] = lineitem_url(lineitems_url, items[0])
        claims[v.AGS_CLAIM] = endpoint
    return claims, person


def visible(session: Session, visibility: Visibility, entity: str, table, row_id: int) -> bool:
    """Whether the row ``row_id`` of ``table`` (a OneRoster entity's store table) is in what
    the app may see."""
    predicate = visibility.where(entity, table)
    if predicate is None:
        return True
    return session.execute(select(table.c.id).where(table.c.id == row_id, predicate)).first() is not None


def visible_to(session: Session, visibility: Visibility, user: User, klass: Class) -> bool:
    """Whether both the user and the class are in what the app may see."""
    return (visible(session, visibility, "user", User.__table__, user.id)
            and visible(session, visibility, "class", Class.__table__, klass.id))

