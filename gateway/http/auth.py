"""Bearer-token protection for the API views: the OneRoster REST service and the LTI services."""
from __future__ import annotations

from typing import Iterable

from flask import current_app, g, request

from gateway.database import request_session
from gateway.http.limits import charge_app
from gateway.oauth import (ONEROSTER, AccessGrant, BearerRealm, GrantCache, authenticate_bearer,
                           bearer_token, require_scopes)
from gateway.store.models import utcnow


def authorize_request(required_scopes: Iterable[str],
                      realm: BearerRealm = ONEROSTER) -> AccessGrant:
    """The grant of this request's bearer token, which must be of ``realm``'s kind and hold one
    of ``required_scopes``.

    Raises ``realm``'s 401 or 403 error (for the REST service :class:`gateway.errors.Unauthorized`
    and :class:`gateway.errors.Forbidden`), or :class:`gateway.errors.TooManyRequests` (429, the
    app's rate limit); the grant is also left on ``flask.g.access_grant`` for the rest of the request.
    """
    grant = authenticate_bearer(request_session(), bearer_token(request.headers.get("Authorization")),
                                utcnow(), realm, cache=_grant_cache())
    charge_app(grant.app_id)
    require_scopes(grant, required_scopes, realm)
    g.access_grant = grant
    return grant


GRANT_CACHE = "gateway.grants"


def _grant_cache() -> GrantCache:
    """The application's cache of recently checked grants (``TOKEN_RECHECK_SECONDS``)."""
    cache = current_app.extensions.get(GRANT_CACHE)
    if cache is None:
        cache = current_app.extensions[GRANT_CACHE] = GrantCache(
            current_app.config["TOKEN_RECHECK_SECONDS"])
    return cache
