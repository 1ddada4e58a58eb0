"""The LMS platforms that launch the gateway, per district: register, list, remove, match rules,
class mappings, what is unmatched, and what an admin pastes into the LMS.

No web framework here; the CLI (``gateway lms``) is a thin wrapper over these functions.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Sequence

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from gateway.errors import UsageError
from gateway.lti import vocabulary as v
from gateway.lti.platform.registration import check_url
from gateway.store.lms import (PLATFORM_APPROVED, LmsContext, LmsDeployment, LmsPerson,
                               LmsPlatform)
from gateway.store.models import Class, District, User

# Paths of the tool role's endpoints under the issuer.
LOGIN_PATH = "/lms/login"
REGISTER_PATH = "/lms/register"
LAUNCH_PATH = "/lms/launch"
PICK_PATH = "/lms/pick"

MATCH_FIELDS = ("sourcedId", "email", "username")


@dataclass(frozen=True)
class MatchRule:
    """Match an LMS user to the OneRoster user whose ``field`` equals the launch's ``claim``
    (``email``, ``custom.<name>`` for a custom parameter, or any top-level claim name)."""

    field: str
    claim: str

    @classmethod
    def parse(cls, text: str) -> "MatchRule":
        """``FIELD=CLAIM`` (``email`` alone means ``email=email``)."""
        field, sep, claim = text.partition("=")
        claim = claim if sep else field
        if field not in MATCH_FIELDS or not claim:
            raise UsageError(f"{text!r}: a rule is FIELD=CLAIM with FIELD one of "
                             + ", ".join(MATCH_FIELDS))
        return cls(field, claim)


def _district(session: Session, sourced_id: str) -> District:
    district = session.execute(select(District).where(District.sourced_id == sourced_id)
                               ).scalar_one_or_none()
    if district is None:
        raise UsageError(f"no district {sourced_id!r}")
    return district


def register_platform(session: Session, *, district: str, issuer: str, client_id: str,
                      auth_url: str, token_url: str, jwks_url: str,
                      deployment_ids: Sequence[str], name: str | None = None,
                      rules: Sequence[MatchRule] = (), class_claim: str | None = None,
                      now: dt.datetime) -> LmsPlatform:
    """Register an LMS (issuer and client_id) in a district, or add deployment ids to it."""
    row = _district(session, district)
    for label, url in (("auth URL", auth_url), ("token URL", token_url), ("JWKS URL", jwks_url)):
        check_url(url, label)
    if not issuer.strip() or not client_id.strip():
        raise UsageError("an LMS needs an issuer and a client_id")
    platform = session.execute(select(LmsPlatform).where(
        LmsPlatform.issuer == issuer, LmsPlatform.client_id == client_id)).scalar_one_or_none()
    if platform is not None and platform.district_id != row.id:
        raise UsageError(f"{issuer} client {client_id} is registered in another district")
    if platform is None:
        platform = LmsPlatform(district_id=row.id, issuer=issuer, client_id=client_id,
                               name=name or issuer, match_rules=[], created_at=now,
                               auth_url=auth_url, token_url=token_url, jwks_url=jwks_url)
        session.add(platform)
    else:
        platform.auth_url, platform.token_url, platform.jwks_url = auth_url, token_url, jwks_url
        if name:
            platform.name = name
    if rules:
        platform.match_rules = [{"field": r.field, "claim": r.claim} for r in rules]
    if class_claim:
        platform.class_claim = class_claim
    session.flush()
    known = set(session.execute(select(LmsDeployment.deployment_id).where(
        LmsDeployment.platform_id == platform.id)).scalars())
    for deployment_id in deployment_ids:
        if deployment_id not in known:
            session.add(LmsDeployment(platform_id=platform.id, deployment_id=deployment_id))
            known.add(deployment_id)
    session.flush()
    return platform


def platform_json(session: Session, platform: LmsPlatform) -> dict[str, Any]:
    """A platform as ``gateway lms list`` shows it."""
    district = session.get(District, platform.district_id)
    return {"id": platform.id, "name": platform.name, "district": district.sourced_id,
            "issuer": platform.issuer, "client_id": platform.client_id,
            "auth_url": platform.auth_url, "token_url": platform.token_url,
            "jwks_url": platform.jwks_url, "match_rules": platform.match_rules,
            "class_claim": platform.class_claim, "status": platform.status,
            "deployment_ids": sorted(session.execute(select(LmsDeployment.deployment_id).where(
                LmsDeployment.platform_id == platform.id)).scalars())}


def list_platforms(session: Session, district: str | None = None) -> list[LmsPlatform]:
    """The registered LMS platforms (of one district, when given)."""
    query = select(LmsPlatform).order_by(LmsPlatform.id)
    if district is not None:
        query = query.where(LmsPlatform.district_id == _district(session, district).id)
    return list(session.execute(query).scalars())


def find_platform(session: Session, platform_id: int) -> LmsPlatform:
    """The platform ``platform_id``; :class:`UsageError` if there is none."""
    platform = session.get(LmsPlatform, platform_id)
    if platform is None:
        raise UsageError(f"no LMS platform {platform_id}")
    return platform


def approve_platform(session: Session, platform_id: int,
                     deployment_ids: Sequence[str] = ()) -> LmsPlatform:
    """Approve an LMS that registered itself: its launches are accepted from now on."""
    platform = find_platform(session, platform_id)
    platform.status = PLATFORM_APPROVED
    known = set(session.execute(select(LmsDeployment.deployment_id).where(
        LmsDeployment.platform_id == platform.id)).scalars())
    for deployment_id in deployment_ids:
        if deployment_id not in known:
            session.add(LmsDeployment(platform_id=platform.id, deployment_id=deployment_id))
    session.flush()
    if not known and not deployment_ids:
        raise UsageError(f"LMS {platform_id} sent no deployment id: name one with --deployment-id")
    return platform


def remove_platform(session: Session, platform_id: int) -> None:
    """Forget an LMS: its launches are refused from now on, its matches are dropped."""
    session.delete(find_platform(session, platform_id))
    session.flush()


def _remember(session: Session, model, key: tuple[int, str], column: str, value: str,
              now: dt.datetime):
    row = session.get(model, key)
    if row is None:
        row = model(platform_id=key[0], label="", first_seen=now, last_seen=now)
        setattr(row, model.__mapper__.primary_key[1].key, key[1])
        session.add(row)
    setattr(row, column, value)
    row.matched_by = "admin"
    session.flush()
    return row


def map_class(session: Session, *, platform_id: int, context_id: str, class_sourced_id: str,
              now: dt.datetime) -> LmsContext:
    """An admin's explicit mapping of an LMS context to a OneRoster class of the district."""
    platform = find_platform(session, platform_id)
    exists = session.execute(select(Class.id).where(
        Class.district_id == platform.district_id, Class.sourced_id == class_sourced_id,
        Class.status == "active")).first()
    if exists is None:
        raise UsageError(f"no active class {class_sourced_id!r} in the LMS's district")
    return _remember(session, LmsContext, (platform.id, context_id), "class_sourced_id",
                     class_sourced_id, now)


def map_user(session: Session, *, platform_id: int, lms_user_id: str, user_sourced_id: str,
             now: dt.datetime) -> LmsPerson:
    """An admin's explicit mapping of an LMS user to a OneRoster user of the district."""
    platform = find_platform(session, platform_id)
    exists = session.execute(select(User.id).where(
        User.district_id == platform.district_id, User.sourced_id == user_sourced_id)).first()
    if exists is None:
        raise UsageError(f"no user {user_sourced_id!r} in the LMS's district")
    return _remember(session, LmsPerson, (platform.id, lms_user_id), "user_sourced_id",
                     user_sourced_id, now)


def unmatched(session: Session, platform_id: int | None = None) -> list[dict[str, Any]]:
    """LMS people and contexts seen in launches and matched to nothing."""
    found: list[dict[str, Any]] = []
    people = select(LmsPerson).where(LmsPerson.user_sourced_id.is_(None))
    contexts = select(LmsContext).where(LmsContext.class_sourced_id.is_(None))
    if platform_id is not None:
        people = people.where(LmsPerson.platform_id == platform_id)
        contexts = contexts.where(LmsContext.platform_id == platform_id)
    for person in session.execute(people.order_by(LmsPerson.last_seen.desc())).scalars():
        found.append({"kind": "user", "platform": person.platform_id, "lms_id": person.lms_user_id,
                      "label": person.label, "last_seen": person.last_seen.isoformat()})
    for context in session.execute(contexts.order_by(LmsContext.last_seen.desc())).scalars():
        found.append({"kind": "context", "platform": context.platform_id,
                      "lms_id": context.context_id, "label": context.label,
                      "last_seen": context.last_seen.isoformat()})
    return found


def lms_configuration(issuer: str) -> dict[str, Any]:
    """What an admin pastes into the LMS to add the gateway as an LTI 1.3 tool."""
    return {
        "login_initiation_url": issuer + LOGIN_PATH,
        "redirect_uris": [issuer + LAUNCH_PATH],
        "target_link_uri": issuer + LAUNCH_PATH,
        "jwks_url": issuer + "/.well-known/jwks.json",
        "dynamic_registration_url": issuer + REGISTER_PATH + "?district=DISTRICT_SOURCEDID",
        "placements": [
            {"message_type": v.RESOURCE_LINK_REQUEST, "target_link_uri": issuer + LAUNCH_PATH},
            {"message_type": v.DEEP_LINKING_REQUEST, "target_link_uri": issuer + LAUNCH_PATH,
             "placements": ["link_selection", "assignment_selection", "editor_button"]}],
        "claims": ["iss", "sub", "name", "email", v.LIS, v.CONTEXT, v.ROLES, v.CUSTOM],
        "custom_parameters": {
            "gateway_app": "the id of the gateway app a link launches (deep linking sets it)"},
        "scopes": [v.SCOPE_LINEITEM, v.SCOPE_SCORE, v.SCOPE_RESULT_READONLY],
        "privacy": "send the name, email and lis.person_sourcedid so people are matched to SIS",
    }


def clear_matches(session: Session, platform_id: int) -> None:
    """Forget every remembered match of a platform (after its rules changed)."""
    session.execute(delete(LmsPerson).where(LmsPerson.platform_id == platform_id))
    session.execute(delete(LmsContext).where(LmsContext.platform_id == platform_id))
