"""The OAuth 2.0 server of the gateway: client credentials (RFC 6749 §4.4) for the OneRoster REST
service, the 1.2 scopes, and the one bearer check (RFC 6750) of every service, OneRoster and LTI
alike. No flask here: ``gateway.http.oauth`` serves the token endpoint and ``gateway.http.auth``
checks the tokens of API requests.
"""
from __future__ import annotations

from gateway.oauth.bearer import (ONEROSTER, AccessGrant, BearerRealm, GrantCache,
                                  authenticate_bearer, bearer_token, require_scopes)

__all__ = ["ONEROSTER", "AccessGrant", "BearerRealm", "GrantCache", "authenticate_bearer",
           "bearer_token", "require_scopes"]
