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

from flask import (Blueprint, Response, current_app, g, redirect, render_template, request,
                   url_for)
from pylti1p3.contrib.flask import FlaskMessageLaunch, FlaskOIDCLogin, FlaskRequest
from pylti1p3.deep_link_resource import DeepLinkResource
from pylti1p3.exception import LtiException, OIDCException
from sqlalchemy import select

from gateway.database import get_redis, request_session, write_session
from gateway.http import context
from gateway.http.context import lti_runtime, lti_settings
from gateway.http.inputs import cap_form_size, refuse_nul
from gateway.lti import vocabulary as v
from gateway.lti.platform import launch as platform_launch
from gateway.lti.platform.errors import BadRequest, NotAllowed, PageError
from gateway.lti.platform.portal import portal_user, start_session
from gateway.lti.tool import launch as tool
from gateway.lti.tool import dynamic
from gateway.lti.tool.registry import LAUNCH_PATH, PICK_PATH, REGISTER_PATH
from gateway.lti.tool.storage import LaunchStorage, RedisCache, StoreCache
from gateway.store.lms import LmsLink, LmsPlatform
from gateway.store.lti import Deployment, ResourceLink, Tool
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


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _page(html: str, platform: LmsPlatform | None, status: int = 200,
          script_nonce: str | None = None, referrer_policy: str = "no-referrer") -> Response:
    """A tool-role page: framed by the LMS it answers (by any registered LMS while that is not
    known yet), by nobody else; no X-Frame-Options (see :mod:`gateway.http.headers`)."""
    # The stylesheet and script shipped in the package, as on every page; a page's own inline
    # script by its nonce.
    script = f"script-src 'self' 'nonce-{script_nonce}'" if script_nonce else "script-src 'self'"
    ancestors = _origin(platform.auth_url) if platform is not None else context.lms_origins()
    csp = (f"default-src 'none'; style-src 'self'; {script}; frame-ancestors {ancestors}; "
           "base-uri 'none'")
    return Response(html, status=status, mimetype="text/html",
                    headers={"Cache-Control": "no-store", "Content-Security-Policy": csp,
                             "Referrer-Policy": referrer_policy})


def _script_page(template: str, platform: LmsPlatform, referrer_policy: str = "no-referrer",
                 **values) -> Response:
    nonce = secrets.token_urlsafe(16)
    return _page(render_template(template, nonce=nonce, **values), platform, script_nonce=nonce,
                 referrer_policy=referrer_policy)


def _auto_post(action: str, fields: Mapping[str, str], platform: LmsPlatform) -> Response:
    return _script_page("auto_post.html", platform, action=action, fields=fields)


class _Login(FlaskOIDCLogin):
    """pylti1p3's login, redirecting to the gateway's one launch URL."""


class _Launch(FlaskMessageLaunch):
    """pylti1p3's launch validation after :func:`gateway.lti.tool.launch.verify_id_token`: the
    signature is not checked again (pylti1p3 would fetch the JWKS itself, without a refetch on an
    unknown kid and without leeway), and the client_id is the one the gateway's check chose
    (``azp`` with an ``aud`` array; pylti1p3 takes ``aud[0]``)."""

    client_id: str | None = None
    # The state was checked through LTI platform storage, not pylti1p3's cookie.
    state_checked: bool = False

    def get_client_id(self) -> str:
        """The audience the gateway verified."""
        return self.client_id or super().get_client_id()

    def validate_state(self) -> "_Launch":
        """pylti1p3's cookie check, unless platform storage stood in for the cookie."""
        return self if self.state_checked else super().validate_state()

    def validate_jwt_signature(self) -> "_Launch":
        """Done already, with the gateway's key cache."""
        return self


@blueprint.route("/lms/login", methods=["GET", "POST"])
def login() -> Response:
    """OIDC third-party initiated login from an LMS (Security Framework §5.1.1.1).

    Over HTTPS the answer is a page: with LTI platform storage (``lti_storage_target``) it keeps
    the state's binding in the LMS's storage before going on; without, it checks that the
    browser keeps the gateway's cookies inside the LMS's frame, and offers a new window if not.
    """
    storage = _storage()
    oidc = _Login(_pylti_request(), _conf(), launch_data_storage=storage)
    try:
        answer = oidc.get_redirect_object(lti_settings().url(LAUNCH_PATH))
    except (OIDCException, LtiException) as error:
        raise tool.LaunchRefused(f"This LMS is not registered with the gateway ({error}).") from error
    values = request.values
    query = parse_qs(urlsplit(answer.get_redirect_url()).query)
    state, target = query["state"][0], values.get("lti_storage_target")
    binding = tool.remember_state(storage.cache, state=state, nonce=query["nonce"][0],
                                  issuer=values.get("iss", ""), client_id=query["client_id"][0],
                                  storage_target=target)
    secure = lti_settings().issuer.startswith("https://")
    if not target and (not secure or values.get("lti1p3_new_window")):
        return answer.do_redirect()
    platform = tool.find_platform(request_session(), values.get("iss", ""),
                                  query["client_id"][0])
    new_window = {k: values[k] for k in ("iss", "login_hint", "target_link_uri", "client_id",
                                         "lti_message_hint", "lti_deployment_id") if k in values}
    settings = {"auth_url": answer.get_redirect_url(), "storage_target": target,
                "platform_origin": _origin(platform.auth_url), "binding": binding,
                "storage_key": tool.storage_key(state)}
    page = _script_page("lms_login.html", platform, settings=settings,
                        new_window_url=url_for("lms.login", lti1p3_new_window="1", **new_window))
    # pylti1p3's cookies (the state) ride on the page as they would on the redirect.
    oidc._cookie_service.update_response(page)
    return page


@blueprint.post(LAUNCH_PATH)
def launch() -> Response:
    """The LMS's authentication response: the id_token, checked, matched and brokered."""
    now = utcnow()
    settings = lti_settings()
    db = request_session()
    verified = tool.verify_id_token(db, lti_runtime().tool_keys, request.form.get("id_token", ""),
                                    now=now, leeway=settings.leeway,
                                    max_age=settings.id_token_lifetime)
    g.lms_platform = platform = verified.platform
    storage = _storage()
    state = request.form.get("state", "")
    checked = False
    if request.cookies.get(f"lti1p3-{state}") != state:
        # The browser did not keep the state cookie (an LMS frame blocking third-party cookies).
        target = tool.pending_storage_target(storage.cache, state)
        if target is None:
            raise tool.LaunchRefused("Your browser blocked the gateway inside the course page. "
                                     "Open the link in a new window.")
        binding = request.form.get("lti_storage_binding")
        if binding is None:
            # Read the binding back from the LMS's platform storage, then post again.
            # "same-origin": its post must carry the gateway's Origin, which browsers send as
            # "null" from a page whose policy is no-referrer.
            return _script_page("lms_storage_check.html", platform, referrer_policy="same-origin",
                                action=LAUNCH_PATH,
                                id_token=request.form.get("id_token", ""), state=state,
                                settings={"storage_target": target,
                                          "platform_origin": _origin(platform.auth_url),
                                          "storage_key": tool.storage_key(state)})
        # Only the gateway's own page posts the binding (a forged cross-site post has another
        # Origin), and only a browser holding it in the LMS's storage can have read it.
        if request.headers.get("Origin") != _origin(settings.issuer):
            raise tool.LaunchRefused("This launch was not sent by the gateway's page.")
        tool.check_binding(storage.cache, state, binding)
        checked = True
    tool.consume_state(db, storage.cache, state=state, claims=verified.claims, platform=platform,
                       now=now, leeway=settings.leeway)
    message = _Launch(_pylti_request(), _conf(), launch_data_storage=storage)
    message.client_id, message.state_checked = platform.client_id, checked
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
    return _to_app(user, initiation, now, platform, link.app_id)


def _chain_deep_linking(platform: LmsPlatform, message: "_Launch", app_tool: Tool,
                        deployment: Deployment, klass, person, now: dt.datetime) -> Response:
    """Send the LMS's teacher on to the app's own picker (the platform role's deep linking
    request), the LMS's launch waiting for its answer (:func:`answer_chained_deep_linking`)."""
    db = request_session()
    user = portal_user(db, person)
    initiation = platform_launch.begin_deep_linking(
        db, lti_runtime().keyring, lti_settings(), user=user, deployment_pk=deployment.id,
        class_sourced_id=klass.sourced_id, visibility_of=context.request_visibility, now=now)
    tool.remember_chain(_storage().cache, deployment_pk=deployment.id,
                        class_sourced_id=klass.sourced_id, user_sourced_id=person.sourced_id,
                        launch_id=message.get_launch_id(), platform_id=platform.id,
                        seconds=lti_settings().deep_linking_lifetime)
    return _to_app(user, initiation, now, platform, app_tool.app_id)


def answer_chained_deep_linking(outcome) -> Response | None:
    """The LMS's answer to a chained deep linking request (see
    :mod:`gateway.lti.tool.launch`): one ``LtiResourceLink`` per link the app's picker added,
    back at the gateway, auto-posted to the LMS's return URL; None for the portal's requests."""
    request_row = outcome.request
    if request_row is None:
        return None
    waiting = tool.take_chain(_storage().cache, deployment_pk=request_row.deployment_id,
                              class_sourced_id=request_row.class_sourced_id,
                              user_sourced_id=request_row.user_sourced_id)
    if waiting is None:
        return None
    db = request_session()
    platform = db.get(LmsPlatform, waiting["platform_id"])
    g.lms_platform = platform
    try:
        message = _Launch.from_cache(waiting["launch_id"], _pylti_request(), _conf(),
                                     launch_data_storage=_storage())
        deep_link = message.get_deep_link()
    except LtiException as error:
        raise BadRequest("The course's request has expired; add the content again from the "
                         "course.") from error
    app_id = db.execute(select(Tool.app_id).join(Deployment, Deployment.tool_id == Tool.id)
                        .where(Deployment.id == request_row.deployment_id)).scalar_one()
    items = []
    for link in db.execute(select(ResourceLink).where(
            ResourceLink.link_id.in_(outcome.link_ids))).scalars():
        items.append(DeepLinkResource().set_url(lti_settings().url(LAUNCH_PATH))
                     .set_title(link.title).set_custom_params({
                         tool.CUSTOM_APP: str(app_id), tool.CUSTOM_LINK: link.link_id}))
    return _auto_post(deep_link._deep_link_settings["deep_link_return_url"],
                      {"JWT": deep_link.get_response_jwt(items)}, platform)


def brokering_issuer(message_hint: str | None) -> str | None:
    """The issuer of the LMS that brokered the launch started with ``message_hint``."""
    return tool.launch_platform(_storage().cache, message_hint) if message_hint else None


def _to_app(user, initiation, now: dt.datetime, platform: LmsPlatform, app_id: int) -> Response:
    """Send the browser to the app's login, for the launch ``initiation`` of ``user`` into app
    ``app_id`` that ``platform`` brokered."""
    db = request_session()
    # The app's login comes back to the platform's authorization endpoint as this person: a
    # short session (the message hint's lifetime) in a cookie only that endpoint receives, sent
    # from inside the LMS's frame too over HTTPS (SameSite=None; Partitioned). It does not sign
    # the person in to the portal.
    settings = lti_settings()
    lifetime = settings.hint_lifetime + settings.leeway
    token = start_session(db, user, now, dt.timedelta(seconds=lifetime))
    if context.request_visibility(app_id, platform.district_id).shares_launch_platform():
        # Only then: by default a brokered launch writes nothing more than a portal launch.
        tool.remember_launch_platform(_storage().cache, initiation.params["lti_message_hint"],
                                      platform.issuer, lifetime)
    response = redirect(initiation.location, code=303)
    secure = settings.issuer.startswith("https://")
    response.set_cookie(context.LMS_LAUNCH_COOKIE, token, max_age=lifetime,
                        path=urlsplit(settings.authorization_endpoint).path, httponly=True,
                        secure=secure, samesite="None" if secure else "Lax",
                        partitioned=secure)
    return response


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
        found = tool.app_deployment(db, platform.district_id, chosen.app_id)
        if found is not None and found[0].deep_linking_uri:
            return _chain_deep_linking(platform, message, found[0], found[1], klass, person, now)
        # Deep Linking 2.0 §4.5: one LtiResourceLink back at the gateway, naming the app.
        item = (DeepLinkResource().set_url(lti_settings().url(LAUNCH_PATH))
                .set_title(chosen.name).set_custom_params({tool.CUSTOM_APP: str(chosen.app_id)}))
        deep_link = message.get_deep_link()
        return _auto_post(deep_link._deep_link_settings["deep_link_return_url"],
                          {"JWT": deep_link.get_response_jwt([item])}, platform)
    link = tool.lms_link(db, platform, claims, now)
    link.app_id = chosen.app_id
    return _broker(platform, claims, link, klass, person, now)


@blueprint.get(REGISTER_PATH)
def register() -> Response:
    """LTI Dynamic Registration started from the LMS (DR 1.0 §3): the LMS is kept pending until
    an admin approves it; the page tells the LMS to close its registration window."""
    district_id = dynamic.registration_district(request_session(), request.args.get("district", ""))
    platform = dynamic.register_with_lms(
        write_session(), context.lms_runtime().http, issuer=lti_settings().issuer,
        district_id=district_id,
        configuration_url=request.args.get("openid_configuration", ""),
        registration_token=request.args.get("registration_token"), now=utcnow())
    return _script_page("lms_registered.html", platform, platform_id=platform.id)


@blueprint.errorhandler(PageError)
def _page_error(error: PageError) -> Response:
    return _page(render_template("lti_error.html", error=error), g.get("lms_platform"),
                 error.status)
