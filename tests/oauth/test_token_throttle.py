"""Client-secret guessing at /oauth/token is throttled per client_id (429, an RFC 6749-shaped body
and Retry-After), with counters in the store shared by every worker."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import update

from gateway.oauth import service
from gateway.store.accounts import AuthThrottle
from gateway.store.models import utcnow


def wrong(credentials: service.AppCredentials) -> service.AppCredentials:
    return service.AppCredentials(credentials.app_id, credentials.client_id, "not-the-secret")


def assert_throttled(response) -> int:
    assert response.status_code == 429
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 300
    assert response.get_json() == {
        "error": "temporarily_unavailable",
        "error_description": f"Too many failed authentications of this client; try again in "
                             f"{retry_after} seconds."}
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"
    return retry_after


def test_the_right_secret_is_refused_after_too_many_wrong_ones(request_token, credentials,
                                                                register_app):
    for _ in range(10):
        assert request_token(wrong(credentials)).status_code == 401

    assert_throttled(request_token(credentials))
    # Another client is not concerned.
    assert request_token(register_app(name="Other App")).status_code == 200


def test_failures_through_form_fields_count_against_the_same_client(client, request_token,
                                                                     credentials):
    for _ in range(10):
        response = client.post("/oauth/token", data={
            "grant_type": "client_credentials", "client_id": credentials.client_id,
            "client_secret": "not-the-secret"})
        assert response.status_code == 401

    assert_throttled(request_token(credentials))


def test_a_success_clears_the_count(request_token, credentials):
    for _ in range(9):
        assert request_token(wrong(credentials)).status_code == 401
    assert request_token(credentials).status_code == 200
    for _ in range(9):
        assert request_token(wrong(credentials)).status_code == 401

    assert request_token(credentials).status_code == 200


def test_a_lockout_ends(request_token, credentials, database):
    for _ in range(10):
        request_token(wrong(credentials))
    assert_throttled(request_token(credentials))
    with database.session_scope() as session:
        session.execute(update(AuthThrottle).values(
            locked_until=utcnow() - dt.timedelta(seconds=1)))

    assert request_token(credentials).status_code == 200


def test_the_threshold_is_a_setting(app, request_token, credentials):
    app.config.update(TOKEN_MAX_FAILURES_PER_CLIENT=3, THROTTLE_LOCKOUT_SECONDS=20)
    for _ in range(3):
        assert request_token(wrong(credentials)).status_code == 401

    assert 19 <= assert_throttled(request_token(credentials)) <= 20


def test_the_counters_are_shared_by_every_worker(request_token, credentials, basic_auth,
                                                  second_app):
    other_client = second_app.test_client()
    for n in range(10):
        if n % 2:
            assert request_token(wrong(credentials)).status_code == 401
        else:
            response = other_client.post(
                "/oauth/token", data={"grant_type": "client_credentials"},
                headers=basic_auth(credentials.client_id, "not-the-secret"))
            assert response.status_code == 401

    assert_throttled(other_client.post(
        "/oauth/token", data={"grant_type": "client_credentials"},
        headers=basic_auth(credentials.client_id, credentials.client_secret)))
    assert_throttled(request_token(credentials))
