"""Launches: the third-party initiated login, the authorization endpoint's checks, and the claims
of the id_token -- including what the app's sharing policy lets them carry."""
from __future__ import annotations

import base64
import datetime as dt
import json
from urllib.parse import urlsplit

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey
from joserfc.jws import extract_compact
from sqlalchemy import update

from gateway.store.apps import AppClient
from gateway.store.models import utcnow

from lti_support import (ISSUER, TOOL, auth_request, forms, portal_csrf, posted_form, start_launch,
                      verify_platform_token)

LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
INST = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#"
CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
REDIRECT = f"{TOOL}/math/launch"


@pytest.fixture
def link_id(tool, place):
    return place(tool.client_id, "k1", title="Fractions", text="Unit 4")


def authorize(client, login, **overrides):
    redirect_uri = overrides.pop("redirect_uri", REDIRECT)
    return client.get("/lti/authorize", query_string=auth_request(login, redirect_uri, **overrides))


def test_portal_link_starts_third_party_initiated_login(client, tool, link_id, sign_in):
    sign_in("lisa")
    response = client.post(f"/portal/launch/{link_id}",
                           data={"csrf_token": portal_csrf(client)})

    assert response.status_code == 303
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{TOOL}/math/login"
    login = start_launch(client, link_id)
    assert set(login) == {"iss", "login_hint", "target_link_uri", "lti_message_hint",
                          "lti_deployment_id", "client_id"}
    assert login["iss"] == ISSUER
    assert login["login_hint"] == "u1"
    assert login["target_link_uri"] == f"{TOOL}/math/launch"
    assert login["lti_deployment_id"] == tool.deployment_id
    assert login["client_id"] == tool.client_id
    # The message hint is a JWT the platform signed, short-lived.
    hint = verify_platform_token(client, login["lti_message_hint"])
    assert hint["exp"] - hint["iat"] == 300
    assert hint["client_id"] == tool.client_id and hint["message_type"] == "LtiResourceLinkRequest"


def test_launch_posts_a_signed_id_token_with_the_lti_claims(client, tool, link_id, sign_in):
    sign_in("lisa")
    login = start_launch(client, link_id)
    response = authorize(client, login, nonce="n-123", state="s-456")

    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'; script-src 'nonce-")
    form = posted_form(response)
    assert form["action"] == REDIRECT and form["method"] == "post"
    assert set(form["fields"]) == {"id_token", "state"} and form["fields"]["state"] == "s-456"
    token = form["fields"]["id_token"]
    header = extract_compact(token.encode()).protected
    jwks = client.get("/.well-known/jwks.json").get_json()
    assert header["alg"] == "RS256" and header["kid"] == jwks["keys"][0]["kid"]
    claims = verify_platform_token(client, token)
    assert claims["exp"] - claims["iat"] == 300
    assert abs(claims["iat"] - utcnow().replace(tzinfo=dt.timezone.utc).timestamp()) < 5
    del claims["iat"], claims["exp"]
    assert claims == {
        "iss": ISSUER, "aud": tool.client_id, "azp": tool.client_id, "sub": "u1",
        "nonce": "n-123",
        CLAIM + "message_type": "LtiResourceLinkRequest", CLAIM + "version": "1.3.0",
        CLAIM + "deployment_id": tool.deployment_id,
        CLAIM + "target_link_uri": REDIRECT,
        CLAIM + "resource_link": {"id": link_id, "title": "Fractions", "description": "Unit 4"},
        CLAIM + "roles": [LEARNER, INST + "Student"],
        CLAIM + "context": {"id": "k1", "label": "M3A", "title": "Math 3A",
                            "type": ["http://purl.imsglobal.org/vocab/lis/v2/course#CourseSection"]},
        CLAIM + "lis": {"person_sourcedid": "u1", "course_section_sourcedid": "k1"},
        CLAIM + "tool_platform": {"guid": ISSUER, "name": "K-12 Interoperability Gateway",
                                  "product_family_code": "k12-gateway", "version": "0.1.0"},
        CLAIM + "launch_presentation": {"document_target": "window",
                                        "return_url": ISSUER + "/portal"},
        "given_name": "Lisa", "family_name": "Simpson", "name": "Lisa Simpson",
        "email": "lisa@example.edu",
        "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice": {
            "context_memberships_url":
                f"{ISSUER}/lti/deployments/{tool.deployment_id}/contexts/k1/memberships",
            "service_versions": ["2.0"]},
        "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint": {
            "scope": ["https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
                      "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly",
                      "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
                      "https://purl.imsglobal.org/spec/lti-ags/scope/score"],
            "lineitems": f"{ISSUER}/lti/deployments/{tool.deployment_id}/contexts/k1/lineitems"},
    }


def test_instructor_roles_and_custom_parameters(launch, make_tool, place):
    custom_tool = make_tool(slug="custom", custom={"who": "$User.id", "ctx": "$Context.id",
                                                   "given": "$Person.name.given",
                                                   "odd": "$Unknown.variable", "plain": "x"},
                            scopes=["https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"])
    link_id = place(custom_tool.client_id, "k1", custom={"link": "$ResourceLink.id"})
    claims = launch("hoover", link_id=link_id, registered=custom_tool,
                    redirect_uri=f"{TOOL}/custom/launch")

    assert claims[CLAIM + "roles"] == [INSTRUCTOR, INST + "Instructor", INST + "Faculty"]
    assert claims[CLAIM + "custom"] == {"who": "t-hoover", "ctx": "k1", "given": "Elizabeth",
                                        "odd": "$Unknown.variable", "plain": "x", "link": link_id}
    # A tool without AGS scopes gets no AGS claim.
    assert "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint" not in claims


def test_ags_claim_names_the_links_only_line_item(launch, tool, place, database):
    from gateway.store.lti import LineItem

    link_id = place(tool.client_id, "k1")
    with database.session_scope() as session:
        session.add(LineItem(district_id=1, sourced_id="li-1", title="Quiz", class_sourced_id="k1",
                             result_value_max=10, tool_id=1, resource_link_id=link_id))
    claims = launch("lisa", link_id=link_id)
    endpoint = claims["https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"]
    assert endpoint["lineitem"] == (f"{ISSUER}/lti/deployments/{tool.deployment_id}"
                                    "/contexts/k1/lineitems/li-1")


def test_claims_obey_the_apps_sharing_policy(launch, policy, tool):
    claims = launch("lisa")

    # The same pseudonymous id everywhere: sub, lis and the login hint.
    assert claims["sub"] == "p-u1"
    assert claims[CLAIM + "lis"]["person_sourcedid"] == "p-u1"
    # Masked as the policy says; email withheld (not in fields()).
    assert claims["family_name"] == "S." and claims["given_name"] == "Lisa"
    assert claims["name"] == "Lisa S."
    assert "email" not in claims
    [(channel, endpoint, entity, records, stored)] = policy.disclosures
    assert (channel, endpoint, entity, stored) == ("lti", "launch", "user", ["u1"])
    assert records == [{"sourcedId": "p-u1", "givenName": "Lisa", "familyName": "S."}]


def test_a_user_the_policy_hides_cannot_launch(client, tool, place, sign_in, policy):
    link_id = place(tool.client_id, "k2")
    sign_in("milhouse")  # u3, hidden by the policy
    assert "No tools" in client.get("/portal").get_data(as_text=True) or \
        "Fractions" not in client.get("/portal").get_data(as_text=True)
    response = client.post(f"/portal/launch/{link_id}",
                           data={"csrf_token": portal_csrf(client)})
    assert response.status_code == 403
    assert "does not share this class with this tool" in response.get_data(as_text=True)


# -- the authorization endpoint refuses ------------------------------------------------------

def assert_refused(response, status: int, message: str):
    body = response.get_data(as_text=True)
    assert response.status_code == status, body
    assert message in body
    assert "eyJ" not in body and forms(body) == []  # no JWT, nothing to post anywhere


@pytest.mark.parametrize("override, message", [
    ({"redirect_uri": "https://evil.example/steal"}, "The redirect_uri is not registered"),
    ({"redirect_uri": REDIRECT + "/"}, "The redirect_uri is not registered"),
    ({"client_id": "unknown"}, "Unknown client_id."),
    ({"response_type": "code"}, "must have response_type=id_token"),
    ({"response_mode": "query"}, "must have response_mode=form_post"),
    ({"prompt": "login"}, "must have prompt=none"),
    ({"scope": "profile"}, "must have scope=openid"),
    ({"nonce": None}, "has no nonce"),
    ({"login_hint": None}, "has no login_hint"),
    ({"lti_message_hint": None}, "has no lti_message_hint"),
])
def test_bad_authentication_requests_are_refused(client, link_id, sign_in, override, message):
    sign_in("lisa")
    login = start_launch(client, link_id)
    assert_refused(client.get("/lti/authorize", query_string=auth_request(
        login, override.pop("redirect_uri", REDIRECT), **override)), 400, message)


def test_unregistered_redirect_uri_is_refused_even_before_sign_in(client, link_id, sign_in):
    sign_in("lisa")
    login = start_launch(client, link_id)
    client.post("/logout", data={"csrf_token": portal_csrf(client)})
    assert_refused(authorize(client, login, redirect_uri="https://evil.example/x"), 400,
                   "The redirect_uri is not registered")


def test_signed_out_browser_must_sign_in(client, link_id, sign_in):
    sign_in("lisa")
    login = start_launch(client, link_id)
    client.post("/logout", data={"csrf_token": portal_csrf(client)})
    assert_refused(authorize(client, login), 401, "Sign in to the portal")


def test_a_launch_for_another_user_is_refused(app, client, link_id, sign_in):
    sign_in("lisa")
    login = start_launch(client, link_id)
    # Bart gets hold of Lisa's login initiation and replays it in his own browser.
    bart = sign_in("bart", browser=app.test_client())
    assert_refused(bart.get("/lti/authorize", query_string=auth_request(login, REDIRECT)), 403,
                   "This launch was started by someone else")
    # Lisa's own launch with someone else's login_hint is refused too.
    assert_refused(authorize(client, login, login_hint="u2"), 403,
                   "The login_hint does not name the signed-in user")


def test_a_message_hint_is_single_use(client, link_id, sign_in):
    sign_in("lisa")
    login = start_launch(client, link_id)
    assert authorize(client, login).status_code == 200
    assert_refused(authorize(client, login), 400, "This launch has already been used")


def test_a_nonce_is_single_use_per_tool(client, link_id, sign_in):
    sign_in("lisa")
    assert authorize(client, start_launch(client, link_id), nonce="same").status_code == 200
    assert_refused(authorize(client, start_launch(client, link_id), nonce="same"), 400,
                   "already been used")


def test_a_message_hint_for_another_tool_is_refused(client, tool, make_tool, link_id, sign_in):
    other = make_tool(slug="other")
    sign_in("lisa")
    login = start_launch(client, link_id)
    response = client.get("/lti/authorize", query_string=auth_request(
        login, f"{TOOL}/other/launch", client_id=other.client_id))
    assert_refused(response, 400, "issued for another tool")


def _forged_hints(client, login):
    real = verify_platform_token(client, login["lti_message_hint"])
    attacker = RSAKey.import_key(rsa.generate_private_key(public_exponent=65537, key_size=2048),
                                 {"kid": "attacker"})
    kid = client.get("/.well-known/jwks.json").get_json()["keys"][0]["kid"]
    payload = base64.urlsafe_b64encode(
        json.dumps(real).encode()).rstrip(b"=").decode()
    none_header = base64.urlsafe_b64encode(
        b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    return {
        "signed by another key, platform's kid": jwt.encode({"alg": "RS256", "kid": kid}, real,
                                                            RSAKey.import_key(attacker.as_dict(private=True)),
                                                            algorithms=["RS256"]),
        "signed by an unknown kid": jwt.encode({"alg": "RS256", "kid": "attacker"}, real, attacker,
                                               algorithms=["RS256"]),
        "HS256 with the public key as secret": jwt.encode(
            {"alg": "HS256", "kid": kid}, real,
            OctKey.import_key(json.dumps(
                client.get("/.well-known/jwks.json").get_json()["keys"][0]).encode()),
            algorithms=["HS256"]),
        "unsigned": f"{none_header}.{payload}.",
        "garbage": "not-a-jwt",
    }


def test_forged_or_unsigned_message_hints_are_refused(client, link_id, sign_in):
    sign_in("lisa")
    login = start_launch(client, link_id)
    for name, forged in _forged_hints(client, login).items():
        response = authorize(client, login, lti_message_hint=forged)
        assert_refused(response, 400, "was not issued by this platform")
    # The genuine hint still works: nothing above consumed it.
    assert authorize(client, login).status_code == 200


def test_an_expired_message_hint_is_refused(client, link_id, sign_in, monkeypatch):
    sign_in("lisa")
    login = start_launch(client, link_id)
    later = utcnow() + dt.timedelta(seconds=300 + 10 + 1)
    monkeypatch.setattr("gateway.http.lti.utcnow", lambda: later)
    assert_refused(authorize(client, login), 400, "has expired")


def test_within_the_leeway_the_hint_is_still_accepted(client, link_id, sign_in, monkeypatch):
    sign_in("lisa")
    login = start_launch(client, link_id)
    later = utcnow() + dt.timedelta(seconds=300 + 5)
    monkeypatch.setattr("gateway.http.lti.utcnow", lambda: later)
    assert authorize(client, login).status_code == 200


def test_a_deployment_revoked_after_login_initiation_is_refused(client, link_id, sign_in, database):
    sign_in("lisa")
    login = start_launch(client, link_id)
    with database.session_scope() as session:
        session.execute(update(AppClient).values(revoked_at=utcnow()))
    assert_refused(authorize(client, login), 400, "no longer deployed")


def test_post_authentication_requests_are_accepted(client, link_id, sign_in):
    sign_in("lisa")
    login = start_launch(client, link_id)
    response = client.post("/lti/authorize", data=auth_request(login, REDIRECT))
    assert response.status_code == 200
    assert posted_form(response)["action"] == REDIRECT
