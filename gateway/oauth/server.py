"""The token endpoint's rules, as authlib pieces free of the web framework: the client model, the
client credentials grant (RFC 6749 §4.4) and the bearer token generator (RFC 6750).

``gateway.http.oauth`` plugs these into authlib's Flask ``AuthorizationServer``.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Callable

from authlib.oauth2.rfc6749 import AuthorizationServer, ClientMixin, OAuth2Request, grants
from authlib.oauth2.rfc6749.errors import (InvalidClientError, InvalidRequestError,
                                           InvalidScopeError, UnauthorizedClientError)
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from sqlalchemy.orm import Session

from gateway.oauth.credentials import generate_access_token, verify_client_secret
from gateway.oauth.scopes import token_scope
from gateway.oauth.service import find_active_client, record_token
from gateway.sharing.contract import ContractWindow, contract_refusal, contract_window
from gateway.store.apps import AppClient
from gateway.store.models import utcnow

# RFC 6749 §2.3.1: HTTP Basic must be supported; form fields are allowed for clients that cannot.
TOKEN_ENDPOINT_AUTH_METHODS = ("client_secret_basic", "client_secret_post")
GRANT_TYPE = "client_credentials"


class OAuthClient(ClientMixin):
    """An :class:`AppClient` row as authlib's token endpoint sees it."""

    def __init__(self, record: AppClient, contract: ContractWindow | None = None) -> None:
        self.record = record
        # The contract window of the district's sharing policy for the app, if it sets one.
        self.contract = contract

    def contract_refusal(self, today: dt.date) -> str | None:
        """Why no token may be issued on ``today`` (outside the contract window), else None."""
        if self.contract is None:
            return None
        return contract_refusal(*self.contract, today, token_endpoint=True)

    def get_client_id(self) -> str:
        """The public client identifier."""
        return self.record.client_id

    def check_client_secret(self, client_secret: str) -> bool:
        """Whether ``client_secret`` matches the stored hash."""
        return verify_client_secret(client_secret, self.record.client_secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        """Clients authenticate with a secret at the token endpoint, never as public clients."""
        return endpoint == "token" and method in TOKEN_ENDPOINT_AUTH_METHODS

    def check_grant_type(self, grant_type: str) -> bool:
        """Apps get tokens for themselves only: the client credentials grant."""
        return grant_type == GRANT_TYPE

    def get_allowed_scope(self, scope: str | None) -> str:
        """The issued scope: asked and granted, or all granted when nothing was asked."""
        issued = token_scope(self.record.scope, scope)
        if issued is None:
            raise InvalidScopeError("None of the requested scopes is granted to this client.")
        return issued


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    """RFC 6749 §4.4 with client authentication by HTTP Basic or by form fields."""

    TOKEN_ENDPOINT_AUTH_METHODS = list(TOKEN_ENDPOINT_AUTH_METHODS)

    def authenticate_token_endpoint_client(self) -> OAuthClient:
        """Authenticate the client, answering every failure alike (RFC 6749 §5.2 invalid_client).

        authlib answers 400 for an unknown client sent in form fields but 401 for a wrong secret,
        and says whether the client exists; one 401 with a Basic challenge tells an attacker less
        and a client developer the same thing. authlib also lets a Basic header that is not UTF-8
        escape as UnicodeDecodeError (a 500); it is a failed authentication like any other.
        """
        request: OAuth2Request = self.request
        if request.headers.get("Authorization") and "client_secret" in request.form:
            # RFC 6749 §2.3: a client MUST NOT use more than one authentication method.
            raise InvalidRequestError("Authenticate with HTTP Basic or with form fields, not both.")
        try:
            client = super().authenticate_token_endpoint_client()
        except (InvalidClientError, UnicodeDecodeError) as error:
            raise InvalidClientError(status_code=401,
                                     description="Client authentication failed.") from error
        # Checked only once the client has proven who it is: the window is nobody else's business.
        # RFC 6749 §5.2 unauthorized_client: authenticated, but not authorized to get a token.
        refusal = client.contract_refusal(utcnow().date())
        if refusal is not None:
            raise UnauthorizedClientError(description=refusal)
        return client


def bearer_token_generator(lifetime: Callable[[], int]) -> BearerTokenGenerator:
    """Opaque random bearer tokens, valid for ``lifetime()`` seconds (read at issuance)."""
    return BearerTokenGenerator(access_token_generator=lambda **_: generate_access_token(),
                                expires_generator=lambda client, grant_type: lifetime())


def configure_server(server: AuthorizationServer, lifetime: Callable[[], int]) -> None:
    """Give an authlib authorization server this gateway's grant and token generator."""
    server.register_grant(ClientCredentialsGrant)
    server.register_token_generator("default", bearer_token_generator(lifetime))


def query_client(session: Session, client_id: str) -> OAuthClient | None:
    """The active client with this client_id; revoked clients do not exist for the token endpoint."""
    record = find_active_client(session, client_id)
    if record is None:
        return None
    return OAuthClient(record, contract_window(session, record.app_id, record.district_id))


def save_token(session: Session, token: dict[str, Any], request: OAuth2Request,
               now: dt.datetime) -> None:
    """Record a token authlib has just generated for ``request.client``."""
    record_token(session, request.client.record, access_token=token["access_token"],
                 scope=token["scope"], expires_in=token["expires_in"], now=now)
