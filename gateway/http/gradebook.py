"""The OneRoster 1.2 Gradebook REST service: the 35 operations under
``/ims/oneroster/gradebook/v1p2`` (:data:`gateway.gradebook.endpoints.OPERATIONS`).

Each view parses the request, authorizes the bearer token for the operation's scopes, calls one
function of :mod:`gateway.gradebook.service` and dumps the result. Collections carry
``X-Total-Count`` and the same ``Link`` header as rostering's; a PUT answers 201 with the record
whether it created or replaced it (the only success the binding declares; Google Classroom's
edits expect it); a POST answers 201 with the sourcedId pairs; a
DELETE answers 204. Absolute URLs are built from ``GATEWAY_ISSUER``, as on rostering.
"""
from __future__ import annotations

from typing import Any, Callable
from urllib.parse import quote

import orjson
from flask import Blueprint, Response, current_app, request

from gateway.database import locked_write_session, request_session
from gateway.errors import InvalidData, Unprocessable
from gateway.gradebook.endpoints import BASE_PATH, GET, OPERATIONS, POST, PUT, Operation
from gateway.gradebook.records import ENTITIES
from gateway.gradebook.service import (Caller, delete_record, get_record, list_records,
                                       make_links, post_records, put_record)
from gateway.http import context
from gateway.http.auth import authorize_request
from gateway.http.inputs import refuse_nul
from gateway.oneroster.endpoints import BASE_PATH as ROSTERING_BASE_PATH
# The Link header is the rostering service's own, so that clients page both services alike.
from gateway.oneroster.paging import paging_links
from gateway.oneroster.service import parse_collection_params
from gateway.store.models import utcnow

blueprint = Blueprint("gradebook", __name__)

refuse_nul(blueprint, InvalidData)


def _caller(operation: Operation) -> Caller:
    """The authorized caller of ``operation``: its district, visibility and links."""
    grant = authorize_request(operation.scopes)
    visibility = context.request_visibility(grant.app_id, grant.district_id, grant.policy_version)
    base = current_app.config["ISSUER"].rstrip("/")
    return Caller(district_id=grant.district_id, visibility=visibility,
                  links=make_links(base + ROSTERING_BASE_PATH, base + BASE_PATH, visibility),
                  default_category_title=current_app.config["DEFAULT_CATEGORY_TITLE"],
                  now=utcnow())


def _json(body: Any, status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status=status, mimetype="application/json",
                    headers=headers)


def _request_body() -> Any:
    """The request's JSON body (422 if it is not JSON)."""
    body = request.get_json(silent=True)
    if body is None:
        raise Unprocessable("The body must be a JSON document.")
    return body


def _view(operation: Operation) -> Callable[..., Response]:
    """The view of one operation."""
    entity = ENTITIES[operation.entity]

    def view(**path: str) -> Response:
        caller = _caller(operation)
        # Writes start a transaction of their own once the token is checked (SQLite cannot turn
        # a read snapshot into a write after another request wrote, see locked_write_session).
        session = request_session() if operation.method == GET else locked_write_session()
        ids = [path[name] for name in operation.path_params]
        if operation.method == GET and operation.collection:
            config, args = current_app.config, request.args
            params = parse_collection_params(
                limit=args.get("limit"), offset=args.get("offset"), filter=args.get("filter"),
                sort=args.get("sort"), order_by=args.get("orderBy"),
                fields=args.getlist("fields"), default_limit=config["ONEROSTER_DEFAULT_LIMIT"],
                max_limit=config["ONEROSTER_MAX_LIMIT"])
            page = list_records(session, operation, ids, params, caller)
            links = paging_links(caller.links.gradebook + quote(request.path[len(BASE_PATH):]),
                                 list(args.items(multi=True)), page.offset, page.limit,
                                 page.total)
            return _json({entity.collection_key: page.records}, 200,
                         {"X-Total-Count": str(page.total), "Link": links})
        if operation.method == GET:
            record = get_record(session, operation, ids[0], request.args.getlist("fields"), caller)
            return _json({entity.single_key: record}, 200)
        if operation.method == PUT:
            record, _created = put_record(session, operation, ids[0], _request_body(), caller)
            # 201 whether created or replaced: the binding declares no other success for a PUT,
            # and Google Classroom's PUTs (an edit included) expect it.
            return _json({entity.single_key: record}, 201)
        if operation.method == POST:
            pairs = post_records(session, operation, ids, _request_body(), caller)
            return _json({"sourcedIdPairs": pairs}, 201)
        delete_record(session, operation, ids[0], caller)
        return Response(status=204)
    return view


def _rule(operation: Operation) -> str:
    """The Flask rule of an operation: ``{param}`` becomes ``<param>``."""
    return operation.full_path.replace("{", "<").replace("}", ">")


for _operation in OPERATIONS:
    blueprint.add_url_rule(_rule(_operation), endpoint=_operation.operation_id,
                           methods=[_operation.method], view_func=_view(_operation))
