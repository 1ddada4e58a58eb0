"""Error classes that know their HTTP status and their spec-shaped body, and the one place that
registers the handlers.

Importable from every layer: flask is imported only inside :func:`register_error_handlers`.
OneRoster bodies follow the 1.2 REST binding (imsx_StatusInfo fields at the top level, §3.3 of the
binding); OAuth errors are RFC 6749 §5.2 bodies and are produced by the OAuth package itself.
"""
from __future__ import annotations

from typing import Any

ONEROSTER_PATH_PREFIX = "/ims/oneroster/"


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose."""

    status = 500

    def __init__(self, description: str | None = None) -> None:
        super().__init__(description or self.__class__.__doc__ or self.__class__.__name__)
        self.description = description or (self.__class__.__doc__ or "").strip()


class UsageError(GatewayError):
    """A command or setting was used wrongly; the message tells the user what to change."""

    status = 400


class OneRosterError(GatewayError):
    """An error answered with the OneRoster 1.2 imsx_StatusInfo body."""

    status = 500
    code_major = "failure"
    severity = "error"
    code_minor = "internal_server_error"

    def __init__(self, description: str | None = None, *, headers: dict[str, str] | None = None,
                 code_minor: str | None = None) -> None:
        super().__init__(description)
        self.headers = dict(headers or {})
        if code_minor is not None:
            self.code_minor = code_minor

    def to_body(self) -> dict[str, Any]:
        """The body the binding prescribes for this error."""
        return {
            "imsx_codeMajor": self.code_major,
            "imsx_severity": self.severity,
            "imsx_description": self.description,
            "imsx_CodeMinor": {
                "imsx_codeMinorField": [
                    {"imsx_codeMinorFieldName": "TargetEndSystem",
                     "imsx_codeMinorFieldValue": self.code_minor},
                ]
            },
        }


class InvalidData(OneRosterError):
    """The request carried a value that is not valid for this operation."""

    status = 400
    code_minor = "invaliddata"


class InvalidFilterField(InvalidData):
    """The filter names a field that this collection cannot be filtered on."""

    code_minor = "invalid_filter_field"


class InvalidSelectionField(InvalidData):
    """The fields parameter names a field that this collection does not have."""

    code_minor = "invalid_selection_field"


class Unauthorized(OneRosterError):
    """No valid access token was presented."""

    status = 401
    code_minor = "unauthorisedrequest"


class Forbidden(OneRosterError):
    """The access token does not carry the scope this operation requires."""

    status = 403
    code_minor = "forbidden"


class NotFound(OneRosterError):
    """The object does not exist, or is not visible to this client."""

    status = 404
    code_minor = "unknownobject"


class MethodNotAllowed(OneRosterError):
    """This operation is not supported on this path."""

    status = 405
    code_major = "unsupported"
    code_minor = "invaliddata"


class Unprocessable(OneRosterError):
    """The request was well-formed but its content could not be processed."""

    status = 422
    code_minor = "invaliddata"


class TooManyRequests(OneRosterError):
    """The server is busy; try again later."""

    status = 429
    code_minor = "server_busy"


class InternalError(OneRosterError):
    """The server failed to process the request."""

    status = 500
    code_minor = "internal_server_error"


_ONEROSTER_BY_STATUS: dict[int, type[OneRosterError]] = {
    400: InvalidData, 401: Unauthorized, 403: Forbidden, 404: NotFound,
    405: MethodNotAllowed, 422: Unprocessable, 429: TooManyRequests, 500: InternalError,
}


def oneroster_error_for_status(status: int, description: str | None = None) -> OneRosterError:
    """The OneRoster error that stands for an HTTP status raised outside our own code."""
    cls = _ONEROSTER_BY_STATUS.get(status)
    if cls is None:
        cls = InvalidData if 400 <= status < 500 else InternalError
    return cls(description)


def register_error_handlers(app) -> None:
    """Answer every error under the OneRoster service paths with the binding's error body."""
    import orjson
    from flask import Response, request
    from werkzeug.exceptions import HTTPException

    def render(error: OneRosterError) -> Response:
        response = Response(orjson.dumps(error.to_body()), status=error.status,
                            mimetype="application/json")
        for name, value in error.headers.items():
            response.headers[name] = value
        return response

    @app.errorhandler(OneRosterError)
    def handle_oneroster_error(error: OneRosterError):
        return render(error)

    @app.errorhandler(HTTPException)
    def handle_http_exception(error: HTTPException):
        if request.path.startswith(ONEROSTER_PATH_PREFIX):
            response = render(oneroster_error_for_status(error.code or 500, error.description))
            # Keep what the status obliges the server to say (405: Allow, RFC 9110 §15.5.6).
            for name, value in error.get_headers():
                if name.lower() != "content-type":
                    response.headers[name] = value
            return response
        return error

    @app.errorhandler(Exception)
    def handle_unexpected(error: Exception):
        if isinstance(error, HTTPException):
            return handle_http_exception(error)
        app.logger.exception("unhandled error on %s", request.path)
        if request.path.startswith(ONEROSTER_PATH_PREFIX):
            return render(InternalError("The server failed to process the request."))
        return Response("Internal Server Error", status=500, mimetype="text/plain")
