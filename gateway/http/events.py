"""The change feed: ``GET /events?after=CURSOR&limit=N`` for an app, behind its OAuth bearer token.

The view parses the cursor and the limit, authorizes the token for any scope that reads a service
whose records the feed carries (rostering, resources, gradebook: it sees the events of those) and
asks :func:`gateway.events.feed.read_events` for the page, as the app's policy lets it see it;
the page's people go to the disclosure ledger before the response leaves (like a REST page).
Errors are the OneRoster error body; an expired cursor is ``410`` (``cursor_expired``).
"""
from __future__ import annotations

import orjson
from flask import Blueprint, Response, request

from gateway.database import get_database, request_session
from gateway.errors import InvalidData
from gateway.events.feed import FEED_SCOPES, parse_cursor, parse_limit, read_events
from gateway.events.trigger import install_delivery_trigger
from gateway.http import context
from gateway.http.auth import authorize_request
from gateway.http.inputs import refuse_nul

blueprint = Blueprint("events", __name__)

DELIVERY_TRIGGER = "gateway.delivery_trigger"


@blueprint.record_once
def _install_trigger(state) -> None:
    # Gradebook writes (REST, LTI AGS) deliver their events once committed, like an import.
    app = state.app
    app.extensions[DELIVERY_TRIGGER] = install_delivery_trigger(get_database(app), app.config)

refuse_nul(blueprint, InvalidData)


@blueprint.get("/events")
def list_events() -> Response:
    """A page of the app's events after ``after``: ``{"events": [...], "next", "more"}``."""
    grant = authorize_request(FEED_SCOPES)
    after = parse_cursor(request.args.get("after"))
    limit = parse_limit(request.args.get("limit"))
    visibility = context.request_visibility(grant.app_id, grant.district_id, grant.policy_version)
    page = read_events(request_session(), visibility, scopes=grant.scopes, after=after,
                       limit=limit)
    return Response(orjson.dumps(page.to_dict()), status=200, mimetype="application/json",
                    headers={"Cache-Control": "no-store"})
