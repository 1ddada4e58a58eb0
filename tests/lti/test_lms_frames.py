"""Inside the LMS's frame: the tool role's pages may be framed by the registered LMSs only;
over HTTPS the login checks the browser keeps cookies in the frame (else offers a new window);
LTI platform storage stands in for the state cookie when the LMS offers it; the brokered
launch's session cookie is SameSite=None, Secure, Partitioned and reaches only the
authorization endpoint, whose answer the LMS may frame."""
from __future__ import annotations

import json
import re
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest

from gateway import create_app
from gateway.http.context import LMS_LAUNCH_COOKIE

from test_lms_launch import CLIENT, DEPLOYMENT, ISSUER, claims_for, login, post_launch
from test_lms_launch import lms_key  # noqa: F401  (the LMS registered in d1)

LOGIN = {"iss": ISSUER, "login_hint": "bart", "target_link_uri": "https://gw.test/lms/launch",
         "client_id": CLIENT, "lti_deployment_id": DEPLOYMENT}


def settings_of(page: str, element: str) -> dict:
    """The JSON a tool-role page hands its script."""
    found = re.search(rf'<script nonce="[^"]+" id="{element}" type="application/json">(.*?)</script>',
                      page, re.S)
    return json.loads(unescape(found.group(1)))


def test_pages_are_framed_by_the_registered_lms_only(client, lms_key, tool, app_id):
    request = login(client)
    response = post_launch(client, lms_key.sign(claims_for(request, app_id, sub="nobody", **{
        "https://purl.imsglobal.org/spec/lti/claim/lis": {}})), request["state"])
    assert response.status_code == 403
    assert response.headers["Content-Security-Policy"] == (
        "default-src 'none'; style-src 'self'; script-src 'self'; "
        "frame-ancestors https://lms.example; base-uri 'none'")
    assert "X-Frame-Options" not in response.headers
    # An error before the LMS is known: any registered LMS may frame it.
    refused = client.post("/lms/launch", data={"id_token": "x.y.z", "state": "s"})
    assert refused.status_code == 400
    assert "frame-ancestors https://lms.example;" in refused.headers["Content-Security-Policy"]


def test_brokered_authorization_answer_is_frameable_by_the_lms(client, lms_key, tool, app_id):
    request = login(client)
    response = post_launch(client, lms_key.sign(claims_for(request, app_id)), request["state"])
    assert response.status_code == 303
    cookie = client.get_cookie(LMS_LAUNCH_COOKIE, path="/lti/authorize")
    assert cookie is not None and cookie.http_only
    # Not a portal sign-in: the portal still asks who you are.
    assert client.get("/portal").status_code == 302
    app_login = {k: v[0] for k, v in parse_qs(urlsplit(response.headers["Location"]).query).items()}
    answer = client.get("/lti/authorize", query_string={
        "scope": "openid", "response_type": "id_token", "response_mode": "form_post",
        "prompt": "none", "client_id": tool.client_id, "redirect_uri": "https://tool.example/math/launch",
        "login_hint": app_login["login_hint"], "lti_message_hint": app_login["lti_message_hint"],
        "nonce": "n-1", "state": "s"})
    assert answer.status_code == 200, answer.text
    assert "frame-ancestors https://lms.example;" in answer.headers["Content-Security-Policy"]
    assert "X-Frame-Options" not in answer.headers


@pytest.fixture
def https_app(app, database_url, tmp_path, jwks_server):
    """The gateway served over HTTPS (its issuer), on the same database."""
    other = create_app({"TESTING": True, "DATABASE_URL": database_url, "SECRET_KEY": "test-secret-key",
                        "INSTANCE_PATH": str(tmp_path / "https"), "ISSUER": "https://gw.test"})
    other.extensions["gateway.lti"].tool_keys.fetch = jwks_server
    yield other
    other.extensions["gateway.db"].dispose()


def test_https_login_checks_cookies_and_offers_a_new_window(https_app, lms_key):
    client = https_app.test_client()
    response = client.get("/lms/login", query_string=LOGIN, base_url="https://gw.test")
    assert response.status_code == 200 and response.mimetype == "text/html"
    settings = settings_of(response.text, "lms-login")
    assert settings["auth_url"].startswith(ISSUER + "/auth?") and settings["storage_target"] is None
    assert "Open it in a new window" in response.text
    new_window = re.search(r'href="([^"]+)" target="_blank"', response.text).group(1)
    assert "lti1p3_new_window=1" in unescape(new_window)
    csp = response.headers["Content-Security-Policy"]
    assert re.fullmatch(r"default-src 'none'; style-src 'self'; script-src 'self' 'nonce-[^']+'; "
                        r"frame-ancestors https://lms.example; base-uri 'none'", csp)
    # pylti1p3's state cookie, made for a third-party frame.
    state = parse_qs(urlsplit(settings["auth_url"]).query)["state"][0]
    header = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(f"lti1p3-{state}=")]
    assert header and "SameSite=None" in header[0] and "Secure" in header[0]
    # The new window (top level, cookies kept) is sent straight on.
    opened = client.get("/lms/login", query_string={**LOGIN, "lti1p3_new_window": "1"},
                        base_url="https://gw.test")
    assert opened.status_code == 302


def storage_login(client, base_url=None):
    kwargs = {"base_url": base_url} if base_url else {}
    response = client.get("/lms/login", query_string={**LOGIN, "lti_storage_target": "_parent"},
                          **kwargs)
    assert response.status_code == 200, response.text
    settings = settings_of(response.text, "lms-login")
    query = {k: v[0] for k, v in parse_qs(urlsplit(settings["auth_url"]).query).items()}
    assert settings["storage_target"] == "_parent" and settings["platform_origin"] == ISSUER
    assert settings["storage_key"] == "gateway_state_" + query["state"]
    return settings, query


def test_platform_storage_stands_in_for_the_blocked_cookie(app, lms_key, tool, app_id):
    browser = app.test_client()
    settings, request = storage_login(browser)
    # The LMS's frame blocks the gateway's cookies: the launch arrives without them.
    cookieless = app.test_client()
    token = lms_key.sign(claims_for(request, app_id))
    check = post_launch(cookieless, token, request["state"])
    assert check.status_code == 200
    asked = settings_of(check.text, "lms-check")
    assert asked == {"storage_target": "_parent", "platform_origin": ISSUER,
                     "storage_key": settings["storage_key"]}
    # The page read the binding back from the LMS's storage and posts again, from our origin.
    launched = cookieless.post("/lms/launch", data={
        "id_token": token, "state": request["state"], "lti_storage_binding": settings["binding"]},
        headers={"Origin": "http://gateway.test"})
    assert launched.status_code == 303, launched.text


@pytest.mark.parametrize("origin, binding, reason", [
    ("https://evil.example", None, "not sent by the gateway"),
    (None, None, "not sent by the gateway"),
    ("http://gateway.test", "not-the-binding", "could not be checked"),
])
def test_platform_storage_refuses_a_forged_or_wrong_binding(app, lms_key, tool, app_id, origin,
                                                            binding, reason):
    settings, request = storage_login(app.test_client())
    headers = {"Origin": origin} if origin else {}
    response = app.test_client().post("/lms/launch", data={
        "id_token": lms_key.sign(claims_for(request, app_id)), "state": request["state"],
        "lti_storage_binding": binding or settings["binding"]}, headers=headers)
    assert response.status_code == 400 and reason in response.text


def test_blocked_cookie_without_platform_storage_says_open_a_new_window(client, lms_key, tool,
                                                                        app_id, app):
    request = login(client)
    response = post_launch(app.test_client(), lms_key.sign(claims_for(request, app_id)),
                           request["state"])
    assert response.status_code == 400
    assert "Open the link in a new window" in response.text
