"""The OAuth 2.0 server of the OneRoster REST service: client credentials (RFC 6749 §4.4), bearer
tokens (RFC 6750) and the 1.2 scopes. No flask here: ``gateway.http.oauth`` serves the token
endpoint and ``gateway.http.auth`` checks the tokens of API requests.
"""
from __future__ import annotations

from gateway.oauth.bearer import AccessGrant, authenticate_bearer, bearer_token, require_scopes

__all__ = ["AccessGrant", "authenticate_bearer", "bearer_token", "require_scopes"]
