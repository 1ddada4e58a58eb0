"""Bearer-token protection for the REST service's views."""
from __future__ import annotations

from typing import Iterable

from flask import g, request

from gateway.database import request_session
from gateway.http.limits import charge_app
from gateway.oauth import AccessGrant, authenticate_bearer, bearer_token, require_scopes
from gateway.store.models import utcnow


def authorize_request(required_scopes: Iterable[str]) -> AccessGrant:
    """The grant of this request's bearer token, which must hold one of ``required_scopes``.

    Raises :class:`gateway.errors.Unauthorized` (401), :class:`gateway.errors.TooManyRequests`
    (429, the app's rate limit) or :class:`gateway.errors.Forbidden` (403); the grant is also
    left on ``flask.g.access_grant`` for the rest of the request.
    """
    grant = authenticate_bearer(request_session(), bearer_token(request.headers.get("Authorization")),
                                utcnow())
    charge_app(grant.app_id)
    require_scopes(grant, required_scopes)
    g.access_grant = grant
    return grant
