"""Request hygiene shared by the blueprints: no NUL characters anywhere in what a request carries,
and a cap on the size of form bodies.

PostgreSQL cannot store or compare a NUL character in text (SQLite can), so a NUL in a path id, a
query parameter, a form field or a credential used to end as a 500 on one backend and a plain
miss on the other. Each blueprint refuses it before its views run, with its own spec's error
(:func:`refuse_nul`), so both backends answer alike. No legitimate value contains one.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping

from flask import Blueprint, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wsgi import LimitedStream

from gateway.nul import NUL
from gateway.oauth.credentials import presented_credentials

NUL_IN_BODY = "The body contains a NUL character, which is not allowed."


def _where_nul(named: Iterable[tuple[str, Any]], kind: str) -> str | None:
    for name, value in named:
        if NUL in name or (isinstance(value, str) and NUL in value):
            return f"{kind} {name.replace(NUL, '?')!r}"
    return None


def find_nul() -> str | None:
    """Which part of the current request carries a NUL character (for the error message), or
    None. Looks at the path, every query parameter and form field (names and values) and the
    client credentials of an HTTP Basic header."""
    if NUL in request.path or any(NUL in str(value) for value in (request.view_args or {}).values()):
        return "path"
    found = _where_nul(request.args.items(multi=True), "query parameter")
    if found is None and request.mimetype in ("application/x-www-form-urlencoded",
                                              "multipart/form-data"):
        found = _where_nul(request.form.items(multi=True), "form field")
    if found is None and any(NUL in (value or "") for value in
                             presented_credentials(request.headers.get("Authorization"), {})):
        found = "Authorization header"
    return found


def refuse_nul(blueprint: Blueprint, error: Callable[[str], Exception]) -> None:
    """Before each view of ``blueprint``, raise ``error(description)`` if the request carries a
    NUL character."""
    @blueprint.before_request
    def _refuse_nul() -> None:
        where = find_nul()
        if where is not None:
            raise error(f"The {where} contains a NUL character, which is not allowed.")


def cap_form_size(blueprint: Blueprint, uploads: Mapping[str, str] | None = None) -> None:
    """Refuse (413) a request to ``blueprint`` whose body is larger than ``GATEWAY_FORM_MAX_BYTES``:
    its forms are a few short fields, and nobody should make the server read megabytes to find a
    password or a client secret. Registered before :func:`refuse_nul`, which reads the form.

    ``uploads``: the endpoints that take a file, each with the setting of its own cap."""
    @blueprint.before_request
    def _cap_form_size() -> None:
        setting = (uploads or {}).get(request.endpoint or "", "FORM_MAX_BYTES")
        limit = int(current_app.config[setting])
        # One byte of slack: werkzeug refuses a declared length over the cap at once, but reads a
        # body of undeclared length (chunked) only up to the cap and stops there, silently; with
        # one byte more, a body that filled the slack is known to be too long.
        request.max_content_length = limit + 1
        request.form  # noqa: B018  (parse now, so the 413 comes before anything else)
        declared = request.content_length
        stream = request.stream
        if (declared is not None and declared > limit) or (
                declared is None and isinstance(stream, LimitedStream) and stream.is_exhausted):
            raise RequestEntityTooLarge()


def form_too_large_description() -> str:
    """What a client is told when its body is over the cap."""
    return f"The request body is larger than {int(current_app.config['FORM_MAX_BYTES'])} bytes."
