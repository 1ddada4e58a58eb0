"""The contract window: outside it the token endpoint refuses with RFC 6749 ``unauthorized_client``
and the bearer check refuses tokens issued earlier; setting a policy's scopes narrows the client."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from gateway.errors import Unauthorized
from gateway.oauth import authenticate_bearer
from gateway.oneroster.vocabulary import SCOPE_ROSTER, SCOPE_ROSTER_CORE
from gateway.sharing.service import set_policy
from gateway.store.apps import AccessToken, AppClient
from gateway.store.models import utcnow


def window(start: dt.date, end: dt.date) -> dict:
    return {"schools": ["*"], "contract": {"start": start.isoformat(), "end": end.isoformat()}}


@pytest.fixture
def app_with_policy(database, register):
    """Register an app and give it a policy document; returns its credentials."""
    def create(document: dict | None):
        creds = register()
        if document is not None:
            with database.session_scope() as session:
                client = session.execute(select(AppClient)).scalars().first()
                set_policy(session, app_id=creds.app_id, district_id=client.district_id,
                           document=document, now=utcnow())
        return creds
    return create


@pytest.fixture
def token_response(client, basic_auth):
    def post(creds):
        return client.post("/oauth/token", data={"grant_type": "client_credentials"},
                           headers=basic_auth(creds.client_id, creds.client_secret))
    return post


def test_a_token_is_issued_inside_the_window(app_with_policy, token_response):
    today = utcnow().date()
    creds = app_with_policy(window(today, today))
    response = token_response(creds)
    assert response.status_code == 200, response.get_json()


def test_no_token_before_the_contract_starts(app_with_policy, token_response, database):
    start = utcnow().date() + dt.timedelta(days=2)
    creds = app_with_policy(window(start, start + dt.timedelta(days=300)))
    response = token_response(creds)
    assert response.status_code == 400
    assert response.get_json() == {
        "error": "unauthorized_client",
        "error_description": f"The district's contract with this app starts on "
                             f"{start.isoformat()}; no access tokens are issued before then."}
    with database.session_scope() as session:
        assert session.execute(select(AccessToken)).first() is None


def test_no_token_after_the_contract_ended(app_with_policy, token_response):
    end = utcnow().date() - dt.timedelta(days=1)
    creds = app_with_policy(window(end - dt.timedelta(days=300), end))
    response = token_response(creds)
    assert response.status_code == 400
    assert response.get_json() == {
        "error": "unauthorized_client",
        "error_description": f"The district's contract with this app ended on {end.isoformat()}; "
                             f"no access tokens are issued after it."}


def test_a_wrong_secret_learns_nothing_about_the_contract(app_with_policy, client, basic_auth):
    end = utcnow().date() - dt.timedelta(days=1)
    creds = app_with_policy(window(end - dt.timedelta(days=300), end))
    response = client.post("/oauth/token", data={"grant_type": "client_credentials"},
                           headers=basic_auth(creds.client_id, "wrong"))
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"


def test_without_a_policy_or_window_tokens_are_issued(app_with_policy, token_response):
    assert token_response(app_with_policy(None)).status_code == 200
    assert token_response(app_with_policy({"schools": ["*"]})).status_code == 200


def test_tokens_are_refused_outside_the_window(app, app_with_policy, token_response, database):
    # A token that outlives the window: only the window can stop it.
    app.config["TOKEN_LIFETIME_SECONDS"] = 40 * 86400
    today = utcnow().date()
    creds = app_with_policy(window(today, today + dt.timedelta(days=10)))
    token = token_response(creds).get_json()["access_token"]
    noon = dt.datetime.combine(today, dt.time(12))
    with database.session_scope() as session:
        assert authenticate_bearer(session, token, noon).app_id == creds.app_id
        with pytest.raises(Unauthorized) as after:
            authenticate_bearer(session, token, noon + dt.timedelta(days=11))
        with pytest.raises(Unauthorized) as before:
            authenticate_bearer(session, token, noon - dt.timedelta(days=1))
    end = today + dt.timedelta(days=10)
    assert after.value.description == f"The district's contract with this app ended on {end}."
    assert after.value.headers == {
        "WWW-Authenticate": 'Bearer realm="oneroster", error="invalid_token"'}
    assert before.value.description == f"The district's contract with this app starts on {today}."


def test_a_window_set_after_issuance_stops_live_tokens(app_with_policy, token_response, database):
    creds = app_with_policy(None)
    token = token_response(creds).get_json()["access_token"]
    yesterday = utcnow().date() - dt.timedelta(days=1)
    with database.session_scope() as session:
        district_id = session.execute(select(AppClient.district_id)).scalar_one()
        set_policy(session, app_id=creds.app_id, district_id=district_id,
                   document=window(yesterday - dt.timedelta(days=30), yesterday), now=utcnow())
    with database.session_scope() as session:
        with pytest.raises(Unauthorized):
            authenticate_bearer(session, token, utcnow())


def test_policy_scopes_narrow_the_client_and_revoke_broader_tokens(app_with_policy, token_response,
                                                                   database, client, basic_auth):
    creds = app_with_policy(None)
    token = token_response(creds).get_json()["access_token"]
    with database.session_scope() as session:
        client_row = session.execute(select(AppClient)).scalar_one()
        update = set_policy(session, app_id=creds.app_id, district_id=client_row.district_id,
                            document={"schools": ["*"], "scopes": [SCOPE_ROSTER_CORE]},
                            now=utcnow())
    assert update.revoked_tokens == 1
    with database.session_scope() as session:
        assert session.execute(select(AppClient.scope)).scalar_one() == SCOPE_ROSTER_CORE
        with pytest.raises(Unauthorized, match="revoked"):
            authenticate_bearer(session, token, utcnow())
    response = client.post("/oauth/token", data={"grant_type": "client_credentials",
                                                 "scope": SCOPE_ROSTER},
                           headers=basic_auth(creds.client_id, creds.client_secret))
    assert response.get_json()["error"] == "invalid_scope"
