"""The signed cookie session is opened only for requests that carry its cookie: an API client's
request (a bearer token, no cookie) costs no signer, and a browser's session still round-trips."""
from __future__ import annotations

from flask import session
from flask.sessions import SecureCookieSessionInterface

from gateway.http.forms import CookieSessionOnDemand


def test_an_api_request_builds_no_signer_and_sets_no_cookie(app, load_small, api_for,
                                                            monkeypatch):
    load_small()
    api = api_for()
    built = []
    real = SecureCookieSessionInterface.get_signing_serializer
    monkeypatch.setattr(SecureCookieSessionInterface, "get_signing_serializer",
                        lambda self, flask_app: built.append(1) or real(self, flask_app))
    response = api.get("/users", limit=2)
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    assert built == []
    assert isinstance(app.session_interface, CookieSessionOnDemand)


def test_a_browser_session_still_round_trips_and_a_forged_cookie_is_empty(app):
    @app.get("/_test/remember")
    def remember():
        session["seen"] = "yes"
        return "ok"

    @app.get("/_test/recall")
    def recall():
        return session.get("seen", "nothing")

    browser = app.test_client()
    assert "Set-Cookie" in browser.get("/_test/remember").headers
    assert browser.get("/_test/recall").text == "yes"
    forger = app.test_client()
    forger.set_cookie(app.config.get("SESSION_COOKIE_NAME", "session"), "eyJzZWVuIjoieWVzIn0.forged")
    assert forger.get("/_test/recall").text == "nothing"
