"""Launches from an LMS into the gateway (the gateway as an LTI 1.3 *tool*), brokered on to the
district's apps.

LTI Security Framework §5.1.1, seen from the tool's side:

1. The LMS sends the browser to ``/lms/login`` (third-party initiated login, §5.1.1.1);
   pylti1p3 checks the issuer and client_id are registered and answers with the authentication
   request to the LMS's authorization URL. :func:`remember_state` keeps the state with its nonce
   in the launch storage (the store, or Redis), so any worker or host can take the launch.
2. The LMS posts the id_token and state to ``/lms/launch``. :func:`verify_id_token` closes
   pylti1p3's gaps (LTI-NOTES.md) before pylti1p3 validates the message: RS256 only; the key by
   ``kid`` from the LMS's JWKS with one refetch on an unknown ``kid``
   (:class:`~gateway.lti.signed.JwksCache`); an ``aud`` array only with ``azp`` naming our
   client_id; ``exp`` and ``iat`` within a small explicit leeway; a deployment registered for
   that LMS. :func:`consume_state` makes the state and the nonce single use.
3. :func:`match_person` and :func:`match_class` find the OneRoster user and class the launch is
   about; nothing is ever created for an unmatched one (:class:`Unmatched`).
4. :func:`broker` turns the launch into the gateway's own platform launch of the app the link
   points at (:func:`gateway.lti.platform.launch.begin_launch`): the app receives the
   OneRoster identity and class its policy allows, never the LMS's claims.

Deep linking from the LMS into an app that has a picker of its own is chained: the gateway sends
the teacher on to the app's picker with its platform role's deep linking request
(:func:`gateway.lti.platform.launch.begin_deep_linking`), and :func:`remember_chain` notes which
LMS launch waits for that request's answer. The app's response arrives at the platform's deep
linking return, which stores the chosen resource links in the class as for the portal;
:func:`take_chain` then finds the waiting LMS launch, which is answered with one
``LtiResourceLink`` per chosen link, back at the gateway with ``gateway_app`` and
``gateway_link`` (:data:`CUSTOM_LINK`): launched from the LMS, :func:`lms_link` ties the LMS's
link to that chosen resource.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any, Mapping

from pylti1p3.deployment import Deployment as PyltiDeployment
from pylti1p3.registration import Registration
from pylti1p3.tool_config.abstract import ToolConfAbstract
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.lti import replay
from gateway.lti import vocabulary as v
from gateway.lti.platform.errors import BadRequest, NotAllowed, PageError
from gateway.lti.signed import JwksCache, TokenRejected, unverified_claims, verify_signature
from gateway.store.apps import App, live_client_exists
from gateway.store.lms import (PLATFORM_APPROVED, LmsContext, LmsDeployment, LmsLink, LmsPerson,
                               LmsPlatform)
from gateway.store.lti import TOOL_APPROVED, Deployment, ResourceLink, Tool
from gateway.store.models import Class, User

STATE_KEY = "gw-state-"
STATE_SECONDS = 600
LMS_NONCE = "lms_nonce"
CUSTOM_APP = "gateway_app"
CUSTOM_LINK = "gateway_link"
CHAIN_KEY = "gw-dl-chain-"


class LaunchRefused(BadRequest):
    """An LMS launch the gateway does not accept; the page says why."""


class Unmatched(PageError):
    """The LMS user or course has no OneRoster counterpart: nothing is created, the admin sees
    it in ``gateway lms unmatched``."""

    status = 403
    error = "access_denied"


# -- pylti1p3's configuration, from the store ----------------------------------------------

class StoreToolConf(ToolConfAbstract):
    """pylti1p3's tool configuration read from ``lms_platforms``: one issuer may have several
    client_ids (a hosted Canvas), so registrations are always found by issuer and client_id."""

    def __init__(self, session: Session, private_pem: str, public_pem: str) -> None:
        super().__init__()
        self.session = session
        self.private_pem = private_pem
        self.public_pem = public_pem

    def check_iss_has_one_client(self, iss: str) -> bool:
        """Never: lookups always name the client_id."""
        return False

    def check_iss_has_many_clients(self, iss: str) -> bool:
        """Always (see :meth:`check_iss_has_one_client`)."""
        return True

    def _platform(self, iss: str, client_id: str | None) -> LmsPlatform | None:
        # An issuer with several clients must say which (login's client_id).
        return find_platform(self.session, iss, client_id)

    def registration(self, platform: LmsPlatform) -> Registration:
        """The pylti1p3 registration of ``platform``, signing with the gateway's key."""
        return (Registration().set_issuer(platform.issuer).set_client_id(platform.client_id)
                .set_auth_login_url(platform.auth_url).set_auth_token_url(platform.token_url)
                .set_key_set_url(platform.jwks_url).set_tool_private_key(self.private_pem)
                .set_tool_public_key(self.public_pem))

    def find_registration_by_issuer(self, iss: str, *args, **kwargs) -> Registration | None:
        """The registration of an issuer with one client."""
        platform = self._platform(iss, None)
        return self.registration(platform) if platform is not None else None

    def find_registration_by_params(self, iss: str, client_id: str, *args,
                                    **kwargs) -> Registration | None:
        """The registration of ``iss`` and ``client_id``."""
        platform = self._platform(iss, client_id)
        return self.registration(platform) if platform is not None else None

    def find_deployment(self, iss: str, deployment_id: str) -> PyltiDeployment | None:
        """A deployment of an issuer with one client."""
        platform = self._platform(iss, None)
        return self._deployment(platform, deployment_id)

    def find_deployment_by_params(self, iss: str, deployment_id: str, client_id: str, *args,
                                  **kwargs) -> PyltiDeployment | None:
        """A deployment of ``iss`` and ``client_id``."""
        return self._deployment(self._platform(iss, client_id), deployment_id)

    def _deployment(self, platform: LmsPlatform | None,
                    deployment_id: str) -> PyltiDeployment | None:
        if platform is None or not deployment_registered(self.session, platform, deployment_id):
            return None
        return PyltiDeployment().set_deployment_id(deployment_id)


def deployment_registered(session: Session, platform: LmsPlatform, deployment_id: Any) -> bool:
    """Whether the LMS may launch with ``deployment_id``."""
    return isinstance(deployment_id, str) and session.execute(select(LmsDeployment.id).where(
        LmsDeployment.platform_id == platform.id,
        LmsDeployment.deployment_id == deployment_id)).first() is not None


# -- state and nonce ---------------------------------------------------------------------------

def remember_state(cache: Any, *, state: str, nonce: str, issuer: str, client_id: str,
                   storage_target: str | None = None) -> str | None:
    """Keep what the launch for ``state`` must match (its nonce, who it was asked of). With LTI
    platform storage (``storage_target``), also a random binding the browser keeps in the LMS's
    storage instead of a cookie; returned, and only its hash is kept here."""
    record: dict[str, Any] = {"nonce": nonce, "iss": issuer, "client_id": client_id}
    binding = None
    if storage_target:
        binding = secrets.token_urlsafe(24)
        record["binding"] = _digest(binding)
        record["storage_target"] = storage_target
    cache.set(STATE_KEY + state, record, STATE_SECONDS)
    return binding


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def storage_key(state: str) -> str:
    """The key of a launch's binding in the LMS's platform storage."""
    return "gateway_state_" + state


def pending_storage_target(cache: Any, state: str) -> str | None:
    """The platform storage frame a login in progress used, if it used one."""
    record = cache.get(STATE_KEY + state) if state else None
    return record.get("storage_target") if isinstance(record, dict) else None


def check_binding(cache: Any, state: str, binding: str) -> None:
    """The binding the browser read back from the LMS's platform storage must be the login's."""
    record = cache.get(STATE_KEY + state) if state else None
    if (not isinstance(record, dict) or not isinstance(record.get("binding"), str)
            or not hmac.compare_digest(record["binding"], _digest(binding))):
        raise LaunchRefused("This launch could not be checked with your course page; launch it "
                            "again from the course.")


def _chain_key(deployment_pk: int, class_sourced_id: str, user_sourced_id: str) -> str:
    return CHAIN_KEY + _digest(f"{deployment_pk}\x1f{class_sourced_id}\x1f{user_sourced_id}")


def remember_chain(cache: Any, *, deployment_pk: int, class_sourced_id: str,
                   user_sourced_id: str, launch_id: str, platform_id: int, seconds: int) -> None:
    """Note that the LMS deep linking launch ``launch_id`` waits for the answer of the deep
    linking request the gateway sends this user's app for this class (the platform role's
    request carries no room for it: the user, class and deployment tie them)."""
    cache.set(_chain_key(deployment_pk, class_sourced_id, user_sourced_id),
              {"launch_id": launch_id, "platform_id": platform_id}, seconds)


def take_chain(cache: Any, *, deployment_pk: int, class_sourced_id: str,
               user_sourced_id: str) -> dict[str, Any] | None:
    """The LMS launch waiting for this deep linking answer (``launch_id``, ``platform_id``),
    once: None when the request was the portal's."""
    found = cache.pop(_chain_key(deployment_pk, class_sourced_id, user_sourced_id))
    return found if isinstance(found, dict) else None


LAUNCH_PLATFORM_KEY = "gw-lms-launch-"


def remember_launch_platform(cache: Any, message_hint: str, issuer: str, seconds: int) -> None:
    """Note which LMS brokered the launch started with ``message_hint`` (the signed, single
    launch's ``lti_message_hint``): the authorization endpoint names it to the app if the app's
    policy shares it, and only for that launch (not for a portal launch meanwhile)."""
    cache.set(LAUNCH_PLATFORM_KEY + _digest(message_hint), issuer, seconds)


def launch_platform(cache: Any, message_hint: str) -> str | None:
    """The issuer of the LMS that brokered the launch of ``message_hint``, if one did."""
    found = cache.get(LAUNCH_PLATFORM_KEY + _digest(message_hint))
    return found if isinstance(found, str) else None


def find_platform(session: Session, issuer: str, client_id: str | None) -> LmsPlatform | None:
    """The LMS registered as ``issuer`` and ``client_id`` (or the issuer's only client)."""
    query = select(LmsPlatform).where(LmsPlatform.issuer == issuer,
                                      LmsPlatform.status == PLATFORM_APPROVED)
    if client_id:
        return session.execute(query.where(LmsPlatform.client_id == client_id)).scalar_one_or_none()
    found = list(session.execute(query.limit(2)).scalars())
    return found[0] if len(found) == 1 else None


def consume_state(session: Session, cache: Any, *, state: str, claims: Mapping[str, Any],
                  platform: LmsPlatform, now: dt.datetime, leeway: int) -> None:
    """Use the state and the id_token's nonce up: a replayed launch (same state, or same
    id_token) is refused, on any worker or host."""
    if not state:
        raise LaunchRefused("The launch has no state.")
    expected = cache.pop(STATE_KEY + state)
    if (not isinstance(expected, dict) or expected.get("iss") != platform.issuer
            or expected.get("client_id") != platform.client_id):
        raise LaunchRefused("This launch has expired or was already used; launch again from "
                            "your course.")
    if expected.get("nonce") != claims.get("nonce"):
        raise LaunchRefused("The id_token's nonce is not the one this login asked for.")
    expires = dt.datetime.fromtimestamp(float(claims["exp"]) + leeway,
                                        dt.timezone.utc).replace(tzinfo=None)
    try:
        replay.use_once(session, LMS_NONCE, platform.issuer, str(claims["nonce"]),
                        expires_at=max(expires, now), now=now)
    except replay.Replayed as error:
        raise LaunchRefused("This launch was already used; launch again from your course.") from error


# -- the id_token ------------------------------------------------------------------------------

@dataclass(frozen=True)
class VerifiedLaunch:
    """An id_token that passed the gateway's checks, and the LMS that signed it."""

    platform: LmsPlatform
    claims: dict[str, Any]


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def audience(claims: Mapping[str, Any]) -> str:
    """The client_id an id_token is for: ``aud`` when a string; with an ``aud`` array, ``azp``,
    which must then be present and one of the audiences (OIDC Core §2, §3.1.3.7 steps 3-5)."""
    aud, azp = claims.get("aud"), claims.get("azp")
    if isinstance(aud, str) and aud:
        if azp is not None and azp != aud:
            raise LaunchRefused("The id_token's azp is not its audience.")
        return aud
    if isinstance(aud, list) and aud and all(isinstance(a, str) for a in aud):
        if len(aud) == 1 and azp is None:
            return aud[0]
        if not isinstance(azp, str) or azp not in aud:
            raise LaunchRefused("An id_token for several audiences must name this tool in azp.")
        return azp
    raise LaunchRefused("The id_token has no audience.")


def platform_of(session: Session, claims: Mapping[str, Any]) -> LmsPlatform | None:
    """The LMS that issued already verified ``claims`` (a launch restored from storage)."""
    issuer = claims.get("iss")
    return find_platform(session, issuer, audience(claims)) if isinstance(issuer, str) else None


def verify_id_token(session: Session, keys: JwksCache, token: str, *, now: dt.datetime,
                    leeway: int, max_age: int) -> VerifiedLaunch:
    """The LMS's id_token, checked where pylti1p3 does not (see the module's docstring)."""
    try:
        unverified = unverified_claims(token)
    except TokenRejected as error:
        raise LaunchRefused(f"The id_token is not acceptable: {error}.") from error
    issuer = unverified.get("iss")
    client_id = audience(unverified)
    platform = find_platform(session, issuer, client_id) if isinstance(issuer, str) else None
    if platform is None:
        raise LaunchRefused("The id_token is not for an LMS registered with this gateway "
                            "(its iss and aud).")
    try:
        claims = verify_signature(token, keys.lookup(jwks_url=platform.jwks_url, public_jwks=None))
    except TokenRejected as error:
        raise LaunchRefused(f"The id_token is not acceptable: {error}.") from error
    at = now.replace(tzinfo=dt.timezone.utc).timestamp()
    iat, exp = claims.get("iat"), claims.get("exp")
    if not _number(iat) or not _number(exp):
        raise LaunchRefused("The id_token must carry numeric iat and exp.")
    if exp <= at - leeway:
        raise LaunchRefused("The id_token has expired (exp).")
    if iat > at + leeway:
        raise LaunchRefused("The id_token was issued in the future (iat).")
    if iat < at - max_age - leeway:
        raise LaunchRefused(f"The id_token was issued more than {max_age} seconds ago (iat).")
    if not isinstance(claims.get("nonce"), str) or not claims["nonce"]:
        raise LaunchRefused("The id_token has no nonce.")
    if not deployment_registered(session, platform, claims.get(v.DEPLOYMENT_ID)):
        raise LaunchRefused("The id_token's deployment_id is not registered for this LMS.")
    return VerifiedLaunch(platform, claims)


# -- who and which class -------------------------------------------------------------------------

def claim_value(claims: Mapping[str, Any], name: str) -> str | None:
    """A claim by a rule's name: ``custom.<name>``, ``lis.<name>``, or a top-level claim."""
    prefix, _, rest = name.partition(".")
    if prefix == "custom" and rest:
        value = (claims.get(v.CUSTOM) or {}).get(rest)
    elif prefix == "lis" and rest:
        value = (claims.get(v.LIS) or {}).get(rest)
    else:
        value = claims.get(name)
    # An unresolved substitution variable ($User.id) is not a value.
    if not isinstance(value, str) or not value or value.startswith("$"):
        return None
    return value


_USER_COLUMNS = {"sourcedId": User.sourced_id, "email": User.email, "username": User.username}


def _one_user(session: Session, district_id: int, field: str, value: str) -> User | None:
    column = _USER_COLUMNS[field]
    condition = func.lower(column) == value.lower() if field == "email" else column == value
    found = list(session.execute(select(User).where(
        User.district_id == district_id, condition, User.status == "active").limit(2)).scalars())
    # Two people with one email are not a match: never guess who someone is.
    return found[0] if len(found) == 1 else None


def _person_label(claims: Mapping[str, Any]) -> str:
    return " ".join(str(claims[c]) for c in ("name", "email") if isinstance(claims.get(c), str))[:500]


def match_person(session: Session, platform: LmsPlatform, claims: Mapping[str, Any],
                 now: dt.datetime) -> User | None:
    """The OneRoster user of the launch: remembered, else by ``lis.person_sourcedid``, else by
    the platform's rules in order; None (and remembered as unmatched) if none matches."""
    sub = str(claims.get("sub") or "")
    row = session.get(LmsPerson, (platform.id, sub))
    if row is None:
        row = LmsPerson(platform_id=platform.id, lms_user_id=sub, first_seen=now, label="")
        session.add(row)
    row.last_seen, row.label = now, _person_label(claims) or row.label
    district = platform.district_id
    if row.user_sourced_id is not None:
        user = _one_user(session, district, "sourcedId", row.user_sourced_id)
        if user is not None:
            session.flush()
            return user
    attempts = [("person_sourcedid", "sourcedId", claim_value(claims, "lis.person_sourcedid"))]
    attempts += [(rule["field"], rule["field"], claim_value(claims, rule["claim"]))
                 for rule in platform.match_rules or ()]
    for matched_by, field, value in attempts:
        user = _one_user(session, district, field, value) if value else None
        if user is not None:
            row.user_sourced_id, row.matched_by = user.sourced_id, matched_by
            session.flush()
            return user
    row.user_sourced_id = row.matched_by = None
    session.flush()
    return None


def _one_class(session: Session, district_id: int, sourced_id: str | None) -> Class | None:
    if not sourced_id:
        return None
    return session.execute(select(Class).where(
        Class.district_id == district_id, Class.sourced_id == sourced_id,
        Class.status == "active")).scalar_one_or_none()


def match_class(session: Session, platform: LmsPlatform, claims: Mapping[str, Any],
                now: dt.datetime) -> Class | None:
    """The OneRoster class of the launch's context: an admin's mapping or a remembered match,
    else ``lis.course_section_sourcedid``, else the platform's class claim."""
    context = claims.get(v.CONTEXT) or {}
    context_id = str(context.get("id") or "")
    if not context_id:
        return None
    row = session.get(LmsContext, (platform.id, context_id))
    if row is None:
        row = LmsContext(platform_id=platform.id, context_id=context_id, first_seen=now, label="")
        session.add(row)
    row.last_seen = now
    row.label = str(context.get("title") or context.get("label") or row.label)[:500]
    district = platform.district_id
    klass = _one_class(session, district, row.class_sourced_id)
    if klass is None and row.matched_by != "admin":
        attempts = [("course_section_sourcedid",
                     claim_value(claims, "lis.course_section_sourcedid"))]
        if platform.class_claim:
            attempts.append(("claim", claim_value(claims, platform.class_claim)))
        for matched_by, value in attempts:
            klass = _one_class(session, district, value)
            if klass is not None:
                row.class_sourced_id, row.matched_by = klass.sourced_id, matched_by
                break
        else:
            row.class_sourced_id = row.matched_by = None
    session.flush()
    return klass


# -- brokering ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class AppChoice:
    """An app the picker offers in a class."""

    app_id: int
    name: str


def app_deployment(session: Session, district_id: int, app_id: int) -> tuple[Tool, Deployment] | None:
    """The approved portal tool of ``app_id`` deployed in the district, its app connected."""
    row = session.execute(
        select(Tool, Deployment).join(Deployment, Deployment.tool_id == Tool.id)
        .where(Tool.app_id == app_id, Deployment.district_id == district_id,
               Tool.status == TOOL_APPROVED, Tool.on_portal.is_(True),
               live_client_exists(Tool.app_id, Deployment.district_id))
        .order_by(Tool.id).limit(1)).one_or_none()
    return (row[0], row[1]) if row is not None else None


def apps_in_class(session: Session, district_id: int, klass: Class,
                  visibility_of: Any) -> list[AppChoice]:
    """The apps the picker offers: deployed in the district, sharing this class by policy."""
    from gateway.lti.platform.messages import visible

    choices: dict[int, AppChoice] = {}
    for tool, app in session.execute(
            select(Tool, App).join(App, App.id == Tool.app_id).join(
                Deployment, Deployment.tool_id == Tool.id)
            .where(Deployment.district_id == district_id, Tool.status == TOOL_APPROVED,
                   Tool.on_portal.is_(True), live_client_exists(Tool.app_id, Deployment.district_id))
            .order_by(App.name, App.id)).all():
        visibility = visibility_of(app.id, district_id)
        if visibility.refusal() is None and visible(session, visibility, "class",
                                                    Class.__table__, klass.id):
            choices.setdefault(app.id, AppChoice(app.id, app.name))
    return list(choices.values())


def lms_link(session: Session, platform: LmsPlatform, claims: Mapping[str, Any],
             now: dt.datetime) -> LmsLink:
    """The LMS resource link of a launch (remembered), with the app its custom parameter names
    when it names one the first time."""
    link_claim = claims.get(v.RESOURCE_LINK) or {}
    link_id = str(link_claim.get("id") or "")
    if not link_id:
        raise LaunchRefused("The launch names no resource link.")
    row = session.get(LmsLink, (platform.id, link_id))
    context_id = str((claims.get(v.CONTEXT) or {}).get("id") or "")
    if row is None:
        row = LmsLink(platform_id=platform.id, lms_link_id=link_id, context_id=context_id,
                      created_at=now)
        session.add(row)
    if row.app_id is None:
        named = claim_value(claims, "custom." + CUSTOM_APP)
        if named is not None:
            if not named.isdigit() or session.get(App, int(named)) is None:
                raise NotAllowed("The app this link launches is not available in your district.")
            row.app_id = int(named)
    if row.gateway_link_id is None and row.app_id is not None:
        # A resource the teacher chose in the app's own picker (a chained deep linking answer):
        # taken only if it is that app's, in this LMS's district.
        chosen = claim_value(claims, "custom." + CUSTOM_LINK)
        if chosen is not None:
            found = session.execute(select(ResourceLink.link_id).join(
                Deployment, Deployment.id == ResourceLink.deployment_id).join(
                Tool, Tool.id == Deployment.tool_id).where(
                ResourceLink.link_id == chosen, ResourceLink.district_id == platform.district_id,
                Tool.app_id == row.app_id)).scalar_one_or_none()
            if found is None:
                raise NotAllowed("The content this link launches is not available in your "
                                 "district.")
            row.gateway_link_id = found
    if isinstance(claims.get(v.AGS_CLAIM), dict):
        row.lms_ags = dict(claims[v.AGS_CLAIM])
    session.flush()
    return row


def gateway_link(session: Session, platform: LmsPlatform, link: LmsLink, klass: Class,
                 title: str, now: dt.datetime) -> str:
    """The gateway's resource link (in the OneRoster class) an LMS link launches: made on the
    first launch, kept for the next ones."""
    from gateway.lti.platform.registration import add_resource_link

    if link.app_id is None:
        raise LaunchRefused("This link does not name a gateway app.")
    found = app_deployment(session, platform.district_id, link.app_id)
    if found is None:
        raise NotAllowed("The app this link launches is not available in your district.")
    tool, deployment = found
    if link.gateway_link_id is not None:
        current = session.execute(select(ResourceLink).where(
            ResourceLink.link_id == link.gateway_link_id)).scalar_one_or_none()
        if (current is not None and current.class_sourced_id == klass.sourced_id
                and current.deployment_id == deployment.id):
            return current.link_id
    made = add_resource_link(session, deployment=deployment, class_sourced_id=klass.sourced_id,
                             title=title or tool.name, text=None, url=None, custom=None,
                             source="lms", created_by=None, now=now)
    link.gateway_link_id = made.link_id
    session.flush()
    return made.link_id


def is_instructor(claims: Mapping[str, Any]) -> bool:
    """Whether the LMS says the person teaches the context (LIS membership roles)."""
    roles = claims.get(v.ROLES) or []
    return any(isinstance(r, str) and (r.endswith("#Instructor") or r.endswith("#Administrator")
                                       or "/Instructor#" in r) for r in roles)
