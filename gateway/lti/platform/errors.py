"""Errors of the LTI platform, each with its HTTP status and the body its spec prescribes.

Three families, by who receives them:

* :class:`PageError`: a person in a browser (the portal, the authorization endpoint, the deep
  linking return). Shown as a plain page; never redirected to a tool, because the redirect URI
  itself may be what was wrong (OpenID Connect Core §3.1.2.6 forbids redirecting then).
* :class:`OAuthError`: the token endpoint (RFC 6749 §5.2 bodies) and the dynamic registration
  endpoint (RFC 7591 §3.2.2 bodies), JSON with ``error`` and ``error_description``.
* :class:`ServiceError`: the NRPS and AGS endpoints, JSON with ``error`` and
  ``error_description`` too, bearer failures carrying RFC 6750 §3 challenges.
"""
from __future__ import annotations

from typing import Any

from gateway.errors import GatewayError


class LtiError(GatewayError):
    """Base of every error of the LTI platform."""

    status = 400
    error = "invalid_request"

    def __init__(self, description: str | None = None, *, headers: dict[str, str] | None = None,
                 error: str | None = None) -> None:
        super().__init__(description)
        self.headers = dict(headers or {})
        if error is not None:
            self.error = error

    def to_body(self) -> dict[str, Any]:
        """``{"error", "error_description"}``, as RFC 6749 §5.2 shapes it."""
        return {"error": self.error, "error_description": self.description}


# -- pages ------------------------------------------------------------------------------------

class PageError(LtiError):
    """A request made by a browser cannot be served; the person sees why."""


class BadRequest(PageError):
    """The request is malformed or names something that does not exist."""


class LoginRequired(PageError):
    """Sign in to the portal first (OpenID Connect Core §3.1.2.6 ``login_required``)."""

    status = 401
    error = "login_required"


class WrongUser(PageError):
    """The request was made for someone other than the signed-in user."""

    status = 403
    error = "access_denied"


class NotAllowed(PageError):
    """The signed-in user may not do this."""

    status = 403
    error = "access_denied"


class CsrfFailure(PageError):
    """The form was not sent by this site's page (missing or wrong CSRF token)."""

    status = 400
    error = "invalid_request"


class FormTooLarge(PageError):
    """The form sent is larger than any of this site's forms can be (RFC 9110 §15.5.14)."""

    status = 413
    error = "invalid_request"


# -- token and registration endpoints ---------------------------------------------------------

class OAuthError(LtiError):
    """An RFC 6749 §5.2 error of the token endpoint."""


class InvalidClient(OAuthError):
    """Client authentication failed (RFC 6749 §5.2 invalid_client)."""

    status = 401
    error = "invalid_client"


class InvalidGrant(OAuthError):
    """The grant is not one this endpoint issues tokens for (RFC 6749 §5.2)."""

    error = "unsupported_grant_type"


class UnauthorizedClient(OAuthError):
    """The client is authenticated but may not have a token now (RFC 6749 §5.2
    unauthorized_client), e.g. outside its district's contract window."""

    error = "unauthorized_client"


class InvalidScope(OAuthError):
    """A requested scope is unknown or not allowed to this tool (RFC 6749 §5.2 invalid_scope)."""

    error = "invalid_scope"


class InvalidClientMetadata(OAuthError):
    """The registration request's metadata is not acceptable (RFC 7591 §3.2.2)."""

    error = "invalid_client_metadata"


class InvalidRedirectUri(OAuthError):
    """A redirect URI of the registration request is not acceptable (RFC 7591 §3.2.2)."""

    error = "invalid_redirect_uri"


class InvalidRegistrationToken(OAuthError):
    """The registration token is missing, unknown, used or expired (RFC 6750 §3.1)."""

    status = 401
    error = "invalid_token"


# -- services ---------------------------------------------------------------------------------

class ServiceError(LtiError):
    """An error of the NRPS or AGS endpoints."""


class InvalidToken(ServiceError):
    """The bearer token is missing, unknown or expired (RFC 6750 §3.1 invalid_token)."""

    status = 401
    error = "invalid_token"


class InsufficientScope(ServiceError):
    """The token does not carry the scope this operation needs (RFC 6750 §3.1)."""

    status = 403
    error = "insufficient_scope"


class ServiceNotFound(ServiceError):
    """No such deployment, context, line item or result for this tool."""

    status = 404
    error = "not_found"


class InvalidServiceRequest(ServiceError):
    """The request body or a parameter is not valid for this operation."""

    status = 400
    error = "invalid_request"


class UnsupportedMediaType(ServiceError):
    """The request body is not of the media type the operation takes."""

    status = 415
    error = "unsupported_media_type"


class Conflict(ServiceError):
    """The request conflicts with the stored state (an older score than the one on record)."""

    status = 409
    error = "conflict"
