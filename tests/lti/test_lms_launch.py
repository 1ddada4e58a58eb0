"""Launches an LMS sends the gateway (its LTI 1.3 tool role): what is accepted, and every refusal
on its own -- replayed id_token or state, wrong aud, several audiences without azp, exp and iat
outside the leeway, an unknown deployment, an unknown kid after one refetch, alg none and HS256,
an unmatched person -- with real signatures, through the app's test client."""
from __future__ import annotations

import base64
import json
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey

from gateway.cli import cli
from gateway.lti.tool import registry
from gateway.store.models import utcnow

from lti_support import ToolKeyPair


ISSUER = "https://lms.example"
CLIENT = "gw-client"
DEPLOYMENT = "dep-1"
JWKS_URL = "https://lms.example/jwks"
CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"


@pytest.fixture
def lms_key(database, district, jwks_server) -> ToolKeyPair:
    """The LMS registered in d1; its key published at its JWKS URL."""
    key = ToolKeyPair.generate()
    jwks_server.documents[JWKS_URL] = key.jwks
    with database.session_scope() as session:
        registry.register_platform(session, district="d1", issuer=ISSUER, client_id=CLIENT,
                                   auth_url=ISSUER + "/auth", token_url=ISSUER + "/token",
                                   jwks_url=JWKS_URL, deployment_ids=[DEPLOYMENT], now=utcnow())
    return key


def login(client) -> dict[str, str]:
    """Third-party initiated login; the state and nonce of the authentication request."""
    response = client.get("/lms/login", query_string={
        "iss": ISSUER, "login_hint": "bart", "target_link_uri": "http://localhost/lms/launch",
        "client_id": CLIENT, "lti_deployment_id": DEPLOYMENT})
    assert response.status_code == 302, response.text
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == ISSUER + "/auth"
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert query["client_id"] == CLIENT and query["redirect_uri"].endswith("/lms/launch")
    return query


def claims_for(request: dict[str, str], app_id: int, **overrides) -> dict:
    now = int(time.time())
    claims = {
        "iss": ISSUER, "aud": CLIENT, "sub": "lms-bart", "iat": now, "exp": now + 300,
        "nonce": request["nonce"], "name": "Bart S.",
        CLAIM + "message_type": "LtiResourceLinkRequest", CLAIM + "version": "1.3.0",
        CLAIM + "deployment_id": DEPLOYMENT, CLAIM + "target_link_uri": "http://localhost/lms/launch",
        CLAIM + "resource_link": {"id": "rl-1", "title": "Quiz"},
        CLAIM + "roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"],
        CLAIM + "context": {"id": "course-1", "title": "Bio"},
        CLAIM + "lis": {"person_sourcedid": "u2", "course_section_sourcedid": "k2"},
        CLAIM + "custom": {"gateway_app": str(app_id)}}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def post_launch(client, token: str, state: str):
    return client.post("/lms/launch", data={"id_token": token, "state": state})


@pytest.fixture
def launch(client, lms_key, tool, app_id):
    """Log in, sign claims (with overrides) and post them; returns the response."""
    def launch(header: dict | None = None, key: ToolKeyPair | None = None, **overrides):
        request = login(client)
        token = (key or lms_key).sign(claims_for(request, app_id, **overrides), header)
        return post_launch(client, token, request["state"])
    return launch


def test_accepted_launch_goes_on_to_the_app(launch, tool):
    response = launch()
    assert response.status_code == 303, response.text
    location = urlsplit(response.headers["Location"])
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert f"{location.netloc}{location.path}" == "tool.example/math/login"
    # The app's login is started by the gateway as platform, for the matched OneRoster user.
    assert (query["iss"], query["client_id"], query["login_hint"]) == (
        "http://gateway.test", tool.client_id, "u2")


def test_replayed_id_token_is_refused(client, lms_key, tool, app_id):
    request = login(client)
    token = lms_key.sign(claims_for(request, app_id))
    assert post_launch(client, token, request["state"]).status_code == 303
    again = post_launch(client, token, request["state"])
    assert again.status_code == 400
    assert "already used" in again.text


def test_replayed_state_with_another_token_is_refused(client, lms_key, tool, app_id):
    request = login(client)
    assert post_launch(client, lms_key.sign(claims_for(request, app_id)),
                       request["state"]).status_code == 303
    other = lms_key.sign(claims_for(request, app_id, sub="lms-bart", name="Replay"))
    again = post_launch(client, other, request["state"])
    assert again.status_code == 400 and "already used" in again.text


def test_state_from_another_login_is_refused(client, lms_key, tool, app_id):
    first, second = login(client), login(client)
    response = post_launch(client, lms_key.sign(claims_for(first, app_id)), second["state"])
    assert response.status_code == 400
    assert "nonce is not the one this login asked for" in response.text


def test_wrong_aud_is_refused(launch):
    response = launch(aud="someone-else")
    assert response.status_code == 400
    assert "not for an LMS registered with this gateway" in response.text


def test_several_audiences_without_azp_are_refused(launch):
    response = launch(aud=["someone-else", CLIENT])
    assert response.status_code == 400
    assert "must name this tool in azp" in response.text


def test_several_audiences_with_our_azp_are_accepted(launch):
    assert launch(aud=["someone-else", CLIENT], azp=CLIENT).status_code == 303


def test_azp_naming_another_party_is_refused(launch):
    response = launch(aud=["someone-else", CLIENT], azp="someone-else")
    assert response.status_code == 400


def test_expired_beyond_the_leeway_is_refused(launch):
    now = int(time.time())
    response = launch(iat=now - 400, exp=now - 30)
    assert response.status_code == 400 and "expired" in response.text


def test_expired_within_the_leeway_is_accepted(launch):
    now = int(time.time())
    assert launch(iat=now - 200, exp=now - 5).status_code == 303


def test_iat_in_the_future_beyond_the_leeway_is_refused(launch):
    now = int(time.time())
    response = launch(iat=now + 60, exp=now + 360)
    assert response.status_code == 400 and "in the future" in response.text


def test_iat_slightly_ahead_within_the_leeway_is_accepted(launch):
    now = int(time.time())
    assert launch(iat=now + 5, exp=now + 305).status_code == 303


def test_unknown_deployment_is_refused(launch):
    response = launch(**{CLAIM + "deployment_id": "dep-unknown"})
    assert response.status_code == 400 and "deployment_id is not registered" in response.text


def test_unknown_kid_is_refused_after_exactly_one_refetch(app, launch, jwks_server):
    app.extensions["gateway.lti"].tool_keys.min_refetch_seconds = 0
    assert launch().status_code == 303
    fetched = len(jwks_server.fetches)
    response = launch(key=ToolKeyPair.generate())
    assert response.status_code == 400 and "kid" in response.text
    assert len(jwks_server.fetches) == fetched + 1


def test_a_rotated_lms_key_is_found_by_the_refetch(app, launch, jwks_server):
    app.extensions["gateway.lti"].tool_keys.min_refetch_seconds = 0
    assert launch().status_code == 303
    rotated = ToolKeyPair.generate()
    jwks_server.documents[JWKS_URL] = rotated.jwks
    assert launch(key=rotated).status_code == 303


def _unsigned(claims: dict, header: dict) -> str:
    def b64(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()
    return f"{b64(header)}.{b64(claims)}."


def test_alg_none_is_refused(client, lms_key, tool, app_id):
    request = login(client)
    token = _unsigned(claims_for(request, app_id), {"alg": "none", "kid": lms_key.kid})
    response = post_launch(client, token, request["state"])
    assert response.status_code == 400 and "RS256" in response.text


def test_hs256_is_refused(client, lms_key, tool, app_id):
    request = login(client)
    # The classic confusion: HMAC keyed with the LMS's public key.
    secret = OctKey.import_key(json.dumps(lms_key.jwks["keys"][0]).encode())
    token = jwt.encode({"alg": "HS256", "kid": lms_key.kid}, claims_for(request, app_id), secret,
                       algorithms=["HS256"])
    response = post_launch(client, token, request["state"])
    assert response.status_code == 400 and "RS256" in response.text


def test_unmatched_person_is_refused_and_listed(launch, runner):
    response = launch(sub="lms-nobody", **{CLAIM + "lis": {"course_section_sourcedid": "k2"}})
    assert response.status_code == 403 and "no match for you" in response.text
    listed = runner.invoke(cli, ["lms", "unmatched", "--json"])
    assert [(r["kind"], r["lms_id"]) for r in json.loads(listed.output)] == [("user", "lms-nobody")]


def test_unmatched_course_then_mapped_by_an_admin(launch, runner):
    unmatched = {CLAIM + "lis": {"person_sourcedid": "u2"}, CLAIM + "context": {"id": "c-9", "title": "Bio LMS"}}
    response = launch(**unmatched)
    assert response.status_code == 403 and "no match for this course" in response.text
    result = runner.invoke(cli, ["lms", "map-class", "--platform", "1", "--context", "c-9",
                                 "--class", "k2"])
    assert result.exit_code == 0, result.output
    assert launch(**unmatched).status_code == 303


def test_login_from_an_unregistered_lms_is_refused(client, lms_key):
    response = client.get("/lms/login", query_string={
        "iss": "https://other.example", "login_hint": "x", "target_link_uri": "x",
        "client_id": CLIENT})
    assert response.status_code == 400
    assert "not registered" in response.text


# -- across workers and hosts --------------------------------------------------------------------

def _worker(app, jwks_server):
    """Another worker: its own app and key cache, the same LMS JWKS."""
    app.extensions["gateway.lti"].tool_keys.fetch = jwks_server
    return app.test_client()


def _launch_on_another_worker(client, other, lms_key, app_id):
    request = login(client)
    # The browser carries the state cookie pylti1p3 set at login to whichever host answers.
    name = f"lti1p3-{request['state']}"
    other.set_cookie(name, client.get_cookie(name).value)
    token = lms_key.sign(claims_for(request, app_id))
    first = post_launch(other, token, request["state"])
    again = post_launch(client, token, request["state"])
    return first, again


def test_login_and_launch_on_different_workers_share_the_store(client, second_app, lms_key, tool,
                                                                app_id, jwks_server):
    first, again = _launch_on_another_worker(client, _worker(second_app, jwks_server), lms_key,
                                             app_id)
    assert first.status_code == 303, first.text
    # The state is spent for every worker.
    assert again.status_code == 400 and "already used" in again.text


def test_launch_values_in_redis_when_configured(app, client, database_url, tmp_path, redis_url,
                                                redis_prefix, lms_key, tool, app_id, jwks_server):
    from gateway import create_app

    def redis_app(name):
        return create_app({**{k: app.config[k] for k in ("TESTING", "SECRET_KEY", "ISSUER")},
                           "DATABASE_URL": database_url, "REDIS_URL": redis_url,
                           "REDIS_KEY_PREFIX": redis_prefix,
                           "INSTANCE_PATH": str(tmp_path / name)})
    one, two = redis_app("redis-1"), redis_app("redis-2")
    try:
        first, again = _launch_on_another_worker(_worker(one, jwks_server),
                                                 _worker(two, jwks_server), lms_key, app_id)
        assert first.status_code == 303, first.text
        assert again.status_code == 400 and "already used" in again.text
        import redis
        keys = redis.Redis.from_url(redis_url).keys(redis_prefix + "lms:*")
        # pylti1p3's nonce and launch data went to Redis, not to the store.
        assert any(b"lti1p3-nonce-" in key for key in keys)
        assert any(b"lti1p3-" in key and b"nonce" not in key for key in keys)
    finally:
        for made in (one, two):
            made.extensions["gateway.db"].dispose()


def test_a_removed_lms_is_refused(client, lms_key, tool, app_id, runner):
    request = login(client)
    assert runner.invoke(cli, ["lms", "remove", "1"]).exit_code == 0
    response = post_launch(client, lms_key.sign(claims_for(request, app_id)), request["state"])
    assert response.status_code == 400
    assert "not for an LMS registered with this gateway" in response.text


def test_a_student_on_a_link_without_an_app_is_told_to_wait(launch):
    response = launch(**{CLAIM + "custom": None})
    assert response.status_code == 403
    assert "Your teacher has not chosen the app for this link yet" in response.text


def test_a_link_naming_an_app_not_deployed_in_the_district_is_refused(launch):
    response = launch(**{CLAIM + "custom": {"gateway_app": "999"}})
    assert response.status_code == 403
    assert "not available in your district" in response.text
