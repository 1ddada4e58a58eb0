"""The OneRoster 1.2 Resources REST service: the 5 GET operations under
``/ims/oneroster/resources/v1p2`` and its discovery document, served by the same read path as
rostering (:func:`gateway.http.rostering.service_blueprint`): scopes, paging headers, errors,
visibility and the ledger behave alike."""
from __future__ import annotations

from gateway.http.rostering import service_blueprint
from gateway.oneroster.endpoints import RESOURCES
from gateway.oneroster.openapi import build_resources_openapi

blueprint = service_blueprint("resources", RESOURCES, build_resources_openapi)
