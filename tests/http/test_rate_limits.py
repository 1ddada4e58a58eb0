"""Rate limits seen from the outside: an app's OneRoster calls over its burst get the binding's
429 with Retry-After, the token endpoint and the sign-in form refuse too many requests from one
address with their own bodies, the buckets refill, and with Redis every worker and host shares
them (two app instances on one database, one Redis)."""
from __future__ import annotations

import base64
import logging
import re
import time

import pytest

from gateway.oauth import service
from gateway.sharing.policy import share_everything_document
from gateway.sharing.service import app_district_id, set_policy
from gateway.store.models import utcnow

from rostering_api import error_body

USERS = "/ims/oneroster/rostering/v1p2/users"


def assert_busy(response, retry_after: int = 10) -> None:
    """The OneRoster 429: server_busy body and Retry-After."""
    assert response.status_code == 429
    assert response.headers["Retry-After"] == str(retry_after)
    assert response.get_json() == error_body(
        "server_busy", f"Too many requests from this app; try again in {retry_after} "
                       f"second{'s' if retry_after != 1 else ''}.")


@pytest.fixture
def connect_app(database, load_small):
    """Register an app on the small district (policy: share everything); its credentials."""
    load_small()

    def connect(name: str = "Limited App") -> service.AppCredentials:
        with database.session_scope() as session:
            creds = service.register_app(session, name=name, district_sourced_id="d1",
                                         scopes=None, now=utcnow())
            set_policy(session, app_id=creds.app_id,
                       district_id=app_district_id(session, creds.app_id, "d1"),
                       document=share_everything_document(), now=utcnow())
        return creds
    return connect


def basic(creds: service.AppCredentials) -> dict[str, str]:
    raw = f"{creds.client_id}:{creds.client_secret}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def token_for(client, creds: service.AppCredentials) -> dict[str, str]:
    """Bearer headers of a fresh token of ``creds``."""
    response = client.post("/oauth/token", data={"grant_type": "client_credentials"},
                           headers=basic(creds))
    assert response.status_code == 200, response.get_json()
    return {"Authorization": f"Bearer {response.get_json()['access_token']}"}


def test_an_app_over_its_burst_gets_the_oneroster_429(make_app, connect_app):
    app = make_app(APP_RATE_PER_SECOND=0.5, APP_RATE_BURST=3)
    client = app.test_client()
    headers = token_for(client, connect_app())
    assert [client.get(USERS, headers=headers).status_code for _ in range(3)] == [200] * 3

    refused = client.get(USERS, headers=headers)
    # 0.5 per second: the next request is 2 seconds away.
    assert_busy(refused, retry_after=2)
    assert refused.headers["Content-Type"] == "application/json"
    # Every operation of the service counts, single records too.
    assert_busy(client.get(USERS + "/anyone", headers=headers), retry_after=2)


def test_the_limit_is_per_app_not_per_token(make_app, connect_app):
    app = make_app(APP_RATE_PER_SECOND=0.1, APP_RATE_BURST=2)
    client = app.test_client()
    creds = connect_app()
    first, second = token_for(client, creds), token_for(client, creds)
    other = token_for(client, connect_app("Other App"))
    assert client.get(USERS, headers=first).status_code == 200
    assert client.get(USERS, headers=second).status_code == 200
    assert_busy(client.get(USERS, headers=first))
    assert_busy(client.get(USERS, headers=second))
    assert client.get(USERS, headers=other).status_code == 200


def test_requests_without_a_valid_token_cost_no_app_anything(make_app, connect_app):
    app = make_app(APP_RATE_PER_SECOND=0.1, APP_RATE_BURST=1)
    client = app.test_client()
    headers = token_for(client, connect_app())
    for _ in range(5):
        assert client.get(USERS, headers={"Authorization": "Bearer nope"}).status_code == 401
        assert client.get(USERS).status_code == 401
    assert client.get(USERS, headers=headers).status_code == 200


def test_the_bucket_refills(make_app, connect_app):
    app = make_app(APP_RATE_PER_SECOND=1, APP_RATE_BURST=2)
    client = app.test_client()
    headers = token_for(client, connect_app())
    assert [client.get(USERS, headers=headers).status_code for _ in range(2)] == [200, 200]
    assert_busy(client.get(USERS, headers=headers), retry_after=1)
    time.sleep(1.05)  # one interval (1 s) and a little: room for one request, not two
    assert client.get(USERS, headers=headers).status_code == 200
    assert_busy(client.get(USERS, headers=headers), retry_after=1)


def test_a_zero_rate_disables_the_limit(make_app, connect_app):
    app = make_app(APP_RATE_PER_SECOND=0, APP_RATE_BURST=1, IP_RATE_PER_SECOND=0)
    client = app.test_client()
    creds = connect_app()
    headers = token_for(client, creds)
    assert all(client.get(USERS, headers=headers).status_code == 200 for _ in range(20))
    assert all(client.post("/oauth/token", data={"grant_type": "client_credentials"},
                           headers=basic(creds)).status_code == 200 for _ in range(5))


def test_the_default_limits_let_a_full_sync_through(client, connect_app):
    headers = token_for(client, connect_app())
    for collection in ("orgs", "academicSessions", "courses", "classes", "users",
                       "enrollments", "demographics"):
        for offset in range(0, 100, 2):
            response = client.get(f"/ims/oneroster/rostering/v1p2/{collection}",
                                  query_string={"limit": 2, "offset": offset}, headers=headers)
            assert response.status_code == 200, (collection, offset)


# -- per client address -------------------------------------------------------------------------

def test_token_requests_from_one_address_are_limited(make_app, connect_app):
    app = make_app(IP_RATE_PER_SECOND=0.2, IP_RATE_BURST=2)
    client = app.test_client()
    creds = connect_app()
    wrong = basic(service.AppCredentials(creds.app_id, creds.client_id, "not-the-secret"))
    # Failures and successes alike count.
    assert client.post("/oauth/token", data={"grant_type": "client_credentials"},
                       headers=wrong).status_code == 401
    assert client.post("/oauth/token", data={"grant_type": "client_credentials"},
                       headers=basic(creds)).status_code == 200

    refused = client.post("/oauth/token", data={"grant_type": "client_credentials"},
                          headers=basic(creds))
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "5"
    assert refused.get_json() == {
        "error": "temporarily_unavailable",
        "error_description": "Too many token requests from this address; try again in 5 seconds."}
    assert refused.headers["Cache-Control"] == "no-store"
    # Another address has its own bucket; the app's REST calls are not concerned.
    assert client.post("/oauth/token", data={"grant_type": "client_credentials"},
                       headers=basic(creds),
                       environ_base={"REMOTE_ADDR": "10.9.9.9"}).status_code == 200


def test_sign_in_attempts_from_one_address_are_limited(make_app):
    app = make_app(IP_RATE_PER_SECOND=0.1, IP_RATE_BURST=2)
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    form = {"username": "nobody", "password": "wrong password", "csrf_token": csrf}
    assert [client.post("/login", data=form).status_code for _ in range(2)] == [200, 200]

    refused = client.post("/login", data=form)
    assert refused.status_code == 429
    assert refused.mimetype == "text/html"
    assert refused.headers["Retry-After"] == "10"
    text = refused.get_data(as_text=True)
    assert "<h1>Sign in</h1>" in text
    assert "Too many sign-in attempts from this network. Try again in 10 seconds." in text
    # The form is still offered, and viewing it is not limited.
    assert 'name="password"' in text
    assert client.get("/login").status_code == 200
    assert client.post("/login", data=form,
                       environ_base={"REMOTE_ADDR": "10.9.9.9"}).status_code == 200


def test_sign_in_and_token_requests_count_apart(make_app):
    app = make_app(IP_RATE_PER_SECOND=0.1, IP_RATE_BURST=1)
    client = app.test_client()
    assert client.post("/oauth/token", data={"grant_type": "client_credentials"}).status_code == 401
    assert client.post("/login", data={}).status_code == 400  # no CSRF token: refused, counted
    assert client.post("/oauth/token", data={}).status_code == 429
    assert client.post("/login", data={}).status_code == 429


def test_behind_a_proxy_the_forwarded_address_counts(make_app):
    app = make_app(IP_RATE_PER_SECOND=0.1, IP_RATE_BURST=1, PROXY_COUNT=1)
    client = app.test_client()
    for address in ("198.51.100.1", "198.51.100.2"):
        # No grant_type: 400, counted all the same.
        assert client.post("/oauth/token", data={}, headers={"X-Forwarded-For": address}
                           ).status_code == 400
    assert client.post("/oauth/token", data={}, headers={"X-Forwarded-For": "198.51.100.1"}
                       ).status_code == 429


# -- shared through Redis -------------------------------------------------------------------

def redis_settings(redis_url: str, prefix: str, **settings) -> dict:
    return {"REDIS_URL": redis_url, "REDIS_KEY_PREFIX": prefix, **settings}


def test_two_instances_share_an_apps_limit_through_redis(make_app, connect_app, redis_url,
                                                          redis_prefix):
    settings = redis_settings(redis_url, redis_prefix, APP_RATE_PER_SECOND=0.1, APP_RATE_BURST=4)
    first, second = make_app(**settings).test_client(), make_app(**settings).test_client()
    headers = token_for(first, connect_app())
    statuses = [(first if n % 2 else second).get(USERS, headers=headers).status_code
                for n in range(4)]
    assert statuses == [200] * 4
    assert_busy(first.get(USERS, headers=headers))
    assert_busy(second.get(USERS, headers=headers))


def test_two_instances_share_address_limits_through_redis(make_app, redis_url, redis_prefix):
    settings = redis_settings(redis_url, redis_prefix, IP_RATE_PER_SECOND=0.1, IP_RATE_BURST=2)
    first, second = make_app(**settings).test_client(), make_app(**settings).test_client()
    assert first.post("/oauth/token", data={}).status_code == 400
    assert second.post("/oauth/token", data={}).status_code == 400
    assert first.post("/oauth/token", data={}).status_code == 429
    assert second.post("/oauth/token", data={}).status_code == 429


def test_the_shared_limit_refills(make_app, connect_app, redis_url, redis_prefix):
    settings = redis_settings(redis_url, redis_prefix, APP_RATE_PER_SECOND=1, APP_RATE_BURST=2)
    first, second = make_app(**settings).test_client(), make_app(**settings).test_client()
    headers = token_for(first, connect_app())
    assert [first.get(USERS, headers=headers).status_code,
            second.get(USERS, headers=headers).status_code] == [200, 200]
    assert_busy(first.get(USERS, headers=headers), retry_after=1)
    time.sleep(1.05)  # one interval (1 s) and a little
    assert second.get(USERS, headers=headers).status_code == 200
    assert_busy(first.get(USERS, headers=headers), retry_after=1)


def test_with_redis_down_requests_are_served_and_limited_per_process(make_app, connect_app,
                                                                     closed_port_url, caplog):
    app = make_app(REDIS_URL=closed_port_url, APP_RATE_PER_SECOND=0.1, APP_RATE_BURST=2)
    client = app.test_client()
    headers = token_for(client, connect_app())
    with caplog.at_level(logging.WARNING, logger="gateway.ratelimit"):
        assert [client.get(USERS, headers=headers).status_code for _ in range(2)] == [200, 200]
        assert_busy(client.get(USERS, headers=headers))
    assert any(record.getMessage().startswith("rate limits: Redis failed")
               for record in caplog.records)
