"""Service tokens: the token endpoint's client credentials grant with a JWT client assertion, and
the realm of the NRPS and AGS endpoints in the gateway's one bearer check.

LTI Security Framework §4.1 and RFC 7523 §2.2/§3: a tool asks for a token with
``grant_type=client_credentials``, ``client_assertion_type=urn:ietf:params:oauth:client-
assertion-type:jwt-bearer`` and a ``client_assertion`` it signed. The assertion must be signed
RS256 by a key the tool publishes, its ``iss`` and ``sub`` are the tool's client_id, its ``aud``
exactly this token endpoint's URL, its ``jti`` used once, its ``iat`` recent and its ``exp``
near: authlib's RFC 7523 support verifies it, with the gateway's own rules
(:class:`gateway.lti.signed.ClientAssertion`). The token carries only LTI service scopes the
tool is allowed.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Mapping

from authlib.oauth2.rfc6749 import ClientMixin
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.lti import replay
from gateway.lti.platform.errors import (InsufficientScope, InvalidClient, InvalidGrant,
                                         InvalidScope, InvalidToken, OAuthError, ServiceNotFound,
                                         UnauthorizedClient)
from gateway.lti.platform.messages import visible
from gateway.lti.platform.portal import VisibilityOf
from gateway.lti.platform.registration import tool_deployment
from gateway.lti.platform.settings import LtiSettings
from gateway.lti.signed import ClientAssertion, JwksCache, KeyLookup, TokenRejected
from gateway.lti.vocabulary import CLIENT_ASSERTION_TYPE, SERVICE_SCOPES
from gateway.oauth.bearer import AccessGrant, BearerRealm
from gateway.oauth.credentials import generate_access_token
from gateway.oauth.scopes import format_scope, parse_scope
from gateway.oauth.service import record_token
from gateway.sharing.contract import app_contract_refusal
from gateway.sharing.visibility import Visibility
from gateway.store.apps import TOKEN_LTI
from gateway.store.lti import TOOL_APPROVED, Deployment, Tool
from gateway.store.models import Class

SERVICES = BearerRealm(
    name="lti", token_kind=TOKEN_LTI,
    missing="A service access token is required: send Authorization: Bearer <token>.",
    unauthorized=InvalidToken, forbidden=InsufficientScope)
"""The NRPS and AGS endpoints: tokens from the LTI token endpoint, RFC 6749 §5.2-shaped bodies
(:mod:`gateway.oauth.bearer` checks them, as it checks the OneRoster REST service's)."""


@dataclass(frozen=True)
class IssuedToken:
    """A token response (RFC 6749 §5.1)."""

    access_token: str
    expires_in: int
    scope: str

    def to_body(self) -> dict[str, object]:
        """The JSON body of the token response."""
        return {"access_token": self.access_token, "token_type": "Bearer",
                "expires_in": self.expires_in, "scope": self.scope}


def find_tool_by_client_id(session: Session, client_id: str) -> Tool | None:
    """The approved tool with this client_id."""
    return session.execute(select(Tool).where(Tool.client_id == client_id,
                                              Tool.status == TOOL_APPROVED)).scalar_one_or_none()


def tool_key_lookup(tool_keys: JwksCache, tool: Tool) -> KeyLookup:
    """A ``kid -> key`` function over the tool's registered keys or JWKS URL."""
    return tool_keys.lookup(jwks_url=tool.jwks_url, public_jwks=tool.public_jwks)


class ToolClient(ClientMixin):
    """A :class:`Tool` as authlib's client authentication sees it."""

    def __init__(self, tool: Tool) -> None:
        self.tool = tool

    def get_client_id(self) -> str:
        """The tool's client_id."""
        return self.tool.client_id

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        """Tools authenticate at the token endpoint with a signed JWT only (Security Framework
        §4.1)."""
        return endpoint == "token" and method == ClientAssertion.CLIENT_AUTH_METHOD


@dataclass
class _AssertionRequest:
    """The part of a token request authlib's client authentication reads (and writes)."""

    form: Mapping[str, str]
    client: ToolClient | None = None


_REPLAYED = "The client assertion has already been used (jti)."


def authenticate_tool(session: Session, tool_keys: JwksCache, settings: LtiSettings, *,
                      form: Mapping[str, str], now: dt.datetime) -> tuple[Tool, dict[str, Any]]:
    """The tool a token request's client assertion authenticates, and the assertion's claims
    (RFC 7523 §2.2 and §3, :class:`~gateway.lti.signed.ClientAssertion`);
    :class:`InvalidClient` otherwise. The ``jti`` is checked, not yet spent."""
    if form.get("client_assertion_type") != CLIENT_ASSERTION_TYPE:
        raise InvalidClient(f"Authenticate with client_assertion_type={CLIENT_ASSERTION_TYPE} "
                            "and a signed client_assertion (RFC 7523 §2.2).")

    def query_client(client_id: str) -> ToolClient:
        tool = find_tool_by_client_id(session, client_id)
        if tool is None:
            raise InvalidClient("The client assertion's issuer is not a registered tool.")
        return ToolClient(tool)

    def jti_used(client_id: str, jti: str) -> bool:
        if replay.was_used(session, replay.JTI, client_id, jti):
            raise InvalidClient(_REPLAYED)
        return False

    assertion = ClientAssertion(audience=settings.token_endpoint, now=now, leeway=settings.leeway,
                                max_age=settings.assertion_max_age, jti_used=jti_used,
                                keys_of=lambda client: tool_key_lookup(tool_keys, client.tool))
    request = _AssertionRequest(form)
    try:
        client = assertion(query_client, request)
        if client is None:  # authlib's answer to an empty assertion
            raise TokenRejected("the token is not a compact JWS (RFC 7515 §7.1)")
        if form.get("client_id") not in (None, "", client.tool.client_id):
            raise TokenRejected("the client_id parameter names another client")
    except TokenRejected as error:
        raise InvalidClient(f"The client assertion is not acceptable: {error}.") from error
    return client.tool, assertion.claims


def issue_service_token(session: Session, tool_keys: JwksCache, settings: LtiSettings, *,
                        form: Mapping[str, str], now: dt.datetime) -> IssuedToken:
    """Authenticate a tool by its client assertion and issue a service token (RFC 7523 §2.2)."""
    grant_type = form.get("grant_type")
    if not grant_type:
        raise OAuthError("The grant_type parameter is missing.")
    if grant_type != "client_credentials":
        raise InvalidGrant("Only the client_credentials grant is supported.")
    tool, claims = authenticate_tool(session, tool_keys, settings, form=form, now=now)
    _require_contract(session, tool, now)
    scopes = _issued_scopes(parse_scope(tool.scope), parse_scope(form.get("scope")))
    # Spent only now: a request refused above leaves its assertion usable for a corrected one.
    expires = dt.datetime.fromtimestamp(claims["exp"] + settings.leeway, dt.timezone.utc)
    try:
        replay.use_once(session, replay.JTI, tool.client_id, claims["jti"],
                        expires_at=expires.replace(tzinfo=None), now=now)
    except replay.Replayed as error:
        raise InvalidClient(_REPLAYED) from error
    token = generate_access_token()
    record_token(session, tool, access_token=token, scope=format_scope(scopes),
                 expires_in=settings.service_token_lifetime, now=now)
    return IssuedToken(token, settings.service_token_lifetime, format_scope(scopes))


def _require_contract(session: Session, tool: Tool, now: dt.datetime) -> None:
    """Refuse a token to a tool none of whose districts has its app's contract in force (RFC
    6749 §5.2 unauthorized_client, as the OneRoster token endpoint does): every service call it
    could make would be refused."""
    districts = session.execute(select(Deployment.district_id).where(
        Deployment.tool_id == tool.id).distinct()).scalars().all()
    refusals = [app_contract_refusal(session, tool.app_id, district_id, now.date(),
                                     token_endpoint=True) for district_id in districts]
    if refusals and all(refusals):
        raise UnauthorizedClient(refusals[0])


def _issued_scopes(allowed: list[str], asked: list[str]) -> list[str]:
    """What was asked for, if the tool is allowed all of it; all it is allowed when nothing was
    asked (RFC 6749 §3.3)."""
    if not allowed:
        raise InvalidScope("This tool is not allowed any LTI service.")
    if not asked:
        return allowed
    refused = [scope for scope in asked if scope not in allowed]
    if refused:
        known = [scope for scope in refused if scope in SERVICE_SCOPES]
        raise InvalidScope(("Not allowed to this tool: " if known else "Unknown scope: ")
                           + " ".join(refused))
    return asked


@dataclass(frozen=True)
class ServiceContext:
    """A context (class) of a deployment, as a service request names it."""

    tool: Tool
    deployment: Deployment
    klass: Class
    context_id: str
    visibility: Visibility


def resolve_context(session: Session, grant: AccessGrant, deployment_id: str, context_id: str,
                    visibility_of: VisibilityOf) -> ServiceContext:
    """The class behind ``context_id`` (the id the app knows it by) in the deployment
    ``deployment_id`` of the tool an LTI token was issued to; :class:`ServiceNotFound` unless the
    class exists and the app may see it, :class:`InvalidToken` outside the district's contract."""
    tool = session.get_one(Tool, grant.tool_id)
    deployment = tool_deployment(session, tool, deployment_id)
    if deployment is None:
        raise ServiceNotFound("This tool has no deployment with that id.")
    visibility = visibility_of(tool.app_id, deployment.district_id)
    refusal = visibility.refusal()
    if refusal is not None:
        raise SERVICES.invalid_token(refusal)
    stored = visibility.resolve_id("class", context_id)
    klass = session.execute(select(Class).where(
        Class.district_id == deployment.district_id, Class.sourced_id == stored,
        Class.status == "active")).scalar_one_or_none() if stored is not None else None
    if klass is None or not visible(session, visibility, "class", Class.__table__, klass.id):
        raise ServiceNotFound("No such context.")
    return ServiceContext(tool, deployment, klass, context_id, visibility)

