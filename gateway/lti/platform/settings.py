"""The platform's settings and public URLs, read once from the app's configuration.

Every absolute URL the platform hands out (in the OpenID configuration, in launch claims, in
``Link`` headers) is built from ``GATEWAY_ISSUER``, never from a request's Host header: they stay
right behind a reverse proxy, and a forged Host cannot redirect a tool.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Mapping

from gateway.lti.keys import publication_window

# Paths of the platform's endpoints under the issuer.
JWKS_PATH = "/.well-known/jwks.json"
OPENID_CONFIGURATION_PATH = "/.well-known/openid-configuration"
AUTHORIZE_PATH = "/lti/authorize"
TOKEN_PATH = "/lti/token"
REGISTER_PATH = "/lti/register"
DEEP_LINKING_RETURN_PATH = "/lti/deep-linking/return"
PORTAL_PATH = "/portal"


@dataclass(frozen=True)
class LtiSettings:
    """Issuer, clock leeway, lifetimes and page sizes of the LTI platform."""

    issuer: str
    leeway: int = 10
    id_token_lifetime: int = 300
    hint_lifetime: int = 300
    assertion_max_age: int = 300
    service_token_lifetime: int = 3600
    deep_linking_lifetime: int = 3600
    registration_token_lifetime: int = 86400
    default_limit: int = 100
    max_limit: int = 1000

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "LtiSettings":
        """The settings of an app's configuration (``LTI_*`` and ``ISSUER``)."""
        return cls(issuer=str(config["ISSUER"]).rstrip("/"),
                   leeway=int(config["LTI_CLOCK_LEEWAY_SECONDS"]),
                   id_token_lifetime=int(config["LTI_ID_TOKEN_LIFETIME_SECONDS"]),
                   hint_lifetime=int(config["LTI_MESSAGE_HINT_LIFETIME_SECONDS"]),
                   assertion_max_age=int(config["LTI_ASSERTION_MAX_AGE_SECONDS"]),
                   service_token_lifetime=int(config["LTI_SERVICE_TOKEN_LIFETIME_SECONDS"]),
                   deep_linking_lifetime=int(config["LTI_DEEP_LINKING_LIFETIME_SECONDS"]),
                   registration_token_lifetime=int(config["LTI_REGISTRATION_TOKEN_LIFETIME_SECONDS"]),
                   default_limit=int(config["LTI_DEFAULT_LIMIT"]),
                   max_limit=int(config["LTI_MAX_LIMIT"]))

    @property
    def key_window(self) -> dt.timedelta:
        """How long a retired signing key stays published (see :mod:`~gateway.lti.keys`)."""
        return publication_window([self.id_token_lifetime, self.hint_lifetime], self.leeway)

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` under the issuer."""
        return self.issuer + path

    @property
    def authorization_endpoint(self) -> str:
        """OIDC authorization endpoint (LTI Security Framework §5.1.1.2)."""
        return self.url(AUTHORIZE_PATH)

    @property
    def token_endpoint(self) -> str:
        """OAuth 2.0 token endpoint for service tokens; the exact ``aud`` of client assertions."""
        return self.url(TOKEN_PATH)

    @property
    def jwks_uri(self) -> str:
        """The platform's JWK Set."""
        return self.url(JWKS_PATH)

    @property
    def registration_endpoint(self) -> str:
        """LTI Dynamic Registration endpoint."""
        return self.url(REGISTER_PATH)

    @property
    def openid_configuration_url(self) -> str:
        """The OpenID Provider configuration document."""
        return self.url(OPENID_CONFIGURATION_PATH)

    @property
    def deep_linking_return_url(self) -> str:
        """Where tools post deep linking responses."""
        return self.url(DEEP_LINKING_RETURN_PATH)

    @property
    def portal_url(self) -> str:
        """The portal, where launches return to."""
        return self.url(PORTAL_PATH)
