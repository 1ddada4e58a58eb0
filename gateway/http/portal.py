"""The portal: sign in, see your classes' tools, launch them; sign out. Plain HTML pages.

Sessions live in the store (:class:`gateway.store.accounts.PortalSession`); Flask's signed cookie
holds only the session's random token and a CSRF token. A sign-out, a password change or
``gateway users revoke-sessions`` ends every session of the person on every worker, so a cookie
captured before is worth nothing after. Every form carries the CSRF token and every POST is
refused without it (:mod:`gateway.http.forms`, which also sets the cookie's attributes). Sign-in
attempts are throttled per account and per client address (:mod:`gateway.throttle`).
"""
from __future__ import annotations

from flask import Blueprint, Response, abort, redirect, render_template, request, session, url_for
from werkzeug.exceptions import RequestEntityTooLarge

from gateway.database import request_session, write_session
from gateway.http import context
from gateway.http.context import SESSION_TOKEN, lti_runtime, lti_settings, signed_in_user
from gateway.http.headers import PAGE_CSP
from gateway.http.forms import check_csrf, session_lifetime, signed_in_cookie
from gateway.http.inputs import cap_form_size, form_too_large_description, refuse_nul
from gateway.http.throttling import account_keys, login_keys, throttle_store
from gateway.lti.platform import icons, launch
from gateway.lti.platform.errors import BadRequest, FormTooLarge, LoginRequired, PageError
from gateway.lti.platform.portal import (DistrictChoiceNeeded, PortalUser, SignInFailed,
                                         authenticate, end_sessions, launchpad, portal_classes,
                                         start_session)
from gateway.store.models import utcnow
from gateway.throttle import Throttled, check_attempt, record_failure, record_success

blueprint = Blueprint("portal", __name__)

cap_form_size(blueprint)
refuse_nul(blueprint, BadRequest)


@blueprint.app_context_processor
def _page_context() -> dict[str, object]:
    """What every page may ask: whether someone is signed in (the error page offers the way back
    to the portal only then), read only when a page asks."""
    return {"signed_in": lambda: signed_in_user() is not None}


def _require_user() -> PortalUser:
    user = signed_in_user()
    if user is None:
        raise LoginRequired("Sign in first.")
    return user


def _html(body: str, status: int = 200) -> Response:
    return Response(body, status=status, mimetype="text/html",
                    headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"})


@blueprint.get("/login")
def login_form() -> Response:
    """The sign-in form."""
    if signed_in_user() is not None:
        return redirect(url_for("portal.portal"))
    return _html(render_template("login.html", username="", districts=None, error=None))


@blueprint.post("/login")
def login() -> Response:
    """Sign in with username and password (and district, when the username is ambiguous)."""
    check_csrf()
    username = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    district = request.form.get("district") or None
    keys = login_keys(username)
    try:
        # Before any password is checked: during a lockout a correct one is refused too.
        check_attempt(throttle_store(), keys, utcnow())
    except Throttled as throttled:
        response = _html(render_template(
            "login.html", username=username, districts=None,
            error=f"Too many failed sign-in attempts for this account or from this network. "
                  f"Try again in {throttled.retry_after} seconds."), 429)
        response.headers["Retry-After"] = str(throttled.retry_after)
        return response
    try:
        user = authenticate(request_session(), username, password, district)
    except DistrictChoiceNeeded as choice:
        return _html(render_template("login.html", username=username, districts=choice.districts,
                                     error=None))
    except SignInFailed:
        record_failure(throttle_store(writing=True), keys, utcnow())
        return _html(render_template("login.html", username=username, districts=None,
                                     error="Unknown username or wrong password."))
    store = throttle_store(writing=True)
    record_success(store, account_keys(username))
    token = start_session(store.session, user, utcnow(), session_lifetime())
    signed_in_cookie(SESSION_TOKEN, token)
    return redirect(url_for("portal.portal"), code=303)


@blueprint.post("/logout")
def logout() -> Response:
    """Sign out: every session of the person ends, on every worker (a cookie captured from any of
    their browsers no longer signs anyone in)."""
    check_csrf()
    user = signed_in_user()
    if user is not None:
        end_sessions(write_session(), user.id)
    session.clear()
    return redirect(url_for("portal.login_form"), code=303)


@blueprint.get("/portal")
def portal() -> Response:
    """The signed-in person's launchpad: the apps placed for them at their schools or
    district-wide, then their classes and the tools they may launch in each."""
    user = signed_in_user()
    if user is None:
        return redirect(url_for("portal.login_form"))
    classes = portal_classes(request_session(), user, context.request_visibility)
    apps = launchpad(request_session(), user, context.request_visibility)
    response = _html(render_template("portal.html", user=user, classes=classes, apps=apps))
    # Icons given as URLs load from their own origins, and only those; uploaded ones from here.
    urls = [link.icon_url for link in apps] + [link.icon_url for c in classes for link in c.links]
    response.headers["Content-Security-Policy"] = (
        PAGE_CSP + "; img-src " + " ".join(["'self'", *icons.icon_origins(urls)]))
    return response


@blueprint.get("/portal/icons/<client_id>")
def tool_icon(client_id: str) -> Response:
    """A tool's uploaded icon (public, like the tool's name on a tile)."""
    found = icons.stored_icon(request_session(), client_id)
    if found is None:
        abort(404)
    image, media_type = found
    return Response(image, mimetype=media_type, headers={"Cache-Control": "public, max-age=300"})


@blueprint.post("/portal/launch/<link_id>")
def start_launch(link_id: str) -> Response:
    """Launch a resource link: off to the tool's OIDC login initiation (Security Framework
    §5.1.1.1)."""
    check_csrf()
    initiation = launch.begin_launch(request_session(), lti_runtime().keyring, lti_settings(),
                                     user=_require_user(), link_id=link_id,
                                     visibility_of=context.request_visibility, now=utcnow())
    return redirect(initiation.location, code=303)


@blueprint.post("/portal/deep-linking")
def start_deep_linking() -> Response:
    """Start picking content for a class in a tool (Deep Linking 2.0 §4.4)."""
    check_csrf()
    try:
        deployment = int(request.form.get("deployment", ""))
    except ValueError as error:
        raise BadRequest("No tool was chosen.") from error
    initiation = launch.begin_deep_linking(
        request_session(), lti_runtime().keyring, lti_settings(), user=_require_user(),
        deployment_pk=deployment, class_sourced_id=request.form.get("class", ""),
        visibility_of=context.request_visibility, now=utcnow())
    return redirect(initiation.location, code=303)


@blueprint.errorhandler(PageError)
def _handle_page_error(error: PageError) -> Response:
    response = _html(render_template("lti_error.html", error=error), error.status)
    for name, value in error.headers.items():
        response.headers[name] = value
    return response


@blueprint.errorhandler(RequestEntityTooLarge)
def _handle_too_large(_error: RequestEntityTooLarge) -> Response:
    return _handle_page_error(FormTooLarge(form_too_large_description()))
