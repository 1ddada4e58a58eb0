"""LTI Dynamic Registration started from the LMS (LTI DR 1.0 §3): the LMS opens the gateway's
registration URL with ``openid_configuration`` and ``registration_token``; the gateway reads the
LMS's configuration, checks it, registers itself at the LMS's registration endpoint (through
pylti1p3's :class:`~pylti1p3.dynamic_registration.DynamicRegistration`) and keeps the LMS as a
*pending* platform of the district until an admin approves it (``gateway lms approve``).

Checks pylti1p3 leaves out: the configuration is fetched without following redirects and with a
timeout; its ``issuer`` must be a prefix of the configuration's own URL (DR §3.5.1: one cannot
speak for another issuer); it must be an LTI platform configuration with https endpoints (http
only to localhost) before anything is sent to it.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from pylti1p3.dynamic_registration import DynamicRegistration
from pylti1p3.exception import LtiException
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.errors import UsageError
from gateway.lti import vocabulary as v
from gateway.lti.platform.registration import check_url
from gateway.lti.tool.launch import LaunchRefused
from gateway.lti.tool.registry import LAUNCH_PATH, LOGIN_PATH
from gateway.store.lms import PLATFORM_PENDING, LmsDeployment, LmsPlatform
from gateway.store.models import District

PLATFORM_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-platform-configuration"
TOOL_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-tool-configuration"
TIMEOUT_SECONDS = 10


class _Registration(DynamicRegistration):
    """The gateway's registration request, as pylti1p3 sends it."""

    client_name = "K-12 Interoperability Gateway"
    description = "Launches the district's apps with the roster its sharing policies allow."

    def __init__(self, http: Any, issuer: str, configuration_url: str, token: str | None) -> None:
        self.http = http
        self.issuer = issuer
        self.configuration_url = configuration_url
        self.token = token
        self.configuration: dict[str, Any] = {}
        self.answer: dict[str, Any] = {}

    def get_request_session(self):
        """The gateway's HTTP client (a context manager, as pylti1p3 uses it)."""
        return _Borrowed(self.http)

    def get_initiate_login_uri(self) -> str:
        """The gateway's OIDC login initiation URL."""
        return self.issuer + LOGIN_PATH

    def get_jwks_uri(self) -> str:
        """The gateway's keys."""
        return self.issuer + "/.well-known/jwks.json"

    def get_redirect_uris(self) -> list[str]:
        """The one launch URL."""
        return [self.issuer + LAUNCH_PATH]

    def get_scopes(self) -> list[str]:
        """Grades back to the LMS."""
        return [v.SCOPE_LINEITEM, v.SCOPE_SCORE, v.SCOPE_RESULT_READONLY]

    def get_domain(self) -> str:
        """The gateway's host (and port)."""
        return self.issuer.split("://", 1)[1].split("/", 1)[0]

    def get_target_link_uri(self) -> str:
        """Where resource links launch."""
        return self.issuer + LAUNCH_PATH

    def get_claims(self) -> list[str]:
        """The claims the gateway needs to match people and courses."""
        return ["iss", "sub", "name", "given_name", "family_name", "email"]

    def get_messages(self) -> list[dict[str, str]]:
        """Deep linking, to pick a district app for a course."""
        return [{"type": v.DEEP_LINKING_REQUEST, "target_link_uri": self.issuer + LAUNCH_PATH,
                 "label": "Add a district app"}]

    def get_description(self) -> str:
        """Shown by the LMS to its admin."""
        return self.description

    def get_logo_uri(self) -> str:
        """No logo yet (the field is optional)."""
        return ""

    def get_openid_configuration_endpoint(self) -> str:
        """The LMS's configuration URL it opened the registration with."""
        return self.configuration_url

    def get_registration_token(self) -> str | None:
        """The LMS's registration token, if it sent one."""
        return self.token

    def get_openid_configuration(self) -> dict[str, Any]:
        """The LMS's configuration, checked before anything is sent to it."""
        try:
            response = self.http.get(self.configuration_url, timeout=TIMEOUT_SECONDS,
                                     allow_redirects=False, headers={"Accept": "application/json"})
        except OSError as error:
            raise LaunchRefused("The LMS's configuration could not be fetched.") from error
        if response.status_code != 200:
            raise LaunchRefused(f"The LMS's configuration answered {response.status_code}.")
        try:
            configuration = response.json()
        except ValueError as error:
            raise LaunchRefused("The LMS's configuration is not JSON.") from error
        check_configuration(configuration, self.configuration_url)
        self.configuration = configuration
        return configuration

    def complete_registration(self, openid_configuration, openid_registration):
        """Keep the LMS's answer; the caller stores it."""
        self.answer = openid_registration
        return openid_registration


class _Borrowed:
    """A ``with`` around an HTTP client that must not be closed (pylti1p3 closes its own)."""

    def __init__(self, http: Any) -> None:
        self.http = http

    def __enter__(self) -> Any:
        return self.http

    def __exit__(self, *exc: Any) -> None:
        return None


def check_configuration(configuration: Any, url: str) -> None:
    """An LTI platform's OpenID configuration (DR §3.5.1), from its own issuer."""
    if not isinstance(configuration, dict):
        raise LaunchRefused("The LMS's configuration is not a JSON object.")
    issuer = configuration.get("issuer")
    if not isinstance(issuer, str) or not url.startswith(issuer.rstrip("/")):
        raise LaunchRefused("The LMS's configuration URL is not under its issuer.")
    if not isinstance(configuration.get(PLATFORM_CONFIGURATION), dict):
        raise LaunchRefused("The LMS's configuration is not an LTI platform configuration.")
    try:
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri",
                     "registration_endpoint"):
            check_url(configuration.get(name) or "", name)
    except UsageError as error:
        raise LaunchRefused(f"The LMS's configuration is not acceptable: {error}") from error


def registration_district(session: Session, district: str) -> int:
    """The id of the district a registration URL names."""
    found = session.execute(select(District.id).where(District.sourced_id == district)
                            ).scalar_one_or_none()
    if found is None:
        raise LaunchRefused("This registration URL names no district of the gateway.")
    return found


def register_with_lms(session: Session, http: Any, *, issuer: str, district_id: int,
                      configuration_url: str, registration_token: str | None,
                      now: dt.datetime) -> LmsPlatform:
    """Register the gateway with the LMS that opened the registration; the LMS is stored as a
    pending platform of the district. The exchange with the LMS comes before any statement, so
    no transaction is held open while the LMS answers."""
    try:
        check_url(configuration_url, "openid_configuration")
    except UsageError as error:
        raise LaunchRefused(str(error)) from error
    exchange = _Registration(http, issuer, configuration_url, registration_token or None)
    try:
        exchange.register()
    except (LtiException, AssertionError, OSError, ValueError) as error:
        raise LaunchRefused(f"The LMS did not accept the registration: {error}") from error
    configuration, answer = exchange.configuration, exchange.answer
    client_id = answer.get("client_id")
    if not isinstance(client_id, str) or not client_id:
        raise LaunchRefused("The LMS's answer has no client_id.")
    lms_issuer = configuration["issuer"]
    if session.execute(select(LmsPlatform.id).where(
            LmsPlatform.issuer == lms_issuer, LmsPlatform.client_id == client_id)).first():
        raise LaunchRefused("This LMS client is already registered with the gateway.")
    platform = LmsPlatform(
        district_id=district_id, issuer=lms_issuer, client_id=client_id,
        name=str(configuration[PLATFORM_CONFIGURATION].get("product_family_code") or lms_issuer),
        auth_url=configuration["authorization_endpoint"],
        token_url=configuration["token_endpoint"], jwks_url=configuration["jwks_uri"],
        match_rules=[], status=PLATFORM_PENDING, created_at=now,
        registration={"configuration": configuration, "answer": answer})
    session.add(platform)
    session.flush()
    deployment_id = (answer.get(TOOL_CONFIGURATION) or {}).get("deployment_id")
    if isinstance(deployment_id, str) and deployment_id:
        session.add(LmsDeployment(platform_id=platform.id, deployment_id=deployment_id))
        session.flush()
    return platform
