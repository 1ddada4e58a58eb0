"""The OAuth 2.0 token endpoint (RFC 6749 §4.4 client credentials), served by authlib's Flask
``AuthorizationServer`` with the gateway's grant, clients and tokens from ``gateway.oauth``."""
from __future__ import annotations

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749.errors import InsecureTransportError, InvalidRequestError, OAuth2Error
from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from gateway.http.inputs import cap_form_size, form_too_large_description, refuse_nul
from gateway.database import request_session
from gateway.http.throttling import client_keys, throttle_store
from gateway.oauth import server as oauth_server
from gateway.oauth.credentials import presented_credentials
from gateway.oauth.errors import TooManyFailedAttempts
from gateway.store.models import utcnow
from gateway.throttle import Throttled, check_attempt, record_failure, record_success

blueprint = Blueprint("oauth", __name__)

EXTENSION = "gateway.oauth"


@blueprint.record_once
def _init_server(state) -> None:
    """Build the app's authorization server when the blueprint is registered."""
    server = AuthorizationServer()
    server.init_app(
        state.app,
        query_client=lambda client_id: oauth_server.query_client(request_session(), client_id),
        save_token=_save_token,
    )
    # Read at issuance, so the setting can change without rebuilding the server.
    oauth_server.configure_server(
        server, lifetime=lambda: int(current_app.config["TOKEN_LIFETIME_SECONDS"]))
    state.app.extensions[EXTENSION] = server


cap_form_size(blueprint)
refuse_nul(blueprint, lambda description: InvalidRequestError(description=description))


@blueprint.errorhandler(OAuth2Error)
def _handle_oauth_error(error: OAuth2Error) -> Response:
    """RFC 6749 §5.2 bodies for the errors raised before authlib takes the request."""
    return current_app.extensions[EXTENSION].handle_error_response(None, error)


@blueprint.errorhandler(RequestEntityTooLarge)
def _handle_too_large(_error: RequestEntityTooLarge) -> Response:
    """An oversize body: 413 with an RFC 6749 §5.2 body (invalid_request, the closest code)."""
    return _handle_oauth_error(InvalidRequestError(description=form_too_large_description(),
                                                   status_code=413))


def _save_token(token: dict, oauth_request) -> None:
    session = request_session()
    # The client was read in this transaction. SQLite cannot turn a read transaction into a write
    # once another worker has written meanwhile (SQLITE_BUSY_SNAPSHOT, a 500 at once): the token
    # is written in a transaction of its own, which waits for the write lock instead.
    session.commit()
    oauth_server.save_token(session, token, oauth_request, utcnow())


@blueprint.post("/oauth/token")
def token():
    """Issue an access token to an app that authenticates with its client credentials."""
    server: AuthorizationServer = current_app.extensions[EXTENSION]
    try:
        # authlib refuses plain HTTP (except to loopback) outside its error handling, which would
        # surface as a 500; answer it as the RFC 6749 §5.2 error it is.
        InsecureTransportError.check(request.url)
        # Without grant_type authlib reports "grant_type=None is not supported"; the parameter is
        # missing, which §5.2 calls invalid_request.
        if not request.form.get("grant_type"):
            raise InvalidRequestError("Missing 'grant_type' parameter.")
    except OAuth2Error as error:
        return server.handle_error_response(None, error)
    keys = client_keys(presented_credentials(request.headers.get("Authorization"), request.form)[0])
    try:
        # Before the secret is checked: during a lockout a correct one is refused too.
        check_attempt(throttle_store(), keys, utcnow())
    except Throttled as throttled:
        return server.handle_error_response(None, TooManyFailedAttempts(throttled.retry_after))
    response = server.create_token_response()
    # 401 is invalid_client, and only that (ClientCredentialsGrant answers every failed client
    # authentication alike): a failure to count. 200 is a success that clears the count.
    if response.status_code == 401:
        record_failure(throttle_store(writing=True), keys, utcnow())
    elif response.status_code == 200:
        # The token was just written in this transaction (see _save_token): it is a write
        # transaction already.
        record_success(throttle_store(), keys)
    return response
