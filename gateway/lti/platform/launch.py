"""A launch: third-party initiated login to the tool, then the platform's authentication response.

LTI Security Framework §5.1.1 (OpenID Connect implicit flow, third-party initiated login):

1. :func:`begin_launch` / :func:`begin_deep_linking` (the portal link): the platform sends the
   browser to the tool's login initiation URL with ``iss``, ``login_hint``, ``target_link_uri``,
   ``lti_message_hint``, ``lti_deployment_id`` and ``client_id`` (§5.1.1.1). The message hint is
   a short-lived JWT the platform signs, naming the user, the deployment and what to launch.
2. The tool sends the browser back to the authorization endpoint with an authentication request
   (§5.1.1.2); :func:`authorize` checks it -- the client, the redirect URI against the registered
   list, ``response_type=id_token``, ``scope=openid``, ``response_mode=form_post``,
   ``prompt=none``, a nonce, that ``login_hint`` and the hint are the signed-in user's, that the
   hint is the platform's own, unexpired and used for the first time -- and builds the id_token
   (§5.1.1.3), which the browser form-posts with ``state`` to the redirect URI.

Nothing is ever sent to a redirect URI that failed the check: errors are shown as a page.
"""
from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.lti import replay
from gateway.lti import vocabulary as v
from gateway.lti.keys import KeyRing, UntrustedToken
from gateway.lti.platform.errors import BadRequest, LoginRequired, NotAllowed, WrongUser
from gateway.lti.platform.messages import (Launch, build_claims, enrollment_roles, presented_user,
                                           visible, visible_to)
from gateway.lti.platform.portal import PortalUser, VisibilityOf, placed_for, standing
from gateway.lti.platform.registration import live_deployment
from gateway.lti.platform.settings import LtiSettings
from gateway.sharing.visibility import Visibility
from gateway.store.lti import TOOL_APPROVED, DeepLinkRequest, Deployment, ResourceLink, Tool
from gateway.store.models import Class, User

HINT_PURPOSE = "lti_message_hint"
MAX_NONCE_LENGTH = 255


@dataclass(frozen=True)
class LoginInitiation:
    """Where to send the browser to start a launch: the tool's login URL and its parameters."""

    url: str
    params: dict[str, str]

    @property
    def location(self) -> str:
        """The login initiation URL with the parameters in its query (§5.1.1.1 allows GET)."""
        parts = urlsplit(self.url)
        query = parse_qsl(parts.query, keep_blank_values=True) + list(self.params.items())
        return urlunsplit(parts._replace(query=urlencode(query)))


@dataclass(frozen=True)
class AuthenticationResponse:
    """The id_token and state to form-post to the tool's redirect URI (§5.1.1.3)."""

    redirect_uri: str
    id_token: str
    state: str | None


LMS_PLATFORM_PARAMETER = "gateway_lms_platform"
"""The custom parameter naming the LMS of a brokered launch (policy ``shareLaunchPlatform``)."""


def _timestamp(now: dt.datetime) -> int:
    return int(now.replace(tzinfo=dt.timezone.utc).timestamp())


def _user_and_class(session: Session, user: PortalUser, class_sourced_id: str) -> tuple[User, Class]:
    me = session.get(User, user.id)
    klass = session.execute(select(Class).where(
        Class.district_id == user.district_id, Class.sourced_id == class_sourced_id,
        Class.status == "active")).scalar_one_or_none()
    if me is None or klass is None:
        raise NotAllowed("This class is not available to you.")
    return me, klass


def _enrolled_roles(session: Session, user: User, klass: Class) -> list[str]:
    return enrollment_roles(session, klass.district_id, klass.sourced_id, user.sourced_id)


def _initiation(session: Session, keyring: KeyRing, settings: LtiSettings, *, tool: Tool,
                deployment: Deployment, me: User, login_hint: str, target_link_uri: str,
                message: dict[str, str], now: dt.datetime) -> LoginInitiation:
    iat = _timestamp(now)
    hint = keyring.sign(session, {
        "iss": settings.issuer, "aud": settings.authorization_endpoint, "purpose": HINT_PURPOSE,
        "jti": secrets.token_urlsafe(18), "iat": iat, "exp": iat + settings.hint_lifetime,
        "uid": me.id, "district": me.district_id, "client_id": tool.client_id,
        "deployment": deployment.id, "login_hint": login_hint, **message}, now)
    return LoginInitiation(tool.login_url, {
        "iss": settings.issuer, "login_hint": login_hint, "target_link_uri": target_link_uri,
        "lti_message_hint": hint, "lti_deployment_id": deployment.deployment_id,
        "client_id": tool.client_id})


def _user(session: Session, user: PortalUser) -> User:
    me = session.get(User, user.id)
    if me is None:
        raise NotAllowed("This link is not available to you.")
    return me


def _require_placed_for(session: Session, me: User, link: ResourceLink) -> None:
    """Refuse a school or district-wide link the person is not in the audience of."""
    if not placed_for(link, standing(session, me)):
        raise NotAllowed("This link is not placed for you.")


def _require_person_shared(session: Session, visibility: Visibility, me: User) -> None:
    """Refuse unless the app may see this person (a launch without a class)."""
    refusal = visibility.refusal()
    if refusal is not None or not visible(session, visibility, "user", User.__table__, me.id):
        raise NotAllowed(refusal or "Your district does not share you with this tool.")


def _require_shared(session: Session, visibility: Visibility, me: User, klass: Class) -> None:
    """Refuse unless the app may see this person in this class (its contract in force, both in
    its policy's scope)."""
    refusal = visibility.refusal()
    if refusal is not None or not visible_to(session, visibility, me, klass):
        raise NotAllowed(refusal or "Your district does not share this class with this tool.")


def begin_launch(session: Session, keyring: KeyRing, settings: LtiSettings, *, user: PortalUser,
                 link_id: str, visibility_of: VisibilityOf, now: dt.datetime) -> LoginInitiation:
    """Start launching the resource link ``link_id`` for the signed-in ``user``."""
    link = session.execute(select(ResourceLink).where(
        ResourceLink.link_id == link_id, ResourceLink.district_id == user.district_id)
    ).scalar_one_or_none()
    found = live_deployment(session, link.deployment_id) if link is not None else None
    if link is None or found is None or not found[0].on_portal:
        raise NotAllowed("This link is not available to you.")
    tool, deployment = found
    visibility = visibility_of(tool.app_id, deployment.district_id)
    if link.class_sourced_id is None:
        me = _user(session, user)
        _require_placed_for(session, me, link)
        _require_person_shared(session, visibility, me)
    else:
        me, klass = _user_and_class(session, user, link.class_sourced_id)
        if not _enrolled_roles(session, me, klass):
            raise NotAllowed("This link is in a class you are not enrolled in.")
        _require_shared(session, visibility, me, klass)
    login_hint = presented_user(me, visibility)["sourcedId"]
    return _initiation(session, keyring, settings, tool=tool, deployment=deployment, me=me,
                       login_hint=login_hint, target_link_uri=link.url or tool.target_link_uri,
                       message={"message_type": v.RESOURCE_LINK_REQUEST, "link": link.link_id},
                       now=now)


def begin_deep_linking(session: Session, keyring: KeyRing, settings: LtiSettings, *,
                       user: PortalUser, deployment_pk: int, class_sourced_id: str,
                       visibility_of: VisibilityOf, now: dt.datetime) -> LoginInitiation:
    """Start a deep linking request (Deep Linking 2.0 §4.4) for an instructor of the class."""
    found = live_deployment(session, deployment_pk)
    if (found is None or found[1].district_id != user.district_id or not found[0].on_portal
            or not found[0].deep_linking_uri):
        raise NotAllowed("This tool does not offer content for your classes.")
    tool, deployment = found
    me, klass = _user_and_class(session, user, class_sourced_id)
    if not v.INSTRUCTOR_ENROLLMENT_ROLES.intersection(_enrolled_roles(session, me, klass)):
        raise NotAllowed("Only the class's instructors may add content to it.")
    visibility = visibility_of(tool.app_id, deployment.district_id)
    _require_shared(session, visibility, me, klass)
    login_hint = presented_user(me, visibility)["sourcedId"]
    return _initiation(session, keyring, settings, tool=tool, deployment=deployment, me=me,
                       login_hint=login_hint, target_link_uri=tool.deep_linking_uri,
                       message={"message_type": v.DEEP_LINKING_REQUEST, "class": klass.sourced_id},
                       now=now)


def _param(params: Mapping[str, str], name: str) -> str:
    value = params.get(name)
    if not value:
        raise BadRequest(f"The authentication request has no {name}.")
    return value


def authorize(session: Session, keyring: KeyRing, settings: LtiSettings, *,
              params: Mapping[str, str], user: PortalUser | None, visibility_of: VisibilityOf,
              now: dt.datetime, lms_issuer: str | None = None) -> AuthenticationResponse:
    """Check a tool's authentication request and answer it with a signed id_token
    (``lms_issuer``: the LMS that brokered the launch, named only if the app's policy says)."""
    # Who is asking, and where the answer would go, first: until both are known to be
    # registered, nothing may be sent anywhere (OpenID Connect Core §3.1.2.6).
    client_id = _param(params, "client_id")
    tool = session.execute(select(Tool).where(Tool.client_id == client_id,
                                              Tool.status == TOOL_APPROVED)).scalar_one_or_none()
    if tool is None:
        raise BadRequest("Unknown client_id.")
    redirect_uri = _param(params, "redirect_uri")
    if redirect_uri not in tool.redirect_uris:
        raise BadRequest("The redirect_uri is not registered for this tool.")
    for name, expected in (("response_type", "id_token"), ("response_mode", "form_post"),
                           ("prompt", "none")):
        if params.get(name) != expected:
            raise BadRequest(f"The authentication request must have {name}={expected}.")
    if "openid" not in params.get("scope", "").split():
        raise BadRequest("The authentication request must have scope=openid.")
    nonce = _param(params, "nonce")
    if len(nonce) > MAX_NONCE_LENGTH:
        raise BadRequest("The nonce is too long.")
    login_hint = _param(params, "login_hint")
    message_hint = _param(params, "lti_message_hint")
    if user is None:
        raise LoginRequired("Sign in to the portal, then launch the tool again.")

    try:
        hint = keyring.verify(session, message_hint, now, settings.key_window)
    except UntrustedToken as error:
        raise BadRequest("The lti_message_hint was not issued by this platform.") from error
    ts = _timestamp(now)
    if (hint.get("purpose") != HINT_PURPOSE or hint.get("aud") != settings.authorization_endpoint
            or not isinstance(hint.get("exp"), int) or hint["exp"] <= ts - settings.leeway
            or not isinstance(hint.get("jti"), str)):
        raise BadRequest("The lti_message_hint has expired or is not a message hint.")
    if hint.get("client_id") != client_id:
        raise BadRequest("The lti_message_hint was issued for another tool.")
    if hint.get("uid") != user.id or hint.get("district") != user.district_id:
        raise WrongUser("This launch was started by someone else; sign in as yourself and "
                        "launch again from your portal.")
    if login_hint != hint.get("login_hint"):
        raise WrongUser("The login_hint does not name the signed-in user.")
    expires = dt.datetime.fromtimestamp(hint["exp"] + settings.leeway, dt.timezone.utc).replace(tzinfo=None)
    try:
        replay.use_once(session, replay.HINT, settings.issuer, hint["jti"], expires_at=expires, now=now)
        replay.use_once(session, replay.NONCE, client_id, nonce,
                        expires_at=now + dt.timedelta(seconds=settings.id_token_lifetime + settings.leeway),
                        now=now)
    except replay.Replayed as error:
        raise BadRequest("This launch has already been used; launch again from your portal.") from error

    deployment_pk = hint.get("deployment")
    found = live_deployment(session, deployment_pk) if isinstance(deployment_pk, int) else None
    if found is None or found[0].id != tool.id:
        raise BadRequest("The tool is no longer deployed in your district.")
    deployment = found[1]
    message_type = hint.get("message_type")
    link = None
    data = None
    if message_type == v.RESOURCE_LINK_REQUEST:
        link = session.execute(select(ResourceLink).where(
            ResourceLink.link_id == hint.get("link"),
            ResourceLink.deployment_id == deployment.id)).scalar_one_or_none()
        if link is None:
            raise BadRequest("This link no longer exists.")
        class_sourced_id: str | None = link.class_sourced_id
    elif message_type == v.DEEP_LINKING_REQUEST:
        class_sourced_id = str(hint.get("class"))
    else:
        raise BadRequest("The lti_message_hint names no message.")
    visibility = visibility_of(tool.app_id, deployment.district_id)
    klass: Class | None = None
    roles: list[str] = []
    if class_sourced_id is None:  # a school or district-wide link: no context (Core §5.4.1)
        me = _user(session, user)
        _require_placed_for(session, me, link)
        _require_person_shared(session, visibility, me)
    else:
        me, klass = _user_and_class(session, user, class_sourced_id)
        roles = _enrolled_roles(session, me, klass)
        if not roles or (message_type == v.DEEP_LINKING_REQUEST
                         and not v.INSTRUCTOR_ENROLLMENT_ROLES.intersection(roles)):
            raise NotAllowed("You are no longer enrolled in this class.")
        _require_shared(session, visibility, me, klass)
    if message_type == v.DEEP_LINKING_REQUEST:
        assert klass is not None
        data = secrets.token_urlsafe(24)
        session.add(DeepLinkRequest(
            data=data, deployment_id=deployment.id, class_sourced_id=klass.sourced_id,
            user_sourced_id=me.sourced_id, created_at=now,
            expires_at=now + dt.timedelta(seconds=settings.deep_linking_lifetime)))
        session.flush()

    claims, person = build_claims(session, Launch(
        issuer=settings.issuer, tool=tool, deployment=deployment, user=me, klass=klass,
        message_type=message_type, nonce=nonce, now=now, lifetime=settings.id_token_lifetime,
        link=link, deep_linking_return_url=settings.deep_linking_return_url,
        deep_linking_data=data, return_url=settings.portal_url, enrollment_roles=tuple(roles)),
        visibility)
    if lms_issuer is not None and visibility.shares_launch_platform():
        claims[v.CUSTOM] = {**claims.get(v.CUSTOM, {}), LMS_PLATFORM_PARAMETER: lms_issuer}
    endpoint = "launch" if message_type == v.RESOURCE_LINK_REQUEST else "deep_linking"
    visibility.disclosed("lti", endpoint, "user", [person], [me.sourced_id])
    return AuthenticationResponse(redirect_uri, keyring.sign(session, claims, now),
                                  params.get("state"))
