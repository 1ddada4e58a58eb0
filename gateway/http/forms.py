"""What every HTML form of the gateway shares: the CSRF token (synchronizer token pattern) and
the Origin check, for the portal and the admin console alike.

The token lives in Flask's signed session cookie; every form carries it and every POST is refused
without it. A browser that says where a POST comes from (``Origin``) must name this gateway: the
public address (``GATEWAY_ISSUER``) or the address the request came to, since the same server
answers at every address it listens on (quickstart prints http://127.0.0.1:5000 while the issuer
says localhost). A page of another site posting here has its own origin, never the address it
posts to.
"""
from __future__ import annotations

import datetime as dt
import hmac
import secrets
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, current_app, request, session
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface

from gateway.lti.platform.errors import CsrfFailure

SESSION_CSRF = "csrf_token"


def csrf_token() -> str:
    """This session's CSRF token (made on first use)."""
    token = session.get(SESSION_CSRF)
    if not token:
        token = session[SESSION_CSRF] = secrets.token_urlsafe(32)
    return token


def renew_csrf_token() -> None:
    """A fresh token, after a sign-in: nothing from before (a planted token) carries over."""
    session[SESSION_CSRF] = secrets.token_urlsafe(32)


def check_csrf() -> None:
    """Refuse a POST whose form does not carry this session's CSRF token, or that comes from
    another origin (when the browser says where it comes from)."""
    expected = session.get(SESSION_CSRF)
    sent = request.form.get(SESSION_CSRF, "")
    if not expected or not hmac.compare_digest(expected.encode(), sent.encode()):
        raise CsrfFailure("The form has expired or was not sent from this site; reload and try again.")
    origin = request.headers.get("Origin")
    if origin and origin != "null" and origin.rstrip("/") not in own_origins():
        raise CsrfFailure("The form was sent from another site.")


def own_origins() -> set[str]:
    """The origins a form of this gateway is sent from (see the module's docstring)."""
    issuer = urlsplit(current_app.config["ISSUER"])
    return {f"{issuer.scheme}://{issuer.netloc}", f"{request.scheme}://{request.host}"}


def init_app(app: Flask) -> None:
    """Session cookie attributes for the gateway's pages (unless the deployment set them), and the
    token for the templates.

    The cookie is HttpOnly, SameSite=Lax (so it rides along when a tool sends the browser back to
    the authorization endpoint, a top-level GET, but not on cross-site POSTs) and Secure when the
    gateway is served over HTTPS (``GATEWAY_ISSUER`` starting with ``https://``)."""
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    if not app.config.get("SESSION_COOKIE_SAMESITE"):
        app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    if str(app.config.get("ISSUER", "")).startswith("https://"):
        app.config["SESSION_COOKIE_SECURE"] = True
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.session_interface = CookieSessionOnDemand()


class CookieSessionOnDemand(SecureCookieSessionInterface):
    """Flask's signed cookie session, whose signer is built only for a request that carries the
    cookie: an API client (a bearer token, no cookie) gets an empty session at once. Flask builds
    the signer first, on every request, and that was a sizeable part of an API request's cost."""

    def open_session(self, app: Flask, request: Any) -> SecureCookieSession | None:
        """The request's session: empty without the cookie, else Flask's."""
        if app.secret_key and self.get_cookie_name(app) not in request.cookies:
            return self.session_class()
        return super().open_session(app, request)


def session_lifetime() -> dt.timedelta:
    """How long a sign-in lasts (portal and console alike)."""
    return dt.timedelta(seconds=int(current_app.config["PORTAL_SESSION_LIFETIME_SECONDS"]))


def signed_in_cookie(key: str, token: str) -> None:
    """After a sign-in: a fresh cookie holding only the new session's ``token`` under ``key`` and
    a new CSRF token; nothing from before (a planted CSRF token) carries over."""
    session.clear()
    session[key] = token
    renew_csrf_token()
