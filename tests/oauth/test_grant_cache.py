"""The cache of checked bearer tokens (GrantCache, TOKEN_RECHECK_SECONDS): a revocation takes
effect within the recheck bound, expiry and the contract window on every request."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update

from gateway.errors import Unauthorized
from gateway.oauth import GrantCache, authenticate_bearer, service
from gateway.oauth.credentials import generate_access_token
from gateway.oneroster.vocabulary import ROSTERING_SCOPES
from gateway.store.apps import AccessToken, AppClient
from gateway.store.models import utcnow

NOW = dt.datetime(2026, 3, 1, 12, 0, 0)


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def record(database, credentials, now: dt.datetime) -> str:
    value = generate_access_token()
    with database.session_scope() as session:
        client = session.execute(select(AppClient).where(
            AppClient.client_id == credentials.client_id)).scalar_one()
        service.record_token(session, client, access_token=value,
                             scope=" ".join(ROSTERING_SCOPES), expires_in=3600, now=now)
    return value


@pytest.fixture
def token(database, credentials) -> str:
    return record(database, credentials, NOW)


def check(database, token: str, cache: GrantCache, now: dt.datetime = NOW):
    with database.session_scope() as session:
        return authenticate_bearer(session, token, now, cache=cache)


def revoke_all(database) -> None:
    with database.session_scope() as session:
        session.execute(update(AccessToken).values(revoked_at=NOW))


def test_a_revocation_takes_effect_once_the_recheck_bound_has_passed(database, token):
    clock = Clock()
    cache = GrantCache(1.0, monotonic=clock)
    first = check(database, token, cache)
    revoke_all(database)
    clock.now += 0.5
    # Within the bound the grant checked half a second ago still stands...
    assert check(database, token, cache) == first
    clock.now += 0.6
    # ...and past it the token is looked up again, and refused.
    with pytest.raises(Unauthorized, match="revoked"):
        check(database, token, cache)


def test_no_cache_means_every_request_looks_the_token_up(database, token):
    cache = GrantCache(0)
    check(database, token, cache)
    revoke_all(database)
    with pytest.raises(Unauthorized, match="revoked"):
        check(database, token, cache)


def test_expiry_is_checked_on_every_request_even_when_remembered(database, token):
    clock = Clock()
    cache = GrantCache(60.0, monotonic=clock)
    check(database, token, cache)
    with pytest.raises(Unauthorized, match="expired"):
        check(database, token, cache, NOW + dt.timedelta(hours=1))


def test_a_remembered_grant_is_never_another_tokens(database, token, credentials):
    cache = GrantCache(60.0, monotonic=Clock())
    check(database, token, cache)
    with pytest.raises(Unauthorized, match="not recognised"):
        check(database, token + "x", cache)


def test_the_server_remembers_grants_for_the_configured_seconds(app, database, credentials):
    """Through HTTP, as an app calls: with TOKEN_RECHECK_SECONDS on, a revoked token is still
    served until the bound passes (the bound the README states), never after."""
    from gateway.http.auth import GRANT_CACHE

    token = record(database, credentials, utcnow())
    clock = Clock()
    app.extensions[GRANT_CACHE] = GrantCache(1.0, monotonic=clock)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    path = "/ims/oneroster/rostering/v1p2/orgs"
    assert client.get(path, headers=headers).status_code == 200
    revoke_all(database)
    assert client.get(path, headers=headers).status_code == 200
    clock.now += 1.01
    assert client.get(path, headers=headers).status_code == 401
