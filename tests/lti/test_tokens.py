"""The service token endpoint: client credentials with a JWT client assertion (RFC 7523), and
every way an assertion is refused."""
from __future__ import annotations

import base64
import json
import time

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey
from sqlalchemy import select, update

from gateway.oauth import service
from gateway.oauth.credentials import hash_access_token
from gateway.sharing.policy import share_everything_document
from gateway.sharing.service import set_policy
from gateway.store.apps import AccessToken
from gateway.store.lti import Tool
from gateway.store.models import utcnow

from lti_support import ISSUER, ToolKeyPair, client_assertion

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
NRPS = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"


def request_token(client, assertion: str, **form: str):
    form.setdefault("grant_type", "client_credentials")
    form.setdefault("client_assertion_type", ASSERTION_TYPE)
    form["client_assertion"] = assertion
    return client.post("/lti/token", data=form)


def assert_invalid_client(response, message: str):
    assert response.status_code == 401, response.get_json()
    body = response.get_json()
    assert body["error"] == "invalid_client"
    assert message in body["error_description"], body
    assert response.headers["Cache-Control"] == "no-store"


def test_token_for_a_valid_assertion(client, tool, database):
    response = request_token(client, client_assertion(tool))

    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"
    body = response.get_json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert body["scope"].split() == [
        "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
        "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly",
        "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly", SCORE, NRPS]
    with database.session_scope() as session:
        [stored] = session.execute(select(AccessToken)).scalars().all()
    assert stored.token_hash == hash_access_token(body["access_token"])


def test_scopes_are_limited_to_what_the_tool_is_allowed(client, tool, make_tool):
    response = request_token(client, client_assertion(tool), scope=f"{NRPS} {SCORE}")
    assert response.get_json()["scope"] == f"{NRPS} {SCORE}"

    roster = "https://purl.imsglobal.org/spec/or/v1p2/scope/roster.readonly"
    response = request_token(client, client_assertion(tool), scope=f"{NRPS} {roster}")
    assert response.status_code == 400
    assert response.get_json() == {"error": "invalid_scope",
                                   "error_description": f"Unknown scope: {roster}"}

    nrps_only = make_tool(slug="nrps-only", scopes=[NRPS])
    response = request_token(client, client_assertion(nrps_only), scope=SCORE)
    assert response.get_json() == {"error": "invalid_scope",
                                   "error_description": f"Not allowed to this tool: {SCORE}"}


def test_an_hs256_assertion_is_refused(client, tool, jwks_server):
    public = json.dumps(tool.keys.jwks["keys"][0]).encode()
    now = int(time.time())
    forged = jwt.encode({"alg": "HS256", "kid": tool.keys.kid},
                        {"iss": tool.client_id, "sub": tool.client_id, "aud": f"{ISSUER}/lti/token",
                         "iat": now, "exp": now + 60, "jti": "x"},
                        OctKey.import_key(public), algorithms=["HS256"])
    assert_invalid_client(request_token(client, forged), "must be signed with RS256, not 'HS256'")
    assert jwks_server.fetches == []


def test_an_unsigned_assertion_is_refused(client, tool):
    now = int(time.time())
    claims = {"iss": tool.client_id, "sub": tool.client_id, "aud": f"{ISSUER}/lti/token",
              "iat": now, "exp": now + 60, "jti": "x"}

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    header = b64(b'{"alg":"none"}')
    unsigned = f"{header}.{b64(json.dumps(claims).encode())}."
    assert_invalid_client(request_token(client, unsigned), "must be signed with RS256, not 'none'")


def test_a_signature_by_another_key_is_refused(client, tool):
    impostor = ToolKeyPair.generate()
    now = int(time.time())
    forged = impostor.sign({"iss": tool.client_id, "sub": tool.client_id,
                            "aud": f"{ISSUER}/lti/token", "iat": now, "exp": now + 60, "jti": "x"},
                           header={"alg": "RS256", "kid": tool.keys.kid})
    assert_invalid_client(request_token(client, forged), "signature does not verify")


def test_an_unknown_kid_is_refused_after_one_refetch(client, tool, jwks_server, app):
    assert request_token(client, client_assertion(tool)).status_code == 200
    assert jwks_server.fetches == [tool.jwks_url]
    cache = app.extensions["gateway.lti"].tool_keys
    cache.clock = lambda: time.monotonic() + 6  # past the minimum refetch interval

    impostor = ToolKeyPair.generate()
    now = int(time.time())
    forged = impostor.sign({"iss": tool.client_id, "sub": tool.client_id,
                            "aud": f"{ISSUER}/lti/token", "iat": now, "exp": now + 60, "jti": "y"})
    assert_invalid_client(request_token(client, forged), f"no key with kid '{impostor.kid}'")
    # Fetched again exactly once for the unknown kid...
    assert jwks_server.fetches == [tool.jwks_url, tool.jwks_url]
    # ...and not again right away for the next made-up kid.
    assert_invalid_client(request_token(client, forged), "no key with kid")
    assert len(jwks_server.fetches) == 2


def test_a_rotated_tool_key_is_found_by_the_refetch(client, tool, jwks_server, app):
    assert request_token(client, client_assertion(tool)).status_code == 200
    app.extensions["gateway.lti"].tool_keys.clock = lambda: time.monotonic() + 6
    rotated = ToolKeyPair.generate()
    jwks_server.documents[tool.jwks_url] = rotated.jwks
    tool.keys = rotated
    assert request_token(client, client_assertion(tool)).status_code == 200
    assert len(jwks_server.fetches) == 2


def test_an_unreachable_jwks_is_refused(client, tool, jwks_server):
    del jwks_server.documents[tool.jwks_url]
    assert_invalid_client(request_token(client, client_assertion(tool)), "answered 404")


@pytest.mark.parametrize("aud", [ISSUER, f"{ISSUER}/lti/token/", f"{ISSUER}/oauth/token",
                                 [f"{ISSUER}/lti/token", "https://other.example"], None])
def test_the_audience_must_be_exactly_the_token_url(client, tool, aud):
    assert_invalid_client(request_token(client, client_assertion(tool, aud=aud)),
                          f"its aud must be exactly {ISSUER}/lti/token")


def test_the_audience_may_be_a_one_element_list(client, tool):
    assert request_token(client, client_assertion(tool, aud=[f"{ISSUER}/lti/token"])).status_code == 200


def test_a_jti_is_single_use(client, tool):
    assertion = client_assertion(tool, jti="once")
    assert request_token(client, assertion).status_code == 200
    assert_invalid_client(request_token(client, assertion), "has already been used (jti)")
    # The same jti from another tool is another value.


def test_a_missing_jti_is_refused(client, tool):
    assert_invalid_client(request_token(client, client_assertion(tool, jti=None)), "must carry a jti")


@pytest.mark.parametrize("times, message", [
    (lambda now: {"iat": now - 400, "exp": now + 60}, "issued more than 300 seconds ago"),
    (lambda now: {"iat": now + 60, "exp": now + 120}, "issued in the future"),
    (lambda now: {"iat": now - 100, "exp": now - 20}, "has expired"),
    (lambda now: {"iat": now, "exp": now + 3600}, "may live at most 300 seconds"),
    (lambda now: {"iat": None, "exp": now + 60}, "numeric iat and exp"),
    (lambda now: {"iat": now, "exp": str(now + 60)}, "numeric iat and exp"),
])
def test_iat_and_exp_are_bounded(client, tool, times, message):
    assert_invalid_client(request_token(client, client_assertion(tool, **times(int(time.time())))),
                          message)


def test_within_the_leeway_times_are_accepted(client, tool):
    now = int(time.time())
    assert request_token(client, client_assertion(tool, iat=now + 5, exp=now + 65)).status_code == 200
    assert request_token(client, client_assertion(tool, iat=now - 120, exp=now - 5)).status_code == 200


def test_iss_and_sub_must_be_the_client_id(client, tool, make_tool):
    other = make_tool(slug="other")
    assert_invalid_client(request_token(client, client_assertion(tool, sub=other.client_id)),
                          "iss and sub must both be the client_id")
    assert_invalid_client(request_token(client, client_assertion(tool), client_id=other.client_id),
                          "the client_id parameter names another client")


def test_unknown_and_pending_tools_get_no_token(client, tool, database):
    assert_invalid_client(request_token(client, client_assertion(tool, iss="nobody", sub="nobody")),
                          "not a registered tool")
    with database.session_scope() as session:
        session.execute(update(Tool).values(status="pending"))
    assert_invalid_client(request_token(client, client_assertion(tool)), "not a registered tool")


def test_grant_and_assertion_type_are_required(client, tool):
    response = request_token(client, client_assertion(tool), grant_type="authorization_code")
    assert response.status_code == 400
    assert response.get_json()["error"] == "unsupported_grant_type"
    response = client.post("/lti/token", data={"client_assertion": client_assertion(tool)})
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_request"
    assert_invalid_client(request_token(client, client_assertion(tool), client_assertion_type="x"),
                          "client_assertion_type=")
    assert_invalid_client(request_token(client, "not.a.jwt"), "not a compact JWS")


def refusal(description: str) -> dict:
    return {"error": "invalid_client",
            "error_description": f"The client assertion is not acceptable: {description}."}


@pytest.mark.parametrize("claims, description", [
    ({"aud": f"{ISSUER}/oauth/token"}, f"its aud must be exactly {ISSUER}/lti/token"),
    ({"aud": [f"{ISSUER}/lti/token", ISSUER]}, f"its aud must be exactly {ISSUER}/lti/token"),
    ({"iat": -120, "exp": -30}, "the token has expired (exp)"),
    ({"iat": 30, "exp": 90}, "the token was issued in the future (iat)"),
    ({"nbf": 60}, "the token is not valid yet (nbf)"),
    ({"iat": -400}, "the token was issued more than 300 seconds ago (iat)"),
])
def test_each_refused_claim_has_the_rfc_6749_body(client, tool, claims, description):
    now = int(time.time())
    timed = {name: now + value if name in ("iat", "exp", "nbf") else value
             for name, value in claims.items()}

    response = request_token(client, client_assertion(tool, **timed))

    assert response.status_code == 401
    assert response.get_json() == refusal(description)
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"


def test_a_bad_signature_has_the_rfc_6749_body(client, tool):
    assertion = client_assertion(tool)
    header, payload, signature = assertion.split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]

    response = request_token(client, f"{header}.{payload}.{flipped}")

    assert response.status_code == 401
    assert response.get_json() == refusal("the token's signature does not verify")


def test_a_replayed_jti_has_the_rfc_6749_body(client, tool):
    assertion = client_assertion(tool)
    assert request_token(client, assertion).status_code == 200

    response = request_token(client, assertion)

    assert response.status_code == 401
    assert response.get_json() == {"error": "invalid_client", "error_description":
                                   "The client assertion has already been used (jti)."}
    # A new assertion with the same jti is the same replay.
    response = request_token(client, client_assertion(tool, jti=jwt.decode(
        assertion, tool.keys.private).claims["jti"]))
    assert response.get_json()["error_description"] == (
        "The client assertion has already been used (jti).")


def test_a_refused_token_request_does_not_spend_its_assertion(client, tool):
    assertion = client_assertion(tool)
    roster = "https://purl.imsglobal.org/spec/or/v1p2/scope/roster.readonly"
    assert request_token(client, assertion, scope=roster).status_code == 400

    assert request_token(client, assertion).status_code == 200


def test_service_tokens_and_oneroster_tokens_serve_only_their_own_service(client, tool, database,
                                                                         service_token):
    with database.session_scope() as session:
        app = service.register_app(session, name="Reader", district_sourced_id="d1", scopes=None,
                                   now=utcnow())
        set_policy(session, app_id=app.app_id, district_id=1,
                   document=share_everything_document(), now=utcnow())
    response = client.post("/oauth/token", data={"grant_type": "client_credentials"},
                           auth=(app.client_id, app.client_secret))
    roster_token = response.get_json()["access_token"]
    lti_token = service_token(tool)
    roster_url = "/ims/oneroster/rostering/v1p2/classes/k2/students"
    nrps_url = f"/lti/deployments/{tool.deployment_id}/contexts/k2/memberships"
    assert client.get(roster_url, headers=bearer(roster_token)).status_code == 200
    assert client.get(nrps_url, headers=bearer(lti_token)).status_code == 200

    response = client.get(roster_url, headers=bearer(lti_token))

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="oneroster", error="invalid_token"'
    assert response.get_json() == {
        "imsx_codeMajor": "failure", "imsx_severity": "error",
        "imsx_description": "The access token is not recognised.",
        "imsx_CodeMinor": {"imsx_codeMinorField": [
            {"imsx_codeMinorFieldName": "TargetEndSystem",
             "imsx_codeMinorFieldValue": "unauthorisedrequest"}]}}

    response = client.get(nrps_url, headers=bearer(roster_token))

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="lti", error="invalid_token"'
    assert response.get_json() == {"error": "invalid_token",
                                   "error_description": "The access token is not recognised."}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
