"""LTI Dynamic Registration 1.0: a tool registers itself, and waits for an admin's approval.

1. An admin makes a registration token for an app (``gateway tools invite``) and opens the tool's
   registration URL with ``openid_configuration`` and ``registration_token`` (DR §3.3).
2. The tool reads the platform's OpenID configuration (:func:`openid_configuration`, DR §3.4:
   OpenID Connect Discovery plus the ``lti-platform-configuration`` object) and posts its client
   metadata to the registration endpoint with the token as a bearer token (DR §3.5).
3. :func:`register_dynamically` checks the token (single use, unexpired) and the metadata, and
   stores the tool as *pending*, deployed in the token's district; the answer carries the
   ``client_id`` and ``deployment_id`` (DR §3.6). The tool can neither launch nor get service
   tokens until ``gateway tools approve``.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import Any, Mapping
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from gateway.lti import vocabulary as v
from gateway.lti.platform.errors import (InvalidClientMetadata, InvalidRedirectUri,
                                         InvalidRegistrationToken)
from gateway.lti.platform.messages import PRODUCT_FAMILY_CODE, PRODUCT_VERSION
from gateway.lti.platform.registration import (InvalidToolSetting, app_district, check_url,
                                               find_app, register_tool)
from gateway.lti.platform.settings import LtiSettings
from gateway.oauth.scopes import parse_scope
from gateway.store.lti import TOOL_PENDING, RegistrationToken, Tool
from gateway.store.models import District

PLATFORM_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-platform-configuration"
TOOL_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-tool-configuration"
SUPPORTED_VARIABLES = ("User.id", "User.username", "Person.sourcedId", "Person.name.given",
                       "Person.name.family", "Context.id", "CourseSection.sourcedId",
                       "ResourceLink.id", "ResourceLink.title", "ToolPlatformInstance.guid")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def openid_configuration(settings: LtiSettings) -> dict[str, Any]:
    """The platform's OpenID Provider configuration (DR §3.4; OpenID Discovery §3)."""
    return {
        "issuer": settings.issuer,
        "authorization_endpoint": settings.authorization_endpoint,
        "token_endpoint": settings.token_endpoint,
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": [v.ALGORITHM],
        "jwks_uri": settings.jwks_uri,
        "registration_endpoint": settings.registration_endpoint,
        "scopes_supported": ["openid", *v.SERVICE_SCOPES],
        "response_types_supported": ["id_token"],
        "response_modes_supported": ["form_post"],
        "grant_types_supported": ["implicit", "client_credentials"],
        # Sharing policies may pseudonymize ids per app: the same person is then a different
        # sub for each app.
        "subject_types_supported": ["public", "pairwise"],
        "id_token_signing_alg_values_supported": [v.ALGORITHM],
        "claims_supported": ["iss", "aud", "sub", "iat", "exp", "nonce", "azp", "name",
                             "given_name", "family_name", "middle_name", "email"],
        PLATFORM_CONFIGURATION: {
            "product_family_code": PRODUCT_FAMILY_CODE,
            "version": PRODUCT_VERSION,
            "messages_supported": [{"type": v.RESOURCE_LINK_REQUEST},
                                   {"type": v.DEEP_LINKING_REQUEST}],
            "variables": list(SUPPORTED_VARIABLES),
        },
    }


def create_registration_token(session: Session, *, app: int | str, district: str | None,
                              settings: LtiSettings, now: dt.datetime) -> tuple[str, dt.datetime]:
    """A one-time registration token for ``app`` in its district, and when it expires."""
    found = find_app(session, app)
    target = app_district(session, found.id, district)
    token = secrets.token_urlsafe(32)
    expires = now + dt.timedelta(seconds=settings.registration_token_lifetime)
    session.add(RegistrationToken(token_hash=_hash(token), app_id=found.id, district_id=target.id,
                                  created_at=now, expires_at=expires))
    session.flush()
    return token, expires


def _in_domain(url: str, domain: str) -> bool:
    """Whether ``url``'s host is ``domain``'s host or one of its subdomains (and its port, if
    ``domain`` names one, is the same)."""
    parts = urlsplit(url)
    expected = urlsplit("//" + domain)
    host, wanted = parts.hostname or "", (expected.hostname or "")
    if not wanted or not (host == wanted or host.endswith("." + wanted)):
        return False
    return expected.port is None or parts.port == expected.port


def _strings(value: Any) -> list[str] | None:
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    return None


def register_dynamically(session: Session, settings: LtiSettings, *, authorization: str | None,
                         body: Any, now: dt.datetime) -> dict[str, Any]:
    """Register a tool from its client metadata (DR §3.5) as pending; returns the registration
    response (DR §3.6)."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidRegistrationToken("A registration token is required (Authorization: Bearer).")
    grant = session.execute(select(RegistrationToken).where(
        RegistrationToken.token_hash == _hash(token.strip()))).scalar_one_or_none()
    if grant is None or grant.used_at is not None or grant.expires_at <= now:
        raise InvalidRegistrationToken("The registration token is unknown, used or expired.")
    if not isinstance(body, Mapping):
        raise InvalidClientMetadata("The registration request must be a JSON object.")
    if body.get("application_type", "web") != "web":
        raise InvalidClientMetadata("application_type must be web.")
    if "id_token" not in (_strings(body.get("response_types")) or []):
        raise InvalidClientMetadata("response_types must include id_token.")
    grant_types = _strings(body.get("grant_types")) or []
    if not {"implicit", "client_credentials"}.issubset(grant_types):
        raise InvalidClientMetadata("grant_types must include implicit and client_credentials.")
    if body.get("token_endpoint_auth_method") != "private_key_jwt":
        raise InvalidClientMetadata("token_endpoint_auth_method must be private_key_jwt.")
    config = body.get(TOOL_CONFIGURATION)
    if not isinstance(config, Mapping):
        raise InvalidClientMetadata(f"{TOOL_CONFIGURATION} is required.")
    domain = config.get("domain")
    if not isinstance(domain, str) or not domain:
        raise InvalidClientMetadata("The tool configuration's domain is required.")
    redirect_uris = _strings(body.get("redirect_uris"))
    if not redirect_uris:
        raise InvalidRedirectUri("redirect_uris must list at least one URI.")
    messages = config.get("messages") or []
    if not isinstance(messages, list):
        raise InvalidClientMetadata("messages must be a list.")
    deep_linking_uri = None
    for message in messages:
        if isinstance(message, Mapping) and message.get("type") == v.DEEP_LINKING_REQUEST:
            deep_linking_uri = message.get("target_link_uri") or config.get("target_link_uri")
    urls = {"initiate_login_uri": body.get("initiate_login_uri"), "jwks_uri": body.get("jwks_uri"),
            "target_link_uri": config.get("target_link_uri")}
    if deep_linking_uri is not None:
        urls["deep linking target_link_uri"] = deep_linking_uri
    try:
        for uri in redirect_uris:
            check_url(uri, "redirect URI")
            if not _in_domain(uri, domain):
                raise InvalidRedirectUri(f"redirect URI {uri!r} is outside the tool's domain {domain!r}.")
        for name, value in urls.items():
            if not isinstance(value, str):
                raise InvalidClientMetadata(f"{name} is required.")
            check_url(value, name)
            if not _in_domain(value, domain):
                raise InvalidClientMetadata(f"{name} is outside the tool's domain {domain!r}.")
    except InvalidToolSetting as error:
        raise InvalidClientMetadata(str(error)) from error
    custom = config.get("custom_parameters") or {}
    if not isinstance(custom, Mapping) or not all(isinstance(val, str) for val in custom.values()):
        raise InvalidClientMetadata("custom_parameters must map names to strings.")
    scopes = [scope for scope in parse_scope(body.get("scope") if isinstance(body.get("scope"), str)
                                             else "") if scope in v.SERVICE_SCOPES]
    name = body.get("client_name") if isinstance(body.get("client_name"), str) else None
    # Spend the token atomically: of two registrations racing with it, one wins.
    marked = session.execute(update(RegistrationToken).where(
        RegistrationToken.id == grant.id, RegistrationToken.used_at.is_(None))
        .values(used_at=now)).rowcount
    if marked != 1:
        raise InvalidRegistrationToken("The registration token is unknown, used or expired.")
    district_sourced_id = session.get(District, grant.district_id).sourced_id
    registered = register_tool(
        session, app=grant.app_id, district=district_sourced_id, name=name,
        login_url=urls["initiate_login_uri"], redirect_uris=redirect_uris,
        target_link_uri=urls["target_link_uri"], jwks_url=urls["jwks_uri"],
        deep_linking_uri=deep_linking_uri, custom=dict(custom), scopes=scopes, on_portal=True,
        status=TOOL_PENDING, registration=dict(body), now=now)
    tool = session.execute(select(Tool).where(Tool.client_id == registered.client_id)).scalar_one()
    session.execute(update(RegistrationToken).where(RegistrationToken.id == grant.id)
                    .values(tool_id=tool.id))
    response = dict(body)
    response["client_id"] = registered.client_id
    response["scope"] = " ".join(scopes)
    response[TOOL_CONFIGURATION] = {**dict(config), "deployment_id": registered.deployment_id}
    return response
