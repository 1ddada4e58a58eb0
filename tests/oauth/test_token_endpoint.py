"""POST /oauth/token: the client credentials grant (RFC 6749 §4.4) and its errors (§5.2)."""
from __future__ import annotations

import base64
import datetime as dt

import pytest
from sqlalchemy import select

from gateway.oauth import service
from gateway.oauth.credentials import hash_access_token
from gateway.oneroster.vocabulary import (ROSTERING_SCOPES, SCOPE_ROSTER, SCOPE_ROSTER_CORE,
                                          SCOPE_ROSTER_DEMOGRAPHICS)
from gateway.store.apps import AccessToken
from gateway.store.models import utcnow

ALL_ROSTERING = " ".join(ROSTERING_SCOPES)
INVALID_CLIENT = {"error": "invalid_client", "error_description": "Client authentication failed."}


def assert_no_store(response):
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"


def assert_invalid_client(response):
    assert response.status_code == 401
    assert response.get_json() == INVALID_CLIENT
    assert response.headers["WWW-Authenticate"] == (
        'Basic error="invalid_client", error_description="Client authentication failed."')
    assert_no_store(response)


def stored_tokens(database) -> list[AccessToken]:
    with database.session_scope() as session:
        return session.execute(select(AccessToken)).scalars().all()


def test_token_via_http_basic(request_token, credentials, database, district_id):
    before = utcnow()
    response = request_token(credentials)

    assert response.status_code == 200
    assert_no_store(response)
    body = response.get_json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == ALL_ROSTERING
    assert len(body["access_token"]) >= 43

    [token] = stored_tokens(database)
    assert token.token_hash == hash_access_token(body["access_token"])
    assert body["access_token"] not in (token.token_hash, token.scope)
    assert token.district_id == district_id
    assert token.scope == ALL_ROSTERING
    assert token.revoked_at is None
    assert before <= token.issued_at <= utcnow()
    assert token.expires_at - token.issued_at == dt.timedelta(seconds=3600)


def test_token_via_form_fields(client, credentials):
    response = client.post("/oauth/token", data={
        "grant_type": "client_credentials", "client_id": credentials.client_id,
        "client_secret": credentials.client_secret})

    assert response.status_code == 200
    assert response.get_json()["scope"] == ALL_ROSTERING


def test_each_token_is_new(request_token, credentials):
    first = request_token(credentials).get_json()["access_token"]
    second = request_token(credentials).get_json()["access_token"]
    assert first != second


def test_lifetime_comes_from_the_setting(app, request_token, credentials, database):
    app.config["TOKEN_LIFETIME_SECONDS"] = 1

    response = request_token(credentials)

    assert response.get_json()["expires_in"] == 1
    [token] = stored_tokens(database)
    assert token.expires_at - token.issued_at == dt.timedelta(seconds=1)


def test_wrong_secret_via_basic(request_token, credentials):
    wrong = service.AppCredentials(credentials.app_id, credentials.client_id, "not-the-secret")
    assert_invalid_client(request_token(wrong))


def test_wrong_secret_via_form(client, credentials):
    response = client.post("/oauth/token", data={
        "grant_type": "client_credentials", "client_id": credentials.client_id,
        "client_secret": "not-the-secret"})
    assert_invalid_client(response)


def test_unknown_client_via_basic(request_token, credentials):
    unknown = service.AppCredentials(0, "no-such-client", credentials.client_secret)
    assert_invalid_client(request_token(unknown))


def test_unknown_client_via_form(client, credentials):
    response = client.post("/oauth/token", data={
        "grant_type": "client_credentials", "client_id": "no-such-client",
        "client_secret": credentials.client_secret})
    assert_invalid_client(response)


def test_no_client_credentials(client, credentials):
    response = client.post("/oauth/token", data={"grant_type": "client_credentials"})
    assert_invalid_client(response)


def test_client_id_without_secret_is_not_a_public_client(client, credentials):
    response = client.post("/oauth/token", data={
        "grant_type": "client_credentials", "client_id": credentials.client_id})
    assert_invalid_client(response)


def test_basic_header_that_is_not_utf8(client, credentials):
    header = "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode()
    response = client.post("/oauth/token", data={"grant_type": "client_credentials"},
                           headers={"Authorization": header})
    assert_invalid_client(response)


def test_revoked_client(request_token, credentials, database):
    with database.session_scope() as session:
        service.revoke(session, credentials.client_id, now=utcnow())
    assert_invalid_client(request_token(credentials))


def test_two_authentication_methods_at_once(client, basic_auth, credentials):
    response = client.post("/oauth/token", data={
        "grant_type": "client_credentials", "client_id": credentials.client_id,
        "client_secret": credentials.client_secret},
        headers=basic_auth(credentials.client_id, credentials.client_secret))

    assert response.status_code == 400
    assert response.get_json() == {
        "error": "invalid_request",
        "error_description": "Authenticate with HTTP Basic or with form fields, not both."}


@pytest.mark.parametrize("grant_type", ["password", "authorization_code", "refresh_token",
                                        "urn:ietf:params:oauth:grant-type:jwt-bearer"])
def test_unsupported_grant_type(request_token, credentials, database, grant_type):
    response = request_token(credentials, grant_type=grant_type)

    assert response.status_code == 400
    assert response.get_json() == {"error": "unsupported_grant_type"}
    assert_no_store(response)
    assert stored_tokens(database) == []


def test_missing_grant_type(client, basic_auth, credentials):
    response = client.post("/oauth/token", data={},
                           headers=basic_auth(credentials.client_id, credentials.client_secret))

    assert response.status_code == 400
    assert response.get_json() == {"error": "invalid_request",
                                   "error_description": "Missing 'grant_type' parameter."}
    assert_no_store(response)


def test_get_is_not_allowed(client):
    assert client.get("/oauth/token").status_code == 405


def test_plain_http_to_a_public_host_is_refused(client, basic_auth, credentials, monkeypatch):
    monkeypatch.delenv("AUTHLIB_INSECURE_TRANSPORT", raising=False)
    response = client.post("/oauth/token", base_url="http://gateway.example.org",
                           data={"grant_type": "client_credentials"},
                           headers=basic_auth(credentials.client_id, credentials.client_secret))

    assert response.status_code == 400
    assert response.get_json() == {"error": "insecure_transport",
                                   "error_description": "OAuth 2 MUST utilize https."}


def test_https_to_a_public_host(client, basic_auth, credentials):
    response = client.post("/oauth/token", base_url="https://gateway.example.org",
                           data={"grant_type": "client_credentials"},
                           headers=basic_auth(credentials.client_id, credentials.client_secret))
    assert response.status_code == 200


def test_scope_is_what_was_asked_and_granted(request_token, register_app, database):
    creds = register_app(scopes=[SCOPE_ROSTER_CORE, SCOPE_ROSTER])

    response = request_token(creds, scope=f"{SCOPE_ROSTER_DEMOGRAPHICS} {SCOPE_ROSTER}")

    assert response.status_code == 200
    assert response.get_json()["scope"] == SCOPE_ROSTER
    [token] = stored_tokens(database)
    assert token.scope == SCOPE_ROSTER


def test_unknown_scopes_asked_alongside_granted_ones_are_dropped(request_token, credentials):
    response = request_token(credentials, scope=f"https://example.org/other {SCOPE_ROSTER_CORE}")

    assert response.status_code == 200
    assert response.get_json()["scope"] == SCOPE_ROSTER_CORE


def test_no_scope_asked_gives_every_granted_scope(request_token, register_app):
    creds = register_app(scopes=[SCOPE_ROSTER_CORE, SCOPE_ROSTER])
    assert request_token(creds).get_json()["scope"] == f"{SCOPE_ROSTER_CORE} {SCOPE_ROSTER}"


def test_scope_with_nothing_granted_is_invalid_scope(request_token, register_app, database):
    creds = register_app(scopes=[SCOPE_ROSTER_CORE])

    response = request_token(creds, scope=f"{SCOPE_ROSTER_DEMOGRAPHICS} {SCOPE_ROSTER}")

    assert response.status_code == 400
    assert response.get_json() == {
        "error": "invalid_scope",
        "error_description": "None of the requested scopes is granted to this client."}
    assert_no_store(response)
    assert stored_tokens(database) == []
