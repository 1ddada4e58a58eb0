"""The OneRoster 1.2 Rostering REST service: the 41 GET operations under
``/ims/oneroster/rostering/v1p2`` and its discovery document; and :func:`service_blueprint`, which
makes the blueprint of any read service from its endpoint table (the resources service uses it too).

Each view parses the request, authorizes the bearer token for the operation's scopes, calls one
function of :mod:`gateway.oneroster.service` and dumps the result with orjson. Collections carry
``X-Total-Count`` and an RFC 8288 ``Link`` header (first, prev, next, last; no prev on the first
page, no next on the last).

Absolute URLs -- the ``href`` of every reference, the ``Link`` header, the server and token URLs
of the discovery document -- are built from ``app.config["ISSUER"]`` (``GATEWAY_ISSUER``, the
gateway's public base URL), never from the request's Host header: they stay right behind a
reverse proxy, and a forged Host cannot redirect a client.

What an app may see is decided in one place, :func:`gateway.http.context.request_visibility`.
"""
from __future__ import annotations

from typing import Any, Callable
from urllib.parse import quote

import orjson
from flask import Blueprint, Flask, Response, current_app, request

from gateway.errors import InvalidData
from gateway.http.auth import authorize_request
from gateway.http.inputs import refuse_nul
from gateway.database import request_session
from gateway.http import context
from gateway.oneroster.endpoints import ROSTERING, Endpoint, Service
from gateway.oneroster.openapi import build_openapi
from gateway.oneroster.paging import paging_links
from gateway.oneroster.rendering import collection_body, single_body
from gateway.oneroster.service import (Page, get_record_fragment, list_records,
                                       parse_collection_params)
from gateway.store.rostering import PageCache

CACHE_EXTENSION = "gateway.rostering_cache"
"""The application's page cache (counts, parent checks, anchors), shared by every service: its
keys name the operation."""


def _init_cache(state) -> None:
    """One page cache per application, whichever service's blueprint is registered first."""
    state.app.extensions.setdefault(CACHE_EXTENSION, PageCache())


def _public_base() -> str:
    return current_app.config["ISSUER"].rstrip("/")


def _collection_view(endpoint: Endpoint) -> Callable[..., Response]:
    """The view of a collection operation (top-level or nested)."""
    def view(**path_ids: str) -> Response:
        grant = authorize_request(endpoint.scopes)
        config = current_app.config
        args = request.args
        params = parse_collection_params(
            limit=args.get("limit"), offset=args.get("offset"), filter=args.get("filter"),
            sort=args.get("sort"), order_by=args.get("orderBy"), fields=args.getlist("fields"),
            default_limit=config["ONEROSTER_DEFAULT_LIMIT"], max_limit=config["ONEROSTER_MAX_LIMIT"])
        service_url = _public_base() + endpoint.base_path
        page: Page = list_records(
            request_session(), endpoint, [path_ids[name] for name in endpoint.path_params], params,
            district_id=grant.district_id, visibility=context.request_visibility(grant.app_id, grant.district_id, grant.policy_version),
            base_url=service_url, cache=current_app.extensions[CACHE_EXTENSION])
        links = paging_links(_public_base() + quote(request.path), list(args.items(multi=True)),
                             page.offset, page.limit, page.total)
        body = collection_body(endpoint.entity, page.fragments, service_url, page.foreign_hrefs)
        return Response(body, status=200, mimetype="application/json",
                        headers={"X-Total-Count": str(page.total), "Link": links})
    return view


def _single_view(endpoint: Endpoint) -> Callable[..., Response]:
    """The view of a single-record operation."""
    def view(sourcedId: str) -> Response:
        grant = authorize_request(endpoint.scopes)
        fragment = get_record_fragment(
            request_session(), endpoint, sourcedId, request.args.getlist("fields"),
            district_id=grant.district_id,
            visibility=context.request_visibility(grant.app_id, grant.district_id,
                                                  grant.policy_version),
            cache=current_app.extensions[CACHE_EXTENSION])
        return Response(single_body(endpoint.entity, fragment, _public_base() + endpoint.base_path),
                        status=200, mimetype="application/json")
    return view


def _rule(endpoint: Endpoint) -> str:
    """The Flask rule of an operation: ``{param}`` becomes ``<param>``."""
    return endpoint.full_path.replace("{", "<").replace("}", ">")


def service_blueprint(name: str, service: Service,
                      build_document: Callable[..., dict[str, Any]]) -> Blueprint:
    """The blueprint of a OneRoster read service: a route per endpoint of its table (with the
    endpoint's methods), and its discovery document at ``{base}/discovery/`` and
    ``{base}/discovery/{document_name}``, made by ``build_document(server_url=, token_url=)``
    once per application (public, like any API doc)."""
    made = Blueprint(name, __name__)
    refuse_nul(made, InvalidData)
    made.record_once(_init_cache)
    for endpoint in service.endpoints:
        made.add_url_rule(
            _rule(endpoint), endpoint=endpoint.operation_id, methods=list(endpoint.methods),
            view_func=(_collection_view if endpoint.collection else _single_view)(endpoint))
    document_extension = f"gateway.{name}_document"

    def discovery() -> Response:
        """The service's OpenAPI 3 document (REST binding, discovery)."""
        app: Flask = current_app._get_current_object()
        body = app.extensions.get(document_extension)
        if body is None:
            base = _public_base()
            body = orjson.dumps(build_document(server_url=base + service.base_path,
                                               token_url=base + "/oauth/token"))
            app.extensions[document_extension] = body
        return Response(body, status=200, mimetype="application/json")

    made.add_url_rule(service.discovery_path, endpoint="discovery", view_func=discovery,
                      methods=["GET"])
    made.add_url_rule(service.discovery_path + service.document_name,
                      endpoint="discovery", view_func=discovery, methods=["GET"])
    return made


blueprint = service_blueprint("rostering", ROSTERING, build_openapi)
