"""Bearer tokens on the resource side: authenticate_bearer, require_scopes, and what an API client
sees through gateway.http.auth.authorize_request (RFC 6750 §3 challenges, OneRoster error bodies)."""
from __future__ import annotations

import datetime as dt

import pytest
from flask import Blueprint, g, jsonify
from sqlalchemy import select, update

from gateway.errors import Forbidden, Unauthorized
from gateway.http.auth import authorize_request
from gateway.oauth import AccessGrant, authenticate_bearer, bearer_token, require_scopes, service
from gateway.oauth.credentials import generate_access_token
from gateway.oneroster.vocabulary import (ROSTERING_SCOPES, SCOPE_ROSTER, SCOPE_ROSTER_CORE,
                                          SCOPE_ROSTER_DEMOGRAPHICS)
from gateway.store.apps import AccessToken, AppClient
from gateway.store.models import utcnow

NOW = dt.datetime(2026, 3, 1, 12, 0, 0)
PROBE_PATH = "/ims/oneroster/rostering/v1p2/probe"
MISSING_CHALLENGE = 'Bearer realm="oneroster"'
INVALID_CHALLENGE = 'Bearer realm="oneroster", error="invalid_token"'


def oneroster_error(code_minor: str, description: str) -> dict:
    return {
        "imsx_codeMajor": "failure",
        "imsx_severity": "error",
        "imsx_description": description,
        "imsx_CodeMinor": {"imsx_codeMinorField": [
            {"imsx_codeMinorFieldName": "TargetEndSystem", "imsx_codeMinorFieldValue": code_minor}]},
    }


@pytest.fixture
def issue_token(database, credentials):
    """Record a token for ``credentials``' client as the token endpoint would, and return it."""
    def issue(scope: str = " ".join(ROSTERING_SCOPES), now: dt.datetime = NOW,
              expires_in: int = 3600) -> str:
        token = generate_access_token()
        with database.session_scope() as session:
            client = session.execute(select(AppClient).where(
                AppClient.client_id == credentials.client_id)).scalar_one()
            service.record_token(session, client, access_token=token, scope=scope,
                                 expires_in=expires_in, now=now)
        return token
    return issue


def authenticate(database, token, now=NOW) -> AccessGrant:
    with database.session_scope() as session:
        return authenticate_bearer(session, token, now)


def grant_with(*scopes: str) -> AccessGrant:
    return AccessGrant(district_id=1, app_id=1, client_id="client", scopes=frozenset(scopes))


# -- authenticate_bearer ---------------------------------------------------------------------------

def test_a_live_token_gives_its_grant(database, credentials, district_id, issue_token):
    token = issue_token(scope=f"{SCOPE_ROSTER_CORE} {SCOPE_ROSTER}")

    grant = authenticate(database, token)

    assert grant == AccessGrant(district_id=district_id, app_id=credentials.app_id,
                                client_id=credentials.client_id,
                                scopes=frozenset({SCOPE_ROSTER_CORE, SCOPE_ROSTER}))


@pytest.mark.parametrize("token", [None, ""])
def test_missing_token(database, token):
    with pytest.raises(Unauthorized) as raised:
        authenticate(database, token)
    assert raised.value.headers == {"WWW-Authenticate": MISSING_CHALLENGE}
    assert raised.value.description == (
        "An access token is required: send Authorization: Bearer <token>.")


def test_unknown_token(database, issue_token):
    issue_token()
    with pytest.raises(Unauthorized) as raised:
        authenticate(database, generate_access_token())
    assert raised.value.headers == {"WWW-Authenticate": INVALID_CHALLENGE}
    assert raised.value.description == "The access token is not recognised."


def test_token_expires_at_its_expiry_instant(database, issue_token):
    token = issue_token(now=NOW, expires_in=60)

    assert authenticate(database, token, NOW + dt.timedelta(seconds=59, microseconds=999000))
    with pytest.raises(Unauthorized) as raised:
        authenticate(database, token, NOW + dt.timedelta(seconds=60))
    assert raised.value.headers == {"WWW-Authenticate": INVALID_CHALLENGE}
    assert raised.value.description == "The access token has expired."


def test_revoked_token(database, issue_token):
    token = issue_token()
    with database.session_scope() as session:
        session.execute(update(AccessToken).values(revoked_at=NOW))

    with pytest.raises(Unauthorized) as raised:
        authenticate(database, token)
    assert raised.value.headers == {"WWW-Authenticate": INVALID_CHALLENGE}
    assert raised.value.description == "The access token has been revoked."


def test_revoking_the_client_revokes_its_tokens(database, credentials, issue_token):
    token = issue_token(now=utcnow())
    with database.session_scope() as session:
        revocation = service.revoke(session, credentials.client_id, now=utcnow())
    assert revocation == service.Revocation(client_ids=(credentials.client_id,), token_count=1)

    with database.session_scope() as session:
        assert session.execute(select(AccessToken.revoked_at)).scalar_one() is not None
    with pytest.raises(Unauthorized, match="revoked"):
        authenticate(database, token, utcnow())


def test_a_token_of_a_revoked_client_is_refused_even_if_not_marked(database, issue_token):
    token = issue_token()
    with database.session_scope() as session:
        session.execute(update(AppClient).values(revoked_at=NOW))

    with pytest.raises(Unauthorized, match="revoked"):
        authenticate(database, token)


# -- require_scopes and bearer_token --------------------------------------------------------------

def test_require_scopes_passes_with_any_one_of_them():
    require_scopes(grant_with(SCOPE_ROSTER), {SCOPE_ROSTER_CORE, SCOPE_ROSTER})


def test_require_scopes_refuses_a_grant_without_them():
    with pytest.raises(Forbidden) as raised:
        require_scopes(grant_with(SCOPE_ROSTER_CORE), [SCOPE_ROSTER_DEMOGRAPHICS])
    assert raised.value.status == 403
    assert raised.value.headers == {"WWW-Authenticate": (
        f'Bearer realm="oneroster", error="insufficient_scope", scope="{SCOPE_ROSTER_DEMOGRAPHICS}"')}
    assert raised.value.description == (
        f"This operation requires one of these scopes: {SCOPE_ROSTER_DEMOGRAPHICS}")


def test_require_scopes_fails_closed_on_an_empty_list():
    with pytest.raises(ValueError):
        require_scopes(grant_with(SCOPE_ROSTER), [])


@pytest.mark.parametrize(("header", "token"), [
    ("Bearer abc-123_x", "abc-123_x"),
    ("bearer abc", "abc"),
    ("BEARER  abc ", "abc"),
    ("Bearer", None),
    ("Bearer ", None),
    ("Basic dXNlcjpwYXNz", None),
    ("", None),
    (None, None),
])
def test_bearer_token_from_the_authorization_header(header, token):
    assert bearer_token(header) == token


# -- through HTTP ---------------------------------------------------------------------------------

@pytest.fixture
def probe(app):
    """A OneRoster-path endpoint, registered only for these tests, that needs core or full roster."""
    blueprint = Blueprint("probe", __name__)

    @blueprint.get(PROBE_PATH)
    def probe_view():
        grant = authorize_request({SCOPE_ROSTER_CORE, SCOPE_ROSTER})
        assert g.access_grant is grant
        return jsonify(district_id=grant.district_id, client_id=grant.client_id,
                       scopes=sorted(grant.scopes))

    app.register_blueprint(blueprint)
    return PROBE_PATH


def get_token(request_token, creds, **form) -> str:
    response = request_token(creds, **form)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["access_token"]


def test_probe_with_a_token_from_the_endpoint(client, probe, request_token, credentials,
                                              district_id):
    token = get_token(request_token, credentials, scope=SCOPE_ROSTER_CORE)

    response = client.get(probe, headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 200
    assert response.get_json() == {"district_id": district_id, "client_id": credentials.client_id,
                                   "scopes": [SCOPE_ROSTER_CORE]}


def test_probe_without_a_token(client, probe):
    response = client.get(probe)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == MISSING_CHALLENGE
    assert response.get_json() == oneroster_error(
        "unauthorisedrequest", "An access token is required: send Authorization: Bearer <token>.")


def test_probe_with_an_unknown_token(client, probe):
    response = client.get(probe, headers={"Authorization": "Bearer not-a-token"})

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == INVALID_CHALLENGE
    assert response.get_json() == oneroster_error("unauthorisedrequest",
                                                  "The access token is not recognised.")


def test_probe_with_an_expired_token(client, probe, request_token, credentials, database):
    token = get_token(request_token, credentials)
    with database.session_scope() as session:
        session.execute(update(AccessToken).values(expires_at=utcnow() - dt.timedelta(seconds=1)))

    response = client.get(probe, headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == INVALID_CHALLENGE
    assert response.get_json() == oneroster_error("unauthorisedrequest",
                                                  "The access token has expired.")


def test_probe_after_the_app_is_revoked(client, probe, request_token, credentials, database):
    token = get_token(request_token, credentials)
    with database.session_scope() as session:
        service.revoke(session, str(credentials.app_id), now=utcnow())

    response = client.get(probe, headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 401
    assert response.get_json() == oneroster_error("unauthorisedrequest",
                                                  "The access token has been revoked.")


def test_probe_without_the_scope(client, probe, request_token, credentials):
    token = get_token(request_token, credentials, scope=SCOPE_ROSTER_DEMOGRAPHICS)

    response = client.get(probe, headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 403
    required = f"{SCOPE_ROSTER_CORE} {SCOPE_ROSTER}"  # sorted: roster-core before roster.
    assert response.headers["WWW-Authenticate"] == (
        f'Bearer realm="oneroster", error="insufficient_scope", scope="{required}"')
    assert response.get_json() == oneroster_error(
        "forbidden", f"This operation requires one of these scopes: {required}")
