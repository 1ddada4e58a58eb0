"""The LTI 1.3 platform's endpoints: keys and discovery, the OIDC authorization endpoint, the
service token endpoint, NRPS, AGS, the deep linking return and dynamic registration.

Each view parses the request, calls one function of :mod:`gateway.lti.platform` and renders its
result; errors are :mod:`gateway.lti.platform.errors` classes, answered by this blueprint's one
handler (a plain page for browsers, a JSON body for tools). Absolute URLs come from
``GATEWAY_ISSUER`` (:class:`~gateway.lti.platform.settings.LtiSettings`), never from the Host
header.

What an app may see is decided in one place, :func:`gateway.http.http_context.request_visibility`.
"""
from __future__ import annotations

import secrets
from typing import Any, Mapping

import orjson
from flask import Blueprint, Flask, Response, render_template, request

from gateway.http.inputs import NUL_IN_BODY, refuse_nul
from gateway.database import locked_write_session, request_session
from gateway.http import context as http_context
from gateway.http.auth import authorize_request
from gateway.http.context import (LTI_RUNTIME, LtiRuntime, lti_runtime, lti_settings,
                                  signed_in_user)
from gateway.lti import vocabulary as v
from gateway.lti.keys import KeyRing, jwks_document
from gateway.lti.platform import ags, deeplinking, dynamic, launch, nrps, tokens
from gateway.lti.platform.errors import (BadRequest, InvalidClientMetadata, InvalidServiceRequest,
                                         LtiError, OAuthError, PageError, UnsupportedMediaType)
from gateway.lti.platform.messages import service_urls
from gateway.lti.platform.settings import (AUTHORIZE_PATH, DEEP_LINKING_RETURN_PATH, JWKS_PATH,
                                           OPENID_CONFIGURATION_PATH, REGISTER_PATH, TOKEN_PATH)
from gateway.lti.signed import JwksCache, http_fetcher
from gateway.lti.tool import grades
from gateway.nul import holds_nul
from gateway.oauth import AccessGrant
from gateway.store.models import utcnow

blueprint = Blueprint("lti", __name__)

_CONTEXT = "/lti/deployments/<deployment_id>/contexts/<path:context_id>"


# Endpoints a browser uses (errors are pages) and the token and registration endpoints (RFC 6749
# and RFC 7591 bodies); every other endpoint is a service (NRPS, AGS) or a public document.
_PAGE_ENDPOINTS = frozenset({"lti.authorize", "lti.deep_linking_return"})
_OAUTH_ENDPOINTS = frozenset({"lti.token", "lti.register"})


def _bad_characters(description: str) -> LtiError:
    """The error that refuses a request carrying a NUL character, in its endpoint's family."""
    if request.endpoint in _PAGE_ENDPOINTS:
        return BadRequest(description)
    if request.endpoint in _OAUTH_ENDPOINTS:
        return OAuthError(description)
    return InvalidServiceRequest(description)


refuse_nul(blueprint, _bad_characters)


@blueprint.record_once
def _init_runtime(state) -> None:
    """Build the key ring and the tool key cache when the blueprint is registered."""
    app: Flask = state.app
    config = app.config
    app.extensions[LTI_RUNTIME] = LtiRuntime(
        keyring=KeyRing(config["SECRET_KEY"]),
        tool_keys=JwksCache(http_fetcher(float(config["LTI_JWKS_FETCH_TIMEOUT_SECONDS"])),
                           cache_seconds=float(config["LTI_JWKS_CACHE_SECONDS"]),
                           min_refetch_seconds=float(config["LTI_JWKS_MIN_REFETCH_SECONDS"])))


def _json(body: Any, status: int = 200, *, mimetype: str = "application/json",
          headers: Mapping[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status=status, mimetype=mimetype, headers=dict(headers or {}))


@blueprint.errorhandler(LtiError)
def _handle_lti_error(error: LtiError) -> Response:
    if isinstance(error, PageError):
        response = Response(render_template("lti_error.html", error=error), status=error.status,
                            mimetype="text/html")
    else:
        response = _json(error.to_body(), error.status)
    if isinstance(error, OAuthError):
        response.headers["Cache-Control"] = "no-store"
        response.headers["Pragma"] = "no-cache"
    for name, value in error.headers.items():
        response.headers[name] = value
    return response


# -- keys and discovery -----------------------------------------------------------------------

@blueprint.get(JWKS_PATH)
def jwks() -> Response:
    """The platform's public signing keys (Security Framework §6.3), retired ones included until
    every token they signed has expired."""
    document = jwks_document(request_session(), utcnow(), lti_settings().key_window)
    if not document["keys"]:
        # First start: make the signing key now, so tools can fetch it before the first launch.
        lti_runtime().keyring.current(request_session(), utcnow())
        document = jwks_document(request_session(), utcnow(), lti_settings().key_window)
    # Short caching: a tool that caches longer misses a new key after a rotation.
    return _json(document, headers={"Cache-Control": "public, max-age=60"})


@blueprint.get(OPENID_CONFIGURATION_PATH)
def openid_configuration() -> Response:
    """The OpenID Provider configuration with the LTI platform configuration (DR §3.4)."""
    return _json(dynamic.openid_configuration(lti_settings()))


# -- launches ---------------------------------------------------------------------------------

@blueprint.route(AUTHORIZE_PATH, methods=["GET", "POST"])
def authorize() -> Response:
    """The OIDC authorization endpoint (Security Framework §5.1.1.2): answers a tool's
    authentication request with a page that form-posts the id_token to the tool."""

    params = request.form if request.method == "POST" else request.args
    user, framed_by, lms_issuer = signed_in_user(), "'none'", None
    brokered = http_context.lms_launch_user()
    if brokered is not None and (user is None or user.id == brokered.id):
        from gateway.http.lms import brokering_issuer

        # A launch an LMS brokered: it runs inside the LMS's frame (LTI tool role).
        user, framed_by, lms_issuer = brokered, http_context.lms_origins(), brokering_issuer(
            params.get("lti_message_hint"))
    answer = launch.authorize(request_session(), lti_runtime().keyring, lti_settings(),
                              params=params.to_dict(), user=user,
                              visibility_of=http_context.request_visibility, now=utcnow(),
                              lms_issuer=lms_issuer)
    fields = {"id_token": answer.id_token}
    if answer.state is not None:
        fields["state"] = answer.state
    return auto_post(answer.redirect_uri, fields, frame_ancestors=framed_by)


def auto_post(action: str, fields: Mapping[str, str], *,
              frame_ancestors: str = "'none'") -> Response:
    """A page that posts ``fields`` to ``action`` as soon as it loads (a button without
    JavaScript). Its CSP lets only that one inline script run and forbids framing (but by
    ``frame_ancestors``: the registered LMSs, for a launch one of them brokered); it sets no
    ``form-action``, which browsers also apply to the redirects a tool answers the post with."""
    nonce = secrets.token_urlsafe(16)
    csp = (f"default-src 'none'; script-src 'nonce-{nonce}'; frame-ancestors {frame_ancestors}; "
           "base-uri 'none'")
    return Response(render_template("auto_post.html", action=action, fields=fields, nonce=nonce),
                    mimetype="text/html",
                    headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
                             "Content-Security-Policy": csp})


@blueprint.post(DEEP_LINKING_RETURN_PATH)
def deep_linking_return() -> Response:
    """Where tools post deep linking responses (Deep Linking 2.0 §4.5)."""
    outcome = deeplinking.receive_response(request_session(), lti_runtime().tool_keys, lti_settings(),
                                           token=request.form.get("JWT", ""), now=utcnow())
    from gateway.http.lms import answer_chained_deep_linking

    # A request the gateway made for an LMS's teacher: the LMS gets the answer.
    chained = answer_chained_deep_linking(outcome)
    if chained is not None:
        return chained
    return Response(render_template("deep_linking_done.html", outcome=outcome,
                                    portal_url=lti_settings().portal_url),
                    mimetype="text/html", headers={"Cache-Control": "no-store"})


# -- service tokens ---------------------------------------------------------------------------

@blueprint.post(TOKEN_PATH)
def token() -> Response:
    """Issue a service token to a tool that authenticates with a signed JWT (RFC 7523)."""
    issued = tokens.issue_service_token(request_session(), lti_runtime().tool_keys, lti_settings(),
                                        form=request.form.to_dict(), now=utcnow())
    return _json(issued.to_body(), headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


def _grant(*scopes: str) -> AccessGrant:
    return authorize_request(scopes, tokens.SERVICES)


def _context(grant: AccessGrant, deployment_id: str, context_id: str) -> tokens.ServiceContext:
    """The service context of the request's path (every NRPS and AGS view goes through here)."""
    return tokens.resolve_context(request_session(), grant, deployment_id, context_id,
                                  http_context.request_visibility)


def _urls(deployment_id: str, context_id: str) -> tuple[str, str]:
    return service_urls(lti_settings().issuer, deployment_id, context_id)


def _link(next_url: str | None) -> dict[str, str]:
    return {"Link": f'<{next_url}>; rel="next"'} if next_url else {}


def _body(*media_types: str) -> Any:
    """The request's JSON body, which must be of one of ``media_types`` (or plain JSON)."""
    if request.mimetype not in (*media_types, "application/json"):
        raise UnsupportedMediaType(f"Send the body as {media_types[0]}.")
    try:
        body = orjson.loads(request.get_data())
    except orjson.JSONDecodeError as error:
        raise InvalidServiceRequest("The body is not valid JSON.") from error
    if holds_nul(body):
        raise InvalidServiceRequest(NUL_IN_BODY)
    return body


# -- NRPS -------------------------------------------------------------------------------------

@blueprint.get(_CONTEXT + "/memberships")
def memberships(deployment_id: str, context_id: str) -> Response:
    """The context membership service (NRPS 2.0 §2)."""
    context = _context(_grant(v.SCOPE_NRPS), deployment_id, context_id)
    url, _ = _urls(deployment_id, context_id)
    args = request.args
    page = nrps.list_members(request_session(), context, lti_settings(), url=url,
                             role=args.get("role"), limit=args.get("limit"),
                             offset=args.get("offset"), rlid=args.get("rlid"))
    return _json(page.body, mimetype=v.NRPS_MEMBERSHIPS, headers=_link(page.next_url))


# -- AGS --------------------------------------------------------------------------------------

_READ_ITEMS = (v.SCOPE_LINEITEM, v.SCOPE_LINEITEM_READONLY)


@blueprint.get(_CONTEXT + "/lineitems")
def line_items(deployment_id: str, context_id: str) -> Response:
    """The tool's line items in the context (AGS 2.0 §3.2.4)."""
    context = _context(_grant(*_READ_ITEMS), deployment_id, context_id)
    _, url = _urls(deployment_id, context_id)
    args = request.args
    page = ags.list_line_items(request_session(), context, lti_settings(), url=url,
                               resource_link_id=args.get("resource_link_id"),
                               resource_id=args.get("resource_id"), tag=args.get("tag"),
                               limit=args.get("limit"), offset=args.get("offset"))
    return _json(page.items, mimetype=v.AGS_LINEITEMS, headers=_link(page.next_url))


@blueprint.post(_CONTEXT + "/lineitems")
def create_line_item(deployment_id: str, context_id: str) -> Response:
    """Add a line item (AGS 2.0 §3.2.5)."""
    context = _context(_grant(v.SCOPE_LINEITEM), deployment_id, context_id)
    _, url = _urls(deployment_id, context_id)
    created = ags.create_line_item(locked_write_session(), context, _body(v.AGS_LINEITEM), url=url,
                                   now=utcnow())
    return _json(created, 201, mimetype=v.AGS_LINEITEM, headers={"Location": created["id"]})


@blueprint.get(_CONTEXT + "/lineitems/<item_id>")
def line_item(deployment_id: str, context_id: str, item_id: str) -> Response:
    """One line item (AGS 2.0 §3.2.3)."""
    context = _context(_grant(*_READ_ITEMS), deployment_id, context_id)
    _, url = _urls(deployment_id, context_id)
    item = ags.find_line_item(request_session(), context, item_id, shared=True)
    return _json(ags.line_item_json(item, url), mimetype=v.AGS_LINEITEM)


@blueprint.put(_CONTEXT + "/lineitems/<item_id>")
def update_line_item(deployment_id: str, context_id: str, item_id: str) -> Response:
    """Update a line item (AGS 2.0 §3.2.6)."""
    context = _context(_grant(v.SCOPE_LINEITEM), deployment_id, context_id)
    _, url = _urls(deployment_id, context_id)
    updated = ags.update_line_item(locked_write_session(), context, item_id, _body(v.AGS_LINEITEM),
                                   url=url, now=utcnow())
    return _json(updated, mimetype=v.AGS_LINEITEM)


@blueprint.delete(_CONTEXT + "/lineitems/<item_id>")
def delete_line_item(deployment_id: str, context_id: str, item_id: str) -> Response:
    """Delete a line item (AGS 2.0 §3.2.7)."""
    context = _context(_grant(v.SCOPE_LINEITEM), deployment_id, context_id)
    ags.delete_line_item(locked_write_session(), context, item_id, utcnow())
    return Response(status=204)


@blueprint.post(_CONTEXT + "/lineitems/<item_id>/scores")
def post_score(deployment_id: str, context_id: str, item_id: str) -> Response:
    """Publish a score (AGS 2.0 §3.4)."""
    context = _context(_grant(v.SCOPE_SCORE), deployment_id, context_id)
    body, now = _body(v.AGS_SCORE), utcnow()
    result = ags.post_score(locked_write_session(), context, item_id, body, now)
    response = Response(status=204)
    # On a link an LMS launched, the score goes on to the LMS's gradebook too.
    forward = grades.queue_score(request_session(), tool_id=context.tool.id,
                                 district_id=context.deployment.district_id,
                                 line_item_sourced_id=item_id,
                                 student_sourced_id=result.student_sourced_id, score=body, now=now)
    if forward is not None:
        http_context.forward_grades_after(response, [forward])
    return response


@blueprint.get(_CONTEXT + "/lineitems/<item_id>/results")
def results(deployment_id: str, context_id: str, item_id: str) -> Response:
    """The results of a line item (AGS 2.0 §3.3)."""
    context = _context(_grant(v.SCOPE_RESULT_READONLY), deployment_id, context_id)
    _, url = _urls(deployment_id, context_id)
    args = request.args
    page = ags.list_results(request_session(), context, lti_settings(), item_id,
                            lineitems_url=url, user_id=args.get("user_id"),
                            limit=args.get("limit"), offset=args.get("offset"))
    return _json(page.items, mimetype=v.AGS_RESULTS, headers=_link(page.next_url))


# -- dynamic registration ---------------------------------------------------------------------

@blueprint.post(REGISTER_PATH)
def register() -> Response:
    """LTI Dynamic Registration (DR §3.5): the tool is stored pending an admin's approval."""
    try:
        body = orjson.loads(request.get_data())
    except orjson.JSONDecodeError:
        body = None
    if holds_nul(body):
        raise InvalidClientMetadata(NUL_IN_BODY)
    response = dynamic.register_dynamically(request_session(), lti_settings(),
                                            authorization=request.headers.get("Authorization"),
                                            body=body, now=utcnow())
    return _json(response, headers={"Cache-Control": "no-store"})

