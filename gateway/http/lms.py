"""The gateway as an LTI 1.3 tool: where an LMS sends launches (``/lms/login``, ``/lms/launch``)
and where a teacher picks the app a link launches (``/lms/pick``).

Thin views over :mod:`gateway.lti.tool`: pylti1p3's Flask adapters read the request, the service
functions decide. Errors are pages (:class:`~gateway.lti.platform.errors.PageError`), shown in
the LMS's frame or window.
"""
from __future__ import annotations

import datetime as dt
import secrets
from typing import Mapping
from urllib.parse import parse_qs, urlsplit

from flask import Blueprint, Response, current_app, g, redirect, render_template, request, session
from pylti1p3.contrib.flask import FlaskMessageLaunch, FlaskOIDCLogin, FlaskRequest
from pylti1p3.deep_link_resource import DeepLinkResource
from pylti1p3.exception import LtiException, OIDCException

from gateway.database import get_redis, request_session
from gateway.http import context
from gateway.http.context import SESSION_TOKEN, lti_runtime, lti_settings
from gateway.http.inputs import cap_form_size, refuse_nul
from gateway.lti import vocabulary as v
from gateway.lti.platform import launch as platform_launch
from gateway.lti.platform.errors import BadRequest, NotAllowed, PageError
from gateway.lti.platform.portal import portal_user, start_session
from gateway.lti.tool import launch as tool
from gateway.lti.tool.registry import LAUNCH_PATH, PICK_PATH
from gateway.lti.tool.storage import LaunchStorage, RedisCache, StoreCache
from gateway.store.lms import LmsLink, LmsPlatform
from gateway.store.models import utcnow

blueprint = Blueprint("lms", __name__)

cap_form_size(blueprint)
refuse_nul(blueprint, BadRequest)


def _storage() -> LaunchStorage:
    client = get_redis()
    if client is not None:
        return LaunchStorage(RedisCache(client, str(current_app.config["REDIS_KEY_PREFIX"])))
    return LaunchStorage(StoreCache(request_session(), utcnow))


def _conf() -> tool.StoreToolConf:
    private_pem, public_pem = lti_runtime().keyring.signing_pems(request_session(), utcnow())
    return tool.StoreToolConf(request_session(), private_pem, public_pem)


def _pylti_request() -> FlaskRequest:
    # Behind a proxy the request may look like plain HTTP: the issuer says what the browser sees.
    return FlaskRequest(request_is_secure=lti_settings().issuer.startswith("https://"))


def _frame_ancestors(platform: LmsPlatform | None) -> str:
    """The LMS's origin may frame the tool's pages; nobody else may."""
    if platform is None:
        return "'none'"
    parts = urlsplit(platform.auth_url)
    return f"{parts.scheme}://{parts.netloc}"


def _page(html: str, platform: LmsPlatform | None, status: int = 200,
          script_nonce: str | None = None) -> Response:
    script = f"script-src 'nonce-{script_nonce}'; " if script_nonce else ""
    csp = (f"default-src 'none'; {script}frame-ancestors {_frame_ancestors(platform)}; "
           "base-uri 'none'")
    return Response(html, status=status, mimetype="text/html",
                    headers={"Cache-Control": "no-store", "Content-Security-Policy": csp,
                             "Referrer-Policy": "no-referrer",
                             # Browsers that know CSP ignore it; older ones get no framing at all
                             # rather than framing by anyone.
                             "X-Frame-Options": "SAMEORIGIN" if platform is None else "ALLOWALL"})


def _auto_post(action: str, fields: Mapping[str, str], platform: LmsPlatform) -> Response:
    nonce = secrets.token_urlsafe(16)
    return _page(render_template("auto_post.html", action=action, fields=fields, nonce=nonce),
                 platform, script_nonce=nonce)


class _Login(FlaskOIDCLogin):
    """pylti1p3's login, redirecting to the gateway's one launch URL."""


class _Launch(FlaskMessageLaunch):
    """pylti1p3's launch validation after :func:`gateway.lti.tool.launch.verify_id_token`: the
    signature is not checked again (pylti1p3 would fetch the JWKS itself, without a refetch on an
    unknown kid and without leeway), and the client_id is the one the gateway's check chose
    (``azp`` with an ``aud`` array; pylti1p3 takes ``aud[0]``)."""

    client_id: str | None = None

    def get_client_id(self) -> str:
        """The audience the gateway verified."""
        return self.client_id or super().get_client_id()

    def validate_jwt_signature(self) -> "_Launch":
        """Done already, with the gateway's key cache."""
        return self


@blueprint.route("/lms/login", methods=["GET", "POST"])
def login() -> Response:
    """OIDC third-party initiated login from an LMS (Security Framework §5.1.1.1)."""
    storage = _storage()
    oidc = _Login(_pylti_request(), _conf(), launch_data_storage=storage)
    try:
        answer = oidc.get_redirect_object(lti_settings().url(LAUNCH_PATH))
    except (OIDCException, LtiException) as error:
        raise tool.LaunchRefused(f"This LMS is not registered with the gateway ({error}).") from error
    query = parse_qs(urlsplit(answer.get_redirect_url()).query)
    tool.remember_state(storage.cache, state=query["state"][0], nonce=query["nonce"][0],
                        issuer=request.values.get("iss", ""), client_id=query["client_id"][0])
    return answer.do_redirect()


@blueprint.post(LAUNCH_PATH)
def launch() -> Response:
    """The LMS's authentication response: the id_token, checked, matched and brokered."""
    now = utcnow()
    settings = lti_settings()
    db = request_session()
    verified = tool.verify_id_token(db, lti_runtime().tool_keys, request.form.get("id_token", ""),
                                    now=now, leeway=settings.leeway,
                                    max_age=settings.id_token_lifetime)
    g.lms_platform = verified.platform
    storage = _storage()
    tool.consume_state(db, storage.cache, state=request.form.get("state", ""),
                       claims=verified.claims, platform=verified.platform, now=now,
                       leeway=settings.leeway)
    message = _Launch(_pylti_request(), _conf(), launch_data_storage=storage)
    message.client_id = verified.platform.client_id
    try:
        claims = message.get_launch_data()
    except LtiException as error:
        raise tool.LaunchRefused(f"The launch is not acceptable: {error}") from error
    return _continue(verified.platform, claims, message.get_launch_id(), now)


def _continue(platform: LmsPlatform, claims: Mapping[str, object], launch_id: str,
              now: dt.datetime) -> Response:
    db = request_session()
    person = tool.match_person(db, platform, claims, now)
    klass = tool.match_class(db, platform, claims, now)
    if person is None or klass is None:
        missing = "you" if person is None else "this course"
        raise tool.Unmatched(f"The district's records have no match for {missing} yet. Your "
                             "district's administrator can see this launch in the gateway's "
                             "list of unmatched LMS people and courses.")
    deep_linking = claims.get(v.MESSAGE_TYPE) == v.DEEP_LINKING_REQUEST
    link = None if deep_linking else tool.lms_link(db, platform, claims, now)
    if link is None or link.app_id is None:
        if not tool.is_instructor(claims):
            raise NotAllowed("Your teacher has not chosen the app for this link yet.")
        choices = tool.apps_in_class(db, platform.district_id, klass,
                                     context.request_visibility)
        return _page(render_template("lms_pick.html", choices=choices, klass=klass,
                                     launch_id=launch_id, action=PICK_PATH), platform)
    return _broker(platform, claims, link, klass, person, now)


def _broker(platform, claims, link: LmsLink, klass, person, now: dt.datetime) -> Response:
    db = request_session()
    title = str((claims.get(v.RESOURCE_LINK) or {}).get("title") or "")
    link_id = tool.gateway_link(db, platform, link, klass, title, now)
    user = portal_user(db, person)
    initiation = platform_launch.begin_launch(db, lti_runtime().keyring, lti_settings(),
                                              user=user, link_id=link_id,
                                              visibility_of=context.request_visibility, now=now)
    # The app's login comes back to the platform's authorization endpoint as this person: the
    # launch signs them in to a short session, as a portal sign-in would.
    lifetime = dt.timedelta(seconds=int(current_app.config["PORTAL_SESSION_LIFETIME_SECONDS"]))
    token = start_session(db, user, now, lifetime)
    session.clear()
    session[SESSION_TOKEN] = token
    return redirect(initiation.location, code=303)


@blueprint.post(PICK_PATH)
def pick() -> Response:
    """A teacher chose the app for a link, or (deep linking) the app to add to the course."""
    now = utcnow()
    storage = _storage()
    try:
        message = _Launch.from_cache(request.form.get("launch_id", ""), _pylti_request(), _conf(),
                                     launch_data_storage=storage)
        claims = message.get_launch_data()
    except LtiException as error:
        raise BadRequest("This choice has expired; launch again from your course.") from error
    db = request_session()
    platform = tool.platform_of(db, claims)
    g.lms_platform = platform
    if platform is None or not tool.is_instructor(claims):
        raise NotAllowed("Only the course's teachers choose its apps.")
    person = tool.match_person(db, platform, claims, now)
    klass = tool.match_class(db, platform, claims, now)
    choices = {c.app_id: c for c in tool.apps_in_class(db, platform.district_id, klass,
                                                       context.request_visibility)} \
        if person is not None and klass is not None else {}
    try:
        chosen = choices[int(request.form.get("app", ""))]
    except (KeyError, ValueError) as error:
        raise NotAllowed("That app is not available in this class.") from error
    if claims.get(v.MESSAGE_TYPE) == v.DEEP_LINKING_REQUEST:
        # Deep Linking 2.0 §4.5: one LtiResourceLink back at the gateway, naming the app.
        item = (DeepLinkResource().set_url(lti_settings().url(LAUNCH_PATH))
                .set_title(chosen.name).set_custom_params({tool.CUSTOM_APP: str(chosen.app_id)}))
        deep_link = message.get_deep_link()
        return _auto_post(deep_link._deep_link_settings["deep_link_return_url"],
                          {"JWT": deep_link.get_response_jwt([item])}, platform)
    link = tool.lms_link(db, platform, claims, now)
    link.app_id = chosen.app_id
    return _broker(platform, claims, link, klass, person, now)


@blueprint.errorhandler(PageError)
def _page_error(error: PageError) -> Response:
    return _page(render_template("lti_error.html", error=error), g.get("lms_platform"),
                 error.status)
