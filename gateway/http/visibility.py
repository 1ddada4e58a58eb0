"""The one place the HTTP channels get what an app may see: its district's sharing policy for it,
as a :class:`~gateway.sharing.PolicyVisibility` writing the disclosure ledger in the request's
session (so ledger entries commit, or roll back, with the response that caused them)."""
from __future__ import annotations

from typing import Any

from flask import Flask, current_app, g

from gateway import sharing
from gateway.http.session import request_session
from gateway.sharing.visibility import Visibility

EXTENSION = "gateway.policy_cache"


def init_app(app: Flask) -> None:
    """Give the app its policy cache (parsed policies by version, pseudonymizers by app)."""
    app.extensions[EXTENSION] = sharing.PolicyCache()


def visibility_of(app_id: int, district_id: int,
                  policy_version: tuple[Any, ...] | None = None) -> Visibility:
    """What app ``app_id`` may see of district ``district_id`` in this request (made once per
    app and district per request). ``policy_version``, when the caller has just read it (an
    access grant carries it), lets the parsed policy be reused instead of read again."""
    made = g.setdefault("visibilities", {})
    found = made.get((app_id, district_id))
    if found is None:
        found = made[(app_id, district_id)] = sharing.visibility_for(
            request_session(), app_id=app_id, district_id=district_id,
            secret_key=current_app.config["SECRET_KEY"], policy_version=policy_version,
            cache=current_app.extensions[EXTENSION])
    return found
